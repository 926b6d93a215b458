/**
 * The upper layer's markers, read and written in the form chosen at mount
 * (upper-form.ts, markers.ts). Where a marker must replace an existing entry
 * the change is ordered so that an observer (or a crash) sees the old entry
 * or the new state, never neither:
 *
 * - kernel and userxattr forms: a char 0/0 whiteout is built in the work dir
 *   and renamed over the entry;
 * - oci form: the `.wh.NAME` file is made first (it hides only the lowers,
 *   so the upper entry still shows), then the entry is removed; an entry
 *   made where `.wh.NAME` stands is made first, then the marker removed.
 *
 * In the oci form every `.wh.*` name in upper is a marker: none is shown
 * through the mount, and making one through it is EINVAL (as fuse-overlayfs
 * answers), so a user cannot forge a whiteout.
 */
import { constants } from 'node:fs'
import { errnoOf, MarkerWriteError } from './errors.js'
import type { OverlayXattrs } from './markers.js'
import { isWhiteoutStat, OCI_OPAQUE_MARKER, OCI_UPPER_XATTRS, OCI_WHITEOUT_PREFIX, TRUSTED_XATTRS, USER_XATTRS } from './markers.js'
import type { Stats, Sys } from './sys/fs.js'
import type { UpperForm } from './upper-form.js'

const S_IFCHR = constants.S_IFCHR
const NAME_MAX = 255
const RENAME_EXCHANGE = 2

/** What a listing of an upper directory shows, and which names it hides from the lowers. */
export interface UpperListing {
  readonly shown: Array<[string, Stats]>
  /** Every name the upper holds or whites out: the lowers' entries of these names are not shown. */
  readonly hidden: Set<string>
}

export class UpperMarkers {
  private seq = 0
  /** The overlay's own xattrs in upper, and the mapping of names asked for through the mount. */
  readonly xattrs: OverlayXattrs
  /** Directories with lower parts can be renamed (a redirect records where their lower parts are). */
  readonly redirects: boolean
  private readonly oci: boolean

  constructor (private readonly sys: Sys, private readonly work: string | undefined, readonly form: UpperForm) {
    this.xattrs = form === 'kernel' ? TRUSTED_XATTRS : form === 'userxattr' ? USER_XATTRS : OCI_UPPER_XATTRS
    this.redirects = form !== 'userxattr'
    this.oci = form === 'oci'
  }

  /** A fresh, unused name in the work dir. */
  scratch (): string {
    return `${this.work!}/#ots${process.pid.toString(16)}-${(this.seq++).toString(16)}`
  }

  // ------------------------------------------------------------- reading

  /** A name in upper that is a marker, never an entry (oci form: `.wh.*`). */
  isMarkerName (name: string): boolean {
    return this.oci && name.startsWith(OCI_WHITEOUT_PREFIX)
  }

  /** Whether a name may be made through the mount (EINVAL otherwise). */
  canMake (name: string): boolean {
    return !this.isMarkerName(name)
  }

  /** Is NAME whited out in upper dir `dirPhys` (where upper holds no entry NAME)? */
  hasWhiteoutFile (dirPhys: string, name: string): boolean {
    // A name too long for a `.wh.` prefix cannot have been whited out (NAME_MAX).
    if (!this.oci || name.length + OCI_WHITEOUT_PREFIX.length > NAME_MAX) return false
    return this.sys.exists(`${dirPhys}/${OCI_WHITEOUT_PREFIX}${name}`)
  }

  // ------------------------------------------------------------- xattr names

  /**
   * The layers' name for an xattr asked for through the mount, or the
   * kernel's errno (markers.ts). In the oci form both the upper's private
   * namespace and the lowers' (trusted.overlay.*) are escaped.
   */
  xattrOnDisk (name: string): string | 'EINVAL' | 'EOPNOTSUPP' {
    return this.namespaceOf(name).onDisk(name)
  }

  /** How an xattr found in a layer shows through the mount: undefined when it is a marker or bookkeeping. */
  xattrThroughMount (name: string): string | undefined {
    return this.namespaceOf(name).throughMount(name)
  }

  /** The overlay's own xattrs, in the upper's form and, in the oci form, the lowers' too. */
  isPrivateXattr (name: string): boolean {
    return this.namespaceOf(name).isPrivate(name)
  }

  private namespaceOf (name: string): OverlayXattrs {
    return this.oci && name.startsWith(TRUSTED_XATTRS.prefix) ? TRUSTED_XATTRS : this.xattrs
  }

  isOpaque (phys: string): boolean {
    const v = this.sys.lgetxattr(phys, this.xattrs.opaque)
    if (v !== undefined && v.length === 1 && v[0] === 0x79 /* 'y' */) return true
    return this.oci && this.sys.exists(`${phys}/${OCI_OPAQUE_MARKER}`)
  }

  redirectOf (phys: string): string | undefined {
    return this.sys.lgetxattr(phys, this.xattrs.redirect)?.toString('latin1')
  }

