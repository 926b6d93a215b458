/**
 * `overlayts unpack`: an OCI/Docker layer tar (plain or gzip) into a
 * directory usable as a lowerdir.
 *
 * All or nothing: entries are extracted into a fresh directory beside the
 * target (`.NAME.unpack-PID-RAND`, mode 0700 while it fills), the digest is
 * checked at the end of the stream, and only a complete, verified layer is
 * renamed to the target; on any error or refusal the scratch directory is
 * removed and the target is untouched.
 *
 * Whiteouts: `oci` keeps the `.wh.NAME` and `.wh..wh..opq` files as the tar
 * has them (overlayts mounts such a layer; so do containerd's and docker's
 * snapshotters after their own conversion); `kernel` turns them into what the
 * kernel's overlayfs reads: a char 0/0 device named NAME, and
 * `trusted.overlay.opaque=y` on the directory (as moby's
 * overlayWhiteoutConverter does when it unpacks into overlay2). In kernel
 * form a whiteout of a name this same layer also holds is dropped: OCI says a
 * whiteout hides only what lies below its layer.
 *
 * Safety (tar-safety.ts has the rules): every path is checked before it is
 * used, and every object is made through NoFollowRoot, so no symlink is ever
 * followed, whatever the layer holds. Directories are made 0700 and get their
 * own mode, owner and times after all their entries are in (deepest first),
 * so a read-only directory in the layer still receives its files.
 *
 * Xattrs: `user.*` and `security.capability` are applied, as `commit` writes
 * them (security.capability only as root: it needs CAP_SETFCAP); others in the tar (`trusted.*`, `security.selinux`, ...) are counted
 * and skipped: a layer must not set the overlay's own markers or the host's
 * labels. Ownership is applied when running as root (as a non-root user,
 * every file is the user's, as with rootless extraction). Device nodes need
 * root; a char 0/0 whiteout does not.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Readable } from 'node:stream'
import { displayPath, utf8ToBytes } from '../overlay/bytes.js'
import { OCI_OPAQUE_MARKER, OCI_WHITEOUT_PREFIX, OPAQUE_XATTR } from '../overlay/markers.js'
import { sys } from '../overlay/sys/fs.js'
import { NoFollowRoot } from './no-follow-root.js'
import { LayerReader, type LayerDigests, type LayerEntry } from './tar-reader.js'
import { checkSymlinkTarget, cleanEntryPath, DEFAULT_LIMITS, LayerRefused, missingParents, type MadeKind, type UnpackLimits } from './tar-safety.js'

export type WhiteoutForm = 'oci' | 'kernel'

export interface UnpackOptions {
  /** Where the layer goes (a UTF-8 path); must not exist, or be an empty directory. */
  readonly target: string
  readonly whiteouts: WhiteoutForm
  /** `sha256:HEX` the stream as given must hash to. */
  readonly digest?: string | undefined
  readonly limits?: UnpackLimits
}

export interface UnpackResult extends LayerDigests {
  readonly target: string
  readonly entries: number
  /** Data bytes of regular files. */
  readonly dataBytes: number
  /** Xattrs in the tar that were not applied (not user.* or security.capability). */
  readonly skippedXattrs: number
}

export class UnpackError extends Error {}

interface DirMeta { mode: number, uid: number, gid: number, mtime: number, xattrs: ReadonlyMap<string, Buffer> }

const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/

const isRoot = (): boolean => process.getuid?.() === 0

/** security.capability needs CAP_SETFCAP: as another user it is skipped (and counted), as rootless extraction does. */
function appliedXattr (name: string, root: boolean): boolean {
  return name.startsWith('user.') || (name === 'security.capability' && root)
}

/** Checks the target before anything is read: its parent exists, it does not (or is an empty dir). */
function prepareTarget (target: string): { real: string, scratch: string } {
  const abs = path.resolve(target)
  const parent = fs.realpathSync(path.dirname(abs))
  const real = path.join(parent, path.basename(abs))
  const st = fs.lstatSync(real, { throwIfNoEntry: false })
  if (st !== undefined && !(st.isDirectory() && fs.readdirSync(real).length === 0)) {
    throw new UnpackError(`${target}: exists (unpack makes a new directory, or fills an empty one)`)
  }
  const scratch = path.join(parent, `.${path.basename(abs)}.unpack-${process.pid}-${randomBytes(4).toString('hex')}`)
  fs.mkdirSync(scratch, { mode: 0o700 })
  return { real, scratch }
}

class Extraction {
  readonly made = new Map<string, MadeKind>([['', 'dir']])
  readonly dirs = new Map<string, DirMeta>()
  readonly fs: NoFollowRoot
  entries = 0
  dataBytes = 0
  skippedXattrs = 0
  readonly root = isRoot()

  constructor (scratch: string, readonly whiteouts: WhiteoutForm, readonly limits: UnpackLimits) {
    this.fs = new NoFollowRoot(utf8ToBytes(scratch))
  }

