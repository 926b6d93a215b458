import t from 'tap'
import { OptionError, parseMountOptions, splitEscaped } from '../../src/mount-config/mount-options.js'

t.test('lowerdir list: leftmost is the top, \\: escapes a colon, relative paths resolve at mount time', async t => {
  const o = parseMountOptions(['lowerdir=/a:/b\\:c:rel,upperdir=u,workdir=/w'], '/cwd')
  t.same(o.lowers, ['/a', '/b:c', '/cwd/rel'])
  t.equal(o.upper, '/cwd/u')
  t.equal(o.workdir, '/w')
  t.equal(o.readOnly, false)
})

t.test('\\, is a literal comma inside a path', async t => {
  t.same(parseMountOptions(['lowerdir=/a\\,b']).lowers, ['/a,b'])
  t.same(splitEscaped('a\\,b,c', ','), ['a\\,b', 'c'])
})

t.test('several -o strings and the generic flags mount(8) adds', async t => {
  const o = parseMountOptions(['rw,nosuid,nodev,relatime', 'lowerdir=/l,x-systemd.automount,noauto,defaults'])
  t.same(o.lowers, ['/l'])
  t.equal(parseMountOptions(['ro,lowerdir=/l']).readOnly, true)
})

t.test('kernel overlayfs options with the values overlayts implements', async t => {
  t.doesNotThrow(() => parseMountOptions(['lowerdir=/l,redirect_dir=on,xino=auto,metacopy=off']))
  t.throws(() => parseMountOptions(['lowerdir=/l,metacopy=on']), OptionError)
})

t.test('whiteouts option: kernel, oci or auto (the default)', async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).whiteouts, 'auto')
  t.equal(parseMountOptions(['lowerdir=/l,whiteouts=kernel']).whiteouts, 'kernel')
  t.equal(parseMountOptions(['lowerdir=/l,whiteouts=oci']).whiteouts, 'oci')
  t.equal(parseMountOptions(['lowerdir=/l,whiteouts=auto']).whiteouts, 'auto')
  t.throws(() => parseMountOptions(['lowerdir=/l,whiteouts=both']), /whiteouts is kernel, oci, auto, not both/)
  t.throws(() => parseMountOptions(['lowerdir=/l,whiteouts']), /not \(none\)/)
})

t.test('index option', async t => {
  t.equal(parseMountOptions(['lowerdir=/l,index=off']).index, 'off')
  t.equal(parseMountOptions(['lowerdir=/l,index=/x/db']).index, '/x/db')
  t.equal(parseMountOptions(['lowerdir=/l']).index, undefined)
})

t.test('bad options are errors, never ignored', async t => {
  const bad: Array<[string, RegExp]> = [
    ['upperdir=/u,workdir=/w', /missing lowerdir/],
    ['lowerdir=/l,bogus', /unknown option: bogus/],
    ['lowerdir=/l,lowerdir=/m', /given twice/],
    ['lowerdir=', /needs a value/],
    ['lowerdir=/l,upperdir=', /needs a value/],
    ['lowerdir=/l:', /empty path/],
    ['lowerdir=/l,nosuid=1', /unknown option/]
  ]
  for (const [opt, msg] of bad) t.throws(() => parseMountOptions([opt]), msg, opt)
  t.throws(() => parseMountOptions(['lowerdir=/a\nb']), /newline/)
})

t.test('attr_timeout (the transport default unless asked), transport, passthrough', async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).attrTimeout, undefined)
  t.equal(parseMountOptions(['lowerdir=/l']).transport, 'kernel')
  t.equal(parseMountOptions(['lowerdir=/l,transport=fuse-native,passthrough=off']).transport, 'fuse-native')
  t.equal(parseMountOptions(['lowerdir=/l,passthrough=off']).passthrough, false)
  t.throws(() => parseMountOptions(['lowerdir=/l,transport=libfuse3']))
  t.equal(parseMountOptions(['lowerdir=/l,attr_timeout=0']).attrTimeout, 0)
  t.equal(parseMountOptions(['lowerdir=/l,attr_timeout=1.5']).attrTimeout, 1.5)
  t.throws(() => parseMountOptions(['lowerdir=/l,attr_timeout=soon']), /attr_timeout needs a number/)
})

t.test('the upper marker form: userxattr (the kernel option), upper_form=, auto by default', async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).upperForm, 'auto')
  t.equal(parseMountOptions(['lowerdir=/l,userxattr']).upperForm, 'userxattr')
  for (const f of ['auto', 'kernel', 'userxattr', 'oci']) t.equal(parseMountOptions([`lowerdir=/l,upper_form=${f}`]).upperForm, f)
  t.equal(parseMountOptions(['lowerdir=/l,userxattr,upper_form=userxattr']).upperForm, 'userxattr')
  t.throws(() => parseMountOptions(['lowerdir=/l,upper_form=trusted']), /upper_form is auto, kernel, userxattr, oci/)
  t.throws(() => parseMountOptions(['lowerdir=/l,userxattr,upper_form=oci']), /conflicting options: userxattr,upper_form=oci/)
  t.throws(() => parseMountOptions(['lowerdir=/l,userxattr=1']), /takes no value/)
  // As the kernel: redirect_dir=on and userxattr do not go together.
  t.throws(() => parseMountOptions(['lowerdir=/l,userxattr,redirect_dir=on']), /conflicting options: userxattr,redirect_dir=on/)
  t.equal(parseMountOptions(['lowerdir=/l,userxattr,redirect_dir=nofollow']).upperForm, 'userxattr')
})

t.test('uring: off unless asked (auto or on)', async t => {
  t.equal(parseMountOptions(['lowerdir=/l']).uring, 'off')
  t.equal(parseMountOptions(['lowerdir=/l,uring=auto']).uring, 'auto')
  t.equal(parseMountOptions(['lowerdir=/l,uring=on']).uring, 'on')
  t.throws(() => parseMountOptions(['lowerdir=/l,uring=yes']), /uring is auto, on, off, not yes/)
  t.throws(() => parseMountOptions(['lowerdir=/l,uring']), /uring is auto, on, off, not \(none\)/)
})
