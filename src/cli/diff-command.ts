/**
 * `overlayts diff [MERGED | -o lowerdir=...,upperdir=...] [--json]`: the
 * changes of the upper (or, without one, of the top lower) relative to the
 * layers below, as `docker diff` prints them. The rules: src/layers/diff.ts.
 */
import { displayPath } from '../overlay/bytes.js'
import { diffSides, diffStack, formatChanges } from '../layers/diff.js'
import { layerRef, stackJson, writeJson } from '../layers/report.js'
import { parseArgs } from 'node:util'
import { DIFF_HELP } from './layer-help.js'
import { OptionError } from '../mount-config/mount-options.js'
import { openToolStack, STACK_FLAGS, stackArgsOf } from './stack-args.js'

export async function diffCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: STACK_FLAGS, allowPositionals: true })
  if (values.help === true) {
    process.stdout.write(`usage: overlayts diff [MERGED | -o lowerdir=L1:L2[,upperdir=U]] [--json]\n\n${DIFF_HELP}\n`)
    return 0
  }
  if (positionals.length > 1) throw new OptionError(`unexpected argument: ${positionals[1]!}`)
  const a = stackArgsOf(values, positionals[0])
  const src = await openToolStack(a)
  try {
    const changes = diffStack(src)
    if (a.json) {
      writeJson({
        stack: stackJson(src),
        changed: layerRef(diffSides(src).changed),
        changes: changes.map((c) => ({
          path: displayPath(c.path),
          kind: c.kind,
          reason: c.reason,
          layer: c.layer.label,
          old: c.old === undefined ? null : { layer: c.old.layer.label, path: displayPath(c.old.path) }
        }))
      })
    } else {
      process.stdout.write(formatChanges(changes))
    }
    return 0
  } finally {
    src.close()
  }
}
