/**
 * `overlayts commit [MERGED | -o ...] --output FILE.tar|FILE.tar.gz|-`: the
 * upper as an OCI image layer (src/layers/commit.ts), with its diff ID and,
 * for gzip, its digest. A file output is written beside itself and renamed
 * into place when complete: a failed commit leaves no partial layer.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Writable } from 'node:stream'
import { commitEntries, emptyCounts } from '../layers/commit.js'
import { writeLayerTar } from '../layers/tar-writer.js'
import { parseArgs } from 'node:util'
import { COMMIT_HELP } from './layer-help.js'
import { OptionError } from '../mount-config/mount-options.js'
import { openToolStack, STACK_FLAGS, stackArgsOf, type StackArgs } from './stack-args.js'

export interface CommitArgs extends StackArgs {
  readonly output: string
  readonly gzip?: boolean | undefined
}

const FLAGS = { ...STACK_FLAGS, output: { type: 'string' }, gzip: { type: 'boolean' } } as const

/** `overlayts commit ...` (argv after the verb). */
export async function commitCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, allowNegative: true })
  if (values.help === true) {
    process.stdout.write(`usage: overlayts commit [MERGED | -o lowerdir=L1:L2,upperdir=U] --output FILE.tar|FILE.tar.gz|- [--[no-]gzip] [--json]\n\n${COMMIT_HELP}\n`)
    return 0
  }
  if (positionals.length > 1) throw new OptionError(`unexpected argument: ${positionals[1]!}`)
  if (values.output === undefined) throw new OptionError('--output FILE.tar, FILE.tar.gz or - is required')
  return commitWith({ ...stackArgsOf(values, positionals[0]), output: values.output, gzip: values.gzip })
}

async function commitWith (a: CommitArgs): Promise<number> {
  const toStdout = a.output === '-'
  const gzip = a.gzip ?? (!toStdout && /\.(tgz|gz)$/.test(a.output))
  if (toStdout && process.stdout.isTTY === true) throw new OptionError('--output -: stdout is a terminal; redirect it or give a file')
  const source = await openToolStack(a, { index: 'existing' })
  let tmp: string | undefined
  let out: Writable
  if (toStdout) out = process.stdout
  else {
    const dest = path.resolve(a.output)
    const upperRoot = source.upper === undefined ? undefined : Buffer.from(source.upper.root, 'latin1').toString('utf8')
    const destDir = fs.realpathSync(path.dirname(dest))
    if (upperRoot !== undefined && (destDir === upperRoot || destDir.startsWith(upperRoot + '/'))) {
      source.close()
      throw new OptionError(`--output ${a.output}: inside the upper layer being committed`)
    }
    tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.commit-${process.pid}-${randomBytes(4).toString('hex')}`)
    out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 })
  }
  const counts = emptyCounts()
  const started = Date.now()
  try {
    const r = await writeLayerTar(commitEntries(source, counts), out, gzip)
    if (tmp !== undefined) fs.renameSync(tmp, path.resolve(a.output))
    tmp = undefined
    const seconds = (Date.now() - started) / 1000
    // With the layer on stdout, the report goes to stderr.
    const report = toStdout ? process.stderr : process.stdout
    if (a.json) {
      report.write(JSON.stringify({
        output: toStdout ? '-' : path.resolve(a.output),
        upper: Buffer.from(source.upper!.root, 'latin1').toString('utf8'),
        diffId: r.diffId,
        digest: r.digest,
        compressed: r.compressed,
        size: r.bytes,
        tarSize: r.tarBytes,
        ...counts,
        seconds
      }) + '\n')
    } else {
      report.write(`committed ${counts.entries} entries (${counts.dataBytes} bytes of file data, ${counts.whiteouts} whiteouts, ${counts.opaqueMarkers} opaque markers, ${counts.redirectedDirs} renamed dirs, ${counts.hardlinks} hardlinks) to ${toStdout ? 'stdout' : a.output}\n`)
      report.write(`diff ID  ${r.diffId}\n`)
      if (r.compressed) report.write(`digest   ${r.digest} (gzip, ${r.bytes} bytes)\n`)
      else report.write(`size     ${r.bytes} bytes\n`)
    }
    return 0
  } finally {
    if (tmp !== undefined) {
      out.destroy()
      fs.rmSync(tmp, { force: true })
    }
    source.close()
  }
}
