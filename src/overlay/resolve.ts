/**
 * resolvePath: where a merged path lives.
 *
 * The upper layer is consulted live (it changes), the lower layers through the
 * LowerView (they do not). For each component of the path:
 *   1. if the parent exists in upper, look the name up there: a whiteout ends
 *      the lookup (no such entry); a non-directory is the answer; a directory
 *      is the answer's top copy, and unless it is opaque its lower part is
 *      looked up at the parent's lower path plus the name (or wherever its
 *      redirect xattr points);
 *   2. otherwise the lower view alone answers, at the parent's lower path.
 * A directory's `lowerRel` is the path in the lower view whose contents merge
 * beneath it; undefined when nothing merges (opaque, upper-only, or a lower
 * non-directory under an upper directory, which ends the merge).
 *
 * Resolved directories are cached. The cache is dropped whenever the daemon
 * changes the shape of the upper tree (a directory copied up, made, removed
 * or renamed; a rename of anything): those are rare next to lookups, and
 * dropping everything is always right.
 */
import type { Layer, LayerStack } from './layers.js'
import { baseOf, joinRel, parentOf, physical } from './layers.js'
import type { LowerEntry, LowerView } from './lower-view.js'
import { isDirStat, redirectTarget } from './lower-view.js'
import { isWhiteoutStat } from './markers.js'
import { FsError } from './errors.js'
import type { Stats } from './sys/fs.js'
import { sys } from './sys/fs.js'
import type { UpperMarkers } from './upper-markers.js'

export interface Node {
  /** The merged path ('' = root). */
  readonly rel: string
  /** Physical path of the visible (topmost) object. */
  readonly phys: string
  readonly stat: Stats
  readonly isDir: boolean
  /** The visible object is in upper. */
  readonly inUpper: boolean
  /** The lower entry that is visible (not in upper), or that merges beneath an upper dir. */
  readonly lower: LowerEntry | null
  /** Directories: the lower-view path merged beneath, if any. */
  readonly lowerRel: string | undefined
  /** Directories in upper: marked opaque. */
  readonly opaque: boolean
}

export class Resolver {
  private readonly dirs = new Map<string, Node>()
  private readonly maxDirs = 50_000

  /** `markers`: the upper's marker form (upper-form.ts). */
  constructor (private readonly stack: LayerStack, readonly lowerView: LowerView, private readonly markers: UpperMarkers) {}

  get upper (): Layer | undefined { return this.stack.upper }

  /** Forget every cached directory: called after any change to the tree's shape. */
  invalidate (): void {
    this.dirs.clear()
  }

  /** The node at `rel`, or null if nothing is visible there. ENOTDIR if a parent is not a directory. */
  resolve (rel: string): Node | null {
    const node = this.locate(rel)
    // The cache holds the tree's shape; an upper directory's attributes change
    // under it (chmod, chown, utimens, entries added), so they are read live.
    if (node === null || !node.inUpper || !node.isDir) return node
    const st = sys.lstat(node.phys)
    return st === undefined ? node : { ...node, stat: st }
  }

  /**
   * resolve() without re-reading a cached directory's attributes: where an
   * entry lives and what merges into it, which is all most changes need.
   */
  locate (rel: string): Node | null {
    if (rel === '') return this.root()
    const cached = this.dirs.get(rel)
    if (cached !== undefined) return cached
    const parent = this.locate(parentOf(rel))
    if (parent === null) return null
    if (!parent.isDir) throw new FsError('ENOTDIR', '/' + rel, 'lookup')
    const node = this.child(parent, baseOf(rel))
    if (node !== null && node.isDir) this.remember(node)
    return node
  }

  /** Like resolve, but ENOENT instead of null. */
  require (rel: string): Node {
    const n = this.resolve(rel)
    if (n === null) throw new FsError('ENOENT', '/' + rel, 'lookup')
    return n
  }

  /** Like locate, but ENOENT instead of null. */
  requireLocated (rel: string): Node {
    const n = this.locate(rel)
    if (n === null) throw new FsError('ENOENT', '/' + rel, 'lookup')
    return n
  }

