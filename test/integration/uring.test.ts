// FUSE over io_uring. With `-o uring=on` and the fuse module's enable_uring
// on, the kernel transport takes its requests through the ring: the daemon's
// "mounted" line says `requests: io_uring` and its io stats count the
// requests of each path, and a mixed workload (passthrough off, so data
// crosses the ring both ways) answers as the kernel's overlayfs does. With
// enable_uring off the kernel does not offer it: requests are read from
// /dev/fuse, and the mounted line says why. The default (uring=off) reads
// them from the device even where the kernel offers the ring.
//
// The module parameter is global: the test sets it and puts the original
// value back in teardown (both paths are correct, so a mount elsewhere that
// meets the other value still works).
import t from 'tap'
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { runOk } from '../helpers/exec.js'
import { mountOverlayts } from '../helpers/mounts.js'
import { mountPair, PY_STEP } from '../helpers/side-by-side.js'
import { snapshotTree } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

const PARAM = '/sys/module/fuse/parameters/enable_uring'

interface LogLine { msg?: string, requests?: unknown, uringQueues?: number, uringRefused?: string, reason?: string }

function logLines (file: string): LogLine[] {
  return readFileSync(file, 'utf8').split('\n').filter((s) => s.trim() !== '').map((s) => JSON.parse(s) as LogLine)
}

const mountedLine = (file: string): LogLine | undefined => logLines(file).find((l) => l.msg === 'mounted')
const ioAtUnmount = (file: string): Record<string, number> | undefined =>
  logLines(file).find((l) => l.msg === 'io stats' && l.reason === 'unmount')?.requests as Record<string, number> | undefined

function setUring (t: { teardown: (fn: () => void) => void }, on: boolean): void {
  const original = readFileSync(PARAM, 'utf8').trim()
  t.teardown(() => writeFileSync(PARAM, original === 'Y' ? '1' : '0'))
  writeFileSync(PARAM, on ? '1' : '0')
}

// Every kind of request, with data both ways: one line per step.
const SCRIPT = `
import os, errno, json, hashlib
${PY_STEP}
blob = bytes(range(256)) * 12288  # 3 MiB: several 1 MiB requests each way
def write(p, b):
    with open(p, 'wb') as f: f.write(b)
def read(p):
    with open(p, 'rb') as f: return hashlib.sha256(f.read()).hexdigest()
step('read lower', lambda: read('lower.bin'))
step('write', lambda: write('big', blob))
step('read back', lambda: read('big'))
step('append to lower', lambda: open('lower.bin', 'ab').write(b'tail'))
step('read copy', lambda: read('lower.bin'))
step('mkdir', lambda: os.mkdir('d'))
for i in range(300): write(f'd/f{i}', str(i).encode())
step('listing', lambda: len(os.listdir('d')))
step('stat', lambda: os.lstat('d/f7').st_size)
step('rename', lambda: os.rename('d/f1', 'd/g1'))
step('symlink', lambda: os.symlink('target', 'd/s'))
step('readlink', lambda: os.readlink('d/s'))
step('setxattr', lambda: os.setxattr('big', 'user.k', b'v'))
step('getxattr', lambda: os.getxattr('big', 'user.k').decode())
step('unlink', lambda: [os.unlink(f'd/f{i}') for i in range(2, 300)] and None)
step('listing after', lambda: sorted(os.listdir('d')))
step('absent', lambda: os.lstat('nope'))
step('rmdir lower', lambda: os.rmdir('ld'))
print('\\n'.join(out))
`

function settable (file: string): boolean {
  try { accessSync(file, constants.W_OK); return true } catch { return false }
}
const SKIP = !existsSync(PARAM)
  ? 'this kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING)'
  : !settable(PARAM) ? `${PARAM} cannot be set here (a container's read-only /sys)` : false

t.test('enable_uring=1: requests come through the ring, answered as the kernel answers', { skip: SKIP }, async (t) => {
  setUring(t, true)
  const log = join(await tmpDir(t, 'uring-log'), 'daemon.log')
  const pair = await mountPair(t, 'uring', {
    layers: [{ entries: [{ path: 'lower.bin', type: 'file', content: Buffer.alloc(2 * 1024 * 1024, 7) }, { path: 'ld', type: 'dir' }] }]
  }, { overlaytsExtra: ['--log-file', log, '-o', 'passthrough=off', '-o', 'uring=on'] })

  const mounted = mountedLine(log)
  t.equal(mounted?.requests, 'io_uring', 'the mounted line says requests come through io_uring')
  t.equal(mounted?.uringQueues, availableParallelism(), 'one queue per CPU')

  const run = async (dir: string): Promise<string> => (await runOk('python3', ['-c', SCRIPT], { cwd: dir, timeoutMs: 120_000 })).toString('utf8')
  const k = await run(pair.kernel.merged)
  const o = await run(pair.overlayts.merged)
  t.same(o.split('\n'), k.split('\n'), 'every step answers as through the kernel')
  t.same(await snapshotTree(pair.overlayts.merged), await snapshotTree(pair.kernel.merged), 'the merged trees match')
  await pair.unmount()

  const requests = ioAtUnmount(log)
  t.ok(requests !== undefined, 'io stats at unmount count the requests of each path')
  // INIT, FORGET and INTERRUPT still come through the device; everything else through the ring.
  t.ok((requests?.io_uring ?? 0) > 1000, `requests through the ring: ${JSON.stringify(requests)}`)
  t.ok((requests?.device ?? Infinity) < (requests?.io_uring ?? 0) / 4, 'few through the device (INIT, FORGET)')
})

for (const c of [
  { name: 'uring=on, enable_uring=0: the kernel does not offer it, requests are read from the device', uring: false, opts: ['-o', 'uring=on'] },
  { name: 'the default (uring=off), enable_uring=1: requests are read from the device', uring: true, opts: [] as string[] }
]) {
  t.test(c.name, { skip: SKIP }, async (t) => {
    setUring(t, c.uring)
    const dir = await tmpDir(t, 'uring-off')
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d))
    writeFileSync(join(dir, 'lower', 'f'), 'data\n')
    const log = join(dir, 'daemon.log')
    const m = await mountOverlayts(t, { lower: [join(dir, 'lower')], upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged'), extra: ['--log-file', log, ...c.opts] })
    const out = (await runOk('sh', ['-c', 'cat f && echo new > g && ls'], { cwd: m.merged, timeoutMs: 30_000 })).toString('utf8')
    t.equal(out, 'data\nf\ng\n', 'the mount works')
    const mounted = mountedLine(log)
    t.equal(mounted?.requests, 'read', 'the mounted line says requests are read from the device')
    if (c.uring) t.equal(mounted?.uringRefused, undefined, 'off by option: no refusal to report')
    else {
      t.match(mounted?.uringRefused ?? '', /does not offer FUSE_OVER_IO_URING/, 'and why not io_uring')
      t.ok(logLines(log).some((l) => l.msg === 'uring=on, but requests are read from the device'), 'uring=on warns that it could not')
    }
    await m.unmount()
    const requests = ioAtUnmount(log)
    t.equal(requests?.io_uring, 0, 'nothing through a ring')
    t.ok((requests?.device ?? 0) > 0, `every request read from the device: ${JSON.stringify(requests)}`)
  })
}
