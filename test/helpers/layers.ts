// Declarative layer stacks. A StackSpec describes lower layers (top first);
// buildStack() writes them to disk either in the kernel overlayfs form
// (whiteout = chr 0/0, opaque = trusted.overlay.opaque=y) or in the OCI image
// form (whiteout = empty ".wh.NAME", opaque = empty ".wh..wh..opq" inside the
// dir). Both forms describe the same merged view.
import { overlayXattr } from './userns.js'
import { chmod, chown, lchown, link, lutimes, mkdir, symlink, writeFile } from 'node:fs/promises'
import { dirname, join, posix, resolve } from 'node:path'
import { runOk } from './exec.js'

export type LayerForm = 'kernel' | 'oci'

interface Common {
  /** path relative to the layer root, '/'-separated, no leading '/' */
  path: string
}
interface Owned {
  mode?: number
  uid?: number
  gid?: number
  /** name -> value (string = utf8) */
  xattrs?: Record<string, string | Buffer>
  /** seconds since the epoch (default: DEFAULT_MTIME) */
  mtime?: number
}
export interface FileEntry extends Common, Owned { type: 'file', content?: string | Buffer }
export interface DirEntry extends Common, Owned { type: 'dir', opaque?: boolean }
export interface SymlinkEntry extends Common, Omit<Owned, 'mode'> { type: 'symlink', target: string }
export interface HardlinkEntry extends Common { type: 'hardlink', /** another path in the same layer */ to: string }
export interface FifoEntry extends Common, Owned { type: 'fifo' }
export interface DeviceEntry extends Common, Owned { type: 'chardev' | 'blockdev', major: number, minor: number }
/** Hides `path` from the layers below (form-dependent marker). */
export interface WhiteoutEntry extends Common { type: 'whiteout' }
/** Marks the dir at `path` opaque (same as a DirEntry with opaque: true). */
export interface OpaqueEntry extends Common { type: 'opaque' }
/**
 * Raw OCI markers written verbatim in BOTH forms (e.g. to check that the
 * kernel form shows a literal ".wh.foo" file, or to test stray markers).
 */
export interface RawOciWhiteoutEntry extends Common { type: 'raw-oci-whiteout' }
export interface RawOciOpaqueEntry extends Common { type: 'raw-oci-opaque' }

export type LayerEntry = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry | FifoEntry | DeviceEntry |
WhiteoutEntry | OpaqueEntry | RawOciWhiteoutEntry | RawOciOpaqueEntry

export interface LayerSpec {
  /** optional name, used for the layer's directory */
  name?: string
  entries: LayerEntry[]
}

export interface StackSpec {
  /** top first */
  layers: LayerSpec[]
}

export interface BuiltStack {
  root: string
  form: LayerForm
  /** layer directories, top first (ready for lowerdir=) */
  lowers: string[]
}

/** 2021-01-01T00:00:00Z: every entry gets a deterministic mtime. */
export const DEFAULT_MTIME = 1609459200
export const OCI_WHITEOUT_PREFIX = '.wh.'
export const OCI_OPAQUE = '.wh..wh..opq'

function checkRel (p: string): string {
  const n = posix.normalize(p)
  if (n.startsWith('/') || n === '.' || n === '..' || n.startsWith('../') || n === '') {
    throw new Error(`bad layer entry path: ${JSON.stringify(p)}`)
  }
  return n
}

function depth (p: string): number {
  return p.split('/').length
}

async function applyOwnership (abs: string, e: Owned, isSymlink: boolean): Promise<void> {
  const uid = e.uid ?? 0
  const gid = e.gid ?? 0
  if (isSymlink) await lchown(abs, uid, gid)
  else await chown(abs, uid, gid)
}

