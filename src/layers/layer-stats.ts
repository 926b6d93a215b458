/**
 * `overlayts layers`: what each layer holds and how much of it the merged
 * view shows, in the sense of dive's "wasted space".
 *
 * For every layer (upper first, then the lowers top first):
 * - entries: its names (directories included, the root not), markers apart:
 *   whiteouts (char 0/0; `.wh.*` files in an OCI-form layer) and opaque
 *   markers are counted as `markers`, not entries;
 * - bytes: the sizes of its regular files (a file with several names in
 *   the layer once);
 * - visible: the entries the merged view serves from this layer (a
 *   non-directory visible at some merged path, or a directory merged into a
 *   merged directory, also through a redirect), and their bytes;
 * - shadowed: entries the merged view shows a copy of from a layer above at
 *   the same path; hidden: entries the merged view has nothing for (a
 *   whiteout, an opaque directory or a non-directory above them); their
 *   bytes are the layer's wasted bytes.
 * The stack's efficiency is visible bytes / all bytes (1 when no byte is
 * shadowed or hidden), as dive's efficiency score compares what is kept
 * with what the layers carry.
 *
 * Cost: one walk of each layer (readdir, lstat of files for their sizes)
 * and one walk of the merged view, whose lower part comes from the lookup
 * index when the stack has one (stack-source.ts): 100k entries over 64
 * layers answer in seconds (scripts/bench-layers.ts).
 */
import { joinRel, physical } from '../overlay/layers.js'
import { isWhiteoutStat, isOciMarker } from '../overlay/markers.js'
import type { Node } from '../overlay/resolve.js'
import { sys } from '../overlay/sys/fs.js'
import type { SourceLayer, StackSource } from './stack-source.js'

export interface LayerStats {
  readonly layer: SourceLayer
  entries: number
  bytes: number
  markers: number
  visibleEntries: number
  visibleBytes: number
  shadowedEntries: number
  shadowedBytes: number
  hiddenEntries: number
  hiddenBytes: number
}

export interface StackStats {
  readonly layers: readonly LayerStats[]
  readonly total: { entries: number, bytes: number, visibleEntries: number, visibleBytes: number, wastedEntries: number, wastedBytes: number }
  /** Merged view entries (the root not counted). */
  readonly mergedEntries: number
  /** visibleBytes / bytes; 1 for a stack without bytes. */
  readonly efficiency: number
}

export interface StatsProgress {
  phase (label: string, total: number): void
  update (done: number): void
}

const key = (layer: SourceLayer, rel: string): string => `${layer.index}\0${rel}`

/** One physical entry of a layer, as the tally needs it. */
interface PhysEntry { rel: string, size: number, counted: boolean }

export function stackStats (src: StackSource, progress?: StatsProgress): StackStats {
  // 1. The merged view: which physical entries it serves.
  const visible = new Set<string>()
  let merged = 0
  progress?.phase('walking the merged view', 0)
  const markVisible = (node: Node): void => {
    if (node.isDir) {
      for (const part of src.dirParts(node)) visible.add(key(part.layer, part.rel))
    } else {
      const layer = src.servingLayer(node)
      visible.add(key(layer, node.inUpper ? node.rel : node.lower!.rel))
    }
  }
  for (const node of src.walk()) {
    markVisible(node)
    if (++merged % 2000 === 0) progress?.update(merged)
  }
  // 2. Each layer, physically.
  const layers: LayerStats[] = []
  progress?.phase('reading layers', src.layers.length)
  src.layers.forEach((layer, i) => {
    const s: LayerStats = { layer, entries: 0, bytes: 0, markers: 0, visibleEntries: 0, visibleBytes: 0, shadowedEntries: 0, shadowedBytes: 0, hiddenEntries: 0, hiddenBytes: 0 }
    for (const e of physicalEntries(layer, s)) {
      s.entries++
      s.bytes += e.counted ? e.size : 0
      const bytes = e.counted ? e.size : 0
      if (visible.has(key(layer, e.rel))) {
        s.visibleEntries++
        s.visibleBytes += bytes
      } else if (src.node(e.rel) !== null) {
        s.shadowedEntries++
        s.shadowedBytes += bytes
      } else {
        s.hiddenEntries++
        s.hiddenBytes += bytes
      }
    }
    layers.push(s)
    progress?.update(i + 1)
  })
  const sum = (f: (s: LayerStats) => number): number => layers.reduce((a, s) => a + f(s), 0)
  const bytes = sum((s) => s.bytes)
  const visibleBytes = sum((s) => s.visibleBytes)
  return {
    layers,
    total: {
      entries: sum((s) => s.entries),
      bytes,
      visibleEntries: sum((s) => s.visibleEntries),
      visibleBytes,
      wastedEntries: sum((s) => s.shadowedEntries + s.hiddenEntries),
      wastedBytes: bytes - visibleBytes
    },
    mergedEntries: merged,
    efficiency: bytes === 0 ? 1 : visibleBytes / bytes
  }
}

/**
 * Every entry of one layer (depth first), markers counted into `s.markers`
 * and left out. Regular files carry their size, counted once per inode.
 */
function * physicalEntries (layer: SourceLayer, s: LayerStats): Generator<PhysEntry> {
  const oci = layer.markers.ociNames
  const seenInodes = new Set<bigint>()
  const dirs: string[] = ['']
  while (dirs.length > 0) {
    const dir = dirs.pop()!
    let entries
    try {
      entries = sys.readdir(physical(layer.layer, dir))
    } catch { continue }
    for (const d of entries) {
      const name = d.name
      const rel = joinRel(dir, name)
      if (oci && isOciMarker(name)) { s.markers++; continue }
      if (d.isDirectory()) {
        dirs.push(rel)
        yield { rel, size: 0, counted: false }
        continue
      }
      if (d.isCharacterDevice()) {
        const st = sys.lstat(physical(layer.layer, rel))
        if (st !== undefined && isWhiteoutStat(st)) { s.markers++; continue }
      }
      if (d.isFile()) {
        const st = sys.lstat(physical(layer.layer, rel))
        if (st === undefined) continue
        const first = st.nlink <= 1n || !seenInodes.has(st.ino)
        if (st.nlink > 1n) seenInodes.add(st.ino)
        yield { rel, size: Number(st.size), counted: first }
        continue
      }
      yield { rel, size: 0, counted: false }
    }
  }
}
