/**
 * The layer stack a layer tool works on, opened either offline from mount
 * options (`-o lowerdir=A:B,upperdir=U[,workdir=W]`, parsed by the mount's
 * own rules: `\:` and `\,` escapes, relative paths, `whiteouts=`) or from a
 * live mountpoint (live-mount.ts: the daemon's mount record, or a kernel
 * overlayfs mount's options). Either way the tool then reads the layer
 * directories themselves, never the mount, and sees the merged view through
 * the overlay core's own Resolver and lower view (src/overlay), so it applies
 * exactly the daemon's lookup rules: whiteouts of both forms, opaque dirs,
 * redirects, and the upper in the marker form it was written in (kernel,
 * userxattr, oci: the daemon's recorded choice, the kernel mount's
 * userxattr option, or offline the option, else what the upper holds).
 *
 * API:
 *   const src = openStackSource({ merged: '/m' })            // live mount
 *   const src = openStackSource({ options: ['lowerdir=..'] }) // offline
 *   src.layers        upper first (if any), then lowers top first
 *   src.node(rel)     the merged entry at a path ('' = root), or null
 *   src.names(node)   a merged directory's names, sorted as bytes
 *   src.walk()        every merged entry below the root, depth first, sorted
 *   src.servingLayer(node), src.dirParts(node)   where an entry comes from
 *   src.upperForm     the upper's marker form; each layer's `markers` reads its markers
 *   src.close()
 * Paths are merged-relative byte strings (src/overlay/bytes.ts), no leading '/'.
 *
 * Lower lookups come from the stack's SQLite lookup index (src/index) when
 * one matches the layers: the daemon's, for a live mount; offline, the one
 * at workdir/ or index=PATH, built there first if missing or stale (as the
 * next mount would), with `index: 'auto'`. Otherwise the layers are scanned.
 * The upper is always read live, as the daemon reads it.
 *
 * From src/cli this uses only leaf modules, shared with the mount: option
 * parsing, the index's place, the daemon's mount record.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseMountOptions } from '../mount-config/mount-options.js'
import { indexPathFor } from '../mount-config/index-path.js'
import { buildIndex, indexMatches } from '../index/build.js'
import { IndexedLowerView } from '../index/indexed-lower-view.js'
import { displayPath } from '../overlay/bytes.js'
import { FsError } from '../overlay/errors.js'
import type { WhiteoutForm } from '../overlay/layer-form.js'
import type { Layer, LayerStack } from '../overlay/layers.js'
import { joinRel } from '../overlay/layers.js'
import type { ListedEntry, LowerEntry, LowerView } from '../overlay/lower-view.js'
import { ScanLowerView } from '../overlay/lower-view.js'
import type { Node } from '../overlay/resolve.js'
import { Resolver } from '../overlay/resolve.js'
import { openStack, StackError } from '../overlay/stack.js'
import { sys } from '../overlay/sys/fs.js'
import type { UpperForm } from '../overlay/upper-form.js'
import { chooseUpperForm, lowerXattrNamespace } from '../overlay/upper-form.js'
import { UpperMarkers } from '../overlay/upper-markers.js'
import type { LayerMarkers } from './layer-markers.js'
import { lowerLayerMarkers, upperLayerMarkers } from './layer-markers.js'
import type { LiveStack } from './live-mount.js'
import { liveStackOf } from './live-mount.js'
import { detectUpperForm } from './upper-form-of.js'

/** Where the stack was found. */
export type StackRequest =
  | { readonly merged: string, readonly options?: undefined }
  | { readonly options: readonly string[], readonly cwd?: string, readonly merged?: undefined }

export interface OpenOptions {
  /**
   * 'auto' (default): use a matching index; offline, build it where the
   * stack keeps one (workdir or index=PATH) when missing or stale.
   * 'existing': use a matching index, never build. 'off': scan the layers.
   */
  readonly index?: 'auto' | 'existing' | 'off'
  /** Told the number of entries indexed so far while an index is built. */
  readonly onIndexProgress?: (entries: number) => void
}

/** One layer of the stack as the tools name it. */
export interface SourceLayer {
  readonly role: 'upper' | 'lower'
  /** Position among the lowers, 0 = top; -1 for the upper. */
  readonly index: number
  /** Absolute path of its root, a byte string. */
  readonly root: string
  /** For people: "upper", "lower 0", ... */
  readonly label: string
  /** How its whiteouts are read: lowers as decided per layer; the upper `oci` in the oci upper form, else `kernel`. */
  readonly whiteouts: WhiteoutForm
  /** What its marker names and xattrs mean (layer-markers.ts). */
  readonly markers: LayerMarkers
  readonly layer: Layer
}