  async add (e: LayerEntry, body: AsyncIterable<Buffer>): Promise<void> {
    if (++this.entries > this.limits.maxEntries) throw new LayerRefused(e.name, `more than ${this.limits.maxEntries} entries (--max-entries)`)
    this.dataBytes += e.size
    if (this.dataBytes > this.limits.maxBytes) throw new LayerRefused(e.name, `the layer's data passes ${this.limits.maxBytes} bytes (--max-bytes)`)
    const rel = cleanEntryPath(e.name)
    if (rel === '') {
      if (e.type !== 'directory') throw new LayerRefused(e.name, 'the layer root must be a directory')
      this.dirs.set('', this.#meta(e))
      return
    }
    const slash = rel.lastIndexOf('/')
    const base = rel.slice(slash + 1)
    const parentRel = slash < 0 ? '' : rel.slice(0, slash)
    if (this.whiteouts === 'kernel' && base.startsWith(OCI_WHITEOUT_PREFIX)) {
      await drain(body)
      this.#makeParents(rel)
      if (base === OCI_OPAQUE_MARKER) {
        sys.lsetxattr(parentRel === '' ? this.fs.self() : this.fs.at(parentRel), OPAQUE_XATTR, Buffer.from('y'))
        return
      }
      const hidden = base.slice(OCI_WHITEOUT_PREFIX.length)
      if (hidden === '' || hidden === '.' || hidden === '..') throw new LayerRefused(e.name, 'a whiteout of no name')
      const whiteout = parentRel === '' ? hidden : `${parentRel}/${hidden}`
      if (this.made.has(whiteout)) return // this layer's own entry wins
      sys.mknod(this.fs.at(whiteout), S_IFCHR, 0)
      if (this.root) sys.lchown(this.fs.at(whiteout), e.uid, e.gid)
      this.made.set(whiteout, 'other')
      return
    }
    this.#makeParents(rel)
    this.#replace(rel, e)
    switch (e.type) {
      case 'directory':
        if (this.made.get(rel) !== 'dir') {
          sys.mkdir(this.fs.at(rel), 0o700)
          this.made.set(rel, 'dir')
        }
        this.dirs.set(rel, this.#meta(e))
        return
      case 'file':
        await this.#file(rel, e, body)
        this.made.set(rel, 'file')
        return
      case 'link': {
        const target = cleanEntryPath(e.linkname, 'hardlink target')
        if (this.made.get(target) !== 'file') {
          throw new LayerRefused(e.name, `hardlink to ${JSON.stringify(displayPath(e.linkname))}, which is not a regular file this layer extracted before it`)
        }
        // Two descriptors: the target's parent may differ from the link's.
        const other = new NoFollowRoot(this.fs.root)
        try {
          sys.link(other.at(target), this.fs.at(rel))
        } finally { other.close() }
        this.made.set(rel, 'file')
        return
      }
      case 'symlink':
        checkSymlinkTarget(rel, e.linkname)
        sys.symlink(e.linkname, this.fs.at(rel))
        this.#owner(rel, e)
        this.#xattrs(this.fs.at(rel), e.xattrs)
        sys.utimensat(this.fs.at(rel), e.mtime, 0, e.mtime, 0)
        this.made.set(rel, 'other')
        return
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        const isWhiteout = e.type === 'character-device' && e.devmajor === 0 && e.devminor === 0
        if (e.type !== 'fifo' && !isWhiteout && !this.root) {
          throw new LayerRefused(e.name, `device node ${e.devmajor}:${e.devminor}: making devices needs root`)
        }
        const kind = e.type === 'fifo' ? S_IFIFO : e.type === 'block-device' ? S_IFBLK : S_IFCHR
        sys.mknod(this.fs.at(rel), kind | 0o600, e.devmajor * 256 + e.devminor)
        this.#owner(rel, e)
        this.#xattrs(this.fs.at(rel), e.xattrs)
        sys.chmod(this.fs.at(rel), e.mode)
        sys.utimensat(this.fs.at(rel), e.mtime, 0, e.mtime, 0)
        this.made.set(rel, 'other')
      }
    }
  }

  #meta (e: LayerEntry): DirMeta {
    return { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: e.xattrs }
  }

