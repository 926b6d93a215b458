/**
 * The device half of the direct /dev/fuse transport (no libfuse): open and
 * clone /dev/fuse, mount(2)/umount2(2), the passthrough backing-file ioctls,
 * readers that hand every request read from the device to JS as a Buffer,
 * and FUSE over io_uring (the same requests and replies through a ring). Decoding requests and writing replies (fs.writeSync(fd, reply), one
 * whole reply per write) is done elsewhere in TypeScript.
 *
 * Typed wrapper around native/fuse_dev.c, part of the project's addon (loaded
 * by src/overlay/sys/addon.ts). All calls are synchronous and throw Node-style
 * errno errors (code 'ENODEV', errno -19, syscall 'ioctl'; path for mount/umount2).
 *
 * Deadlock rule: the process serving a mount must never touch that mount
 * synchronously on the JS thread (stat, read, a waiting umount2 that may
 * flush data) while the request it would wait for can only be answered by
 * that same thread.
 */
import { loadAddon } from '../../overlay/sys/addon.js'

declare const readerHandleBrand: unique symbol
declare const uringHandleBrand: unique symbol
/** Opaque handle of a FUSE-over-io_uring ring (from uringSetup). */
export interface UringHandle { readonly [uringHandleBrand]: never }

/** Opaque handle of a set of reader threads (from startReaders). */
export interface ReaderHandle { readonly [readerHandleBrand]: never }

/**
 * Called on the JS thread for every request read: channel is the index of the
 * fd in the `fds` passed to startReaders, req the whole request (header and
 * body), errno 0. After every reader stopped it is called once more, last,
 * with (-1, null, errno): errno is the first nonzero errno a reader stopped
 * with (ENODEV after unmount, ECONNABORTED after an abort), or 0 if all
 * stopped because of stopReaders().
 */
export type RequestCallback = (channel: number, req: Buffer | null, errno: number) => void

interface FuseDevBinding {
  fuseOpenDevice(): number
  fuseCloneDevice(masterFd: number): number
  fuseSocketpair(): [number, number]
  fuseRecvFd(sock: number): number
  mount(source: string, target: string | Buffer, fstype: string, flags: number, data: string): void
  umount2(target: string | Buffer, flags: number): void
  fuseBackingOpen(devFd: number, fd: number): number
  fuseBackingClose(devFd: number, backingId: number): void
  fuseStartReaders(fds: number[], bufSize: number, onRequest: RequestCallback): ReaderHandle
  fuseStopReaders(handle: ReaderHandle): void
  fuseStartPoll(fd: number, bufSize: number, onRequest: RequestCallback): void
  fuseUringQueues(): number
  fuseUringSetup(devFd: number, payloadSize: number): UringHandle
  fuseUringStart(handle: UringHandle, onRequest: RequestCallback): number
  fuseUringCommit(handle: UringHandle, entry: number, reply: Buffer): void
  fuseUringStop(handle: UringHandle): void
  readonly MS_RDONLY: number
  readonly MS_NOSUID: number
  readonly MS_NODEV: number
  readonly MS_NOEXEC: number
  readonly MS_SYNCHRONOUS: number
  readonly MS_DIRSYNC: number
  readonly MS_NOATIME: number
  readonly MS_NODIRATIME: number
  readonly MNT_FORCE: number
  readonly MNT_DETACH: number
  readonly UMOUNT_NOFOLLOW: number
}

function load (): FuseDevBinding {
  const binding = loadAddon() as Partial<FuseDevBinding>
  if (typeof binding.fuseStartReaders !== 'function') {
    throw new Error('overlayts: the native addon predates the /dev/fuse transport; rebuild it with `node scripts/build-native.mjs`')
  }
  return binding as FuseDevBinding
}

const binding = load()

/** open("/dev/fuse", O_RDWR | O_CLOEXEC): a new, unmounted connection fd. */
export function openDevice (): number {
  return binding.fuseOpenDevice()
}

/**
 * A new /dev/fuse fd attached to the same connection as `masterFd`
 * (FUSE_DEV_IOC_CLONE), for one more reader queue. `masterFd` must already be
 * mounted (else EINVAL). The caller closes it.
 */
export function cloneDevice (masterFd: number): number {
  return binding.fuseCloneDevice(masterFd)
}

/** An AF_UNIX stream socket pair (close-on-exec), to hand one end to fusermount3. */
export function socketpair (): [number, number] {
  return binding.fuseSocketpair()
}

/** Receives one fd passed with SCM_RIGHTS (blocks; the mounted /dev/fuse fd from fusermount3). */
export function recvFd (sock: number): number {
  return binding.fuseRecvFd(sock)
}

/**
 * mount(2). For FUSE: mount('overlayts', dir, 'fuse.overlayts', MS_NOSUID | MS_NODEV,
 * `fd=${fd},rootmode=40000,user_id=0,group_id=0[,allow_other,default_permissions]`).
 * The kernel queues FUSE_INIT on the device; the call does not wait for it.
 */
