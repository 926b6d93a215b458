/**
 * What a layer tar may ask of `unpack`, decided before anything is written.
 * A layer is untrusted input: every entry name becomes a path below the
 * target, or the whole layer is refused (LayerRefused, with the entry and
 * the reason). The rules are moby's (pkg/archive, Unpack/createTarFile) made
 * stricter where docker is lenient without need:
 *
 * - names are relative: an absolute name, or any `..` component, is refused
 *   (docker joins an absolute name under the target; no image builder writes
 *   one). `.` components, repeated and trailing slashes are dropped, as
 *   filepath.Clean does;
 * - a hardlink names an entry already extracted from this layer, a regular
 *   file (not a directory, link, device or whiteout, and nothing outside);
 * - a symlink's target may be anything absolute (it resolves in the
 *   container's root, never on the host), but a relative target may not climb
 *   above the layer's root (docker's "invalid symlink" breakout rule);
 * - an entry's parent must be a directory this layer made (or that unpack
 *   makes for it, 0755 as docker does): never a symlink or file written
 *   before it, so nothing is written through a link. The extraction also
 *   never follows a link on disk (unpack.ts), which catches the same case a
 *   second time;
 * - limits (documented in `overlayts unpack --help`): entry count, total
 *   data bytes, path length.
 */
import { displayPath } from '../overlay/bytes.js'

export class LayerRefused extends Error {
  constructor (readonly entry: string, reason: string) {
    super(`layer refused: entry ${JSON.stringify(displayPath(entry))}: ${reason}`)
    this.name = 'LayerRefused'
  }
}

export interface UnpackLimits {
  /** Entries (each header that is not a PAX or long-name block). */
  readonly maxEntries: number
  /** Sum of the data bytes of all regular files. */
  readonly maxBytes: number
}

export const DEFAULT_LIMITS: UnpackLimits = {
  maxEntries: 5_000_000,
  maxBytes: 256 * 1024 ** 3
}

/** Linux's PATH_MAX less the NUL: longer names cannot be made below any target. */
export const MAX_PATH_BYTES = 4095
const NAME_MAX = 255

/**
 * The cleaned relative path of an entry name ('' for the layer root itself),
 * or LayerRefused. `name` is a byte string.
 */
export function cleanEntryPath (name: string, what = 'name'): string {
  if (name.includes('\0')) throw new LayerRefused(name, `${what} holds a NUL byte`)
  if (name.startsWith('/')) throw new LayerRefused(name, `absolute ${what} (a layer holds relative paths)`)
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw new LayerRefused(name, `${what} has a '..' component (it could reach outside the target)`)
    if (part.length > NAME_MAX) throw new LayerRefused(name, `a component of the ${what} is longer than ${NAME_MAX} bytes`)
    parts.push(part)
  }
  const clean = parts.join('/')
  if (clean.length > MAX_PATH_BYTES) throw new LayerRefused(name, `${what} longer than ${MAX_PATH_BYTES} bytes`)
  return clean
}

/**
 * Refuses a symlink whose relative target climbs above the layer root from
 * where the link stands (moby: "invalid symlink").
 */
export function checkSymlinkTarget (entry: string, target: string): void {
  if (target.includes('\0')) throw new LayerRefused(entry, 'symlink target holds a NUL byte')
  if (target.startsWith('/')) return
  let depth = entry.split('/').length - 1 // directories above the link, within the layer
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      depth--
      if (depth < 0) throw new LayerRefused(entry, `symlink target ${JSON.stringify(displayPath(target))} points outside the layer`)
    } else depth++
  }
}

/** The kinds of object unpack has made, by path, which later entries are checked against. */
export type MadeKind = 'dir' | 'file' | 'other'

/**
 * The parent rule: every existing ancestor of `path` must be a directory made
 * by this layer; answers the ancestors that do not exist yet (to be made),
 * outermost first.
 */
export function missingParents (path: string, made: ReadonlyMap<string, MadeKind>): string[] {
  const missing: string[] = []
  let at = path.lastIndexOf('/')
  while (at > 0) {
    const parent = path.slice(0, at)
    const kind = made.get(parent)
    if (kind === 'dir') break
    if (kind !== undefined) throw new LayerRefused(path, `its parent ${JSON.stringify(displayPath(parent))} is not a directory (a layer may not write through a link or file)`)
    missing.unshift(parent)
    at = parent.lastIndexOf('/')
  }
  return missing
}
