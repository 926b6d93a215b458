/**
 * Tar headers as overlayts writes them for an image layer: ustar blocks, with
 * a PAX block before an entry only when it needs one (a name or link target
 * that is not short ASCII, xattrs, an id or time outside ustar's fields).
 * Every byte is a function of the entry alone: no uname/gname (they differ
 * between hosts), no atime/ctime, mtime in whole seconds (as docker writes
 * layers), and the PAX block's own name and fields are fixed, so the same
 * entries give the same bytes on every run.
 *
 * Names are byte strings (../overlay/bytes.ts). Directories end with '/',
 * as docker and GNU tar write them.
 */
import { encodePaxRecords, PAX_XATTR_PREFIX } from './pax.js'

export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo'

export interface TarEntry {
  /** Path in the layer, relative, no leading '/' or './'; directories without a trailing '/' (added here). */
  readonly name: string
  readonly type: TarEntryType
  /** Permission bits and setuid/setgid/sticky (07777). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Seconds since the epoch (may be negative). */
  readonly mtime: number
  /** Data bytes that follow (regular files only). */
  readonly size: number
  /** Symlink target, or the hardlink's first name (a path in the layer). */
  readonly linkname?: string
  readonly devmajor?: number
  readonly devminor?: number
  /** xattrs to record, name → value (byte strings); written sorted by name. */
  readonly xattrs?: ReadonlyMap<string, string>
}

const BLOCK = 512
const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0', link: '1', symlink: '2', 'character-device': '3', 'block-device': '4', directory: '5', fifo: '6'
}

/** Largest value of an octal field of `width` bytes (width-1 digits and a NUL). */
const maxOctal = (width: number): number => 8 ** (width - 1) - 1

function putString (buf: Buffer, s: string, at: number, width: number): void {
  buf.write(s, at, Math.min(width, s.length), 'latin1')
}

function putOctal (buf: Buffer, n: number, at: number, width: number): void {
  putString(buf, n.toString(8).padStart(width - 1, '0'), at, width - 1)
  buf[at + width - 1] = 0
}

/** True when `s` is printable ASCII (names in ustar fields stay unambiguous). */
function isPlainAscii (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}

/** ustar's name/prefix split of `name`, or undefined when it does not fit. */
function splitUstar (name: string): { prefix: string, base: string } | undefined {
  if (name.length <= 100) return { prefix: '', base: name }
  // The prefix is cut at a '/', at most 155 bytes, the rest at most 100.
  for (let i = name.indexOf('/'); i >= 0 && i <= 155; i = name.indexOf('/', i + 1)) {
    if (name.length - i - 1 <= 100 && i > 0) return { prefix: name.slice(0, i), base: name.slice(i + 1) }
  }
  return undefined
}

/** A fixed ASCII stand-in for a name that lives in the PAX block (readers use the PAX path). */
function placeholder (name: string, width: number): string {
  let out = ''
  for (let i = 0; i < name.length && out.length < width; i++) {
    const c = name.charCodeAt(i)
    out += c >= 0x20 && c <= 0x7e ? name[i] : '_'
  }
  return out
}

function ustarBlock (e: TarEntry, name: string, size: number, typeflag: string, linkname: string): Buffer {
  const buf = Buffer.alloc(BLOCK)
  const split = splitUstar(name) ?? { prefix: '', base: placeholder(name, 100) }
  putString(buf, split.base, 0, 100)
  putOctal(buf, e.mode & 0o7777, 100, 8)
  putOctal(buf, Math.min(Math.max(e.uid, 0), maxOctal(8)), 108, 8)
  putOctal(buf, Math.min(Math.max(e.gid, 0), maxOctal(8)), 116, 8)
  if (size <= maxOctal(12)) putOctal(buf, size, 124, 12)
  else putOctal(buf, 0, 124, 12) // the PAX size record carries it
  putOctal(buf, Math.min(Math.max(e.mtime, 0), maxOctal(12)), 136, 12)
  buf.fill(0x20, 148, 156) // checksum computed over spaces
  buf.write(typeflag, 156, 1, 'latin1')
  putString(buf, linkname, 157, 100)
  buf.write('ustar\u000000', 257, 8, 'latin1')
  putOctal(buf, e.devmajor ?? 0, 329, 8)
  putOctal(buf, e.devminor ?? 0, 337, 8)
  putString(buf, split.prefix, 345, 155)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += buf[i] as number
  putOctal(buf, sum, 148, 7)
  buf[155] = 0x20
  return buf
}

/** Zero bytes that pad `size` data bytes to a whole block. */
export function padding (size: number): Buffer {
  const rest = size % BLOCK
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest)
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK)

/** The header block(s) of `e`: an optional PAX block (header, records, padding) and the ustar block. */
export function encodeHeader (e: TarEntry): Buffer {
  const name = e.type === 'directory' ? `${e.name}/` : e.name
  const linkname = e.linkname ?? ''
  const records: Array<[string, string]> = []
  const nameFits = isPlainAscii(name) && splitUstar(name) !== undefined
  if (!nameFits) records.push(['path', name])
  if (linkname.length > 100 || !isPlainAscii(linkname)) records.push(['linkpath', linkname])
  if (e.uid < 0 || e.uid > maxOctal(8)) records.push(['uid', String(e.uid)])
  if (e.gid < 0 || e.gid > maxOctal(8)) records.push(['gid', String(e.gid)])
  if (e.mtime < 0 || e.mtime > maxOctal(12)) records.push(['mtime', String(e.mtime)])
  if (e.size > maxOctal(12)) records.push(['size', String(e.size)])
  for (const k of [...(e.xattrs?.keys() ?? [])].sort()) records.push([PAX_XATTR_PREFIX + k, e.xattrs?.get(k) as string])
  // The record order is fixed: path, linkpath, ids, times, size (above), then xattrs by name.
  records.sort((a, b) => order(a[0]) - order(b[0]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const ustar = ustarBlock(e, name, e.size, TYPEFLAG[e.type], placeholder(linkname, 100))
  if (records.length === 0) return ustar
  const body = encodePaxRecords(records)
  const paxHeader: TarEntry = { name: '', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body.length }
  const paxName = placeholder(`PaxHeaders.0/${name.replace(/\/$/, '').split('/').pop() ?? ''}`, 100)
  return Buffer.concat([ustarBlock(paxHeader, paxName, body.length, 'x', ''), body, padding(body.length), ustar])
}

function order (key: string): number {
  if (key.startsWith(PAX_XATTR_PREFIX)) return 9
  return ['path', 'linkpath', 'uid', 'gid', 'mtime', 'size'].indexOf(key)
}
