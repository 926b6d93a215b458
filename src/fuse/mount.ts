/**
 * Mounting an Overlay over FUSE, whichever transport serves it:
 *
 * - `kernel` (default): overlayts' own server of the kernel's FUSE protocol
 *   on /dev/fuse (src/fuse/kernel): node ids, bytes, every operation,
 *   passthrough;
 * - `fuse-native`: the patched libfuse 2 binding (src/fuse/fuse-native), the
 *   portable path-based fallback with the limits the README lists.
 *
 * Both answer with the same FuseMount, log the same `io stats` line at
 * unmount and on SIGUSR1, and call onUnmounted once, whoever unmounted.
 */
import type { Logger } from 'pino'
import type { Overlay } from '../overlay/overlay.js'
import type { IoStats } from './io-stats.js'

export interface FuseMountOptions {
  readonly merged: string
  /** What /proc/mounts shows as the source (fsname). */
  readonly source: string
  readonly log: Logger
  readonly traceOps: boolean
  readonly transport: 'kernel' | 'fuse-native'
  /** Seconds the kernel may cache entries and attributes; undefined: the transport's default. */
  readonly attrTimeout: number | undefined
  /** Kernel transport: hand the kernel backing files where it allows it. */
  readonly passthrough: boolean
  /** Kernel transport: take requests through FUSE over io_uring where the kernel offers it (auto, on), or never (off). */
  readonly uring: 'auto' | 'on' | 'off'
  /** Called once when the mount ends, whoever unmounted it. */
  readonly onUnmounted: () => void
}

export interface FuseMount {
  unmount(): Promise<void>
  /** Detaches the mount even while files are open (umount -l); the daemon may then exit. */
  detach(): Promise<void>
  /** The read/write request-size counters of this mount. */
  readonly ioStats: IoStats
  /** What the transport settled (logged with the mount): its name, protocol, passthrough. */
  readonly details: Readonly<Record<string, unknown>>
}

/** The signal that makes a mounted daemon log its io stats. */
export const IO_STATS_SIGNAL = 'SIGUSR1'

export async function mountFuse (overlay: Overlay, o: FuseMountOptions): Promise<FuseMount> {
  // Each transport loads only what it needs (fuse-native links libfuse 2).
  if (o.transport === 'fuse-native') return (await import('./fuse-native/mount.js')).mountFuseNative(overlay, o)
  return (await import('./kernel/mount.js')).mountKernel(overlay, o)
}
