/**
 * A FUSE session on /dev/fuse: the INIT handshake, the request loop and the
 * replies. Requests are read by native code (device.ts) either on this
 * thread, when the event loop sees the device readable ('poll', the
 * default: one wake-up per request), or by native reader threads, one per
 * cloned device fd, that hand them over ('threads': a second wake-up, and
 * no faster here: measured with OVERLAYTS_FUSE_READERS=threads). Each is
 * decoded (wire.ts), handed to its handler (ops.ts) and answered on the fd
 * it came from.
 *
 * A handler returns a reply body (or a Framed buffer whose first 16 bytes are
 * left for the header, so read data is never copied), NO_REPLY, or a promise
 * of one of them; it throws an FsError (or any errno error) to answer an
 * errno. Every request but FORGET, BATCH_FORGET and INTERRUPT is answered
 * exactly once, whatever happens: a caller in the kernel waits on each.
 *
 * FUSE over io_uring (Linux 6.14+, fuse's enable_uring=1): where the kernel
 * offers FUSE_OVER_IO_URING and a ring can be set up, INIT accepts it and
 * then registers one queue of ring entries per CPU (native/fuse_uring.c).
 * From then on the kernel sends every request but FORGET and INTERRUPT
 * through the ring, still served on this thread's event loop, and each reply
 * is committed to its entry, which fetches the next request in the same
 * call. The device reader keeps running for the rest, and notifications
 * still go to the device. Where the kernel refuses, requests stay on the
 * device: `negotiated.requests` says which path a session uses.
 *
 * Replies are written synchronously: writing to /dev/fuse never waits.
 * A notification that drops cached data (a directory's listing) is written
 * from the thread pool instead: dropping pages may wait for a lock that a
 * request in flight holds, and that request waits for this thread. One that
 * drops only attributes touches no page and no lock a request holds (the
 * request that changed the inode pins it): it is written synchronously, so
 * the kernel has it before the reply to that request (written from the
 * thread pool, it could come after, and a stat right after an open that
 * copied up a lower hardlink saw the old nlink).
 */
import { write, writeSync } from 'node:fs'
import type { IoStats } from '../io-stats.js'
import type { Logger } from 'pino'
import { displayPath } from '../../overlay/bytes.js'
import { FsError, MarkerWriteError, toFsError } from '../../overlay/errors.js'
import * as device from './device.js'
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, InitFlag, INIT_OUT_SIZE, MAX_PAGES, MAX_WRITE, NotifyCode, Op, PASSTHROUGH_MINOR } from './protocol.js'
import { Request, reply } from './wire.js'

/** A reply whose buffer starts with OUT_HEADER_SIZE bytes left for the header. */
export class Framed {
  constructor (readonly buf: Buffer) {}
}

export const NO_REPLY = Symbol('no reply')

export type Answer = Buffer | Framed | typeof NO_REPLY | undefined
export type Handler = (req: Request) => Answer | Promise<Answer>

