// Differences with the kernel's overlayfs found side by side (issue 10), each
// checked through real mounts against the kernel (redirect_dir=on) on two
// copies of the same layers: every step's answer on overlayts must be the
// kernel's, then the uppers must match.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { appendFileSync, chmodSync, closeSync, fstatSync, lchownSync, linkSync, lstatSync, openSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { utimensat } from '../../src/overlay/sys/native.js'
import type { StackSpec } from '../helpers/layers.js'
import { attempt, mountPair, PY_STEP, type Pair } from '../helpers/side-by-side.js'
import { diffSnapshots, snapshotTree, snapshotUpper, type SnapEntry } from '../helpers/snapshot.js'

/** Mtimes within a day of now were set by the run itself: they differ between the two sides. */
function stableTimes (entries: SnapEntry[]): SnapEntry[] {
  const recent = (BigInt(Date.now()) - 86_400_000n) * 1_000_000n
  return entries.map(e => (e.mtimeNs !== undefined && BigInt(e.mtimeNs) > recent ? { ...e, mtimeNs: 'now' } : e))
}

function mtimeOf (p: string): string {
  const st = lstatSync(p, { bigint: true })
  const recent = (BigInt(Date.now()) - 86_400_000n) * 1_000_000n
  return st.mtimeNs > recent ? 'now' : String(st.mtimeNs)
}

// Both transports: each converts times between the kernel's (sec, nsec) and ns on its own.
for (const transport of ['kernel', 'fuse-native'] as const) t.test(`item 3: times before 1970 with a fraction of a second (transport=${transport})`, async t => {
  // [sec, nsec] as utimensat takes them: 0 <= nsec < 1e9, so -89560799.5 s is (-89560800, 5e8).
  const TIMES: Record<string, [number, number]> = {
    old: [-89560800, 500_000_000], // 1967-03-01 10:00:00.5
    olddir: [-89560800, 500_000_000],
    'olddir/inner': [-2208988800, 250_000_000], // 1900-01-01 00:00:00.25
    'olddir/sub': [-1, 1], // 1969-12-31 23:59:59.000000001
    'olddir/sub/leaf': [-1, 999_999_999],
    future: [32503680000, 123_456_789] // 3000-01-01
  }
  const pair = await mountPair(t, 'pre1970', {
    layers: [{
      name: 'l',
      entries: [
        { type: 'file', path: 'old', content: 'old\n' },
        { type: 'file', path: 'olddir/inner', content: 'inner\n' },
        { type: 'file', path: 'olddir/sub/leaf', content: 'leaf\n' },
        { type: 'file', path: 'future', content: 'future\n' }
      ]
    }]
  }, {
    overlaytsExtra: ['-o', `transport=${transport}`],
    prepare (lowers) {
      // Deepest first: setting a child's times leaves its parent's alone, but be plain about it.
      for (const [rel, [s, n]] of Object.entries(TIMES).sort((a, b) => b[0].length - a[0].length)) {
        utimensat(join(lowers[0]!, rel), s, n, s, n)
      }
    }
  })
  const steps = (m: string): string[] => {
    const out: string[] = []
    const step = (what: string, fn: () => unknown): void => { out.push(`${what}: ${attempt(fn)}`) }
    for (const rel of Object.keys(TIMES)) step(`mtime ${rel}`, () => mtimeOf(join(m, rel)))
    step('append old', () => appendFileSync(join(m, 'old'), 'more\n'))
    step('chmod olddir/inner', () => chmodSync(join(m, 'olddir/inner'), 0o600))
    step('mtime olddir/inner', () => mtimeOf(join(m, 'olddir/inner')))
    step('mtime olddir', () => mtimeOf(join(m, 'olddir')))
    step('chmod olddir/sub/leaf', () => chmodSync(join(m, 'olddir/sub/leaf'), 0o640))
    step('mtime olddir/sub', () => mtimeOf(join(m, 'olddir/sub')))
    step('mtime olddir/sub/leaf', () => mtimeOf(join(m, 'olddir/sub/leaf')))
    step('chmod future', () => chmodSync(join(m, 'future'), 0o600))
    step('mtime future', () => mtimeOf(join(m, 'future')))
    step('create olddir/new', () => writeFileSync(join(m, 'olddir/new'), 'new\n'))
    // utimens through the mount, to times before 1970 with a fraction
    step('utimens old -1.25s', () => utimensat(join(m, 'old'), -2, 750_000_000, -2, 750_000_000))
    step('mtime old', () => mtimeOf(join(m, 'old')))
    step('utimens olddir 1950.25', () => utimensat(join(m, 'olddir'), -615254400, 250_000_000, -615254400, 250_000_000))
    step('mtime olddir', () => mtimeOf(join(m, 'olddir')))
    return out
  }
  const want = steps(pair.kernel.merged)
  const got = steps(pair.overlayts.merged)
  t.same(got, want, 'every step answers as the kernel')
  t.ok(want.every(s => !/: E[A-Z]+$/.test(s)), 'and every step succeeds')

  // The times survive a remount (the lookup index is on by default).
  const again = (m: string): string[] => Object.keys(TIMES).concat('olddir/new').map(rel => `${rel}: ${attempt(() => mtimeOf(join(m, rel)))}`)
  const before = again(pair.overlayts.merged)
  await pair.remountOverlayts()
  t.same(again(pair.overlayts.merged), before, 'same times after a remount')
  t.same(before, again(pair.kernel.merged), 'which are the kernel\'s')

  await pair.unmount()
  const up = async (u: string): Promise<SnapEntry[]> => stableTimes(await snapshotUpper(u, { mtime: true }))
  t.same(diffSnapshots(await up(pair.overlayts.upper), await up(pair.kernel.upper), { aName: 'overlayts', bName: 'kernel' }), [], 'uppers match')
})

