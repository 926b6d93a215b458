// Deterministic snapshots of a directory tree (a merged view, a layer or an
// upper dir) and readable diffs between two snapshots.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { run } from './exec.js'

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk' | 'whiteout'

export interface SnapEntry {
  /** relative path, '.' for the root */
  path: string
  type: EntryType
  /** permission bits incl. suid/sgid/sticky, as 4 octal digits */
  mode: string
  uid: number
  gid: number
  /** files only */
  size?: number
  /** files only */
  sha256?: string
  /** symlinks only */
  target?: string
  /** devices only, "major:minor" */
  rdev?: string
  /** non-dirs only */
  nlink?: number
  /** name -> hex value (only when the entry has any) */
  xattrs?: Record<string, string>
  /** non-dirs only, when asked; nanoseconds as a decimal string */
  mtimeNs?: string
}

export interface SnapshotOptions {
  /** read xattrs (default true) */
  xattrs?: boolean
  /** drop every trusted.overlay.* xattr (for looking at raw layers) */
  hideOverlayXattrs?: boolean
  /** record mtime (ns) of non-dirs */
  mtime?: boolean
  /** record nlink of non-dirs (default true) */
  nlink?: boolean
  /** drop entries for which this returns false (relative path) */
  filter?: (relPath: string) => boolean
}

export function devMajor (dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn))
}
export function devMinor (dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn))
}

function typeOf (mode: bigint): EntryType {
  switch (Number(mode) & 0o170000) {
    case 0o100000: return 'file'
    case 0o040000: return 'dir'
    case 0o120000: return 'symlink'
    case 0o010000: return 'fifo'
    case 0o140000: return 'socket'
    case 0o020000: return 'chr'
    case 0o060000: return 'blk'
    default: throw new Error(`unknown file type in mode ${mode.toString(8)}`)
  }
}

export async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** Undo getfattr's quoting: "\ooo" octal escapes and "\\" for a backslash. Works on bytes. */
export function unquoteGetfattr (s: Buffer): Buffer {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as number
    if (c === 0x5c && i + 1 < s.length) {
      if (s[i + 1] === 0x5c) { out.push(0x5c); i++; continue }
      const oct = s.subarray(i + 1, i + 4).toString('latin1')
      if (/^[0-7]{3}$/.test(oct)) { out.push(parseInt(oct, 8)); i += 3; continue }
    }
    out.push(c)
  }
  return Buffer.from(out)
}

/**
 * Parse `getfattr -R -h -d -m - -e hex --absolute-names` output into
 * absolute path -> { name -> hex }. Files without xattrs have no block.
 */
export function parseGetfattr (out: Buffer): Map<string, Record<string, string>> {
  const res = new Map<string, Record<string, string>>()
  let cur: Record<string, string> | undefined
  let start = 0
  while (start < out.length) {
    let end = out.indexOf(0x0a, start)
    if (end < 0) end = out.length
    const line = out.subarray(start, end)
    start = end + 1
    if (line.length === 0) { cur = undefined; continue }
    const fileTag = Buffer.from('# file: ')
    if (line.subarray(0, fileTag.length).equals(fileTag)) {
      const path = unquoteGetfattr(line.subarray(fileTag.length)).toString('utf8')
      cur = {}
      res.set(path, cur)
      continue
    }
    if (cur === undefined || line[0] === 0x23 /* # */) continue
    const text = line.toString('latin1')
    const eq = text.indexOf('=')
    const name = unquoteGetfattr(Buffer.from(eq < 0 ? text : text.slice(0, eq), 'latin1')).toString('utf8')
    let value = eq < 0 ? '' : text.slice(eq + 1)
    if (value.startsWith('0x')) value = value.slice(2)
    else if (value.startsWith('"')) value = Buffer.from(value.slice(1, -1), 'latin1').toString('hex')
    cur[name] = value.toLowerCase()
  }
  return res
}

/** All xattrs of everything under `root` (one getfattr call), keyed by absolute path. */
export async function readAllXattrs (root: string): Promise<Map<string, Record<string, string>>> {
  const r = await run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root], { timeoutMs: 300_000 })
  // getfattr exits 1 when some file could not be read; that is reported, not ignored.
  if (r.code !== 0 && r.stdout.length === 0) throw new Error(`getfattr on ${root} failed (exit ${r.code}): ${r.stderr.trim()}`)
  if (r.code !== 0) throw new Error(`getfattr on ${root} reported errors (exit ${r.code}): ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}`)
  return parseGetfattr(r.stdout)
}