  /** The upper dir's entries as the mount shows them, and the names hidden from the lowers. */
  list (dirPhys: string): UpperListing {
    const shown: Array<[string, Stats]> = []
    const hidden = new Set<string>()
    for (const name of this.sys.readdirNames(dirPhys)) {
      if (this.isMarkerName(name)) {
        if (name !== OCI_OPAQUE_MARKER) hidden.add(name.slice(OCI_WHITEOUT_PREFIX.length))
        continue
      }
      const st = this.sys.lstat(dirPhys + '/' + name)
      if (st === undefined) continue
      hidden.add(name)
      if (!isWhiteoutStat(st)) shown.push([name, st])
    }
    return { shown, hidden }
  }

  // ------------------------------------------------------------- writing

  /** Whites out NAME in upper dir `dirPhys`, where upper holds nothing of that name. */
  createWhiteout (dirPhys: string, name: string): void {
    this.writing('whiteout', () => {
      if (this.oci) this.makeWhiteoutFile(dirPhys, name)
      else this.sys.mknod(`${dirPhys}/${name}`, S_IFCHR, 0)
    })
  }

  /** Replaces the non-directory NAME in upper by a whiteout. */
  replaceWithWhiteout (dirPhys: string, name: string): void {
    this.writing('whiteout', () => this.replaceWithWhiteoutNow(dirPhys, name))
  }

  private replaceWithWhiteoutNow (dirPhys: string, name: string): void {
    const phys = `${dirPhys}/${name}`
    if (this.oci) {
      this.makeWhiteoutFile(dirPhys, name)
      this.sys.unlink(phys)
      return
    }
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
   * Moves the upper directory NAME away into the work dir, leaving a
   * whiteout if `whiteout`. Returns its new place, for the caller to remove
   * off the request path.
   */
  evictDir (dirPhys: string, name: string, whiteout: boolean): string {
    return this.writing('whiteout', () => this.evictDirNow(dirPhys, name, whiteout))
  }

  private evictDirNow (dirPhys: string, name: string, whiteout: boolean): string {
    const phys = `${dirPhys}/${name}`
    const tmp = this.scratch()
    if (whiteout && !this.oci) {
      this.sys.mknod(tmp, S_IFCHR, 0)
      try {
        this.sys.renameat2(tmp, phys, RENAME_EXCHANGE)
      } catch (e) {
        try { this.sys.unlink(tmp) } catch { /* garbage collected at mount */ }
        throw e
      }
      return tmp
    }
    if (whiteout) this.makeWhiteoutFile(dirPhys, name)
    this.sys.rename(phys, tmp)
    return tmp
  }

  /** After an entry was made at NAME where a `.wh.NAME` stood (oci form): the marker goes. */
  dropWhiteoutFile (dirPhys: string, name: string): void {
    if (!this.oci || name.length + OCI_WHITEOUT_PREFIX.length > NAME_MAX) return
    try {
      this.sys.unlink(`${dirPhys}/${OCI_WHITEOUT_PREFIX}${name}`)
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e
    }
  }

  setOpaque (phys: string): void {
    this.writing('opaque', () => {
      if (this.oci) this.makeEmptyFile(`${phys}/${OCI_OPAQUE_MARKER}`)
      else this.sys.lsetxattr(phys, this.xattrs.opaque, Buffer.from('y'))
    })
  }

  setRedirect (phys: string, value: string): void {
    this.writing('redirect', () => this.sys.lsetxattr(phys, this.xattrs.redirect, Buffer.from(value, 'latin1')))
  }

  /**
   * Runs a marker write; a refusal by the upper's filesystem becomes a
   * MarkerWriteError (logged as an error). A name that vanished or appeared
   * meanwhile (a concurrent change) stays an ordinary answer.
   */
  private writing<T> (marker: string, write: () => T): T {
    try {
      return write()
    } catch (e) {
      const code = errnoOf(e)
      if (code === undefined || code === 'ENOENT' || code === 'ENOTDIR' || code === 'EEXIST') throw e
      const syscall = (e as { syscall?: unknown }).syscall
      throw new MarkerWriteError(code, '', marker, this.form, typeof syscall === 'string' ? syscall : undefined)
    }
  }

  /** Removes the markers of an upper dir that the mount shows as empty (before a rename over it). */
  clearMarkers (phys: string): void {
    for (const name of this.sys.readdirNames(phys)) {
      if (this.isMarkerName(name)) { this.sys.unlink(phys + '/' + name); continue }
      const st = this.sys.lstat(phys + '/' + name)
      if (st !== undefined && isWhiteoutStat(st)) this.sys.unlink(phys + '/' + name)
    }
  }

  private makeWhiteoutFile (dirPhys: string, name: string): void {
    this.makeEmptyFile(`${dirPhys}/${OCI_WHITEOUT_PREFIX}${name}`)
  }

  private makeEmptyFile (phys: string): void {
    let fd: number
    try {
      fd = this.sys.openSync(phys, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    } catch (e) {
      if ((e as { code?: string }).code === 'EEXIST') return
      throw e
    }
    this.sys.closeSync(fd)
  }
}
