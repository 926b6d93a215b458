// Differential testing of the write side: random lower stacks and random
// operation sequences (fast-check arbitraries), applied to the kernel's
// overlayfs (redirect_dir=on, the oracle) and to overlayts on identical copies
// of the same layers. Each operation's outcome (value or errno) must match,
// then the merged trees and the upper dirs must match; the one exception,
// modeled exactly, is FUSE passthrough's documented edge (reads through a
// descriptor opened read-only on a lower file before its copy-up: see "the
// passthrough edge" below). Besides path operations there are descriptors
// kept open across operations (fd*) and operations made by an unprivileged
// caller (asUser).
//
// Used by test/integration/differential.test.ts (small, shrinking) and by
// scripts/differential.mjs (many seeds).
import { constants, closeSync, fstatSync, ftruncateSync, type Stats, lchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, rmdirSync, symlinkSync, truncateSync, unlinkSync, writeSync, chmodSync } from 'node:fs'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { mknod, renameat2, utimensat, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from '../../src/overlay/sys/native.js'
import { lgetxattr, llistxattr, lremovexattr, lsetxattr } from '../../src/overlay/sys/xattr.js'
import { buildStack, DEFAULT_MTIME, type LayerEntry, type LayerSpec, type StackSpec } from './layers.js'
import { mountKernel, mountOverlayts, type TeardownHost } from './mounts.js'
import { devMajor, devMinor, diffSnapshots, isPrivateOverlayXattr, type SnapEntry } from './snapshot.js'
import { cleanupStale, removeTree, TMP_PREFIX } from './tmp.js'
import { prng } from './prng.js'
import { inUserxattrMode } from './userns.js'

// ---------------------------------------------------------------- operations

/** A merged path as its components (kept as an array so fast-check can shrink examples). */
export type PathParts = readonly string[]

export type Op =
  | { op: 'create', path: PathParts, mode: number, exclusive: boolean, data: string }
  | { op: 'write', path: PathParts, offset: number, data: string }
  | { op: 'append', path: PathParts, data: string }
  | { op: 'truncate', path: PathParts, size: number }
  | { op: 'openTrunc', path: PathParts }
  | { op: 'read', path: PathParts }
  | { op: 'stat', path: PathParts }
  | { op: 'readdir', path: PathParts }
  | { op: 'mkdir', path: PathParts, mode: number }
  | { op: 'rmdir', path: PathParts }
  | { op: 'unlink', path: PathParts }
  | { op: 'rename', from: PathParts, to: PathParts }
  | { op: 'link', from: PathParts, to: PathParts }
  | { op: 'symlink', target: string, path: PathParts }
  | { op: 'chmod', path: PathParts, mode: number }
  | { op: 'chown', path: PathParts, uid: number, gid: number }
  | { op: 'utimes', path: PathParts, atime: Time, mtime: Time }
  | { op: 'setxattr', path: PathParts, name: string, value: string }
  | { op: 'removexattr', path: PathParts, name: string }
  | { op: 'mkfifo', path: PathParts }
  /** renameat2 with one flag: 0, NOREPLACE, EXCHANGE or WHITEOUT (EINVAL on both) */
  | { op: 'rename2', from: PathParts, to: PathParts, flag: 'none' | 'noreplace' | 'exchange' | 'whiteout' }
  /** write through one name, then read through another (hardlinks) */
  | { op: 'writeRead', path: PathParts, other: PathParts, data: string }
  /** the chain of DEEP directories, made through the mount (mkdir -p) */
  | { op: 'mkdeep' }
  // Open descriptors that live across operations (copy-up, rename, unlink under them)
  | { op: 'fdOpen', slot: number, path: PathParts, write: boolean }
  | { op: 'fdRead', slot: number }
  | { op: 'fdWrite', slot: number, offset: number, data: string }
  | { op: 'fdStat', slot: number }
  | { op: 'fdTruncate', slot: number, size: number }
  | { op: 'fdClose', slot: number }
  /** `inner` made by an unprivileged caller (uid and gid 1000, no groups) */
  | { op: 'asUser', inner: Op }

export interface DiffCase {
  /** drives the random lower stack (not shrunk: shrinking works on the ops) */
  stackSeed: number
  ops: Op[]
}

const NAMES = ['a', 'b', 'c', 'd'] as const
/**
 * Names are bytes (byte strings, one char per byte): besides a..d the ops use
 * names that are not UTF-8, hold a space or a newline, or are 255 bytes long.
 */
const ODD_NAMES = ['\xff\xfe', '\x80', 'sp ace', 'nl\nx', 'L'.repeat(255)] as const
/**
 * The first component of a deep path: it stands for DEEP_PARTS, a chain of
 * directories 3,880 bytes long, so paths under it come within a few hundred
 * bytes of PATH_MAX, and the layer paths (upper, work: under a longer prefix
 * than the mount, see runCase) go over it.
 */
export const DEEP = '<DEEP>'
export const DEEP_PARTS: readonly string[] = [...Array.from({ length: 19 }, (_, i) => `deep${i}`.padEnd(200, '~')), 'end'.padEnd(60, '~')]
/** Padding in the layer paths (upper, work) that the mount's path does not have. */
const LAYER_PAD = 'p'.repeat(200)

/** A time as utimensat takes it: [sec, nsec]. */
export type Time = readonly [number, number]
/** Explicit times the ops set: ns fractions, before 1970 and far in the future. */
const EXPLICIT_TIMES: readonly Time[] = [[1000000000, 0], [1234567890, 500000000], [1700000000, 123456789], [-89560800, 500000000], [-2208988800, 999999999], [-1, 1], [32503680000, 987654321], [4102444800, 1]]
/** Lower layers' mtimes (whole seconds: the layer builder sets them with lutimes). */
const LOWER_MTIMES = [DEFAULT_MTIME, DEFAULT_MTIME, -89560800, 32503680000] as const
/** Every mtime (ns) that is deterministic: the layers' and the explicit ones. Anything else was "now". */
const KNOWN_MTIMES_NS = new Set([...LOWER_MTIMES.map(t => BigInt(t) * 1_000_000_000n), ...EXPLICIT_TIMES.map(([s, ns]) => BigInt(s) * 1_000_000_000n + BigInt(ns))])

const nameArb = fc.oneof({ arbitrary: fc.constantFrom(...NAMES), weight: 12 }, { arbitrary: fc.constantFrom(...ODD_NAMES), weight: 1 })
const pathArb = fc.oneof(
  { arbitrary: fc.array(nameArb, { minLength: 1, maxLength: 3 }), weight: 5 },
  { arbitrary: fc.array(nameArb, { minLength: 1, maxLength: 2 }).map(p => [DEEP, ...p]), weight: 1 }
)
const dataArb = fc.constantFrom('', 'x', 'hello', 'ABCDEFGHIJ', 'zz\n')
const fileModeArb = fc.constantFrom(0o644, 0o600, 0o755, 0o4755, 0o2750, 0o1777, 0o000)
const dirModeArb = fc.constantFrom(0o755, 0o700, 0o2775, 0o1777)
const idArb = fc.constantFrom(0, 1000, 65534)
const timeArb = fc.constantFrom(...EXPLICIT_TIMES)
const renameFlagArb = fc.constantFrom('none' as const, 'noreplace' as const, 'exchange' as const, 'exchange' as const, 'whiteout' as const)
// In a user namespace (userxattr) also a name in the overlay's own namespace, which the mount escapes.
const xattrNameArb = fc.constantFrom('user.x', 'user.y', 'trusted.t', ...(inUserxattrMode() ? ['user.overlay.e'] : []))
const slotArb = fc.constantFrom(0, 1)
const targetArb = fc.constantFrom('a', '../b', 'c/d', 'nowhere', '../../a/b', '.')

function rec<T extends Op['op'], R extends Record<string, fc.Arbitrary<unknown>>> (op: T, fields: R): fc.Arbitrary<{ op: T } & { [K in keyof R]: R[K] extends fc.Arbitrary<infer V> ? V : never }> {
  return fc.record({ op: fc.constant(op), ...fields }) as unknown as fc.Arbitrary<{ op: T } & { [K in keyof R]: R[K] extends fc.Arbitrary<infer V> ? V : never }>
}

const pathOpArbs = [
  { arbitrary: rec('create', { path: pathArb, mode: fileModeArb, exclusive: fc.boolean(), data: dataArb }), weight: 6 },
  { arbitrary: rec('write', { path: pathArb, offset: fc.constantFrom(0, 2, 20), data: dataArb }), weight: 3 },
  { arbitrary: rec('append', { path: pathArb, data: dataArb }), weight: 2 },
  { arbitrary: rec('truncate', { path: pathArb, size: fc.constantFrom(0, 1, 3, 100) }), weight: 2 },
  { arbitrary: rec('openTrunc', { path: pathArb }), weight: 1 },
  { arbitrary: rec('read', { path: pathArb }), weight: 2 },
  { arbitrary: rec('stat', { path: pathArb }), weight: 2 },
  { arbitrary: rec('readdir', { path: fc.array(fc.constantFrom(...NAMES), { minLength: 0, maxLength: 2 }) }), weight: 2 },
  { arbitrary: rec('mkdir', { path: pathArb, mode: dirModeArb }), weight: 6 },
  { arbitrary: rec('rmdir', { path: pathArb }), weight: 4 },
  { arbitrary: rec('unlink', { path: pathArb }), weight: 4 },
  { arbitrary: rec('rename', { from: pathArb, to: pathArb }), weight: 10 },
  { arbitrary: rec('link', { from: pathArb, to: pathArb }), weight: 3 },
  { arbitrary: rec('symlink', { target: targetArb, path: pathArb }), weight: 2 },
  { arbitrary: rec('chmod', { path: pathArb, mode: fileModeArb }), weight: 2 },
  { arbitrary: rec('chown', { path: pathArb, uid: idArb, gid: idArb }), weight: 2 },
  { arbitrary: rec('utimes', { path: pathArb, atime: timeArb, mtime: timeArb }), weight: 2 },
  { arbitrary: rec('setxattr', { path: pathArb, name: xattrNameArb, value: fc.constantFrom('1', 'two') }), weight: 2 },
  { arbitrary: rec('removexattr', { path: pathArb, name: xattrNameArb }), weight: 2 },
  { arbitrary: rec('mkfifo', { path: pathArb }), weight: 1 },
  { arbitrary: rec('rename2', { from: pathArb, to: pathArb, flag: renameFlagArb }), weight: 4 },
  { arbitrary: rec('writeRead', { path: pathArb, other: pathArb, data: dataArb }), weight: 3 },
  { arbitrary: rec('mkdeep', {}), weight: 1 }
]

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  ...pathOpArbs,
  { arbitrary: rec('asUser', { inner: fc.oneof(...pathOpArbs) }), weight: 8 },
  { arbitrary: rec('fdOpen', { slot: slotArb, path: pathArb, write: fc.boolean() }), weight: 4 },
  { arbitrary: rec('fdRead', { slot: slotArb }), weight: 3 },
  { arbitrary: rec('fdWrite', { slot: slotArb, offset: fc.constantFrom(0, 3), data: dataArb }), weight: 2 },
  { arbitrary: rec('fdStat', { slot: slotArb }), weight: 2 },
  { arbitrary: rec('fdTruncate', { slot: slotArb, size: fc.constantFrom(0, 2) }), weight: 1 },
  { arbitrary: rec('fdClose', { slot: slotArb }), weight: 1 }
)

