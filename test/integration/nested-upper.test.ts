// An upper on an overlayfs (a nested container: the container's root is a
// kernel overlay mount, which refuses char 0/0 whiteouts with EPERM). The
// upper and work dir live inside a kernel overlay mount on the host; overlayts
// must find that at mount (probe in the work dir) and write the oci form:
// `.wh.NAME` files, `.wh..wh..opq`, and user.overlayts.* xattrs for what has no
// OCI marker (redirects, origins). The interop script (deletes, an opaque dir,
// dir renames, hardlinks, xattrs) must show the same merged tree as the
// kernel's overlayfs on ordinary dirs, and a remount must read it back the same.
import t, { type Test } from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { SCRIPT, STACK } from '../helpers/interop-script.js'
import { buildStack } from '../helpers/layers.js'
import { mountKernel, mountOverlayts } from '../helpers/mounts.js'
import { applyOp, formatOp, normalizeTimes, runSeeds } from '../helpers/ops.js'
import { assertSameTree, snapshotTree, type SnapEntry } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'
import { lgetxattr } from '../../src/overlay/sys/xattr.js'
import { mountRecordPath } from '../../src/mount-config/mount-record.js'

async function view (merged: string): Promise<SnapEntry[]> {
  return normalizeTimes(await snapshotTree(merged, { xattrs: true, mtime: true }))
}

function runScript (t: Test, merged: string): void {
  const old = process.umask(0o022)
  try {
    for (const op of SCRIPT) {
      const r = applyOp(merged, op)
      t.ok(r.startsWith('ok'), `${formatOp(op)} => ${r}`)
    }
  } finally { process.umask(old) }
}

