/**
 * Reading a layer tar as a stream of entries: plain or gzip (told by the
 * first two bytes, 1f 8b), hashed as it passes (the digest of the bytes as
 * given, and the diff ID of the uncompressed tar), parsed by tar-stream, with
 * every field of an entry as bytes: names, link targets and PAX records are
 * byte strings (../overlay/bytes.ts), xattr values byte for byte.
 *
 * tar-stream decodes PAX records as UTF-8 text, which corrupts binary values
 * (a `SCHILY.xattr.security.capability` is binary) and names that are not
 * UTF-8; this reader replaces, on its own extractor instance only, the
 * method that decodes them (`_decodeLongHeader`, tar-stream 3.2.x) with the
 * byte-exact decoder of pax.ts. test/unit/layers-tar.test.ts checks that a
 * binary xattr survives, so an upgrade that renames it fails loudly.
 *
 * A stream that ends inside an entry or before the end-of-archive block is
 * truncated: an error, never a short layer.
 */
import { createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { createGunzip } from 'node:zlib'
import * as tarStream from 'tar-stream'
import { decodePaxRecords, PAX_XATTR_PREFIX } from './pax.js'
import type { TarEntryType } from './tar-header.js'
import { LayerRefused } from './tar-safety.js'

export interface LayerEntry {
  /** The name as the tar holds it (byte string), not yet cleaned. */
  readonly name: string
  readonly type: TarEntryType
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Seconds since the epoch. */
  readonly mtime: number
  readonly size: number
  readonly linkname: string
  readonly devmajor: number
  readonly devminor: number
  readonly xattrs: ReadonlyMap<string, Buffer>
}

const TYPES: Record<string, TarEntryType> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'link',
  symlink: 'symlink',
  'character-device': 'character-device',
  'block-device': 'block-device',
  directory: 'directory',
  fifo: 'fifo'
}

class Counter extends Transform {
  bytes = 0
  constructor (readonly hash: Hash) { super() }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    cb(null, chunk)
  }
}

interface ExtractInternals {
  _header: { type: string }
  _pax: Record<string, string> | null
  _paxGlobal: Record<string, string> | null
  _decodeLongHeader: (buf: Buffer) => void
}

function recordsObject (...maps: Array<Map<string, string> | Record<string, string> | null>): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const m of maps) {
    if (m === null) continue
    for (const [k, v] of m instanceof Map ? m : Object.entries(m)) out[k] = v
  }
  return out
}

/** A tar-stream extractor whose names are bytes and whose PAX records are decoded byte for byte. */
function byteExactExtractor (): tarStream.Extract {
  const ex = tarStream.extract({ filenameEncoding: 'latin1' } as Parameters<typeof tarStream.extract>[0])
  const inner = ex as unknown as ExtractInternals
  const original = inner._decodeLongHeader
  if (typeof original !== 'function') throw new Error('tar-stream changed: no _decodeLongHeader to make byte-exact')
  inner._decodeLongHeader = function (this: ExtractInternals, buf: Buffer): void {
    if (this._header.type === 'pax-header') this._pax = recordsObject(this._paxGlobal, decodePaxRecords(buf))
    else if (this._header.type === 'pax-global-header') this._paxGlobal = recordsObject(decodePaxRecords(buf))
    else original.call(this, buf)
  }
  return ex
}

type TarHeader = Omit<tarStream.Header, 'pax' | 'type'> & { type: string | null, pax?: Record<string, string> | null }

function paxNumber (pax: Record<string, string> | null | undefined, key: string, fallback: number): number {
  const v = pax?.[key]
  if (v === undefined) return fallback
  // mtime may have a fraction; a layer's times are whole seconds.
  const n = Number(v)
  return Number.isFinite(n) ? Math.floor(n) : fallback
}