/** One physical directory merged into a merged directory. */
export interface DirPart {
  readonly layer: SourceLayer
  /** Its path inside that layer (differs from the merged path after a redirect). */
  readonly rel: string
}

export type StackOrigin =
  | { readonly kind: 'offline' }
  | { readonly kind: 'overlayts' | 'kernel-overlay', readonly merged: string, readonly pid: number | undefined }

export interface IndexUse {
  readonly path: string
  readonly state: 'reused' | 'built'
  readonly entries: number
}

/** The lower view the tools use: the index while it agrees with the layers, a scan for good once it does not. */
class ToolLowerView implements LowerView {
  private current: LowerView
  private indexed: IndexedLowerView | undefined
  stale = false

  constructor (private readonly scan: LowerView) {
    this.current = scan
  }

  useIndex (indexed: IndexedLowerView): void {
    this.indexed = indexed
    this.current = indexed
  }

  lookup (rel: string): LowerEntry | null { return this.current.lookup(rel) }
  list (rel: string): Map<string, LowerEntry> { return this.current.list(rel) }
  listing (rel: string): Map<string, ListedEntry> { return this.current.listing(rel) }
  markStale (): void { this.stale = true; this.current = this.scan }
  close (): void { this.indexed?.close() }
}

export class StackSource {
  /** Upper first (if any), then the lowers top first. */
  readonly layers: readonly SourceLayer[]
  readonly upper: SourceLayer | undefined
  readonly lowers: readonly SourceLayer[]
  /** The merged view, by the daemon's rules (upper live over the lower view). */
  readonly resolver: Resolver

  constructor (
    readonly stack: LayerStack,
    readonly origin: StackOrigin,
    private readonly view: ToolLowerView,
    readonly index: IndexUse | undefined,
    /** The upper's marker form (src/overlay/upper-form.ts). */
    readonly upperForm: UpperForm = 'kernel'
  ) {
    const upperMarkers = new UpperMarkers(sys, undefined, upperForm)
    const label = (l: Layer): SourceLayer => l.role === 'upper'
      ? { role: l.role, index: l.index, root: l.root, layer: l, label: 'upper', whiteouts: upperForm === 'oci' ? 'oci' : 'kernel', markers: upperLayerMarkers(upperMarkers) }
      : { role: l.role, index: l.index, root: l.root, layer: l, label: `lower ${l.index}`, whiteouts: l.whiteouts ?? 'oci', markers: lowerLayerMarkers(l) }
    this.upper = stack.upper === undefined ? undefined : label(stack.upper)
    this.lowers = stack.lowers.map(label)
    this.layers = this.upper === undefined ? this.lowers : [this.upper, ...this.lowers]
    this.resolver = new Resolver(stack, view, upperMarkers)
  }

  get lowerView (): LowerView { return this.view }

  /** The index was found disagreeing with a layer (changed behind its back) and the layers were scanned instead. */
  get indexWentStale (): boolean { return this.view.stale }

  /** The merged entry at `rel` ('' = root), or null if nothing is visible there (or a parent is not a directory). */
  node (rel: string): Node | null {
    try {
      return this.resolver.resolve(rel)
    } catch (e) {
      if (e instanceof FsError && e.code === 'ENOTDIR') return null
      throw e
    }
  }

  /** The layer whose object is visible at `node`. */
  servingLayer (node: Node): SourceLayer {
    if (node.inUpper) return this.upper!
    return this.lowers[node.lower!.layer]!
  }

  /** A directory's physical parts, top first: its upper dir (if any), then every lower dir merged beneath it. */
  dirParts (node: Node): DirPart[] {
    const out: DirPart[] = []
    if (node.inUpper) out.push({ layer: this.upper!, rel: node.rel })
    const lower = node.lowerRel === undefined ? null : node.lower
    for (const d of lower?.dirs ?? []) out.push({ layer: this.lowers[d.layer]!, rel: d.rel })
    return out
  }

  /** The names a merged directory shows, sorted as bytes (the mount's listing without '.' and '..'). */
  names (dir: Node): string[] {
    return this.childrenOf(dir).map((n) => n.rel.slice(n.rel.lastIndexOf('/') + 1))
  }

  /** Every merged entry below `from` (default the root), depth first, each directory's names in byte order. */
  * walk (from = ''): Generator<Node> {
    const root = this.node(from)
    if (root === null || !root.isDir) return
    // An explicit stack, not recursion: layers may be thousands of levels deep.
    const todo: Node[] = this.childrenOf(root).reverse()
    while (todo.length > 0) {
      const n = todo.pop()!
      yield n
      if (n.isDir) for (const k of this.childrenOf(n).reverse()) todo.push(k)
    }
  }

