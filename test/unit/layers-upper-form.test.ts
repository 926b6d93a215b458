// src/layers/upper-form-of.ts: an upper's marker form read from what it holds.
import t from 'tap'
import * as fs from 'node:fs'
import { detectUpperForm } from '../../src/layers/upper-form-of.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'

t.test('the telling marker decides; nothing telling is undefined', async t => {
  const empty = t.testdir({ a: { b: 'x' } })
  t.equal(detectUpperForm(empty), undefined)
  const oci = t.testdir({ a: { '.wh.b': '' } })
  t.equal(detectUpperForm(oci), 'oci')
  const kernel = t.testdir({ a: {} })
  sys.mknod(`${kernel}/a/b`, fs.constants.S_IFCHR, 0)
  t.equal(detectUpperForm(kernel), 'kernel')
  const user = t.testdir({ d: {} })
  lsetxattr(`${user}/d`, 'user.overlay.opaque', Buffer.from('y'))
  t.equal(detectUpperForm(user), 'userxattr')
  const ociX = t.testdir({ d: {} })
  lsetxattr(`${ociX}/d`, 'user.overlayts.redirect', Buffer.from('/x'))
  t.equal(detectUpperForm(ociX), 'oci')
  const kernelWithOciNames = t.testdir({ '.wh.plain': '' })
  sys.mknod(`${kernelWithOciNames}/gone`, fs.constants.S_IFCHR, 0)
  t.equal(detectUpperForm(kernelWithOciNames), 'kernel', 'char 0/0 whiteouts: .wh. names are plain files')
})
