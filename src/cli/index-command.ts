/**
 * `overlayts index build|verify|drop -o lowerdir=...,workdir=...[,index=PATH]`:
 * manage the lookup index of a layer stack without mounting it.
 */
import * as fs from 'node:fs'
import { buildIndex, indexMatches } from '../index/build.js'
import { verifyIndexDeep } from '../index/verify.js'
import { openStack } from '../overlay/stack.js'
import { indexPathFor } from '../mount-config/index-path.js'
import type { MountOptions } from '../mount-config/mount-options.js'
import { OptionError } from '../mount-config/mount-options.js'

export async function indexCommand (action: string, opts: MountOptions): Promise<number> {
  const stack = openStack({ lowers: opts.lowers })
  const db = indexPathFor(opts.index, opts.workdir === undefined ? undefined : fs.realpathSync(opts.workdir))
  if (db === undefined) throw new OptionError('no index: give workdir= (the default place) or index=PATH')
  switch (action) {
    case 'build': {
      const started = Date.now()
      const isTTY = process.stderr.isTTY
      const status = buildIndex(db, stack.lowers, (n) => {
        process.stderr.write(isTTY ? `\rindexed ${n} entries` : `indexed ${n} entries\n`)
      })
      if (isTTY) process.stderr.write('\n')
      process.stdout.write(`built ${db}: ${status.entries} entries from ${stack.lowers.length} layers in ${Date.now() - started} ms\n`)
      return 0
    }
    case 'verify': {
      const m = indexMatches(db, stack.lowers)
      if (!m.ok) {
        process.stdout.write(`${db}: not usable: ${m.reason}\n`)
        return 1
      }
      const deep = verifyIndexDeep(db, stack.lowers)
      for (const p of deep.problems) process.stdout.write(`${p}\n`)
      process.stdout.write(`${db}: ${deep.problems.length === 0 ? 'ok' : 'MISMATCH'}: ${deep.checked} paths checked\n`)
      return deep.problems.length === 0 ? 0 : 1
    }
    case 'drop':
      fs.rmSync(db, { force: true })
      process.stdout.write(`dropped ${db}\n`)
      return 0
    default:
      throw new OptionError(`unknown index action: ${action} (build, verify or drop)`)
  }
}