/** A case for the tap test: any length up to `maxOps`, shrinkable. */
export function caseArb (maxOps: number): fc.Arbitrary<DiffCase> {
  return fc.record({
    stackSeed: fc.noShrink(fc.integer({ min: 0, max: 0x7fffffff })),
    ops: fc.array(opArb, { minLength: 1, maxLength: maxOps, size: 'max' })
  })
}

/** A case with exactly `nOps` operations (the seed runner's cases). */
export function fixedCaseArb (nOps: number): fc.Arbitrary<DiffCase> {
  return fc.record({
    stackSeed: fc.noShrink(fc.integer({ min: 0, max: 0x7fffffff })),
    ops: fc.array(opArb, { minLength: nOps, maxLength: nOps })
  })
}

/** A path for display: DEEP for the deep chain, other bytes escaped (JSON, one char per byte). */
function rel (parts: PathParts): string {
  const s = parts.join('/')
  return /^[\x21-\x7e]*$/.test(s) ? s : '"' + s.replace(/[^\x20-\x7e]|["\\]/g, c => c.charCodeAt(0) < 0x80 && c !== '\n' ? '\\' + c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).replace(/L{255}/g, 'L*255') + '"'
}

export function formatOp (o: Op): string {
  switch (o.op) {
    case 'create': return `create ${rel(o.path)} mode=${o.mode.toString(8)}${o.exclusive ? ' O_EXCL' : ' O_TRUNC'} data=${JSON.stringify(o.data)}`
    case 'write': return `write ${rel(o.path)} @${o.offset} ${JSON.stringify(o.data)}`
    case 'append': return `append ${rel(o.path)} ${JSON.stringify(o.data)}`
    case 'truncate': return `truncate ${rel(o.path)} ${o.size}`
    case 'mkdir': return `mkdir ${rel(o.path)} mode=${o.mode.toString(8)}`
    case 'rename': case 'link': return `${o.op} ${rel(o.from)} -> ${rel(o.to)}`
    case 'symlink': return `symlink ${rel(o.path)} -> ${JSON.stringify(o.target)}`
    case 'chmod': return `chmod ${rel(o.path)} ${o.mode.toString(8)}`
    case 'chown': return `lchown ${rel(o.path)} ${o.uid}:${o.gid}`
    case 'utimes': return `utimensat ${rel(o.path)} atime=${o.atime.join('.')} mtime=${o.mtime.join('.')}`
    case 'rename2': return `renameat2 ${rel(o.from)} -> ${rel(o.to)} ${o.flag}`
    case 'writeRead': return `write ${rel(o.path)} ${JSON.stringify(o.data)}, read ${rel(o.other)}`
    case 'mkdeep': return 'mkdir -p <DEEP>'
    case 'setxattr': return `lsetxattr ${rel(o.path)} ${o.name}=${JSON.stringify(o.value)}`
    case 'removexattr': return `lremovexattr ${rel(o.path)} ${o.name}`
    case 'fdOpen': return `fd${o.slot} = open ${rel(o.path)} ${o.write ? 'O_RDWR' : 'O_RDONLY'}`
    case 'fdRead': case 'fdStat': case 'fdClose': return `${o.op.slice(2).toLowerCase()} fd${o.slot}`
    case 'fdWrite': return `pwrite fd${o.slot} @${o.offset} ${JSON.stringify(o.data)}`
    case 'fdTruncate': return `ftruncate fd${o.slot} ${o.size}`
    case 'asUser': return `as 1000:1000: ${formatOp(o.inner)}`
    default: return `${o.op} ${rel(o.path)}`
  }
}

const TYPE_NAMES: Record<number, string> = {
  [constants.S_IFREG]: 'file', [constants.S_IFDIR]: 'dir', [constants.S_IFLNK]: 'symlink', [constants.S_IFIFO]: 'fifo', [constants.S_IFCHR]: 'chr'
}

/** What a stat shows that both implementations must agree on (no times, no inode numbers, no dir sizes/nlinks). */
function describeStat (p: string): string {
  return describe(lstatSync(Buffer.from(p, 'latin1')), p)
}

function describe (st: Stats, p: string | undefined): string {
  const type = TYPE_NAMES[st.mode & constants.S_IFMT] ?? 'other'
  let s = `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
  if (type !== 'dir') s += ` nlink=${st.nlink}`
  if (type === 'file') s += ` size=${st.size}`
  if (type === 'symlink' && p !== undefined) s += ` -> ${JSON.stringify(readlinkSync(Buffer.from(p, 'latin1'), { encoding: 'buffer' }).toString('latin1'))}`
  return s
}

/** Opens never block: O_NONBLOCK, because a generated name may be a fifo with no partner. */
function withFd<T> (p: string, flags: number, fn: (fd: number) => T, mode?: number): T {
  const fd = openSync(Buffer.from(p, 'latin1'), flags | constants.O_NONBLOCK, mode)
  try { return fn(fd) } finally { closeSync(fd) }
}

function readAll (fd: number): Buffer {
  const chunks: Buffer[] = []
  for (;;) {
    const buf = Buffer.alloc(4096)
    const n = readSync(fd, buf)
    if (n === 0) return Buffer.concat(chunks)
    chunks.push(buf.subarray(0, n))
  }
}

/** Descriptors the fd* ops keep open between operations, by slot. */
export class OpenFiles {
  private readonly fds = new Map<number, number>()
  /** Slots whose descriptor reads the lower copy of its file (see runCase): fdRead's answer from that copy. */
  private readonly lowerReads = new Map<number, string>()
  get (slot: number): number {
    const fd = this.fds.get(slot)
    if (fd === undefined) throw Object.assign(new Error('no descriptor in this slot'), { code: 'EBADF' })
    return fd
  }

  set (slot: number, fd: number): void { this.close(slot); this.fds.set(slot, fd) }
  close (slot: number): void {
    const fd = this.fds.get(slot)
    this.fds.delete(slot)
    this.lowerReads.delete(slot)
    if (fd !== undefined) closeSync(fd)
  }

  /** Marks the slot's descriptor as one that keeps reading the lower copy, whose fdRead answer is `answer`. */
  readsLowerCopy (slot: number, answer: string): void {
    if (!this.fds.has(slot)) throw new Error(`no descriptor in slot ${slot}`)
    this.lowerReads.set(slot, answer)
  }

  /** fdRead's answer through the lower copy, for a slot marked by readsLowerCopy; else undefined. */
  lowerCopyRead (slot: number): string | undefined { return this.lowerReads.get(slot) }

  /** Before snapshots and unmounts: an open file keeps a mount busy. */
  closeAll (): void { for (const slot of [...this.fds.keys()]) this.close(slot) }
}

/** Runs `fn` with effective uid/gid 1000 and no supplementary groups (the test runs as root), then back. */
function asUnprivileged<T> (fn: () => T): T {
  const groups = process.getgroups?.() ?? []
  process.setgroups?.([])
  process.setegid?.(1000)
  process.seteuid?.(1000)
  try { return fn() } finally {
    process.seteuid?.(0)
    process.setegid?.(0)
    process.setgroups?.(groups)
  }
}

/** A path's components with DEEP expanded to the deep chain's. */
function expand (parts: PathParts): readonly string[] {
  return parts[0] === DEEP ? [...DEEP_PARTS, ...parts.slice(1)] : parts
}

/** What fdRead answers for a descriptor: its first 256 bytes (pread at 0, so the offset stays). */
function readHead (fd: number): string {
  const buf = Buffer.alloc(256)
  const n = readSync(fd, buf, 0, buf.length, 0)
  return JSON.stringify(buf.subarray(0, n).toString('latin1'))
}

/** Runs `o` under the mount `root`: the value it returns, or the errno code. */
export function applyOp (root: string, o: Op, open: OpenFiles = new OpenFiles()): string {
  if (o.op === 'asUser') return asUnprivileged(() => applyOp(root, o.inner, open))
  // Byte strings (one char per byte); node:fs gets them as Buffers (B), the addon as they are.
  const at = (parts: PathParts): string => root + '/' + expand(parts).join('/')
  const B = (p: string): Buffer => Buffer.from(p, 'latin1')
  try {
    const value = ((): string => {
      switch (o.op) {
        case 'create': {
          const flags = constants.O_CREAT | constants.O_WRONLY | (o.exclusive ? constants.O_EXCL : constants.O_TRUNC)
          withFd(at(o.path), flags, fd => writeSync(fd, o.data), o.mode)
          return describeStat(at(o.path))
        }
        case 'write': return String(withFd(at(o.path), constants.O_WRONLY, fd => writeSync(fd, o.data, o.offset)))
        case 'append': return String(withFd(at(o.path), constants.O_WRONLY | constants.O_APPEND, fd => writeSync(fd, o.data)))
        case 'truncate': truncateSync(B(at(o.path)), o.size); return describeStat(at(o.path))
        case 'openTrunc': withFd(at(o.path), constants.O_RDWR | constants.O_TRUNC, fd => ftruncateSync(fd, 0)); return describeStat(at(o.path))
        case 'read': return JSON.stringify(withFd(at(o.path), constants.O_RDONLY, readAll).toString('latin1'))
        case 'stat': return describeStat(at(o.path))
        case 'readdir': return JSON.stringify(readdirSync(B(at(o.path)), { encoding: 'buffer' }).sort(Buffer.compare).map(n => n.toString('latin1')))
        case 'mkdir': mkdirSync(B(at(o.path)), o.mode); return describeStat(at(o.path))
        case 'rmdir': rmdirSync(B(at(o.path))); return ''
        case 'unlink': unlinkSync(B(at(o.path))); return ''
        case 'rename': renameSync(B(at(o.from)), B(at(o.to))); return describeStat(at(o.to))
        case 'rename2': {
          const flags = { none: 0, noreplace: RENAME_NOREPLACE, exchange: RENAME_EXCHANGE, whiteout: RENAME_WHITEOUT }[o.flag]
          renameat2(at(o.from), at(o.to), flags)
          return o.flag === 'exchange' ? `${describeStat(at(o.from))} / ${describeStat(at(o.to))}` : describeStat(at(o.to))
        }
        case 'link': linkSync(B(at(o.from)), B(at(o.to))); return describeStat(at(o.to))
        case 'symlink': symlinkSync(B(o.target), B(at(o.path))); return describeStat(at(o.path))
        case 'chmod': chmodSync(B(at(o.path)), o.mode); return describeStat(at(o.path))
        case 'chown': lchownSync(B(at(o.path)), o.uid, o.gid); return describeStat(at(o.path))
        case 'utimes': {
          utimensat(at(o.path), o.atime[0], o.atime[1], o.mtime[0], o.mtime[1])
          const st = lstatSync(B(at(o.path)), { bigint: true })
          return `${describeStat(at(o.path))} atime=${st.atimeNs} mtime=${st.mtimeNs}`
        }
        case 'setxattr': lsetxattr(at(o.path), o.name, Buffer.from(o.value)); return ''
        case 'removexattr': lremovexattr(at(o.path), o.name); return ''
        case 'mkfifo': mknod(at(o.path), constants.S_IFIFO | 0o644, 0); return describeStat(at(o.path))
        case 'writeRead': {
          const n = withFd(at(o.path), constants.O_WRONLY, fd => writeSync(fd, o.data, 1))
          return `${n} ${JSON.stringify(withFd(at(o.other), constants.O_RDONLY, readAll).toString('latin1'))}`
        }
        case 'mkdeep': {
          let p = root
          for (const part of DEEP_PARTS) {
            p += '/' + part
            try { mkdirSync(B(p), 0o755) } catch (e) { if ((e as { code?: string }).code !== 'EEXIST') throw e }
          }
          return describeStat(p)
        }
        case 'fdOpen': open.set(o.slot, openSync(B(at(o.path)), (o.write ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK)); return ''
        case 'fdRead': return readHead(open.get(o.slot))
        case 'fdWrite': return String(writeSync(open.get(o.slot), o.data, o.offset))
        case 'fdStat': return describe(fstatSync(open.get(o.slot)), undefined)
        case 'fdTruncate': ftruncateSync(open.get(o.slot), o.size); return ''
        case 'fdClose': open.close(o.slot); return ''
        default: throw new Error('unreachable: asUser is handled above')
      }
    })()
    return `ok ${value}`.trimEnd()
  } catch (e) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    throw e
  }
}

/**
 * The one difference the README documents as libfuse 2's (high-level API):
 * fstat of a fifo, socket or device whose name was removed while it was
 * open. The kernel opens special files itself, so libfuse has no handle and
 * no name left for it, and answers ENOENT. Nothing else is let through.
 */
function isKnownLibfuse2Limit (op: Op, want: string, got: string): boolean {
  return op.op === 'fdStat' && got === 'ENOENT' && /^ok (fifo|socket|chr|blk) /.test(want)
}

// ---------------------------------------------------------------- random lower stacks


/**
 * 2 or 3 lower layers over the names a..d, nested up to depth 3: files (odd
 * modes, owners, xattrs), dirs (some opaque), symlinks, fifos, whiteouts and
 * hardlinks, so that lower dirs merge, get hidden and get whited out.
 */
export function randomStack (seed: number): StackSpec {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const layerCount = rnd() < 0.5 ? 2 : 3
  const deepLayer = rnd() < 0.5 ? Math.floor(rnd() * layerCount) : -1
  const layers: LayerSpec[] = []
  for (let l = 0; l < layerCount; l++) {
    const entries: LayerEntry[] = []
    const files: string[] = []
    const fill = (dir: string, depth: number): void => {
      for (const name of NAMES) {
        const path = dir === '' ? name : `${dir}/${name}`
        const r = rnd()
        if (r < 0.35) continue
        if (r < 0.55) {
          const xattrs: Record<string, string> | undefined = rnd() < 0.2 ? { 'user.x': 'lower' } : rnd() < 0.1 ? { [inUserxattrMode() ? 'user.t' : 'trusted.t']: 'T' } : undefined
          entries.push({ type: 'file', path, content: `${path}@L${l}\n`, mode: pick([0o644, 0o600, 0o755, 0o4755]), uid: pick([0, 0, 1000]), gid: pick([0, 0, 1000]), mtime: pick(LOWER_MTIMES), ...(xattrs !== undefined ? { xattrs } : {}) })
          files.push(path)
        } else if (r < 0.8 && depth < 3) {
          entries.push({ type: 'dir', path, mode: pick([0o755, 0o755, 0o700, 0o2775]), uid: pick([0, 0, 1000]), mtime: pick(LOWER_MTIMES), opaque: rnd() < 0.15, ...(rnd() < 0.15 ? { xattrs: { 'user.d': 'dir' } } : {}) })
          fill(path, depth + 1)
        } else if (r < 0.84) {
          entries.push({ type: 'symlink', path, target: pick(['a', '../b', 'nowhere']) })
        } else if (r < 0.9) {
          entries.push({ type: 'whiteout', path })
        } else if (r < 0.98 && files.length > 0) {
          // lower hardlinks, so that every kind of change copies one up
          entries.push({ type: 'hardlink', path, to: pick(files) })
        } else {
          entries.push({ type: 'fifo', path })
        }
      }
    }
    fill('', 1)
    // Half the stacks hold the deep chain (3,880 bytes) in one layer, with a few entries in it.
    if (l === deepLayer) {
      DEEP_PARTS.forEach((_, i) => entries.push({ type: 'dir', path: DEEP_PARTS.slice(0, i + 1).join('/'), mtime: pick(LOWER_MTIMES) }))
      const d = DEEP_PARTS.join('/')
      entries.push({ type: 'file', path: `${d}/a`, content: `deep a@L${l}\n`, mtime: pick(LOWER_MTIMES) })
      entries.push({ type: 'hardlink', path: `${d}/b`, to: `${d}/a` })
      entries.push({ type: 'dir', path: `${d}/c`, mtime: pick(LOWER_MTIMES) })
      entries.push({ type: 'file', path: `${d}/c/d`, content: `deep c/d@L${l}\n`, xattrs: { 'user.x': 'deep' } })
    }
    layers.push({ name: `L${l}`, entries })
  }
  return { layers: layers.map((layer, l) => ({ ...layer, entries: layer.entries.filter(e => e.type !== 'whiteout' || whiteoutInMergedDir(layers, l, e.path)) })) }
}

/**
 * Whether the parent of a whiteout at `path` in layer `l` is a merged
 * directory (it is also a directory in the layer just below). The kernel
 * lists a whiteout in a directory that only one layer holds (it reads such a
 * directory directly) while lookups of its name fail: layers that whiteout
 * nothing there are not what overlays are made of, so they are not generated.
 */
function whiteoutInMergedDir (layers: LayerSpec[], l: number, path: string): boolean {
  const parts = path.split('/').slice(0, -1)
  if (parts.length === 0) return true
  const below = layers[l + 1]
  if (below === undefined) return false
  const dirs = (layer: LayerSpec): Map<string, boolean> => new Map(layer.entries.flatMap(e => e.type === 'dir' ? [[e.path, e.opaque === true] as [string, boolean]] : []))
  const here = dirs(layers[l] as LayerSpec)
  const under = dirs(below)
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join('/')
    if (here.get(p) !== false || !under.has(p)) return false
  }
  return true
}

// ---------------------------------------------------------------- running a case

/** Teardowns for code that runs outside tap (the seed runner). */
export class Teardowns implements TeardownHost {
  private readonly fns: Array<() => void | Promise<void>> = []
  teardown (fn: () => void | Promise<void>): void { this.fns.push(fn) }
  /** Runs every teardown (last registered first), even when one fails. */
  async run (): Promise<void> {
    const errors: unknown[] = []
    for (const fn of this.fns.splice(0).reverse()) {
      try { await fn() } catch (e) { errors.push(e) }
    }
    if (errors.length > 0) throw errors[0]
  }
}

export interface CaseResult {
  ok: boolean
  /** index of the first op whose outcome differed, if any */
  divergedAt?: number
  /** readable report of every difference */
  problems: string[]
  /** whether the overlayts mount used FUSE passthrough (its log's "mounted" line) */
  passthrough?: boolean
  /**
   * Reads compared with the lower copy instead of the kernel's answer, where
   * the two differ (see "the passthrough edge" below)
   */
  modeledReads?: number
}

export interface RunCaseOptions {
  label?: string
  keepGoing?: boolean
  /**
   * Model the passthrough edge (default true; it applies only when the mount
   * uses passthrough). false compares every read with the kernel's answer.
   */
  passthroughModel?: boolean
}

const O_PATH = 0o10000000

// ---------------------------------------------------------------- the passthrough edge
//
// The one semantic edge of FUSE passthrough, documented in the README
// ("FUSE transports" > "The kernel transport" > the "Passthrough" bullet) and
// required: a read-only descriptor opened on a lower file before another open
// copied it up keeps reading the lower copy (fuse-overlayfs behaves the same).
// The kernel gives such a node a backing file, the lower file, for all its
// opens; the copy gets a new node. The kernel's overlayfs instead moves the
// descriptor to the copy, so once the copy's data changes the two answer
// reads through that descriptor differently.
//
// The model, used only when the overlayts mount has passthrough:
// - an fdOpen read-only (the op never adds O_TRUNC) that reaches a regular
//   file with no entry in overlayts' upper dir yet (its path resolved as
//   open(2) does: symlinks followed) marks its slot, with the answer fdRead
//   gives through the lower copy: read at open through the kernel's
//   descriptor, while the file is still the lower one. Lower files never
//   change, so that answer holds as long as the descriptor is open.
// - an fdRead through a marked slot must answer exactly that. Where the
//   kernel's answer differs (only after a copy-up: nothing else changes a
//   lower file's data), the lower copy, not the kernel, is the reference for
//   that op, and runCase counts it (modeledReads).
// Every other answer is compared with the kernel's as it is: fstat through a
// marked descriptor too (overlayts answers it with the copy's attributes, as
// the kernel does), and the merged trees and the uppers.

/**
 * The components, relative to `root`, of the object that open(2) of
 * root/parts reaches: symlinks followed (relative targets; '..' physical, as
 * the kernel resolves it). Undefined if the walk leaves `root`, loops, or
 * fails.
 */
function resolveUnder (root: string, parts: readonly string[]): string[] | undefined {
  const out: string[] = []
  const todo = [...parts]
  let links = 0
  try {
    while (todo.length > 0) {
      const name = todo.shift() as string
      if (name === '' || name === '.') continue
      if (name === '..') {
        if (out.length === 0) return undefined
        out.pop()
        continue
      }
      const p = Buffer.from(root + '/' + [...out, name].join('/'), 'latin1')
      if (!lstatSync(p).isSymbolicLink()) { out.push(name); continue }
      const target = readlinkSync(p, { encoding: 'buffer' }).toString('latin1')
      if (++links > 40 || target.startsWith('/')) return undefined
      todo.unshift(...target.split('/'))
    }
    return out
  } catch {
    return undefined
  }
}

/**
 * lstat of root/parts, or undefined when nothing is there (ENOENT, ENOTDIR).
 * Past a few KiB the walk goes on through /proc/self/fd of an O_PATH
 * descriptor: an upper path (under LAYER_PAD) can be longer than PATH_MAX.
 */
function lstatBelow (root: string, parts: readonly string[]): Stats | undefined {
  const fds: number[] = []
  try {
    let dir = root
    for (const part of parts.slice(0, -1)) {
      if (dir.length + part.length > 2000) {
        const fd = openSync(Buffer.from(dir, 'latin1'), O_PATH | constants.O_DIRECTORY)
        fds.push(fd)
        dir = `/proc/self/fd/${fd}`
      }
      dir += '/' + part
    }
    return lstatSync(Buffer.from(parts.length > 0 ? dir + '/' + (parts[parts.length - 1] as string) : dir, 'latin1'))
  } catch (e) {
    const code = (e as { code?: unknown }).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw e
  } finally {
    for (const fd of fds) closeSync(fd)
  }
}

/**
 * After an fdOpen that succeeded on both sides: if the passthrough edge can
 * apply to the new descriptor (read-only, a regular file, not copied up yet in
 * overlayts' upper `oUpper`), the answer fdRead gives through the lower copy,
 * read now through the kernel's descriptor; else undefined.
 */
function lowerCopyAnswer (kMerged: string, oUpper: string, op: Extract<Op, { op: 'fdOpen' }>, openK: OpenFiles): string | undefined {
  if (op.write) return undefined
  const kfd = openK.get(op.slot)
  if (!fstatSync(kfd).isFile()) return undefined
  const parts = resolveUnder(kMerged, expand(op.path))
  if (parts === undefined || parts.length === 0) return undefined
  if (lstatBelow(oUpper, parts) !== undefined) return undefined
  return `ok ${readHead(kfd)}`
}

/** The overlayts daemon's "mounted" log line: whether it mounted with FUSE passthrough, and its upper's marker form. */
function mountedLine (logFile: string): { passthrough: boolean, markers: unknown } {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    const rec = JSON.parse(line) as { msg?: unknown, passthrough?: unknown, markers?: unknown }
    if (rec.msg === 'mounted') return { passthrough: rec.passthrough === true, markers: rec.markers }
  }
  throw new Error(`the overlayts daemon logged no "mounted" line in ${logFile}`)
}

/** Mtimes that are "now" at some point differ between any two runs: only the deterministic ones are compared. */
export function normalizeTimes (entries: SnapEntry[]): SnapEntry[] {
  return entries.map(e => (e.mtimeNs === undefined || KNOWN_MTIMES_NS.has(BigInt(e.mtimeNs)) ? e : { ...e, mtimeNs: 'now' }))
}

/**
 * Every entry under `root`, byte for byte: paths are byte strings (one char
 * per byte; shown through JSON where they are not printable ASCII), xattr
 * names and values as bytes, file data hashed. Directories deeper than a few
 * KiB are reached through /proc/self/fd of an O_PATH descriptor, so trees
 * deeper than PATH_MAX are read too. Never follows a symlink. With `upper`,
 * whiteouts are recorded as such and the private bookkeeping xattrs (see
 * isPrivateOverlayXattr) are dropped. Directory sizes, nlinks and times are
 * not recorded; file mtimes are.
 */
export function snapshotBytes (root: string, upper: boolean): SnapEntry[] {
  const entries: SnapEntry[] = []
  const show = (rel: string): string => /^[\x20-\x7e]*$/.test(rel) ? rel : rel.replace(/[^\x20-\x7e]|\\/g, c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  const visit = (dir: string, rel: string): void => {
    const B = (name: string): Buffer => Buffer.from(dir + '/' + name, 'latin1')
    const names = readdirSync(Buffer.from(dir, 'latin1'), { encoding: 'buffer' }).map(n => n.toString('latin1')).sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')))
    for (const name of names) {
      const r = rel === '' ? name : rel + '/' + name
      const st = lstatSync(B(name), { bigint: true })
      const type = TYPE_NAMES[Number(st.mode) & constants.S_IFMT] ?? 'other'
      if (upper && type === 'chr' && st.rdev === 0n) { entries.push({ path: show(r), type: 'whiteout', mode: '0000', uid: 0, gid: 0 }); continue }
      const e: SnapEntry = { path: show(r), type: type as SnapEntry['type'], mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'), uid: Number(st.uid), gid: Number(st.gid) }
      if (type === 'file') {
        e.size = Number(st.size)
        e.sha256 = createHash('sha256').update(readFileSync(B(name))).digest('hex')
      }
      if (type === 'symlink') e.target = JSON.stringify(readlinkSync(B(name), { encoding: 'buffer' }).toString('latin1'))
      if (type === 'chr') e.rdev = `${devMajor(st.rdev)}:${devMinor(st.rdev)}`
      if (type !== 'dir') { e.nlink = Number(st.nlink); e.mtimeNs = st.mtimeNs.toString() }
      const x: Record<string, string> = {}
      for (const xn of llistxattr(dir + '/' + name).sort()) {
        if (upper && isPrivateOverlayXattr(xn)) continue
        x[JSON.stringify(xn)] = lgetxattr(dir + '/' + name, xn)?.toString('hex') ?? '(gone)'
      }
      if (Object.keys(x).length > 0) e.xattrs = x
      entries.push(e)
      if (type === 'dir') {
        if (dir.length + name.length < 2048) { visit(dir + '/' + name, r); continue }
        const fd = openSync(B(name), O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW)
        try { visit(`/proc/self/fd/${fd}`, r) } finally { closeSync(fd) }
      }
    }
  }
  visit(root, '')
  return entries
}

/**
 * Builds the case's stack twice, mounts the kernel's overlayfs on one copy
 * and overlayts on the other, applies the ops to both and compares. Always
 * unmounts and removes its directories.
 */
export async function runCase (c: DiffCase, opts: RunCaseOptions = {}): Promise<CaseResult> {
  await cleanupStale()
  await mkdir(TMP_PREFIX, { recursive: true })
  const base = await mkdtemp(join(TMP_PREFIX, `${process.pid}-${opts.label ?? 'diff'}-`))
  const mounts = new Teardowns()
  try {
    const spec = randomStack(c.stackSeed)
    const sides = { kernel: join(base, 'k'), overlayts: join(base, 'o') }
    const built: Record<keyof typeof sides, { lowers: string[], upper: string, work: string, merged: string }> = {
      kernel: { lowers: [], upper: '', work: '', merged: '' },
      overlayts: { lowers: [], upper: '', work: '', merged: '' }
    }
    for (const side of ['kernel', 'overlayts'] as const) {
      const dir = sides[side]
      const stack = await buildStack(join(dir, 'layers'), spec, { form: 'kernel' })
      // upper and work under a longer prefix than the mount: a deep merged path the test
      // process can still name is a layer path of PATH_MAX or more for the overlay.
      const b = { lowers: stack.lowers, upper: join(dir, LAYER_PAD, 'upper'), work: join(dir, LAYER_PAD, 'work'), merged: join(dir, 'merged') }
      for (const d of [b.upper, b.work, b.merged]) await mkdir(d, { mode: 0o755, recursive: true })
      built[side] = b
    }
    const k = built.kernel
    const o = built.overlayts
    await mountKernel(mounts, { lower: k.lowers, upper: k.upper, work: k.work, merged: k.merged, redirectDir: true })
    // The default options (the kernel transport, its long caches, passthrough):
    // what a user gets. OVERLAYTS_DIFF_OPTS adds -o options (e.g. passthrough=off).
    const logFile = join(base, 'overlayts.log')
    const extra = [...(process.env.OVERLAYTS_DIFF_OPTS ? ['-o', process.env.OVERLAYTS_DIFF_OPTS] : []), '--log-file', logFile]
    await mountOverlayts(mounts, { lower: o.lowers, upper: o.upper, work: o.work, merged: o.merged, extra })
    const mounted = mountedLine(logFile)
    const passthrough = mounted.passthrough
    // In a user namespace the daemon must find on its own that the upper takes the userxattr form.
    const wantMarkers = inUserxattrMode() ? 'userxattr' : 'kernel'
    if (mounted.markers !== wantMarkers && process.env.OVERLAYTS_DIFF_OPTS === undefined) throw new Error(`the daemon chose the ${String(mounted.markers)} marker form, not ${wantMarkers}`)
    // The passthrough edge (README, "Passthrough" bullet; see the comment above resolveUnder).
    // In a user namespace the kernel refuses backing files (CAP_SYS_ADMIN outside): the
    // daemon negotiates passthrough but serves every file itself, so the edge never applies.
    const modelEdge = passthrough && opts.passthroughModel !== false && !inUserxattrMode()
    let modeledReads = 0

    const problems: string[] = []
    let divergedAt: number | undefined
    const oldMask = process.umask(0o022)
    const openK = new OpenFiles()
    const openO = new OpenFiles()
    try {
      for (let i = 0; i < c.ops.length; i++) {
        const op = c.ops[i] as Op
        const want = applyOp(k.merged, op, openK)
        const got = applyOp(o.merged, op, openO)
        // The passthrough edge (README, "FUSE transports" > "Passthrough": a
        // read-only descriptor opened on a lower file before another open
        // copied it up keeps reading the lower copy): a read through a
        // descriptor marked at its open is compared with the lower copy's
        // answer, not the kernel's. Nothing else is.
        let expected = want
        let note = ''
        const lower = modelEdge && op.op === 'fdRead' ? openO.lowerCopyRead(op.slot) : undefined
        if (lower !== undefined && lower !== want) {
          expected = lower
          note = ` (the descriptor was opened read-only on a lower file: it keeps reading the lower copy, ${lower}; README "Passthrough")`
          modeledReads++
        }
        if (got !== expected && !isKnownLibfuse2Limit(op, want, got)) {
          problems.push(`op #${i} ${formatOp(op)}: kernel=${want} overlayts=${got}${note}`)
          divergedAt ??= i
          if (opts.keepGoing !== true) break
        }
        if (modelEdge && op.op === 'fdOpen' && want === 'ok' && got === 'ok') {
          const answer = lowerCopyAnswer(k.merged, o.upper, op, openK)
          if (answer !== undefined) openO.readsLowerCopy(op.slot, answer)
        }
      }
    } finally {
      process.umask(oldMask)
      openK.closeAll()
      openO.closeAll()
    }

    const mergedK = normalizeTimes(snapshotBytes(k.merged, false))
    const mergedO = normalizeTimes(snapshotBytes(o.merged, false))
    for (const d of diffSnapshots(mergedO, mergedK, { aName: 'overlayts', bName: 'kernel' })) problems.push(`merged ${d}`)
    await mounts.run() // unmount before reading the uppers: the kernel's upper is final then
    // With OVERLAYTS_DIFF_OPTS=upper_form=oci the uppers differ by design (.wh. files): only the answers and merged trees count.
    if (!/(^|,)upper_form=oci(,|$)/.test(process.env.OVERLAYTS_DIFF_OPTS ?? '')) {
      const upperK = normalizeTimes(snapshotBytes(k.upper, true))
      const upperO = normalizeTimes(snapshotBytes(o.upper, true))
      for (const d of diffSnapshots(upperO, upperK, { aName: 'overlayts', bName: 'kernel' })) problems.push(`upper ${d}`)
    }
    return { ok: problems.length === 0, ...(divergedAt !== undefined ? { divergedAt } : {}), problems, passthrough, modeledReads }
  } finally {
    try { await mounts.run() } finally { await removeTree(base) }
  }
}

