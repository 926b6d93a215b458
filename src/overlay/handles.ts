/**
 * The open-file table. A handle number (FUSE's fh) maps to a host fd and the
 * merged path it was opened at. Handles follow renames, and a read-only
 * handle on a lower file moves onto the upper copy once that exists, so a
 * reader sees writes made through other handles after a copy-up, as with the
 * kernel's overlayfs.
 */
export interface FileHandle {
  fd: number
  rel: string
  inUpper: boolean
  readonly writable: boolean
  /**
   * The inode number shown for the file, fixed at open (the name may go
   * away); a copy-up that gives the file a new number (a lower hardlink)
   * moves the handle onto it.
   */
  ino: bigint
}

/** The path of a handle whose file has no name any more: matches no real path. */
const DETACHED = '\0detached'

export class HandleTable {
  private readonly handles = new Map<number, FileHandle>()
  private next = 1

  add (h: FileHandle): number {
    while (this.handles.has(this.next)) this.next = (this.next + 1) >>> 0
    const fh = this.next
    this.next = (this.next + 1) >>> 0
    this.handles.set(fh, h)
    return fh
  }

  get (fh: number): FileHandle | undefined {
    return this.handles.get(fh)
  }

  remove (fh: number): FileHandle | undefined {
    const h = this.handles.get(fh)
    this.handles.delete(fh)
    return h
  }

  get size (): number { return this.handles.size }

  /** Handles open at `rel` or below it. */
  * under (rel: string): Iterable<FileHandle> {
    for (const h of this.handles.values()) {
      if (h.rel === rel || h.rel.startsWith(rel + '/')) yield h
    }
  }

  /**
   * Detaches the handles open at exactly `rel` from every path (their file
   * was unlinked while open) and returns their numbers.
   */
  detach (rel: string): number[] {
    const out: number[] = []
    for (const [fh, h] of this.handles) {
      if (h.rel === rel) { h.rel = DETACHED; out.push(fh) }
    }
    return out
  }

  /** Re-labels handles after `from` was renamed to `to`. */
  renamed (from: string, to: string): void {
    for (const h of this.under(from)) h.rel = to + h.rel.slice(from.length)
  }

  all (): Iterable<FileHandle> { return this.handles.values() }
}
