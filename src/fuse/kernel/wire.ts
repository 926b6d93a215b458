/**
 * Reading requests from and writing replies to the FUSE device: the byte
 * layouts of protocol.ts in code. A Request is a cursor over one message as
 * the kernel wrote it; the encoders build reply bodies. Nothing here knows
 * about nodes or the overlay.
 *
 * Names travel as bytes. The core holds them as byte strings (one char per
 * byte, src/overlay/bytes.ts); nameOf and bytesOf below are the one place
 * this transport converts.
 */
import type { Attr, FsStats } from '../../overlay/overlay.js'
import { ATTR_SIZE, DIRENT_HEADER_SIZE, direntAlign, ENTRY_OUT_SIZE, IN_HEADER_SIZE, OUT_HEADER_SIZE } from './protocol.js'

const TWO_32 = 2 ** 32

/** One request from the kernel: its header fields and a cursor over its body. */
export class Request {
  readonly len: number
  readonly opcode: number
  readonly unique: bigint
  readonly nodeid: number
  readonly uid: number
  readonly gid: number
  readonly pid: number
  /** The device fd it was read from: its reply must go back there. */
  readonly channel: number
  /** The io_uring entry it came in (its reply is committed there), or -1: read from the device. */
  readonly ringEntry: number
  private pos = IN_HEADER_SIZE

  constructor (readonly buf: Buffer, channel: number, ringEntry = -1) {
    this.channel = channel
    this.ringEntry = ringEntry
    this.len = buf.readUInt32LE(0)
    this.opcode = buf.readUInt32LE(4)
    this.unique = buf.readBigUInt64LE(8)
    this.nodeid = u64At(buf, 16)
    this.uid = buf.readUInt32LE(24)
    this.gid = buf.readUInt32LE(28)
    this.pid = buf.readUInt32LE(32)
  }

  u32 (): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v }
  /** A u64 as a number (offsets, sizes, handles and node ids all stay below 2^53). */
  u64 (): number { const v = u64At(this.buf, this.pos); this.pos += 8; return v }
  /** A signed 64-bit time in seconds. */
  i64 (): number { const v = Number(this.buf.readBigInt64LE(this.pos)); this.pos += 8; return v }
  skip (n: number): this { this.pos += n; return this }

  /** A NUL-terminated name, as raw bytes. */
  nameBytes (): Buffer {
    const end = this.buf.indexOf(0, this.pos)
    const stop = end < 0 ? this.buf.length : end
    const b = this.buf.subarray(this.pos, stop)
    this.pos = stop + 1
    return b
  }

  name (): string { return nameOf(this.nameBytes()) }

  /** `n` raw bytes (a write's data, an xattr value). A view into the request buffer. */
  bytes (n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
}

/** The one place a wire name becomes a string for the core: a byte string, one char per byte (src/overlay/bytes.ts). */
export function nameOf (b: Buffer): string {
  return b.toString('latin1')
}

/** The one place a core string (a byte string) becomes wire bytes. */
export function bytesOf (s: string): Buffer {
  return Buffer.from(s, 'latin1')
}

function u64At (buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32
}

function writeU64 (buf: Buffer, off: number, v: number | bigint): void {
  buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off)
}

/** Seconds (floored, so pre-1970 times stay exact) and the non-negative ns remainder. */
function splitNs (ns: bigint): [bigint, number] {
  let sec = ns / 1_000_000_000n
  let nsec = ns - sec * 1_000_000_000n
  if (nsec < 0n) { sec -= 1n; nsec += 1_000_000_000n }
  return [sec, Number(nsec)]
}

/** struct fuse_attr at `off`. */
export function writeAttr (buf: Buffer, off: number, a: Attr): void {
  writeU64(buf, off, a.ino)
  writeU64(buf, off + 8, a.size)
  writeU64(buf, off + 16, a.blocks)
  const [as, ans] = splitNs(a.atimeNs)
  const [ms, mns] = splitNs(a.mtimeNs)
  const [cs, cns] = splitNs(a.ctimeNs)
  buf.writeBigInt64LE(as, off + 24)
  buf.writeBigInt64LE(ms, off + 32)
  buf.writeBigInt64LE(cs, off + 40)
  buf.writeUInt32LE(ans, off + 48)
  buf.writeUInt32LE(mns, off + 52)
  buf.writeUInt32LE(cns, off + 56)
  buf.writeUInt32LE(a.mode >>> 0, off + 60)
  buf.writeUInt32LE(a.nlink >>> 0, off + 64)
  buf.writeUInt32LE(a.uid >>> 0, off + 68)
  buf.writeUInt32LE(a.gid >>> 0, off + 72)
  buf.writeUInt32LE(Number(a.rdev & 0xffffffffn), off + 76)
  buf.writeUInt32LE(a.blksize >>> 0, off + 80)
  buf.writeUInt32LE(0, off + 84)
}

