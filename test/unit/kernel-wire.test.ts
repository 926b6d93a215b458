// The kernel transport's wire encoding: requests read as the kernel lays
// them out, attributes with times before 1970, directory entries packed to
// the kernel's alignment and never past the size asked for.
import t from 'tap'
import { ATTR_SIZE, DIRENT_HEADER_SIZE, ENTRY_OUT_SIZE, IN_HEADER_SIZE } from '../../src/fuse/kernel/protocol.js'
import { attrOut, bytesOf, nameOf, packDirents, reply, Request } from '../../src/fuse/kernel/wire.js'
import type { Attr } from '../../src/overlay/overlay.js'

function header (len: number, opcode: number, nodeid: bigint): Buffer {
  const b = Buffer.alloc(len)
  b.writeUInt32LE(len, 0)
  b.writeUInt32LE(opcode, 4)
  b.writeBigUInt64LE(77n, 8)
  b.writeBigUInt64LE(nodeid, 16)
  b.writeUInt32LE(1000, 24)
  b.writeUInt32LE(100, 28)
  b.writeUInt32LE(4242, 32)
  return b
}

t.test('a request: header fields, then body fields and NUL-terminated byte names', async (t) => {
  const name = Buffer.from([0x61, 0xff, 0x00])
  const b = header(IN_HEADER_SIZE + 8 + name.length, 1, 2n ** 40n)
  b.writeUInt32LE(0o644, IN_HEADER_SIZE)
  name.copy(b, IN_HEADER_SIZE + 8)
  const r = new Request(b, 9)
  t.same([r.opcode, r.unique, r.nodeid, r.uid, r.gid, r.pid, r.channel], [1, 77n, 2 ** 40, 1000, 100, 4242, 9])
  t.equal(r.u32(), 0o644)
  r.skip(4)
  t.same(r.nameBytes(), Buffer.from([0x61, 0xff]))
  t.equal(bytesOf(nameOf(Buffer.from([0x61, 0xff]))).toString('hex'), '61ff', 'names round-trip as bytes')
})

t.test('attributes: times before 1970 as floored seconds and a positive ns part', async (t) => {
  const a: Attr = { mode: 0o100644, uid: 1, gid: 2, size: 5n, nlink: 1, ino: 99n, rdev: 0n, blksize: 4096, blocks: 8n, atimeNs: -1_500_000_000n, mtimeNs: 1_000_000_001n, ctimeNs: 0n }
  const out = attrOut(a, 1.5)
  t.equal(out.length, 16 + ATTR_SIZE)
  t.equal(out.readBigUInt64LE(0), 1n, 'attr_valid seconds')
  t.equal(out.readUInt32LE(8), 500_000_000, 'attr_valid ns')
  t.equal(out.readBigUInt64LE(16), 99n, 'ino')
  t.equal(out.readBigInt64LE(16 + 24), -2n, 'atime seconds floored')
  t.equal(out.readUInt32LE(16 + 48), 500_000_000, 'atime ns: -1.5 s is -2 s + 0.5 s')
  t.equal(out.readBigInt64LE(16 + 32), 1n)
  t.equal(out.readUInt32LE(16 + 52), 1)
  t.equal(out.readUInt32LE(16 + 60), 0o100644, 'mode')
})

t.test('a reply: header length, error and unique', async (t) => {
  const r = reply(5n, -2)
  t.same([r.length, r.readUInt32LE(0), r.readInt32LE(4), r.readBigUInt64LE(8)], [16, 16, -2, 5n])
})

t.test('dirents: 8-byte aligned, offsets count entries, never past the size asked', async (t) => {
  const names = ['a', 'bb', 'ccc', 'd'.repeat(30)].map((n) => Buffer.from(n))
  const entry = (i: number): { name: Buffer, ino: bigint, type: number } => ({ name: names[i]!, ino: BigInt(100 + i), type: 8 })
  const all = packDirents(4096, 0, names.length, false, entry, () => {})
  t.equal(all.next, 4)
  t.equal(all.body.length, 32 + 32 + 32 + 56, 'each record rounded up to 8 bytes')
  t.equal(all.body.readBigUInt64LE(8), 1n, 'the first entry points at the second')
  const some = packDirents(64, 1, names.length, false, entry, () => {})
  t.equal(some.next, 3, 'two records fit in 64 bytes')
  t.equal(some.body.readBigUInt64LE(0), 101n, 'starting at the offset asked')
  const plus: number[] = []
  const p = packDirents(2 * (ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE + 8), 0, names.length, true, entry, (i) => { plus.push(i) })
  t.equal(p.next, 2)
  t.same(plus, [0, 1], 'entry attributes written only for the records that fit')
})
