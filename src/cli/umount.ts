/**
 * `overlayts umount MERGED`: unmount (umount(8) as root, fusermount
 * otherwise), then wait for the daemon to finish its shutdown.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { readPidFile } from '../mount-config/pidfile.js'

const run = promisify(execFile)

/** Running, not merely a zombie waiting for whoever adopted it to reap it. */
function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch { return false }
}

export async function umount (merged: string): Promise<number> {
  const pid = readPidFile(merged)
  const attempts: Array<[string, string[]]> = process.getuid?.() === 0
    ? [['umount', [merged]], ['fusermount3', ['-u', merged]], ['fusermount', ['-u', merged]]]
    : [['fusermount3', ['-u', merged]], ['fusermount', ['-u', merged]]]
  let lastErr = ''
  let ok = false
  for (const [cmd, args] of attempts) {
    try {
      await run(cmd, args)
      ok = true
      break
    } catch (e) {
      lastErr = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim()
    }
  }
  if (!ok) throw new Error(`cannot unmount ${merged}: ${lastErr}`)
  if (pid !== undefined) {
    const deadline = Date.now() + 30_000
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    if (alive(pid)) throw new Error(`unmounted ${merged}, but its daemon (pid ${pid}) has not exited`)
  }
  return 0
}
