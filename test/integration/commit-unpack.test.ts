// overlayts commit -> unpack round trip (issue 11, "Done when"): a two-layer
// stack is mounted with overlayts and changed through the mount (add, modify,
// delete a lower file, rm -rf a lower dir, delete and recreate a dir, rename
// a lower dir, hardlinks, xattrs, chown, a 100 MiB file); the upper is
// committed (twice on the live mount and once offline: one digest), unpacked
// as a new top layer in both whiteout forms, and the stacks without the upper
// (overlayts over the OCI form, overlayts and the kernel's overlayfs over the
// kernel form) show the same tree as the original merged view.
import t, { type Test } from 'tap'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { pseudoRandomBytes } from '../helpers/layers.js'
import { formatLowerdir, mountKernel, mountOverlayts, OVERLAYTS_BIN, REPO_ROOT } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'
import { sys } from '../../src/overlay/sys/fs.js'

const MiB = 1024 * 1024

function w (p: string, s: string | Buffer = 'x'): void {
  fs.mkdirSync(join(p, '..'), { recursive: true })
  fs.writeFileSync(p, s)
}

/** base (bottom) and app (top) lowers, kernel form. */
function buildLowers (dir: string): string[] {
  const base = join(dir, 'base'); const app = join(dir, 'app')
  w(`${base}/etc/passwd`, 'root:x:0:0\n'); w(`${base}/etc/hosts`, '127.0.0.1 localhost\n')
  w(`${base}/data/big`, pseudoRandomBytes(64 * 1024)); w(`${base}/data/keep`, 'k')
  w(`${base}/usr/bin/sh`, 'sh'); w(`${base}/usr/bin/ls`, 'ls'); w(`${base}/usr/lib/libc`, 'c')
  w(`${base}/old/a`, 'a'); w(`${base}/old/sub/b`, 'b')
  w(`${base}/gone/x`, 'x'); w(`${base}/gone/deep/y`, 'y')
  w(`${base}/links/l1`, 'linked'); fs.linkSync(`${base}/links/l1`, `${base}/links/l2`)
  fs.symlinkSync('../etc/passwd', `${base}/data/passwd-link`)
  sys.lsetxattr(`${base}/etc/hosts`, 'user.origin', Buffer.from('base'))
  w(`${app}/etc/app.conf`, 'conf'); w(`${app}/old/sub/c`, 'c-from-app')
  for (const d of [base, app]) fs.utimesSync(d, 1_600_000_000, 1_600_000_000)
  return [app, base]
}