async function setXattrs (abs: string, xattrs: Record<string, string | Buffer> | undefined): Promise<void> {
  if (xattrs === undefined) return
  for (const [name, value] of Object.entries(xattrs)) {
    const hex = '0x' + (typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('hex')
    await runOk('setfattr', ['-h', '-n', name, '-v', hex, '--', abs])
  }
}

async function mknod (abs: string, kind: 'c' | 'b' | 'p', major = 0, minor = 0): Promise<void> {
  const args = kind === 'p' ? ['-m', '0644', '--', abs, 'p'] : ['-m', '0644', '--', abs, kind, String(major), String(minor)]
  await runOk('mknod', args)
}

/** Write one layer into `dir` (created) in the given form. */
export async function buildLayer (dir: string, layer: LayerSpec, form: LayerForm): Promise<void> {
  const root = resolve(dir)
  await mkdir(root, { recursive: true })
  await chmod(root, 0o755)
  const dirs = new Map<string, DirEntry>()
  const others: LayerEntry[] = []
  const opaque = new Set<string>()
  for (const e0 of layer.entries) {
    const p = checkRel(e0.path)
    const e = { ...e0, path: p }
    if (e.type === 'dir') {
      dirs.set(p, e)
      if (e.opaque === true) opaque.add(p)
    } else if (e.type === 'opaque') {
      opaque.add(p)
      if (!dirs.has(p)) dirs.set(p, { type: 'dir', path: p })
    } else {
      others.push(e)
    }
  }
  // implicit parents (0755 root:root) for everything
  const ensureParents = (p: string): void => {
    let d = posix.dirname(p)
    while (d !== '.' && d !== '') {
      if (!dirs.has(d)) dirs.set(d, { type: 'dir', path: d })
      d = posix.dirname(d)
    }
  }
  for (const p of [...dirs.keys()]) ensureParents(p)
  for (const e of others) ensureParents(e.path)

  const sortedDirs = [...dirs.values()].sort((a, b) => depth(a.path) - depth(b.path) || (a.path < b.path ? -1 : 1))
  for (const d of sortedDirs) await mkdir(join(root, d.path), { recursive: true })

  // non-dirs
  const hardlinks: HardlinkEntry[] = []
  const owned: Array<{ abs: string, e: Owned, symlink: boolean }> = []
  const timed: Array<{ abs: string, mtime: number, depth: number }> = []
  for (const e of others) {
    const abs = join(root, e.path)
    switch (e.type) {
      case 'file':
        await writeFile(abs, e.content ?? '')
        owned.push({ abs, e, symlink: false })
        timed.push({ abs, mtime: e.mtime ?? DEFAULT_MTIME, depth: depth(e.path) })
        break
      case 'symlink':
        await symlink(e.target, abs)
        owned.push({ abs, e, symlink: true })
        timed.push({ abs, mtime: e.mtime ?? DEFAULT_MTIME, depth: depth(e.path) })
        break
      case 'fifo':
        await mknod(abs, 'p')
        owned.push({ abs, e, symlink: false })
        timed.push({ abs, mtime: e.mtime ?? DEFAULT_MTIME, depth: depth(e.path) })
        break
      case 'chardev':
      case 'blockdev':
        await mknod(abs, e.type === 'chardev' ? 'c' : 'b', e.major, e.minor)
        owned.push({ abs, e, symlink: false })
        timed.push({ abs, mtime: e.mtime ?? DEFAULT_MTIME, depth: depth(e.path) })
        break
      case 'hardlink':
        hardlinks.push(e)
        break
      case 'whiteout':
        if (form === 'kernel') {
          await mknod(abs, 'c', 0, 0)
          await chmod(abs, 0o000)
        } else {
          const w = join(root, posix.dirname(e.path), OCI_WHITEOUT_PREFIX + posix.basename(e.path))
          await writeFile(w, '')
          timed.push({ abs: w, mtime: DEFAULT_MTIME, depth: depth(e.path) })
        }
        break
      case 'raw-oci-whiteout': {
        const w = join(root, posix.dirname(e.path), OCI_WHITEOUT_PREFIX + posix.basename(e.path))
        await writeFile(w, '')
        timed.push({ abs: w, mtime: DEFAULT_MTIME, depth: depth(e.path) })
        break
      }
      case 'raw-oci-opaque': {
        const w = join(root, e.path, OCI_OPAQUE)
        await mkdir(dirname(w), { recursive: true })
        await writeFile(w, '')
        timed.push({ abs: w, mtime: DEFAULT_MTIME, depth: depth(e.path) + 1 })
        break
      }
      default:
        break
    }
  }
  for (const h of hardlinks) await link(join(root, checkRel(h.to)), join(root, h.path))

  // opaque markers
  for (const p of opaque) {
    const abs = join(root, p)
    if (form === 'kernel') {
      await runOk('setfattr', ['-n', overlayXattr('opaque'), '-v', 'y', '--', abs])
    } else {
      await writeFile(join(abs, OCI_OPAQUE), '')
      timed.push({ abs: join(abs, OCI_OPAQUE), mtime: DEFAULT_MTIME, depth: depth(p) + 1 })
    }
  }

  // owner, then mode (chown clears suid/sgid), then xattrs
  for (const o of owned) {
    await applyOwnership(o.abs, o.e, o.symlink)
    if (!o.symlink) await chmod(o.abs, o.e.mode ?? 0o644)
    await setXattrs(o.abs, o.e.xattrs)
  }
  for (const d of sortedDirs) {
    const abs = join(root, d.path)
    await applyOwnership(abs, d, false)
    await setXattrs(abs, d.xattrs)
  }

  // times: non-dirs, then dirs deepest first (creating children changes a dir's mtime)
  for (const x of timed) await lutimes(x.abs, x.mtime, x.mtime)
  for (const d of [...sortedDirs].reverse()) {
    const m = d.mtime ?? DEFAULT_MTIME
    await lutimes(join(root, d.path), m, m)
  }
  // dir modes last (a 0000 dir is fine for root, but keep the order obvious)
  for (const d of [...sortedDirs].reverse()) await chmod(join(root, d.path), d.mode ?? 0o755)
  await lutimes(root, DEFAULT_MTIME, DEFAULT_MTIME)
}

/**
 * Write all layers of `spec` under `root` as root/00-NAME (top) ... and return
 * their paths, top first.
 */
export async function buildStack (root: string, spec: StackSpec, opts: { form: LayerForm }): Promise<BuiltStack> {
  const base = resolve(root)
  await mkdir(base, { recursive: true })
  const lowers: string[] = []
  for (let i = 0; i < spec.layers.length; i++) {
    const l = spec.layers[i] as LayerSpec
    const name = `${String(i).padStart(2, '0')}-${(l.name ?? 'layer').replace(/[^A-Za-z0-9_.-]/g, '_')}`
    const dir = join(base, name)
    await buildLayer(dir, l, opts.form)
    lowers.push(dir)
  }
  return { root: base, form: opts.form, lowers }
}

/** Deterministic pseudo-random bytes (xorshift32), so content is reproducible. */
export function pseudoRandomBytes (length: number, seed = 0x9e3779b9): Buffer {
  const buf = Buffer.alloc(length)
  let x = seed >>> 0 || 1
  let i = 0
  while (i + 4 <= length) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    buf.writeUInt32LE(x, i)
    i += 4
  }
  while (i < length) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    buf[i++] = x & 0xff
  }
  return buf
}

