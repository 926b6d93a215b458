/**
 * `overlayts diff`: what the top layer changed relative to the layers below
 * it, by docker's rules for overlay layers (`docker diff`): `A` added,
 * `C` changed, `D` deleted, one change per path.
 *
 * The changed layer is the upper; on a stack without one, the top lower
 * (read in its own form, so OCI `.wh.NAME` files count as whiteouts there).
 * The rules are moby's overlay change detection, `OverlayChanges` in
 * pkg/archive/changes_linux.go with `changes()` in changes.go: a walk of
 * the changed layer only, in lexical order, parents before children:
 *
 * - a whiteout (char 0/0; in an OCI-form top lower `.wh.NAME`) is `D` of its
 *   name (`overlayDeletedFile`);
 * - an opaque directory is `D` of the directory, and its contents are then
 *   reported one by one as below (`overlayDeletedFile` returns the opaque
 *   dir's path) - but only when a lower layer holds that path: the kernel
 *   (and overlayts) also marks every directory made inside a merged
 *   directory opaque, as an optimisation, and such a new directory is `A`
 *   (the check containers/storage added to the same function);
 * - any other entry is `A`, unless some lower layer physically holds the
 *   same path (each layer on its own, see presence.ts), then `C`; a
 *   directory held below with the same size, mode and mtime (to the second
 *   when either side has no nanoseconds: `sameFsTime`) is not reported at
 *   all: it was copied up only because something below it changed, and the
 *   kernel (and overlayts) keep a copied-up parent's times;
 * - the parent of an `A` or `D` is `C` unless it is the root or was already
 *   reported (`changedDirs`), so such a copied-up parent shows as `C` when
 *   a name in it was added or removed, and not when a file in it was only
 *   modified;
 * - the list is sorted by path as bytes, docker's `changesByPath` order.
 *
 * A renamed directory (upper dir with a `trusted.overlay.redirect` xattr)
 * never occurs under docker: its overlay mounts run without redirect_dir,
 * where rename(2) of a merged directory fails with EXDEV and `mv` copies the
 * tree to the new name and deletes the old one. Reported as docker reports
 * that end state: the new directory as a directory made there (`A`, or `D`
 * when a lower holds that path, the opaque-dir rule), then every entry the
 * merged view shows under it, by the rules above (so `A` unless a lower holds
 * the same path); the old name is `D` through the whiteout the rename left.
 *
 * Where docker's rule and the merged view disagree, this follows docker:
 * - an opaque dir that replaced a lower dir is `D` though the merged view
 *   still has a directory there (its new contents then `A`/`C`);
 * - an entry whose path a lower layer holds is `C` even where that copy was
 *   invisible (whited out or under an opaque dir in a layer above it): the
 *   merged view would call it added;
 * - a file copied up without a change (e.g. chmod to the same mode) is `C`;
 * - a directory whose only change is to a file below it is not reported.
 * (Docker's graph driver switches to comparing whole trees, "naive diff",
 * when the kernel has redirect_dir on; these are the native overlay rules.)
 */
import { bytesOfString } from '../overlay/bytes.js'
import { joinRel, parentOf, physical } from '../overlay/layers.js'
import { isDirStat } from '../overlay/lower-view.js'
import type { Stats } from '../overlay/sys/fs.js'
import { sys } from '../overlay/sys/fs.js'
import { Presence } from './presence.js'
import type { SourceLayer, StackSource } from './stack-source.js'
import { byteOrder } from './stack-source.js'

export type ChangeKind = 'A' | 'C' | 'D'

/** Why a change is reported (for --json and tests). */
export type ChangeReason =
  | 'added' | 'modified' | 'whiteout' | 'opaque' | 'parent' | 'renamed' | 'renamed-content'

export interface Change {
  /** '/'-rooted path, a byte string, as docker prints it. */
  readonly path: string
  readonly kind: ChangeKind
  readonly reason: ChangeReason
  /** The layer holding the new version (A, C) or the marker that deletes (D). */
  readonly layer: SourceLayer
  /**
   * The old version: for C, the lower copy that made it a change (the first
   * lower holding the path); for D, the lower copy deleted; for A inside a
   * renamed directory, where the content comes from (a lower, at its old path).
   */
  readonly old: { readonly layer: SourceLayer, readonly path: string } | undefined
}

/** The changed layer and the layers it is compared with. */
export interface DiffSides {
  readonly changed: SourceLayer
  readonly below: readonly SourceLayer[]
}

export function diffSides (src: StackSource): DiffSides {
  if (src.upper !== undefined) return { changed: src.upper, below: src.lowers }
  return { changed: src.lowers[0]!, below: src.lowers.slice(1) }
}

