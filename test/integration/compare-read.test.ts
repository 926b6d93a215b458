// Read-path differential test: the kernel's overlayfs (oracle) on richStack()
// in kernel form vs overlayts on (a) another copy of the kernel form and
// (b) the OCI form. All three merged views must be identical.
import t from 'tap'
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { buildStack, pseudoRandomBytes, RICH, richStack } from '../helpers/layers.js'
import { mountKernel, mountOverlayts, mountsUnder } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree, type SnapEntry } from '../helpers/snapshot.js'
import { tmpDir, TMP_PREFIX } from '../helpers/tmp.js'
import { prng } from '../helpers/prng.js'


t.test('overlayts read path matches kernel overlayfs on richStack', async t => {
  const tmp = await tmpDir(t, 'compare-read')
  const spec = richStack()
  const [kernelForm, ociForm, kernelForm2] = await Promise.all([
    buildStack(join(tmp, 'kernel-form'), spec, { form: 'kernel' }),
    buildStack(join(tmp, 'oci-form'), spec, { form: 'oci' }),
    buildStack(join(tmp, 'kernel-form-2'), spec, { form: 'kernel' })
  ])

  const oracle = await mountKernel(t, { lower: kernelForm.lowers, merged: join(tmp, 'm-kernel') })
  const views: Array<{ name: string, merged: string }> = []
  // Each overlayts mount is its own subtest so that a daemon failure is one clear
  // failure (its teardown still unmounts), and the other variant still runs.
  // The default transport on both forms, and the fuse-native transport (its
  // portable fallback) on the kernel form: the core is shared, the transports are not.
  const variants = [
    { name: 'overlayts on kernel form', stack: kernelForm2, dir: 'm-kernel2', extra: [] },
    { name: 'overlayts on OCI form', stack: ociForm, dir: 'm-oci', extra: [] },
    { name: 'overlayts (transport=fuse-native) on kernel form', stack: kernelForm2, dir: 'm-kernel2-fn', extra: ['-o', 'transport=fuse-native'] }
  ]
  for (const { name, stack, dir, extra } of variants) {
    try {
      const m = await mountOverlayts(t, { lower: stack.lowers, merged: join(tmp, dir), extra })
      views.push({ name, merged: m.merged })
    } catch (e) {
      t.fail(`${name}: mount failed`, { error: e instanceof Error ? e.message : String(e) })
    }
  }
  if (views.length === 0) return

  const expected: SnapEntry[] = await snapshotTree(oracle.merged, { xattrs: true, mtime: true })
  t.ok(expected.length > RICH.manyCount, `oracle snapshot has ${expected.length} entries`)
  const bigExpected = pseudoRandomBytes(RICH.bigSize, RICH.bigSeed)
  const manyExpected = (await readdir(join(oracle.merged, RICH.manyDir))).sort()

  for (const v of views) {
    await t.test(v.name, async t => {
      t.test('tree snapshot equals the kernel view', async t => {
        const actual = await snapshotTree(v.merged, { xattrs: true, mtime: true })
        assertSameTree(t, actual, expected, 'names, types, modes, owners, sizes, contents, targets, rdev, nlink, mtime, xattrs',
          { actual: 'overlayts', expected: 'kernel' })
      })

      t.test('readdir of the 2000-entry dir', async t => {
        const names = await readdir(join(v.merged, RICH.manyDir))
        t.equal(names.length, RICH.manyCount, 'entry count')
        t.equal(new Set(names).size, names.length, 'no duplicates')
        t.same(names.sort(), manyExpected, 'same names as the kernel')
      })

      t.test('big file read in chunks at random offsets', async t => {
        const rnd = prng(0xc0ffee)
        const fh = await open(join(v.merged, RICH.bigFile), 'r')
        const kh = await open(join(oracle.merged, RICH.bigFile), 'r')
        try {
          let bad = 0
          for (let i = 0; i < 200; i++) {
            const off = Math.floor(rnd() * (RICH.bigSize + 8192))
            const len = 1 + Math.floor(rnd() * 200_000)
            const a = Buffer.alloc(len)
            const b = Buffer.alloc(len)
            const ra = await fh.read(a, 0, len, off)
            const rb = await kh.read(b, 0, len, off)
            const want = bigExpected.subarray(Math.min(off, RICH.bigSize), Math.min(off + len, RICH.bigSize))
            if (ra.bytesRead !== want.length || !a.subarray(0, ra.bytesRead).equals(want) || rb.bytesRead !== ra.bytesRead) {
              if (bad++ < 5) t.fail(`read at ${off} len ${len}: got ${ra.bytesRead} bytes, kernel ${rb.bytesRead}, expected ${want.length}`)
            }
          }
          t.equal(bad, 0, '200 random reads match')
        } finally {
          await fh.close()
          await kh.close()
        }
      })
    })
  }
})

t.teardown(async () => {
  const left = (await mountsUnder(TMP_PREFIX)).filter(m => m.mountPoint.includes(`/${process.pid}-`))
  if (left.length > 0) process.stderr.write(`# LEFTOVER MOUNTS: ${left.map(m => m.mountPoint).join(', ')}\n`)
})