export function mount (source: string, target: string | Buffer, fstype: string, flags: number, data: string): void {
  binding.mount(source, target, fstype, flags, data)
}

/**
 * umount2(2); flags: MNT_DETACH | MNT_FORCE | UMOUNT_NOFOLLOW (or 0). Without
 * MNT_DETACH the kernel may send requests (flushes) and wait for their answer:
 * never do that on the JS thread that answers them.
 */
export function umount2 (target: string | Buffer, flags: number): void {
  binding.umount2(target, flags)
}

/**
 * FUSE_DEV_IOC_BACKING_OPEN: registers `fd` as a passthrough backing file of
 * the connection of `devFd`; returns the backing id (> 0) to put in an open
 * reply (FOPEN_PASSTHROUGH). Needs FUSE_PASSTHROUGH accepted in the INIT
 * reply and CAP_SYS_ADMIN (else EPERM). `fd` may be closed afterwards.
 */
export function backingOpen (devFd: number, fd: number): number {
  return binding.fuseBackingOpen(devFd, fd)
}

/** FUSE_DEV_IOC_BACKING_CLOSE: drops the connection's reference to a backing id. */
export function backingClose (devFd: number, backingId: number): void {
  binding.fuseBackingClose(devFd, backingId)
}

/**
 * Starts one reader thread per fd, each reading with a `bufSize`-byte buffer
 * (>= 8192; use at least max_write + 4096). See RequestCallback for what is
 * delivered. The readers keep the event loop alive until they all stopped
 * (after unmount or abort) or stopReaders() was called.
 */
export function startReaders (fds: number[], bufSize: number, onRequest: RequestCallback): ReaderHandle {
  return binding.fuseStartReaders(fds, bufSize, onRequest)
}

/**
 * Asks the readers to stop and lets the process exit without them; never
 * blocks. Readers blocked in read() return only when the mount goes away
 * (umount2/abort): do that next. Requests already read are still delivered.
 */
export function stopReaders (handle: ReaderHandle): void {
  binding.fuseStopReaders(handle)
}

/**
 * Reads `fd` on the JS thread itself: the fd is made O_NONBLOCK and watched
 * by the event loop; every request read is handed to onRequest(0, req, 0)
 * there, and the end as onRequest(-1, null, errno). No thread hop per request.
 */
export function startPoll (fd: number, bufSize: number, onRequest: RequestCallback): void {
  binding.fuseStartPoll(fd, bufSize, onRequest)
}

/**
 * FUSE over io_uring (native/fuse_uring.c, whose contract this follows): the
 * number of queues the kernel wants, one per possible CPU.
 */
export function uringQueues (): number {
  return uringBinding().fuseUringQueues()
}

/** An addon built before native/fuse_uring.c has no ring: io_uring is then unavailable, not an error. */
function uringBinding (): FuseDevBinding {
  if (typeof binding.fuseUringSetup !== 'function') throw new Error('the native addon predates FUSE over io_uring; rebuild it with `node scripts/build-native.mjs`')
  return binding
}

/**
 * Sets up the ring and its entries' buffers for the connection of `devFd`
 * (nothing registered yet). Throws where io_uring is unavailable. Call it
 * before answering INIT, and accept FUSE_OVER_IO_URING only if it worked.
 */
export function uringSetup (devFd: number, payloadSize: number): UringHandle {
  return uringBinding().fuseUringSetup(devFd, payloadSize)
}

/**
 * After the INIT reply accepting FUSE_OVER_IO_URING: registers every entry
 * and serves the ring on this thread's event loop. Requests come as
 * onRequest(entry, req, 0), each to be answered once with uringCommit; an
 * entry's end as onRequest(-1, null, errno). Returns 0, or the errno of a
 * registration the kernel refused (the connection then stays on device
 * reads: uringStop the ring).
 */
export function uringStart (handle: UringHandle, onRequest: RequestCallback): number {
  return binding.fuseUringStart(handle, onRequest)
}

/** Answers the request in ring entry `entry` with `reply` (out header + body) and fetches the next. */
export function uringCommit (handle: UringHandle, entry: number, reply: Buffer): void {
  binding.fuseUringCommit(handle, entry, reply)
}

/** Stops serving and closes the ring, once the connection has ended. */
export function uringStop (handle: UringHandle): void {
  binding.fuseUringStop(handle)
}

export const MS_RDONLY: number = binding.MS_RDONLY
export const MS_NOSUID: number = binding.MS_NOSUID
export const MS_NODEV: number = binding.MS_NODEV
export const MS_NOEXEC: number = binding.MS_NOEXEC
export const MS_SYNCHRONOUS: number = binding.MS_SYNCHRONOUS
export const MS_DIRSYNC: number = binding.MS_DIRSYNC
export const MS_NOATIME: number = binding.MS_NOATIME
export const MS_NODIRATIME: number = binding.MS_NODIRATIME
export const MNT_FORCE: number = binding.MNT_FORCE
export const MNT_DETACH: number = binding.MNT_DETACH
export const UMOUNT_NOFOLLOW: number = binding.UMOUNT_NOFOLLOW
