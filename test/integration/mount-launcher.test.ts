// bin/overlayts-mount, the launcher that starts the daemon with one Node
// start-up (issue 12): it mounts as `overlayts -o OPTS MERGED` does and
// returns once the mount is live, reports a bad option in one line with a
// non-zero exit and nothing mounted, leaves a daemon in its own session with
// nothing of the caller's open, and hands any other command to overlayts.js.
import t from 'tap'
import { readFileSync, readlinkSync, readdirSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { run } from '../helpers/exec.js'
import { isMounted, OVERLAYTS_BIN, REPO_ROOT, unmount } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const LAUNCHER = join(dirname(OVERLAYTS_BIN), 'overlayts-mount')

async function layout (t: Parameters<typeof tmpDir>[0]): Promise<Record<'l' | 'u' | 'w' | 'm', string>> {
  const root = await tmpDir(t, 'launcher')
  const d = { l: join(root, 'l'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'm') }
  for (const p of Object.values(d)) await mkdir(p)
  await writeFile(join(d.l, 'hello'), 'hi\n')
  return d
}

/** The pid of the daemon serving mp (its command line names mp). */
function daemonOf (mp: string): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0')
      if (argv.includes(mp) && argv.includes('-f')) return Number(e)
    } catch { /* gone */ }
  }
  return undefined
}

t.test('mounts in the fuse-overlayfs shape; the daemon is detached; umount passes through', async t => {
  const d = await layout(t)
  t.teardown(() => unmount(d.m).then(() => {}))
  const r = await run(LAUNCHER, ['-o', `lowerdir=${d.l},upperdir=${d.u},workdir=${d.w}`, d.m], { timeoutMs: 30_000, cwd: REPO_ROOT })
  t.equal(r.code, 0, r.stderr)
  // Returning at all means the daemon closed the ready pipe (the launcher reads it to its end).
  t.ok(await isMounted(d.m), 'live when the command returns')
  t.equal(await readFile(join(d.m, 'hello'), 'utf8'), 'hi\n')
  await writeFile(join(d.m, 'new'), 'written\n')
  t.equal(await readFile(join(d.u, 'new'), 'utf8'), 'written\n', 'a write lands in upper')
  const pid = daemonOf(d.m)
  t.ok(pid !== undefined, 'the daemon runs')
  if (pid !== undefined) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ')
    t.equal(Number(stat[3]), pid, 'in a session of its own')
    const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => [fd, readlinkSync(`/proc/${pid}/fd/${fd}`)] as const)
    t.same(fds.filter(([fd]) => ['0', '1', '2'].includes(fd)).map(([, target]) => target), ['/dev/null', '/dev/null', '/dev/null'], 'stdio on /dev/null')
  }
  const u = await run(LAUNCHER, ['umount', d.m], { timeoutMs: 30_000 })
  t.equal(u.code, 0, u.stderr)
  t.notOk(await isMounted(d.m), 'unmounted')
})

t.test('a bad option: one line, non-zero, nothing mounted', async t => {
  const d = await layout(t)
  for (const [opts, msg] of [[`lowerdir=${d.l},frobnicate=1`, /^overlayts: unknown option: frobnicate$/], [`lowerdir=${d.l}/nope`, /^overlayts: lowerdir .*nope: no such directory$/]] as const) {
    const r = await run(LAUNCHER, ['-o', opts, d.m], { timeoutMs: 30_000 })
    t.not(r.code, 0, 'non-zero exit')
    t.match(r.stderr.trim(), msg, 'one line that says why')
    t.equal(r.stderr.trim().split('\n').length, 1)
    t.notOk(await isMounted(d.m), 'nothing mounted')
  }
})
