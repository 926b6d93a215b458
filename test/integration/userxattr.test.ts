// -o userxattr as root: the lowers' overlay xattrs are read in user.overlay.*
// only, as the kernel reads them with that option (a trusted.overlay.opaque
// dir merges, a user.overlay.opaque one does not), and the other way round
// without it. Side by side with the kernel's overlayfs on the same layers.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountKernel, mountOverlayts } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'
import { lsetxattr } from '../../src/overlay/sys/xattr.js'

for (const userxattr of [true, false]) {
  t.test(`lowers' opaque markers ${userxattr ? 'with' : 'without'} userxattr, as the kernel reads them`, async t => {
    const dir = await tmpDir(t, 'userxattr')
    const l1 = join(dir, 'l1')
    const l2 = join(dir, 'l2')
    for (const d of ['l1/t', 'l1/u', 'l2/t', 'l2/u']) mkdirSync(join(dir, d), { recursive: true })
    writeFileSync(join(l2, 't', 'below'), 'b\n')
    writeFileSync(join(l2, 'u', 'below'), 'b\n')
    lsetxattr(join(l1, 't'), 'trusted.overlay.opaque', Buffer.from('y'))
    lsetxattr(join(l1, 'u'), 'user.overlay.opaque', Buffer.from('y'))
    const side = (name: string): { upper: string, work: string, merged: string } => {
      const s = { upper: join(dir, name, 'u'), work: join(dir, name, 'w'), merged: join(dir, name, 'm') }
      for (const d of Object.values(s)) mkdirSync(d, { recursive: true })
      return s
    }
    const k = side('k')
    const o = side('o')
    await mountKernel(t, { lower: [l1, l2], ...k, extra: userxattr ? ['userxattr'] : [] })
    await mountOverlayts(t, { lower: [l1, l2], ...o, extra: ['-o', userxattr ? 'userxattr' : 'upper_form=kernel'] })
    const want = await snapshotTree(k.merged, { xattrs: false })
    t.same(want.filter(e => e.path.endsWith('below')).map(e => e.path), [userxattr ? 't/below' : 'u/below'], 'the kernel merges the dir whose marker is in the other namespace')
    assertSameTree(t, await snapshotTree(o.merged, { xattrs: false }), want, 'overlayts shows the same', { actual: 'overlayts', expected: 'kernel' })
  })
}