/** Every name under `dir` (relative), for looking at the markers on disk. */
function names (dir: string, rel = ''): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`
    out.push(r)
    if (e.isDirectory()) out.push(...names(dir, r))
  }
  return out
}

/**
 * overlayts over the interop stack with its upper and work inside a kernel
 * overlay mount (the "container"), logging to a file; `options` are extra
 * daemon arguments.
 */
async function mountNested (t: Test, tmp: string, options: string[] = []) {
  const c = { lower: join(tmp, 'c-lower'), upper: join(tmp, 'c-upper'), work: join(tmp, 'c-work'), root: join(tmp, 'c-root') }
  for (const d of Object.values(c)) await mkdir(d)
  await mountKernel(t, { lower: [c.lower], upper: c.upper, work: c.work, merged: c.root })
  const stack = await buildStack(join(tmp, 'layers'), STACK, { form: 'kernel' })
  const n = { upper: join(c.root, 'upper'), work: join(c.root, 'work'), merged: join(tmp, 'merged') }
  for (const d of Object.values(n)) await mkdir(d)
  const log = join(tmp, 'overlayts.log')
  const o = await mountOverlayts(t, { lower: stack.lowers, upper: n.upper, work: n.work, merged: n.merged, extra: [...options, '--log-file', log] })
  return { stack, n, log, o }
}

t.test('upper and work inside a kernel overlay mount: the oci form, same view as the kernel', async t => {
  const tmp = await tmpDir(t, 'nested')
  // The reference: the kernel's overlayfs on ordinary dirs.
  const ref = await buildStack(join(tmp, 'ref-layers'), STACK, { form: 'kernel' })
  const r = { upper: join(tmp, 'ref-upper'), work: join(tmp, 'ref-work'), merged: join(tmp, 'ref-merged') }
  for (const d of Object.values(r)) await mkdir(d)
  const kernel = await mountKernel(t, { lower: ref.lowers, upper: r.upper, work: r.work, merged: r.merged, redirectDir: true })
  runScript(t, r.merged)
  const want = await view(r.merged)
  await kernel.unmount()

  // The "container": a kernel overlay mount whose tree holds the nested upper and work.
  const { stack, n, log, o } = await mountNested(t, tmp)
  const mounted = readFileSync(log, 'utf8').split('\n').filter(l => l.includes('"msg":"mounted"')).map(l => JSON.parse(l) as { markers?: string, markersReason?: string })[0]
  t.equal(mounted?.markers, 'oci', `the daemon chose the oci form (${mounted?.markersReason ?? ''})`)
  t.equal((JSON.parse(readFileSync(mountRecordPath(n.merged), 'utf8')) as { upperForm?: string }).upperForm, 'oci', 'the mount record names the form (for the layer tools)')
  runScript(t, n.merged)
  assertSameTree(t, await view(n.merged), want, 'overlayts with a nested upper shows what the kernel shows', { actual: 'overlayts (nested)', expected: 'kernel' })

  // A `.wh.*` name is a marker in this form: not made through the mount (as fuse-overlayfs answers).
  t.equal(applyOp(n.merged, { op: 'create', path: ['.wh.etc'], mode: 0o644, exclusive: true, data: '' }), 'EINVAL', 'creating .wh.NAME through the mount: EINVAL')
  t.equal(applyOp(n.merged, { op: 'mkdir', path: ['etc', '.wh..wh..opq'], mode: 0o755 }), 'EINVAL', 'the opaque marker too')
  t.equal(applyOp(n.merged, { op: 'stat', path: ['.wh.gone'] }), 'ENOENT', 'markers are not shown')
  await o.unmount()

  const onDisk = names(n.upper)
  t.ok(onDisk.includes('etc/.wh.old') && onDisk.includes('etc/.wh.passwd'), 'deletes left .wh. files')
  t.ok(onDisk.includes('opq/.wh..wh..opq'), 'the remade dir is opaque by its marker file')
  t.ok(onDisk.includes('.wh.mv'), 'a renamed dir left a .wh. file at its old name')
  t.ok(onDisk.includes('data/deep/.wh..wh..opq') && !onDisk.includes('data/.wh.deep'), 'a dir made where a .wh. file stood is opaque, and the .wh. file went')
  t.equal(lgetxattr(join(n.upper, 'moved'), 'user.overlayts.redirect')?.toString(), 'mv', 'a same-parent redirect')
  t.equal(lgetxattr(join(n.upper, 'etc/deep2'), 'user.overlayts.redirect')?.toString(), '/data/deep', 'an absolute redirect')

  const again = await mountOverlayts(t, { lower: stack.lowers, upper: n.upper, work: n.work, merged: n.merged })
  assertSameTree(t, await view(n.merged), want, 'a remount reads the nested upper back the same', { actual: 'overlayts (remounted)', expected: 'kernel' })
  await again.unmount()
})

t.test('the differential with the oci form forced (upper_form=oci): every answer and the merged trees as the kernel\'s', async t => {
  const old = process.env.OVERLAYTS_DIFF_OPTS
  process.env.OVERLAYTS_DIFF_OPTS = 'upper_form=oci'
  t.teardown(() => { if (old === undefined) delete process.env.OVERLAYTS_DIFF_OPTS; else process.env.OVERLAYTS_DIFF_OPTS = old })
  const lines: string[] = []
  const failed = await runSeeds({ seeds: 4, ops: 60, firstSeed: 1, log: (l) => lines.push(l) })
  t.same(failed, [], lines[lines.length - 1] ?? '', failed.length > 0 ? { diagnostic: true, output: lines.join('\n').slice(-8000) } : {})
})

t.test('a marker the upper refuses is answered with its errno and logged as an error (upper_form=kernel forced on an overlayfs)', async t => {
  const tmp = await tmpDir(t, 'nested-refused')
  const { n, log, o } = await mountNested(t, tmp, ['-o', 'upper_form=kernel'])
  t.equal(applyOp(n.merged, { op: 'unlink', path: ['etc', 'old'] }), 'EPERM', 'the delete is refused with the upper\'s errno')
  await o.unmount()
  const errors = readFileSync(log, 'utf8').split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as { level: number, msg: string, marker?: string, form?: string, errno?: string, path?: string })
    .filter(r => r.msg === 'cannot write an overlay marker in upper')
  t.same(errors.map(r => [r.level, r.marker, r.form, r.errno, r.path]), [[50, 'whiteout', 'kernel', 'EPERM', '/etc/old']], 'one error line: the whiteout, its form, errno and path')
})