/** Errnos that are ordinary answers, not failures worth a warning. */
const ROUTINE = new Set(['ENOENT', 'ENODATA', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EROFS', 'EOPNOTSUPP', 'EACCES', 'EPERM', 'ENAMETOOLONG', 'EINVAL', 'EXDEV', 'ENOSYS', 'ERANGE', 'ENOTTY', 'ESTALE'])

const ENOSYS = 38
const ENODEV = 19

/** What INIT settled with the kernel. */
export interface Negotiated {
  readonly minor: number
  readonly flags: bigint
  readonly passthrough: boolean
  readonly maxWrite: number
  /** Where requests come from: the io_uring queues, or reads of /dev/fuse. */
  readonly requests: 'io_uring' | 'read'
  /** Why not io_uring, when it was not off by option. */
  readonly uringRefused?: string
}

/** `-o uring=`: auto (use it where the kernel offers it), on (the same, and warn if not), off (the default). */
export type UringMode = 'auto' | 'on' | 'off'

const ENOTCONN = 107
const ECANCELED = 125

export interface SessionOptions {
  readonly log: Logger
  readonly traceOps: boolean
  /** Ask for passthrough (the kernel must offer it, and the daemon must hold CAP_SYS_ADMIN). */
  readonly passthrough: boolean
  /** Called once, when the connection ends (unmount or abort). */
  readonly onEnd: (errno: number) => void
  /**
   * How requests are read: 'poll', on this thread when the event loop sees
   * the device readable; 'threads', by one native thread per device fd,
   * handed over to this thread.
   */
  readonly readers: ReaderMode
  /** Whether to take requests through io_uring where the kernel offers it. */
  readonly uring: UringMode
  /** Counts the requests of each path (io stats). */
  readonly ioStats: IoStats
  /**
   * Ask for HANDLE_KILLPRIV_V2: the daemon drops setuid/setgid where the
   * kernel flags a change (ops.ts), and the kernel skips its per-write
   * security.capability lookup once a file is known to have none.
   */
  readonly killprivV2: boolean
  /** Ask for EXPORT_SUPPORT: LOOKUP of "." and ".." answered (ops.ts), so file handles reach the daemon. */
  readonly exportSupport: boolean
}

export type ReaderMode = 'poll' | 'threads'

/** The operation's name in logs, as in the fuse-native transport's: 'lookup', 'rmdir', ... */
export function opName (opcode: number): string {
  return (Op[opcode] ?? String(opcode)).toLowerCase()
}

export class Session {
  private handlers: Array<Handler | undefined> = []
  /** The merged path of a node id, for logs (set by the ops table). */
  pathOf: (nodeid: number) => string | undefined = () => undefined
  private ended = false
  negotiated: Negotiated | undefined
  private initWaiters: Array<(n: Negotiated) => void> = []
  private ring: device.UringHandle | undefined

  /** `fds[0]` is the mounted device fd; the others are its clones. */
  constructor (readonly fds: readonly number[], private readonly opts: SessionOptions) {}

  get devFd (): number { return this.fds[0]! }

  on (op: Op, h: Handler): void { this.handlers[op] = h }

  start (): void {
    const onRequest: device.RequestCallback = (channel, buf, errno) => {
      if (buf === null) { this.end(errno); return }
      this.opts.ioStats.countRequest('device')
      this.dispatch(new Request(buf, this.fds[channel]!))
    }
    // The readers run until the kernel ends the connection (unmount, abort).
    if (this.opts.readers === 'poll') device.startPoll(this.devFd, MAX_WRITE + 4096, onRequest)
    else device.startReaders([...this.fds], MAX_WRITE + 4096, onRequest)
  }

  /** Resolves once the kernel's INIT is answered. */
  initialized (): Promise<Negotiated> {
    if (this.negotiated !== undefined) return Promise.resolve(this.negotiated)
    return new Promise((resolve) => this.initWaiters.push(resolve))
  }

  /**
   * Tells the kernel an inode's cached attributes are stale (off -1: no
   * data). Written synchronously, before the reply (see the top of this file).
   */
  invalidateAttr (nodeid: number): void {
    const body = Buffer.alloc(24)
    body.writeBigUInt64LE(BigInt(nodeid), 0)
    body.writeBigInt64LE(-1n, 8)
    body.writeBigInt64LE(0n, 16)
    this.notify(NotifyCode.INVAL_INODE, body, true)
  }

  /** Tells the kernel an inode's cached data (a directory's cached listing) is stale. From the thread pool. */
  invalidateData (nodeid: number): void {
    const body = Buffer.alloc(24)
    body.writeBigUInt64LE(BigInt(nodeid), 0)
    this.notify(NotifyCode.INVAL_INODE, body, false) // off 0, len 0: all of it
  }

  private notify (code: NotifyCode, body: Buffer, sync: boolean): void {
    if (this.ended) return
    // A notification is a reply with unique 0 and the code in the error field.
    const msg = reply(0n, code, body)
    const done = (err: NodeJS.ErrnoException | null): void => {
      // ENOENT: the inode is no longer cached, nothing to drop.
      if (err !== null && err.code !== 'ENOENT' && !this.ended) {
        this.opts.log.warn({ err: err.message, code }, 'notification failed')
      }
    }
    if (!sync) { write(this.devFd, msg, done); return }
    try { writeSync(this.devFd, msg); done(null) } catch (e) { done(e as NodeJS.ErrnoException) }
  }

  private dispatch (req: Request): void {
    const op = req.opcode
    if (op === Op.INIT) { this.init(req); return }
    const h = this.handlers[op]
    if (h === undefined) { this.send(req, -ENOSYS); return }
    let result: Answer | Promise<Answer>
    try {
      result = h(req)
    } catch (e) { this.fail(req, e); return }
    if (result instanceof Promise) result.then((a) => this.answer(req, a), (e) => this.fail(req, e))
    else this.answer(req, result)
  }

  private answer (req: Request, a: Answer): void {
    if (a === NO_REPLY) return
    if (this.opts.traceOps) this.opts.log.debug({ op: opName(req.opcode), path: displayPath(this.logPath(req.nodeid)) }, 'op')
    if (a instanceof Framed) {
      const b = a.buf
      b.writeUInt32LE(b.length, 0)
      b.writeInt32LE(0, 4)
      b.writeBigUInt64LE(req.unique, 8)
      this.replyTo(req, b)
    } else {
      this.replyTo(req, reply(req.unique, 0, a))
    }
  }

  private fail (req: Request, e: unknown): void {
    // An FsError names the merged path; anything else (a bug) is logged at the node's path.
    const err = e instanceof FsError ? e : toFsError(e, this.logPath(req.nodeid))
    const op = opName(req.opcode)
    const path = displayPath(err.path)
    if (!(e instanceof FsError) && err.code === 'EIO') {
      this.opts.log.error({ op, path, errno: err.code, err: e }, 'operation failed unexpectedly')
    } else if (err instanceof MarkerWriteError) {
      this.opts.log.error({ op, path, errno: err.code, marker: err.marker, form: err.form }, 'cannot write an overlay marker in upper')
    } else if (!ROUTINE.has(err.code)) {
      this.opts.log.warn({ op, path, errno: err.code }, 'operation failed')
    } else if (this.opts.traceOps) {
      this.opts.log.debug({ op, path, errno: err.code }, 'op')
    }
    this.send(req, -err.errno)
  }

  private logPath (nodeid: number): string {
    const rel = this.pathOf(nodeid)
    return rel === undefined ? `(node ${nodeid})` : '/' + rel
  }

  private send (req: Request, error: number): void {
    this.replyTo(req, reply(req.unique, error))
  }

  /** A reply goes back the way its request came: its ring entry, or the device fd it was read from. */
  private replyTo (req: Request, b: Buffer): void {
    if (req.ringEntry >= 0) {
      if (this.ring !== undefined) device.uringCommit(this.ring, req.ringEntry, b)
    } else {
      this.write(req.channel, b)
    }
  }

  private write (fd: number, b: Buffer): void {
    try {
      writeSync(fd, b)
    } catch (e) {
      // ENOENT: the request was interrupted and is gone; ENODEV: unmounted.
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENODEV') this.opts.log.error({ err: (e as Error).message }, 'reply failed')
    }
  }

  /** The INIT handshake: the highest protocol both sides know, and the features overlayts wants. */
  private init (req: Request): void {
    const major = req.u32()
    const kminor = req.u32()
    const maxReadahead = req.u32()
    const flagsLo = req.u32()
    let offered = BigInt(flagsLo)
    if ((offered & InitFlag.INIT_EXT) !== 0n && req.len >= 40 + 24) offered |= BigInt(req.u32()) << 32n
    if (major !== FUSE_KERNEL_VERSION) {
      // Tell the kernel our major version; it retries or gives up.
      this.opts.log.error({ major }, 'kernel FUSE major version not supported')
      const body = Buffer.alloc(8)
      body.writeUInt32LE(FUSE_KERNEL_VERSION, 0)
      body.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 4)
      this.write(req.channel, reply(req.unique, 0, body))
      return
    }
    const minor = Math.min(kminor, FUSE_KERNEL_MINOR_VERSION)
    let want = InitFlag.ASYNC_READ | InitFlag.ATOMIC_O_TRUNC | InitFlag.BIG_WRITES |
      InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO | InitFlag.PARALLEL_DIROPS |
      InitFlag.MAX_PAGES | InitFlag.CACHE_SYMLINKS | InitFlag.SETXATTR_EXT | InitFlag.INIT_EXT |
      InitFlag.ASYNC_DIO | InitFlag.ABORT_ERROR
    if (this.opts.killprivV2) want |= InitFlag.HANDLE_KILLPRIV_V2
    if (this.opts.exportSupport) want |= InitFlag.EXPORT_SUPPORT
    if (this.opts.passthrough && minor >= PASSTHROUGH_MINOR) want |= InitFlag.PASSTHROUGH
    // The ring is set up before it is accepted: once INIT accepts it, the
    // kernel holds every request back until the ring's queues are registered.
    let uringRefused: string | undefined
    if (this.opts.uring === 'off') uringRefused = undefined
    else if ((offered & InitFlag.OVER_IO_URING) === 0n) uringRefused = 'the kernel does not offer FUSE_OVER_IO_URING (Linux < 6.14, or fuse enable_uring=0)'
    else {
      try {
        this.ring = device.uringSetup(this.devFd, MAX_WRITE)
        want |= InitFlag.OVER_IO_URING
      } catch (e) {
        uringRefused = `io_uring setup failed: ${(e as Error).message}`
      }
    }
    const flags = want & offered
    const passthrough = (flags & InitFlag.PASSTHROUGH) !== 0n
    const out = Buffer.alloc(INIT_OUT_SIZE)
    out.writeUInt32LE(FUSE_KERNEL_VERSION, 0)
    out.writeUInt32LE(minor, 4)
    out.writeUInt32LE(maxReadahead, 8)
    out.writeUInt32LE(Number(flags & 0xffffffffn), 12)
    out.writeUInt16LE(64, 16) // max_background
    out.writeUInt16LE(48, 18) // congestion_threshold
    out.writeUInt32LE(MAX_WRITE, 20)
    out.writeUInt32LE(1, 24) // time_gran: nanoseconds
    out.writeUInt16LE(MAX_PAGES, 28)
    out.writeUInt16LE(0, 30)
    out.writeUInt32LE(Number(flags >> 32n), 32)
    // max_stack_depth: backing files live on a plain filesystem (depth 0).
    out.writeUInt32LE(passthrough ? 1 : 0, 36)
    this.opts.log.debug({ protocol: `7.${minor}`, kernel: `7.${kminor}`, flags: flags.toString(16) }, 'FUSE session initialized')
    this.write(req.channel, reply(req.unique, 0, out))
    // The kernel took the reply in the write: the connection is initialized, and the ring may register.
    if (this.ring !== undefined) {
      const errno = device.uringStart(this.ring, (entry, buf, err) => this.fromRing(entry, buf, err))
      if (errno !== 0) {
        // The kernel turned io_uring off for this connection: requests stay on the device.
        uringRefused = `the kernel refused the ring's registration (errno ${errno})`
        device.uringStop(this.ring)
        this.ring = undefined
      }
    }
    if (uringRefused !== undefined && this.opts.uring === 'on') this.opts.log.warn({ reason: uringRefused }, 'uring=on, but requests are read from the device')
    const requests = this.ring !== undefined ? 'io_uring' : 'read'
    this.negotiated = { minor, flags, passthrough, maxWrite: MAX_WRITE, requests, ...(uringRefused !== undefined ? { uringRefused } : {}) }
    for (const w of this.initWaiters.splice(0)) w(this.negotiated)
  }

  /** A request from a ring entry, or (entry -1) an entry's end. */
  private fromRing (entry: number, buf: Buffer | null, errno: number): void {
    if (buf === null) {
      if (!this.ended && errno !== ENOTCONN && errno !== ECANCELED) this.opts.log.warn({ errno }, 'io_uring entry failed')
      return
    }
    this.opts.ioStats.countRequest('io_uring')
    this.dispatch(new Request(buf, this.devFd, entry))
  }

  private end (errno: number): void {
    if (this.ended) return
    this.ended = true
    if (this.ring !== undefined) { device.uringStop(this.ring); this.ring = undefined }
    if (errno !== ENODEV && errno !== 0) this.opts.log.warn({ errno }, 'FUSE device read failed; session ends')
    this.opts.onEnd(errno)
  }
}

