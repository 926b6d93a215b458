/**
 * The kernel transport's mount: open /dev/fuse, mount(2) it on the merged
 * directory, and serve the session until the kernel ends it (umount, or an
 * abort). Requests are read on the JS thread's event loop (session.ts);
 * OVERLAYTS_FUSE_READERS=threads reads them on native threads instead, and
 * with FUSE over io_uring (`-o uring=`, where the kernel offers it) they
 * come through the ring's queues, on the event loop too.
 *
 * Mount options, as a kernel overlayfs mount behaves:
 * - default_permissions: the kernel checks permissions against the
 *   attributes we report, for every caller, as for any local filesystem;
 * - allow_other as root: every user sees the mount; suid and dev as root.
 * Without root, fusermount3 mounts (see mountWithFusermount).
 *
 * Unmounting runs umount(8) (fusermount3 -u when not root) in a child
 * process: an unmount may wait on requests that only this thread answers.
 */
import { execFile, spawn } from 'node:child_process'
import { closeSync } from 'node:fs'
import type { Overlay } from '../../overlay/overlay.js'
import { IoStats } from '../io-stats.js'
import type { FuseMount, FuseMountOptions } from '../mount.js'
import { IO_STATS_SIGNAL } from '../mount.js'
import * as device from './device.js'
import { KernelOps } from './ops.js'
import type { ReaderMode } from './session.js'
import { Session } from './session.js'

/**
 * How long the kernel may cache entries and attributes by default. Every
 * change is made by this daemon, through the kernel, and side effects the
 * kernel cannot see are invalidated (ops.ts): nothing else changes the tree.
 */
export const DEFAULT_CACHE_TIMEOUT = 3600

/** Reader threads (device fds) in 'threads' mode. */
const READER_THREADS = 2

/** How requests are read (session.ts); OVERLAYTS_FUSE_READERS=poll|threads overrides, for measuring. */
const READER_MODE: ReaderMode = process.env.OVERLAYTS_FUSE_READERS === 'threads' ? 'threads' : 'poll'

/** HANDLE_KILLPRIV_V2 (session.ts); OVERLAYTS_FUSE_KILLPRIV_V2=off leaves it out, for measuring. */
const KILLPRIV_V2 = process.env.OVERLAYTS_FUSE_KILLPRIV_V2 !== 'off'
/** EXPORT_SUPPORT (session.ts); OVERLAYTS_FUSE_EXPORT=off leaves it out, for comparing. */
const EXPORT_SUPPORT = process.env.OVERLAYTS_FUSE_EXPORT !== 'off'

const IS_ROOT = process.getuid?.() === 0

function runUnmount (merged: string, lazy: boolean): Promise<void> {
  const [cmd, args] = IS_ROOT
    ? ['umount', lazy ? ['-l', merged] : [merged]]
    : ['fusermount3', lazy ? ['-u', '-z', merged] : ['-u', merged]]
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _out, stderr) => err ? reject(new Error(stderr.trim() || err.message)) : resolve())
  })
}

/** As root: open /dev/fuse and mount(2) it (allow_other, as a kernel mount is for every user). */
function mountAsRoot (overlay: Overlay, o: FuseMountOptions): number {
  const fd = device.openDevice()
  const data = [`fd=${fd}`, 'rootmode=40000', 'user_id=0', 'group_id=0', 'default_permissions', 'allow_other'].join(',')
  try {
    device.mount(o.source, o.merged, 'fuse.overlayts', overlay.readOnly ? device.MS_RDONLY : 0, data)
  } catch (e) {
    closeSync(fd)
    throw e
  }
  return fd
}

/**
 * Without root: fusermount3 (setuid root) mounts and passes the /dev/fuse fd
 * back over a socket (_FUSE_COMMFD), as libfuse does. The mount is the
 * user's own (no allow_other unless /etc/fuse.conf allows it; not asked).
 */
async function mountWithFusermount (overlay: Overlay, o: FuseMountOptions): Promise<number> {
  const [ours, theirs] = device.socketpair()
  const escape = (v: string): string => v.replace(/[\\,]/g, (c) => '\\' + c)
  const opts = [`fsname=${escape(o.source)}`, 'subtype=overlayts', 'default_permissions', ...(overlay.readOnly ? ['ro'] : [])].join(',')
  let stderr = ''
  const exited = new Promise<number | null>((resolve, reject) => {
    const child = spawn('fusermount3', ['-o', opts, '--', o.merged], {
      stdio: ['ignore', 'ignore', 'pipe', theirs],
      env: { ...process.env, _FUSE_COMMFD: '3' }
    })
    child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
    child.on('error', reject)
    child.on('exit', (code) => resolve(code))
  })
  closeSync(theirs) // the child has its copy: its exit is then our end of file
  try {
    const code = await exited
    if (code !== 0) throw new Error(`fusermount3 failed (exit ${code}): ${stderr.trim()}`)
    return device.recvFd(ours)
  } finally {
    closeSync(ours)
  }
}

export async function mountKernel (overlay: Overlay, o: FuseMountOptions): Promise<FuseMount> {
  const ioStats = new IoStats()
  const fd = IS_ROOT ? mountAsRoot(overlay, o) : await mountWithFusermount(overlay, o)
  const fds = [fd]
  try {
    if (READER_MODE === 'threads') for (let i = 1; i < READER_THREADS; i++) fds.push(device.cloneDevice(fd))
  } catch (e) {
    o.log.warn({ err: (e as Error).message }, 'cannot clone the FUSE device; one reader thread')
  }

  const onSignal = (): void => ioStats.log(o.log, IO_STATS_SIGNAL)
  let ops: KernelOps | undefined
  const session = new Session(fds, {
    log: o.log,
    traceOps: o.traceOps,
    // Registering a backing file needs CAP_SYS_ADMIN: without root, no passthrough.
    passthrough: o.passthrough && IS_ROOT,
    readers: READER_MODE,
    uring: o.uring,
    killprivV2: KILLPRIV_V2,
    exportSupport: EXPORT_SUPPORT,
    ioStats,
    onEnd: () => {
      process.removeListener(IO_STATS_SIGNAL, onSignal)
      ioStats.log(o.log, 'unmount')
      ops?.closeAll()
      for (const f of fds) { try { closeSync(f) } catch { /* already closed */ } }
      o.onUnmounted()
    }
  })
  ops = new KernelOps(overlay, session, { log: o.log, cacheTimeout: o.attrTimeout ?? DEFAULT_CACHE_TIMEOUT, ioStats, traceOps: o.traceOps })
  session.start()
  process.on(IO_STATS_SIGNAL, onSignal)
  // mount(2) returned: the kernel answers lookups once INIT is answered, which
  // the readers do now; wait for it so the mount is live when we return.
  const n = await session.initialized()
  return {
    details: {
      transport: 'kernel',
      protocol: `7.${n.minor}`,
      passthrough: n.passthrough,
      maxWrite: n.maxWrite,
      // Where requests come from: 'io_uring' (one queue per CPU), or 'read' of the device.
      requests: n.requests,
      ...(n.requests === 'io_uring' ? { uringQueues: device.uringQueues() } : {}),
      ...(n.uringRefused !== undefined ? { uringRefused: n.uringRefused } : {}),
      // The device reader (INIT, FORGET and INTERRUPT still come this way with io_uring).
      readers: READER_MODE === 'poll' ? 'poll' : fds.length
    },
    unmount: () => runUnmount(o.merged, false),
    detach: () => runUnmount(o.merged, true),
    ioStats
  }
}
