/**
 * `overlayts which PATH...`: where a merged path comes from.
 *
 * - A file (any non-directory): the layer serving it, and every copy of it
 *   in the layers below that it shadows (each layer on its own, at the path
 *   the lowers would show it: the merged path, or its place under a
 *   redirected directory), with their sizes.
 * - A directory: every layer directory merged into it, top first, with its
 *   path in that layer (which differs after a redirect, shown with the
 *   redirect followed) and whether it is opaque (the merge stops there);
 *   and the copies below that an opaque directory or a non-directory cut off.
 * - An absent path: the first component that is absent, and why: a
 *   whiteout (which layer, which form), an opaque directory above a copy,
 *   a non-directory parent; with the copies it hides and their sizes.
 *
 * The lookups are the core's (Resolver, lower view); this module only
 * explains them, reading the layers for the markers.
 */
import { baseOf, joinRel, parentOf, physical } from '../overlay/layers.js'
import { isDirStat } from '../overlay/lower-view.js'
import { isWhiteoutStat, OCI_WHITEOUT_PREFIX } from '../overlay/markers.js'
import type { Node } from '../overlay/resolve.js'
import type { Stats } from '../overlay/sys/fs.js'
import { sys } from '../overlay/sys/fs.js'
import { Presence } from './presence.js'
import type { SourceLayer, StackSource } from './stack-source.js'

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev'

export interface Copy {
  readonly layer: SourceLayer
  /** Path inside the layer ('/'-rooted). */
  readonly path: string
  readonly type: EntryType
  readonly size: number
}

export interface DirPartInfo {
  readonly layer: SourceLayer
  readonly path: string
  readonly opaque: boolean
  /** The redirect xattr this directory carries, if any (its lower part is looked up there). */
  readonly redirect: string | undefined
}

export type Which =
  | {
    readonly path: string
    readonly present: true
    readonly type: EntryType
    readonly layer: SourceLayer
    /** Its path in that layer. */
    readonly layerPath: string
    readonly size: number
    /** Copies below the serving layer, hidden by it (non-directories) or cut off below the merge (directories). */
    readonly shadows: readonly Copy[]
    /** Directories: the layer directories merged into it, top first. */
    readonly parts: readonly DirPartInfo[] | undefined
  }
  | {
    readonly path: string
    readonly present: false
    /** The first absent component's path ('/'-rooted). */
    readonly missing: string
    readonly reason: 'whiteout' | 'opaque' | 'not-a-directory' | 'nowhere'
    /** The marker or entry responsible: the whiteout, the opaque dir, the non-directory. */
    readonly by: { readonly layer: SourceLayer, readonly path: string, readonly form?: 'kernel' | 'oci' } | undefined
    /** Copies of the missing name in the layers that the marker hides. */
    readonly hidden: readonly Copy[]
  }

export function typeOf (st: Stats): EntryType {
  switch (Number(st.mode) & 0o170000) {
    case 0o040000: return 'dir'
    case 0o120000: return 'symlink'
    case 0o010000: return 'fifo'
    case 0o140000: return 'socket'
    case 0o020000: return 'chardev'
    case 0o060000: return 'blockdev'
    default: return 'file'
  }
}

const rooted = (rel: string): string => '/' + rel

function isOpaqueDir (layer: SourceLayer, rel: string): boolean {
  return layer.markers.isOpaque(physical(layer.layer, rel))
}

/** The whiteout of `name` in one layer's directory `dirRel`, in either form. */
function whiteoutIn (layer: SourceLayer, dirRel: string, name: string): { path: string, form: 'kernel' | 'oci' } | undefined {
  const st = sys.lstat(physical(layer.layer, joinRel(dirRel, name)))
  if (st !== undefined && isWhiteoutStat(st)) return { path: rooted(joinRel(dirRel, name)), form: 'kernel' }
  if (layer.markers.ociNames && sys.lstat(physical(layer.layer, joinRel(dirRel, OCI_WHITEOUT_PREFIX + name))) !== undefined) {
    return { path: rooted(joinRel(dirRel, OCI_WHITEOUT_PREFIX + name)), form: 'oci' }
  }
  return undefined
}

export class WhichExplainer {
  private readonly presence: Presence

  constructor (private readonly src: StackSource) {
    this.presence = new Presence(src.layers)
  }

  /** Copies of `rel` in the layers below `layer` (markers and whiteouts are not copies). */
  private copiesBelow (layer: SourceLayer, rel: string): Copy[] {
    const below = this.src.layers.slice(this.src.layers.indexOf(layer) + 1)
    const out: Copy[] = []
    for (const l of below) {
      const st = this.presence.statIn(l, rel)
      if (st === undefined || isWhiteoutStat(st)) continue
      out.push({ layer: l, path: rooted(rel), type: typeOf(st), size: Number(st.size) })
    }
    return out
  }

