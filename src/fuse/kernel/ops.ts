/**
 * The FUSE operations on node ids, mapped onto the overlay core's merged
 * paths: decode a request's arguments, find the path(s) through the node
 * table, call the Overlay, encode its answer. Protocol in, errno out; no
 * overlay logic.
 *
 * Caches: the daemon makes every change itself, so the kernel may cache
 * entries and attributes for long (`cacheTimeout`). Where a change has side
 * effects the kernel cannot know of (a copy-up gives a parent a new ctime,
 * a copied-up lower hardlink a new inode number), the node's attributes are
 * invalidated with a notification.
 */
import { constants } from 'node:fs'
import type { Logger } from 'pino'
import { displayPath } from '../../overlay/bytes.js'
import { FsError } from '../../overlay/errors.js'
import type { Attr, Caller, DirEntry, Entry, Overlay } from '../../overlay/overlay.js'
import { checkName } from '../../overlay/paths.js'
import type { IoStats } from '../io-stats.js'
import type { KNode } from './nodes.js'
import { NodeTable } from './nodes.js'
import { Passthrough } from './passthrough.js'
import {
  FATTR_ATIME, FATTR_ATIME_NOW, FATTR_FH, FATTR_GID, FATTR_KILL_SUIDGID, FATTR_LOCKOWNER, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW,
  FATTR_SIZE, FATTR_UID, FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_OPEN_KILL_SUIDGID,
  FUSE_WRITE_KILL_SUIDGID, InitFlag, Op, OUT_HEADER_SIZE
} from './protocol.js'
import type { Session } from './session.js'
import { Framed, NO_REPLY } from './session.js'
import type { Request } from './wire.js'
import { attrOut, bytesOf, entryOut, openOut, packDirents, statfsOut, u32Out, u64Out, writeEntry } from './wire.js'

const UTIME_NOW = 0x3fffffff
const UTIME_OMIT = 0x3ffffffe
const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2
const S_IFMT = constants.S_IFMT
const S_IFREG = constants.S_IFREG

export interface KernelOpsOptions {
  readonly log: Logger
  /** Seconds the kernel may cache entries and attributes. */
  readonly cacheTimeout: number
  readonly ioStats?: IoStats
  /** Log every operation, the negative lookups too (debug level). */
  readonly traceOps: boolean
}

/**
 * An open directory. Its listing is taken when a READDIR starts at offset 0
 * and kept for the offsets after it, so they stay stable. Not at opendir: a
 * change between opendir and the first READDIR would be missed, and the
 * kernel would cache the stale listing (FOPEN_CACHE_DIR).
 */
interface DirHandle {
  readonly node: KNode
  rel: string
  entries: DirEntry[]
  names: Buffer[]
}

export class KernelOps {
  /** Forgotten nodes are remembered only where file handles can name them (EXPORT_SUPPORT negotiated). */
  readonly nodes = new NodeTable(() => ((this.session.negotiated?.flags ?? 0n) & InitFlag.EXPORT_SUPPORT) !== 0n)
  private readonly dirs = new Map<number, DirHandle>()
  /** Nameless special files that live on in a lower layer (only a whiteout hides them): they keep their links. */
  private readonly whitedOut = new WeakSet<KNode>()
  private nextDirFh = 1
  private readonly passthrough: Passthrough

  constructor (private readonly overlay: Overlay, private readonly session: Session, private readonly o: KernelOpsOptions) {
    this.passthrough = new Passthrough(session, o.log)
    session.pathOf = (id) => {
      const n = this.nodes.get(id)
      return n === undefined ? undefined : this.nodes.path(n)
    }
    overlay.onCopiedUp = (rel) => {
      if (rel === '') return
      const slash = rel.lastIndexOf('/')
      const parent = this.nodeAt(slash < 0 ? '' : rel.slice(0, slash))
      const node = parent === undefined ? undefined : this.nodes.child(parent, rel.slice(slash + 1))
      if (parent === undefined || node === undefined) return
      session.invalidateAttr(node.id)
      // A copied-up lower hardlink gets a number of its own: the parent's
      // cached listing (FOPEN_CACHE_DIR) holds the old one.
      if (!node.isDir) session.invalidateData(parent.id)
    }
    this.register()
  }