  /** A merged directory's entries, in byte order of their names. */
  childrenOf (dir: Node): Node[] {
    const names = new Set<string>()
    if (dir.inUpper) for (const n of sys.readdirNames(dir.phys)) names.add(n)
    if (dir.lowerRel !== undefined) for (const n of this.view.listing(dir.lowerRel).keys()) names.add(n)
    const out: Node[] = []
    for (const n of [...names].sort(byteOrder)) {
      // The lookup decides: a whiteout in upper hides a lower name, as through the mount.
      const child = this.node(joinRel(dir.rel, n))
      if (child !== null) out.push(child)
    }
    return out
  }

  close (): void { this.view.close() }
}

export function byteOrder (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Opens the stack of a live mount (`{ merged }`) or of mount options
 * (`{ options }`). Errors: StackError (a layer missing, not a directory, ...),
 * OptionError (bad options), LiveMountError (not a mount, no record).
 */
export function openStackSource (req: StackRequest, opts: OpenOptions = {}): StackSource {
  let stack: LayerStack
  let origin: StackOrigin
  let indexDb: string | undefined
  let mayBuild = opts.index !== 'existing'
  let upperForm: UpperForm
  if (req.merged !== undefined) {
    const live: LiveStack = liveStackOf(req.merged)
    stack = openStack({ lowers: live.lowers, upper: live.upper, whiteoutForms: live.whiteoutForms, readOnlyInspection: true })
    upperForm = live.upperForm
    origin = { kind: live.kind, merged: live.merged, pid: live.record?.pid }
    if (live.record !== undefined) {
      const ids = [...stack.lowers, ...(stack.upper === undefined ? [] : [stack.upper])]
      ids.forEach((l, i) => {
        const want = live.record!.identities[i]
        if (want !== undefined && (want.dev !== String(l.dev) || want.ino !== String(l.ino))) {
          throw new StackError(`${displayPath(l.root)}: not the directory the mount at ${live.merged} was made with (replaced since?)`, displayPath(l.root))
        }
      })
      indexDb = live.record.indexDb
    } else {
      indexDb = undefined
    }
    // A live mount's index is its daemon's: read it, never rebuild it under the daemon.
    mayBuild = false
  } else {
    const o = parseMountOptions(req.options, req.cwd)
    stack = openStack({ lowers: o.lowers, upper: o.upper, whiteouts: o.whiteouts, readOnlyInspection: true })
    upperForm = offlineUpperForm(stack, o.upperForm)
    // A workdir is checked as the mount checks it (same filesystem as upper, ...) only to find the index in it.
    indexDb = indexPathFor(o.index, o.workdir === undefined ? undefined : realOrSelf(o.workdir))
    origin = { kind: 'offline' }
  }
  // The lowers' overlay xattrs in the namespace the upper's form reads them in, as the daemon does.
  const ns = lowerXattrNamespace(upperForm)
  if (ns !== 'trusted') stack = { ...stack, lowers: stack.lowers.map((l) => ({ ...l, xattrs: ns })) }
  const view = new ToolLowerView(new ScanLowerView(stack.lowers))
  let use: IndexUse | undefined
  if (opts.index !== 'off' && indexDb !== undefined) {
    const m = indexMatches(indexDb, stack.lowers)
    if (m.ok) {
      use = { path: indexDb, state: 'reused', entries: m.entries }
    } else if (mayBuild && fs.existsSync(path.dirname(indexDb))) {
      const status = buildIndex(indexDb, stack.lowers, opts.onIndexProgress)
      use = { path: indexDb, state: 'built', entries: status.entries }
    }
  }
  if (use !== undefined) view.useIndex(new IndexedLowerView(use.path, stack.lowers, view, () => view.markStale()))
  return new StackSource(stack, origin, view, use, upperForm)
}

/**
 * The upper's form for a stack given by options: the option if it names
 * one; with `auto`, what the upper holds (upper-form-of.ts), else the
 * daemon's probe (upper-form.ts) in the workdir's work dir when there is
 * one (what the daemon would choose there), else the kernel's.
 */
function offlineUpperForm (stack: LayerStack, option: UpperForm | 'auto'): UpperForm {
  if (option !== 'auto') return option
  if (stack.upper === undefined) return 'kernel'
  const held = detectUpperForm(stack.upper.root)
  if (held !== undefined) return held
  if (stack.workdir !== undefined && stack.work !== undefined && sys.lstat(stack.work) !== undefined) {
    try {
      return chooseUpperForm(sys, stack.work, 'auto').form
    } catch { /* not writable by this user */ }
  }
  return 'kernel'
}

function realOrSelf (p: string): string {
  try { return fs.realpathSync(p) } catch { return p }
}
