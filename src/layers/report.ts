/**
 * How the layer tools name layers and paths in `--json` output: a layer by
 * its label ("upper", "lower 0", ...), position and root; a path (a byte
 * string) as displayPath shows it: valid UTF-8 as is, other bytes as \xNN.
 */
import { displayPath } from '../overlay/bytes.js'
import type { SourceLayer, StackSource } from './stack-source.js'

export interface LayerRef {
  readonly label: string
  readonly index: number
  readonly root: string
}

export function layerRef (l: SourceLayer): LayerRef {
  return { label: l.label, index: l.index, root: displayPath(l.root) }
}

/** The stack a report is about: where it was found and its layers, top first. */
export function stackJson (src: StackSource): object {
  return {
    origin: src.origin,
    index: src.index === undefined ? null : { path: src.index.path, state: src.index.state, entries: src.index.entries },
    layers: src.layers.map((l) => ({ ...layerRef(l), role: l.role, whiteouts: l.whiteouts }))
  }
}

export function writeJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_, v: unknown) => typeof v === 'bigint' ? Number(v) : v, 2) + '\n')
}