  // ------------------------------------------------------------ plumbing

  private node (id: number): KNode {
    const n = this.nodes.get(id)
    if (n === undefined) throw new FsError('ESTALE', `(node ${id})`, 'node')
    return n
  }

  /**
   * The merged path of a node; ENOENT once it has no name left. A retired
   * node has no name in the table, but the kernel still sends what its open
   * files ask (fchmod, fchown, futimens, the xattr calls): it answers for the
   * file they have open, at the name that file has now (its handles follow
   * renames), which is the new node's.
   */
  private rel (node: KNode): string {
    const rel = this.nodes.path(node) ?? (node.retired ? this.retiredRel(node) : undefined)
    if (rel === undefined) throw new FsError('ENOENT', `(node ${node.id}, removed)`, 'path')
    return rel
  }

  /** Where a retired node's file is now: the path of one of its open handles, if that file still has it. */
  private retiredRel (node: KNode): string | undefined {
    for (const fh of node.fhs) {
      const rel = this.overlay.handlePath(fh)
      if (rel !== undefined) return rel
    }
    return undefined
  }

  /**
   * After a change through a retired node: the node now at its file's name
   * (the kernel caches its attributes) did not see it.
   */
  private changedThrough (node: KNode): void {
    if (!node.retired) return
    const rel = this.retiredRel(node)
    const now = rel === undefined ? undefined : this.nodeAt(rel)
    if (now !== undefined && now !== node) this.session.invalidateAttr(now.id)
  }

  private childRel (parent: KNode, name: string): string {
    const dir = this.rel(parent)
    const rel = dir === '' ? name : dir + '/' + name
    checkName(name, '/' + rel)
    return rel
  }

  /** The node the kernel holds for a merged path, if any. */
  private nodeAt (rel: string): KNode | undefined {
    let n: KNode | undefined = this.nodes.root
    if (rel === '') return n
    for (const name of rel.split('/')) {
      n = this.nodes.child(n, name)
      if (n === undefined) return undefined
    }
    return n
  }

  private caller (req: Request): Caller {
    return { uid: req.uid, gid: req.gid, pid: req.pid }
  }

  /**
   * HANDLE_KILLPRIV_V2: the kernel says which writes, truncates, chowns and
   * O_TRUNC opens must drop setuid/setgid (the caller lacks CAP_FSETID), and
   * the daemon drops them, with the caller's group for the setgid rule
   * (killpriv.ts). Without it the kernel sends the new mode itself, but only
   * knows the group-execute half of the rule, so the daemon applies it to
   * every non-root caller.
   */
  private get killprivV2 (): boolean {
    return ((this.session.negotiated?.flags ?? 0n) & InitFlag.HANDLE_KILLPRIV_V2) !== 0n
  }

  /** The caller who must lose setuid/setgid by this change, if any. */
  private killer (req: Request, killFlag: boolean): Caller | undefined {
    return !this.killprivV2 || killFlag ? this.caller(req) : undefined
  }

  private entry (parent: KNode, name: string, e: Entry): Buffer {
    const node = this.nodes.lookup(parent, name, e.attr, e.inUpper && e.attr.nlink > 1)
    return entryOut(node.id, 0, e.attr, this.o.cacheTimeout, this.o.cacheTimeout)
  }

  /** The entry reply after `name` in `parent` was made. */
  private made (parent: KNode, name: string, rel: string): Buffer {
    return this.entry(parent, name, this.overlay.lookup(rel))
  }

  private attrOf (node: KNode, fh?: number): Attr {
    let a: Attr
    const rel = this.nodes.path(node)
    if (fh !== undefined && node.fhs.has(fh)) a = this.overlay.fgetattr(fh)
    else if (rel !== undefined) a = this.overlay.getattr(rel)
    else {
      // No name left: an open file answers from its handle; anything else
      // (a fifo or device, which the kernel opens without us) from the last
      // attributes seen, with no links.
      const open = node.fhs.values().next()
      if (!open.done) a = this.overlay.fgetattr(open.value)
      else if (node.attr !== undefined) a = { ...node.attr, nlink: this.whitedOut.has(node) ? node.attr.nlink : 0 }
      else throw new FsError('ENOENT', `(node ${node.id}, removed)`, 'getattr')
    }
    node.attr = a
    return a
  }