// Real syscalls with their flags (Node has no xattr API with XATTR_CREATE/REPLACE).
const XATTR_SCRIPT = String.raw`
import errno, json, os, sys
root = sys.argv[1]
${PY_STEP}
def at(rel): return os.path.join(root, rel)
def get(rel, n): return lambda: os.getxattr(at(rel), n, follow_symlinks=False).decode('latin1')
def lst(rel): return lambda: sorted(x for x in os.listxattr(at(rel), follow_symlinks=False) if x.startswith('trusted.overlay'))
def put(rel, n, v, f=0): return lambda: os.setxattr(at(rel), n, v.encode(), f, follow_symlinks=False)
def rm(rel, n): return lambda: os.removexattr(at(rel), n, follow_symlinks=False)
with open(at('uf'), 'w') as f: f.write('u\n')
os.mkdir(at('ud'))
for rel in ['f', 'd', 'uf', 'ud', '', 'link']:
    for n in ['trusted.overlay.foo', 'trusted.overlay.opaque', 'trusted.overlay.redirect', 'trusted.overlay.origin', 'trusted.overlay.ts.origin']:
        w = rel + ' ' + n
        step(w + ' get unset', get(rel, n))
        step(w + ' remove unset', rm(rel, n))
        step(w + ' replace unset', put(rel, n, 'r', os.XATTR_REPLACE))
        step(w + ' set', put(rel, n, 'y'))
        step(w + ' get', get(rel, n))
        step(w + ' create again', put(rel, n, 'c', os.XATTR_CREATE))
        step(w + ' replace', put(rel, n, 'z', os.XATTR_REPLACE))
        step(w + ' get replaced', get(rel, n))
    step(rel + ' list', lst(rel))
    step(rel + ' remove foo', rm(rel, 'trusted.overlay.foo'))
    step(rel + ' list after remove', lst(rel))
    step(rel + ' empty suffix get', get(rel, 'trusted.overlay.'))
    step(rel + ' empty suffix set', put(rel, 'trusted.overlay.', 'x'))
    step(rel + ' empty suffix remove', rm(rel, 'trusted.overlay.'))
    long = 'trusted.overlay.' + 'n' * (255 - len('trusted.overlay.'))
    step(rel + ' 255-byte name set', put(rel, long, 'x'))
    step(rel + ' 255-byte name get', get(rel, long))
    mid = 'trusted.overlay.' + 'n' * (255 - len('trusted.overlay.overlay.'))
    step(rel + ' longest escapable name set', put(rel, mid, 'x'))
    step(rel + ' longest escapable name get', get(rel, mid))
# a lower file holding an escaped name and a private one
step('esc list', lst('esc'))
step('esc get escaped', get('esc', 'trusted.overlay.lowerval'))
step('esc get private', get('esc', 'trusted.overlay.hidden'))
step('esc chmod (copy-up)', lambda: os.chmod(at('esc'), 0o600))
step('esc list after copy-up', lst('esc'))
step('esc get escaped after copy-up', get('esc', 'trusted.overlay.lowerval'))
print('\n'.join(out))
`

