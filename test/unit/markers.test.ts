// The overlay's own xattr names in each form, and how names asked for
// through the mount are escaped (as fs/overlayfs/xattrs.c does, checked
// against the kernel in kernel-parity and, for userxattr, in userns.test.ts).
import t from 'tap'
import { OCI_UPPER_XATTRS, TRUSTED_XATTRS, USER_XATTRS } from '../../src/overlay/markers.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { UpperMarkers } from '../../src/overlay/upper-markers.js'

t.test('trusted.overlay (root): the escaped prefix is tested without its dot', async t => {
  const x = TRUSTED_XATTRS
  t.same([x.opaque, x.redirect, x.origin], ['trusted.overlay.opaque', 'trusted.overlay.redirect', 'trusted.overlay.ts.origin'])
  t.ok(x.isPrivate('trusted.overlay.opaque'))
  t.notOk(x.isPrivate('trusted.overlay.overlay.x'))
  t.notOk(x.isPrivate('trusted.overlayfoo'), 'the prefix with its dot')
  t.notOk(x.isPrivate('user.overlay.opaque'), 'user.overlay.* is an ordinary xattr as root')
  t.equal(x.onDisk('trusted.overlay.x'), 'trusted.overlay.overlay.x')
  t.equal(x.onDisk('user.overlay.x'), 'user.overlay.x')
  t.equal(x.onDisk('trusted.overlay.'), 'EINVAL')
  t.equal(x.onDisk('trusted.overlay.' + 'x'.repeat(240)), 'EOPNOTSUPP')
  t.equal(x.throughMount('trusted.overlay.overlay.x'), 'trusted.overlay.x')
  t.equal(x.throughMount('trusted.overlay.opaque'), undefined)
})

t.test('user.overlay (userxattr): the escaped prefix is tested with its dot', async t => {
  const x = USER_XATTRS
  t.same([x.opaque, x.redirect, x.origin], ['user.overlay.opaque', 'user.overlay.redirect', 'user.overlay.ts.origin'])
  t.ok(x.isPrivate('user.overlay.opaque'))
  t.ok(x.isPrivate('user.overlay.overlay'), 'without the dot it is not escaped')
  t.notOk(x.isPrivate('user.overlay.overlay.y'))
  t.notOk(x.isPrivate('trusted.overlay.opaque'), 'trusted.overlay.* is an ordinary xattr with userxattr')
  t.equal(x.onDisk('user.overlay.x'), 'user.overlay.overlay.x')
  t.equal(x.onDisk('user.overlay.overlay.y'), 'user.overlay.overlay.overlay.y')
  t.equal(x.onDisk('trusted.overlay.z'), 'trusted.overlay.z')
  t.equal(x.onDisk('user.overlay.'), 'EINVAL')
  t.equal(x.throughMount('user.overlay.overlay.x'), 'user.overlay.x')
  t.equal(x.throughMount('user.overlay.ts.origin'), undefined)
})

t.test('user.overlayts (oci upper form): overlayts\' own, escaped the same way', async t => {
  const x = OCI_UPPER_XATTRS
  t.same([x.redirect, x.origin], ['user.overlayts.redirect', 'user.overlayts.origin'])
  t.equal(x.onDisk('user.overlayts.redirect'), 'user.overlayts.overlayts.redirect')
  t.equal(x.throughMount('user.overlayts.overlayts.redirect'), 'user.overlayts.redirect')
  t.equal(x.throughMount('user.overlayts.redirect'), undefined)
  t.equal(x.onDisk('user.overlay.opaque'), 'user.overlay.opaque')
})

t.test('the upper forms\' xattr mapping: the oci form hides and escapes the lowers\' trusted.overlay.* too', async t => {
  const oci = new UpperMarkers(sys, undefined, 'oci')
  t.equal(oci.xattrThroughMount('trusted.overlay.opaque'), undefined, "a kernel-form lower's marker is not shown")
  t.equal(oci.xattrOnDisk('trusted.overlay.x'), 'trusted.overlay.overlay.x')
  t.equal(oci.xattrOnDisk('user.overlayts.redirect'), 'user.overlayts.overlayts.redirect')
  t.ok(oci.isPrivateXattr('user.overlayts.origin'))
  t.equal(oci.xattrThroughMount('user.overlay.opaque'), 'user.overlay.opaque')
  const user = new UpperMarkers(sys, undefined, 'userxattr')
  t.equal(user.xattrThroughMount('trusted.overlay.opaque'), 'trusted.overlay.opaque', 'with userxattr, as the kernel: an ordinary xattr')
  t.equal(user.xattrThroughMount('user.overlay.opaque'), undefined)
  t.notOk(user.redirects, 'no redirects with userxattr')
  t.ok(new UpperMarkers(sys, undefined, 'kernel').redirects)
  t.notOk(oci.canMake('.wh.x'), '.wh.* names are markers in the oci form')
  t.ok(user.canMake('.wh.x'), 'and plain names in the kernel forms')
})