/** A failing case as a readable reproducer. */
export function formatCase (c: DiffCase, r?: CaseResult): string {
  const lines = [`stackSeed=${c.stackSeed} (randomStack), ${c.ops.length} ops:`]
  const upTo = r?.divergedAt !== undefined ? r.divergedAt + 1 : c.ops.length
  c.ops.slice(0, upTo).forEach((op, i) => lines.push(`  #${i} ${formatOp(op)}`))
  if (upTo < c.ops.length) lines.push(`  (${c.ops.length - upTo} more ops not shown)`)
  if (r !== undefined) lines.push('differences:', ...r.problems.map(p => '  ' + p))
  return lines.join('\n')
}

/** Property body: throws a readable reproducer when the implementations differ. */
export async function checkCase (c: DiffCase, opts: { label?: string } = {}): Promise<void> {
  const r = await runCase(c, opts.label !== undefined ? { label: opts.label } : {})
  if (r.ok) return
  throw new Error('overlayts differs from the kernel\n' + formatCase(c, r))
}

// ---------------------------------------------------------------- the seed runner

export interface SeedRunOptions {
  seeds: number
  ops: number
  /** first seed (seeds are firstSeed .. firstSeed + seeds - 1) */
  firstSeed?: number
  /** shrink each failing seed with fast-check (slow: one pair of mounts per try) */
  shrink?: boolean
  log?: (line: string) => void
}