t.test('item 8: trusted.overlay.* xattrs through the mount', async t => {
  const pair = await mountPair(t, 'ovlxattr', {
    layers: [{
      name: 'l',
      entries: [
        { type: 'file', path: 'f', content: 'f\n' },
        { type: 'dir', path: 'd' },
        { type: 'symlink', path: 'link', target: 'f' },
        { type: 'file', path: 'esc', content: 'e\n', xattrs: { 'trusted.overlay.overlay.lowerval': 'L', 'trusted.overlay.hidden': 'H', 'user.plain': 'p' } }
      ]
    }]
  })
  const steps = (m: string): string[] => execFileSync('python3', ['-c', XATTR_SCRIPT, m], { encoding: 'utf8' }).trimEnd().split('\n')
  const want = steps(pair.kernel.merged)
  const got = steps(pair.overlayts.merged)
  t.same(got, want, 'every step answers as the kernel')
  await pair.unmount()
  const up = async (u: string): Promise<SnapEntry[]> => stableTimes(await snapshotUpper(u, { mtime: true }))
  t.same(diffSnapshots(await up(pair.overlayts.upper), await up(pair.kernel.upper), { aName: 'overlayts', bName: 'kernel' }), [], 'uppers match (escaped names stored as the kernel stores them)')
})

t.test('item 5: copy-up restores the times of every parent it adds to, the root included', async t => {
  const FIXED: [number, number] = [1012608000, 250_000_000] // 2002-02-02, set on the upper root
  const pair = await mountPair(t, 'roottimes', {
    layers: [{
      name: 'l',
      entries: [
        { type: 'file', path: 's1/s69', content: 'x\n' },
        { type: 'file', path: 's1/s2/f', content: 'y\n' },
        { type: 'file', path: 'top', content: 'z\n' },
        { type: 'dir', path: 'd2' },
        { type: 'symlink', path: 'ln', target: 'top' }
      ]
    }]
  }, {
    prepare (_lowers, side) { utimensat(side.upper, FIXED[0], FIXED[1], FIXED[0], FIXED[1]) }
  })
  const times = (m: string, rels: string[]): string[] => rels.map(rel => `${rel}: ${attempt(() => mtimeOf(join(m, rel)))}`)
  const steps = (m: string): string[] => {
    const out: string[] = []
    const step = (what: string, fn: () => unknown, rels: string[]): void => { out.push(`${what}: ${attempt(fn)}`, ...times(m, rels)) }
    step('unlink s1/s69', () => unlinkSync(join(m, 's1/s69')), ['.', 's1'])
    step('chmod s1/s2/f', () => chmodSync(join(m, 's1/s2/f'), 0o600), ['.', 's1/s2'])
    step('chmod top', () => chmodSync(join(m, 'top'), 0o600), ['.'])
    step('chmod d2', () => chmodSync(join(m, 'd2'), 0o700), ['.', 'd2'])
    step('lchown ln', () => lchownSync(join(m, 'ln'), 1000, 1000), ['.', 'ln'])
    return out
  }
  t.same(steps(pair.overlayts.merged), steps(pair.kernel.merged), 'every step answers as the kernel')
  await pair.unmount()
  // Atimes of copied-up dirs are left out: they come from the lower dirs', which any walk of the
  // layers (the index fingerprint, whiteouts=auto) may update (relatime), as reads do on the kernel.
  const upperTimes = (u: string): string[] => ['.', 's1/s2', 'd2', 'top', 'ln'].map(rel => {
    const st = lstatSync(join(u, rel), { bigint: true })
    return rel === '.' ? `${rel}: atime ${st.atimeNs} mtime ${st.mtimeNs}` : `${rel}: mtime ${st.mtimeNs}`
  })
  const want = upperTimes(pair.kernel.upper)
  t.same(upperTimes(pair.overlayts.upper), want, 'upper times match the kernel\'s')
  t.equal(want[0], `.: atime ${BigInt(FIXED[0]) * 1_000_000_000n + BigInt(FIXED[1])} mtime ${BigInt(FIXED[0]) * 1_000_000_000n + BigInt(FIXED[1])}`, 'the kernel kept the upper root\'s times')
})

