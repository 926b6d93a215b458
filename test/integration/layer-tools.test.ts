// The layer tools (overlayts diff, layers, which) on a stack in both
// whiteout forms, changed through a real overlayts mount and through the
// kernel's overlayfs (same upper format): diff against the A/C/D list
// written here, which/layers against what was built, and the same answers
// from the live mount and offline from the layer directories. On the
// OCI-form upper (upper_form=oci) also the commit -> unpack round trip of its
// renamed directory (user.overlayts.redirect); commit-unpack.test.ts has the
// round trip of every other change, on a kernel-form upper.
import t, { type Test } from 'tap'
import * as fs from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { buildStack, type LayerForm, type StackSpec } from '../helpers/layers.js'
import { formatLowerdir, mountKernel, mountOverlayts, OVERLAYTS_BIN, REPO_ROOT, type MountHandle } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

const x = (n: number): string => 'x'.repeat(n)

/** lower 0 ("app") over lower 1 ("base"); sizes are what layers/which must report. */
const STACK: StackSpec = {
  layers: [
    {
      name: 'app',
      entries: [
        { type: 'dir', path: 'etc' },
        { type: 'file', path: 'etc/app.conf', content: x(7) },
        { type: 'file', path: 'opt/tool', content: x(10) },
        { type: 'dir', path: 'tmp' },
        { type: 'whiteout', path: 'tmp/cache' },
        { type: 'dir', path: 'usr' },
        { type: 'dir', path: 'usr/share' },
        { type: 'dir', path: 'usr/share/doc', opaque: true },
        { type: 'file', path: 'usr/share/doc/readme', content: x(3) }
      ]
    },
    {
      name: 'base',
      entries: [
        { type: 'dir', path: 'etc' },
        { type: 'file', path: 'etc/passwd', content: x(11) },
        { type: 'file', path: 'etc/hosts', content: x(10) },
        { type: 'dir', path: 'tmp' },
        { type: 'file', path: 'tmp/cache', content: x(30) },
        { type: 'dir', path: 'old' },
        { type: 'file', path: 'old/a', content: x(1) },
        { type: 'dir', path: 'old/sub' },
        { type: 'file', path: 'old/sub/b', content: x(1) },
        { type: 'dir', path: 'data' },
        { type: 'file', path: 'data/big', content: x(4000) },
        { type: 'dir', path: 'usr' },
        { type: 'dir', path: 'usr/bin' },
        { type: 'file', path: 'usr/bin/sh', content: x(5) },
        { type: 'dir', path: 'usr/share' },
        { type: 'dir', path: 'usr/share/doc' },
        { type: 'file', path: 'usr/share/doc/legacy', content: x(6) }
      ]
    }
  ]
}

/** The container's changes, made through the mount. */
function change (m: string): void {
  fs.appendFileSync(`${m}/etc/passwd`, 'more\n') // modify a lower file
  fs.writeFileSync(`${m}/etc/new.conf`, 'n') // add a file
  fs.chmodSync(`${m}/etc/hosts`, 0o600) // metadata only
  fs.rmSync(`${m}/data/big`) // delete a lower file
  fs.rmSync(`${m}/usr/bin`, { recursive: true }) // rm -rf a lower dir
  fs.renameSync(`${m}/old`, `${m}/new`) // rename a lower dir (redirect)
  fs.mkdirSync(`${m}/fresh/dir`, { recursive: true }) // a new tree
  fs.writeFileSync(`${m}/fresh/dir/f`, 'f')
  fs.rmSync(`${m}/opt`, { recursive: true }) // delete a dir, make it again (opaque)
  fs.mkdirSync(`${m}/opt`)
  fs.writeFileSync(`${m}/opt/tool2`, 't')
}

/** What docker diff reports for those changes (see src/layers/diff.ts for each rule). */
const EXPECTED_DIFF = [
  'C /data', 'D /data/big', // parent of a delete
  'C /etc', 'C /etc/hosts', 'A /etc/new.conf', 'C /etc/passwd',
  'A /fresh', 'A /fresh/dir', 'A /fresh/dir/f',
  'A /new', 'A /new/a', 'A /new/sub', 'A /new/sub/b', 'D /old', // the rename, as mv without redirects
  'D /opt', 'A /opt/tool2', // an opaque dir over a lower dir
  'C /usr', 'D /usr/bin'
].join('\n') + '\n'

