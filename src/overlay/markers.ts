/**
 * The on-disk markers of an overlay. Lower layers are read in the kernel's
 * form or in the form OCI image layers take after extraction; the upper is
 * written in one of three forms, chosen at mount (upper-form.ts):
 *
 * | meaning       | kernel (root)             | userxattr (rootless)   | oci (upper on an overlayfs) |
 * |---------------|---------------------------|------------------------|-----------------------------|
 * | whiteout NAME | char device 0/0 NAME      | char device 0/0 NAME   | empty file `.wh.NAME`       |
 * | opaque dir    | trusted.overlay.opaque=y  | user.overlay.opaque=y  | file `.wh..wh..opq` in it   |
 * | renamed dir   | trusted.overlay.redirect  | (none: EXDEV)          | user.overlayts.redirect     |
 * | origin        | trusted.overlay.ts.origin | user.overlay.ts.origin | user.overlayts.origin       |
 *
 * The kernel and userxattr forms are the kernel's overlayfs format without
 * and with its `userxattr` mount option: an upper written in either mounts
 * under `mount -t overlay` (with `-o userxattr` for the second). The kernel
 * refuses `redirect_dir` with `userxattr` (a user could forge a redirect), so
 * in that form a directory with lower parts is never renamed (EXDEV, as the
 * kernel answers) and a redirect found is never followed. The oci form is
 * what fuse-overlayfs writes where the kernel form is refused: markers as
 * files, and private `user.overlayts.*` xattrs for what has no OCI marker;
 * char 0/0 whiteouts (and `user.overlayts.opaque`) are read back too.
 *
 * Lower layers: in kernel form (char 0/0 whiteouts, overlay xattrs in the
 * mount's namespace: trusted.overlay.*, or user.overlay.* with userxattr, as
 * the kernel reads them) or in OCI form (`.wh.NAME`, `.wh..wh..opq`); see
 * layer-form.ts.
 */
import type { Stats } from './sys/fs.js'

export const OCI_WHITEOUT_PREFIX = '.wh.'
export const OCI_OPAQUE_MARKER = '.wh..wh..opq'

const S_IFMT = 0o170000n
const S_IFCHR = 0o020000n
const XATTR_NAME_MAX = 255

export function isWhiteoutStat (st: Stats): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdev === 0n
}

/** A name overlayts never shows through the mount when it is found in an OCI-form layer. */
export function isOciMarker (name: string): boolean {
  return name.startsWith(OCI_WHITEOUT_PREFIX)
}

/** Where the overlay's own xattrs live: `trusted.overlay.*` (root) or `user.overlay.*` (the kernel's userxattr). */
export type XattrNamespace = 'trusted' | 'user'

/**
 * The names of an overlay's own xattrs under one prefix, and how names asked
 * for through the mount map onto the layers. A name under the prefix asked
 * for through the mount is "escaped", as the kernel does since Linux 6.7:
 * `P.X` is stored as `P.overlay.X` (P the prefix without its dot), and an
 * escaped name in a layer shows without its extra label. `P.` alone is
 * EINVAL; a name too long once escaped is EOPNOTSUPP. The kernel tests the
 * escaped prefix without its final dot for trusted.overlay and with it for
 * user.overlay (fs/overlayfs/xattrs.c); so does this.
 */
export class OverlayXattrs {
  readonly opaque: string
  readonly redirect: string
  /** overlayts' own provenance: "dev:ino" of the lower object a copy came from (never read by the kernel). */
  readonly origin: string
  private readonly escapedPrefix: string
  private readonly escape: string

  constructor (readonly prefix: string, origin: string, escapedPrefixHasDot: boolean) {
    this.opaque = prefix + 'opaque'
    this.redirect = prefix + 'redirect'
    this.origin = origin
    // trusted.overlay. -> "overlay."; user.overlayts. -> "overlayts."
    const labels = prefix.slice(0, -1).split('.')
    this.escape = labels[labels.length - 1]! + '.'
    const escaped = prefix + this.escape
    this.escapedPrefix = escapedPrefixHasDot ? escaped : escaped.slice(0, -1)
  }

  isEscaped (name: string): boolean {
    return name.startsWith(this.escapedPrefix)
  }

  /** The overlay's own xattrs (markers, origin): never visible or settable through the mount. Escaped names are not. */
  isPrivate (name: string): boolean {
    return name.startsWith(this.prefix) && !this.isEscaped(name)
  }

  /** The name in the layers of an xattr named `name` through the mount, or the errno the kernel answers for it. */
  onDisk (name: string): string | 'EINVAL' | 'EOPNOTSUPP' {
    if (!name.startsWith(this.prefix)) return name
    if (name.length === this.prefix.length) return 'EINVAL'
    const escaped = this.prefix + this.escape + name.slice(this.prefix.length)
    return escaped.length > XATTR_NAME_MAX ? 'EOPNOTSUPP' : escaped
  }

  /** How an xattr found in a layer shows through the mount: undefined when it is the overlay's own. */
  throughMount (name: string): string | undefined {
    if (!name.startsWith(this.prefix)) return name
    if (!this.isEscaped(name)) return undefined
    return this.prefix + name.slice(this.prefix.length + this.escape.length)
  }
}

/** The kernel's form as root. */
export const TRUSTED_XATTRS = new OverlayXattrs('trusted.overlay.', 'trusted.overlay.ts.origin', false)
/** The kernel's form with its `userxattr` option (rootless). */
export const USER_XATTRS = new OverlayXattrs('user.overlay.', 'user.overlay.ts.origin', true)
/** The oci upper form's private xattrs (fuse-overlayfs keeps its own under user.fuseoverlayfs.*). */
export const OCI_UPPER_XATTRS = new OverlayXattrs('user.overlayts.', 'user.overlayts.origin', true)

export function xattrsOf (ns: XattrNamespace): OverlayXattrs {
  return ns === 'user' ? USER_XATTRS : TRUSTED_XATTRS
}

// The kernel form's opaque marker, for code that knows only that form (unpack).
export const OPAQUE_XATTR = TRUSTED_XATTRS.opaque