// ---------------------------------------------------------------------------
// The rich reference stack

export const RICH = {
  bigFile: 'big.bin',
  bigSize: 3 * 1024 * 1024,
  bigSeed: 0x5eed1234,
  manyDir: 'many',
  manyCount: 2000,
  longName: 'L'.repeat(255),
  oddNames: ['with space', ' leading and trailing ', 'tab\there', 'new\nline', 'ünïcødé-日本語-🎉', 'back\\slash', 'colon:comma,', '-dash'],
  deepDepth: 20
} as const

export function richDeepPath (): string {
  const parts: string[] = ['deep']
  for (let i = 1; i <= RICH.deepDepth; i++) parts.push(`d${String(i).padStart(2, '0')}`)
  return parts.join('/')
}

/**
 * Four lower layers (top first: L0 .. L3) exercising the read path:
 *  - whiteouts of files (etc/removed-file, symlinks/remove-me) and of a dir (removed-dir),
 *  - whiteouts in a dir merged from 3 layers (many/w0..w9),
 *  - opaque dir over a lower dir (opaque/),
 *  - a dir merged from 3 layers (merged3/: L1, L2, L3), the root merged from all 4,
 *  - a non-dir over a dir (dir-then-file: file in L2, dir in L3) and a dir over
 *    a non-dir (file-then-dir: dir in L1, file in L3),
 *  - symlinks (relative, absolute, dangling, escaping the layer), hardlinks,
 *    a fifo, char and block devices, xattrs (user.* and trusted.*),
 *  - odd modes (0000, 4755, 2755, 1777, 0600), owners 1000 and 65534,
 *  - a 3 MiB pseudo-random file, an empty file, odd names, a 255-byte name,
 *    20 levels of nesting and a 2000-entry dir split across two layers.
 */