/** The top lower against the base, no upper: both whiteout forms give this. */
const EXPECTED_LAYER_DIFF = [
  'C /etc', 'A /etc/app.conf', 'A /opt', 'A /opt/tool', 'C /tmp', 'D /tmp/cache',
  'C /usr/share', 'D /usr/share/doc', 'A /usr/share/doc/readme'
].join('\n') + '\n'

async function ots (t: Test, args: string[], expectCode = 0): Promise<string> {
  const r = await run(process.execPath, [OVERLAYTS_BIN, ...args], { timeoutMs: 120_000, cwd: REPO_ROOT })
  t.equal(r.code, expectCode, `overlayts ${args.join(' ')}: exit ${r.code} ${r.stderr.toString()}`)
  return r.stdout.toString('latin1')
}

interface Built { lowers: string[], upper: string, work: string, merged: string, offline: string }

async function built (t: Test, form: LayerForm): Promise<Built> {
  const dir = await tmpDir(t, `layer-tools-${form}`)
  const s = await buildStack(join(dir, 'layers'), STACK, { form })
  const upper = join(dir, 'upper'); const work = join(dir, 'work'); const merged = join(dir, 'merged')
  await mkdir(upper); await mkdir(work)
  return { lowers: s.lowers, upper, work, merged, offline: `lowerdir=${formatLowerdir(s.lowers)},upperdir=${upper},workdir=${work}` }
}

/** layers --json without what differs between a live and an offline run (where the stack was found). */
function layersNumbers (json: string): unknown {
  const v = JSON.parse(json) as { stack: unknown, layers: unknown, total: unknown, mergedEntries: unknown, efficiency: unknown }
  return { layers: v.layers, total: v.total, mergedEntries: v.mergedEntries, efficiency: v.efficiency }
}

async function checkTools (t: Test, b: Built, m: MountHandle, form: LayerForm, kind: string): Promise<void> {
  change(m.merged)
  const live = await ots(t, ['diff', m.merged])
  t.equal(live, EXPECTED_DIFF, `${kind}: diff on the live mount`)
  t.equal(await ots(t, ['diff', '-o', b.offline]), live, `${kind}: diff offline = live`)
  t.same(JSON.parse(await ots(t, ['diff', '--json', m.merged])).changes.find((c: { path: string }) => c.path === '/etc/passwd'),
    { path: '/etc/passwd', kind: 'C', reason: 'modified', layer: 'upper', old: { layer: 'lower 1', path: '/etc/passwd' } })

  const layersLive = await ots(t, ['layers', '--json', m.merged])
  t.same(layersNumbers(await ots(t, ['layers', '--json', '-o', b.offline])), layersNumbers(layersLive), `${kind}: layers offline = live`)
  const rows = (JSON.parse(layersLive) as { layers: Array<Record<string, unknown> & { layer: { label: string } }> }).layers
  const base = rows.find((r) => r.layer.label === 'lower 1')!
  // base: 17 entries; visible etc tmp old old/a old/sub old/sub/b data usr usr/share (old through the
  // rename's redirect); shadowed etc/passwd etc/hosts (copied up) usr/share/doc (app's opaque doc);
  // hidden tmp/cache (app's whiteout) data/big usr/bin usr/bin/sh (upper whiteouts) usr/share/doc/legacy.
  t.same([base.entries, base.bytes, base.visibleEntries, base.visibleBytes, base.shadowedEntries, base.shadowedBytes, base.hiddenEntries, base.hiddenBytes],
    [17, 4064, 9, 2, 3, 21, 5, 4041], `${kind}: base layer numbers`)
  const app = rows.find((r) => r.layer.label === 'lower 0')!
  // app: 9 entries; opt shadowed by the upper's opaque opt, opt/tool hidden under it; the rest visible.
  t.same([app.entries, app.markers, app.visibleEntries, app.shadowedEntries, app.hiddenEntries], [9, form === 'oci' ? 2 : 1, 7, 1, 1], `${kind}: app layer`)

  const whichLive = await ots(t, ['which', '--json', `${m.merged}/etc/passwd`, `${m.merged}/tmp/cache`, `${m.merged}/usr/share/doc/legacy`, `${m.merged}/new/sub/b`], 1)
  const whichOff = await ots(t, ['which', '--json', '-o', b.offline, '/etc/passwd', '/tmp/cache', '/usr/share/doc/legacy', '/new/sub/b'], 1)
  t.equal(whichOff, whichLive, `${kind}: which offline = live`)
  const [passwd, cache, legacy, moved] = JSON.parse(whichLive) as Array<Record<string, any>>
  t.same([passwd!.layer.label, passwd!.size, passwd!.shadows], ['upper', 16, [{ layer: 'lower 1', path: '/etc/passwd', type: 'file', size: 11 }]])
  t.same([cache!.present, cache!.reason, cache!.by, cache!.hidden],
    [false, 'whiteout', { layer: 'lower 0', path: form === 'oci' ? '/tmp/.wh.cache' : '/tmp/cache', form }, [{ layer: 'lower 1', path: '/tmp/cache', type: 'file', size: 30 }]])
  t.same([legacy!.reason, legacy!.by], ['opaque', { layer: 'lower 0', path: '/usr/share/doc', form: null }])
  t.same([moved!.layer.label, moved!.layerPath], ['lower 1', '/old/sub/b'], 'through the redirect')
}