  /** The path the lowers would show the entry at (differs from the merged path under a redirected directory). */
  private lowerPathOf (node: Node): string {
    if (node.rel === '') return ''
    const parent = this.src.node(parentOf(node.rel))
    return parent?.lowerRel === undefined ? node.rel : joinRel(parent.lowerRel, baseOf(node.rel))
  }

  explain (rel: string): Which {
    const node = this.src.node(rel)
    if (node !== null) return this.present(rel, node)
    return this.absent(rel)
  }

  private present (rel: string, node: Node): Which {
    const layer = this.src.servingLayer(node)
    const layerPath = node.inUpper ? node.rel : node.lower!.rel
    const base = { path: rooted(rel), present: true as const, type: typeOf(node.stat), layer, layerPath: rooted(layerPath), size: Number(node.stat.size) }
    if (!node.isDir) {
      return { ...base, shadows: this.copiesBelow(layer, node.inUpper ? this.lowerPathOf(node) : node.lower!.rel), parts: undefined }
    }
    const parts = this.src.dirParts(node).map((p): DirPartInfo => {
      const redirect = p.layer.markers.redirectOf(physical(p.layer.layer, p.rel))
      return { layer: p.layer, path: rooted(p.rel), opaque: isOpaqueDir(p.layer, p.rel), redirect }
    })
    // Below the last part: copies the merge never reaches (cut off by an opaque dir, or by a non-directory above).
    const last = parts[parts.length - 1]!
    const lastRel = last.path.slice(1)
    const shadows = this.copiesBelow(last.layer, lastRel)
    return { ...base, shadows, parts }
  }

  private absent (rel: string): Which {
    // The deepest present ancestor, then why its child is missing.
    const names = rel.split('/')
    let parent = this.src.node('')!
    let i = 0
    for (; i < names.length - 1; i++) {
      const next = this.src.node(joinRel(parent.rel, names[i]!))
      if (next === null) break
      if (!next.isDir) {
        const l = this.src.servingLayer(next)
        return { path: rooted(rel), present: false, missing: rooted(joinRel(next.rel, names[i + 1]!)), reason: 'not-a-directory', by: { layer: l, path: rooted(next.inUpper ? next.rel : next.lower!.rel) }, hidden: [] }
      }
      parent = next
    }
    const name = names[i]!
    const missingRel = joinRel(parent.rel, name)
    const missing = rooted(missingRel)
    const parts = this.src.dirParts(parent)
    // The copies a marker hides: of the missing name and, below it, of the path asked for.
    const rest = names.slice(i + 1).join('/')
    const hiddenBelow = (layer: SourceLayer, relInLayer: string): Copy[] => {
      const copies = this.copiesBelow(layer, relInLayer)
      if (rest === '') return copies
      return [...copies, ...this.copiesBelow(layer, joinRel(relInLayer, rest))]
    }
    for (const [k, part] of parts.entries()) {
      const wh = whiteoutIn(part.layer, part.rel, name)
      if (wh !== undefined) {
        return { path: rooted(rel), present: false, missing, reason: 'whiteout', by: { layer: part.layer, path: wh.path, form: wh.form }, hidden: hiddenBelow(part.layer, joinRel(part.rel, name)) }
      }
      // The merge of `parent` stops at an opaque part: copies below it are cut off.
      if (k === parts.length - 1 && isOpaqueDir(part.layer, part.rel)) {
        const hidden = hiddenBelow(part.layer, joinRel(part.rel, name))
        if (hidden.length > 0) return { path: rooted(rel), present: false, missing, reason: 'opaque', by: { layer: part.layer, path: rooted(part.rel) }, hidden }
      }
    }
    // Below the merged parent's last part, the first layer with something at
    // that path cut the merge off: a whiteout of the parent, or a non-directory.
    const last = parts[parts.length - 1]
    if (last !== undefined && last.rel !== '') {
      for (const l of this.src.layers.slice(this.src.layers.indexOf(last.layer) + 1)) {
        const wh = whiteoutIn(l, parentOf(last.rel), baseOf(last.rel))
        const st = wh === undefined ? this.presence.statIn(l, last.rel) : undefined
        if (wh === undefined && st === undefined) continue
        const hidden = hiddenBelow(l, joinRel(last.rel, name))
        if (hidden.length === 0) break
        if (wh !== undefined) return { path: rooted(rel), present: false, missing, reason: 'whiteout', by: { layer: l, path: wh.path, form: wh.form }, hidden }
        if (!isDirStat(st!)) return { path: rooted(rel), present: false, missing, reason: 'not-a-directory', by: { layer: l, path: rooted(last.rel) }, hidden }
        break
      }
    }
    return { path: rooted(rel), present: false, missing, reason: 'nowhere', by: undefined, hidden: [] }
  }
}