/**
 * Snapshot the tree under `dir`: a sorted list of entries, never following
 * symlinks. Directory sizes, nlinks and times are not recorded (they legitimately
 * differ between overlay implementations and the underlying filesystems).
 */
export async function snapshotTree (dir: string, opts: SnapshotOptions = {}): Promise<SnapEntry[]> {
  const root = resolve(dir)
  const withX = opts.xattrs !== false
  const xattrs = withX ? await readAllXattrs(root) : new Map<string, Record<string, string>>()
  const entries: SnapEntry[] = []

  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel)
    const st = await lstat(abs, { bigint: true })
    const type = typeOf(st.mode)
    const e: SnapEntry = {
      path: rel,
      type,
      mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
      uid: Number(st.uid),
      gid: Number(st.gid)
    }
    if (type === 'file') {
      e.size = Number(st.size)
      e.sha256 = await sha256File(abs)
    }
    if (type === 'symlink') e.target = await readlink(abs)
    if (type === 'chr' || type === 'blk') e.rdev = `${devMajor(st.rdev)}:${devMinor(st.rdev)}`
    if (type !== 'dir' && opts.nlink !== false) e.nlink = Number(st.nlink)
    if (type !== 'dir' && opts.mtime === true) e.mtimeNs = st.mtimeNs.toString()
    const x = xattrs.get(abs)
    if (x !== undefined) {
      const kept: Record<string, string> = {}
      for (const name of Object.keys(x).sort()) {
        if (opts.hideOverlayXattrs === true && name.startsWith('trusted.overlay.')) continue
        kept[name] = x[name] as string
      }
      if (Object.keys(kept).length > 0) e.xattrs = kept
    }
    if (opts.filter === undefined || rel === '.' || opts.filter(rel)) entries.push(e)
    if (type === 'dir') {
      const names = await readdir(abs)
      for (const n of names) await visit(rel === '.' ? n : join(rel, n))
    }
  }
  await visit('.')
  return entries.sort((a, b) => cmpPath(a.path, b.path))
}

function cmpPath (a: string, b: string): number {
  if (a === b) return 0
  if (a === '.') return -1
  if (b === '.') return 1
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/**
 * Overlay xattrs that are kernel-private bookkeeping, not part of the merged
 * view nor of the on-disk format's meaning that another implementation must
 * reproduce byte for byte:
 *  - trusted.overlay.origin: file handle of the lower inode (encodes the
 *    lower fs's handle, different for every implementation/mount),
 *  - trusted.overlay.impure: a hint that a dir holds copied-up children with
 *    origin (only drives d_ino fixups in the kernel),
 *  - trusted.overlay.uuid: per-fs uuid of the overlay,
 *  - trusted.overlay.nlink: the kernel's nlink bookkeeping for index=on,
 *  - trusted.overlay.ts.*: overlayts' own provenance xattrs.
 * The ones that carry meaning (opaque, redirect, and e.g. metacopy) are kept.
 */
export const PRIVATE_OVERLAY_XATTRS = ['origin', 'impure', 'uuid', 'nlink'].flatMap(n => [`trusted.overlay.${n}`, `user.overlay.${n}`])
/** trusted.overlay.ts.* / user.overlay.ts.*: overlayts' own, in the kernel and userxattr forms; user.overlayts.*: the oci form's. */
export const PRIVATE_OVERLAY_PREFIXES = ['trusted.overlay.ts.', 'user.overlay.ts.', 'user.overlayts.']

export function isPrivateOverlayXattr (name: string): boolean {
  return PRIVATE_OVERLAY_XATTRS.includes(name) || PRIVATE_OVERLAY_PREFIXES.some(p => name.startsWith(p))
}

/**
 * Snapshot an upper dir: like snapshotTree but whiteouts (chr 0/0) are recorded
 * as type 'whiteout' with only their path (their mode/owner are incidental),
 * trusted.overlay.opaque / .redirect are kept and the private bookkeeping
 * xattrs above are dropped. Dir mtimes/sizes are not recorded (see snapshotTree).
 */
export async function snapshotUpper (upperDir: string, opts: Omit<SnapshotOptions, 'hideOverlayXattrs'> = {}): Promise<SnapEntry[]> {
  const raw = await snapshotTree(upperDir, { ...opts, hideOverlayXattrs: false })
  return raw.map((e): SnapEntry => {
    if (e.type === 'chr' && e.rdev === '0:0') return { path: e.path, type: 'whiteout', mode: '0000', uid: 0, gid: 0 }
    if (e.xattrs === undefined) return e
    const kept: Record<string, string> = {}
    for (const [k, v] of Object.entries(e.xattrs)) if (!isPrivateOverlayXattr(k)) kept[k] = v
    const out: SnapEntry = { ...e }
    delete out.xattrs
    if (Object.keys(kept).length > 0) out.xattrs = kept
    return out
  })
}

const FIELDS: Array<keyof SnapEntry> = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'nlink', 'mtimeNs', 'xattrs']

