// The lower view on real directories (no mount): the lookup rules of
// OVERLAY-RULES.md, in kernel and OCI marker forms, and redirects.
import t from 'tap'
import type { Test } from 'tap'
type TestBase = Test
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Layer } from '../../src/overlay/layers.js'
import { ScanLowerView } from '../../src/overlay/lower-view.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { tmpDir } from '../helpers/tmp.js'

function layers (dirs: string[]): Layer[] {
  return dirs.map((root, index) => {
    const st = fs.statSync(root, { bigint: true })
    return { root, role: 'lower', index, dev: st.dev, ino: st.ino }
  })
}

// In tmpDir: char 0/0 whiteouts cannot be made on an overlayfs (a container's root).
async function stack (t: TestBase, build: (l: string[]) => void, n = 3): Promise<ScanLowerView> {
  const dir = await tmpDir(t, 'lower-view')
  const ls = Array.from({ length: n }, (_, i) => path.join(dir, `l${i}`))
  for (const l of ls) fs.mkdirSync(l)
  build(ls)
  return new ScanLowerView(layers(ls))
}

const w = (p: string, s = 'x'): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, s) }

t.test('first layer with the name wins; directories merge', async t => {
  const v = await stack(t, ([a, b, c]) => {
    w(`${a}/d/top`); w(`${b}/d/mid`); w(`${c}/d/bottom`); w(`${b}/f`, 'b'); w(`${c}/f`, 'c')
  })
  t.equal(v.lookup('f')?.layer, 1)
  t.same(v.lookup('d')?.dirs?.map((d) => d.layer), [0, 1, 2])
  t.same([...v.list('d').keys()].sort(), ['bottom', 'mid', 'top'])
  t.equal(v.lookup('nope'), null)
  t.equal(v.lookup('f/below'), null, 'nothing below a file')
})

t.test('whiteouts: char 0/0 and OCI .wh.NAME hide lower names and are never listed', async t => {
  const v = await stack(t, ([a, b, c]) => {
    sys.mknod(`${a}/gone`, fs.constants.S_IFCHR, 0)
    w(`${a}/.wh.oci-gone`, '')
    w(`${b}/gone`); w(`${c}/oci-gone`); w(`${c}/kept`)
  })
  t.equal(v.lookup('gone'), null)
  t.equal(v.lookup('oci-gone'), null)
  t.same([...v.list('').keys()].sort(), ['kept'])
})

t.test('opaque dirs (xattr and OCI marker) stop the merge', async t => {
  const v = await stack(t, ([a, b, c]) => {
    w(`${a}/x/top`); execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', `${a}/x`])
    w(`${b}/x/hidden`)
    w(`${b}/y/.wh..wh..opq`, ''); w(`${b}/y/mid`); w(`${c}/y/hidden`)
  })
  t.same([...v.list('x').keys()], ['top'])
  t.same([...v.list('y').keys()], ['mid'])
})

t.test('a non-directory above a directory ends the merge; a dir above a file hides it', async t => {
  const v = await stack(t, ([a, b, c]) => {
    w(`${a}/p`); w(`${b}/p/child`)
    w(`${a}/q/top`); w(`${b}/q`); w(`${c}/q/bottom`)
  })
  t.equal(v.lookup('p')?.dirs, undefined)
  t.equal(v.lookup('p/child'), null)
  t.same([...v.list('q').keys()], ['top'], 'the file in the middle stops the merge')
})

t.test('redirect: layers below follow the stored path', async t => {
  const v = await stack(t, ([a, b]) => {
    w(`${a}/new/added`); execFileSync('setfattr', ['-n', 'trusted.overlay.redirect', '-v', '/old', `${a}/new`])
    w(`${b}/old/moved`); w(`${b}/new/not-merged`)
  })
  t.same([...v.list('new').keys()].sort(), ['added', 'moved'])
})

t.test('symlinked directories in a layer are never followed', async t => {
  const outside = t.testdir({ secret: 'x' })
  const v = await stack(t, ([a]) => { fs.symlinkSync(outside, `${a}/link`) }, 1)
  t.equal(v.lookup('link')?.dirs, undefined, 'a symlink is a leaf')
  t.equal(v.lookup('link/secret'), null)
})
