/**
 * Overlay: every operation a process can make on the merged tree, with the
 * kernel overlayfs semantics (../shared/OVERLAY-RULES.md) and its on-disk
 * format. No FUSE types: operations take merged paths ('' = root), return
 * values, and throw FsError (an errno and the merged path).
 *
 * Errno contract, for every operation: ENOENT when a path (or a parent) is
 * not visible, ENOTDIR when a parent is not a directory, EROFS for a change
 * to a mount without upper, ENAMETOOLONG / EINVAL for bad names (see
 * paths.ts). Operation-specific errors are listed on each method.
 *
 * Metadata operations are synchronous; operations that may copy data (copy-up)
 * or do I/O are async. The caller (the FUSE ops table) runs both.
 */
import { constants } from 'node:fs'
import { FsError, toFsError } from './errors.js'
import { CopyUp } from './copy-up.js'
import type { FileHandle } from './handles.js'
import { HandleTable } from './handles.js'
import { InodeNumbers } from './inode.js'
import { privBitsToDrop } from './killpriv.js'
import type { Layer, LayerStack } from './layers.js'
import { baseOf, parentOf } from './layers.js'
import type { LowerView } from './lower-view.js'
import { isDirStat, ScanLowerView } from './lower-view.js'
import { isWhiteoutStat, xattrsOf } from './markers.js'
import type { Node } from './resolve.js'
import { Resolver } from './resolve.js'
import type { Stats, Sys } from './sys/fs.js'
import { sys } from './sys/fs.js'
import type { UpperForm } from './upper-form.js'
import { lowerXattrNamespace } from './upper-form.js'
import { UpperMarkers } from './upper-markers.js'

/** Who asks: the calling process's ids, as the kernel reports them. */
export interface Caller {
  readonly uid: number
  readonly gid: number
  readonly pid: number
}

/** Attributes as the mount shows them. */
export interface Attr {
  mode: number
  uid: number
  gid: number
  size: bigint
  nlink: number
  ino: bigint
  rdev: bigint
  blksize: number
  blocks: bigint
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

/** A directory entry as readdir shows it: name, type (S_IFMT bits) and inode number. */
export interface DirEntry {
  readonly name: string
  readonly mode: number
  readonly ino: bigint
}

export interface Timespec {
  readonly sec: number
  readonly nsec: number
}

export interface FsStats {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

const O_ACCMODE = 3
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const { O_RDONLY, O_TRUNC, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_SYNC, O_DSYNC, O_NOATIME, O_NONBLOCK } = constants
const S_IFMT = constants.S_IFMT
const S_IFDIR = constants.S_IFDIR
const S_IFREG = constants.S_IFREG
const RENAME_EXCHANGE = 2
/** O_TMPFILE (__O_TMPFILE | O_DIRECTORY); Node's fs.constants lacks it. */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY
const RENAME_WHITEOUT = 4
/**
 * The longest absolute redirect the kernel writes (its `redirect_max` module
 * parameter, 256 by default): a directory with lower parts whose absolute
 * redirect would be longer is not moved, EXDEV (userspace falls back to a
 * copy), as the kernel answers. A same-parent redirect (one name) always fits.
 */
const REDIRECT_MAX = 256
/** Flags passed through from the caller's open to the host open. */
const PASSED_OPEN_FLAGS = O_APPEND | O_SYNC | O_DSYNC | O_NONBLOCK

function p (rel: string): string { return '/' + rel }

/** Writes up to this size are done on the request thread (see write). */
const SYNC_WRITE_MAX = 64 * 1024

const DAEMON_UID = process.getuid?.() ?? 0
const DAEMON_GID = process.getgid?.() ?? 0

function typeOf (st: Stats): number { return Number(st.mode) & S_IFMT }

function noId (id: number): number { return id === 0xffffffff ? -1 : id }

/** The layers' name for the xattr `name` asked for through the mount (see markers.ts), or the kernel's errno. */
function diskXattr (markers: UpperMarkers, rel: string, name: string, op: string): string {
  const onDisk = markers.xattrOnDisk(name)
  if (onDisk === 'EINVAL' || onDisk === 'EOPNOTSUPP') throw new FsError(onDisk, p(rel), op)
  return onDisk
}

export interface OverlayOptions {
  /** Where lower lookups are answered (default: a scan of the layers). */
  readonly lowerView?: LowerView
  /** The form of the upper's markers (upper-form.ts), chosen at mount; default `kernel`. */
  readonly upperForm?: UpperForm
}

/** What a lookup finds: the attributes, and whether the object lives in upper. */
export interface Entry {
  readonly attr: Attr
  /**
   * The object is in upper: all its names (hardlinks) are one object. Lower
   * hardlinks are not: a copy-up separates them, as in the kernel's overlayfs.
   */
  readonly inUpper: boolean
}

export class Overlay {
  readonly stack: LayerStack
  readonly readOnly: boolean
  private readonly sys: Sys
  private readonly resolver: Resolver
  private readonly inodes: InodeNumbers
  private readonly handles = new HandleTable()
  private readonly markers: UpperMarkers
  private readonly copier: CopyUp | undefined

