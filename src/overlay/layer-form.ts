/**
 * Which form a lower layer's whiteouts take (see markers.ts): the kernel's
 * (char 0/0 devices, trusted.overlay.* xattrs) or the OCI image form
 * (`.wh.NAME` files, `.wh..wh..opq`). The kernel's overlayfs knows only its
 * own form and shows a file named `.wh.foo` as a plain file; OCI layers
 * extracted from an image hold such files as markers. A layer is one or the
 * other, decided once per layer at mount:
 *
 * - `kernel`: `.wh.*` names are plain names, as the kernel shows them;
 * - `oci`: `.wh.NAME` whites out NAME, `.wh..wh..opq` makes its dir opaque,
 *   and no `.wh.*` name is shown (char 0/0 whiteouts and the overlay xattrs
 *   are honoured in every layer);
 * - `auto` (the default): a layer holding any char 0/0 device or any
 *   trusted.overlay.* or user.overlay.* xattr on a directory is kernel form; else one holding
 *   a `.wh.*` name is OCI form; a layer with neither has no markers at all
 *   and reads the same either way (kernel form). `-o whiteouts=kernel|oci`
 *   decides for every lower layer, for the rare layer that is ambiguous (a
 *   kernel-form layer with `.wh.*` files and no whiteout or xattr).
 *
 * Detection walks the layer (one readdir and one listxattr per directory,
 * one lstat per char device) and stops at the first kernel marker.
 */
import { OCI_WHITEOUT_PREFIX, TRUSTED_XATTRS, USER_XATTRS, isWhiteoutStat } from './markers.js'
import { sys } from './sys/fs.js'

export type WhiteoutForm = 'kernel' | 'oci'
export type WhiteoutOption = WhiteoutForm | 'auto'

export const WHITEOUT_OPTIONS: readonly WhiteoutOption[] = ['kernel', 'oci', 'auto']

/** The form of the layer rooted at `root` (see above). */
export function detectWhiteoutForm (root: string): WhiteoutForm {
  let sawOci = false
  const dirs = [root]
  while (dirs.length > 0) {
    const dir = dirs.pop()!
    let names: string[]
    try {
      names = sys.llistxattr(dir)
    } catch { names = [] }
    if (names.some((n) => n.startsWith(TRUSTED_XATTRS.prefix) || n.startsWith(USER_XATTRS.prefix))) return 'kernel'
    let entries
    try {
      entries = sys.readdir(dir)
    } catch { continue }
    for (const e of entries) {
      if (e.isDirectory()) {
        dirs.push(dir + '/' + e.name)
      } else if (e.isCharacterDevice()) {
        const st = sys.lstat(dir + '/' + e.name)
        if (st !== undefined && isWhiteoutStat(st)) return 'kernel'
      }
      if (e.name.startsWith(OCI_WHITEOUT_PREFIX)) sawOci = true
    }
  }
  return sawOci ? 'oci' : 'kernel'
}

/** The form each lower layer is read in, for the `whiteouts=` option. */
export function whiteoutFormOf (root: string, option: WhiteoutOption): WhiteoutForm {
  return option === 'auto' ? detectWhiteoutForm(root) : option
}
