/**
 * `overlayts commit`: the upper layer (the container's changes) as the
 * entries of an OCI image layer, by docker's rules (moby pkg/archive with its
 * overlayWhiteoutConverter, the overlay2 driver's export):
 *
 * - the upper is walked depth first, each directory's names in byte order,
 *   a directory before what it holds;
 * - a whiteout (char 0/0) becomes an empty file `.wh.NAME` (mode 0600, the
 *   whiteout's owner and time); `.wh.*` files an upper may hold in the OCI
 *   form are written as they are, and mean the same;
 * - an opaque directory (trusted.overlay.opaque=y) is written, then a
 *   `.wh..wh..opq` entry inside it (its permission bits and owner);
 * - a directory renamed through a redirect (not opaque) has no lower copy
 *   at its new name in another image, so it is written as the full merged
 *   view below it (the overlay core's own lookup: stack-source.ts), marked
 *   opaque; the old name's whiteout is in the upper already (the rename left
 *   it) and is written as any whiteout. The redirect is read through the
 *   upper's markers (layer-markers.ts), in the upper's form, as the merged
 *   walk follows it: `trusted.overlay.redirect` in the kernel form,
 *   `user.overlayts.redirect` in the oci form; the userxattr form has none;
 * - hardlinks (same dev:ino seen again) become tar hardlinks to the first
 *   name written;
 * - xattrs: `user.*` and `security.capability` only (never
 *   `trusted.overlay.*`, overlayts' own `trusted.overlay.ts.*`, the rootless
 *   forms' `user.overlay.*`, `user.overlayts.*` and fuse-overlayfs'
 *   `user.fuseoverlayfs.*`, or host labels such as security.selinux);
 *   sockets are skipped (tar holds none);
 * - upper forms (upper-form.ts): char 0/0 whiteouts and opaque xattrs of the
 *   kernel and userxattr forms; an oci-form upper's `.wh.*` files are written
 *   as they are (they are the layer's markers already); redirects as above.
 *
 * Consistency on a live mount: the upper's files are read directly, and a
 * file is read only through a descriptor opened with O_NOFOLLOW whose
 * fstat (size, mtime, ctime, inode) is taken before and after its data: if
 * anything changed, or the file went away during the walk, the commit fails
 * with ChangedWhileCommitting, and nothing is left at the output. A layer is
 * thus never written with a half-written file; for a tree consistent as a
 * whole, pause the writers first (as `docker commit` pauses the container).
 */
import * as fs from 'node:fs'
import { displayPath } from '../overlay/bytes.js'
import { joinRel } from '../overlay/layers.js'
import { isWhiteoutStat, OCI_OPAQUE_MARKER, OCI_UPPER_XATTRS, OCI_WHITEOUT_PREFIX, TRUSTED_XATTRS, USER_XATTRS } from '../overlay/markers.js'
import { sys, type Stats } from '../overlay/sys/fs.js'
import type { StackSource } from './stack-source.js'
import { byteOrder } from './stack-source.js'
import type { TarEntryType } from './tar-header.js'
import type { EntryWithData } from './tar-writer.js'

export class ChangedWhileCommitting extends Error {
  constructor (rel: string, what: string) {
    super(`${displayPath(rel)}: ${what} while being committed; stop the writers (or pause the container) and commit again`)
    this.name = 'ChangedWhileCommitting'
  }
}

const S_IFMT = 0o170000n
const TYPES = new Map<bigint, TarEntryType>([
  [0o100000n, 'file'], [0o040000n, 'directory'], [0o120000n, 'symlink'],
  [0o020000n, 'character-device'], [0o060000n, 'block-device'], [0o010000n, 'fifo']
])

const READ_CHUNK = 1 << 20

export interface CommitCounts {
  entries: number
  whiteouts: number
  opaqueMarkers: number
  redirectedDirs: number
  hardlinks: number
  dataBytes: number
}

/** The overlay's own user.* namespaces (userxattr and oci upper forms, fuse-overlayfs): never recorded. */
const PRIVATE_USER_PREFIXES = [USER_XATTRS.prefix, OCI_UPPER_XATTRS.prefix, 'user.fuseoverlayfs.']
/** An opaque directory, in whichever form the upper was written (upper-form.ts). */
const OPAQUE_XATTRS = [TRUSTED_XATTRS.opaque, USER_XATTRS.opaque, OCI_UPPER_XATTRS.opaque]

function recordedXattr (name: string): boolean {
  if (name === 'security.capability') return true
  return name.startsWith('user.') && !PRIVATE_USER_PREFIXES.some((p) => name.startsWith(p))
}

function xattrsOf (phys: string): Map<string, string> | undefined {
  let names: string[]
  try { names = sys.llistxattr(phys) } catch { return undefined }
  const out = new Map<string, string>()
  for (const n of names.filter(recordedXattr).sort(byteOrder)) {
    const v = sys.lgetxattr(phys, n)
    if (v !== undefined) out.set(n, v.toString('latin1'))
  }
  return out.size === 0 ? undefined : out
}

const seconds = (st: Stats): number => Number(st.mtimeMs / 1000n) - (st.mtimeMs < 0n && st.mtimeMs % 1000n !== 0n ? 1 : 0)

/** Major and minor of a Linux dev_t (glibc's encoding). */
function devNumbers (rdev: bigint): { devmajor: number, devminor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)
  return { devmajor: Number(major), devminor: Number(minor) }
}