  constructor (stack: LayerStack, opts: OverlayOptions = {}) {
    this.stack = stack
    this.sys = sys
    this.readOnly = stack.upper === undefined
    const lowerView = opts.lowerView ?? new ScanLowerView(stack.lowers)
    this.markers = new UpperMarkers(this.sys, stack.work, opts.upperForm ?? 'kernel')
    this.resolver = new Resolver(stack, lowerView, this.markers)
    const layers: Layer[] = [...stack.lowers]
    if (stack.upper !== undefined) layers.unshift(stack.upper)
    this.inodes = new InodeNumbers(layers, this.markers.xattrs.origin)
    if (stack.upper !== undefined && stack.work !== undefined) {
      const markers = this.markers
      const lowerXattrs = xattrsOf(lowerXattrNamespace(markers.form))
      const copied = { origin: markers.xattrs.origin, isPrivate: (n: string) => markers.isPrivateXattr(n) || lowerXattrs.isPrivate(n) }
      this.copier = new CopyUp(this.sys, this.resolver, () => markers.scratch(), (rel) => this.afterCopyUp(rel), copied)
    }
  }

  /**
   * Told of every copy-up (the entry and each parent made in upper): the
   * attributes shown for it changed (ctime, for a lower hardlink its inode
   * number) though nobody changed them through it.
   */
  onCopiedUp: ((rel: string) => void) | undefined

  /** The form of the upper's markers (upper-form.ts). */
  get upperForm (): UpperForm { return this.markers.form }

  /** Open handles (for hygiene checks and the shutdown log). */
  get openHandles (): number { return this.handles.size }

  // ---------------------------------------------------------------- reading

  /** lstat of a merged path. */
  getattr (rel: string): Attr {
    return this.attrOf(this.resolver.require(rel))
  }

  /** lstat of a merged path, and where the object lives. */
  lookup (rel: string): Entry {
    const node = this.resolver.require(rel)
    return { attr: this.attrOf(node), inUpper: node.inUpper }
  }

  /** fstat of an open handle (works after its name was removed). EBADF for an unknown handle. */
  fgetattr (fh: number): Attr {
    const h = this.handle(fh)
    const st = this.sys.fstat(h.fd)
    return this.attrFrom(st, h.ino, Number(st.nlink))
  }

  /** fstat of an open handle, and where its file lives: what a lookup of a file just created or opened finds, without resolving its path again. */
  handleEntry (fh: number): Entry {
    return { attr: this.fgetattr(fh), inUpper: this.handle(fh).inUpper }
  }

  /** EINVAL if not a symlink. */
  readlink (rel: string): string {
    const node = this.resolver.require(rel)
    if (typeOf(node.stat) !== constants.S_IFLNK) throw new FsError('EINVAL', p(rel), 'readlink')
    return this.sys.readlink(node.phys)
  }


  /** The merged listing ('.' and '..' first): upper first, first occurrence wins, whiteouts and markers hidden. ENOTDIR. */
  readdir (rel: string): DirEntry[] {
    const node = this.resolver.require(rel)
    if (!node.isDir) throw new FsError('ENOTDIR', p(rel), 'readdir')
    const parent = rel === '' ? node : this.resolver.require(parentOf(rel))
    return [
      { name: '.', mode: S_IFDIR, ino: this.attrOf(node).ino },
      { name: '..', mode: S_IFDIR, ino: this.attrOf(parent).ino },
      ...this.listDir(node)
    ]
  }

  private listDir (node: Node): DirEntry[] {
    const out: DirEntry[] = []
    let hidden: Set<string> | undefined
    if (node.inUpper) {
      const upper = this.markers.list(node.phys)
      for (const [name, st] of upper.shown) out.push({ name, mode: Number(st.mode) & S_IFMT, ino: this.inodes.forUpper(node.phys + '/' + name, st) })
      hidden = upper.hidden
    }
    if (node.lowerRel !== undefined) {
      for (const [name, e] of this.resolver.lowerView.listing(node.lowerRel)) {
        if (hidden?.has(name) === true) continue
        out.push({ name, mode: e.type, ino: this.inodes.number(e.dev, e.ino) })
      }
    }
    return out
  }

  /**
   * Opens a file. Write access or O_TRUNC copies it up first (EROFS on a
   * read-only mount); EISDIR for a dir written. `killPrivs`, with O_TRUNC:
   * the caller truncating, who loses setuid/setgid as the kernel rules
   * (killpriv.ts).
   */
  async open (rel: string, flags: number, killPrivs?: Caller): Promise<number> {
    const wantsWrite = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0
    let node = this.resolver.require(rel)
    if (wantsWrite) {
      this.writable(rel)
      if (node.isDir) throw new FsError('EISDIR', p(rel), 'open')
      node = await this.copier!.copyUp(rel)
    }
    const hostFlags = (flags & (O_ACCMODE | O_TRUNC | PASSED_OPEN_FLAGS)) | O_NOFOLLOW | (node.inUpper ? 0 : O_NOATIME)
    let fd: number
    try {
      fd = this.openHost(node.phys, hostFlags)
      if (killPrivs !== undefined && (flags & O_TRUNC) !== 0 && killPrivs.uid !== 0) this.dropPrivBits(fd, killPrivs)
    } catch (e) { throw toFsError(e, p(rel)) }
    return this.handles.add({ fd, rel, inUpper: node.inUpper, writable: wantsWrite, ino: this.attrOf(node).ino })
  }

