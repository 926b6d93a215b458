// src/layers/diff.ts: each docker rule on hand-built layers (no mount).
import t from 'tap'
import type { Test } from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { openStackSource } from '../../src/layers/stack-source.js'
import { diffStack, formatChanges } from '../../src/layers/diff.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'

const T0 = 1_600_000_000
const w = (p: string, s = 'x'): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, s) }
const md = (p: string): void => { fs.mkdirSync(p, { recursive: true }) }
const wh = (p: string): void => { md(path.dirname(p)); sys.mknod(p, fs.constants.S_IFCHR, 0) }
/** Every dir's mtime to T0 (as a copy-up keeps a parent's times). */
function settle (root: string): void {
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name))
    fs.utimesSync(d, T0, T0)
  }
  walk(root)
}

function diff (t: Test, build: (l: { u: string, l0: string, l1: string }) => void, opts = ''): string {
  const dir = t.testdir({})
  const l = { u: path.join(dir, 'u'), l0: path.join(dir, 'l0'), l1: path.join(dir, 'l1') }
  for (const d of Object.values(l)) md(d)
  build(l)
  for (const d of Object.values(l)) settle(d)
  const src = openStackSource({ options: [`lowerdir=${l.l0}:${l.l1},upperdir=${l.u}${opts}`] }, { index: 'off' })
  try {
    return formatChanges(diffStack(src)).toString('latin1')
  } finally { src.close() }
}

t.test('a whiteout is D; its parent C; the root never', async t => {
  t.equal(diff(t, ({ u, l1 }) => { w(`${l1}/etc/a`); w(`${l1}/top`); wh(`${u}/etc/a`); wh(`${u}/top`) }), 'C /etc\nD /etc/a\nD /top\n')
})

t.test('a file over a lower file is C; its copied-up parent is not listed; a new file is A and its parent C', async t => {
  t.equal(diff(t, ({ u, l1 }) => { w(`${l1}/etc/passwd`); w(`${u}/etc/passwd`, 'changed') }), 'C /etc/passwd\n')
  t.equal(diff(t, ({ u, l1 }) => { w(`${l1}/etc/passwd`); w(`${u}/etc/new`) }), 'C /etc\nA /etc/new\n')
  t.equal(diff(t, ({ u }) => { w(`${u}/fresh/dir/f`) }), 'A /fresh\nA /fresh/dir\nA /fresh/dir/f\n', 'a new tree: each entry A, no extra C')
})

t.test('a copied-up dir whose mode or mtime differs is C', async t => {
  const out = diff(t, ({ u, l1 }) => { w(`${l1}/d/f`); md(`${u}/d`); fs.chmodSync(`${u}/d`, 0o700) })
  t.equal(out, 'C /d\n')
})

t.test('an opaque dir that replaced a lower dir is D, its contents A; an opaque dir with nothing below is A', async t => {
  t.equal(diff(t, ({ u, l1 }) => {
    w(`${l1}/d/old`); md(`${u}/d`); lsetxattr(`${u}/d`, 'trusted.overlay.opaque', Buffer.from('y')); w(`${u}/d/new`)
  }), 'D /d\nA /d/new\n')
  t.equal(diff(t, ({ u, l1 }) => {
    w(`${l1}/p/x`); md(`${u}/p/made`); lsetxattr(`${u}/p/made`, 'trusted.overlay.opaque', Buffer.from('y'))
  }), 'C /p\nA /p/made\n', 'the kernel marks every mkdir in a merged dir opaque: still A')
})

t.test('docker\'s rule over the merged view: a path a lower holds is C even where it was hidden', async t => {
  t.equal(diff(t, ({ u, l0, l1 }) => { wh(`${l0}/f`); w(`${l1}/f`); w(`${u}/f`) }), 'C /f\n')
})

t.test('a renamed dir (redirect): the new name A with every merged entry under it A, the old name D', async t => {
  const out = diff(t, ({ u, l1 }) => {
    w(`${l1}/old/a`); w(`${l1}/old/sub/b`); w(`${l1}/keep`)
    md(`${u}/new`); lsetxattr(`${u}/new`, 'trusted.overlay.redirect', Buffer.from('old')); w(`${u}/new/added`)
    wh(`${u}/old`)
  })
  t.equal(out, 'A /new\nA /new/a\nA /new/added\nA /new/sub\nA /new/sub/b\nD /old\n')
})

t.test('no upper: the top lower against the ones below, OCI whiteouts and opaque markers', async t => {
  const dir = t.testdir({})
  const l0 = path.join(dir, 'l0'); const l1 = path.join(dir, 'l1')
  w(`${l1}/a/x`); w(`${l1}/a/y`); w(`${l1}/b/z`); w(`${l1}/c`)
  w(`${l0}/a/.wh.x`, ''); w(`${l0}/b/.wh..wh..opq`, ''); w(`${l0}/b/n`); w(`${l0}/.wh.c`, ''); w(`${l0}/d`)
  settle(l0); settle(l1)
  const src = openStackSource({ options: [`lowerdir=${l0}:${l1}`] }, { index: 'off' })
  t.teardown(() => src.close())
  const changes = diffStack(src)
  t.equal(formatChanges(changes).toString(), 'C /a\nD /a/x\nD /b\nA /b/n\nD /c\nA /d\n')
  t.same(changes.find((c) => c.path === '/a/x')?.old?.layer.label, 'lower 1', 'json: the copy deleted')
})

t.test('sorted by path as bytes, names not UTF-8 kept', async t => {
  const out = diff(t, ({ u }) => {
    w(`${u}/a-b`); w(`${u}/a/b`)
    fs.writeFileSync(Buffer.concat([Buffer.from(`${u}/x`), Buffer.from([0xff])]), '')
  })
  // '-' (0x2d) sorts before '/' (0x2f): "/a-b" before "/a/b", as Go compares strings.
  t.equal(out, 'A /a\nA /a-b\nA /a/b\nA /x\xff\n')
})

t.test('an OCI-form upper (upper_form=oci): .wh.NAME is D, .wh..wh..opq marks its dir opaque', async t => {
  t.equal(diff(t, ({ u, l1 }) => {
    w(`${l1}/a/x`); w(`${l1}/o/old`); w(`${u}/a/.wh.x`, ''); w(`${u}/o/.wh..wh..opq`, ''); w(`${u}/o/new`)
  }, ',upper_form=oci'), 'C /a\nD /a/x\nD /o\nA /o/new\n')
  t.equal(diff(t, ({ u, l1 }) => { w(`${l1}/a/x`); w(`${u}/a/.wh.x`, '') }), 'C /a\nD /a/x\n', 'upper_form=auto offline: read from what the upper holds')
  t.equal(diff(t, ({ u, l1 }) => { w(`${l1}/a/x`); w(`${u}/a/.wh.x`, '') }, ',upper_form=kernel'), 'C /a\nA /a/.wh.x\n', 'in the kernel form the same file is a plain name')
})

t.test('a lower symlink is never followed: a path below it is not "held" there', async t => {
  const outside = t.testdir({ f: 'outside' })
  t.equal(diff(t, ({ u, l1 }) => {
    fs.symlinkSync(outside, `${l1}/d`)
    md(`${u}/d`); w(`${u}/d/f`)
  }), 'C /d\nA /d/f\n', 'docker\'s os.Stat would follow the link and call /d/f C')
})