  /**
   * How long the kernel may cache a node's attributes. Not at all for a
   * retired node: its file changes through the new node, by passthrough
   * writes the daemon never sees too, so every fstat through it must ask.
   */
  private attrTimeout (node: KNode): number {
    return node.retired ? 0 : this.o.cacheTimeout
  }

  private on (op: Op, h: (req: Request) => Buffer | Framed | typeof NO_REPLY | undefined | Promise<Buffer | Framed | typeof NO_REPLY | undefined>): void {
    this.session.on(op, h)
  }

  // ------------------------------------------------------------ operations

  private register (): void {
    const ov = this.overlay
    const t = this.o.cacheTimeout

    this.on(Op.LOOKUP, (req) => {
      const name = req.name()
      if (name === '.' || name === '..') return this.exportLookup(req.nodeid, name)
      const parent = this.node(req.nodeid)
      const rel = this.childRel(parent, name)
      let e: Entry
      try {
        e = ov.lookup(rel)
      } catch (err) {
        // A negative entry the kernel may cache: a name appears only through us.
        if (err instanceof FsError && err.code === 'ENOENT') {
          if (this.o.traceOps) this.o.log.debug({ op: 'lookup', path: displayPath('/' + rel), errno: 'ENOENT' }, 'op')
          return entryOut(0, 0, undefined, t, t)
        }
        throw err
      }
      return this.entry(parent, name, e)
    })

    this.on(Op.FORGET, (req) => {
      this.nodes.forget(req.nodeid, req.u64())
      return NO_REPLY
    })

    this.on(Op.BATCH_FORGET, (req) => {
      const count = req.u32()
      req.skip(4)
      for (let i = 0; i < count; i++) {
        const id = req.u64()
        this.nodes.forget(id, req.u64())
      }
      return NO_REPLY
    })

    this.on(Op.GETATTR, (req) => {
      const node = this.node(req.nodeid)
      const flags = req.u32()
      req.skip(4)
      const fh = req.u64()
      return attrOut(this.attrOf(node, (flags & FUSE_GETATTR_FH) !== 0 ? fh : undefined), this.attrTimeout(node))
    })

    this.on(Op.SETATTR, async (req) => {
      const node = this.node(req.nodeid)
      const valid = req.u32()
      req.skip(4)
      const fh = req.u64()
      const size = req.u64()
      req.skip(8) // lock_owner
      const atime = req.i64()
      const mtime = req.i64()
      req.skip(8) // ctime
      const atimensec = req.u32()
      const mtimensec = req.u32()
      req.skip(4) // ctimensec
      const mode = req.u32()
      req.skip(4)
      const uid = req.u32()
      const gid = req.u32()
      const killer = this.killer(req, (valid & FATTR_KILL_SUIDGID) !== 0)
      const byFh = (valid & FATTR_FH) !== 0 && node.fhs.has(fh)
      if (this.killprivV2 && (valid & ~(FATTR_FH | FATTR_LOCKOWNER)) === 0) {
        // Nothing to set: the kernel's file_remove_privs found that a change
        // (a write through a passthrough file, which the daemon never sees)
        // must drop setuid/setgid, and leaves that to the daemon.
        await ov.dropPrivileges(this.rel(node), this.caller(req))
      }
      if ((valid & FATTR_SIZE) !== 0) {
        if (byFh) await ov.ftruncate(fh, size, killer)
        else await ov.truncate(this.rel(node), size, killer)
      }
      if ((valid & FATTR_MODE) !== 0) await ov.chmod(this.rel(node), mode)
      if ((valid & (FATTR_UID | FATTR_GID)) !== 0) {
        await ov.chown(this.rel(node), (valid & FATTR_UID) !== 0 ? uid : 0xffffffff, (valid & FATTR_GID) !== 0 ? gid : 0xffffffff,
          this.killprivV2 && (valid & FATTR_KILL_SUIDGID) !== 0 ? this.caller(req) : undefined)
      }
      if ((valid & (FATTR_ATIME | FATTR_MTIME)) !== 0) {
        const a = (valid & FATTR_ATIME) === 0 ? { sec: 0, nsec: UTIME_OMIT } : (valid & FATTR_ATIME_NOW) !== 0 ? { sec: 0, nsec: UTIME_NOW } : { sec: atime, nsec: atimensec }
        const m = (valid & FATTR_MTIME) === 0 ? { sec: 0, nsec: UTIME_OMIT } : (valid & FATTR_MTIME_NOW) !== 0 ? { sec: 0, nsec: UTIME_NOW } : { sec: mtime, nsec: mtimensec }
        await ov.utimens(this.rel(node), a, m)
      }
      this.changedThrough(node)
      return attrOut(this.attrOf(node, byFh ? fh : undefined), this.attrTimeout(node))
    })

    this.on(Op.READLINK, (req) => bytesOf(ov.readlink(this.rel(this.node(req.nodeid)))))

    this.on(Op.SYMLINK, (req) => {
      const parent = this.node(req.nodeid)
      const name = req.name()
      const target = req.name()
      const rel = this.childRel(parent, name)
      ov.symlink(target, rel, this.caller(req))
      return this.made(parent, name, rel)
    })

    this.on(Op.MKNOD, (req) => {
      const parent = this.node(req.nodeid)
      const mode = req.u32()
      const rdev = req.u32()
      req.skip(8)
      const name = req.name()
      const rel = this.childRel(parent, name)
      ov.mknod(rel, mode, rdev, this.caller(req))
      return this.made(parent, name, rel)
    })

    this.on(Op.MKDIR, (req) => {
      const parent = this.node(req.nodeid)
      const mode = req.u32()
      req.skip(4)
      const name = req.name()
      const rel = this.childRel(parent, name)
      ov.mkdir(rel, mode, this.caller(req))
      return this.made(parent, name, rel)
    })

    const remove = async (req: Request, dir: boolean): Promise<undefined> => {
      const parent = this.node(req.nodeid)
      const name = req.name()
      const rel = this.childRel(parent, name)
      const node = this.nodes.child(parent, name)
      // A fifo or device losing its last name is still fstat'ed through the
      // fds the kernel opened without us: if it is a lower object, a whiteout
      // only hides it and it keeps its links, as the kernel's overlayfs shows.
      let lower = false
      if (!dir && node !== undefined && node.type !== S_IFREG && node.links.length === 1) {
        try { lower = !ov.lookup(rel).inUpper } catch { /* unlink answers */ }
      }
      if (dir) await ov.rmdir(rel)
      else await ov.unlink(rel)
      if (lower) this.whitedOut.add(node!)
      this.nodes.unlinked(parent, name)
      // Handles open on a file that lost its last name follow no path any more.
      if (node !== undefined && node.links.length === 0 && node.fhs.size > 0) ov.detachHandles(rel)
      return undefined
    }
    this.on(Op.UNLINK, (req) => remove(req, false))
    this.on(Op.RMDIR, (req) => remove(req, true))

    // rename_in is { newdir }; rename2_in is { newdir, flags, padding }.
    const rename = async (req: Request): Promise<undefined> => {
      const parent = this.node(req.nodeid)
      const newParent = this.node(req.u64())
      const flags = req.opcode === Op.RENAME2 ? req.u32() : 0
      if (req.opcode === Op.RENAME2) req.skip(4)
      if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0 || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        // RENAME_WHITEOUT, as the kernel's overlayfs: not through an overlay.
        throw new FsError('EINVAL', `(node ${req.nodeid})`, 'rename2')
      }
      const from = req.name()
      const to = req.name()
      const fromRel = this.childRel(parent, from)
      const toRel = this.childRel(newParent, to)
      if ((flags & RENAME_EXCHANGE) !== 0) {
        await ov.exchange(fromRel, toRel)
        this.nodes.exchanged(parent, from, newParent, to)
        return undefined
      }
      await ov.rename(fromRel, toRel, (flags & RENAME_NOREPLACE) !== 0)
      if (fromRel !== toRel) this.nodes.renamed(parent, from, newParent, to)
      return undefined
    }
    this.on(Op.RENAME, rename)
    this.on(Op.RENAME2, rename)