/** The data of regular file `phys` (merged path `rel`) as seen by `st`, refusing any change while it is read. */
async function * stableData (rel: string, phys: string, st: Stats): AsyncGenerator<Buffer> {
  let fd: number
  try {
    fd = sys.openSync(phys, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (e) {
    throw new ChangedWhileCommitting(rel, `could not be opened (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
  }
  try {
    const same = (now: Stats): boolean => now.ino === st.ino && now.dev === st.dev && now.size === st.size &&
      now.mtimeNs === st.mtimeNs && now.ctimeNs === st.ctimeNs
    if (!same(sys.fstat(fd))) throw new ChangedWhileCommitting(rel, 'changed')
    const size = Number(st.size)
    let pos = 0
    while (pos < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - pos))
      const n = await sys.read(fd, buf, buf.length, pos)
      if (n === 0) throw new ChangedWhileCommitting(rel, 'shrank')
      pos += n
      yield n === buf.length ? buf : buf.subarray(0, n)
    }
    if (!same(sys.fstat(fd))) throw new ChangedWhileCommitting(rel, 'changed')
  } finally {
    sys.closeSync(fd)
  }
}

/**
 * The entries of the layer for `source`'s upper, in order, each file with its
 * data; `counts` is filled in as they are produced.
 */
export async function * commitEntries (source: StackSource, counts: CommitCounts): AsyncGenerator<EntryWithData> {
  const upper = source.upper
  if (upper === undefined) throw new Error('this stack has no upper layer: nothing to commit')
  const firstNames = new Map<string, string>() // dev:ino → first name written

  function entryFor (rel: string, phys: string, st: Stats): EntryWithData | undefined {
    const type = TYPES.get(st.mode & S_IFMT)
    if (type === undefined) return undefined // a socket
    const base = {
      name: rel,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: seconds(st),
      size: 0
    }
    const xattrs = xattrsOf(phys)
    counts.entries++
    if (type === 'file') {
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`
        const first = firstNames.get(key)
        if (first !== undefined) {
          counts.hardlinks++
          return { entry: { ...base, type: 'link', linkname: first } }
        }
        firstNames.set(key, rel)
      }
      counts.dataBytes += Number(st.size)
      return { entry: { ...base, type, size: Number(st.size), xattrs }, data: () => stableData(rel, phys, st) }
    }
    if (type === 'symlink') return { entry: { ...base, type, linkname: sys.readlink(phys), xattrs } }
    if (type === 'character-device' || type === 'block-device') return { entry: { ...base, type, ...devNumbers(st.rdev), xattrs } }
    return { entry: { ...base, type, xattrs } }
  }

  function opaqueMarker (dirRel: string, st: Stats): EntryWithData {
    counts.entries++
    counts.opaqueMarkers++
    return {
      entry: {
        name: joinRel(dirRel, OCI_OPAQUE_MARKER),
        type: 'file',
        mode: Number(st.mode & 0o777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: seconds(st),
        size: 0
      }
    }
  }

  function lstatOrChanged (rel: string, phys: string): Stats {
    const st = sys.lstat(phys)
    if (st === undefined) throw new ChangedWhileCommitting(rel, 'went away')
    return st
  }

  // Depth first over the upper, by hand: an explicit stack, for deep trees.
  const todo: string[] = namesOf('', upper.root).reverse()
  while (todo.length > 0) {
    const rel = todo.pop() as string
    const phys = `${upper.root}/${rel}`
    const st = lstatOrChanged(rel, phys)
    if (isWhiteoutStat(st)) {
      const slash = rel.lastIndexOf('/')
      counts.entries++
      counts.whiteouts++
      yield {
        entry: {
          name: slash < 0 ? OCI_WHITEOUT_PREFIX + rel : `${rel.slice(0, slash + 1)}${OCI_WHITEOUT_PREFIX}${rel.slice(slash + 1)}`,
          type: 'file', mode: 0o600, uid: Number(st.uid), gid: Number(st.gid), mtime: seconds(st), size: 0
        }
      }
      continue
    }
    const e = entryFor(rel, phys, st)
    if (e === undefined) continue
    yield e
    if (e.entry.type !== 'directory') continue
    const opaque = OPAQUE_XATTRS.some((x) => sys.lgetxattr(phys, x)?.toString('latin1') === 'y')
    // The redirect in the upper's form, as the merged walk (the core's Resolver) follows it.
    const redirected = !opaque && upper.markers.redirectOf(phys) !== undefined
    if (redirected) {
      counts.redirectedDirs++
      yield opaqueMarker(rel, st)
      yield * mergedBelow(rel)
      continue
    }
    const names = namesOf(rel, phys)
    // An oci-form upper holds its own .wh..wh..opq, written as any file.
    if (opaque && !names.includes(OCI_OPAQUE_MARKER)) yield opaqueMarker(rel, st)
    for (const n of names.reverse()) todo.push(joinRel(rel, n))
  }

  /** Everything the merged view shows below `rel` (a redirected directory), from whichever layer serves it. */
  function * mergedBelow (rel: string): Generator<EntryWithData> {
    for (const node of source.walk(rel)) {
      const e = entryFor(node.rel, node.phys, node.stat)
      if (e !== undefined) yield e
    }
  }

  function namesOf (rel: string, phys: string): string[] {
    try {
      return sys.readdirNames(phys).sort(byteOrder)
    } catch (e) {
      throw new ChangedWhileCommitting(rel === '' ? '/' : rel, `could not be listed (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
    }
  }
}

export function emptyCounts (): CommitCounts {
  return { entries: 0, whiteouts: 0, opaqueMarkers: 0, redirectedDirs: 0, hardlinks: 0, dataBytes: 0 }
}
