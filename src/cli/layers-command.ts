/**
 * `overlayts layers [MERGED | -o lowerdir=...[,upperdir=...]] [--json]`:
 * per-layer counts and the stack's efficiency (src/layers/layer-stats.ts).
 */
import { parseArgs } from 'node:util'
import { displayPath } from '../overlay/bytes.js'
import { stackStats } from '../layers/layer-stats.js'
import { layerRef, stackJson, writeJson } from '../layers/report.js'
import { humanBytes, table } from './human.js'
import { LAYERS_HELP } from './layer-help.js'
import { OptionError } from '../mount-config/mount-options.js'
import { progressLine } from './progress.js'
import { openToolStack, STACK_FLAGS, stackArgsOf } from './stack-args.js'

export async function layersCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: STACK_FLAGS, allowPositionals: true })
  if (values.help === true) {
    process.stdout.write(`usage: overlayts layers [MERGED | -o lowerdir=L1:L2[,upperdir=U][,workdir=W]] [--json]\n\n${LAYERS_HELP}\n`)
    return 0
  }
  if (positionals.length > 1) throw new OptionError(`unexpected argument: ${positionals[1]!}`)
  const a = stackArgsOf(values, positionals[0])
  const src = await openToolStack(a)
  const progress = progressLine()
  try {
    const stats = stackStats(src, progress)
    progress.stop()
    if (a.json) {
      writeJson({
        stack: stackJson(src),
        layers: stats.layers.map((s) => ({ layer: layerRef(s.layer), whiteouts: s.layer.whiteouts, entries: s.entries, bytes: s.bytes, markers: s.markers, visibleEntries: s.visibleEntries, visibleBytes: s.visibleBytes, shadowedEntries: s.shadowedEntries, shadowedBytes: s.shadowedBytes, hiddenEntries: s.hiddenEntries, hiddenBytes: s.hiddenBytes })),
        total: stats.total,
        mergedEntries: stats.mergedEntries,
        efficiency: stats.efficiency
      })
      return 0
    }
    const rows = [['LAYER', 'ENTRIES', 'BYTES', 'VISIBLE', 'VIS. BYTES', 'SHADOWED', 'HIDDEN', 'WASTED', 'FORM', 'PATH']]
    for (const s of stats.layers) {
      rows.push([s.layer.label, String(s.entries), humanBytes(s.bytes), String(s.visibleEntries), humanBytes(s.visibleBytes),
        String(s.shadowedEntries), String(s.hiddenEntries), humanBytes(s.shadowedBytes + s.hiddenBytes), s.layer.whiteouts, displayPath(s.layer.root)])
    }
    const t = stats.total
    process.stdout.write(table(rows, new Set([1, 2, 3, 4, 5, 6, 7])))
    process.stdout.write(`${stats.layers.length} layers: ${t.entries} entries, ${humanBytes(t.bytes)}; merged view ${stats.mergedEntries} entries, ${humanBytes(t.visibleBytes)}; ` +
      `wasted ${t.wastedEntries} entries, ${humanBytes(t.wastedBytes)}; efficiency ${(stats.efficiency * 100).toFixed(1)}%\n`)
    return 0
  } finally {
    progress.stop()
    src.close()
  }
}