    this.on(Op.LINK, async (req) => {
      const old = this.node(req.u64())
      const parent = this.node(req.nodeid)
      const name = req.name()
      const rel = this.childRel(parent, name)
      const oldRel = this.nodes.path(old)
      if (oldRel !== undefined) await ov.link(oldRel, rel)
      else {
        // A file with no name (O_TMPFILE), linked in through /proc/self/fd.
        const fh = old.fhs.values().next()
        if (fh.done) throw new FsError('ENOENT', '/' + rel, 'link')
        ov.linkHandle(fh.value, rel)
      }
      const e = ov.lookup(rel)
      this.nodes.linked(old, parent, name, e.attr)
      old.nlookup++
      return entryOut(old.id, 0, e.attr, t, t)
    })

    this.on(Op.OPEN, async (req) => {
      const node = this.node(req.nodeid)
      const flags = req.u32()
      const openFlags = req.u32()
      const rel = this.rel(node)
      const fh = await ov.open(rel, flags, this.killprivV2 && (openFlags & FUSE_OPEN_KILL_SUIDGID) !== 0 ? this.caller(req) : undefined)
      return this.opened(node, fh, flags)
    })

    this.on(Op.CREATE, async (req) => {
      const parent = this.node(req.nodeid)
      const flags = req.u32()
      const mode = req.u32()
      req.skip(8)
      const name = req.name()
      const rel = this.childRel(parent, name)
      const fh = await ov.create(rel, mode, flags, this.caller(req))
      // The entry from the open handle: the path was just resolved by create.
      const e = ov.handleEntry(fh)
      const node = this.nodes.lookup(parent, name, e.attr, e.inUpper && e.attr.nlink > 1)
      return Buffer.concat([entryOut(node.id, 0, e.attr, t, t), this.opened(node, fh, flags)])
    })