// Which object each number names: a lower file ('lower:PATH', PATH its first
// name there), an upper one ('upper:PATH') or neither. Compares numbers
// between two mounts whose layers are different copies.
const INO_SCRIPT = String.raw`
import errno, os, sys
merged, lower, upper = sys.argv[1], sys.argv[2], sys.argv[3]
step_name = sys.argv[4]
def index(root):
    by = {}
    for d, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            by.setdefault(st.st_ino, os.path.relpath(p, root))
    return by
low, up = index(lower), index(upper)
def who(ino):
    if ino in up: return 'upper:' + up[ino]
    if ino in low: return 'lower:' + low[ino]
    return 'other'
out = []
names = sorted(os.listdir(os.path.join(merged, 'hl')))
dino = {e.name: e.inode() for e in os.scandir(os.path.join(merged, 'hl'))}
for n in names:
    st = os.lstat(os.path.join(merged, 'hl', n))
    same = [m for m in names if m != n and os.lstat(os.path.join(merged, 'hl', m)).st_ino == st.st_ino]
    out.append('%s hl/%s: st_ino %s, nlink %d, same as %s' % (step_name, n, who(st.st_ino), st.st_nlink, same))
    out.append('%s hl/%s: d_ino %s' % (step_name, n, 'as st_ino' if dino[n] == st.st_ino else who(dino[n])))
print('\n'.join(out))
`

