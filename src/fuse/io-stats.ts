/**
 * Request-size counters for read and write: how big the requests are that the
 * kernel sends us. Bulk I/O should arrive in max_read / max_write (128 KiB)
 * requests; a regression in the mount options (no big_writes, a smaller
 * max_write) shows up here as a flood of 4 KiB requests.
 *
 * Each request is counted once, when it arrives, by the size the kernel asked
 * for (not the byte count answered: a read at EOF asks for more than it gets).
 * Sizes are grouped in power-of-two buckets keyed by the bucket's lower bound
 * in bytes ("131072" counts requests of 128 KiB up to 256 KiB - 1); "0" counts
 * zero-length requests.
 *
 * The counters live in the daemon's JS thread only (every FUSE request is
 * answered there), so plain numbers suffice: no locking, no atomics.
 */
import type { Logger } from 'pino'

export interface IoOpStats {
  requests: number
  /** Sum of the requested sizes. */
  bytes: number
  /** Smallest / largest request; null until the first request. */
  min: number | null
  max: number | null
  /** Power-of-two lower bound (bytes, as a string key) -> request count. */
  buckets: Record<string, number>
}

export interface IoStatsSnapshot {
  read: IoOpStats
  write: IoOpStats
  /** Requests by the path they came (kernel transport): read from /dev/fuse, or through io_uring. */
  requests: Record<RequestPath, number>
}

export type RequestPath = 'device' | 'io_uring'

function emptyOp (): IoOpStats {
  return { requests: 0, bytes: 0, min: null, max: null, buckets: {} }
}

/** Lower bound of `size`'s power-of-two bucket (0 for 0). */
export function bucketOf (size: number): number {
  if (size <= 0) return 0
  return 2 ** Math.floor(Math.log2(size))
}

export class IoStats {
  private read = emptyOp()
  private write = emptyOp()
  private requests: Record<RequestPath, number> = { device: 0, io_uring: 0 }

  countRequest (path: RequestPath): void {
    this.requests[path]++
  }

  count (op: 'read' | 'write', size: number): void {
    const s = op === 'read' ? this.read : this.write
    s.requests++
    s.bytes += size
    s.min = s.min === null ? size : Math.min(s.min, size)
    s.max = s.max === null ? size : Math.max(s.max, size)
    const key = String(bucketOf(size))
    s.buckets[key] = (s.buckets[key] ?? 0) + 1
  }

  snapshot (): IoStatsSnapshot {
    const copy = (s: IoOpStats): IoOpStats => ({ ...s, buckets: { ...s.buckets } })
    return { read: copy(this.read), write: copy(this.write), requests: { ...this.requests } }
  }

  /** One JSON line: {"msg":"io stats","reason":...,"read":{...},"write":{...}}. */
  log (log: Logger, reason: string): void {
    log.info({ reason, ...this.snapshot() }, 'io stats')
  }
}
