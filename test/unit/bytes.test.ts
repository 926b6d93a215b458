// Names are bytes (issue 9 item 3): the byte-string conversions, displayPath,
// the name checks, and the host seam (sys) passing any byte to the syscalls
// and back, xattrs included (the addon's l*xattr calls).
import t from 'tap'
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesOfString, bytesToUtf8, displayPath, stringOfBytes, utf8ToBytes } from '../../src/overlay/bytes.js'
import { FsError } from '../../src/overlay/errors.js'
import { checkName, NAME_MAX } from '../../src/overlay/paths.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { XATTR_CREATE, XATTR_REPLACE } from '../../src/overlay/sys/xattr.js'

/** A byte string from raw bytes. */
const B = (...parts: Array<string | number[]>): string =>
  parts.map((p) => typeof p === 'string' ? utf8ToBytes(p) : Buffer.from(p).toString('latin1')).join('')

t.test('byte strings: one char per byte, both ways', async t => {
  const raw = Buffer.from([0x61, 0xff, 0xfe, 0x80, 0x00, 0x2f, 0xc3])
  const s = stringOfBytes(raw)
  t.equal(s.length, raw.length)
  t.same([...s].map((c) => c.charCodeAt(0)), [...raw])
  t.same(bytesOfString(s), raw)
  t.equal(stringOfBytes(new Uint8Array(raw.buffer, raw.byteOffset + 1, 2)), '\xff\xfe', 'a view, not its whole buffer')
  t.equal(utf8ToBytes('é'), '\xc3\xa9', 'UTF-8 strings become their encoding')
  t.equal(bytesToUtf8('\xc3\xa9'), 'é')
  t.equal(bytesToUtf8(utf8ToBytes('dir/ünï/😀')), 'dir/ünï/😀', 'round trip')
  t.equal(utf8ToBytes('plain/ascii'), 'plain/ascii', 'ASCII is unchanged')
})

