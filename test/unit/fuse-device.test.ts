// The native /dev/fuse device layer (src/fuse/kernel/device.ts) without a FUSE
// server: open, mount(2), clone, reader threads receiving FUSE_INIT, the
// passthrough ioctls after a hand-written INIT reply, and a clean end on
// umount2(MNT_DETACH). This process never touches its own mount (it could
// deadlock waiting for an answer only it can give).
import t from 'tap'
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  backingClose, backingOpen, cloneDevice, MNT_DETACH, mount, MS_NODEV, MS_NOSUID, openDevice,
  startReaders, stopReaders, umount2, type ReaderHandle
} from '../../src/fuse/kernel/device.js'
import { run } from '../helpers/exec.js'
import type { TeardownHost } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const FUSE_INIT = 26
const ENODEV = 19
const BUF_SIZE = (1 << 20) + 4096
const FUSE_INIT_EXT = 1 << 30
const FUSE_PASSTHROUGH_FLAGS2 = 1 << (37 - 32)
const ADDON = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'overlayts_native.node')

interface Request { channel: number, req: Buffer }
interface End { errno: number }

function mountedAt (dir: string): boolean {
  // /proc/self/mountinfo only: never stat the mount point itself.
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(line => line.split(' ')[4] === dir)
}

async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Mounts a fresh connection on `dir`; teardown detaches it and closes the fds. */
function mountFuse (t: TeardownHost, dir: string): { fd: number, fds: number[] } {
  const fd = openDevice()
  const fds = [fd]
  t.teardown(() => {
    try { umount2(dir, MNT_DETACH) } catch { /* not mounted (any more) */ }
    for (const f of fds) closeSync(f)
  })
  // A Buffer target exercises the raw-bytes path.
  mount('overlayts-test', Buffer.from(dir), 'fuse.overlayts-test', MS_NOSUID | MS_NODEV,
    `fd=${fd},rootmode=40000,user_id=0,group_id=0`)
  return { fd, fds }
}

/** startReaders with the callbacks turned into promises and counters. */
function readers (fds: number[]): { handle: ReaderHandle, requests: Request[], ends: End[], first: Promise<Request>, end: Promise<End> } {
  const requests: Request[] = []
  const ends: End[] = []
  let gotFirst: (r: Request) => void = () => undefined
  let gotEnd: (e: End) => void = () => undefined
  const first = new Promise<Request>(resolve => { gotFirst = resolve })
  const end = new Promise<End>(resolve => { gotEnd = resolve })
  const handle = startReaders(fds, BUF_SIZE, (channel, req, errno) => {
    if (req === null) {
      ends.push({ errno })
      gotEnd({ errno })
      return
    }
    const r = { channel, req }
    requests.push(r)
    gotFirst(r)
  })
  return { handle, requests, ends, first, end }
}

function initReply (unique: bigint, passthrough: boolean): Buffer {
  const out = Buffer.alloc(16 + 64)
  out.writeUInt32LE(out.length, 0) // fuse_out_header.len
  out.writeInt32LE(0, 4) // error
  out.writeBigUInt64LE(unique, 8)
  const b = 16 // fuse_init_out
  out.writeUInt32LE(7, b) // major
  out.writeUInt32LE(40, b + 4) // minor
  out.writeUInt32LE(128 * 1024, b + 8) // max_readahead
  out.writeUInt32LE(passthrough ? FUSE_INIT_EXT : 0, b + 12) // flags
  out.writeUInt16LE(16, b + 16) // max_background
  out.writeUInt16LE(12, b + 18) // congestion_threshold
  out.writeUInt32LE(128 * 1024, b + 20) // max_write
  out.writeUInt32LE(1, b + 24) // time_gran
  out.writeUInt32LE(passthrough ? FUSE_PASSTHROUGH_FLAGS2 : 0, b + 32) // flags2
  out.writeUInt32LE(passthrough ? 2 : 0, b + 36) // max_stack_depth
  return out
}

