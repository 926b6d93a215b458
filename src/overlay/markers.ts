/**
 * The on-disk markers of an overlay, in the kernel's form and in the form
 * OCI image layers use after extraction:
 *
 * | meaning        | kernel form                              | OCI form (lowers only)    |
 * |----------------|------------------------------------------|---------------------------|
 * | whiteout NAME  | char device 0/0 named NAME               | empty file `.wh.NAME`     |
 * | opaque dir     | xattr trusted.overlay.opaque = "y"       | file `.wh..wh..opq` in it |
 * | renamed dir    | xattr trusted.overlay.redirect = old loc | (none)                    |
 *
 * overlayts reads both forms in lower layers and writes only the kernel form,
 * so an upper it wrote mounts under the kernel's overlayfs. The OCI form is
 * honoured only in lowers: in upper the kernel treats `.wh.*` as plain names,
 * and so does overlayts.
 */
import type { Stats } from './sys/fs.js'

export const OVERLAY_XATTR_PREFIX = 'trusted.overlay.'
export const OPAQUE_XATTR = 'trusted.overlay.opaque'
export const REDIRECT_XATTR = 'trusted.overlay.redirect'
/** overlayts' own provenance: "dev:ino" of the lower object a copy came from. */
export const ORIGIN_XATTR = 'trusted.overlay.ts.origin'

export const OCI_WHITEOUT_PREFIX = '.wh.'
export const OCI_OPAQUE_MARKER = '.wh..wh..opq'

const S_IFMT = 0o170000n
const S_IFCHR = 0o020000n

export function isWhiteoutStat (st: Stats): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdev === 0n
}

/** A name overlayts never shows through the mount when it is found in a lower layer. */
export function isOciMarker (name: string): boolean {
  return name.startsWith(OCI_WHITEOUT_PREFIX)
}

/**
 * `trusted.overlay.*` names asked for through the mount are "escaped", as the
 * kernel does (since Linux 6.7): `trusted.overlay.X` is stored in the layer as
 * `trusted.overlay.overlay.X`, and an escaped name in a layer shows through
 * the mount without its extra `overlay.`. The kernel tests the prefix without
 * its final dot; so does this.
 */
const ESCAPE = 'overlay.'
const ESCAPED_XATTR_PREFIX = OVERLAY_XATTR_PREFIX + ESCAPE.slice(0, -1)
const XATTR_NAME_MAX = 255

export function isEscapedXattr (name: string): boolean {
  return name.startsWith(ESCAPED_XATTR_PREFIX)
}

/** The overlay's own xattrs (markers, origin): never visible or settable through the mount. Escaped names are not. */
export function isPrivateXattr (name: string): boolean {
  return name.startsWith(OVERLAY_XATTR_PREFIX) && !isEscapedXattr(name)
}

/**
 * The name in the layers of an xattr named `name` through the mount, or the
 * errno the kernel answers for it: EINVAL for `trusted.overlay.` alone,
 * EOPNOTSUPP when the escaped name would be longer than XATTR_NAME_MAX.
 */
export function xattrNameOnDisk (name: string): string | 'EINVAL' | 'EOPNOTSUPP' {
  if (!name.startsWith(OVERLAY_XATTR_PREFIX)) return name
  if (name.length === OVERLAY_XATTR_PREFIX.length) return 'EINVAL'
  const escaped = OVERLAY_XATTR_PREFIX + ESCAPE + name.slice(OVERLAY_XATTR_PREFIX.length)
  return escaped.length > XATTR_NAME_MAX ? 'EOPNOTSUPP' : escaped
}

/** How an xattr found in a layer shows through the mount: undefined when it is the overlay's own. */
export function xattrNameThroughMount (name: string): string | undefined {
  if (!name.startsWith(OVERLAY_XATTR_PREFIX)) return name
  if (!isEscapedXattr(name)) return undefined
  return OVERLAY_XATTR_PREFIX + name.slice(OVERLAY_XATTR_PREFIX.length + ESCAPE.length)
}