export function richStack (): StackSpec {
  const L0: LayerEntry[] = []
  const L1: LayerEntry[] = []
  const L2: LayerEntry[] = []
  const L3: LayerEntry[] = []

  // --- bottom layer L3
  L3.push(
    { type: 'dir', path: 'etc', mode: 0o755 },
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { type: 'file', path: 'etc/hosts', content: '127.0.0.1 localhost\n' },
    { type: 'file', path: 'etc/removed-file', content: 'you should not see me\n' },
    { type: 'dir', path: 'removed-dir' },
    { type: 'file', path: 'removed-dir/a', content: 'a\n' },
    { type: 'file', path: 'removed-dir/sub/b', content: 'b\n' },
    { type: 'dir', path: 'opaque', mode: 0o700 },
    { type: 'file', path: 'opaque/old1', content: 'old1\n' },
    { type: 'file', path: 'opaque/old2', content: 'old2\n' },
    { type: 'file', path: 'opaque/sub/x', content: 'x\n' },
    { type: 'dir', path: 'merged3', mode: 0o711, uid: 1000, gid: 1000 },
    { type: 'file', path: 'merged3/from3-a', content: 'from L3 a\n' },
    { type: 'file', path: 'merged3/from3-b', content: 'from L3 b\n' },
    { type: 'file', path: 'merged3/shared', content: 'L3 version\n' },
    { type: 'dir', path: 'merged3/subdir' },
    { type: 'file', path: 'merged3/subdir/in3', content: 'in3\n' },
    { type: 'dir', path: 'dir-then-file' },
    { type: 'file', path: 'dir-then-file/child', content: 'hidden by a file above\n' },
    { type: 'file', path: 'file-then-dir', content: 'hidden by a dir above\n' },
    { type: 'file', path: RICH.bigFile, content: pseudoRandomBytes(RICH.bigSize, RICH.bigSeed), mode: 0o644 },
    { type: 'dir', path: 'hardlinks' },
    { type: 'file', path: 'hardlinks/a', content: 'shared inode\n', uid: 1000, gid: 1000, mode: 0o640 },
    { type: 'hardlink', path: 'hardlinks/b', to: 'hardlinks/a' },
    { type: 'hardlink', path: 'hardlinks/c', to: 'hardlinks/a' }
  )
  for (let i = 0; i < 1500; i++) L3.push({ type: 'file', path: `${RICH.manyDir}/f${String(i).padStart(4, '0')}`, content: `f${i}\n` })
  for (let i = 0; i < 10; i++) L3.push({ type: 'file', path: `${RICH.manyDir}/w${i}`, content: `doomed ${i}\n` })

  // --- L2
  L2.push(
    { type: 'file', path: 'merged3/from2-a', content: 'from L2 a\n' },
    { type: 'file', path: 'merged3/shared', content: 'L2 version\n' },
    { type: 'file', path: 'merged3/subdir/in2', content: 'in2\n' },
    { type: 'file', path: 'dir-then-file', content: 'a file over a dir\n' },
    { type: 'dir', path: 'symlinks' },
    { type: 'symlink', path: 'symlinks/relative', target: '../etc/passwd' },
    { type: 'symlink', path: 'symlinks/absolute', target: '/etc/passwd' },
    { type: 'symlink', path: 'symlinks/dangling', target: 'does/not/exist' },
    { type: 'symlink', path: 'symlinks/outside', target: '../../etc' },
    { type: 'symlink', path: 'symlinks/to-dir', target: '../merged3' },
    { type: 'symlink', path: 'symlinks/owned', target: 'relative', uid: 65534, gid: 65534 },
    { type: 'file', path: 'symlinks/remove-me', content: 'whited out by L0\n' },
    { type: 'dir', path: 'special' },
    { type: 'fifo', path: 'special/fifo', mode: 0o620 },
    { type: 'chardev', path: 'special/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'blockdev', path: 'special/loop9', major: 7, minor: 9, mode: 0o660, gid: 6 },
    { type: 'hardlink', path: 'hardlinks-l2/x2', to: 'hardlinks-l2/x1' },
    { type: 'file', path: 'hardlinks-l2/x1', content: 'x\n' }
  )
  for (let i = 1500; i < 2000; i++) L2.push({ type: 'file', path: `${RICH.manyDir}/f${String(i).padStart(4, '0')}`, content: `f${i}\n` })

  // --- L1
  L1.push(
    { type: 'whiteout', path: 'etc/removed-file' },
    { type: 'file', path: 'etc/from-l1', content: 'L1\n' },
    { type: 'dir', path: 'opaque', opaque: true, mode: 0o755 },
    { type: 'file', path: 'opaque/new1', content: 'new1\n' },
    { type: 'file', path: 'merged3/from1-a', content: 'from L1 a\n' },
    { type: 'file', path: 'merged3/shared', content: 'L1 version wins\n' },
    { type: 'file', path: 'merged3/subdir/in1', content: 'in1\n' },
    { type: 'dir', path: 'file-then-dir', mode: 0o750 },
    { type: 'file', path: 'file-then-dir/child', content: 'dir over file\n' },
    { type: 'dir', path: 'xattrs', xattrs: { 'user.dir-comment': 'a dir with xattrs', 'trusted.custom': 'T' } },
    { type: 'file', path: 'xattrs/file', content: 'has xattrs\n', xattrs: { 'user.mime_type': 'text/plain', 'user.empty': '', 'user.binary': Buffer.from([0, 1, 2, 0xff, 0xfe]), 'trusted.secret': 'root only' } },
    { type: 'symlink', path: 'xattrs/link', target: 'file', xattrs: { 'trusted.on-link': 'lnk' } },
    { type: 'file', path: 'empty', content: '' },
    { type: 'dir', path: 'names' }
  )
  for (const n of RICH.oddNames) L1.push({ type: 'file', path: `names/${n}`, content: `name: ${n}\n` })
  L1.push({ type: 'file', path: `names/${RICH.longName}`, content: '255\n' })
  L1.push({ type: 'dir', path: `names/dir with space/${'ü'.repeat(10)}` })
  for (let i = 0; i < 10; i++) L1.push({ type: 'whiteout', path: `${RICH.manyDir}/w${i}` })
  L1.push({ type: 'file', path: `${richDeepPath()}/leaf.txt`, content: 'deep leaf\n' })

  // --- top layer L0
  L0.push(
    { type: 'whiteout', path: 'removed-dir' },
    { type: 'whiteout', path: 'symlinks/remove-me' },
    { type: 'file', path: 'etc/hosts', content: '127.0.0.1 localhost\n::1 localhost\n', mode: 0o644 },
    { type: 'dir', path: 'perms', mode: 0o755 },
    { type: 'file', path: 'perms/0000', content: 'no perms\n', mode: 0o000 },
    { type: 'file', path: 'perms/4755', content: '#!/bin/sh\n', mode: 0o4755 },
    { type: 'file', path: 'perms/2755', content: '#!/bin/sh\n', mode: 0o2755, gid: 50 },
    { type: 'dir', path: 'perms/1777', mode: 0o1777 },
    { type: 'file', path: 'perms/1777/inside', content: 'in sticky dir\n', mode: 0o600 },
    { type: 'file', path: 'perms/0600', content: 'secret\n', mode: 0o600 },
    { type: 'dir', path: 'perms/0000dir', mode: 0o000 },
    { type: 'dir', path: 'owners', uid: 65534, gid: 65534 },
    { type: 'file', path: 'owners/u1000', content: '1000\n', uid: 1000, gid: 1000 },
    { type: 'file', path: 'owners/u65534', content: 'nobody\n', uid: 65534, gid: 65534 },
    { type: 'file', path: 'owners/mixed', content: 'mixed\n', uid: 1000, gid: 65534 },
    { type: 'file', path: 'top-only', content: 'L0\n', mtime: 1234567890 }
  )
  // the deep chain also exists partly in L0 (merged at every level)
  L0.push({ type: 'file', path: `${richDeepPath()}/top-leaf.txt`, content: 'top leaf\n' })

  return {
    layers: [
      { name: 'L0', entries: L0 },
      { name: 'L1', entries: L1 },
      { name: 'L2', entries: L2 },
      { name: 'L3', entries: L3 }
    ]
  }
}
