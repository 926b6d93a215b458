// src/layers/which.ts: serving layer, shadowed copies, merged dir parts,
// redirects, and why an absent path is absent, in both whiteout forms.
import t from 'tap'
import type { Test } from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { openStackSource } from '../../src/layers/stack-source.js'
import { WhichExplainer } from '../../src/layers/which.js'
import type { Which } from '../../src/layers/which.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'

const w = (p: string, n: number): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, Buffer.alloc(n)) }

function explainer (t: Test): (p: string) => Which {
  const dir = t.testdir({})
  const u = path.join(dir, 'u'); const l0 = path.join(dir, 'l0'); const l1 = path.join(dir, 'l1'); const l2 = path.join(dir, 'l2')
  w(`${l2}/etc/passwd`, 30); w(`${l2}/old/a`, 4); w(`${l2}/gone`, 9); w(`${l2}/cut/x`, 6); w(`${l2}/f/x`, 1); w(`${l2}/o/hid`, 8)
  w(`${l1}/etc/passwd`, 20); sys.mknod(`${l1}/gone`, fs.constants.S_IFCHR, 0); w(`${l1}/f`, 2)
  fs.mkdirSync(`${l1}/o`); lsetxattr(`${l1}/o`, 'trusted.overlay.opaque', Buffer.from('y')); w(`${l1}/o/mine`, 1)
  w(`${l0}/.wh.cut`, 0); w(`${l0}/etc/.wh.shadow`, 0); w(`${l2}/etc/shadow`, 5)
  w(`${u}/etc/passwd`, 10); fs.mkdirSync(`${u}/new`); lsetxattr(`${u}/new`, 'trusted.overlay.redirect', Buffer.from('/old')); sys.mknod(`${u}/old`, fs.constants.S_IFCHR, 0)
  const src = openStackSource({ options: [`lowerdir=${l0}:${l1}:${l2},upperdir=${u}`] }, { index: 'off' })
  t.teardown(() => src.close())
  const x = new WhichExplainer(src)
  return (p) => x.explain(p)
}

t.test('a file: the serving layer and every copy it shadows, with sizes', async t => {
  const which = explainer(t)
  const r = which('etc/passwd')
  t.ok(r.present)
  if (!r.present) return
  t.same([r.layer.label, r.size], ['upper', 10])
  t.same(r.shadows.map((c) => [c.layer.label, c.path, c.size]), [['lower 1', '/etc/passwd', 20], ['lower 2', '/etc/passwd', 30]])
})

t.test('a directory: its parts top first, a redirect followed; an opaque dir\'s cut-off copies', async t => {
  const which = explainer(t)
  const n = which('new')
  t.ok(n.present)
  if (!n.present) return
  t.same(n.parts?.map((p) => [p.layer.label, p.path, p.redirect ?? null]), [['upper', '/new', '/old'], ['lower 2', '/old', null]])
  const a = which('new/a')
  t.ok(a.present && a.layer.label === 'lower 2' && a.layerPath === '/old/a')
  const o = which('o')
  t.ok(o.present)
  if (!o.present) return
  t.same(o.parts?.map((p) => [p.layer.label, p.opaque]), [['lower 1', true]])
  t.same(o.shadows.map((c) => [c.layer.label, c.type]), [['lower 2', 'dir']])
})

t.test('absent: whiteouts of both forms, opaque dirs, a non-directory parent, nowhere', async t => {
  const which = explainer(t)
  const g = which('gone')
  t.same(g.present ? null : [g.reason, g.by?.layer.label, g.by?.form, g.hidden.map((c) => [c.layer.label, c.size])], ['whiteout', 'lower 1', 'kernel', [['lower 2', 9]]])
  const c = which('cut/x')
  t.same(c.present ? null : [c.missing, c.reason, c.by?.layer.label, c.by?.path, c.by?.form], ['/cut', 'whiteout', 'lower 0', '/.wh.cut', 'oci'])
  const s = which('etc/shadow')
  t.same(s.present ? null : [s.reason, s.by?.form, s.hidden.length], ['whiteout', 'oci', 1])
  const h = which('o/hid')
  t.same(h.present ? null : [h.reason, h.by?.layer.label, h.by?.path, h.hidden.map((x) => x.layer.label)], ['opaque', 'lower 1', '/o', ['lower 2']])
  const f = which('f/x')
  t.same(f.present ? null : [f.missing, f.reason, f.by?.layer.label], ['/f/x', 'not-a-directory', 'lower 1'])
  const old = which('old')
  t.same(old.present ? null : [old.reason, old.by?.layer.label], ['whiteout', 'upper'], 'the old name of a renamed dir')
  const none = which('nope/deeper')
  t.same(none.present ? null : [none.missing, none.reason], ['/nope', 'nowhere'])
})
