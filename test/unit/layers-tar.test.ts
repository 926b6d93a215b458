// Layer tars (src/layers): the header writer's rules, the byte-exact reader,
// unpack's refusal of every hostile case (tars made here with tar-stream)
// leaving nothing behind, and commit's rules on hand-made uppers.
import t, { type Test } from 'tap'
import * as fs from 'node:fs'
import { Readable, Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import * as tarStream from 'tar-stream'
import { encodeHeader, END_OF_ARCHIVE, padding, type TarEntry } from '../../src/layers/tar-header.js'
import { LayerReader, type LayerEntry } from '../../src/layers/tar-reader.js'
import { writeLayerTar } from '../../src/layers/tar-writer.js'
import { unpackLayer } from '../../src/layers/unpack.js'
import { commitEntries, emptyCounts } from '../../src/layers/commit.js'
import { openStackSource } from '../../src/layers/stack-source.js'
import { sys } from '../../src/overlay/sys/fs.js'

type Spec = Partial<tarStream.Header> & { name: string, body?: string | Buffer, pax?: Record<string, string> }

/** A tar made by tar-stream (the way a hostile or foreign tool would make one). */
async function makeTar (entries: Spec[], opts: { finalize?: boolean } = {}): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer) })
  const ended = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject) })
  for (const { body, ...h } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (e?: Error | null): void => { e ? reject(e) : resolve() }
      if (body !== undefined) pack.entry({ mode: 0o644, mtime: new Date(0), ...h } as tarStream.Header, body, cb)
      else pack.entry({ mode: h.type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...h } as tarStream.Header, cb)
    })
  }
  if (opts.finalize !== false) {
    pack.finalize()
    await ended
  } else await new Promise(resolve => setImmediate(resolve))
  return Buffer.concat(chunks)
}

async function readAll (tar: Buffer): Promise<{ entries: Array<LayerEntry & { data: Buffer }>, reader: LayerReader }> {
  const reader = new LayerReader(Readable.from([tar]))
  const entries: Array<LayerEntry & { data: Buffer }> = []
  for await (const { entry, body } of reader.entries()) {
    const parts: Buffer[] = []
    for await (const c of body) parts.push(c)
    entries.push({ ...entry, data: Buffer.concat(parts) })
  }
  return { entries, reader }
}

function ourTar (entries: Array<TarEntry & { body?: Buffer }>): Buffer {
  const out: Buffer[] = []
  for (const e of entries) {
    out.push(encodeHeader(e))
    if (e.body !== undefined) out.push(e.body, padding(e.body.length))
  }
  out.push(END_OF_ARCHIVE)
  return Buffer.concat(out)
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 } as const

t.test('header writer: names, links, ids and xattrs of any bytes survive, GNU tar reads them', async t => {
  const cap = Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  const long = 'd/'.repeat(80) + 'f'.repeat(200)
  const odd = 'caf\xe9-\xff\n' // not UTF-8, with a newline
  const tar = ourTar([
    { ...base, name: 'd', type: 'directory', mode: 0o755 },
    { ...base, name: long, type: 'file', size: 3, body: Buffer.from('abc'), uid: 5_000_000, gid: 7 },
    { ...base, name: odd, type: 'file', size: 0, xattrs: new Map([['security.capability', cap.toString('latin1')], ['user.x', 'v\xff']]) },
    { ...base, name: 'ln', type: 'symlink', linkname: 'x'.repeat(150) },
    { ...base, name: 'hl', type: 'link', linkname: odd },
    { ...base, name: 'old', type: 'file', mtime: -86400 }
  ])
  t.equal(tar.length % 512, 0)
  const { entries, reader } = await readAll(tar)
  t.same(entries.map(e => e.name), ['d/', long, odd, 'ln', 'hl', 'old'])
  t.equal(entries[1]?.uid, 5_000_000, 'uid past ustar via PAX')
  t.equal(entries[1]?.data.toString(), 'abc')
  t.same(entries[2]?.xattrs.get('security.capability'), cap, 'binary xattr value byte for byte')
  t.same(entries[2]?.xattrs.get('user.x'), Buffer.from('v\xff', 'latin1'))
  t.equal(entries[3]?.linkname, 'x'.repeat(150))
  t.equal(entries[4]?.linkname, odd)
  t.equal(entries[5]?.mtime, -86400, 'time before 1970 via PAX')
  t.match(reader.digests().diffId, /^sha256:[0-9a-f]{64}$/)
  t.same(ourTar([{ ...base, name: odd, type: 'file' }]), ourTar([{ ...base, name: odd, type: 'file' }]), 'same entry, same bytes')
  const dir = t.testdir({})
  fs.writeFileSync(`${dir}/l.tar`, tar)
  const { execFileSync } = await import('node:child_process')
  const listed = execFileSync('tar', ['-tf', `${dir}/l.tar`]).toString('latin1').split('\n')
  t.ok(listed.includes(long) && listed.includes('ln'), 'GNU tar lists long names')
})

