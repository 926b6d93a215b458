// The kernel transport without root: fusermount3 mounts and hands the
// /dev/fuse fd back over a socket; the user's daemon serves it (no
// passthrough: registering backing files needs CAP_SYS_ADMIN), writes land
// in the user's upper in the kernel's format, and the user unmounts it.
// Without root the daemon picks the kernel's userxattr form for the upper (trusted.* is refused).
// /dev/fuse is mode 0600 on this machine: the test opens it to others for its
// duration and puts the mode back.
import t from 'tap'
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { isMounted, OVERLAYTS_BIN, unmount } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const USER = ['--reuid=1000', '--regid=1000', '--clear-groups']

t.test('a user mounts with the kernel transport through fusermount3', async (t) => {
  const mode = statSync('/dev/fuse').mode & 0o7777
  chmodSync('/dev/fuse', 0o666)
  t.teardown(() => chmodSync('/dev/fuse', mode))
  const dir = await tmpDir(t, 'unpriv')
  chmodSync(dir, 0o755)
  const d = { l: join(dir, 'l'), u: join(dir, 'u'), w: join(dir, 'w'), m: join(dir, 'm'), var: join(dir, 'var'), log: join(dir, 'var', 'log') }
  for (const p of [d.l, d.u, d.w, d.m, d.var]) { mkdirSync(p); chownSync(p, 1000, 1000) }
  writeFileSync(join(d.l, 'a'), 'lower\n')
  writeFileSync(join(d.l, 'gone'), 'x')
  chownSync(join(d.l, 'a'), 1000, 1000)
  const m = await run('setpriv', [...USER, process.execPath, OVERLAYTS_BIN, 'mount', '--log-file', d.log, '-o', `lowerdir=${d.l},upperdir=${d.u},workdir=${d.w}`, d.m], { timeoutMs: 30_000 })
  t.teardown(() => unmount(d.m).then(() => {}))
  t.equal(m.code, 0, m.stderr)
  t.ok(await isMounted(d.m), 'mounted')
  const opts = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === d.m) ?? ''
  t.match(opts, /fuse\.overlayts rw,nosuid,nodev,.*user_id=1000,group_id=1000/, "the user's mount, nosuid and nodev as fusermount3 makes it")
  // Only the user may enter a mount made without allow_other (root too is refused): cd as the user.
  const w = await run('setpriv', [...USER, 'sh', '-c', 'cd "$1" && cat a && echo new > b && rm gone', 'sh', d.m], { timeoutMs: 30_000 })
  t.equal(w.code, 0, w.stderr)
  t.equal(w.stdout.toString(), 'lower\n')
  t.equal(readFileSync(join(d.u, 'b'), 'utf8'), 'new\n', 'a new file in upper')
  const wh = statSync(join(d.u, 'gone'))
  t.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a char 0/0 whiteout, as the kernel makes it')
  t.equal(statSync(join(d.u, 'b')).uid, 1000, "the user's files")
  const mounted = readFileSync(d.log, 'utf8').split('\n').filter((l) => l.includes('"msg":"mounted"')).map((l) => JSON.parse(l) as { transport?: string, passthrough?: boolean })[0]
  t.same([mounted?.transport, mounted?.passthrough], ['kernel', false], 'the kernel transport, without passthrough')
  t.equal((mounted as { markers?: string } | undefined)?.markers, 'userxattr', "the upper in the kernel's userxattr form")
  const u = await run('setpriv', [...USER, process.execPath, OVERLAYTS_BIN, 'umount', d.m], { timeoutMs: 30_000 })
  t.equal(u.code, 0, u.stderr)
  t.notOk(await isMounted(d.m), 'the user unmounted it')
})
