/**
 * FUSE passthrough (Linux 6.9+): an open file is answered with a backing
 * file, and the kernel then reads, writes and maps it directly: the data
 * never reaches the daemon.
 *
 * The kernel's rules shape this module (fs/fuse/iomode.c): an inode open in
 * passthrough mode has one backing file for all its opens, and every open of
 * it must be passthrough; an inode open in caching mode (served by the
 * daemon) can get no passthrough open. So each node is in one mode while it
 * has open files, decided by its first open, and holds one backing id,
 * registered with the kernel (FUSE_DEV_IOC_BACKING_OPEN) at the first open
 * and dropped at the last release.
 *
 * Not passed through: a writable open of a setuid/setgid file, whose writes
 * must drop those bits as the caller's (the kernel would write it with the
 * daemon's credentials).
 */
import { fstatSync } from 'node:fs'
import type { Logger } from 'pino'
import * as device from './device.js'
import type { KNode } from './nodes.js'
import { FOPEN_PASSTHROUGH } from './protocol.js'
import type { Session } from './session.js'

const O_ACCMODE = 3
const S_ISUID = 0o4000
const S_ISGID = 0o2000

interface Backing {
  readonly id: number
  readonly dev: bigint
  readonly ino: bigint
  readonly fhs: Set<number>
}

/** How an open is served: through a backing file, or by the daemon ('cached'), or not at all ('stale'). */
export type IoMode = { readonly backingId: number, readonly openFlags: number } | 'cached' | 'stale'

export class Passthrough {
  private readonly backings = new Map<KNode, Backing>()
  /** Nodes open in caching mode, with their handles. */
  private readonly cached = new Map<KNode, Set<number>>()
  private failed = false

  constructor (private readonly session: Session, private readonly log: Logger) {}

  private get enabled (): boolean { return !this.failed && this.session.negotiated?.passthrough === true }

  /** The io mode of a new open `fh` of `node` on host fd `fd`. */
  modeFor (node: KNode, fh: number, fd: number, flags: number): IoMode {
    const b = this.backings.get(node)
    if (b !== undefined) {
      const st = fstatSync(fd, { bigint: true })
      if (st.dev !== b.dev || st.ino !== b.ino) return 'stale'
      b.fhs.add(fh)
      return { backingId: b.id, openFlags: FOPEN_PASSTHROUGH }
    }
    const cachedFhs = this.cached.get(node)
    const writable = (flags & O_ACCMODE) !== 0
    const privileged = ((node.attr?.mode ?? 0) & (S_ISUID | S_ISGID)) !== 0
    if (cachedFhs !== undefined || !this.enabled || (writable && privileged)) {
      this.cached.set(node, (cachedFhs ?? new Set()).add(fh))
      return 'cached'
    }
    let id: number
    try {
      id = device.backingOpen(this.session.devFd, fd)
    } catch (e) {
      // EPERM: no CAP_SYS_ADMIN, for every file: stop asking. Anything else
      // (EINVAL, ELOOP: a backing file on a stacked filesystem) is this file's.
      const everyFile = (e as NodeJS.ErrnoException).code === 'EPERM'
      this.log.warn({ err: (e as Error).message, node: node.id }, everyFile
        ? 'passthrough refused by the kernel; serving reads and writes in the daemon'
        : 'passthrough refused for this file; serving it in the daemon')
      if (everyFile) this.failed = true
      this.cached.set(node, new Set([fh]))
      return 'cached'
    }
    const st = fstatSync(fd, { bigint: true })
    this.backings.set(node, { id, dev: st.dev, ino: st.ino, fhs: new Set([fh]) })
    return { backingId: id, openFlags: FOPEN_PASSTHROUGH }
  }

  released (node: KNode, fh: number): void {
    const b = this.backings.get(node)
    if (b !== undefined && b.fhs.delete(fh) && b.fhs.size === 0) {
      this.backings.delete(node)
      this.close(b.id)
    }
    const c = this.cached.get(node)
    if (c !== undefined && c.delete(fh) && c.size === 0) this.cached.delete(node)
  }

  closeAll (): void {
    for (const b of this.backings.values()) this.close(b.id)
    this.backings.clear()
    this.cached.clear()
  }

  private close (id: number): void {
    try {
      device.backingClose(this.session.devFd, id)
    } catch { /* the connection is gone */ }
  }
}