    this.on(Op.TMPFILE, async (req) => {
      const parent = this.node(req.nodeid)
      const flags = req.u32()
      const mode = req.u32()
      const { fh, attr } = await ov.tmpfile(this.rel(parent), mode, flags, this.caller(req))
      const node = this.nodes.anonymous(attr)
      return Buffer.concat([entryOut(node.id, 0, attr, t, t), this.opened(node, fh, flags)])
    })

    this.on(Op.READ, async (req) => {
      const fh = req.u64()
      const offset = req.u64()
      const size = req.u32()
      this.o.ioStats?.count('read', size)
      const buf = Buffer.allocUnsafe(OUT_HEADER_SIZE + size)
      const n = await ov.read(fh, buf.subarray(OUT_HEADER_SIZE), size, offset)
      return new Framed(buf.subarray(0, OUT_HEADER_SIZE + n))
    })

    this.on(Op.WRITE, async (req) => {
      const fh = req.u64()
      const offset = req.u64()
      const size = req.u32()
      const writeFlags = req.u32()
      req.skip(8 + 4 + 4) // lock_owner, flags, padding
      this.o.ioStats?.count('write', size)
      const data = req.bytes(size)
      return u32Out(await ov.write(fh, data, size, offset, this.killer(req, (writeFlags & FUSE_WRITE_KILL_SUIDGID) !== 0)))
    })

    this.on(Op.STATFS, () => statfsOut(ov.statfs()))

    this.on(Op.RELEASE, async (req) => {
      const fh = req.u64()
      const node = this.nodes.get(req.nodeid)
      if (node !== undefined) {
        node.fhs.delete(fh)
        this.passthrough.released(node, fh)
      }
      await ov.release(fh)
      return undefined
    })

    this.on(Op.FSYNC, async (req) => {
      const fh = req.u64()
      const flags = req.u32()
      await ov.fsync(fh, (flags & FUSE_FSYNC_FDATASYNC) !== 0)
      return undefined
    })

    this.on(Op.FLUSH, () => { throw new FsError('ENOSYS', '', 'flush') })

    this.on(Op.SETXATTR, async (req) => {
      const node = this.node(req.nodeid)
      const size = req.u32()
      const flags = req.u32()
      if (((this.session.negotiated?.flags ?? 0n) & InitFlag.SETXATTR_EXT) !== 0n) req.skip(8)
      const name = req.name()
      const value = Buffer.from(req.bytes(size))
      await ov.setxattr(this.rel(node), name, value, flags)
      this.changedThrough(node)
      return undefined
    })

    this.on(Op.GETXATTR, (req) => {
      const node = this.node(req.nodeid)
      const size = req.u32()
      req.skip(4)
      const v = ov.getxattr(this.rel(node), req.name())
      return this.sized(v, size, node)
    })

