/** Mount table helpers shared by the benchmark and its watchdog. */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'

export interface MountInfo { readonly dev: string, readonly mountpoint: string, readonly fstype: string }

function unescapeMount (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
}

export function mountInfo (): MountInfo[] {
  const out: MountInfo[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line === '') continue
    const f = line.split(' ')
    const sep = f.indexOf('-')
    out.push({ dev: f[2]!, mountpoint: unescapeMount(f[4]!), fstype: f[sep + 1]! })
  }
  return out
}

export function isMounted (mp: string): MountInfo | undefined {
  const all = mountInfo().filter((m) => m.mountpoint === mp)
  return all[all.length - 1]
}

/** Last resort: abort the FUSE connection (if it is one) and detach the mount. */
export function forceUnmount (mp: string): void {
  for (let i = 0; i < 4; i++) {
    const m = isMounted(mp)
    if (m === undefined) return
    if (m.fstype.startsWith('fuse')) {
      const minor = m.dev.split(':')[1]
      try { fs.writeFileSync(`/sys/fs/fuse/connections/${minor}/abort`, '1') } catch { /* not a live connection */ }
    }
    spawnSync('umount', ['-l', mp], { stdio: 'ignore', timeout: 10_000 })
  }
}
