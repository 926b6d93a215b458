// src/layers/stack-source.ts and live-mount.ts on real directories (no mount):
// the layers a tool sees, offline from options and from a mount record or a
// kernel overlay's mountinfo line, and the merged view through the core.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { sys } from '../../src/overlay/sys/fs.js'

const runDir = fs.mkdtempSync('/tmp/overlayts-unit-rundir-')
process.env.OVERLAYTS_RUNDIR = runDir
t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }))
const { openStackSource } = await import('../../src/layers/stack-source.js')
const { kernelOverlayLayers, liveStackOf, parseMountInfo } = await import('../../src/layers/live-mount.js')
const { mountRecordOf, writeMountRecord, readMountRecord, removeMountRecord } = await import('../../src/mount-config/mount-record.js')
const { parseMountOptions } = await import('../../src/mount-config/mount-options.js')
const { openStack } = await import('../../src/overlay/stack.js')

const w = (p: string, s = 'x'): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, s) }

/** lower 0 in OCI form, lower 1 (its name has a colon) in kernel form, an upper with a whiteout. */
function build (dir: string): { l0: string, l1: string, u: string, w: string } {
  const l0 = path.join(dir, 'l0'); const l1 = path.join(dir, 'l:1'); const u = path.join(dir, 'u'); const wd = path.join(dir, 'w')
  for (const d of [l0, l1, u, wd]) fs.mkdirSync(d)
  w(`${l1}/a/keep`, 'k'); w(`${l1}/a/gone`, 'g'); w(`${l1}/b`, 'bottom'); w(`${l1}/c`, 'c'); w(`${l1}/d/x`)
  sys.mknod(`${l1}/kwh`, fs.constants.S_IFCHR, 0)
  w(`${l0}/b`, 'top'); w(`${l0}/a/.wh.gone`, ''); w(`${l0}/a/new`)
  w(`${u}/up`, 'u'); sys.mknod(`${u}/c`, fs.constants.S_IFCHR, 0)
  return { l0, l1, u, w: wd }
}

t.test('offline: -o syntax (escaped colon, relative paths), layers upper first with their forms, the merged view', async t => {
  const dir = t.testdir({})
  const { l0, u } = build(dir)
  const src = openStackSource({ options: ['lowerdir=l0:l\\:1,upperdir=u'], cwd: dir }, { index: 'off' })
  t.teardown(() => src.close())
  t.same(src.layers.map((l) => [l.label, l.whiteouts, l.root]), [['upper', 'kernel', u], ['lower 0', 'oci', l0], ['lower 1', 'kernel', path.join(dir, 'l:1')]])
  t.equal(src.origin.kind, 'offline')
  t.same([...src.walk()].map((n) => n.rel), ['a', 'a/keep', 'a/new', 'b', 'd', 'd/x', 'up'], 'whiteouts of both forms hide, markers never show')
  const b = src.node('b')!
  t.equal(src.servingLayer(b).label, 'lower 0')
  t.same(src.dirParts(src.node('a')!).map((p) => p.layer.label), ['lower 0', 'lower 1'])
  t.same(src.dirParts(src.node('')!).map((p) => p.layer.label), ['upper', 'lower 0', 'lower 1'])
  t.equal(src.node('c'), null, 'upper whiteout')
  t.equal(src.node('b/under'), null, 'below a file: absent, not an error')
  t.equal(src.servingLayer(src.node('up')!).label, 'upper')
})

t.test('offline: whiteouts=kernel reads .wh. names as files; a workdir gets an index, reused next time', async t => {
  const dir = t.testdir({})
  build(dir)
  const k = openStackSource({ options: [`lowerdir=${dir}/l0:${dir}/l\\:1,whiteouts=kernel`] }, { index: 'off' })
  t.teardown(() => k.close())
  t.ok(k.node('a/.wh.gone'), 'a plain file in kernel form')
  t.ok(k.node('a/gone'))
  let progress = 0
  const a = openStackSource({ options: [`lowerdir=${dir}/l0:${dir}/l\\:1,upperdir=${dir}/u,workdir=${dir}/w`] }, { onIndexProgress: (n) => { progress = n } })
  t.equal(a.index?.state, 'built')
  t.ok(progress > 0)
  const names = [...a.walk()].map((n) => n.rel)
  a.close()
  const b = openStackSource({ options: [`lowerdir=${dir}/l0:${dir}/l\\:1,upperdir=${dir}/u,workdir=${dir}/w`] })
  t.teardown(() => b.close())
  t.equal(b.index?.state, 'reused')
  t.same([...b.walk()].map((n) => n.rel), names, 'same view from the index')
})