    this.on(Op.LISTXATTR, (req) => {
      const node = this.node(req.nodeid)
      const size = req.u32()
      const names = ov.listxattr(this.rel(node))
      const v = Buffer.concat(names.map((n) => Buffer.concat([bytesOf(n), Buffer.alloc(1)])))
      return this.sized(v, size, node)
    })

    this.on(Op.REMOVEXATTR, async (req) => {
      const node = this.node(req.nodeid)
      await ov.removexattr(this.rel(node), req.name())
      this.changedThrough(node)
      return undefined
    })

    this.on(Op.ACCESS, (req) => {
      ov.access(this.rel(this.node(req.nodeid)), req.u32())
      return undefined
    })

    this.on(Op.OPENDIR, (req) => {
      const node = this.node(req.nodeid)
      const fh = this.nextDirFh++
      this.dirs.set(fh, { node, rel: this.rel(node), entries: [], names: [] })
      // The kernel may keep the listing: it drops it itself when the
      // directory changes through the mount, the only way it can change.
      return openOut(fh, FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE)
    })

    const readdir = (req: Request, plus: boolean): Buffer => {
      const fh = req.u64()
      const offset = req.u64()
      const size = req.u32()
      const d = this.dirs.get(fh)
      if (d === undefined) throw new FsError('EBADF', `(node ${req.nodeid})`, 'readdir')
      if (offset === 0) {
        d.rel = this.rel(d.node)
        d.entries = ov.readdir(d.rel)
        d.names = d.entries.map((e) => bytesOf(e.name))
      }
      const { body } = packDirents(size, offset, d.entries.length, plus,
        (i) => { const e = d.entries[i]!; return { name: d.names[i]!, ino: e.ino, type: (e.mode & S_IFMT) >> 12 } },
        (i, buf, off) => this.direntPlus(d, i, buf, off))
      return body
    }
    this.on(Op.READDIR, (req) => readdir(req, false))
    this.on(Op.READDIRPLUS, (req) => readdir(req, true))

    this.on(Op.RELEASEDIR, (req) => {
      this.dirs.delete(req.u64())
      return undefined
    })
    this.on(Op.FSYNCDIR, () => undefined)

    this.on(Op.FALLOCATE, async (req) => {
      const fh = req.u64()
      const offset = req.u64()
      const length = req.u64()
      const mode = req.u32()
      await ov.fallocate(fh, mode, offset, length)
      return undefined
    })

    this.on(Op.LSEEK, (req) => {
      const fh = req.u64()
      const offset = req.u64()
      const whence = req.u32()
      return u64Out(ov.lseek(fh, offset, whence))
    })

