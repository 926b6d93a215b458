/**
 * Writing a layer tar as a stream: entries (tar-header.ts) with their data,
 * the end-of-archive blocks, optionally gzip, hashed on the way: the diff ID
 * (sha256 of the tar) and, for gzip, the digest (sha256 of the compressed
 * bytes). Nothing is buffered beyond one data chunk per stage, so memory stays
 * flat whatever the layer's size.
 *
 * The gzip stream is deterministic: zlib at a fixed level, its header with
 * mtime 0 and no name (Node's zlib writes none), and the OS byte set to 255
 * ("unknown", as Go's compress/gzip writes it for docker), so the same tar
 * gives the same compressed bytes on every host with the same zlib.
 */
import { createHash, type Hash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream'
import { createGzip, constants as zlibConstants } from 'node:zlib'
import { encodeHeader, END_OF_ARCHIVE, padding, type TarEntry } from './tar-header.js'

export interface EntryWithData {
  readonly entry: TarEntry
  /** For regular files: exactly entry.size bytes. */
  readonly data?: () => AsyncIterable<Buffer>
}

export interface WrittenLayer {
  /** sha256 of the uncompressed tar. */
  readonly diffId: string
  /** sha256 of the bytes written (the compressed stream for gzip; the diff ID otherwise). */
  readonly digest: string
  readonly compressed: boolean
  /** Bytes written to the output. */
  readonly bytes: number
  readonly tarBytes: number
}

class Hashing extends Transform {
  bytes = 0
  readonly hash: Hash = createHash('sha256')
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    cb(null, chunk)
  }
}

/** Sets the gzip header's OS byte (offset 9) to 255, once. */
class FixGzipOs extends Transform {
  #seen = 0
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#seen <= 9 && this.#seen + chunk.length > 9) {
      chunk = Buffer.from(chunk)
      chunk[9 - this.#seen] = 255
    }
    this.#seen += chunk.length
    cb(null, chunk)
  }
}

export class EntrySizeError extends Error {}

async function * tarBytes (entries: AsyncIterable<EntryWithData>): AsyncGenerator<Buffer> {
  for await (const { entry, data } of entries) {
    yield encodeHeader(entry)
    if (entry.type !== 'file' || entry.size === 0) continue
    if (data === undefined) throw new Error(`no data for ${entry.name}`)
    let n = 0
    for await (const chunk of data()) {
      n += chunk.length
      if (n > entry.size) throw new EntrySizeError(`${entry.name}: more data than the ${entry.size} bytes its header says`)
      yield chunk
    }
    if (n !== entry.size) throw new EntrySizeError(`${entry.name}: ${n} data bytes where its header says ${entry.size}`)
    const pad = padding(entry.size)
    if (pad.length > 0) yield pad
  }
  yield END_OF_ARCHIVE
}

/** Streams `entries` as a tar (gzip when `gzip`) into `out`; resolves with the digests once `out` has all of it. */
export async function writeLayerTar (entries: AsyncIterable<EntryWithData>, out: Writable, gzip: boolean): Promise<WrittenLayer> {
  const tar = new Hashing()
  const written = new Hashing()
  const stages: Array<Readable | Transform | Writable> = [Readable.from(tarBytes(entries), { objectMode: false, highWaterMark: 1 << 20 }), tar]
  if (gzip) stages.push(createGzip({ level: zlibConstants.Z_DEFAULT_COMPRESSION, chunkSize: 1 << 16 }), new FixGzipOs(), written)
  stages.push(out)
  await pipeline(stages as unknown as [Readable, Writable])
  const diffId = `sha256:${tar.hash.digest('hex')}`
  return {
    diffId,
    digest: gzip ? `sha256:${written.hash.digest('hex')}` : diffId,
    compressed: gzip,
    bytes: gzip ? written.bytes : tar.bytes,
    tarBytes: tar.bytes
  }
}