function show (v: unknown): string {
  if (v === undefined) return '(none)'
  return JSON.stringify(v)
}

/**
 * Readable differences between snapshots `a` and `b` (first `limit`, default 50,
 * then a "... and N more" line). Empty array = identical.
 */
export function diffSnapshots (a: SnapEntry[], b: SnapEntry[], opts: { limit?: number, aName?: string, bName?: string } = {}): string[] {
  const limit = opts.limit ?? 50
  const an = opts.aName ?? 'a'
  const bn = opts.bName ?? 'b'
  const ma = new Map(a.map(e => [e.path, e]))
  const mb = new Map(b.map(e => [e.path, e]))
  const paths = [...new Set([...ma.keys(), ...mb.keys()])].sort(cmpPath)
  const out: string[] = []
  let total = 0
  const add = (s: string): void => { total++; if (out.length < limit) out.push(s) }
  for (const p of paths) {
    const ea = ma.get(p)
    const eb = mb.get(p)
    if (ea === undefined) { add(`${JSON.stringify(p)}: only in ${bn} (${eb?.type ?? '?'})`); continue }
    if (eb === undefined) { add(`${JSON.stringify(p)}: only in ${an} (${ea.type})`); continue }
    for (const f of FIELDS) {
      const va = show(ea[f])
      const vb = show(eb[f])
      if (va !== vb) add(`${JSON.stringify(p)}: ${f} ${an}=${va} ${bn}=${vb}`)
    }
  }
  if (total > out.length) out.push(`... and ${total - out.length} more differences`)
  return out
}

/**
 * t.same-friendly form: one compact line per entry, so that a failing
 * `t.same(formatSnapshot(a), formatSnapshot(b))` shows a line diff.
 */
export function formatSnapshot (entries: SnapEntry[]): string[] {
  return entries.map(e => {
    const parts = [JSON.stringify(e.path), e.type, e.mode, `${e.uid}:${e.gid}`]
    if (e.size !== undefined) parts.push(`size=${e.size}`)
    if (e.sha256 !== undefined) parts.push(`sha256=${e.sha256.slice(0, 16)}`)
    if (e.target !== undefined) parts.push(`-> ${JSON.stringify(e.target)}`)
    if (e.rdev !== undefined) parts.push(`rdev=${e.rdev}`)
    if (e.nlink !== undefined) parts.push(`nlink=${e.nlink}`)
    if (e.mtimeNs !== undefined) parts.push(`mtime=${e.mtimeNs}`)
    if (e.xattrs !== undefined) parts.push(`xattrs=${JSON.stringify(e.xattrs)}`)
    return parts.join(' ')
  })
}

/** Minimal assertion surface of tap's Test used by assertSameTree. */
export interface Asserter {
  ok (v: unknown, msg: string, extra: { [k: string]: unknown }): unknown
}

/**
 * Assert two snapshots are identical with a short readable failure message
 * (the first differences), instead of a huge object diff.
 */
export function assertSameTree (t: Asserter, actual: SnapEntry[], expected: SnapEntry[], msg: string, names: { actual?: string, expected?: string } = {}): boolean {
  const d = diffSnapshots(actual, expected, { aName: names.actual ?? 'actual', bName: names.expected ?? 'expected' })
  t.ok(d.length === 0, msg, d.length === 0 ? {} : { diagnostic: true, differences: d })
  return d.length === 0
}