t.test('writer: plain and gzip, fixed gzip header, same input same digest', async t => {
  const entries = (): AsyncIterable<{ entry: TarEntry, data?: () => AsyncIterable<Buffer> }> => Readable.from([
    { entry: { ...base, name: 'a', type: 'directory' as const, mode: 0o755 } },
    { entry: { ...base, name: 'a/f', type: 'file' as const, size: 5 }, data: () => Readable.from([Buffer.from('hello')]) }
  ])
  const sink = (): Writable & { data: Buffer[] } => {
    const data: Buffer[] = []
    return Object.assign(new Writable({ write (c: Buffer, _e, cb) { data.push(c); cb() } }), { data })
  }
  const s1 = sink(); const s2 = sink(); const s3 = sink()
  const a = await writeLayerTar(entries(), s1, true)
  const b = await writeLayerTar(entries(), s2, true)
  const plain = await writeLayerTar(entries(), s3, false)
  t.equal(a.digest, b.digest)
  t.same(Buffer.concat(s1.data), Buffer.concat(s2.data))
  t.equal(a.diffId, plain.diffId, 'diff ID is of the tar either way')
  t.equal(plain.digest, plain.diffId)
  const gz = Buffer.concat(s1.data)
  t.same([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255], 'gzip header: no name, mtime 0, OS 255')
  const { entries: back, reader } = await readAll(gz)
  t.same(back.map(e => e.name), ['a/', 'a/f'])
  t.equal(reader.digests().digest, a.digest)
  t.equal(reader.digests().diffId, a.diffId)
})

/** The names in dir (recursively), to show nothing landed outside the target. */
function tree (dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      out.push(rel + n)
      const st = fs.lstatSync(`${d}/${n}`)
      if (st.isDirectory()) walk(`${d}/${n}`, `${rel}${n}/`)
    }
  }
  walk(dir, '')
  return out
}

async function refused (t: Test, name: string, tar: Buffer, pattern: RegExp, opts: { maxEntries?: number, maxBytes?: number, digest?: string } = {}): Promise<void> {
  const dir = t.testdir({ outside: { keep: 'k' } })
  const before = tree(dir)
  await t.rejects(unpackLayer(Readable.from([tar]), {
    target: `${dir}/target`,
    whiteouts: 'oci',
    digest: opts.digest,
    limits: { maxEntries: opts.maxEntries ?? 1000, maxBytes: opts.maxBytes ?? 1 << 20 }
  }), pattern, name)
  t.same(tree(dir), before, `${name}: nothing left behind, nothing written outside`)
}