  /** The entry the lower layers show at the merged path `rel` under `parent` (ignoring upper). */
  lowerAt (parent: Node, name: string): LowerEntry | null {
    if (parent.lowerRel === undefined) return null
    return this.lowerView.lookup(joinRel(parent.lowerRel, name))
  }

  /** The raw upper entry at a merged path whose parent is in upper (whiteouts included). */
  upperStat (parent: Node, name: string): Stats | undefined {
    if (!parent.inUpper) return undefined
    return sys.lstat(parent.phys + '/' + name)
  }

  private remember (node: Node): void {
    if (this.dirs.size >= this.maxDirs) this.dirs.clear()
    this.dirs.set(node.rel, node)
  }

  private root (): Node {
    const cached = this.dirs.get('')
    if (cached !== undefined) return cached
    const upper = this.stack.upper
    const lower = this.lowerView.lookup('')
    let node: Node
    if (upper !== undefined) {
      const st = sys.lstat(upper.root)
      if (st === undefined) throw new FsError('EIO', '/', 'lstat', 'upper layer root is gone')
      node = { rel: '', phys: upper.root, stat: st, isDir: true, inUpper: true, lower, lowerRel: lower ? '' : undefined, opaque: false }
    } else {
      if (lower === null) throw new FsError('EIO', '/', 'lstat', 'no lower layer root')
      node = { rel: '', phys: this.lowerPhys(lower), stat: lower.stat, isDir: true, inUpper: false, lower, lowerRel: '', opaque: false }
    }
    this.remember(node)
    return node
  }

  lowerPhys (e: LowerEntry): string {
    return physical(this.stack.lowers[e.layer]!, e.rel)
  }

  private child (parent: Node, name: string): Node | null {
    const rel = joinRel(parent.rel, name)
    if (parent.inUpper) {
      // oci form: `.wh.*` names in upper are markers, never entries.
      if (this.markers.isMarkerName(name)) return null
      const phys = parent.phys + '/' + name
      const st = sys.lstat(phys)
      if (st !== undefined) {
        if (isWhiteoutStat(st)) return null
        if (!isDirStat(st)) {
          return { rel, phys, stat: st, isDir: false, inUpper: true, lower: null, lowerRel: undefined, opaque: false }
        }
        const opaque = this.markers.isOpaque(phys)
        let lower: LowerEntry | null = null
        let lowerRel: string | undefined
        if (!opaque) {
          // An absolute redirect is looked up from the root of the lowers even
          // when the parent has no lower part (the kernel switches to the
          // root's lower stack); any other lookup goes through the parent's.
          const redirect = this.markers.redirectOf(phys)
          if (redirect !== undefined && !this.markers.redirects && parent.lowerRel !== undefined) {
            // The kernel with userxattr refuses to follow a redirect (a user could forge one).
            throw new FsError('EPERM', '/' + rel, 'lookup', 'refusing to follow a redirect (userxattr)')
          }
          let target: string | undefined
          if (redirect !== undefined && redirect.startsWith('/')) target = redirectTarget('', redirect)
          else if (parent.lowerRel !== undefined) target = redirect === undefined ? joinRel(parent.lowerRel, name) : redirectTarget(parent.lowerRel, redirect)
          const e = target === undefined ? null : this.lowerView.lookup(target)
          if (e !== null && e.dirs !== undefined) { lower = e; lowerRel = target }
        }
        return { rel, phys, stat: st, isDir: true, inUpper: true, lower, lowerRel, opaque }
      }
      if (this.markers.hasWhiteoutFile(parent.phys, name)) return null
    }
    if (parent.lowerRel === undefined) return null
    const target = joinRel(parent.lowerRel, name)
    const e = this.lowerView.lookup(target)
    if (e === null) return null
    const isDir = e.dirs !== undefined
    return { rel, phys: this.lowerPhys(e), stat: e.stat, isDir, inUpper: false, lower: e, lowerRel: isDir ? target : undefined, opaque: false }
  }
}