/** A cache timeout in seconds as (sec u64 at off, nsec u32 at nsecOff). */
function writeTimeout (buf: Buffer, off: number, nsecOff: number, seconds: number): void {
  const whole = Math.floor(seconds)
  writeU64(buf, off, whole)
  buf.writeUInt32LE(Math.round((seconds - whole) * 1e9), nsecOff)
}

/** struct fuse_entry_out at `off`. A nodeid of 0 is a cacheable negative entry. */
export function writeEntry (buf: Buffer, off: number, nodeid: number, generation: number, a: Attr | undefined, entryTimeout: number, attrTimeout: number): void {
  writeU64(buf, off, nodeid)
  writeU64(buf, off + 8, generation)
  writeTimeout(buf, off + 16, off + 32, entryTimeout)
  writeTimeout(buf, off + 24, off + 36, a === undefined ? 0 : attrTimeout)
  if (a !== undefined) writeAttr(buf, off + 40, a)
  else buf.fill(0, off + 40, off + 40 + ATTR_SIZE)
}

export function entryOut (nodeid: number, generation: number, a: Attr | undefined, entryTimeout: number, attrTimeout: number): Buffer {
  const b = Buffer.allocUnsafe(ENTRY_OUT_SIZE)
  writeEntry(b, 0, nodeid, generation, a, entryTimeout, attrTimeout)
  return b
}

export function attrOut (a: Attr, attrTimeout: number): Buffer {
  const b = Buffer.allocUnsafe(16 + ATTR_SIZE)
  writeTimeout(b, 0, 8, attrTimeout)
  b.writeUInt32LE(0, 12)
  writeAttr(b, 16, a)
  return b
}

export function openOut (fh: number, openFlags: number, backingId = 0): Buffer {
  const b = Buffer.alloc(16)
  writeU64(b, 0, fh)
  b.writeUInt32LE(openFlags >>> 0, 8)
  b.writeInt32LE(backingId, 12)
  return b
}

export function statfsOut (s: FsStats): Buffer {
  const b = Buffer.alloc(80)
  writeU64(b, 0, s.blocks)
  writeU64(b, 8, s.bfree)
  writeU64(b, 16, s.bavail)
  writeU64(b, 24, s.files)
  writeU64(b, 32, s.ffree)
  b.writeUInt32LE(s.bsize, 40)
  b.writeUInt32LE(s.namemax, 44)
  b.writeUInt32LE(s.frsize, 48)
  return b
}

export function u32Out (v: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt32LE(v >>> 0, 0)
  return b
}

export function u64Out (v: number | bigint): Buffer {
  const b = Buffer.alloc(8)
  writeU64(b, 0, v)
  return b
}

/** A reply: out header + body, in one buffer. */
export function reply (unique: bigint, error: number, body?: Buffer): Buffer {
  const len = OUT_HEADER_SIZE + (body?.length ?? 0)
  const b = Buffer.allocUnsafe(len)
  b.writeUInt32LE(len, 0)
  b.writeInt32LE(error, 4)
  b.writeBigUInt64LE(unique, 8)
  body?.copy(b, OUT_HEADER_SIZE)
  return b
}

/**
 * Fills a READDIR or READDIRPLUS reply of at most `size` bytes. `entry(i)`
 * says what entry i is; `plus(i, buf, off)` writes its fuse_entry_out (plus
 * only) and is called only for entries that fit. Returns the body and the
 * index after the last entry written.
 */
export function packDirents (size: number, from: number, count: number, plus: boolean,
  entry: (i: number) => { name: Buffer, ino: bigint, type: number },
  writePlus: (i: number, buf: Buffer, off: number) => void): { body: Buffer, next: number } {
  const buf = Buffer.allocUnsafe(size)
  let off = 0
  let i = from
  for (; i < count; i++) {
    const e = entry(i)
    const head = plus ? ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE : DIRENT_HEADER_SIZE
    const recLen = direntAlign(head + e.name.length)
    if (off + recLen > size) break
    if (plus) writePlus(i, buf, off)
    const d = plus ? off + ENTRY_OUT_SIZE : off
    writeU64(buf, d, e.ino)
    writeU64(buf, d + 8, i + 1) // the offset of the next entry
    buf.writeUInt32LE(e.name.length, d + 16)
    buf.writeUInt32LE(e.type, d + 20)
    e.name.copy(buf, d + 24)
    buf.fill(0, d + 24 + e.name.length, off + recLen)
    off += recLen
  }
  return { body: buf.subarray(0, off), next: i }
}