t.test('bad input: clear errors', async t => {
  const dir = t.testdir({})
  build(dir)
  t.throws(() => openStackSource({ options: [`upperdir=${dir}/u`] }), /missing lowerdir/)
  t.throws(() => openStackSource({ options: [`lowerdir=${dir}/nope`] }), /no such directory/)
  t.throws(() => openStackSource({ options: [`lowerdir=${dir}/l0,upperdir=${dir}/l0/a`] }), /inside lowerdir/)
  t.throws(() => openStackSource({ merged: dir }), /not a mountpoint/)
})

t.test('kernel overlay mountinfo: escapes, lowerdir+=', async t => {
  // As /proc/self/mountinfo shows `lowerdir=/x/l 1:/x/l\:2` (space octal, backslash octal, colon escaped).
  t.same(kernelOverlayLayers('rw,lowerdir=/x/l\\0401:/x/l\\134:2,upperdir=/x/u\\054v,workdir=/x/w,redirect_dir=on,uuid=on'),
    { lowers: ['/x/l 1', '/x/l:2'], upper: '/x/u,v', workdir: '/x/w', upperForm: 'kernel' })
  t.equal(kernelOverlayLayers('rw,lowerdir=/l,upperdir=/u,workdir=/w,userxattr').upperForm, 'userxattr')
  t.same(kernelOverlayLayers('ro,lowerdir+=/a,lowerdir+=/b:c').lowers, ['/a', '/b:c'])
  const lines = parseMountInfo('49 27 0:40 / /tmp/m\\040x rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n')
  t.same(lines, [{ mountPoint: '/tmp/m x', fstype: 'overlay', source: 'overlay', superOptions: 'rw,lowerdir=/l,upperdir=/u,workdir=/w' }])
})

t.test('live overlayts mount: the record gives the layers and the daemon\'s forms; a kernel mount its options', async t => {
  const dir = t.testdir({})
  const { l0, l1, u, w: wd } = build(dir)
  const merged = path.join(dir, 'm')
  fs.mkdirSync(merged)
  const opts = parseMountOptions([`lowerdir=${l0}:${l1.replace(':', '\\:')},upperdir=${u},workdir=${wd}`])
  const stack = openStack({ lowers: opts.lowers, upper: opts.upper, workdir: opts.workdir })
  writeMountRecord(mountRecordOf(merged, opts, stack, undefined))
  t.teardown(() => removeMountRecord(merged))
  t.equal(readMountRecord(merged)?.pid, process.pid)
  const fuseLine = { mountPoint: merged, fstype: 'fuse.overlayts', source: 'overlayts', superOptions: 'rw,user_id=0' }
  const live = liveStackOf(merged, [fuseLine])
  t.same([live.kind, live.lowers, live.upper, live.whiteoutForms], ['overlayts', [l0, l1], u, ['oci', 'kernel']])
  const kernel = liveStackOf(merged, [{ mountPoint: merged, fstype: 'overlay', source: 'overlay', superOptions: `rw,lowerdir=${l0}:${l1.replace(':', '\\:')},upperdir=${u},workdir=${wd}` }])
  t.same([kernel.kind, kernel.whiteoutForms], ['kernel-overlay', ['kernel', 'kernel']], 'the kernel reads only its own form')
  t.throws(() => liveStackOf(dir, [fuseLine]), /not a mountpoint/)
  removeMountRecord(merged)
  t.throws(() => liveStackOf(merged, [fuseLine]), /no overlayts mount record/)
})