    this.on(Op.IOCTL, () => { throw new FsError('ENOTTY', '', 'ioctl') })
    this.on(Op.SYNCFS, () => undefined)
    this.on(Op.INTERRUPT, () => NO_REPLY)
    this.on(Op.DESTROY, () => undefined)
  }

  /**
   * EXPORT_SUPPORT: the kernel rebuilding a dentry from a file handle
   * (open_by_handle_at, an NFS export) looks up "." (the node itself, when
   * its inode left the kernel's cache) and ".." (a directory's parent, to
   * reconnect it). Both answer from the node table, one more lookup counted.
   * A node the kernel has forgotten comes back under its id if the same
   * object (inode number and type) is still at its path; otherwise ESTALE.
   */
  private exportLookup (id: number, name: '.' | '..'): Buffer {
    const known = this.nodes.get(id)
    if (known === undefined && name === '.') {
      const node = this.revive(id)
      return entryOut(node.id, 0, node.attr!, this.o.cacheTimeout, this.o.cacheTimeout)
    }
    const node = this.node(id)
    // A node with no name left and nothing open: unlinked, the handle is stale.
    if (name === '.' && node.fhs.size === 0 && this.nodes.path(node) === undefined) throw new FsError('ESTALE', `(node ${id}, removed)`, 'lookup')
    let target = node
    if (name === '..' && node !== this.nodes.root) {
      const link = node.links[0]
      if (link === undefined) throw new FsError('ESTALE', `(node ${node.id}, removed)`, 'lookup')
      target = link.parent
    }
    if (target !== this.nodes.root && this.nodes.get(target.id) !== target) throw new FsError('ESTALE', `(node ${target.id})`, 'lookup')
    const attr = this.attrOf(target)
    target.nlookup++
    return entryOut(target.id, 0, attr, this.o.cacheTimeout, this.o.cacheTimeout)
  }

  /** Forgotten node `id` back, with one lookup, if its object is still at its path; ESTALE if not. */
  private revive (id: number): KNode {
    const stale = (): FsError => new FsError('ESTALE', `(node ${id})`, 'lookup')
    const was = this.nodes.remembered(id)
    if (was === undefined) throw stale()
    let e: Entry
    try {
      e = this.overlay.lookup(was.path)
    } catch { throw stale() }
    if (e.attr.ino !== was.ino || (e.attr.mode & S_IFMT) !== was.type) throw stale()
    const names = was.path.split('/')
    const name = names.pop()!
    let parent = this.nodes.root
    let rel = ''
    for (const n of names) {
      rel = rel === '' ? n : rel + '/' + n
      const known = this.nodes.child(parent, n)
      if (known !== undefined) { parent = known; continue }
      let dir: Entry
      try {
        dir = this.overlay.lookup(rel)
      } catch { throw stale() }
      // Gets the directory's own forgotten id back if it is the same
      // directory (NodeTable.lookup): a handle to it keeps working too.
      parent = this.nodes.attach(parent, n, dir.attr)
    }
    const node = this.nodes.revive(id, parent, name, e.attr, e.inUpper && e.attr.nlink > 1)
    if (node === undefined) throw stale()
    return node
  }

  /** The open reply: passthrough where it may be used, else the page cache kept across opens. */
  private opened (node: KNode, fh: number, flags: number): Buffer {
    node.fhs.add(fh)
    if (node.type !== S_IFREG) return openOut(fh, FOPEN_KEEP_CACHE)
    const mode = this.passthrough.modeFor(node, fh, this.overlay.hostFd(fh), flags)
    if (mode === 'stale') {
      // The node is open for passthrough on its lower file, and this open
      // got the upper copy: the kernel allows one backing file per inode.
      // Retire the node and answer ESTALE; the kernel looks the name up again
      // (a new node, the copy) and retries the open once. The old node's
      // readers keep the lower file's data but still show the copy's
      // attributes (fstat answers from their handles, which the core moved
      // onto the copy): drop what the kernel cached for it, and let it cache
      // nothing more (attrTimeout).
      const rel = this.nodes.path(node) ?? ''
      node.fhs.delete(fh)
      void this.overlay.release(fh)
      this.nodes.retire(node)
      this.session.invalidateAttr(node.id)
      throw new FsError('ESTALE', '/' + rel, 'open')
    }
    return mode === 'cached' ? openOut(fh, FOPEN_KEEP_CACHE) : openOut(fh, mode.openFlags, mode.backingId)
  }

  /** A READDIRPLUS entry: the lookup the kernel would otherwise make (not for '.' and '..'). */
  private direntPlus (d: DirHandle, i: number, buf: Buffer, off: number): void {
    const e = d.entries[i]!
    const t = this.o.cacheTimeout
    if (e.name === '.' || e.name === '..') { writeEntry(buf, off, 0, 0, undefined, 0, 0); return }
    try {
      const rel = d.rel === '' ? e.name : d.rel + '/' + e.name
      const found = this.overlay.lookup(rel)
      const node = this.nodes.lookup(d.node, e.name, found.attr, found.inUpper && found.attr.nlink > 1)
      writeEntry(buf, off, node.id, 0, found.attr, t, t)
    } catch {
      writeEntry(buf, off, 0, 0, undefined, 0, 0)
    }
  }

  /** getxattr/listxattr: the size alone when asked with 0, ERANGE when too small. */
  private sized (v: Buffer, size: number, node: KNode): Buffer {
    if (size === 0) return u32Out(v.length)
    if (v.length > size) throw new FsError('ERANGE', '/' + (this.nodes.path(node) ?? ''), 'getxattr')
    return v
  }

  /** Closes what the session holds (at unmount). */
  closeAll (): void {
    this.passthrough.closeAll()
    this.dirs.clear()
  }
}