for (const transport of ['kernel', 'fuse-native'] as const) t.test(`item 2: a copied-up lower hardlink gets a number of its own (transport=${transport})`, async t => {
  const pair = await mountPair(t, 'hardlinkino', {
    layers: [{
      name: 'l',
      entries: [
        { type: 'file', path: 'hl/a', content: 'linked\n' },
        { type: 'hardlink', path: 'hl/b', to: 'hl/a' },
        { type: 'hardlink', path: 'hl/c', to: 'hl/a' },
        { type: 'file', path: 'hl/s', content: 'single\n' }
      ]
    }]
  }, {
    // fuse-native (libfuse 2) caches attributes by name: a link through one
    // name leaves the other's nlink stale for attr_timeout (see README).
    overlaytsExtra: ['-o', `transport=${transport}${transport === 'fuse-native' ? ',attr_timeout=0' : ''}`]
  })
  const numbers = (side: typeof pair.kernel, step: string): string[] =>
    execFileSync('python3', ['-c', INO_SCRIPT, side.merged, side.lowers[0]!, side.upper, step], { encoding: 'utf8' }).trimEnd().split('\n')
  const fdNumber = (side: typeof pair.kernel, fd: number): string => {
    const ino = fstatSync(fd, { bigint: true }).ino
    return ino === lstatSync(join(side.merged, 'hl/a'), { bigint: true }).ino ? 'as hl/a' : ino === lstatSync(join(side.merged, 'hl/b'), { bigint: true }).ino ? 'as hl/b' : 'other'
  }
  const steps = (side: typeof pair.kernel): string[] => {
    const m = side.merged
    const out = numbers(side, 'before')
    const fd = openSync(join(m, 'hl/a'), 'r')
    try {
      out.push(`append hl/a: ${attempt(() => appendFileSync(join(m, 'hl/a'), 'more\n'))}`, ...numbers(side, 'append a'))
      out.push(`fstat of a read fd opened before the copy-up: ${fdNumber(side, fd)}`)
    } finally { closeSync(fd) }
    out.push(`chmod hl/b: ${attempt(() => chmodSync(join(m, 'hl/b'), 0o600))}`, ...numbers(side, 'chmod b'))
    out.push(`link hl/a hl/a2: ${attempt(() => linkSync(join(m, 'hl/a'), join(m, 'hl/a2')))}`, ...numbers(side, 'link a a2'))
    out.push(`rename hl/c hl/c2: ${attempt(() => renameSync(join(m, 'hl/c'), join(m, 'hl/c2')))}`, ...numbers(side, 'rename c c2'))
    out.push(`append hl/s: ${attempt(() => appendFileSync(join(m, 'hl/s'), 'more\n'))}`, ...numbers(side, 'append s'))
    return out
  }
  const want = steps(pair.kernel)
  const got = steps(pair.overlayts)
  const isDino = (l: string): boolean => l.includes(': d_ino ')
  t.same(got.filter(l => !isDino(l)), want.filter(l => !isDino(l)), 'every st_ino and fstat names the object the kernel\'s names')
  t.same(got.filter(isDino), want.filter(isDino), 'readdir\'s d_ino is st_ino, as with the kernel')
  const before = numbers(pair.overlayts, 'now')
  await pair.remountOverlayts()
  t.same(numbers(pair.overlayts, 'now'), before, 'the same numbers after a remount')
})

// Literal `.wh.*` files in a kernel-form layer (one with char 0/0 whiteouts):
// the kernel shows them as plain files, and hides nothing because of them.
const LITERAL_WH: StackSpec = {
  layers: [
    {
      name: 'top',
      entries: [
        { type: 'whiteout', path: 'gone' },
        { type: 'raw-oci-whiteout', path: 'foo' }, // a file named .wh.foo
        { type: 'raw-oci-opaque', path: 'd' }, // a file named d/.wh..wh..opq
        { type: 'file', path: 'd/top', content: 'top\n' },
        { type: 'raw-oci-whiteout', path: 'sub/x' } // sub/.wh.x
      ]
    },
    {
      name: 'bottom',
      entries: [
        { type: 'file', path: 'foo', content: 'foo\n' },
        { type: 'file', path: 'gone', content: 'gone\n' },
        { type: 'file', path: 'd/below', content: 'below\n' },
        { type: 'file', path: 'sub/x', content: 'x\n' },
        { type: 'raw-oci-whiteout', path: 'bar' }, // .wh.bar in the bottom layer
        { type: 'whiteout', path: 'nothing-below' } // which is kernel form too
      ]
    }
  ]
}

async function sameMergedView (t: Test, pair: Pair, what: string): Promise<void> {
  const view = async (m: string): Promise<SnapEntry[]> => stableTimes(await snapshotTree(m, { xattrs: true, mtime: true }))
  t.same(diffSnapshots(await view(pair.overlayts.merged), await view(pair.kernel.merged), { aName: 'overlayts', bName: 'kernel' }), [], what)
}

const probe = (m: string): string[] => ['.wh.foo', 'foo', 'gone', 'd/.wh..wh..opq', 'd/below', 'sub/.wh.x', 'sub/x', '.wh.bar', 'bar']
  .map(rel => `${rel}: ${attempt(() => lstatSync(join(m, rel)).isFile() ? 'file' : 'other')}`)

