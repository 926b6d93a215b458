// On-disk interoperability with the kernel's overlayfs: an upper written by
// one implementation must mount under the other and show the same tree.
//  (a) overlayts writes (a fixed script: copy-up, whiteouts, an opaque dir,
//      dir renames with redirects, hardlinks, xattrs, chmod/chown), then the
//      kernel (redirect_dir=on) mounts the same lowers + upper;
//  (b) the kernel writes the same script, then overlayts mounts its upper.
// Each side's merged view is compared with what the writer showed.
// Run inside a user namespace (userns.test.ts) both sides use the kernel's
// userxattr form: user.overlay.* markers, and no redirects (the two renames
// of directories with lower parts answer EXDEV on both).
import t, { type Test } from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { buildStack } from '../helpers/layers.js'
import { SCRIPT, STACK, userxattrAnswer } from '../helpers/interop-script.js'
import { mountKernel, mountOverlayts, type MountHandle } from '../helpers/mounts.js'
import { applyOp, formatOp, normalizeTimes } from '../helpers/ops.js'
import { assertSameTree, snapshotTree, snapshotUpper, type SnapEntry } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'
import { inUserxattrMode, overlayXattr } from '../helpers/userns.js'

interface Dirs { lowers: string[], upper: string, work: string, merged: string }

async function prepare (t: Test, label: string): Promise<Dirs> {
  const tmp = await tmpDir(t, label)
  const stack = await buildStack(join(tmp, 'layers'), STACK, { form: 'kernel' })
  const d = { lowers: stack.lowers, upper: join(tmp, 'upper'), work: join(tmp, 'work'), merged: join(tmp, 'merged') }
  for (const x of [d.upper, d.work, d.merged]) await mkdir(x, { mode: 0o755 })
  return d
}

function runScript (t: Test, merged: string): void {
  const old = process.umask(0o022)
  try {
    for (const op of SCRIPT) {
      const r = applyOp(merged, op)
      const want = inUserxattrMode() ? userxattrAnswer(op) : 'ok'
      t.ok(r.startsWith(want), `${formatOp(op)} => ${r}`)
    }
  } finally { process.umask(old) }
}

async function view (merged: string): Promise<SnapEntry[]> {
  return normalizeTimes(await snapshotTree(merged, { xattrs: true, mtime: true }))
}

type Mounter = (t: Test, d: Dirs) => Promise<MountHandle>
const kernel: Mounter = async (t, d) => await mountKernel(t, { lower: d.lowers, upper: d.upper, work: d.work, merged: d.merged, redirectDir: true })
const overlayts: Mounter = async (t, d) => await mountOverlayts(t, { lower: d.lowers, upper: d.upper, work: d.work, merged: d.merged })

async function interop (t: Test, label: string, writer: [string, Mounter], reader: [string, Mounter]): Promise<void> {
  const d = await prepare(t, label)
  const w = await writer[1](t, d)
  runScript(t, d.merged)
  const written = await view(d.merged)
  const r0 = await w.unmount()
  t.ok(r0.ok, `${writer[0]} unmounted`)
  const upper = await snapshotUpper(d.upper)
  t.ok(upper.some(e => e.type === 'whiteout'), 'the upper holds whiteouts')
  t.ok(upper.some(e => e.xattrs?.[overlayXattr('opaque')] === '79'), 'the upper holds an opaque dir')
  if (!inUserxattrMode()) t.ok(upper.some(e => e.xattrs?.['trusted.overlay.redirect'] !== undefined), 'the upper holds a redirect')

  const r = await reader[1](t, d)
  assertSameTree(t, await view(d.merged), written, `${reader[0]} shows what ${writer[0]} wrote`, { actual: reader[0], expected: writer[0] })
  await r.unmount()
  // The writer, mounted again on its own upper, shows the same too.
  const again = await writer[1](t, d)
  assertSameTree(t, await view(d.merged), written, `${writer[0]} shows the same after a remount`, { actual: `${writer[0]} (again)`, expected: writer[0] })
  await again.unmount()
}

t.test('overlayts writes, the kernel reads', async t => {
  await interop(t, 'interop-o2k', ['overlayts', overlayts], ['kernel', kernel])
})

t.test('the kernel writes, overlayts reads', async t => {
  await interop(t, 'interop-k2o', ['kernel', kernel], ['overlayts', overlayts])
})

t.test('both write the same upper', async t => {
  const a = await prepare(t, 'interop-same-o')
  const b = await prepare(t, 'interop-same-k')
  const mo = await overlayts(t, a)
  const mk = await kernel(t, b)
  runScript(t, a.merged)
  runScript(t, b.merged)
  await mo.unmount()
  await mk.unmount()
  assertSameTree(t, normalizeTimes(await snapshotUpper(a.upper, { mtime: true })), normalizeTimes(await snapshotUpper(b.upper, { mtime: true })), 'same upper on disk', { actual: 'overlayts', expected: 'kernel' })
})