  /** Missing parents are made 0755 root:root (docker does the same); a parent that is not a directory refuses. */
  #makeParents (rel: string): void {
    for (const p of missingParents(rel, this.made)) {
      sys.mkdir(this.fs.at(p), 0o700)
      this.made.set(p, 'dir')
      this.dirs.set(p, { mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: new Map() })
    }
  }

  /** A later entry replaces an earlier one of the same name, except a directory over a directory (docker's rule). */
  #replace (rel: string, e: LayerEntry): void {
    const existing = this.made.get(rel)
    if (existing === undefined || (existing === 'dir' && e.type === 'directory')) return
    const p = this.fs.at(rel)
    if (existing === 'dir') {
      fs.rmSync(Buffer.from(p, 'latin1'), { recursive: true, force: true })
      const prefix = `${rel}/`
      for (const k of this.made.keys()) if (k.startsWith(prefix)) this.made.delete(k)
      for (const k of this.dirs.keys()) if (k.startsWith(prefix)) this.dirs.delete(k)
      this.dirs.delete(rel)
    } else sys.unlink(p)
    this.made.delete(rel)
  }

  async #file (rel: string, e: LayerEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const fd = sys.openSync(this.fs.at(rel), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
    try {
      let pos = 0
      let batch: Buffer[] = []
      let batched = 0
      const flush = async (): Promise<void> => {
        let bufs = batch
        batch = []
        batched = 0
        while (bufs.length > 0) {
          const n = await writev(fd, bufs, pos)
          pos += n
          bufs = advance(bufs, n)
        }
      }
      for await (const chunk of body) {
        batch.push(chunk)
        batched += chunk.length
        if (batched >= 1 << 20) await flush()
      }
      await flush()
      if (pos !== e.size) throw new LayerRefused(e.name, `${pos} data bytes where the header says ${e.size}`)
      if (this.root) sys.fchown(fd, e.uid, e.gid)
      // After chown, which clears security.capability.
      this.#xattrs(this.fs.at(rel), e.xattrs)
      sys.fchmod(fd, e.mode)
      fs.futimesSync(fd, e.mtime, e.mtime)
    } finally {
      sys.closeSync(fd)
    }
  }

  #owner (rel: string, e: LayerEntry): void {
    if (this.root) sys.lchown(this.fs.at(rel), e.uid, e.gid)
  }

  #xattrs (p: string, xattrs: ReadonlyMap<string, Buffer>): void {
    for (const [name, value] of xattrs) {
      if (appliedXattr(name, this.root)) sys.lsetxattr(p, name, value)
      else this.skippedXattrs++
    }
  }

  /** Directory modes, owners, xattrs and times, deepest first, once nothing more goes into them. */
  finishDirs (): void {
    const all = [...this.dirs.entries()].sort((a, b) => depth(b[0]) - depth(a[0]))
    if (!this.dirs.has('')) all.push(['', { mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: new Map() }])
    for (const [rel, m] of all) {
      const p = rel === '' ? this.fs.self() : this.fs.at(rel)
      if (this.root && !(rel === '' && !this.dirs.has(''))) sys.lchown(p, m.uid, m.gid)
      this.#xattrs(p, m.xattrs)
      sys.chmod(p, m.mode)
      if (!(rel === '' && !this.dirs.has(''))) sys.utimensat(p, m.mtime, 0, m.mtime, 0)
    }
  }
}

function depth (rel: string): number {
  if (rel === '') return 0
  let n = 1
  for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) n++
  return n
}

async function drain (body: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) void chunk
}

function writev (fd: number, bufs: Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.writev(fd, bufs, pos, (err, n) => err !== null ? reject(err) : resolve(n)))
}

function advance (bufs: Buffer[], n: number): Buffer[] {
  let i = 0
  while (i < bufs.length && n >= (bufs[i] as Buffer).length) { n -= (bufs[i] as Buffer).length; i++ }
  const rest = bufs.slice(i)
  if (rest.length > 0 && n > 0) rest[0] = (rest[0] as Buffer).subarray(n)
  return rest
}

/** Extracts `input` as described above; the target exists afterwards only if this resolves. */
export async function unpackLayer (input: Readable, opts: UnpackOptions): Promise<UnpackResult> {
  if (opts.digest !== undefined && !DIGEST_RE.test(opts.digest)) throw new UnpackError(`--digest ${opts.digest}: expected sha256: and 64 lowercase hex digits`)
  if (opts.whiteouts === 'kernel' && !isRoot()) throw new UnpackError('--whiteouts kernel needs root (the opaque marker is a trusted.overlay.* xattr)')
  const { real, scratch } = prepareTarget(opts.target)
  const x = new Extraction(scratch, opts.whiteouts, opts.limits ?? DEFAULT_LIMITS)
  try {
    const reader = new LayerReader(input)
    for await (const { entry, body } of reader.entries()) await x.add(entry, body)
    const digests = reader.digests()
    if (opts.digest !== undefined && digests.digest !== opts.digest) {
      throw new UnpackError(`digest mismatch: the layer is ${digests.digest}, expected ${opts.digest}; nothing was unpacked`)
    }
    x.finishDirs()
    x.fs.close()
    fs.renameSync(scratch, real)
    return { ...digests, target: real, entries: x.entries, dataBytes: x.dataBytes, skippedXattrs: x.skippedXattrs }
  } catch (e) {
    x.fs.close()
    fs.rmSync(scratch, { recursive: true, force: true })
    throw e
  }
}