  /** O_NOATIME needs ownership; retry without it rather than fail a read. */
  private openHost (phys: string, flags: number, mode?: number): number {
    try {
      return this.sys.openSync(phys, flags, mode)
    } catch (e) {
      const code = (e as { code?: string }).code
      if ((flags & O_NOATIME) && code === 'EPERM') return this.openHost(phys, flags & ~O_NOATIME, mode)
      // The name was removed between its resolution and this open (a
      // concurrent unlink left a whiteout there, which opens as a char 0/0
      // device: ENXIO): the file is gone, as open(2) would answer.
      if (code === 'ENXIO') {
        const st = this.sys.lstat(phys)
        if (st === undefined || isWhiteoutStat(st)) throw Object.assign(new Error('ENOENT: open'), { code: 'ENOENT', syscall: 'open' })
      }
      throw e
    }
  }

  async read (fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    try {
      // Data in the page cache is copied here; only a read that would wait
      // for the disk goes to the thread pool (so it never blocks others).
      // The cached part may be short (the rest not read in yet), and FUSE
      // takes a short read for the end of the file: finish it on the pool.
      const n = this.sys.preadNowait(h.fd, buf, len, pos)
      if (n === len) return n
      const done = Math.max(n, 0)
      return done + await this.sys.read(h.fd, buf.subarray(done), len - done, pos + done)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  /** `caller`, when given, loses setuid/setgid as the kernel rules (see killpriv.ts). */
  async write (fh: number, buf: Buffer, len: number, pos: number, caller?: Caller): Promise<number> {
    const h = this.handle(fh)
    try {
      if (caller !== undefined && caller.uid !== 0) this.dropPrivBits(h.fd, caller)
      // A small write is a copy into the page cache, quicker done here than
      // handed to the thread pool and back; larger ones go to the pool.
      if (len <= SYNC_WRITE_MAX) return this.sys.writeSync(h.fd, buf, len, pos)
      return await this.sys.write(h.fd, buf, len, pos)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  async release (fh: number): Promise<void> {
    const h = this.handles.remove(fh)
    if (h === undefined) throw new FsError('EBADF', '', 'release')
    // close(2) of a local file is quick: no trip to the thread pool.
    this.sys.closeSync(h.fd)
  }

  async fsync (fh: number, datasync: boolean): Promise<void> {
    const h = this.handle(fh)
    try {
      await this.sys.fsync(h.fd, datasync)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  async ftruncate (fh: number, size: number, caller?: Caller): Promise<void> {
    const h = this.handle(fh)
    if (!h.writable) throw new FsError('EBADF', p(h.rel), 'ftruncate')
    try {
      if (caller !== undefined && caller.uid !== 0) this.dropPrivBits(h.fd, caller)
      await this.sys.ftruncate(h.fd, size)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  /**
   * ENODATA when unset. `trusted.overlay.*` names are escaped as the kernel
   * escapes them (see markers.ts): EINVAL for `trusted.overlay.` alone,
   * EOPNOTSUPP when the escaped name is too long.
   */
  getxattr (rel: string, name: string): Buffer {
    const onDisk = diskXattr(this.markers, rel, name, 'getxattr')
    const node = this.resolver.require(rel)
    let v: Buffer | undefined
    try {
      v = this.sys.lgetxattr(node.phys, onDisk)
    } catch (e) { throw toFsError(e, p(rel)) }
    if (v === undefined) throw new FsError('ENODATA', p(rel), 'getxattr')
    return v
  }

  listxattr (rel: string): string[] {
    const node = this.resolver.require(rel)
    try {
      const out: string[] = []
      for (const n of this.sys.llistxattr(node.phys)) {
        const shown = this.markers.xattrThroughMount(n)
        if (shown !== undefined) out.push(shown)
      }
      return out
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  statfs (): FsStats {
    const root = this.stack.upper?.root ?? this.stack.lowers[0]!.root
    const s = this.sys.statfs(root)
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255 }
  }

  /** Existence (F_OK) and EROFS for W_OK on a read-only mount; permission bits are the kernel's job (default_permissions). */
  access (rel: string, mode: number): void {
    this.resolver.require(rel)
    if ((mode & constants.W_OK) && this.readOnly) throw new FsError('EROFS', p(rel), 'access')
  }

  // ---------------------------------------------------------------- writing

  /** Creates and opens a file. EEXIST with O_EXCL; an existing file is opened as `open` would. */
  async create (rel: string, mode: number, flags: number, caller: Caller): Promise<number> {
    this.writable(rel)
    const hostFlags = (flags & (O_ACCMODE | PASSED_OPEN_FLAGS)) | O_CREAT | O_EXCL | O_NOFOLLOW
    let fd = -1
    try {
      this.makeNonDir(rel, caller, mode, (target) => {
        fd = this.sys.openSync(target, hostFlags, mode & 0o7777)
      })
    } catch (e) {
      // Another request made the name since the kernel's lookup: open(2) semantics.
      if (e instanceof FsError && e.code === 'EEXIST' && !(flags & O_EXCL)) return this.open(rel, flags & ~O_CREAT)
      throw e
    }
    // A new file has no origin: its number is its own.
    const st = this.sys.fstat(fd)
    return this.handles.add({ fd, rel, inUpper: true, writable: (flags & O_ACCMODE) !== O_RDONLY, ino: this.inodes.number(st.dev, st.ino) })
  }

  /** Regular files, fifos, sockets and devices (devices need the caller to be privileged: the kernel checks). */
  mknod (rel: string, mode: number, rdev: number, caller: Caller): void {
    this.writable(rel)
    this.makeNonDir(rel, caller, mode, (target) => this.sys.mknod(target, mode, rdev))
  }

  symlink (target: string, rel: string, caller: Caller): void {
    this.writable(rel)
    this.makeNonDir(rel, caller, undefined, (t) => this.sys.symlink(target, t))
  }

  /** EPERM for a directory; EEXIST if `newRel` is taken. Both names then show one inode. */
  async link (oldRel: string, newRel: string): Promise<void> {
    this.writable(newRel)
    const src = this.resolver.require(oldRel)
    if (src.isDir) throw new FsError('EPERM', p(oldRel), 'link')
    if (this.resolver.resolve(newRel) !== null) throw new FsError('EEXIST', p(newRel), 'link')
    const up = await this.copier!.copyUp(oldRel)
    this.makeNonDir(newRel, undefined, undefined, (t) => this.sys.link(up.phys, t))
  }

  /** EEXIST if taken. A directory made where a whiteout stands is opaque (nothing below merges into it). */
  mkdir (rel: string, mode: number, caller: Caller): void {
    this.writable(rel)
    const { parent, phys, whiteout, parentStat } = this.placeFor(rel, 'mkdir')
    const setgid = (Number(parentStat.mode) & S_ISGID) !== 0
    const gid = setgid ? Number(parentStat.gid) : caller.gid
    const finalMode = (mode & 0o7777) | (setgid ? S_ISGID : 0)
    try {
      if (whiteout === 'device') {
        const tmp = this.markers.scratch()
        this.sys.mkdir(tmp, 0o700)
        try {
          this.markers.setOpaque(tmp)
          this.sys.lchown(tmp, caller.uid, gid)
          this.sys.chmod(tmp, finalMode)
          this.sys.renameat2(tmp, phys, RENAME_EXCHANGE)
        } catch (e) {
          void this.sys.rmTree(tmp).catch(() => {})
          throw e
        }
        this.sys.unlink(tmp) // the whiteout, now in the work dir
      } else {
        this.sys.mkdir(phys, finalMode & 0o777)
        // As the kernel (ovl_create_upper): a new dir in a merged parent is
        // opaque, so a later lower lookup of its name never has to merge;
        // only where it uses redirects (not with userxattr: it then allows
        // offline changes to the lowers). Where a `.wh.NAME` stands (oci
        // form) it must be: the lowers' NAME shows again once the marker goes.
        if (whiteout === 'file' || (parent.lowerRel !== undefined && this.markers.form === 'kernel')) this.markers.setOpaque(phys)
        this.sys.lchown(phys, caller.uid, gid)
        this.sys.chmod(phys, finalMode)
        if (whiteout === 'file') this.markers.dropWhiteoutFile(parent.phys, baseOf(rel))
      }
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /** EISDIR for a directory. A name a lower layer shows is replaced by a whiteout. */
  async unlink (rel: string): Promise<void> {
    this.writable(rel)
    await this.settle(rel)
    const parent = this.resolver.requireLocated(parentOf(rel))
    const node = this.resolver.requireLocated(rel)
    if (node.isDir) throw new FsError('EISDIR', p(rel), 'unlink')
    const lowerShows = this.resolver.lowerAt(parent, baseOf(rel)) !== null
    try {
      if (node.inUpper) {
        if (lowerShows) this.markers.replaceWithWhiteout(parent.phys, baseOf(rel))
        else this.sys.unlink(node.phys)
      } else {
        const up = parent.inUpper ? parent : this.copier!.dirChain(parent.rel)
        this.markers.createWhiteout(up.phys, baseOf(rel))
      }
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /** ENOTDIR, ENOTEMPTY (as seen through the mount), EBUSY for the root. */
  async rmdir (rel: string): Promise<void> {
    this.writable(rel)
    if (rel === '') throw new FsError('EBUSY', '/', 'rmdir')
    await this.settle(rel)
    const parent = this.resolver.require(parentOf(rel))
    const node = this.resolver.require(rel)
    if (!node.isDir) throw new FsError('ENOTDIR', p(rel), 'rmdir')
    if (this.listDir(node).length > 0) throw new FsError('ENOTEMPTY', p(rel), 'rmdir')
    const lowerShows = this.resolver.lowerAt(parent, baseOf(rel)) !== null
    let evicted: string | undefined
    try {
      if (node.inUpper) {
        // The upper dir may still hold whiteouts: swap it out whole, then empty it off to the side.
        evicted = this.markers.evictDir(parent.phys, baseOf(rel), lowerShows)
      } else {
        const up = this.copier!.dirChain(parent.rel)
        this.markers.createWhiteout(up.phys, baseOf(rel))
      }
    } catch (e) { throw toFsError(e, p(rel)) } finally {
      this.resolver.invalidate()
    }
    if (evicted !== undefined) await this.sys.rmTree(evicted)
  }

  /**
   * rename(2). EINVAL for a dir into itself; ENOTDIR / EISDIR on type
   * mismatch; ENOTEMPTY over a non-empty dir. Directories with lower parts
   * get a redirect xattr (as the kernel with redirect_dir=on); EXDEV only
   * where the kernel gives it too (an absolute redirect over REDIRECT_MAX).
   */
  async rename (fromRel: string, toRel: string, noReplace = false): Promise<void> {
    this.writable(toRel)
    if (noReplace && this.resolver.resolve(toRel) !== null) {
      this.resolver.require(fromRel)
      throw new FsError('EEXIST', p(toRel), 'rename')
    }
    if (fromRel === toRel) { this.resolver.require(fromRel); return }
    if (fromRel === '' || toRel === '') throw new FsError('EBUSY', '/', 'rename')
    if (toRel.startsWith(fromRel + '/')) throw new FsError('EINVAL', p(toRel), 'rename')
    await this.settle(fromRel)
    await this.settle(toRel)
    const src = this.resolver.require(fromRel)
    const dstParent0 = this.resolver.require(parentOf(toRel))
    if (!dstParent0.isDir) throw new FsError('ENOTDIR', p(toRel), 'rename')
    if (fromRel.startsWith(toRel + '/')) throw new FsError('ENOTEMPTY', p(toRel), 'rename')
    const dst = this.resolver.resolve(toRel)
    // A non-empty target dir that only upper holds is refused by the upper
    // filesystem's own rename, after the source was copied up and marked (as
    // the kernel does: those changes stay in upper). Any other non-empty
    // target is refused before anything changes.
    let notEmptyAfterCopyUp = false
    if (dst !== null) {
      if (src.isDir && !dst.isDir) throw new FsError('ENOTDIR', p(toRel), 'rename')
      if (!src.isDir && dst.isDir) throw new FsError('EISDIR', p(toRel), 'rename')
    }
    this.canMove(src, fromRel)
    if (!this.markers.canMake(baseOf(toRel))) throw new FsError('EINVAL', p(toRel), 'rename')
    if (dst !== null) {
      if (dst.isDir && this.listDir(dst).length > 0) {
        if (!(dst.inUpper && dst.lower === null)) throw new FsError('ENOTEMPTY', p(toRel), 'rename')
        notEmptyAfterCopyUp = true
      }
      // Two names of one upper file: rename(2) does nothing. Lower hardlinks
      // are distinct objects to the kernel (it unifies them only with its
      // index feature), so a rename between two of them copies up and renames.
      if (!src.isDir && src.inUpper && dst.inUpper && src.stat.dev === dst.stat.dev && src.stat.ino === dst.stat.ino) return
    }
    try {
      const moved = src.isDir ? this.copier!.dirChain(fromRel) : await this.copier!.copyUp(fromRel)
      const srcParent = this.resolver.require(parentOf(fromRel))
      const dstParent = this.copier!.dirChain(parentOf(toRel))
      const lowerAtOld = this.resolver.lowerAt(srcParent, baseOf(fromRel)) !== null
      if (moved.isDir) this.markMovedDir(moved, srcParent.rel === dstParent.rel, dstParent)
      if (notEmptyAfterCopyUp) throw new FsError('ENOTEMPTY', p(toRel), 'rename')
      const dstPhys = dstParent.phys + '/' + baseOf(toRel)
      const there = this.sys.lstat(dstPhys)
      if (there !== undefined && isWhiteoutStat(there)) {
        // Swap with the whiteout; it lands at the old name, where it is kept only if needed.
        this.sys.renameat2(moved.phys, dstPhys, RENAME_EXCHANGE)
        if (!lowerAtOld) this.sys.unlink(moved.phys)
      } else {
        if (there !== undefined && isDirStat(there)) this.markers.clearMarkers(dstPhys)
        if (this.markers.form === 'oci') {
          // The old name's `.wh.` first: until the rename it hides only the lowers.
          if (lowerAtOld) this.markers.createWhiteout(srcParent.phys, baseOf(fromRel))
          this.sys.rename(moved.phys, dstPhys)
          this.markers.dropWhiteoutFile(dstParent.phys, baseOf(toRel))
        } else {
          this.sys.renameat2(moved.phys, dstPhys, lowerAtOld ? RENAME_WHITEOUT : 0)
        }
      }
    } catch (e) { throw toFsError(e, p(fromRel)) } finally {
      this.resolver.invalidate()
    }
    this.handles.renamed(fromRel, toRel)
  }

  /**
   * Before a directory moves: one with lower parts records where they live
   * (redirect: its own name within the same parent, else the absolute lower
   * path); an upper-only one landing in a merged parent is made opaque, so
   * lower entries at its new name do not merge into it. As the kernel does.
   */
  private markMovedDir (dir: Node, sameParent: boolean, dstParent: Node): void {
    if (dir.lowerRel !== undefined) {
      if (!this.markers.redirects) throw new FsError('EXDEV', p(dir.rel), 'rename')
      const existing = this.markers.redirectOf(dir.phys)
      if (existing !== undefined && (sameParent || existing.startsWith('/'))) return
      const value = sameParent ? baseOf(dir.rel) : '/' + dir.lowerRel
      if (value.length > REDIRECT_MAX) throw new FsError('EXDEV', p(dir.rel), 'rename')
      this.markers.setRedirect(dir.phys, value)
    } else if (!dir.opaque && dstParent.lowerRel !== undefined) {
      this.markers.setOpaque(dir.phys)
    }
  }

  /**
   * Without redirects (userxattr), a directory with lower parts cannot move:
   * EXDEV before anything changes, as the kernel answers (ovl_can_move), so
   * that tools copy it instead.
   */
  private canMove (node: Node, rel: string): void {
    if (!this.markers.redirects && node.isDir && node.lower !== null) throw new FsError('EXDEV', p(rel), 'rename')
  }

  async chmod (rel: string, mode: number): Promise<void> {
    const node = await this.forChange(rel)
    try {
      this.sys.chmod(node.phys, mode & 0o7777)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /**
   * uid/gid 0xffffffff mean "leave as is". The daemon's lchown drops setuid,
   * and setgid with group-execute, as for any chown; `killPrivs` (the caller)
   * also loses a setgid without group-execute when not in the file's group,
   * as the kernel rules for an unprivileged chown (killpriv.ts).
   */
  async chown (rel: string, uid: number, gid: number, killPrivs?: Caller): Promise<void> {
    const node = await this.forChange(rel)
    try {
      const drop = killPrivs !== undefined && !node.isDir && (Number(node.stat.mode) & S_IFMT) === S_IFREG
        ? privBitsToDrop(Number(node.stat.mode), Number(node.stat.gid), killPrivs)
        : 0
      this.sys.lchown(node.phys, noId(uid), noId(gid))
      if (drop !== 0) this.dropBits(node.phys, drop)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /**
   * The kernel found that a change by `caller` must drop setuid/setgid (a
   * write through a passthrough file, which never reaches the daemon): they
   * go as the kernel rules (killpriv.ts).
   */
  async dropPrivileges (rel: string, caller: Caller): Promise<void> {
    const node = await this.forChange(rel)
    if ((Number(node.stat.mode) & S_IFMT) !== S_IFREG) return
    try {
      const drop = privBitsToDrop(Number(node.stat.mode), Number(node.stat.gid), caller)
      if (drop !== 0) this.dropBits(node.phys, drop)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /** Clears `drop` from the mode of `phys`, as it is now. */
  private dropBits (phys: string, drop: number): void {
    const st = this.sys.lstat(phys)
    if (st !== undefined && (Number(st.mode) & drop) !== 0) this.sys.chmod(phys, Number(st.mode) & 0o7777 & ~drop)
  }

  /** Nanosecond times; nsec may be UTIME_NOW or UTIME_OMIT. Never follows a symlink. */
  async utimens (rel: string, atime: Timespec, mtime: Timespec): Promise<void> {
    const node = await this.forChange(rel)
    try {
      this.sys.utimensat(node.phys, atime.sec, atime.nsec, mtime.sec, mtime.nsec)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  async truncate (rel: string, size: number, caller?: Caller): Promise<void> {
    const node = await this.forChange(rel)
    if (node.isDir) throw new FsError('EISDIR', p(rel), 'truncate')
    try {
      if (caller !== undefined && caller.uid !== 0) {
        const drop = privBitsToDrop(Number(node.stat.mode), Number(node.stat.gid), caller)
        if (drop !== 0) this.sys.chmod(node.phys, Number(node.stat.mode) & 0o7777 & ~drop)
      }
      this.sys.truncate(node.phys, size)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /** EEXIST / ENODATA for XATTR_CREATE / XATTR_REPLACE; trusted.overlay.* names as in getxattr. */
  async setxattr (rel: string, name: string, value: Buffer, flags: number): Promise<void> {
    const onDisk = diskXattr(this.markers, rel, name, 'setxattr')
    const node = await this.forChange(rel)
    try {
      this.sys.lsetxattr(node.phys, onDisk, value, flags)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  async removexattr (rel: string, name: string): Promise<void> {
    const onDisk = diskXattr(this.markers, rel, name, 'removexattr')
    const node = this.resolver.require(rel)
    if (this.sys.lgetxattr(node.phys, onDisk) === undefined) throw new FsError('ENODATA', p(rel), 'removexattr')
    const up = await this.forChange(rel)
    try {
      this.sys.lremovexattr(up.phys, onDisk)
    } catch (e) { throw toFsError(e, p(rel)) }
  }

  /**
   * renameat2(RENAME_EXCHANGE): the objects at two names swap places. Both
   * are copied up (directories alone, not their children) and marked as a
   * rename marks them, so each keeps its lower parts under its new name.
   * ENOENT if either is missing; EINVAL if one contains the other.
   */
  async exchange (aRel: string, bRel: string): Promise<void> {
    this.writable(aRel)
    if (aRel === bRel) { this.resolver.require(aRel); return }
    if (aRel === '' || bRel === '') throw new FsError('EBUSY', '/', 'rename')
    if (bRel.startsWith(aRel + '/') || aRel.startsWith(bRel + '/')) throw new FsError('EINVAL', p(bRel), 'rename')
    await this.settle(aRel)
    await this.settle(bRel)
    const a = this.resolver.require(aRel)
    const b = this.resolver.require(bRel)
    this.canMove(a, aRel)
    this.canMove(b, bRel)
    try {
      const upA = a.isDir ? this.copier!.dirChain(aRel) : await this.copier!.copyUp(aRel)
      const upB = b.isDir ? this.copier!.dirChain(bRel) : await this.copier!.copyUp(bRel)
      const parentA = this.copier!.dirChain(parentOf(aRel))
      const parentB = this.copier!.dirChain(parentOf(bRel))
      const sameParent = parentA.rel === parentB.rel
      if (upA.isDir) this.markMovedDir(upA, sameParent, parentB)
      if (upB.isDir) this.markMovedDir(upB, sameParent, parentA)
      this.sys.renameat2(upA.phys, upB.phys, RENAME_EXCHANGE)
    } catch (e) { throw toFsError(e, p(aRel)) } finally {
      this.resolver.invalidate()
    }
    const swap = '\0exchange'
    this.handles.renamed(aRel, swap)
    this.handles.renamed(bRel, aRel)
    this.handles.renamed(swap, bRel)
  }

  /**
   * An O_TMPFILE file in merged directory `dirRel`: made in the directory's
   * upper copy, owned by the caller, with no name. ENOTDIR, EROFS.
   */
  async tmpfile (dirRel: string, mode: number, flags: number, caller: Caller): Promise<{ fh: number, attr: Attr }> {
    this.writable(dirRel)
    const dir = this.resolver.require(dirRel)
    if (!dir.isDir) throw new FsError('ENOTDIR', p(dirRel), 'tmpfile')
    let fd: number
    let st: Stats
    try {
      const up = this.copier!.dirChain(dirRel)
      const parentStat = this.sys.lstat(up.phys)
      fd = this.sys.openSync(up.phys, O_TMPFILE | (flags & (O_ACCMODE | PASSED_OPEN_FLAGS)), mode & 0o7777)
      const setgid = parentStat !== undefined && (Number(parentStat.mode) & S_ISGID) !== 0
      const gid = setgid ? Number(parentStat.gid) : caller.gid
      this.sys.fchown(fd, caller.uid, gid)
      if (mode & (S_ISUID | S_ISGID)) this.sys.fchmod(fd, mode & 0o7777)
      st = this.sys.fstat(fd)
    } catch (e) { throw toFsError(e, p(dirRel)) }
    const ino = this.inodes.number(st.dev, st.ino)
    const fh = this.handles.add({ fd, rel: '\0tmpfile', inUpper: true, writable: (flags & O_ACCMODE) !== O_RDONLY, ino })
    return { fh, attr: this.attrFrom(st, ino, Number(st.nlink)) }
  }

  /**
   * Gives a file with no name (O_TMPFILE) the name `newRel`, linkat(2) of
   * /proc/self/fd/N as the kernel's overlayfs allows it. EEXIST if taken.
   */
  linkHandle (fh: number, newRel: string): void {
    this.writable(newRel)
    const h = this.handle(fh)
    this.makeNonDir(newRel, undefined, undefined, (t) => this.sys.linkFd(h.fd, t))
    h.rel = newRel
  }

  /** fallocate(2) on an open handle (EBADF unless open for writing). */
  async fallocate (fh: number, mode: number, offset: number, length: number): Promise<void> {
    const h = this.handle(fh)
    if (!h.writable) throw new FsError('EBADF', p(h.rel), 'fallocate')
    try {
      this.sys.fallocate(h.fd, mode, offset, length)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  /** lseek(2) on an open handle: SEEK_DATA / SEEK_HOLE answered by the file in its layer. */
  lseek (fh: number, offset: number, whence: number): number {
    const h = this.handle(fh)
    try {
      return this.sys.lseek(h.fd, offset, whence)
    } catch (e) { throw toFsError(e, p(h.rel)) }
  }

  /** The host fd behind an open handle (the backing file of a passthrough open). */
  hostFd (fh: number): number {
    return this.handle(fh).fd
  }

  /**
   * The merged path of an open handle's file, while that file is still there
   * (the handle follows renames): undefined for a file with no name (unlinked
   * while open, O_TMPFILE) or a name that now holds another object.
   */
  handlePath (fh: number): string | undefined {
    const h = this.handles.get(fh)
    if (h === undefined || h.rel.startsWith('\0')) return undefined
    let node: Node | null
    try {
      node = this.resolver.resolve(h.rel)
    } catch { return undefined }
    if (node === null || this.attrOf(node).ino !== h.ino) return undefined
    return h.rel
  }

  /** The handles open at `rel`, detached from it: their file is about to lose its name (unlinked while open). */
  detachHandles (rel: string): number[] {
    return this.handles.detach(rel)
  }

  /** Closes every handle (at unmount). */
  async closeAll (): Promise<void> {
    for (const h of [...this.handles.all()]) await this.sys.close(h.fd).catch(() => {})
  }

  // ---------------------------------------------------------------- helpers

  private handle (fh: number): FileHandle {
    const h = this.handles.get(fh)
    if (h === undefined) throw new FsError('EBADF', '', 'handle')
    return h
  }

  private writable (rel: string): void {
    if (this.readOnly || this.copier === undefined) throw new FsError('EROFS', p(rel), 'write')
  }

  /** The entry's upper node, copied up if need be, for a change of its attributes. */
  private async forChange (rel: string): Promise<Node> {
    this.writable(rel)
    return this.copier!.copyUp(rel)
  }

  /** Waits for copy-ups at or below `rel` before its shape changes. */
  private async settle (rel: string): Promise<void> {
    const pending = this.copier?.pendingUnder(rel) ?? []
    if (pending.length > 0) await Promise.allSettled(pending)
  }

  /**
   * Where a new entry `rel` goes: its parent in upper (copied up if need be)
   * and what stands there now (nothing, or a whiteout). EEXIST if the mount
   * shows the name already; ENOTDIR if the parent is not a directory. The
   * parent's attributes are read fresh: a setgid parent passes on its group.
   */
  private placeFor (rel: string, op: string): { parent: Node, phys: string, whiteout: 'device' | 'file' | undefined, parentStat: Stats } {
    const name = baseOf(rel)
    // oci form: `.wh.*` names are markers (EINVAL, as fuse-overlayfs answers).
    if (!this.markers.canMake(name)) throw new FsError('EINVAL', p(rel), op)
    const parent = this.copier!.dirChain(parentOf(rel))
    const phys = parent.phys + '/' + name
    const here = this.sys.lstat(phys)
    let whiteout: 'device' | 'file' | undefined
    if (here !== undefined) {
      if (!isWhiteoutStat(here)) throw new FsError('EEXIST', p(rel), op)
      whiteout = 'device'
    } else if (this.markers.hasWhiteoutFile(parent.phys, name)) {
      whiteout = 'file'
    } else if (this.resolver.lowerAt(parent, name) !== null) {
      throw new FsError('EEXIST', p(rel), op)
    }
    const parentStat = this.sys.lstat(parent.phys)
    if (parentStat === undefined) throw new FsError('ENOENT', p(rel), op)
    return { parent, phys, whiteout, parentStat }
  }

  /**
   * Creates a non-directory at `rel` with `make`, owned by the caller (with
   * a setgid parent's group). Where a whiteout stands it is built in the work
   * dir and renamed over it, so the name never shows a half-made entry.
   */
  private makeNonDir (rel: string, caller: Caller | undefined, mode: number | undefined, make: (target: string) => void): void {
    const { parent, phys, whiteout, parentStat } = this.placeFor(rel, 'create')
    // Over a char 0/0 whiteout: built in the work dir and renamed over it.
    // Over a `.wh.NAME` (oci form): made in place, then the marker goes.
    const overWhiteout = whiteout === 'device'
    const target = overWhiteout ? this.markers.scratch() : phys
    try {
      make(target)
      if (caller !== undefined) {
        const setgid = (Number(parentStat.mode) & S_ISGID) !== 0
        const gid = setgid ? Number(parentStat.gid) : caller.gid
        // Made in place, it is the daemon's, with the group a setgid parent
        // gives: only a different owner needs a chown. Made in the work dir
        // (over a whiteout), it has the work dir's group: always chown.
        if (overWhiteout || caller.uid !== DAEMON_UID || gid !== (setgid ? gid : DAEMON_GID)) {
          this.sys.lchown(target, caller.uid, gid)
          // chown cleared setuid/setgid that the caller asked for.
          if (mode !== undefined && (mode & (S_ISUID | S_ISGID))) this.sys.chmod(target, mode & 0o7777)
        }
      }
      if (overWhiteout) this.sys.rename(target, phys)
      if (whiteout === 'file') this.markers.dropWhiteoutFile(parent.phys, baseOf(rel))
    } catch (e) {
      if (overWhiteout) void this.sys.rmTree(target).catch(() => {})
      throw toFsError(e, p(rel))
    }
  }

  private dropPrivBits (fd: number, caller: Caller): void {
    const st = this.sys.fstat(fd)
    const drop = privBitsToDrop(Number(st.mode), Number(st.gid), caller)
    if (drop !== 0) this.sys.fchmod(fd, Number(st.mode) & 0o7777 & ~drop)
  }

  /** After a copy-up: read handles on the lower file move to the copy. */
  private afterCopyUp (rel: string): void {
    this.onCopiedUp?.(rel)
    for (const h of this.handles.under(rel)) {
      if (h.inUpper || h.rel !== rel) continue
      const node = this.resolver.resolve(rel)
      if (node === null || !node.inUpper) continue
      try {
        const fd = this.sys.openSync(node.phys, O_RDONLY | O_NOFOLLOW)
        const old = h.fd
        h.fd = fd
        h.inUpper = true
        // A copied-up lower hardlink has a number of its own now (see inode.ts).
        h.ino = this.attrOf(node).ino
        void this.sys.close(old).catch(() => {})
      } catch { /* keep reading the lower file */ }
    }
  }

  private attrOf (node: Node): Attr {
    let ino: bigint
    let nlink = Number(node.stat.nlink)
    if (node.inUpper) {
      ino = this.inodes.forUpper(node.phys, node.stat)
      if (node.isDir && node.lower !== null) nlink = 1
    } else {
      ino = this.inodes.number(node.stat.dev, node.stat.ino)
      if (node.isDir && node.lower !== null && (node.lower.dirs?.length ?? 0) > 1) nlink = 1
    }
    return this.attrFrom(node.stat, ino, nlink)
  }

  private attrFrom (st: Stats, ino: bigint, nlink: number): Attr {
    return {
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: st.size,
      nlink,
      ino,
      rdev: st.rdev,
      blksize: Number(st.blksize),
      blocks: st.blocks,
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs
    }
  }
}

