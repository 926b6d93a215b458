/**
 * `overlayts unpack LAYER DIR`: an OCI/Docker layer tarball (plain or gzip,
 * `-` for stdin) into DIR, usable as a lowerdir (src/layers/unpack.ts).
 */
import * as fs from 'node:fs'
import type { Readable } from 'node:stream'
import { unpackLayer, type WhiteoutForm } from '../layers/unpack.js'

export interface UnpackArgs {
  readonly layer: string
  readonly dir: string
  readonly whiteouts: WhiteoutForm
  readonly digest?: string | undefined
  readonly json: boolean
  readonly maxEntries: number
  readonly maxBytes: number
}

export async function unpackCommand (a: UnpackArgs): Promise<number> {
  const input: Readable = a.layer === '-' ? process.stdin : fs.createReadStream(a.layer, { highWaterMark: 1 << 20 })
  const interrupt = (): void => { input.destroy(new Error('interrupted')) }
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
  } finally {
    process.removeListener('SIGINT', interrupt)
    process.removeListener('SIGTERM', interrupt)
  }
}
