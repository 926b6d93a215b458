// Copy-up under injected faults (tap's t.mockImport swaps the one seam over
// the host filesystem, src/overlay/sys/fs.ts): whatever step fails, the
// caller gets the errno, upper never shows a partial copy, and the work dir
// keeps no scratch.
import t from 'tap'
import type { Test } from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type * as OverlayModule from '../../src/overlay/overlay.js'
import type * as StackModule from '../../src/overlay/stack.js'
import { sys as realSys } from '../../src/overlay/sys/fs.js'

type Sys = typeof realSys

function enospc (syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: ${syscall}`), { code: 'ENOSPC', errno: -28, syscall })
}

async function overlayWith (t: Test, faults: Partial<Sys>) {
  const dir = t.testdir({ lower: { f: 'lower data\n', d: { g: 'g\n' } }, upper: {}, work: {} })
  const { Overlay } = await t.mockImport<typeof OverlayModule>('../../src/overlay/overlay.js', {
    '../../src/overlay/sys/fs.js': { sys: { ...realSys, ...faults } }
  })
  const { openStack, prepareWork } = await t.mockImport<typeof StackModule>('../../src/overlay/stack.js')
  const stack = openStack({ lowers: [path.join(dir, 'lower')], upper: path.join(dir, 'upper'), workdir: path.join(dir, 'work') })
  await prepareWork(stack)
  return { overlay: new Overlay(stack), dir }
}

const WRITE = fs.constants.O_WRONLY

t.test('data copy fails half way: ENOSPC, nothing in upper, no scratch', async t => {
  const { overlay, dir } = await overlayWith(t, {
    copyFile: async (_from: string, to: string) => {
      fs.writeFileSync(to, 'lower') // a partial copy, then the disk is full
      throw enospc('copy_file_range')
    }
  })
  await t.rejects(overlay.open('f', WRITE), { code: 'ENOSPC', path: '/f' })
  t.same(fs.readdirSync(path.join(dir, 'upper')), [], 'upper untouched')
  t.same(fs.readdirSync(path.join(dir, 'work', 'work')), [], 'scratch removed')
  t.equal(overlay.getattr('f').size, 11n, 'the lower file still shows, whole')
})

t.test('rename into upper fails: ENOSPC, nothing in upper, no scratch', async t => {
  const { overlay, dir } = await overlayWith(t, {
    renameat2: (from: string, to: string, flags: number) => {
      if (to.endsWith('/f')) throw enospc('renameat2')
      realSys.renameat2(from, to, flags)
    }
  })
  await t.rejects(overlay.chmod('f', 0o600), { code: 'ENOSPC' })
  t.same(fs.readdirSync(path.join(dir, 'upper')), [], 'upper untouched')
  await new Promise((resolve) => setTimeout(resolve, 50)) // scratch is removed asynchronously
  t.same(fs.readdirSync(path.join(dir, 'work', 'work')), [], 'scratch removed')
})

t.test('parent copy-up fails: the child is not copied either', async t => {
  const { overlay, dir } = await overlayWith(t, {
    mkdir: (p: string, mode: number) => {
      if (p.includes('/work/work/')) throw enospc('mkdir')
      realSys.mkdir(p, mode)
    }
  })
  await t.rejects(overlay.open('d/g', WRITE), { code: 'ENOSPC' })
  t.same(fs.readdirSync(path.join(dir, 'upper')), [], 'upper untouched')
})

t.test('no faults: the copy is whole, in upper, with the lower mode', async t => {
  const { overlay, dir } = await overlayWith(t, {})
  const fh = await overlay.open('f', WRITE)
  await overlay.release(fh)
  t.equal(fs.readFileSync(path.join(dir, 'upper', 'f'), 'utf8'), 'lower data\n')
  t.equal(fs.statSync(path.join(dir, 'upper', 'f')).mode & 0o777, fs.statSync(path.join(dir, 'lower', 'f')).mode & 0o777)
})