t.test('argument and errno errors', async t => {
  const fd = openDevice()
  t.teardown(() => closeSync(fd))
  t.ok(fd >= 0, 'opened /dev/fuse')
  // EPERM on recent kernels (no connection yet), EINVAL on older ones.
  t.throws(() => cloneDevice(fd), { code: /^(EPERM|EINVAL)$/, syscall: 'ioctl' }, 'clone of an unmounted fd')
  t.throws(() => umount2('/nonexistent-overlayts-fuse-dev', 0), { code: 'ENOENT', errno: -2, syscall: 'umount2', path: '/nonexistent-overlayts-fuse-dev' })
  t.throws(() => mount('x', Buffer.from('/nonexistent-overlayts-fuse-dev'), 'fuse.x', 0, `fd=${fd},rootmode=40000,user_id=0,group_id=0`),
    { code: 'ENOENT', syscall: 'mount', path: '/nonexistent-overlayts-fuse-dev' })
  t.throws(() => mount('x', 'a\0b', 'fuse.x', 0, ''), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => backingOpen(fd, 0), { code: /^E[A-Z]+$/, syscall: 'ioctl' }, 'backing open on an unmounted fd')
  t.throws(() => startReaders([fd], 4096, () => undefined), { code: 'ERR_OUT_OF_RANGE' }, 'buffer below FUSE_MIN_READ_BUFFER')
  t.throws(() => startReaders([], BUF_SIZE, () => undefined), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => startReaders([-1], BUF_SIZE, () => undefined), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => stopReaders({} as unknown as ReaderHandle), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('mounted connection', async t => {
  const base = await tmpDir(t, 'fuse-dev')

  t.test('FUSE_INIT arrives once on one of two channels; passthrough ioctls; unmount ends the readers', async t => {
    const dir = join(base, 'mnt')
    mkdirSync(dir)
    const backingFile = join(base, 'backing')
    writeFileSync(backingFile, 'data')
    const { fd, fds } = mountFuse(t, dir)
    t.ok(mountedAt(dir), 'mounted')
    const clone = cloneDevice(fd)
    fds.push(clone)
    t.not(clone, fd)

    const r = readers([fd, clone])
    const first = await within(r.first, 10_000, 'FUSE_INIT')
    const { req } = first
    t.ok(first.channel === 0 || first.channel === 1, `channel ${first.channel}`)
    t.equal(req.readUInt32LE(0), req.length, 'header len is the request size')
    t.equal(req.readUInt32LE(4), FUSE_INIT, 'opcode FUSE_INIT')
    const unique = req.readBigUInt64LE(8)
    t.not(unique, 0n, 'unique != 0')
    t.equal(req.readUInt32LE(40), 7, 'protocol major 7')
    const flags2 = req.readUInt32LE(56)

    const passthrough = (flags2 & FUSE_PASSTHROUGH_FLAGS2) !== 0
    // A reply must go to the fd its request was read from (each clone has
    // its own processing queue; elsewhere the write fails with ENOENT).
    const replyFd = fds[first.channel]
    if (replyFd === undefined) throw new Error(`no fd for channel ${first.channel}`)
    writeSync(replyFd, initReply(unique, passthrough))
    if (passthrough) {
      const file = openSync(backingFile, 'r+')
      try {
        const id = backingOpen(fd, file)
        t.ok(id > 0, `backing id ${id}`)
        backingClose(fd, id)
        t.throws(() => backingClose(fd, id), { code: /^E[A-Z]+$/, syscall: 'ioctl' }, 'closed id is gone')
      } finally {
        closeSync(file)
      }
    } else {
      t.pass('passthrough ioctls', { skip: 'the kernel did not offer FUSE_PASSTHROUGH' })
    }

    umount2(dir, MNT_DETACH)
    t.notOk(mountedAt(dir), 'unmounted')
    const end = await within(r.end, 10_000, 'the readers to end')
    t.equal(end.errno, ENODEV, 'ENODEV after unmount')
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(r.ends.length, 1, 'end reported exactly once')
    t.equal(r.requests.filter(q => q.req.readUInt32LE(4) === FUSE_INIT).length, 1, 'FUSE_INIT delivered exactly once')
    stopReaders(r.handle) // after the end: harmless
  })

  t.test('stopReaders, then unmount: the end still comes, once', async t => {
    const dir = join(base, 'mnt2')
    mkdirSync(dir)
    const { fd } = mountFuse(t, dir)
    const r = readers([fd])
    stopReaders(r.handle)
    // Keep the loop alive ourselves now (stopReaders unref'ed the readers).
    const keep = setInterval(() => undefined, 1000)
    t.teardown(() => clearInterval(keep))
    umount2(dir, MNT_DETACH)
    const end = await within(r.end, 10_000, 'the readers to end')
    t.ok(end.errno === 0 || end.errno === ENODEV, `errno ${end.errno}`)
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(r.ends.length, 1)
    t.ok(r.requests.length <= 1 && r.requests.every(q => q.req.readUInt32LE(4) === FUSE_INIT), 'at most the INIT request')
  })

  t.test('a process exits by itself once its readers ended, or after stopReaders', async t => {
    // Child processes: the event loop must not be held by the readers.
    const child = (dir: string, unmountAfterInit: boolean): string => `
      import { createRequire } from 'node:module'
      const a = createRequire(import.meta.url)(${JSON.stringify(ADDON)})
      const dir = ${JSON.stringify(dir)}
      const fd = a.fuseOpenDevice()
      a.mount('overlayts-test', dir, 'fuse.overlayts-test', a.MS_NOSUID | a.MS_NODEV, 'fd=' + fd + ',rootmode=40000,user_id=0,group_id=0')
      const h = a.fuseStartReaders([fd], ${BUF_SIZE}, (channel, req, errno) => {
        if (req === null) { console.log('end ' + errno); return }
        console.log('op ' + req.readUInt32LE(4))
        if (${unmountAfterInit}) a.umount2(dir, a.MNT_DETACH)
        else a.fuseStopReaders(h)
      })
    `
    for (const unmountAfterInit of [true, false]) {
      const dir = join(base, unmountAfterInit ? 'child-umount' : 'child-stop')
      mkdirSync(dir)
      t.teardown(() => { try { umount2(dir, MNT_DETACH) } catch { /* gone */ } })
      const res = await run(process.execPath, ['--input-type=module', '-e', child(dir, unmountAfterInit)], { timeoutMs: 20_000 })
      t.equal(res.timedOut, false, `${unmountAfterInit ? 'umount' : 'stop'}: exited by itself`)
      t.equal(res.code, 0, res.stderr)
      t.equal(res.stdout.toString(), unmountAfterInit ? `op ${FUSE_INIT}\nend ${ENODEV}\n` : `op ${FUSE_INIT}\n`)
      // The stopped child left its (now dead) mount: detach it.
      try { umount2(dir, MNT_DETACH) } catch { /* the umount child removed its own */ }
      t.notOk(mountedAt(dir), 'nothing left mounted')
    }
  })
})
