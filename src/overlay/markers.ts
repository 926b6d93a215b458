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

/** Overlay-private xattrs are never visible or settable through the mount. */
export function isPrivateXattr (name: string): boolean {
  return name.startsWith(OVERLAY_XATTR_PREFIX)
}