/** The container's changes, all through the mount. */
function change (m: string): void {
  fs.writeFileSync(`${m}/etc/new.conf`, 'new') // add
  fs.appendFileSync(`${m}/etc/passwd`, 'user:x:1000:1000\n') // modify a lower file
  fs.rmSync(`${m}/data/big`) // delete a lower file
  fs.rmSync(`${m}/usr/bin`, { recursive: true }) // rm -rf a lower dir
  fs.rmSync(`${m}/gone`, { recursive: true }) // delete a dir, then make it again (opaque)
  fs.mkdirSync(`${m}/gone`)
  fs.writeFileSync(`${m}/gone/fresh`, 'fresh')
  fs.renameSync(`${m}/old`, `${m}/new`) // rename a lower dir (redirect); its content from two lowers
  fs.writeFileSync(`${m}/new/added`, 'added below the renamed dir')
  fs.writeFileSync(`${m}/h1`, 'hard') // hardlinks: a new pair, and one to a lower file
  fs.linkSync(`${m}/h1`, `${m}/h2`)
  fs.linkSync(`${m}/links/l1`, `${m}/links/l3`)
  sys.lsetxattr(`${m}/etc/new.conf`, 'user.note', Buffer.from('v\x00\xff', 'latin1')) // xattrs, binary too
  sys.lsetxattr(`${m}/etc/hosts`, 'user.origin', Buffer.from('changed'))
  sys.lsetxattr(`${m}/h1`, 'security.capability', Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
  fs.chownSync(`${m}/etc/new.conf`, 1000, 1000)
  fs.chmodSync(`${m}/usr/lib`, 0o700)
  sys.mknod(`${m}/fifo`, fs.constants.S_IFIFO | 0o640, 0)
  // 100 MiB of data that compresses (a repeated 1 MiB random block), written in 1 MiB steps
  const block = pseudoRandomBytes(MiB, 7)
  const fd = fs.openSync(`${m}/data/large`, 'w')
  for (let i = 0; i < 100; i++) fs.writeSync(fd, block)
  fs.closeSync(fd)
  fs.utimesSync(`${m}/data/large`, 1_700_000_000, 1_700_000_000)
}

async function ots (t: Test, args: string[], expectCode = 0): Promise<string> {
  const r = await run(process.execPath, [OVERLAYTS_BIN, ...args], { timeoutMs: 300_000, cwd: REPO_ROOT })
  t.equal(r.code, expectCode, `overlayts ${args.join(' ')}: exit ${r.code} ${r.stderr}`)
  return r.stdout.toString('latin1')
}

/** Whole-second mtimes of the non-directories (a layer records seconds). */
function mtimes (root: string): Record<string, number> {
  const out: Record<string, number> = {}
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(join(root, rel)).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`
      const st = fs.lstatSync(join(root, r))
      if (st.isDirectory()) walk(r)
      else out[r] = Math.floor(st.mtimeMs / 1000)
    }
  }
  walk('')
  return out
}

t.test('commit the upper, unpack it as a new top layer: same merged view; same digest every time', async t => {
  const dir = await tmpDir(t, 'commit-unpack')
  const lowers = buildLowers(join(dir, 'layers'))
  const upper = join(dir, 'upper'); const work = join(dir, 'work'); const merged = join(dir, 'merged')
  fs.mkdirSync(upper); fs.mkdirSync(work)
  const m = await mountOverlayts(t, { lower: lowers, upper, work, merged })
  change(m.merged)
  const original = await snapshotTree(m.merged)
  const originalTimes = mtimes(m.merged)

  const one = JSON.parse(await ots(t, ['commit', m.merged, '--output', join(dir, 'one.tar.gz'), '--json']))
  const two = JSON.parse(await ots(t, ['commit', m.merged, '--output', join(dir, 'two.tar.gz'), '--json']))
  t.match(one.digest, /^sha256:[0-9a-f]{64}$/)
  t.not(one.digest, one.diffId, 'gzip: digest of the compressed bytes')
  t.equal(two.digest, one.digest, 'two commits of the same upper: same digest')
  t.equal(two.diffId, one.diffId)
  t.same([one.whiteouts, one.opaqueMarkers, one.redirectedDirs, one.hardlinks], [3, 2, 1, 2], 'data/big, usr/bin and old whited out; gone and new opaque; new renamed; h2 and l3 hardlinks')
  await m.unmount()
  const offline = JSON.parse(await ots(t, ['commit', '-o', `lowerdir=${formatLowerdir(lowers)},upperdir=${upper}`, '--output', join(dir, 'three.tar'), '--json']))
  t.equal(offline.diffId, one.diffId, 'offline commit: same tar')
  t.ok(fs.readFileSync(join(dir, 'one.tar.gz')).equals(fs.readFileSync(join(dir, 'two.tar.gz'))), 'byte-identical layers')

  const oci = join(dir, 'top-oci'); const kernel = join(dir, 'top-kernel')
  const u1 = JSON.parse(await ots(t, ['unpack', '--digest', one.digest, '--json', join(dir, 'one.tar.gz'), oci]))
  t.equal(u1.diffId, one.diffId, 'unpack sees the diff ID commit printed')
  await ots(t, ['unpack', '--whiteouts', 'kernel', join(dir, 'three.tar'), kernel])
  await ots(t, ['unpack', '--digest', `sha256:${'1'.repeat(64)}`, join(dir, 'one.tar.gz'), join(dir, 'refused')], 1)
  t.notOk(fs.existsSync(join(dir, 'refused')), 'a wrong digest leaves nothing')
  t.same(fs.readdirSync(dir).filter(n => n.includes('.unpack-') || n.includes('.commit-')), [], 'no scratch left')

  // GNU tar reads the same layer to the same tree (the tar is standard PAX).
  const gnu = join(dir, 'gnu-tar')
  fs.mkdirSync(gnu)
  const x = await run('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', join(dir, 'three.tar'), '-C', gnu], { timeoutMs: 120_000 })
  t.equal(x.code, 0, `GNU tar extracts the layer: ${x.stderr}`)
  assertSameTree(t, await snapshotTree(gnu), await snapshotTree(oci), 'GNU tar and overlayts unpack make the same tree', { actual: 'GNU tar', expected: 'unpack' })
  fs.rmSync(gnu, { recursive: true })

  const views: Array<[string, () => Promise<{ merged: string }>]> = [
    ['overlayts, new layer in OCI form', () => mountOverlayts(t, { lower: [oci, ...lowers], merged: join(dir, 'm-oci') })],
    ['overlayts, new layer in kernel form', () => mountOverlayts(t, { lower: [kernel, ...lowers], merged: join(dir, 'm-k') })],
    ['kernel overlayfs, new layer in kernel form', () => mountKernel(t, { lower: [kernel, ...lowers], merged: join(dir, 'm-kernel'), redirectDir: true })]
  ]
  for (const [name, mount] of views) {
    const v = await mount()
    assertSameTree(t, await snapshotTree(v.merged), original, `${name}: same tree as the original merged view`, { actual: name, expected: 'original' })
    t.same(mtimes(v.merged), Object.fromEntries(Object.entries(originalTimes)), `${name}: same mtimes (whole seconds)`)
  }
})
