/**
 * copyUp: the first change to an entry that only a lower layer holds copies
 * it into upper, with every missing parent directory first (top down).
 *
 * Each copy is built in the work dir (data, then owner, xattrs, mode, origin,
 * times to the nanosecond) and renamed into upper only when complete, so a
 * crash leaves at most garbage in the work dir, which the next mount removes.
 * A directory is copied without its children. Regular files are copied with
 * copy_file_range/reflink on libuv's thread pool, so a multi-GiB copy never
 * holds up other requests; concurrent copy-ups of one path share one copy.
 * Lower hardlinks are not kept linked in upper (as the kernel without its
 * `index` feature); hardlinks made through the mount are.
 */
import { constants } from 'node:fs'
import { FsError, toFsError } from './errors.js'
import { encodeOrigin } from './inode.js'
import { baseOf, parentOf } from './layers.js'
import type { Node, Resolver } from './resolve.js'
import type { Stats, Sys } from './sys/fs.js'

const S_IFMT = constants.S_IFMT

const NS_PER_SEC = 1_000_000_000n

/**
 * A time in ns as the (tv_sec, tv_nsec) pair utimensat takes: floor division,
 * so that 0 <= tv_nsec < 1e9 also before 1970 (-1.5 s is (-2, 500000000);
 * BigInt's division truncates toward zero and would give a negative tv_nsec,
 * which the kernel refuses with EINVAL).
 */
export function nsToTimespec (ns: bigint): [number, number] {
  let sec = ns / NS_PER_SEC
  let nsec = ns % NS_PER_SEC
  if (nsec < 0n) {
    nsec += NS_PER_SEC
    sec -= 1n
  }
  return [Number(sec), Number(nsec)]
}

export class CopyUp {
  private readonly inflight = new Map<string, Promise<Node>>()

  constructor (
    private readonly sys: Sys,
    private readonly resolver: Resolver,
    private readonly scratch: () => string,
    /** Told after `rel` has a copy in upper (to move open read handles onto it). */
    private readonly onCopiedUp: (rel: string) => void,
    /** Which xattrs are the overlay's own, and where the origin goes (the upper's form, markers.ts). */
    private readonly xattrs: CopiedXattrs
  ) {}

  /** Copy-ups under way at `rel` or below it. */
  pendingUnder (rel: string): Array<Promise<Node>> {
    const out: Array<Promise<Node>> = []
    for (const [k, p] of this.inflight) {
      if (rel === '' || k === rel || k.startsWith(rel + '/')) out.push(p)
    }
    return out
  }

  /** Makes sure the entry at `rel` is in upper; resolves to its upper node. */
  async copyUp (rel: string): Promise<Node> {
    const node = this.resolver.require(rel)
    if (node.inUpper) return node
    if (node.isDir) return this.dirChain(rel)
    const running = this.inflight.get(rel)
    if (running !== undefined) return running
    const job = this.copyNonDir(node).finally(() => this.inflight.delete(rel))
    this.inflight.set(rel, job)
    return job
  }

  /** Makes sure directory `rel` and its parents are in upper (synchronously: no data to copy). */
  dirChain (rel: string): Node {
    const node = this.resolver.requireLocated(rel)
    if (!node.isDir) throw new FsError('ENOTDIR', '/' + rel, 'copy-up')
    if (node.inUpper) return node
    const parent = this.dirChain(parentOf(rel))
    this.place(node, parent, (tmp) => {
      this.sys.mkdir(tmp, 0o700)
    })
    this.resolver.invalidate()
    this.onCopiedUp(rel)
    return this.resolver.requireLocated(rel)
  }

  private async copyNonDir (node: Node): Promise<Node> {
    const parent = this.dirChain(parentOf(node.rel))
    // Re-check: the parent chain copy-up cannot create it, but another
    // request may have while we waited.
    const again = this.resolver.require(node.rel)
    if (again.inUpper) return again
    const type = Number(node.stat.mode) & S_IFMT
    if (type === constants.S_IFREG) {
      const tmp = this.scratch()
      try {
        await this.sys.copyFile(node.phys, tmp)
      } catch (e) {
        await this.sys.rmTree(tmp).catch(() => {})
        throw toFsError(e, '/' + node.rel)
      }
      // The copy may have raced a rename or delete of the source: look again.
      const now = this.resolver.resolve(node.rel)
      if (now === null || now.inUpper || now.phys !== node.phys) {
        await this.sys.rmTree(tmp).catch(() => {})
        if (now === null) throw new FsError('ENOENT', '/' + node.rel, 'copy-up')
        return now.inUpper ? now : this.copyNonDir(now)
      }
      this.place(node, this.resolver.require(parentOf(node.rel)), () => {}, tmp)
    } else if (type === constants.S_IFLNK) {
      const target = this.sys.readlink(node.phys)
      this.place(node, parent, (tmp) => this.sys.symlink(target, tmp))
    } else {
      this.place(node, parent, (tmp) => this.sys.mknod(tmp, Number(node.stat.mode), Number(node.stat.rdev)))
    }
    this.onCopiedUp(node.rel)
    return this.resolver.require(node.rel)
  }

