// On-disk interoperability with the kernel's overlayfs: an upper written by
// one implementation must mount under the other and show the same tree.
//  (a) overlayts writes (a fixed script: copy-up, whiteouts, an opaque dir,
//      dir renames with redirects, hardlinks, xattrs, chmod/chown), then the
//      kernel (redirect_dir=on) mounts the same lowers + upper;
//  (b) the kernel writes the same script, then overlayts mounts its upper.
// Each side's merged view is compared with what the writer showed.
import t, { type Test } from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { buildStack, type StackSpec } from '../helpers/layers.js'
import { mountKernel, mountOverlayts, type MountHandle } from '../helpers/mounts.js'
import { applyOp, formatOp, normalizeTimes, type Op } from '../helpers/ops.js'
import { assertSameTree, snapshotTree, snapshotUpper, type SnapEntry } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

const STACK: StackSpec = {
  layers: [
    {
      name: 'top',
      entries: [
        { type: 'file', path: 'etc/hosts', content: '127.0.0.1 localhost\n' },
        { type: 'file', path: 'etc/old', content: 'old\n' },
        { type: 'file', path: 'opq/x', content: 'x\n' },
        { type: 'file', path: 'mv/sub/f', content: 'f\n', mode: 0o600, uid: 1000, gid: 1000 },
        { type: 'file', path: 'hl1', content: 'linked\n' },
        { type: 'hardlink', path: 'hl2', to: 'hl1' },
        { type: 'file', path: 'modes', content: 'm\n', mode: 0o4755 },
        { type: 'file', path: 'owned', content: 'o\n', uid: 1000, gid: 1000 },
        { type: 'file', path: 'xa', content: 'xa\n', xattrs: { 'user.x': 'lower', 'trusted.t': 'T' } },
        { type: 'symlink', path: 'link', target: 'etc/hosts' },
        { type: 'whiteout', path: 'gone' }
      ]
    },
    {
      name: 'bottom',
      entries: [
        { type: 'file', path: 'etc/passwd', content: 'root:x:0:0\n' },
        { type: 'file', path: 'opq/y', content: 'y\n' },
        { type: 'dir', path: 'opq/d' },
        { type: 'file', path: 'mv/lowerfile', content: 'lf\n' },
        { type: 'file', path: 'data/deep/f', content: 'deep\n' },
        { type: 'file', path: 'data/keep', content: 'keep\n' },
        { type: 'file', path: 'gone', content: 'hidden\n' }
      ]
    }
  ]
}

const P = (s: string): string[] => s.split('/')

/** The scripted changes; every one must succeed on both implementations. */
const SCRIPT: Op[] = [
  { op: 'append', path: P('etc/hosts'), data: '::1 localhost\n' },
  { op: 'create', path: P('etc/new'), mode: 0o640, exclusive: true, data: 'new\n' },
  { op: 'unlink', path: P('etc/old') },
  { op: 'unlink', path: P('etc/passwd') },
  // opaque dir: empty the merged dir, remove it, make it again
  { op: 'unlink', path: P('opq/x') },
  { op: 'unlink', path: P('opq/y') },
  { op: 'rmdir', path: P('opq/d') },
  { op: 'rmdir', path: P('opq') },
  { op: 'mkdir', path: P('opq'), mode: 0o750 },
  { op: 'create', path: P('opq/fresh'), mode: 0o644, exclusive: true, data: 'fresh\n' },
  // dir renames: same parent (relative redirect) and across dirs (absolute)
  { op: 'rename', from: P('mv'), to: P('moved') },
  { op: 'create', path: P('moved/sub/g'), mode: 0o644, exclusive: true, data: 'g\n' },
  { op: 'rename', from: P('data/deep'), to: P('etc/deep2') },
  { op: 'mkdir', path: P('data/deep'), mode: 0o755 },
  // hardlinks: a new one to a copied-up file, and a lower pair
  { op: 'link', from: P('etc/hosts'), to: P('hostlink') },
  { op: 'append', path: P('hl1'), data: 'more\n' },
  // attributes and xattrs
  { op: 'setxattr', path: P('xa'), name: 'user.new', value: 'v' },
  { op: 'removexattr', path: P('xa'), name: 'user.x' },
  { op: 'chmod', path: P('modes'), mode: 0o2750 },
  { op: 'chown', path: P('owned'), uid: 65534, gid: 0 },
  { op: 'utimes', path: P('etc/new'), atime: [1234567890, 500000000], mtime: [1234567890, 500000000] },
  { op: 'chown', path: P('link'), uid: 1000, gid: 1000 },
  // new objects in a merged dir and where a whiteout stands
  { op: 'mkdir', path: P('newdir'), mode: 0o700 },
  { op: 'symlink', target: '../etc', path: P('newdir/up') },
  { op: 'mkfifo', path: P('newdir/fifo') },
  { op: 'create', path: P('gone'), mode: 0o600, exclusive: true, data: 'back\n' },
  { op: 'truncate', path: P('moved/lowerfile'), size: 1 }
]

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
      t.ok(r.startsWith('ok'), `${formatOp(op)} => ${r}`)
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
  t.ok(upper.some(e => e.xattrs?.['trusted.overlay.opaque'] === '79'), 'the upper holds an opaque dir')
  t.ok(upper.some(e => e.xattrs?.['trusted.overlay.redirect'] !== undefined), 'the upper holds a redirect')

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