function toEntry (h: TarHeader): LayerEntry {
  const type = TYPES[h.type ?? '']
  if (type === undefined) throw new LayerRefused(h.name, `unsupported entry type ${String(h.type)}`)
  const xattrs = new Map<string, Buffer>()
  for (const [k, v] of Object.entries(h.pax ?? {}) as Array<[string, string]>) {
    if (k.startsWith(PAX_XATTR_PREFIX)) xattrs.set(k.slice(PAX_XATTR_PREFIX.length), Buffer.from(v, 'latin1'))
  }
  return {
    name: h.name,
    type,
    mode: (h.mode ?? 0) & 0o7777,
    uid: paxNumber(h.pax, 'uid', h.uid ?? 0),
    gid: paxNumber(h.pax, 'gid', h.gid ?? 0),
    mtime: paxNumber(h.pax, 'mtime', Math.floor((h.mtime?.getTime() ?? 0) / 1000)),
    size: type === 'file' ? (h.size ?? 0) : 0,
    linkname: h.linkname ?? '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
    xattrs
  }
}

/** An entry's data, with a stream that ends inside it reported as what it is. */
async function * dataOf (stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield * stream
  } catch (e) {
    throw new Error(`layer truncated or corrupt: ${(e as Error).message}`)
  }
}

export interface LayerDigests {
  /** sha256 of the stream as given (for a gzip layer, the compressed bytes). */
  readonly digest: string
  /** sha256 of the uncompressed tar. */
  readonly diffId: string
  readonly compressed: boolean
  readonly bytes: number
}

/** Reads the first bytes of `input` without losing them: the magic and a stream of everything. */
async function sniff (input: Readable): Promise<{ head: Buffer, all: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let have = 0
  let done = false
  while (have < 2) {
    const r = await it.next()
    if (r.done === true) { done = true; break }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value)
    chunks.push(c)
    have += c.length
  }
  const head = Buffer.concat(chunks)
  async function * rest (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head
    if (done) return
    for (;;) {
      const r = await it.next()
      if (r.done === true) return
      yield r.value
    }
  }
  return { head, all: Readable.from(rest(), { objectMode: false }) }
}

/**
 * The entries of a layer tar, in order, each with its data stream (read it
 * or drain it before asking for the next). After the last entry, `digests()`
 * answers; a truncated or corrupt stream throws from the iteration instead.
 */
export class LayerReader {
  #digests: LayerDigests | undefined

  constructor (private readonly input: Readable) {}

  digests (): LayerDigests {
    if (this.#digests === undefined) throw new Error('layer not read to its end')
    return this.#digests
  }

  async * entries (): AsyncGenerator<{ entry: LayerEntry, body: AsyncIterable<Buffer> }> {
    const { head, all } = await sniff(this.input)
    const compressed = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b
    const given = new Counter(createHash('sha256'))
    const tar = new Counter(createHash('sha256'))
    const ex = byteExactExtractor()
    const stages: Array<Readable | Transform> = [all, given]
    if (compressed) stages.push(createGunzip())
    stages.push(tar)
    for (let i = 0; i + 1 < stages.length; i++) (stages[i] as Readable).pipe(stages[i + 1] as Transform)
    // Errors anywhere upstream (gzip's "unexpected end of file") end the extractor with them.
    const fail = (e: Error): void => { ex.destroy(e) }
    for (const s of stages) s.on('error', fail)
    tar.pipe(ex as unknown as NodeJS.WritableStream)
    let lastEnd = 0
    let complete = false
    try {
      for await (const stream of ex) {
        const header = stream.header as unknown as TarHeader & { byteOffset: number }
        const entry = toEntry(header)
        lastEnd = header.byteOffset + Math.ceil(entry.size / 512) * 512
        yield { entry, body: dataOf(stream as AsyncIterable<Buffer>) }
      }
      if (!tar.writableFinished) await once(tar, 'finish')
      complete = true
    } catch (e) {
      if (e instanceof LayerRefused) throw e
      throw new Error(`layer truncated or corrupt: ${(e as Error).message}`)
    } finally {
      // A refusal or error here, or a consumer that stopped early: close every stage (and so the input).
      if (!complete) {
        for (const s of stages) s.destroy()
        this.input.destroy()
        ex.destroy()
      }
    }
    // At least one zero block must follow the last entry (tar-stream reads it as the end).
    if (tar.bytes < lastEnd + 512) throw new Error(`layer truncated: the tar stream ends at byte ${tar.bytes} without its end-of-archive block`)
    this.#digests = {
      digest: `sha256:${given.hash.digest('hex')}`,
      diffId: `sha256:${tar.hash.digest('hex')}`,
      compressed,
      bytes: given.bytes
    }
  }
}