  /**
   * Builds the copy of `node` in the work dir with `make` (or takes the one
   * already at `prebuilt`), gives it the lower's attributes and renames it
   * into the upper parent, then restores the parent's times, which the
   * rename changed.
   */
  private place (node: Node, parent: Node, make: (tmp: string) => void, prebuilt?: string): void {
    const tmp = prebuilt ?? this.scratch()
    const dest = parent.phys + '/' + baseOf(node.rel)
    try {
      if (prebuilt === undefined) make(tmp)
      copyAttributes(this.sys, node.phys, node.stat, tmp, this.xattrs)
      const pst = this.sys.lstat(parent.phys)
      this.sys.renameat2(tmp, dest, 1 /* RENAME_NOREPLACE */)
      // The root too: the kernel restores the times of every parent it copies into.
      if (pst !== undefined) restoreTimes(this.sys, parent.phys, pst)
    } catch (e) {
      void this.sys.rmTree(tmp).catch(() => {})
      throw toFsError(e, '/' + node.rel)
    }
  }
}

function restoreTimes (sys: Sys, phys: string, st: Stats): void {
  const [as, an] = nsToTimespec(st.atimeNs)
  const [ms, mn] = nsToTimespec(st.mtimeNs)
  sys.utimensat(phys, as, an, ms, mn)
}

/** What copy-up needs of the overlay's own xattrs. */
export interface CopiedXattrs {
  /** The overlay's markers and bookkeeping (in the lowers' and the upper's forms): never copied. */
  isPrivate (name: string): boolean
  /** Where the copy records the lower's dev:ino. */
  readonly origin: string
}

/** Gives `dest` the xattrs, owner, mode, origin and times of `src` (never following symlinks). */
export function copyAttributes (sys: Sys, src: string, st: Stats, dest: string, xattrs: CopiedXattrs): void {
  const isLink = (Number(st.mode) & S_IFMT) === constants.S_IFLNK
  // Owner first: chown clears security.capability (and setuid/setgid).
  sys.lchown(dest, Number(st.uid), Number(st.gid))
  for (const name of sys.llistxattr(src)) {
    if (xattrs.isPrivate(name)) continue
    const value = sys.lgetxattr(src, name)
    if (value === undefined) continue
    try {
      sys.lsetxattr(dest, name, value)
    } catch (e) {
      // An xattr the upper filesystem cannot hold is dropped, as the kernel does.
      if ((e as { code?: string }).code !== 'EOPNOTSUPP') throw e
    }
  }
  // After chown: chown clears setuid/setgid, and a root copy-up keeps them.
  if (!isLink) sys.chmod(dest, Number(st.mode) & 0o7777)
  // The copy keeps the lower's inode number (recorded as its origin) unless
  // the lower is a hardlink: its other names stay in the lower and keep that
  // number, so the copy, now a separate file, shows its own (as the kernel
  // without its index feature). Directories always keep it.
  // A user.* origin (rootless, oci form) cannot be set on a symlink, fifo,
  // socket or device (EPERM, as the kernel rules for user.* xattrs): such a
  // copy shows its own number, the bookkeeping is not worth failing for.
  const type = Number(st.mode) & S_IFMT
  if (type === constants.S_IFDIR || st.nlink === 1n) {
    try {
      sys.lsetxattr(dest, xattrs.origin, encodeOrigin(st))
    } catch (e) {
      const code = (e as { code?: string }).code
      const userOnSpecial = xattrs.origin.startsWith('user.') && type !== constants.S_IFDIR && type !== constants.S_IFREG
      if (!(userOnSpecial && (code === 'EPERM' || code === 'EOPNOTSUPP'))) throw e
    }
  }
  restoreTimes(sys, dest, st)
}
