/**
 * The lower view: what the read-only lower layers show at a path, before the
 * upper layer is laid on top.
 *
 * Lower layers never change while mounted (the kernel's contract, and ours),
 * so this view is a pure function of the layers: an answer computed once is
 * right for the life of the mount, and, for the same layers, across remounts.
 * That is what makes it cacheable in memory here and persistently in SQLite
 * (src/index). The upper layer, which does change, is never part of it.
 *
 * Lookup of NAME in a merged lower dir walks that dir's layer list from the
 * top (see OVERLAY-RULES.md):
 *   - NAME absent in a layer: go on to the next;
 *   - a whiteout (char 0/0, or in an OCI-form layer a `.wh.NAME` beside it):
 *     NAME is gone, stop (in OCI-form layers `.wh.*` names are markers, never
 *     entries; in kernel-form layers they are plain names, see layer-form.ts);
 *   - a non-directory: the answer if nothing was found above; stop either way;
 *   - a directory: add it to the new dir's layer list; stop if it is opaque;
 *     a redirect xattr sends the lookup in the layers below to another path.
 * A multi-component path is resolved one component at a time, through the
 * parent's layer list, so no layer is ever asked for a path through a symlink.
 */
import type { Layer } from './layers.js'
import { baseOf, joinRel, parentOf, physical } from './layers.js'
import { isOciMarker, isWhiteoutStat, OCI_OPAQUE_MARKER, OCI_WHITEOUT_PREFIX, xattrsOf } from './markers.js'
import type { Stats } from './sys/fs.js'
import { sys } from './sys/fs.js'

/** One physical directory that takes part in a merged directory. */
export interface DirLayer {
  readonly layer: number
  readonly rel: string
}

export interface LowerEntry {
  /** The lower layer (index) that holds the visible object. */
  readonly layer: number
  /** Its path inside that layer (differs from the merged path under a redirect). */
  readonly rel: string
  readonly stat: Stats
  /** For directories: every lower dir merged into it, top first. */
  readonly dirs: readonly DirLayer[] | undefined
}

/** What a directory listing needs of an entry: its type and identity. */
export interface ListedEntry {
  /** S_IFMT bits. */
  readonly type: number
  readonly dev: bigint
  readonly ino: bigint
}

export interface LowerView {
  /** The entry the lowers show at `rel` ('' = root), or null if none. */
  lookup(rel: string): LowerEntry | null
  /** Names (with their entries) the lowers show inside directory `rel`. */
  list(rel: string): Map<string, LowerEntry>
  /** The same names with only what readdir shows: cheaper where the view can answer without a stat. */
  listing(rel: string): Map<string, ListedEntry>
}

/**
 * Directory listings of the lower view, kept because the lowers never
 * change: a merged directory read again costs a map lookup. Bounded by the
 * number of entries held; when full, the oldest listings go.
 */
export class ListingMemo {
  private readonly listings = new Map<string, Map<string, ListedEntry>>()
  private held = 0

  constructor (private readonly maxEntries = 500_000) {}

  get (rel: string, compute: () => Map<string, ListedEntry>): Map<string, ListedEntry> {
    const hit = this.listings.get(rel)
    if (hit !== undefined) return hit
    const listing = compute()
    for (const [k, v] of this.listings) {
      if (this.held + listing.size <= this.maxEntries) break
      this.listings.delete(k)
      this.held -= v.size
    }
    this.listings.set(rel, listing)
    this.held += listing.size
    return listing
  }
}

export function listedOf (e: LowerEntry): ListedEntry {
  return { type: Number(e.stat.mode) & 0o170000, dev: e.stat.dev, ino: e.stat.ino }
}

const S_IFMT = 0o170000n
const S_IFDIR = 0o040000n
export function isDirStat (st: Stats): boolean { return (st.mode & S_IFMT) === S_IFDIR }

/** Is this dir of a lower opaque: the opaque xattr in the layer's namespace, or (oci form) the `.wh..wh..opq` marker. */
export function isOpaqueLowerDir (layer: Layer, phys: string, oci: boolean): boolean {
  const v = sys.lgetxattr(phys, xattrsOf(layer.xattrs ?? 'trusted').opaque)
  if (v !== undefined && v.length === 1 && v[0] === 0x79 /* 'y' */) return true
  return oci && sys.exists(phys + '/' + OCI_OPAQUE_MARKER)
}

/** Does the layer read `.wh.*` files as markers? */
function ociForm (layer: Layer): boolean {
  return layer.whiteouts !== 'kernel'
}

/**
 * The redirect of a lower dir. With userxattr the kernel never follows one
 * (a user could forge it): nothing overlayts writes in that form has one.
 */
export function redirectOf (layer: Layer, phys: string): string | undefined {
  if (layer.xattrs === 'user') return undefined
  const v = sys.lgetxattr(phys, xattrsOf('trusted').redirect)
  return v === undefined ? undefined : v.toString('latin1')
}

/** Resolves a redirect value against the parent dir's path, as the kernel does. */
export function redirectTarget (parentRel: string, redirect: string): string {
  if (redirect.startsWith('/')) return redirect.replace(/^\/+/, '').replace(/\/+$/, '')
  return joinRel(parentRel, redirect)
}

