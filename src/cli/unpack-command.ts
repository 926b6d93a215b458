/**
 * `overlayts unpack LAYER DIR`: an OCI/Docker layer tarball (plain or gzip,
 * `-` for stdin) into DIR, usable as a lowerdir (src/layers/unpack.ts).
 */
import * as fs from 'node:fs'
import type { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import { DEFAULT_LIMITS } from '../layers/tar-safety.js'
import { unpackLayer, type WhiteoutForm } from '../layers/unpack.js'
import { UNPACK_HELP } from './layer-help.js'
import { OptionError } from '../mount-config/mount-options.js'

export interface UnpackArgs {
  readonly layer: string
  readonly dir: string
  readonly whiteouts: WhiteoutForm
  readonly digest?: string | undefined
  readonly json: boolean
  readonly maxEntries: number
  readonly maxBytes: number
}

const FLAGS = {
  whiteouts: { type: 'string' },
  digest: { type: 'string' },
  json: { type: 'boolean' },
  'max-entries': { type: 'string' },
  'max-bytes': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

function count (flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new OptionError(`--${flag}: not a count: ${v}`)
  return n
}

/** `overlayts unpack ...` (argv after the verb). */
export async function unpackCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true })
  if (values.help === true) {
    process.stdout.write(`usage: overlayts unpack [--whiteouts oci|kernel] [--digest sha256:HEX] [--json]\n                        [--max-entries N] [--max-bytes N] LAYER DIR\n\n${UNPACK_HELP}\n`)
    return 0
  }
  if (positionals.length !== 2) throw new OptionError('usage: overlayts unpack [--whiteouts oci|kernel] [--digest sha256:HEX] [--json] LAYER DIR')
  const whiteouts = values.whiteouts ?? 'oci'
  if (whiteouts !== 'oci' && whiteouts !== 'kernel') throw new OptionError(`--whiteouts is oci or kernel, not ${whiteouts}`)
  return unpackWith({
    layer: positionals[0]!,
    dir: positionals[1]!,
    whiteouts,
    digest: values.digest,
    json: values.json === true,
    maxEntries: count('max-entries', values['max-entries'], DEFAULT_LIMITS.maxEntries),
    maxBytes: count('max-bytes', values['max-bytes'], DEFAULT_LIMITS.maxBytes)
  })
}

async function unpackWith (a: UnpackArgs): Promise<number> {
  const input: Readable = a.layer === '-' ? process.stdin : fs.createReadStream(a.layer, { highWaterMark: 1 << 20 })
  let interrupted = false
  const interrupt = (): void => { interrupted = true; input.destroy(new Error('interrupted')) }
  process.once('SIGINT', interrupt)
  process.once('SIGTERM', interrupt)
  try {
    const r = await unpackLayer(input, {
      target: a.dir,
      whiteouts: a.whiteouts,
      digest: a.digest,
      limits: { maxEntries: a.maxEntries, maxBytes: a.maxBytes }
    })
    if (a.json) {
      process.stdout.write(JSON.stringify({
        target: r.target,
        digest: r.digest,
        diffId: r.diffId,
        compressed: r.compressed,
        bytes: r.bytes,
        entries: r.entries,
        dataBytes: r.dataBytes,
        whiteouts: a.whiteouts,
        skippedXattrs: r.skippedXattrs
      }) + '\n')
    } else {
      process.stdout.write(`unpacked ${r.entries} entries (${r.dataBytes} bytes of file data, ${a.whiteouts} whiteouts) into ${r.target}\n`)
      process.stdout.write(`digest   ${r.digest}${r.compressed ? ' (gzip)' : ''}\n`)
      process.stdout.write(`diff ID  ${r.diffId}\n`)
      if (r.skippedXattrs > 0) process.stdout.write(`skipped  ${r.skippedXattrs} xattrs (only user.* and security.capability are applied)\n`)
    }
    return 0
  } catch (e) {
    if (interrupted) throw new Error('interrupted; nothing was unpacked')
    throw e
  } finally {
    process.removeListener('SIGINT', interrupt)
    process.removeListener('SIGTERM', interrupt)
  }
}
