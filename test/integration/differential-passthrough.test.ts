// The differential runner models the one semantic edge of FUSE passthrough
// (README, "FUSE transports" > "Passthrough"): a read-only descriptor opened
// on a lower file before another open copied it up keeps reading the lower
// copy, where the kernel's overlayfs reads the copy. A hand-written sequence,
// run by runCase (test/helpers/ops.ts) on the default options:
// - with the model it passes, and the model fired exactly for the reads
//   through descriptors opened on lower files after their copy-up;
// - without it, exactly those reads differ from the kernel, and overlayts
//   answered them with the lower bytes: the model is no blanket skip.
// With OVERLAYTS_DIFF_OPTS=passthrough=off the edge does not exist: every read
// is compared with the kernel, with or without the model.
import t from 'tap'
import { DEEP, DEEP_PARTS, randomStack, runCase, type DiffCase, type Op } from '../helpers/ops.js'

// The first stack whose top layer holds a plain file and a setuid file at the
// top (a merged name shows the top layer's entry), and that holds the deep
// chain (only one layer has its names): the writer of the setuid file is
// served by the daemon, the others' through their own backing files, and the
// deep file's upper path is longer than PATH_MAX.
interface Picked { stackSeed: number, plain: { name: string, content: string }, setuid: { name: string, content: string }, deep: string }
function pickStack (): Picked {
  const text = (c: string | Buffer | undefined): string => typeof c === 'string' ? c : (c ?? Buffer.alloc(0)).toString('latin1')
  for (let stackSeed = 0; stackSeed < 1000; stackSeed++) {
    const layers = randomStack(stackSeed).layers
    const files = (layers[0]?.entries ?? []).flatMap(e => e.type === 'file' && !e.path.includes('/') ? [{ name: e.path, content: text(e.content), mode: e.mode ?? 0o644 }] : [])
    const plain = files.find(f => (f.mode & 0o6000) === 0)
    const setuid = files.find(f => (f.mode & 0o4000) !== 0)
    const deep = layers.flatMap(l => l.entries).find(e => e.type === 'file' && e.path === DEEP_PARTS.join('/') + '/a')
    if (plain !== undefined && setuid !== undefined && deep?.type === 'file') return { stackSeed, plain, setuid, deep: text(deep.content) }
  }
  throw new Error('no stack with a plain and a setuid file on top and the deep chain')
}

t.test('the passthrough edge is modeled, not skipped', async t => {
  const { stackSeed, plain, setuid, deep } = pickStack()
  const P = [plain.name]
  const S = [setuid.name]
  const ops: Op[] = [
    { op: 'fdOpen', slot: 0, path: P, write: false }, // #0 read-only on a lower file
    { op: 'symlink', target: setuid.name, path: ['sym'] }, // #1
    { op: 'fdOpen', slot: 1, path: ['sym'], write: false }, // #2 the same through a symlink
    { op: 'fdRead', slot: 0 }, // #3 the lower bytes, on both
    { op: 'write', path: P, offset: 0, data: 'ABCDEFGHIJ' }, // #4 copies P up and changes it
    { op: 'append', path: S, data: 'zz\n' }, // #5 copies S up and changes it
    { op: 'fdRead', slot: 0 }, // #6 kernel: the copy; overlayts: the lower copy (modeled)
    { op: 'fdStat', slot: 0 }, // #7 the copy's attributes on both (compared with the kernel)
    { op: 'fdRead', slot: 1 }, // #8 modeled, as #6
    { op: 'fdStat', slot: 1 }, // #9
    { op: 'read', path: P }, // #10 a new open reads the copy
    { op: 'fdOpen', slot: 0, path: P, write: false }, // #11 read-only on the copy: not modeled
    { op: 'fdRead', slot: 0 }, // #12 the copy, on both
    { op: 'fdClose', slot: 1 }, // #13
    { op: 'fdOpen', slot: 2, path: [DEEP, 'a'], write: false }, // #14 a lower file deep down
    { op: 'write', path: [DEEP, 'a'], offset: 0, data: 'hello' }, // #15 copies it up, changes it
    { op: 'fdRead', slot: 2 }, // #16 modeled
    { op: 'fdClose', slot: 2 }, // #17
    // Descriptors opened read-only on the copies are not modeled: changes show through them.
    { op: 'fdOpen', slot: 2, path: [DEEP, 'a'], write: false }, // #18
    { op: 'write', path: [DEEP, 'a'], offset: 0, data: 'x' }, // #19
    { op: 'fdRead', slot: 2 }, // #20 the new bytes, on both
    { op: 'write', path: P, offset: 0, data: 'x' }, // #21
    { op: 'fdRead', slot: 0 } // #22 (opened at #11) the new bytes, on both
  ]
  const c: DiffCase = { stackSeed, ops }
  const lowerRead = (content: string): string => `ok ${JSON.stringify(content)}`

  const modeled = await runCase(c, { label: 'edge' })
  t.same(modeled.problems, [], 'with the model: no difference')
  t.ok(modeled.ok)
  const edge = modeled.passthrough === true
  t.equal(modeled.modeledReads, edge ? 3 : 0, edge ? 'the model fired for the three reads after the copy-ups' : 'no passthrough: nothing modeled')

  const strict = await runCase(c, { label: 'edge-strict', passthroughModel: false, keepGoing: true })
  if (!edge) {
    t.same(strict.problems, [], 'no passthrough: the kernel is the reference for every read')
    return
  }
  t.notOk(strict.ok, 'without the model the case fails')
  t.equal(strict.modeledReads, 0)
  t.equal(strict.divergedAt, 6)
  t.same(strict.problems, [
    `op #6 read fd0: kernel=${lowerRead('ABCDEFGHIJ')} overlayts=${lowerRead(plain.content)}`,
    `op #8 read fd1: kernel=${lowerRead(setuid.content + 'zz\n')} overlayts=${lowerRead(setuid.content)}`,
    `op #16 read fd2: kernel=${lowerRead('hello' + deep.slice(5))} overlayts=${lowerRead(deep)}`
  ], 'exactly the modeled reads differ, and overlayts answered them with the lower bytes')
})
