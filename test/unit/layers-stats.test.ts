// src/layers/layer-stats.ts: per-layer counts against a stack built here.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { openStackSource } from '../../src/layers/stack-source.js'
import { stackStats } from '../../src/layers/layer-stats.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'

const w = (p: string, n: number): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, Buffer.alloc(n)) }

t.test('entries, bytes, visible, shadowed, hidden per layer; markers apart; efficiency', async t => {
  const dir = t.testdir({})
  const u = path.join(dir, 'u'); const l0 = path.join(dir, 'l0'); const l1 = path.join(dir, 'l1')
  // l1 (kernel form): d/{a 100, b 200}, f 1000, o/x 10, link -> hardlink of f
  w(`${l1}/d/a`, 100); w(`${l1}/d/b`, 200); w(`${l1}/f`, 1000); w(`${l1}/o/x`, 10)
  fs.linkSync(`${l1}/f`, `${l1}/f2`)
  // l0 (OCI form): d/a 50 (shadows l1's), .wh.f (hides f), o opaque with o/y 5
  w(`${l0}/d/a`, 50); w(`${l0}/.wh.f`, 0); w(`${l0}/o/.wh..wh..opq`, 0); w(`${l0}/o/y`, 5)
  // upper: d/b 7 (shadows l1's), whiteout of f2, new 3
  w(`${u}/d/b`, 7); w(`${u}/new`, 3)
  sys.mknod(`${u}/f2`, fs.constants.S_IFCHR, 0)
  lsetxattr(`${u}/d`, 'user.note', Buffer.from('x'))
  const src = openStackSource({ options: [`lowerdir=${l0}:${l1},upperdir=${u}`] }, { index: 'off' })
  t.teardown(() => src.close())
  const s = stackStats(src)
  const row = (label: string): object => {
    const r = s.layers.find((l) => l.layer.label === label)!
    return { entries: r.entries, bytes: r.bytes, markers: r.markers, visible: [r.visibleEntries, r.visibleBytes], shadowed: [r.shadowedEntries, r.shadowedBytes], hidden: [r.hiddenEntries, r.hiddenBytes] }
  }
  t.same(row('upper'), { entries: 3, bytes: 10, markers: 1, visible: [3, 10], shadowed: [0, 0], hidden: [0, 0] })
  t.same(row('lower 0'), { entries: 4, bytes: 55, markers: 2, visible: [4, 55], shadowed: [0, 0], hidden: [0, 0] })
  // l1: d visible (merged into /d); shadowed: d/a (by l0), d/b (by upper), o (l0's o is opaque:
  // the merged /o is l0's alone); hidden: f (OCI whiteout in l0), f2 (upper whiteout; a second
  // name of f, its bytes counted once, with f), o/x (under l0's opaque o)
  t.same(row('lower 1'), { entries: 7, bytes: 1310, markers: 0, visible: [1, 0], shadowed: [3, 300], hidden: [3, 1010] })
  t.equal(s.mergedEntries, 6, 'd d/a d/b new o o/y')
  t.equal(s.total.bytes, 1375)
  t.equal(s.total.visibleBytes, 65)
  t.equal(s.efficiency, 65 / 1375)
})