for (const form of ['kernel', 'oci'] as const) {
  t.test(`${form} form, changed through overlayts`, async t => {
    const b = await built(t, form)
    t.equal(await ots(t, ['diff', '-o', `lowerdir=${formatLowerdir(b.lowers)}`]), EXPECTED_LAYER_DIFF, 'the top lower against the base')
    const m = await mountOverlayts(t, { lower: b.lowers, upper: b.upper, work: b.work, merged: b.merged })
    await checkTools(t, b, m, form, 'overlayts')
    await m.unmount()
    t.equal(await ots(t, ['diff', '-o', b.offline]), EXPECTED_DIFF, 'offline after unmount')
  })
}

t.test('an OCI-form upper (upper_form=oci, as on an overlayfs): the same answers; commit -> unpack round trip', async t => {
  const b = await built(t, 'kernel')
  const m = await mountOverlayts(t, { lower: b.lowers, upper: b.upper, work: b.work, merged: b.merged, extra: ['-o', 'upper_form=oci'] })
  await checkTools(t, b, m, 'kernel', 'overlayts, oci upper')
  t.ok(fs.readdirSync(b.upper).some((n) => n.startsWith('.wh.')), 'the upper holds .wh. markers')

  // commit: the renamed dir (user.overlayts.redirect), with a lower file deleted (.wh.a) and one added below it.
  fs.rmSync(`${b.merged}/new/a`)
  fs.writeFileSync(`${b.merged}/new/added`, 'added')
  t.ok(fs.existsSync(`${b.upper}/new/.wh.a`), 'the delete below the renamed dir is a .wh. marker')
  const original = await snapshotTree(b.merged)
  const dir = join(b.upper, '..')
  const live = JSON.parse(await ots(t, ['commit', b.merged, '--output', join(dir, 'live.tar'), '--json']))
  await m.unmount()
  const offline = JSON.parse(await ots(t, ['commit', '-o', b.offline, '--output', join(dir, 'offline.tar'), '--json']))
  t.equal(offline.diffId, live.diffId, 'offline commit: the same layer as on the live mount')
  t.equal(live.redirectedDirs, 1, 'new is written whole')
  const top = join(dir, 'top')
  await ots(t, ['unpack', join(dir, 'live.tar'), top])
  const v = await mountOverlayts(t, { lower: [top, ...b.lowers], merged: join(dir, 'm-top') })
  assertSameTree(t, await snapshotTree(v.merged), original, 'the committed layer over the lowers, without the upper: the same tree', { actual: 'committed', expected: 'original' })
})

t.test('kernel form, changed through the kernel\'s overlayfs', async t => {
  const b = await built(t, 'kernel')
  const m = await mountKernel(t, { lower: b.lowers, upper: b.upper, work: b.work, merged: b.merged, redirectDir: true })
  await checkTools(t, b, m, 'kernel', 'kernel overlayfs')
})
