// Proves the harness against the oracle: builds richStack() in kernel form,
// mounts the kernel's overlayfs on it and checks known facts of the merged view.
// Needs no daemon.
import t from 'tap'
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { buildStack, pseudoRandomBytes, RICH, richDeepPath, richStack } from '../helpers/layers.js'
import { isMounted, mountKernel, mountsUnder } from '../helpers/mounts.js'
import { diffSnapshots, snapshotTree } from '../helpers/snapshot.js'
import { tmpDir, TMP_PREFIX } from '../helpers/tmp.js'

t.test('kernel overlayfs on richStack (kernel form)', async t => {
  const tmp = await tmpDir(t, 'oracle')
  const stack = await buildStack(join(tmp, 'layers'), richStack(), { form: 'kernel' })
  const merged = join(tmp, 'merged')
  await mountKernel(t, { lower: stack.lowers, merged })
  t.ok(await isMounted(merged), 'mounted')

  const names = async (p: string): Promise<string[]> => (await readdir(join(merged, p))).sort()
  const exists = async (p: string): Promise<boolean> => lstat(join(merged, p)).then(() => true, () => false)

  t.test('whiteouts hide files and dirs', async t => {
    t.notOk(await exists('etc/removed-file'), 'file whiteout')
    t.notOk(await exists('removed-dir'), 'dir whiteout')
    t.notOk(await exists('symlinks/remove-me'), 'file whiteout two layers down')
    t.same(await names('etc'), ['from-l1', 'hosts', 'passwd'], 'etc merged without the whited-out name')
    t.equal(await readFile(join(merged, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n::1 localhost\n', 'top copy wins')
  })

  t.test('opaque dir hides lower entries', async t => {
    t.same(await names('opaque'), ['new1'])
    t.equal((await lstat(join(merged, 'opaque'))).mode & 0o7777, 0o755, 'opaque dir attributes from its layer')
  })

  t.test('3-layer merge shows all names', async t => {
    t.same(await names('merged3'), ['from1-a', 'from2-a', 'from3-a', 'from3-b', 'shared', 'subdir'])
    t.same(await names('merged3/subdir'), ['in1', 'in2', 'in3'])
    t.equal(await readFile(join(merged, 'merged3/shared'), 'utf8'), 'L1 version wins\n')
    const st = await lstat(join(merged, 'merged3'))
    // L1 has merged3/ implicitly (0755 root:root); L3's explicit 0711 1000:1000 is below it
    t.equal(st.mode & 0o7777, 0o755, 'merged dir attributes come from the topmost layer holding the dir')
    t.equal(st.uid, 0, 'merged dir owner from the topmost layer')
  })

  t.test('non-dir over dir and dir over non-dir', async t => {
    t.ok((await lstat(join(merged, 'dir-then-file'))).isFile(), 'file hides the dir below')
    t.same(await names('file-then-dir'), ['child'], 'dir over a file is not merged')
  })

  t.test('2000-entry dir merged across layers, whiteouts applied', async t => {
    const n = await names(RICH.manyDir)
    t.equal(n.length, RICH.manyCount)
    t.notOk(n.some(x => x.startsWith('w')), 'w* whited out')
  })

  t.test('symlinks, specials, names', async t => {
    t.equal(await readlink(join(merged, 'symlinks/outside')), '../../etc')
    t.equal(await readlink(join(merged, 'symlinks/dangling')), 'does/not/exist')
    t.ok((await lstat(join(merged, 'special/fifo'))).isFIFO())
    t.ok((await lstat(join(merged, 'special/null'))).isCharacterDevice())
    for (const n of RICH.oddNames) t.ok(await exists(join('names', n)), `odd name ${JSON.stringify(n)}`)
    t.ok(await exists(join('names', RICH.longName)), '255-byte name')
    t.ok(await exists(`${richDeepPath()}/leaf.txt`) && await exists(`${richDeepPath()}/top-leaf.txt`), 'deep merge')
    t.equal((await lstat(join(merged, 'hardlinks/b'))).nlink, 3, 'hardlink count')
    const big = await readFile(join(merged, RICH.bigFile))
    t.ok(big.equals(pseudoRandomBytes(RICH.bigSize, RICH.bigSeed)), 'big file content')
  })

  t.test('snapshot is deterministic and hides the markers', async t => {
    const a = await snapshotTree(merged, { xattrs: true, mtime: true })
    const b = await snapshotTree(merged, { xattrs: true, mtime: true })
    t.same(diffSnapshots(a, b), [], 'two snapshots equal')
    t.notOk(a.some(e => e.xattrs !== undefined && Object.keys(e.xattrs).some(k => k.startsWith('trusted.overlay.'))), 'kernel hides trusted.overlay.* xattrs')
    t.notOk(a.some(e => e.type === 'chr' && e.rdev === '0:0'), 'no whiteout visible')
    const x = a.find(e => e.path === 'xattrs/file')
    t.same(x?.xattrs, {
      'trusted.secret': Buffer.from('root only').toString('hex'),
      'user.binary': '000102fffe',
      'user.empty': '',
      'user.mime_type': Buffer.from('text/plain').toString('hex')
    }, 'xattrs read through the mount')
    const top = a.find(e => e.path === 'top-only')
    t.equal(top?.mtimeNs, String(1234567890n * 1_000_000_000n), 'mtime from the spec')
  })

  t.test('a second copy of the stack gives an identical merged view', async t => {
    // proves buildStack is deterministic (modes, owners, mtimes, nlinks, xattrs),
    // which the cross-copy comparisons in compare-read rely on
    const copy = await buildStack(join(tmp, 'layers-2'), richStack(), { form: 'kernel' })
    const m2 = await mountKernel(t, { lower: copy.lowers, merged: join(tmp, 'merged-2') })
    const a = await snapshotTree(merged, { xattrs: true, mtime: true })
    const b = await snapshotTree(m2.merged, { xattrs: true, mtime: true })
    t.same(diffSnapshots(a, b), [], 'same snapshot')
    await m2.unmount()
    t.notOk(await isMounted(m2.merged), 'explicit unmount works')
  })
})

t.teardown(async () => {
  // Paranoia: nothing of ours is left mounted once every teardown ran.
  const left = (await mountsUnder(TMP_PREFIX)).filter(m => m.mountPoint.includes(`/${process.pid}-`))
  if (left.length > 0) process.stderr.write(`# LEFTOVER MOUNTS: ${left.map(m => m.mountPoint).join(', ')}\n`)
})