t.test('item 7: `.wh.*` files in a kernel-form layer are plain files (whiteouts=auto)', async t => {
  const pair = await mountPair(t, 'literalwh', LITERAL_WH)
  t.same(probe(pair.overlayts.merged), probe(pair.kernel.merged), 'each name as the kernel shows it')
  await sameMergedView(t, pair, 'merged trees match')
  // Changes next to them: a copy-up and a whiteout in a dir holding a literal `.wh.` file.
  const steps = (m: string): string[] => [
    `append d/below: ${attempt(() => appendFileSync(join(m, 'd/below'), 'more\n'))}`,
    `unlink sub/x: ${attempt(() => unlinkSync(join(m, 'sub/x')))}`,
    `unlink .wh.foo: ${attempt(() => unlinkSync(join(m, '.wh.foo')))}`,
    `readdir: ${attempt(() => readdirSync(m).sort().join(','))}`,
    `readdir sub: ${attempt(() => readdirSync(join(m, 'sub')).sort().join(','))}`
  ]
  t.same(steps(pair.overlayts.merged), steps(pair.kernel.merged), 'changes answer as the kernel')
  // Again from the lookup index (built at the first mount).
  await pair.remountOverlayts()
  await sameMergedView(t, pair, 'merged trees match after a remount (from the index)')
  await pair.unmount()
  const up = async (u: string): Promise<SnapEntry[]> => stableTimes(await snapshotUpper(u, { mtime: true }))
  t.same(diffSnapshots(await up(pair.overlayts.upper), await up(pair.kernel.upper), { aName: 'overlayts', bName: 'kernel' }), [], 'uppers match')
})

t.test('item 7: an OCI-form layer over a kernel-form one: each read in its own form', async t => {
  // The kernel mounts the top layer in kernel form, overlayts the same
  // changes in OCI form; the bottom layer (with its literal .wh.bar and a
  // char 0/0 whiteout) is kernel form on both sides.
  const spec: StackSpec = {
    layers: [
      {
        name: 'top',
        entries: [
          { type: 'whiteout', path: 'gone' },
          { type: 'opaque', path: 'd' },
          { type: 'file', path: 'd/top', content: 'top\n' },
          { type: 'whiteout', path: 'sub/x' }
        ]
      },
      {
        name: 'bottom',
        entries: [
          { type: 'whiteout', path: 'nothing-below' },
          { type: 'file', path: 'foo', content: 'foo\n' },
          { type: 'file', path: 'gone', content: 'gone\n' },
          { type: 'file', path: 'd/below', content: 'below\n' },
          { type: 'file', path: 'sub/x', content: 'x\n' },
          { type: 'file', path: 'sub/y', content: 'y\n' },
          { type: 'raw-oci-whiteout', path: 'bar' },
          { type: 'file', path: 'bar', content: 'bar\n' }
        ]
      }
    ]
  }
  const pair = await mountPair(t, 'mixedforms', spec, { forms: ['oci', 'kernel'] })
  t.same(probe(pair.overlayts.merged), probe(pair.kernel.merged), 'each name as the kernel shows it')
  await sameMergedView(t, pair, 'merged trees match')
  await pair.remountOverlayts()
  await sameMergedView(t, pair, 'merged trees match after a remount (from the index)')
})

t.test('item 7: whiteouts=kernel|oci decide for an ambiguous layer', async t => {
  // No char 0/0 whiteout and no overlay xattr: auto reads `.wh.*` as OCI markers.
  const spec: StackSpec = {
    layers: [
      { name: 'top', entries: [{ type: 'raw-oci-whiteout', path: 'foo' }, { type: 'file', path: 'top', content: 't\n' }] },
      { name: 'bottom', entries: [{ type: 'file', path: 'foo', content: 'foo\n' }] }
    ]
  }
  const names = (m: string): string => readdirSync(m).sort().join(',')
  const pair = await mountPair(t, 'whoption', spec)
  t.equal(names(pair.kernel.merged), '.wh.foo,foo,top', 'the kernel shows .wh.foo as a file')
  t.equal(names(pair.overlayts.merged), 'top', 'auto: an OCI-form layer, foo whited out')
  await pair.remountOverlayts(['-o', 'whiteouts=kernel'])
  t.equal(names(pair.overlayts.merged), '.wh.foo,foo,top', 'whiteouts=kernel: plain files, as the kernel')
  await pair.remountOverlayts(['-o', 'whiteouts=oci'])
  t.equal(names(pair.overlayts.merged), 'top', 'whiteouts=oci: markers again (and the index follows the option)')
})

