/**
 * Typed wrapper around the project's own N-API addon (native/overlayts_native.c):
 * the syscalls Node's fs lacks. All calls are synchronous and throw Node-style
 * errno errors (code 'ENOENT', errno -2, syscall, path[, dest]; path and dest
 * as byte strings).
 *
 * Paths are byte strings (each char code one byte, see src/overlay/bytes.ts):
 * they cross into the addon as Buffers of exactly those bytes.
 * The addon is loaded by addon.ts.
 */
import { loadAddon } from './addon.js'

interface NativeBinding {
  mknod(path: Buffer, mode: number, rdev: number): void
  utimensat(path: Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void
  renameat2(oldPath: Buffer, newPath: Buffer, flags: number): void
  copyData(src: Buffer, dst: Buffer): Promise<void>
  lgetxattr(path: Buffer, name: Buffer): Buffer | null
  llistxattr(path: Buffer): Buffer
  lsetxattr(path: Buffer, name: Buffer, value: Uint8Array, flags: number): void
  lremovexattr(path: Buffer, name: Buffer): void
  preadNowait(fd: number, buf: Buffer, len: number, pos: number): number
  fallocate(fd: number, mode: number, offset: number, length: number): void
  lseek(fd: number, offset: number, whence: number): number
  linkFd(fd: number, newPath: Buffer): void
  openDirChain(path: Buffer): number
  readonly UTIME_NOW: number
  readonly UTIME_OMIT: number
  readonly RENAME_NOREPLACE: number
  readonly RENAME_EXCHANGE: number
  readonly RENAME_WHITEOUT: number
  readonly XATTR_CREATE: number
  readonly XATTR_REPLACE: number
}

/** A byte string's bytes. */
function b (s: string): Buffer { return Buffer.from(s, 'latin1') }

const binding = loadAddon() as NativeBinding


/** mknod(2). `mode` includes the S_IF* type bits; an overlay whiteout is S_IFCHR with rdev 0. */
export function mknod (path: string, mode: number, rdev: number): void {
  binding.mknod(b(path), mode, rdev)
}

/**
 * utimensat(2) with AT_SYMLINK_NOFOLLOW (never follows a final symlink).
 * A nsec of UTIME_NOW or UTIME_OMIT is passed through unchanged.
 */
export function utimensat (path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
  binding.utimensat(b(path), atimeSec, atimeNsec, mtimeSec, mtimeNsec)
}

/** renameat2(2); flags: RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT (or 0). */
export function renameat2 (oldPath: string, newPath: string, flags: number): void {
  binding.renameat2(b(oldPath), b(newPath), flags)
}

export const UTIME_NOW: number = binding.UTIME_NOW
export const UTIME_OMIT: number = binding.UTIME_OMIT
export const RENAME_NOREPLACE: number = binding.RENAME_NOREPLACE
export const RENAME_EXCHANGE: number = binding.RENAME_EXCHANGE
export const RENAME_WHITEOUT: number = binding.RENAME_WHITEOUT
export const XATTR_CREATE: number = binding.XATTR_CREATE
export const XATTR_REPLACE: number = binding.XATTR_REPLACE

/** lgetxattr(2): the value, or null when the attribute is not set (ENODATA). */
export function lgetxattr (path: string, name: string): Buffer | null {
  return binding.lgetxattr(b(path), b(name))
}

/** llistxattr(2): the raw list, each name followed by a NUL. */
export function llistxattr (path: string): Buffer {
  return binding.llistxattr(b(path))
}

/** lsetxattr(2); flags XATTR_CREATE / XATTR_REPLACE (or 0) go to the syscall. */
export function lsetxattr (path: string, name: string, value: Uint8Array, flags: number): void {
  binding.lsetxattr(b(path), b(name), value, flags)
}

/** lremovexattr(2). */
export function lremovexattr (path: string, name: string): void {
  binding.lremovexattr(b(path), b(name))
}

/**
 * Copies a regular file's data into a new file `dst` (mode 0600, must not
 * exist) on libuv's thread pool: reflink where possible, else only the data
 * segments (sparse files stay sparse), then fsync. On failure `dst` is removed.
 */
export function copyData (src: string, dst: string): Promise<void> {
  return binding.copyData(b(src), b(dst))
}

/**
 * pread that never waits for the disk: the bytes read, or -1 when the data is
 * not in the page cache (the caller then reads on the thread pool).
 */
export function preadNowait (fd: number, buf: Buffer, len: number, pos: number): number {
  return binding.preadNowait(fd, buf, len, pos)
}

/** fallocate(2); mode as the caller gave it (FALLOC_FL_*). */
export function fallocate (fd: number, mode: number, offset: number, length: number): void {
  binding.fallocate(fd, mode, offset, length)
}

/** lseek(2), for SEEK_DATA and SEEK_HOLE (Node's fs has no lseek). */
export function lseek (fd: number, offset: number, whence: number): number {
  return binding.lseek(fd, offset, whence)
}

/** Gives open file `fd` (an O_TMPFILE file) the name `newPath` (linkat). */
export function linkFd (fd: number, newPath: string): void {
  binding.linkFd(fd, b(newPath))
}

/**
 * An O_PATH descriptor of directory `path`, opened one component at a time
 * from "/" (openat with O_NOFOLLOW: no symlink is followed), so a path of
 * PATH_MAX bytes or more resolves. The caller closes it.
 */
export function openDirChain (path: string): number {
  return binding.openDirChain(b(path))
}
