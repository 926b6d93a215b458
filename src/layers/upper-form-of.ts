/**
 * The marker form an upper was written in, read from what it holds (for a
 * stack given by options with upper_form=auto and no work dir to probe):
 * `user.overlayts.*` xattrs or `.wh.*` names (and no char 0/0 whiteout) mean
 * the oci form; `user.overlay.*` xattrs the userxattr form; `trusted.overlay.*`
 * xattrs or char 0/0 whiteouts the kernel's; undefined when nothing tells
 * (an upper without markers reads the same in every form). Stops at the
 * first telling xattr.
 */
import { isWhiteoutStat, OCI_UPPER_XATTRS, OCI_WHITEOUT_PREFIX, TRUSTED_XATTRS, USER_XATTRS } from '../overlay/markers.js'
import { sys } from '../overlay/sys/fs.js'
import type { UpperForm } from '../overlay/upper-form.js'

export function detectUpperForm (root: string): UpperForm | undefined {
  let sawOciName = false
  let sawCharWhiteout = false
  const dirs = [root]
  while (dirs.length > 0) {
    const dir = dirs.pop()!
    let xattrs: string[] = []
    try { xattrs = sys.llistxattr(dir) } catch { /* none */ }
    if (xattrs.some((n) => n.startsWith(OCI_UPPER_XATTRS.prefix))) return 'oci'
    if (xattrs.some((n) => n.startsWith(USER_XATTRS.prefix))) return 'userxattr'
    if (xattrs.some((n) => n.startsWith(TRUSTED_XATTRS.prefix))) return 'kernel'
    let entries
    try { entries = sys.readdir(dir) } catch { continue }
    for (const e of entries) {
      if (e.name.startsWith(OCI_WHITEOUT_PREFIX)) sawOciName = true
      if (e.isDirectory()) dirs.push(dir + '/' + e.name)
      else if (e.isCharacterDevice()) {
        const st = sys.lstat(dir + '/' + e.name)
        if (st !== undefined && isWhiteoutStat(st)) sawCharWhiteout = true
      }
    }
  }
  if (sawCharWhiteout) return 'kernel'
  return sawOciName ? 'oci' : undefined
}
