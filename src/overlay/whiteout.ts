/**
 * Writing the kernel's markers into upper. A Whiteout is a char device 0/0;
 * where one must replace an existing entry it is built in the work dir and
 * renamed over the entry, so an observer (or a crash) sees the old entry or
 * the whiteout, never neither.
 */
import { constants } from 'node:fs'
import type { Sys } from './sys/fs.js'

const S_IFCHR = constants.S_IFCHR

export class Whiteouts {
  private seq = 0

  constructor (private readonly sys: Sys, private readonly work: string) {}

  /** A fresh, unused name in the work dir. */
  scratch (): string {
    return `${this.work}/#ots${process.pid.toString(16)}-${(this.seq++).toString(16)}`
  }

  /** Creates a whiteout where there is nothing. */
  create (phys: string): void {
    this.sys.mknod(phys, S_IFCHR, 0)
  }

  /** Atomically replaces a non-directory in upper by a whiteout. */
  replaceFile (phys: string): void {
    const tmp = this.scratch()
    this.sys.mknod(tmp, S_IFCHR, 0)
    try {
      this.sys.rename(tmp, phys)
    } catch (e) {
      try { this.sys.unlink(tmp) } catch { /* scratch is garbage collected at mount */ }
      throw e
    }
  }

  /**
   * Atomically swaps an upper directory for a whiteout (or, with
   * `whiteout` false, just moves it away). Returns the directory's new
   * place in the work dir, for the caller to remove off the request path.
   */
  evictDir (phys: string, whiteout: boolean): string {
    const tmp = this.scratch()
    if (whiteout) {
      this.sys.mknod(tmp, S_IFCHR, 0)
      try {
        this.sys.renameat2(tmp, phys, 2 /* RENAME_EXCHANGE */)
      } catch (e) {
        try { this.sys.unlink(tmp) } catch { /* garbage collected at mount */ }
        throw e
      }
    } else {
      this.sys.rename(phys, tmp)
    }
    return tmp
  }
}
