// Which form a lower layer's whiteouts take (src/overlay/layer-form.ts), on real directories
// (in tmpDir: char 0/0 whiteouts cannot be made on an overlayfs, such as a container's root).
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { detectWhiteoutForm, whiteoutFormOf } from '../../src/overlay/layer-form.js'
import { mknod } from '../../src/overlay/sys/native.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'
import { tmpDir } from '../helpers/tmp.js'

const w = (p: string): void => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, '') }

t.test('no markers at all: kernel form (reads the same either way)', async t => {
  const d = await tmpDir(t, 'layer-form')
  w(`${d}/a/b`); w(`${d}/c`)
  t.equal(detectWhiteoutForm(d), 'kernel')
})

t.test('.wh. files and nothing of the kernel form: OCI form', async t => {
  const d = await tmpDir(t, 'layer-form')
  w(`${d}/deep/er/.wh.gone`)
  t.equal(detectWhiteoutForm(d), 'oci')
  const o = await tmpDir(t, 'layer-form')
  w(`${o}/dir/.wh..wh..opq`)
  t.equal(detectWhiteoutForm(o), 'oci', 'an opaque marker alone')
  const c = await tmpDir(t, 'layer-form')
  w(`${c}/.wh.x`)
  mknod(`${c}/null`, fs.constants.S_IFCHR | 0o666, (1 << 8) | 3)
  t.equal(detectWhiteoutForm(c), 'oci', 'a char device that is not 0/0 is no whiteout')
})

t.test('a char 0/0 whiteout or an overlay xattr on a dir, anywhere: kernel form, .wh. files or not', async t => {
  const d = await tmpDir(t, 'layer-form')
  w(`${d}/.wh.foo`)
  fs.mkdirSync(`${d}/a/b/c`, { recursive: true })
  mknod(`${d}/a/b/c/gone`, fs.constants.S_IFCHR, 0)
  t.equal(detectWhiteoutForm(d), 'kernel', 'whiteout')
  const x = await tmpDir(t, 'layer-form')
  w(`${x}/.wh.foo`)
  fs.mkdirSync(`${x}/opq`)
  lsetxattr(`${x}/opq`, 'trusted.overlay.opaque', Buffer.from('y'))
  t.equal(detectWhiteoutForm(x), 'kernel', 'opaque xattr')
})

t.test('whiteouts=kernel|oci decide without looking; auto detects', async t => {
  const d = await tmpDir(t, 'layer-form')
  w(`${d}/.wh.foo`)
  t.equal(whiteoutFormOf(d, 'kernel'), 'kernel')
  t.equal(whiteoutFormOf(d, 'oci'), 'oci')
  t.equal(whiteoutFormOf(d, 'auto'), 'oci')
})