/** docker's sameFsTime: equal, or the same second with either side at 0 ns (times from tar). */
function sameFsTime (a: bigint, b: bigint): boolean {
  const s = 1_000_000_000n
  return a === b || (a / s === b / s && (a % s === 0n || b % s === 0n))
}

function sameDir (a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mode === b.mode && sameFsTime(a.mtimeNs, b.mtimeNs)
}

export function diffStack (src: StackSource): Change[] {
  const { changed, below } = diffSides(src)
  const markers = changed.markers
  const presence = new Presence(below)
  const changes: Change[] = []
  const changedDirs = new Set<string>()
  const slash = (rel: string): string => '/' + rel
  const heldOld = (rel: string): Change['old'] => {
    const h = presence.first(rel)
    return h === undefined ? undefined : { layer: h.layer, path: slash(rel) }
  }

  const record = (c: Change, rel: string): void => {
    if (c.kind !== 'C') {
      const parent = parentOf(rel)
      if (parent !== '' && !changedDirs.has(parent)) {
        changes.push({ path: slash(parent), kind: 'C', reason: 'parent', layer: changed, old: heldOld(parent) })
        changedDirs.add(parent)
      }
    }
    changes.push(c)
  }

  /** A file or directory of the end state at `rel`, by the add/modify rule. */
  const addOrModify = (rel: string, st: Stats, layer: SourceLayer, reason: 'added' | 'renamed-content', from: Change['old']): void => {
    const held = presence.first(rel)
    if (held === undefined) {
      record({ path: slash(rel), kind: 'A', reason, layer, old: from }, rel)
    } else if (isDirStat(st) && isDirStat(held.stat) && sameDir(st, held.stat)) {
      return // copied up only for what is below it: docker does not record it (nor in changedDirs)
    } else {
      record({ path: slash(rel), kind: 'C', reason: reason === 'added' ? 'modified' : reason, layer, old: { layer: held.layer, path: slash(rel) } }, rel)
    }
    if (isDirStat(st)) changedDirs.add(rel)
  }

  /** A renamed directory at `rel`: reported as the copy `mv` makes without redirects. */
  const renamed = (rel: string): void => {
    const held = presence.first(rel)
    record({ path: slash(rel), kind: held === undefined ? 'A' : 'D', reason: 'renamed', layer: changed, old: undefined }, rel)
    changedDirs.add(rel)
    for (const node of src.walk(rel)) {
      const layer = src.servingLayer(node)
      const from = node.inUpper ? undefined : { layer, path: '/' + node.lower!.rel }
      addOrModify(node.rel, node.stat, layer, 'renamed-content', from)
    }
  }

  const walk = (dirRel: string): void => {
    let names: string[]
    try {
      names = sys.readdirNames(physical(changed.layer, dirRel))
    } catch { return }
    names.sort(byteOrder)
    for (const name of names) {
      const rel = joinRel(dirRel, name)
      const target = markers.whitedOutBy(name)
      if (target !== undefined) {
        if (target === '') continue // the opaque marker: read with its directory
        const gone = joinRel(dirRel, target)
        record({ path: slash(gone), kind: 'D', reason: 'whiteout', layer: changed, old: heldOld(gone) }, gone)
        continue
      }
      const phys = physical(changed.layer, rel)
      const st = sys.lstat(phys)
      if (st === undefined) continue // removed while we read: a live mount changes under us
      if (markers.isWhiteout(st)) {
        record({ path: slash(rel), kind: 'D', reason: 'whiteout', layer: changed, old: heldOld(rel) }, rel)
        continue
      }
      if (!isDirStat(st)) {
        addOrModify(rel, st, changed, 'added', undefined)
        continue
      }
      if (markers.redirectOf(phys) !== undefined) {
        renamed(rel)
        continue
      }
      if (markers.isOpaque(phys) && presence.first(rel) !== undefined) {
        record({ path: slash(rel), kind: 'D', reason: 'opaque', layer: changed, old: heldOld(rel) }, rel)
        changedDirs.add(rel)
      } else {
        addOrModify(rel, st, changed, 'added', undefined)
      }
      walk(rel)
    }
  }
  walk('')
  // docker's changesByPath: by path, as bytes (a stable sort keeps a path's one entry).
  return changes.sort((a, b) => byteOrder(a.path, b.path))
}

/** `KIND /path`, one per line, as `docker diff` prints them (paths as raw bytes). */
export function formatChanges (changes: readonly Change[]): Buffer {
  return Buffer.concat(changes.map((c) => bytesOfString(`${c.kind} ${c.path}\n`)))
}
