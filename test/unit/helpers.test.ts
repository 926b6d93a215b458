// Fast checks of the test helpers themselves (no mounts).
import t from 'tap'
import { lstat, mkdir, symlink, writeFile, link, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runOk } from '../helpers/exec.js'
import { buildStack, OCI_OPAQUE, type StackSpec } from '../helpers/layers.js'
import { escapeLowerdir, formatLowerdir, parseMountInfo, summarizeStderr } from '../helpers/mounts.js'
import { devMajor, devMinor, diffSnapshots, formatSnapshot, parseGetfattr, snapshotTree, snapshotUpper, unquoteGetfattr } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

t.test('snapshotTree records every field, never follows symlinks', async t => {
  const d = await tmpDir(t, 'snap')
  await mkdir(join(d, 'sub'))
  await writeFile(join(d, 'sub/f'), 'hello')
  await link(join(d, 'sub/f'), join(d, 'sub/hl'))
  await symlink('/etc', join(d, 'ln'))
  await runOk('mknod', [join(d, 'p'), 'p'])
  await runOk('mknod', [join(d, 'c'), 'c', '1', '3'])
  await writeFile(join(d, 'new\nline'), '')
  await runOk('setfattr', ['-n', 'user.k', '-v', 'v', join(d, 'new\nline')])
  await runOk('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(d, 'sub')])
  const s = await snapshotTree(d, { xattrs: true, mtime: true })
  t.same(s.map(e => e.path), ['.', 'c', 'ln', 'new\nline', 'p', 'sub', 'sub/f', 'sub/hl'])
  const by = new Map(s.map(e => [e.path, e]))
  t.match(by.get('sub/f'), { type: 'file', size: 5, nlink: 2, sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' })
  t.match(by.get('ln'), { type: 'symlink', target: '/etc' })
  t.equal(by.get('c')?.rdev, '1:3')
  t.equal(by.get('p')?.type, 'fifo')
  t.same(by.get('new\nline')?.xattrs, { 'user.k': '76' }, 'xattr of a name with a newline (getfattr escaping)')
  t.same(by.get('sub')?.xattrs, { 'trusted.overlay.opaque': '79' })
  t.equal(by.get('sub')?.nlink, undefined, 'no nlink for dirs')
  t.ok(by.get('sub/f')?.mtimeNs !== undefined, 'mtime recorded')
  const hidden = await snapshotTree(d, { hideOverlayXattrs: true })
  t.equal(hidden.find(e => e.path === 'sub')?.xattrs, undefined, 'hideOverlayXattrs')
  t.equal(hidden.find(e => e.path === 'sub/f')?.mtimeNs, undefined, 'no mtime unless asked')

  t.same(diffSnapshots(s, s), [], 'identical')
  await writeFile(join(d, 'sub/f'), 'hellO')
  await writeFile(join(d, 'extra'), '')
  const s2 = await snapshotTree(d, { xattrs: true, mtime: true })
  const diff = diffSnapshots(s, s2)
  t.ok(diff.some(l => l.startsWith('"sub/f": sha256')), 'content change found')
  t.ok(diff.some(l => l === '"extra": only in b (file)'), 'new file found')
  t.equal(formatSnapshot(s).length, s.length)
  const many = diffSnapshots([], Array.from({ length: 80 }, (_, i) => ({ path: `x${i}`, type: 'file' as const, mode: '0644', uid: 0, gid: 0 })))
  t.equal(many.length, 51, 'capped at 50 + summary')
  t.equal(many[50], '... and 30 more differences')
})

t.test('snapshotUpper: whiteouts, kept and dropped overlay xattrs', async t => {
  const d = await tmpDir(t, 'upper')
  await runOk('mknod', [join(d, 'gone'), 'c', '0', '0'])
  await mkdir(join(d, 'dir'))
  for (const [n, v] of [['trusted.overlay.opaque', 'y'], ['trusted.overlay.redirect', '/a'], ['trusted.overlay.origin', 'x'],
    ['trusted.overlay.impure', 'y'], ['trusted.overlay.ts.prov', 'z'], ['user.keep', 'k']]) {
    await runOk('setfattr', ['-n', n as string, '-v', v as string, join(d, 'dir')])
  }
  const s = await snapshotUpper(d)
  t.same(s.find(e => e.path === 'gone'), { path: 'gone', type: 'whiteout', mode: '0000', uid: 0, gid: 0 })
  t.same(Object.keys(s.find(e => e.path === 'dir')?.xattrs ?? {}), ['trusted.overlay.opaque', 'trusted.overlay.redirect', 'user.keep'])
})

t.test('getfattr parsing and escapes', async t => {
  t.equal(unquoteGetfattr(Buffer.from('a\\012b\\\\c\\303\\274')).toString('utf8'), 'a\nb\\cü')
  const m = parseGetfattr(Buffer.from('# file: /x/a\\040b\nuser.a=0x6869\nuser.e\n\n# file: /y\ntrusted.t=0x00\n\n'))
  t.same([...m.entries()], [['/x/a b', { 'user.a': '6869', 'user.e': '' }], ['/y', { 'trusted.t': '00' }]])
})

t.test('mountinfo and lowerdir helpers', async t => {
  const mi = parseMountInfo('36 35 0:52 / /tmp/a\\040b rw,relatime shared:1 - fuse.overlayts overlayts rw,user_id=0\n')
  t.match(mi[0], { major: 0, minor: 52, mountPoint: '/tmp/a b', fstype: 'fuse.overlayts' })
  t.equal(escapeLowerdir('/a:b\\c'), '/a\\:b\\\\c')
  t.equal(formatLowerdir(['/l1', '/l2']), '/l1:/l2')
  t.throws(() => escapeLowerdir('/a,b'))
  t.equal(devMajor(0x10300n), 259)
  t.equal(devMinor(0x10300n), 0)
  t.match(summarizeStderr('overlayts: workdir and upperdir must be on the same filesystem\n'), /same filesystem/)
})

t.test('buildStack writes the right markers in both forms', async t => {
  const d = await tmpDir(t, 'stack')
  const spec: StackSpec = {
    layers: [
      { name: 'top', entries: [
        { type: 'whiteout', path: 'a/gone' },
        { type: 'dir', path: 'op', opaque: true },
        { type: 'file', path: 'op/new', content: 'n', mode: 0o4755, uid: 1000, gid: 1000, xattrs: { 'user.x': 'y' }, mtime: 1000 },
        { type: 'opaque', path: 'op2' },
        { type: 'symlink', path: 'l', target: '../../etc', uid: 65534, gid: 65534 },
        { type: 'hardlink', path: 'h', to: 'op/new' },
        { type: 'chardev', path: 'dev/c', major: 4, minor: 5 },
        { type: 'raw-oci-whiteout', path: 'raw' }
      ] },
      { name: 'bottom', entries: [{ type: 'file', path: 'a/gone', content: 'g' }, { type: 'file', path: 'op/old' }] }
    ]
  }
  const k = await buildStack(join(d, 'k'), spec, { form: 'kernel' })
  const o = await buildStack(join(d, 'o'), spec, { form: 'oci' })
  t.same(k.lowers.map(p => p.slice(d.length)), ['/k/00-top', '/k/01-bottom'])
  const [kt] = k.lowers as [string]
  const [ot] = o.lowers as [string]

  const wst = await lstat(join(kt, 'a/gone'))
  t.ok(wst.isCharacterDevice() && wst.rdev === 0, 'kernel whiteout is chr 0/0')
  const ks = await snapshotTree(kt)
  t.same(ks.find(e => e.path === 'op')?.xattrs, { 'trusted.overlay.opaque': '79' }, 'kernel opaque xattr')
  t.same(ks.find(e => e.path === 'op2')?.xattrs, { 'trusted.overlay.opaque': '79' }, 'opaque entry')
  t.same(await readdir(join(kt, 'op')), ['new'], 'no OCI marker in kernel form')
  t.ok((await readdir(kt)).includes('.wh.raw'), 'raw OCI marker written verbatim in kernel form')

  t.same((await readdir(join(ot, 'a'))), ['.wh.gone'], 'OCI whiteout file')
  t.equal((await readFile(join(ot, 'a/.wh.gone'))).length, 0)
  t.same((await readdir(join(ot, 'op'))).sort(), [OCI_OPAQUE, 'new'], 'OCI opaque marker')
  t.ok((await readdir(join(ot, 'op2'))).includes(OCI_OPAQUE))
  const os = await snapshotTree(ot)
  t.equal(os.find(e => e.path === 'op')?.xattrs, undefined, 'no overlay xattr in OCI form')

  for (const s of [ks, os]) {
    t.match(s.find(e => e.path === 'op/new'), { mode: '4755', uid: 1000, gid: 1000, nlink: 2, xattrs: { 'user.x': '79' } }, 'mode survives chown, hardlink')
    t.match(s.find(e => e.path === 'l'), { type: 'symlink', target: '../../etc', uid: 65534, gid: 65534 })
    t.match(s.find(e => e.path === 'dev/c'), { type: 'chr', rdev: '4:5' })
  }
  // apart from the markers the two forms are the same tree
  const strip = (s: typeof ks): typeof ks => s
    .filter(e => !e.path.split('/').some(c => c.startsWith('.wh.')) && !(e.type === 'chr' && e.rdev === '0:0'))
    .map(e => { const c = { ...e }; if (c.xattrs !== undefined) { const x = { ...c.xattrs }; delete x['trusted.overlay.opaque']; c.xattrs = x; if (Object.keys(x).length === 0) delete c.xattrs } return c })
  t.same(diffSnapshots(strip(await snapshotTree(kt, { mtime: true })), strip(await snapshotTree(ot, { mtime: true }))), [], 'forms agree apart from markers')
  t.equal((await lstat(join(kt, 'op/new'))).mtimeMs, 1_000_000, 'mtime from spec')
})
