/**
 * Which lower layers physically hold a path: the question docker's overlay
 * change detection asks (moby pkg/archive `changes()`: "...unless it already
 * existed in a top layer, in which case, it's a modification", an
 * `os.Stat(layer/path)` in each lower in turn). It looks at each layer on its
 * own, not at the merged lower view: a name whited out in one layer and
 * present in a layer below is still "held".
 *
 * Unlike that os.Stat, nothing here follows a symlink inside a layer: each
 * parent component must be a real directory in that layer (lstat, cached
 * per layer and directory), and the name itself is lstat'ed. In an OCI-form
 * layer a `.wh.*` name is a marker, never an entry.
 */
import type { Stats } from '../overlay/sys/fs.js'
import { sys } from '../overlay/sys/fs.js'
import { baseOf, parentOf, physical } from '../overlay/layers.js'
import { isDirStat } from '../overlay/lower-view.js'
import { isOciMarker } from '../overlay/markers.js'
import type { SourceLayer } from './stack-source.js'

export interface Held {
  readonly layer: SourceLayer
  readonly stat: Stats
}

export class Presence {
  /** `${layer}\0${rel}` -> is rel a real directory in that layer. */
  private readonly dirs = new Map<string, boolean>()

  constructor (private readonly layers: readonly SourceLayer[]) {}

  /** The first layer (in the order given, top first) that holds `rel` ('' never: the root is no entry). */
  first (rel: string): Held | undefined {
    for (const layer of this.layers) {
      const st = this.statIn(layer, rel)
      if (st !== undefined) return { layer, stat: st }
    }
    return undefined
  }

  /** Every layer that holds `rel`, top first. */
  all (rel: string): Held[] {
    const out: Held[] = []
    for (const layer of this.layers) {
      const st = this.statIn(layer, rel)
      if (st !== undefined) out.push({ layer, stat: st })
    }
    return out
  }

  /** lstat of `rel` in one layer, reached through real directories only. */
  statIn (layer: SourceLayer, rel: string): Stats | undefined {
    if (rel === '') return undefined
    if (layer.markers.ociNames && isOciMarker(baseOf(rel))) return undefined
    if (!this.isRealDir(layer, parentOf(rel))) return undefined
    return sys.lstat(physical(layer.layer, rel))
  }

  private isRealDir (layer: SourceLayer, rel: string): boolean {
    if (rel === '') return true
    const key = `${layer.index}\0${rel}`
    const hit = this.dirs.get(key)
    if (hit !== undefined) return hit
    const ok = this.isRealDir(layer, parentOf(rel)) && (() => {
      const st = sys.lstat(physical(layer.layer, rel))
      return st !== undefined && isDirStat(st)
    })()
    if (this.dirs.size > 200_000) this.dirs.clear()
    this.dirs.set(key, ok)
    return ok
  }
}