/**
 * Computes lower lookups by walking the layers; memoizes every answer, bounded.
 *
 * Each layer directory a lookup passes through is read once (readdir) and its
 * names kept: after that, a name absent from a layer, or whited out there in
 * OCI form, costs a set lookup instead of a syscall, so a lookup touches the
 * disk only in the layers that hold the name. Both caches are safe for the
 * life of the mount because lowers do not change.
 */
export class ScanLowerView implements LowerView {
  private readonly memo = new Map<string, LowerEntry | null>()
  private readonly maxMemo: number
  private readonly names = new Map<string, Set<string>>()
  private namesHeld = 0
  private readonly maxNames: number
  private readonly listings = new ListingMemo()

  constructor (private readonly lowers: readonly Layer[], maxMemo = 200_000, maxNames = 2_000_000) {
    this.maxMemo = maxMemo
    this.maxNames = maxNames
  }

  /** The names in one layer directory (empty if it cannot be read). */
  private namesIn (layer: number, rel: string): Set<string> {
    const key = `${layer}\0${rel}`
    const hit = this.names.get(key)
    if (hit !== undefined) return hit
    let set: Set<string>
    try {
      set = new Set(sys.readdirNames(physical(this.lowers[layer]!, rel)))
    } catch {
      set = new Set()
    }
    if (this.namesHeld + set.size > this.maxNames) {
      this.names.clear()
      this.namesHeld = 0
    }
    this.names.set(key, set)
    this.namesHeld += set.size
    return set
  }

  lookup (rel: string): LowerEntry | null {
    return this.lookupFrom(rel, 0)
  }

  /** The view of `rel` made only of layers at index >= `start`. */
  lookupFrom (rel: string, start: number): LowerEntry | null {
    const key = start === 0 ? rel : `${start}\0${rel}`
    const hit = this.memo.get(key)
    if (hit !== undefined) return hit
    const entry = this.compute(rel, start)
    if (this.memo.size >= this.maxMemo) {
      // Insertion order approximates age: drop the oldest tenth.
      let drop = Math.ceil(this.maxMemo / 10)
      for (const k of this.memo.keys()) { this.memo.delete(k); if (--drop === 0) break }
    }
    this.memo.set(key, entry)
    return entry
  }

  private compute (rel: string, start: number): LowerEntry | null {
    if (rel === '') {
      const dirs: DirLayer[] = []
      let top: Layer | undefined
      let topStat: Stats | undefined
      for (const layer of this.lowers.slice(start)) {
        const st = sys.lstat(layer.root)
        if (st === undefined || !isDirStat(st)) continue
        if (top === undefined) { top = layer; topStat = st }
        dirs.push({ layer: layer.index, rel: '' })
      }
      if (top === undefined || topStat === undefined) return null
      return { layer: top.index, rel: '', stat: topStat, dirs }
    }
    const parent = this.lookupFrom(parentOf(rel), start)
    if (parent === null || parent.dirs === undefined) return null
    const name = baseOf(rel)
    return this.lookupChild(parent.dirs, name)
  }

  private lookupChild (parentDirs: readonly DirLayer[], name: string): LowerEntry | null {
    let found: LowerEntry | null = null
    const dirs: DirLayer[] = []
    for (const pd of parentDirs) {
      const layer = this.lowers[pd.layer]!
      const dirPhys = physical(layer, pd.rel)
      const childRel = joinRel(pd.rel, name)
      const here = this.namesIn(pd.layer, pd.rel)
      const oci = ociForm(layer)
      if (oci && here.has(OCI_WHITEOUT_PREFIX + name)) break
      if (!here.has(name) || (oci && isOciMarker(name))) continue
      const st = sys.lstat(dirPhys + '/' + name)
      if (st === undefined) continue
      if (isWhiteoutStat(st)) break
      if (!isDirStat(st)) {
        if (found === null) found = { layer: pd.layer, rel: childRel, stat: st, dirs: undefined }
        break
      }
      if (found === null) found = { layer: pd.layer, rel: childRel, stat: st, dirs }
      dirs.push({ layer: pd.layer, rel: childRel })
      const phys = dirPhys + '/' + name
      if (isOpaqueLowerDir(layer, phys, oci)) break
      const redirect = redirectOf(layer, phys)
      if (redirect !== undefined) {
        // The layers below this one hold the dir's contents under another path.
        const below = this.lookupFrom(redirectTarget(pd.rel, redirect), pd.layer + 1)
        if (below !== null && below.dirs !== undefined) dirs.push(...below.dirs)
        break
      }
    }
    return found
  }

  listing (rel: string): Map<string, ListedEntry> {
    return this.listings.get(rel, () => {
      const out = new Map<string, ListedEntry>()
      for (const [name, e] of this.list(rel)) out.set(name, listedOf(e))
      return out
    })
  }

  list (rel: string): Map<string, LowerEntry> {
    const out = new Map<string, LowerEntry>()
    const dir = this.lookup(rel)
    if (dir === null || dir.dirs === undefined) return out
    const seen = new Set<string>()
    for (const pd of dir.dirs) {
      const oci = ociForm(this.lowers[pd.layer]!)
      for (const name of this.namesIn(pd.layer, pd.rel)) {
        if ((oci && isOciMarker(name)) || seen.has(name)) continue
        seen.add(name)
        const entry = this.lookup(joinRel(rel, name))
        if (entry !== null) out.set(name, entry)
      }
    }
    return out
  }
}
