/**
 * Extended attributes without following symlinks (l*xattr), on the project's
 * own addon (native.ts). Paths and names are byte strings (each char code one
 * byte), so a name with any bytes reads, lists, sets and removes; values are
 * Buffers. Failures are errno errors (code, errno, syscall, path) as node:fs
 * throws them.
 */
import * as native from './native.js'

/** The value, or undefined when the attribute is not set (ENODATA). */
export function lgetxattr (path: string, name: string): Buffer | undefined {
  return native.lgetxattr(path, name) ?? undefined
}

/** The names set on `path`, as byte strings. */
export function llistxattr (path: string): string[] {
  const raw = native.llistxattr(path)
  const names: string[] = []
  let start = 0
  for (let i = raw.indexOf(0); i >= 0; i = raw.indexOf(0, start)) {
    if (i > start) names.push(raw.toString('latin1', start, i))
    start = i + 1
  }
  return names
}

export const XATTR_CREATE: number = native.XATTR_CREATE
export const XATTR_REPLACE: number = native.XATTR_REPLACE

/** lsetxattr with the create/replace flags, which the kernel checks (EEXIST / ENODATA). */
export function lsetxattr (path: string, name: string, value: Uint8Array, flags = 0): void {
  native.lsetxattr(path, name, value, flags)
}

export function lremovexattr (path: string, name: string): void {
  native.lremovexattr(path, name)
}
