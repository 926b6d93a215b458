/**
 * Making things below a directory without ever following a symlink on the
 * way. Node's fs has no *at calls, so each operation names its object as
 * `/proc/self/fd/N/NAME`, N being an O_PATH descriptor of the parent opened
 * one component at a time from "/" with O_NOFOLLOW (the native
 * openDirChain): a symlink anywhere on the path is ELOOP/ENOTDIR, never
 * followed, and the last name is handled by the l*-style call itself.
 *
 * `root` must be a real path (no symlinks in it: the caller realpaths it).
 * Relative paths are byte strings, already cleaned (tar-safety.ts).
 */
import * as fs from 'node:fs'
import { openDirChain } from '../overlay/sys/native.js'

export class NoFollowRoot {
  #parent: { rel: string, fd: number } | undefined

  constructor (readonly root: string) {}

  /** A path naming `rel` through its parent's descriptor, usable until the next call. */
  at (rel: string): string {
    const slash = rel.lastIndexOf('/')
    const parentRel = slash < 0 ? '' : rel.slice(0, slash)
    const name = slash < 0 ? rel : rel.slice(slash + 1)
    return `/proc/self/fd/${this.#dirFd(parentRel)}/${name}`
  }

  /** The root itself, by descriptor. */
  self (): string {
    return `/proc/self/fd/${this.#dirFd('')}`
  }

  #dirFd (parentRel: string): number {
    if (this.#parent?.rel === parentRel) return this.#parent.fd
    this.close()
    const fd = openDirChain(parentRel === '' ? this.root : `${this.root}/${parentRel}`)
    this.#parent = { rel: parentRel, fd }
    return fd
  }

  /** Forget the cached parent (after anything below the root was removed or replaced). */
  close (): void {
    if (this.#parent !== undefined) fs.closeSync(this.#parent.fd)
    this.#parent = undefined
  }
}