// fstat of a descriptor whose name was unlinked while the file keeps other names.
const FSTAT_SCRIPT = String.raw`
import os, sys
os.chdir(sys.argv[1])
out = []
def show(what, fd):
    s = os.fstat(fd)
    out.append('%s: nlink %d size %d' % (what, s.st_nlink, s.st_size))
with open('a', 'w') as f: f.write('x')
os.link('a', 'b')
fd = os.open('a', os.O_RDONLY); show('a open', fd); os.unlink('a'); show('a after unlink', fd)
out.append('b: nlink %d' % os.lstat('b').st_nlink); os.close(fd)
fd = os.open('h1', os.O_RDONLY); show('h1 open ro', fd); os.unlink('h1'); show('h1 after unlink', fd)
out.append('h2: nlink %d' % os.lstat('h2').st_nlink); os.close(fd)
fd = os.open('h2', os.O_RDWR); show('h2 open rw', fd); os.link('h2', 'h3'); show('h2 after link', fd)
os.unlink('h2'); show('h2 after unlink', fd); out.append('h3: nlink %d' % os.lstat('h3').st_nlink); os.close(fd)
with open('c', 'w') as f: f.write('x')
os.link('c', 'd'); os.link('c', 'e')
fd = os.open('c', os.O_RDONLY)
for n in ['c', 'd', 'e']: os.unlink(n); show('c after unlink ' + n, fd)
os.close(fd)
# fifos, which the kernel opens without the daemon: a lower one only whited out keeps its links
fd = os.open('p', os.O_RDONLY | os.O_NONBLOCK); os.unlink('p'); show('lower fifo p after unlink', fd); os.close(fd)
fd = os.open('q1', os.O_RDONLY | os.O_NONBLOCK); os.unlink('q1'); show('lower fifo q1 after unlink', fd)
os.unlink('q2'); show('lower fifo q1 after unlink q2', fd); os.close(fd)
fd = os.open('r', os.O_RDONLY | os.O_NONBLOCK); os.link('r', 'r2'); show('lower fifo r after link', fd)
os.unlink('r'); show('lower fifo r after unlink', fd); os.unlink('r2'); show('lower fifo r after unlink r2', fd); os.close(fd)
os.mkfifo('u'); fd = os.open('u', os.O_RDONLY | os.O_NONBLOCK); os.unlink('u'); show('upper fifo after unlink', fd); os.close(fd)
print('\n'.join(out))
`

t.test('item 6: fstat after unlink of an open file with other names', async t => {
  const pair = await mountPair(t, 'fstatunlink', {
    layers: [{
      name: 'l',
      entries: [
        { type: 'file', path: 'h1', content: 'a\n' }, { type: 'hardlink', path: 'h2', to: 'h1' },
        { type: 'fifo', path: 'p' }, { type: 'fifo', path: 'q1' }, { type: 'hardlink', path: 'q2', to: 'q1' }, { type: 'fifo', path: 'r' }
      ]
    }]
  })
  const steps = (m: string): string[] => execFileSync('python3', ['-c', FSTAT_SCRIPT, m], { encoding: 'utf8' }).trimEnd().split('\n')
  const want = steps(pair.kernel.merged)
  t.same(steps(pair.overlayts.merged), want, 'every nlink as the kernel reports it')
  t.ok(want.includes('a after unlink: nlink 1 size 1'), 'the kernel counts the other name')
  t.ok(want.includes('lower fifo p after unlink: nlink 1 size 0'), 'and the links of a whited-out lower fifo')
})
