/**
 * Extended attributes without following symlinks (l*xattr), on top of
 * @napi-rs/xattr. That package reports failures as "… (os error N)" strings
 * and a missing attribute as null; this adapter turns both into the errno
 * errors the rest of the core expects (code, errno, syscall, path).
 */
import { createRequire } from 'node:module'
import { constants } from 'node:os'

interface XattrBinding {
  getAttributeSync(path: string, name: string): Buffer | null
  listAttributesSync(path: string): string[]
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void
  removeAttributeSync(path: string, name: string): void
}

const binding = createRequire(import.meta.url)('@napi-rs/xattr') as XattrBinding

const codeByErrno = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name])
)

export interface ErrnoError extends Error { code: string, errno: number, syscall: string, path: string }

function errnoError (cause: unknown, syscall: string, path: string): ErrnoError {
  const message = cause instanceof Error ? cause.message : String(cause)
  const m = /os error (\d+)/.exec(message)
  const num = m ? Number(m[1]) : constants.errno.EIO
  const code = codeByErrno.get(num) ?? 'EIO'
  return Object.assign(new Error(`${code}: ${syscall} ${path}`), { code, errno: -num, syscall, path })
}

/** The value, or undefined when the attribute is not set (ENODATA). */
export function lgetxattr (path: string, name: string): Buffer | undefined {
  let v: Buffer | null
  try {
    v = binding.getAttributeSync(path, name)
  } catch (e) { throw errnoError(e, 'lgetxattr', path) }
  return v ?? undefined
}

export function llistxattr (path: string): string[] {
  try {
    return binding.listAttributesSync(path)
  } catch (e) { throw errnoError(e, 'llistxattr', path) }
}

export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

/**
 * lsetxattr with the create/replace flags. The binding has no flags, so they
 * are checked first; the daemon's single JS thread makes the check and the set
 * one step for every request that goes through the mount.
 */
export function lsetxattr (path: string, name: string, value: Uint8Array, flags = 0): void {
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    const present = lgetxattr(path, name) !== undefined
    if ((flags & XATTR_CREATE) && present) {
      throw Object.assign(new Error(`EEXIST: lsetxattr ${path}`), { code: 'EEXIST', errno: -constants.errno.EEXIST, syscall: 'lsetxattr', path })
    }
    if ((flags & XATTR_REPLACE) && !present) {
      throw Object.assign(new Error(`ENODATA: lsetxattr ${path}`), { code: 'ENODATA', errno: -constants.errno.ENODATA, syscall: 'lsetxattr', path })
    }
  }
  try {
    binding.setAttributeSync(path, name, value)
  } catch (e) { throw errnoError(e, 'lsetxattr', path) }
}

export function lremovexattr (path: string, name: string): void {
  try {
    binding.removeAttributeSync(path, name)
  } catch (e) { throw errnoError(e, 'lremovexattr', path) }
}