t.test('unpack refuses hostile layers and leaves nothing', async t => {
  await refused(t, 'dot-dot', await makeTar([{ name: 'a/../../outside/evil', body: 'x' }]), /'\.\.' component/)
  await refused(t, 'plain ..', await makeTar([{ name: '..', type: 'directory' }]), /'\.\.' component/)
  await refused(t, 'absolute', await makeTar([{ name: '/tmp/evil', body: 'x' }]), /absolute name/)
  await refused(t, 'write through a symlink', await makeTar([
    { name: 'l', type: 'symlink', linkname: '/tmp' },
    { name: 'l/evil', body: 'x' }
  ]), /parent "l" is not a directory/)
  await refused(t, 'symlink to a dir, then a dir through it', await makeTar([
    { name: 'd', type: 'directory' },
    { name: 'l', type: 'symlink', linkname: 'd' },
    { name: 'l/sub', type: 'directory' }
  ]), /parent "l" is not a directory/)
  await refused(t, 'write below a file', await makeTar([{ name: 'f', body: 'x' }, { name: 'f/g', body: 'y' }]), /not a directory/)
  await refused(t, 'relative symlink escaping the root', await makeTar([{ name: 'a/l', type: 'symlink', linkname: '../../outside' }]), /points outside the layer/)
  await refused(t, 'hardlink outside', await makeTar([{ name: 'h', type: 'link', linkname: '../outside/keep' }]), /'\.\.' component/)
  await refused(t, 'hardlink absolute', await makeTar([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]), /absolute hardlink target/)
  await refused(t, 'hardlink to a later entry', await makeTar([{ name: 'h', type: 'link', linkname: 'later' }, { name: 'later', body: 'x' }]), /not a regular file this layer extracted before it/)
  await refused(t, 'hardlink to a directory', await makeTar([{ name: 'd', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }]), /not a regular file/)
  await refused(t, 'hardlink to a symlink', await makeTar([{ name: 's', type: 'symlink', linkname: '/etc/passwd' }, { name: 'h', type: 'link', linkname: 's' }]), /not a regular file/)
  await refused(t, 'too many entries', await makeTar(Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, body: '' }))), /more than 10 entries/, { maxEntries: 10 })
  await refused(t, 'too much data', await makeTar([{ name: 'big', body: Buffer.alloc(4096) }]), /passes 1000 bytes/, { maxBytes: 1000 })
  const whole = await makeTar([{ name: 'a', body: Buffer.alloc(3000, 1) }, { name: 'b', body: 'x' }])
  await refused(t, 'truncated inside a file', whole.subarray(0, 1500), /truncated or corrupt/)
  await refused(t, 'truncated at an entry boundary (no end blocks)', await makeTar([{ name: 'a', body: 'x' }], { finalize: false }), /truncated/)
  const gz = gzipSync(whole)
  await refused(t, 'truncated gzip', gz.subarray(0, gz.length - 12), /truncated or corrupt/)
  await refused(t, 'not a tar', Buffer.alloc(2048, 7), /truncated or corrupt/)
  await refused(t, 'digest mismatch', whole, /digest mismatch/, { digest: `sha256:${'0'.repeat(64)}` })
  await refused(t, 'malformed PAX', Buffer.concat([paxBlock(Buffer.from('99 path=x\n')), ourTar([{ ...base, name: 'f', type: 'file' }])]), /malformed PAX/)
})

/** A raw PAX header block with `body` (to make malformed ones). */
function paxBlock (body: Buffer): Buffer {
  const h = encodeHeader({ ...base, name: 'PaxHeaders/x', type: 'file', size: body.length })
  h.write('x', 156, 1, 'latin1')
  let sum = 0
  h.fill(0x20, 148, 156)
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
  return Buffer.concat([h, body, padding(body.length)])
}

