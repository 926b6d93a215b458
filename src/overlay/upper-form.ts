/**
 * Which form the upper layer's markers take (see markers.ts), chosen once
 * at mount and passed to the overlay:
 *
 * - `kernel`: char 0/0 whiteouts and `trusted.overlay.*` xattrs, the kernel's
 *   overlayfs format as root;
 * - `userxattr`: char 0/0 whiteouts and `user.overlay.*` xattrs, the format
 *   of the kernel's `-o userxattr` (rootless, in a user namespace): no
 *   redirects, so directories with lower parts are not renamed (EXDEV);
 * - `oci`: `.wh.NAME` files, `.wh..wh..opq` and `user.overlayts.*` xattrs,
 *   for an upper whose filesystem refuses char 0/0 devices (an upper on an
 *   overlayfs, as inside a container), as fuse-overlayfs writes it.
 *
 * `auto` (the default) probes in the workdir what the upper's filesystem
 * lets the daemon do: a char 0/0 device refused means `oci`; else a
 * `trusted.*` xattr refused means `userxattr` (if `user.*` xattrs work);
 * else `kernel`. The lowers' overlay xattrs are read in the namespace the
 * chosen form writes (user.overlay.* for `userxattr`), as the kernel reads
 * them with and without its option.
 */
import { constants } from 'node:fs'
import type { XattrNamespace } from './markers.js'
import type { Sys } from './sys/fs.js'

export type UpperForm = 'kernel' | 'userxattr' | 'oci'
export type UpperFormOption = UpperForm | 'auto'

export const UPPER_FORM_OPTIONS: readonly UpperFormOption[] = ['auto', 'kernel', 'userxattr', 'oci']

export interface UpperFormChoice {
  readonly form: UpperForm
  /** Why: the option, or what the probe found. */
  readonly reason: string
}

/** The namespace the lowers' overlay xattrs are read in, for an upper in `form`. */
export function lowerXattrNamespace (form: UpperForm): XattrNamespace {
  return form === 'userxattr' ? 'user' : 'trusted'
}

function codeOf (e: unknown): string {
  return String((e as { code?: unknown }).code ?? e)
}

/**
 * The form for an upper whose work dir is `dir` (a directory on the upper's
 * filesystem, writable by the daemon). Probes leave nothing behind.
 */
export function chooseUpperForm (sys: Sys, dir: string, option: UpperFormOption): UpperFormChoice {
  if (option !== 'auto') return { form: option, reason: 'option' }
  const probe = `${dir}/#ots-probe-${process.pid.toString(16)}`
  try {
    sys.mknod(probe, constants.S_IFCHR, 0)
  } catch (e) {
    return { form: 'oci', reason: `a char 0/0 whiteout is refused (${codeOf(e)})` }
  } finally {
    try { sys.unlink(probe) } catch { /* not made */ }
  }
  sys.mkdir(probe, 0o700)
  try {
    try {
      sys.lsetxattr(probe, 'trusted.overlay.ts.probe', Buffer.from('y'))
      return { form: 'kernel', reason: 'trusted.* xattrs and char 0/0 whiteouts work' }
    } catch (e) {
      const trusted = codeOf(e)
      try {
        sys.lsetxattr(probe, 'user.overlay.ts.probe', Buffer.from('y'))
        return { form: 'userxattr', reason: `trusted.* xattrs are refused (${trusted})` }
      } catch (e2) {
        return { form: 'oci', reason: `trusted.* (${trusted}) and user.* (${codeOf(e2)}) xattrs are refused` }
      }
    }
  } finally {
    sys.rmdir(probe)
  }
}