t.test('displayPath: valid UTF-8 as is, other bytes as \\xNN, backslash escaped', async t => {
  t.equal(displayPath('a/b.txt'), 'a/b.txt')
  t.equal(displayPath(B('dir/é/😀')), 'dir/é/😀')
  t.equal(displayPath(B('a', [0xff])), 'a\\xff')
  t.equal(displayPath(B('b', [0xfe, 0x80])), 'b\\xfe\\x80')
  t.equal(displayPath(B('d', [0xc3], '/x', [0xff])), 'd\\xc3/x\\xff', 'a truncated sequence')
  t.equal(displayPath('a\\xff'), 'a\\\\xff', 'the four characters differ from the byte')
  t.equal(displayPath('a\\b'), 'a\\\\b')
  t.equal(displayPath('line\nbreak\t\x7f'), 'line\\x0abreak\\x09\\x7f', 'control characters escaped')
  t.equal(displayPath(B([0xc0, 0xaf])), '\\xc0\\xaf', 'overlong encoding')
  t.equal(displayPath(B([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80', 'surrogate')
  t.equal(displayPath(B([0xf4, 0x90, 0x80, 0x80])), '\\xf4\\x90\\x80\\x80', 'above U+10FFFF')
  t.equal(displayPath(B([0xe2, 0x82], 'x')), '\\xe2\\x82x', 'sequence cut short by ASCII')
  t.equal(displayPath(B('€', [0xff], '€')), '€\\xff€')
  t.equal(displayPath(''), '')
})

t.test('FsError: the path stays bytes, the message shows it readably', async t => {
  const p = B('dir/a', [0xff])
  const e = new FsError('ENOENT', p, 'lookup')
  t.equal(e.path, p)
  t.equal(e.message, 'ENOENT: lookup dir/a\\xff')
})

t.test('checkName counts bytes', async t => {
  t.doesNotThrow(() => checkName('\xff'.repeat(NAME_MAX), 'x'))
  t.throws(() => checkName('\xff'.repeat(NAME_MAX + 1), 'x'), { code: 'ENAMETOOLONG' })
  // 128 two-byte characters: 256 bytes.
  t.throws(() => checkName(utf8ToBytes('é'.repeat(128)), 'x'), { code: 'ENAMETOOLONG' })
  t.doesNotThrow(() => checkName(utf8ToBytes('é'.repeat(127)), 'x'))
  t.throws(() => checkName('a\0b', 'x'), { code: 'EINVAL' })
})

t.test('sys: any byte reaches the syscall and comes back', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'overlayts-bytes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const root = utf8ToBytes(dir)
  const a = root + '/' + B('a', [0xff])
  const b = root + '/' + B('a', [0xfe])
  const d = root + '/' + B('d', [0xc3])
  const fd1 = sys.openSync(a, 0o101, 0o644) // O_WRONLY|O_CREAT
  sys.writeSync(fd1, Buffer.from('one'), 3, 0)
  sys.closeSync(fd1)
  const fd2 = sys.openSync(b, 0o101, 0o644)
  sys.writeSync(fd2, Buffer.from('two'), 3, 0)
  sys.closeSync(fd2)
  sys.mkdir(d, 0o755)
  sys.symlink(B('t', [0x80, 0xff]), d + '/' + B('l', [0xff]))
  const names = readdirSync(Buffer.from(root, 'latin1'), { encoding: 'buffer' }).map((n) => n.toString('hex')).sort()
  t.same(names, ['61fe', '61ff', '64c3'], 'two files, not one U+FFFD')
  t.same(sys.readdirNames(root).sort(), [B('a', [0xfe]), B('a', [0xff]), B('d', [0xc3])])
  const typed = sys.readdir(root).map((e) => [e.name, e.isDirectory()]).sort()
  t.same(typed, [[B('a', [0xfe]), false], [B('a', [0xff]), false], [B('d', [0xc3]), true]])
  t.equal(sys.readlink(d + '/' + B('l', [0xff])), B('t', [0x80, 0xff]))
  t.same(readlinkSync(Buffer.from(d + '/' + B('l', [0xff]), 'latin1'), { encoding: 'buffer' }), Buffer.from([0x74, 0x80, 0xff]))
  t.ok(sys.lstat(a)?.isFile())
  t.equal(sys.lstat(root + '/' + B('a', [0xfd])), undefined)
  sys.rename(a, root + '/' + B('c', [0xff]))
  sys.renameat2(b, root + '/' + B('c', [0xfe]), 0)
  sys.utimensat(root + '/' + B('c', [0xfe]), 1, 0, 2, 0)
  t.equal(sys.lstat(root + '/' + B('c', [0xfe]))?.mtimeMs, 2000n)
  sys.mknod(root + '/' + B('w', [0xff]), 0o020000, 0)
  await sys.copyFile(root + '/' + B('c', [0xff]), root + '/' + B('copy', [0xff]))
  t.same(sys.readdirNames(root).map((n) => bytesOfString(n).toString('hex')).sort(), ['636f7079ff', '63fe', '63ff', '64c3', '77ff'])
  try {
    sys.unlink(root + '/' + B('gone', [0xff]))
    t.fail('unlink of a missing name')
  } catch (e) {
    t.equal((e as NodeJS.ErrnoException).code, 'ENOENT')
  }
  try {
    sys.mknod(root + '/' + B('w', [0xff]), 0o020000, 0)
    t.fail('mknod over a name')
  } catch (e) {
    t.equal((e as NodeJS.ErrnoException).code, 'EEXIST')
    t.equal((e as NodeJS.ErrnoException).path, root + '/' + B('w', [0xff]), 'the error names the path as a byte string')
  }
})

t.test('sys xattrs: byte names, raw values, real create/replace flags, never following symlinks', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'overlayts-bytes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = utf8ToBytes(dir) + '/' + B('f', [0xff])
  sys.closeSync(sys.openSync(f, 0o101, 0o644))
  const name = B('user.n', [0xff])
  const value = Buffer.from([0x00, 0xff, 0xfe, 0x80])
  t.equal(sys.lgetxattr(f, name), undefined, 'unset: undefined')
  t.throws(() => sys.lsetxattr(f, name, value, XATTR_REPLACE), { code: 'ENODATA' }, 'replace of an unset one')
  sys.lsetxattr(f, name, value, XATTR_CREATE)
  t.throws(() => sys.lsetxattr(f, name, value, XATTR_CREATE), { code: 'EEXIST' }, 'create of a set one')
  t.same(sys.lgetxattr(f, name), value)
  sys.lsetxattr(f, 'user.empty', Buffer.alloc(0))
  t.same(sys.lgetxattr(f, 'user.empty'), Buffer.alloc(0), 'an empty value is not unset')
  sys.lsetxattr(f, 'user.big', Buffer.alloc(3000, 7), XATTR_CREATE)
  t.equal(sys.lgetxattr(f, 'user.big')?.length, 3000)
  sys.lsetxattr(f, name, new Uint8Array([1, 2]), XATTR_REPLACE)
  t.same(sys.lgetxattr(f, name), Buffer.from([1, 2]), 'a Uint8Array value')
  t.same(sys.llistxattr(f).sort(), ['user.big', 'user.empty', name].sort())
  sys.lremovexattr(f, name)
  t.throws(() => sys.lremovexattr(f, name), { code: 'ENODATA' })
  t.throws(() => sys.lgetxattr(utf8ToBytes(dir) + '/missing', 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr' })
  t.throws(() => sys.llistxattr(utf8ToBytes(dir) + '/missing'), { code: 'ENOENT', syscall: 'llistxattr' })
  // A symlink's own xattrs: user.* is not allowed on symlinks (EPERM), and the target is never touched.
  const l = utf8ToBytes(dir) + '/' + B('l', [0xff])
  sys.symlink(f, l)
  t.throws(() => sys.lsetxattr(l, 'user.x', Buffer.from('v')), { code: 'EPERM' })
  t.equal(sys.lgetxattr(f, 'user.x'), undefined, 'the target untouched')
  t.same(sys.llistxattr(l), [], 'the link has none')
})

t.test('the index stores and answers byte names', async t => {
  const { buildIndex, indexMatches } = await import('../../src/index/build.js')
  const { verifyIndexDeep } = await import('../../src/index/verify.js')
  const { IndexedLowerView } = await import('../../src/index/indexed-lower-view.js')
  const { ScanLowerView } = await import('../../src/overlay/lower-view.js')
  const { openStack } = await import('../../src/overlay/stack.js')
  const dir = mkdtempSync(join(tmpdir(), 'overlayts-bytes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A layer root that is UTF-8 but not ASCII: given as a UTF-8 string, held as bytes.
  const rootUtf8 = join(dir, 'lower-é')
  const root = utf8ToBytes(rootUtf8)
  sys.mkdir(root, 0o755)
  sys.mkdir(root + '/' + B('d', [0xc3]), 0o755)
  for (const rel of [B('a', [0xff]), B('a', [0xfe]), B('d', [0xc3], '/x', [0xff])]) sys.closeSync(sys.openSync(root + '/' + rel, 0o101, 0o644))
  const stack = openStack({ lowers: [rootUtf8] })
  t.equal(stack.lowers[0]!.root, root, 'the layer root is a byte string')
  const db = join(dir, 'index.db')
  const status = buildIndex(db, stack.lowers)
  t.equal(status.entries, 5, 'root, a\\xff, a\\xfe, d\\xc3, d\\xc3/x\\xff')
  t.ok(indexMatches(db, stack.lowers).ok)
  t.same(verifyIndexDeep(db, stack.lowers).problems, [])
  const scan = new ScanLowerView(stack.lowers)
  const view = new IndexedLowerView(db, stack.lowers, scan, (p) => t.fail(`stale at ${displayPath(p)}`))
  t.teardown(() => view.close())
  t.same([...view.list('').keys()].sort(), [B('a', [0xfe]), B('a', [0xff]), B('d', [0xc3])])
  t.same([...view.listing(B('d', [0xc3])).keys()], [B('x', [0xff])])
  t.equal(view.lookup(B('d', [0xc3], '/x', [0xff]))?.layer, 0)
  t.equal(view.lookup(B('a', [0xfd])), null)
})