/** Runs one fixed-length case per seed; prints failures and the summary line. Returns the failed seeds. */
export async function runSeeds (o: SeedRunOptions): Promise<number[]> {
  const log = o.log ?? ((l: string) => { process.stdout.write(l + '\n') })
  const first = o.firstSeed ?? 1
  const failed: number[] = []
  for (let seed = first; seed < first + o.seeds; seed++) {
    const [c] = fc.sample(fixedCaseArb(o.ops), { seed, numRuns: 1 }) as [DiffCase]
    let r: CaseResult
    try {
      r = await runCase(c, { label: `seed${seed}` })
    } catch (e) {
      r = { ok: false, problems: [`the run itself failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`] }
    }
    if (r.ok) { log(`seed ${seed}: ok${(r.modeledReads ?? 0) > 0 ? ` (${r.modeledReads} read(s) through a descriptor on a lower copy modeled)` : ''}`); continue }
    failed.push(seed)
    log(`seed ${seed}: FAILED\n${formatCase(c, r)}`)
    if (o.shrink === true) log(`seed ${seed}: shrunk:\n${await shrink(c)}`)
  }
  log(`${o.seeds} seeds, ${o.ops} ops each: ${o.seeds - failed.length} passed, ${failed.length} failed` +
    (failed.length > 0 ? ` (seeds ${failed.join(' ')})` : ''))
  return failed
}

/** Shrinks a failing case with fast-check, starting from it as an example. */
async function shrink (c: DiffCase): Promise<string> {
  const out = await fc.check(fc.asyncProperty(caseArb(c.ops.length), async (x) => { await checkCase(x, { label: 'shrink' }) }), {
    examples: [[c]], numRuns: 1, interruptAfterTimeLimit: 600_000
  })
  if (!out.failed || out.counterexample === null) return '(did not fail again)'
  const [small] = out.counterexample
  return formatCase(small, await runCase(small, { label: 'shrunk' }))
}