t.test('device nodes need root: refused for uid 1000, with nothing left', async t => {
  const dir = t.testdir({})
  fs.chownSync(dir, 1000, 1000)
  fs.writeFileSync(`${dir}/dev.tar`, await makeTar([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]))
  const { execFileSync } = await import('node:child_process')
  const { OVERLAYTS_BIN } = await import('../helpers/mounts.js')
  let stderr = ''
  try {
    execFileSync('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, OVERLAYTS_BIN, 'unpack', `${dir}/dev.tar`, `${dir}/out`], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (e) { stderr = String((e as { stderr: Buffer }).stderr) }
  t.match(stderr, /device node 1:3: making devices needs root/)
  t.same(fs.readdirSync(dir), ['dev.tar'])
})

t.test('unpack: docker conventions, both whiteout forms', async t => {
  const tar = await makeTar([
    { name: './etc/', type: 'directory', mode: 0o700 },
    { name: './etc/conf', body: 'c', mode: 0o4755, uid: 12, gid: 34 },
    { name: 'etc/link', type: 'link', linkname: './etc/conf' },
    { name: 'etc/abs', type: 'symlink', linkname: '/usr/bin/x' },
    { name: 'implied/parent/f', body: 'p' },
    { name: 'etc/.wh.gone', body: '' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/.wh..wh..opq', body: '' },
    { name: 'etc/conf2', body: 'first' },
    { name: 'etc/conf2', body: 'second' },
    { name: 'kept', body: 'k' },
    { name: '.wh.kept', body: '' }
  ])
  const dir = t.testdir({})
  const oci = await unpackLayer(Readable.from([tar]), { target: `${dir}/oci`, whiteouts: 'oci' })
  t.equal(oci.entries, 12)
  t.same(tree(`${dir}/oci`), ['.wh.kept', 'etc', 'etc/.wh.gone', 'etc/abs', 'etc/conf', 'etc/conf2', 'etc/link', 'implied', 'implied/parent', 'implied/parent/f', 'kept', 'opq', 'opq/.wh..wh..opq'])
  const st = fs.statSync(`${dir}/oci/etc/conf`)
  t.equal(st.mode & 0o7777, 0o4755, 'setuid kept (mode after chown)')
  t.equal(st.uid, 12)
  t.equal(st.nlink, 2, 'hardlink')
  t.equal(fs.statSync(`${dir}/oci/etc`).mode & 0o777, 0o700)
  t.equal(fs.statSync(`${dir}/oci/implied`).mode & 0o777, 0o755, 'implied parents 0755')
  t.equal(fs.readFileSync(`${dir}/oci/etc/conf2`, 'utf8'), 'second', 'a later entry replaces')
  t.equal(fs.readlinkSync(`${dir}/oci/etc/abs`), '/usr/bin/x', 'absolute symlinks are kept (never followed)')
  const k = await unpackLayer(Readable.from([tar]), { target: `${dir}/k`, whiteouts: 'kernel' })
  t.equal(k.diffId, oci.diffId)
  t.same(tree(`${dir}/k`), ['etc', 'etc/abs', 'etc/conf', 'etc/conf2', 'etc/gone', 'etc/link', 'implied', 'implied/parent', 'implied/parent/f', 'kept', 'opq'])
  const wh = fs.lstatSync(`${dir}/k/etc/gone`)
  t.ok(wh.isCharacterDevice() && wh.rdev === 0, 'char 0/0 whiteout')
  t.ok(fs.lstatSync(`${dir}/k/kept`).isFile(), 'a whiteout never hides its own layer\'s entry')
  t.equal(sys.lgetxattr(`${dir}/k/opq`, 'trusted.overlay.opaque')?.toString(), 'y')
  await t.rejects(unpackLayer(Readable.from([tar]), { target: `${dir}/oci`, whiteouts: 'oci' }), /exists/, 'never over an existing layer')
  fs.mkdirSync(`${dir}/empty`)
  await unpackLayer(Readable.from([tar]), { target: `${dir}/empty`, whiteouts: 'oci' })
  t.ok(fs.existsSync(`${dir}/empty/kept`), 'an empty target dir is filled')
  t.same(fs.readdirSync(dir).sort(), ['empty', 'k', 'oci'], 'no scratch dirs left')
})

t.test('commit: docker rules on a hand-made upper, deterministic', async t => {
  const dir = t.testdir({ l: { keep: 'k', gone: 'g', dir: { a: 'a' }, old: { x: { y: 'y' } }, o: { hidden: 'h' } }, u: {} })
  const u = `${dir}/u`
  sys.mknod(`${u}/gone`, fs.constants.S_IFCHR, 0)
  fs.mkdirSync(`${u}/o`)
  sys.lsetxattr(`${u}/o`, 'trusted.overlay.opaque', Buffer.from('y'))
  fs.writeFileSync(`${u}/o/new`, 'n')
  fs.mkdirSync(`${u}/renamed`)
  sys.lsetxattr(`${u}/renamed`, 'trusted.overlay.redirect', Buffer.from('old'))
  fs.writeFileSync(`${u}/renamed/added`, 'added')
  sys.mknod(`${u}/old`, fs.constants.S_IFCHR, 0)
  fs.writeFileSync(`${u}/f`, 'data')
  fs.linkSync(`${u}/f`, `${u}/f2`)
  sys.lsetxattr(`${u}/f`, 'user.k', Buffer.from('v'))
  sys.lsetxattr(`${u}/f`, 'security.capability', Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
  sys.lsetxattr(`${u}/f`, 'trusted.overlay.ts.origin', Buffer.from('1:2'))
  sys.lsetxattr(`${u}/f`, 'trusted.other', Buffer.from('no'))
  fs.writeFileSync(`${u}/.wh.oci`, '')
  sys.mknod(`${u}/fifo`, fs.constants.S_IFIFO | 0o640, 0)
  const commit = async (): Promise<{ tar: Buffer, diffId: string }> => {
    const source = openStackSource({ options: [`lowerdir=${dir}/l,upperdir=${u}`] }, { index: 'off' })
    const data: Buffer[] = []
    const r = await writeLayerTar(commitEntries(source, emptyCounts()), new Writable({ write (c: Buffer, _e, cb) { data.push(c); cb() } }), false)
    source.close()
    return { tar: Buffer.concat(data), diffId: r.diffId }
  }
  const one = await commit()
  const two = await commit()
  t.equal(one.diffId, two.diffId, 'two commits, one digest')
  t.same(one.tar, two.tar)
  const { entries } = await readAll(one.tar)
  t.same(entries.map(e => `${e.type} ${e.name}${e.linkname ? ' -> ' + e.linkname : ''}`), [
    'file .wh.oci',
    'file f',
    'link f2 -> f',
    'fifo fifo',
    'file .wh.gone',
    'directory o/',
    'file o/.wh..wh..opq',
    'file o/new',
    'file .wh.old',
    'directory renamed/',
    'file renamed/.wh..wh..opq',
    'file renamed/added',
    'directory renamed/x/',
    'file renamed/x/y'
  ])
  const f = entries.find(e => e.name === 'f')
  t.same([...(f?.xattrs.keys() ?? [])], ['security.capability', 'user.k'], 'only user.* and security.capability')
  t.equal(entries.find(e => e.name === '.wh.gone')?.mode, 0o600)
  t.equal(entries.find(e => e.name === 'fifo')?.mode, 0o640)
  t.notOk(entries.some(e => e.mtime !== Math.floor(e.mtime)))
})

t.test('commit: the rootless upper forms (userxattr, oci) give the same layer entries', async t => {
  const dir = t.testdir({ l: { o: { hidden: 'h' }, gone: 'g' }, ux: {}, oci: {} })
  const ux = `${dir}/ux`; const oci = `${dir}/oci`
  sys.mknod(`${ux}/gone`, fs.constants.S_IFCHR, 0)
  fs.mkdirSync(`${ux}/o`)
  sys.lsetxattr(`${ux}/o`, 'user.overlay.opaque', Buffer.from('y'))
  fs.writeFileSync(`${ux}/o/new`, 'n')
  sys.lsetxattr(`${ux}/o/new`, 'user.overlay.ts.origin', Buffer.from('1:2'))
  sys.lsetxattr(`${ux}/o/new`, 'user.kept', Buffer.from('k'))
  fs.writeFileSync(`${oci}/.wh.gone`, '')
  fs.mkdirSync(`${oci}/o`)
  fs.writeFileSync(`${oci}/o/.wh..wh..opq`, '')
  sys.lsetxattr(`${oci}/o`, 'user.overlayts.opaque', Buffer.from('y'))
  fs.writeFileSync(`${oci}/o/new`, 'n')
  sys.lsetxattr(`${oci}/o/new`, 'user.overlayts.origin', Buffer.from('1:2'))
  sys.lsetxattr(`${oci}/o/new`, 'user.kept', Buffer.from('k'))
  for (const u of [ux, oci]) {
    const source = openStackSource({ options: [`lowerdir=${dir}/l,upperdir=${u}`] }, { index: 'off' })
    const data: Buffer[] = []
    await writeLayerTar(commitEntries(source, emptyCounts()), new Writable({ write (c: Buffer, _e, cb) { data.push(c); cb() } }), false)
    source.close()
    const { entries } = await readAll(Buffer.concat(data))
    t.same(entries.map(e => `${e.type} ${e.name}`), ['file .wh.gone', 'directory o/', 'file o/.wh..wh..opq', 'file o/new'], u)
    t.same([...(entries.at(-1)?.xattrs.keys() ?? [])], ['user.kept'], `${u}: the form's own xattrs are not recorded`)
  }
})

t.test('commit: a directory renamed in an oci-form upper is written whole, as in the kernel form', async t => {
  // The same mv old renamed, one file added and one deleted below it, recorded in each form's markers.
  const dir = t.testdir({ l: { old: { a: 'a', gone: 'g', sub: { b: 'b' } }, keep: 'k' }, k: { renamed: {} }, oci: { renamed: {} } })
  const k = `${dir}/k`; const oci = `${dir}/oci`
  sys.mknod(`${k}/old`, fs.constants.S_IFCHR, 0)
  sys.lsetxattr(`${k}/renamed`, 'trusted.overlay.redirect', Buffer.from('old'))
  sys.mknod(`${k}/renamed/gone`, fs.constants.S_IFCHR, 0)
  fs.writeFileSync(`${oci}/.wh.old`, '')
  sys.lsetxattr(`${oci}/renamed`, 'user.overlayts.redirect', Buffer.from('old'))
  sys.lsetxattr(`${oci}/renamed`, 'user.overlayts.origin', Buffer.from('1:2'))
  fs.writeFileSync(`${oci}/renamed/.wh.gone`, '')
  for (const u of [k, oci]) fs.writeFileSync(`${u}/renamed/added`, 'added')
  const listings: string[][] = []
  for (const u of [k, oci]) {
    const source = openStackSource({ options: [`lowerdir=${dir}/l,upperdir=${u}`] }, { index: 'off' })
    const counts = emptyCounts()
    const data: Buffer[] = []
    await writeLayerTar(commitEntries(source, counts), new Writable({ write (c: Buffer, _e, cb) { data.push(c); cb() } }), false)
    source.close()
    t.equal(counts.redirectedDirs, 1, `${u}: one renamed dir`)
    const { entries } = await readAll(Buffer.concat(data))
    listings.push(entries.map(e => `${e.type} ${e.name}`))
    t.same([...(entries.find(e => e.name === 'renamed/')?.xattrs.keys() ?? [])], [], `${u}: the redirect is not recorded`)
  }
  t.same(listings[0], ['file .wh.old', 'directory renamed/', 'file renamed/.wh..wh..opq', 'file renamed/a', 'file renamed/added', 'directory renamed/sub/', 'file renamed/sub/b'],
    'kernel form: the merged content, the deleted file left out')
  t.same(listings[1], listings[0], 'oci form: the same entries')
})

t.test('commit: a file that changes while it is committed fails the commit', async t => {
  const dir = t.testdir({ l: { a: 'a' }, u: { f: 'before', g: 'g' } })
  const { ChangedWhileCommitting } = await import('../../src/layers/commit.js')
  const source = openStackSource({ options: [`lowerdir=${dir}/l,upperdir=${dir}/u`] }, { index: 'off' })
  t.teardown(() => source.close())
  let wrote = false
  async function * changing (): AsyncGenerator<{ entry: TarEntry, data?: () => AsyncIterable<Buffer> }> {
    for await (const e of commitEntries(source, emptyCounts())) {
      // A writer appends between the walk's lstat and the read.
      if (e.entry.name === 'f') { fs.appendFileSync(`${dir}/u/f`, ' and after'); wrote = true }
      yield e
    }
  }
  await t.rejects(writeLayerTar(changing(), new Writable({ write (_c, _e, cb) { cb() } }), false), ChangedWhileCommitting)
  t.ok(wrote)
  await t.rejects(writeLayerTar((async function * () {
    for await (const e of commitEntries(source, emptyCounts())) {
      if (e.entry.name === 'g') fs.rmSync(`${dir}/u/g`)
      yield e
    }
  })(), new Writable({ write (_c, _e, cb) { cb() } }), false), /g: could not be opened/, 'a file gone before its data is read')
})
