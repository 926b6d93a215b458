/**
 * The kernel's FUSE wire protocol (include/uapi/linux/fuse.h), as much of it
 * as overlayts speaks: opcodes, flags and struct sizes. Little-endian, as on
 * every Linux architecture Node runs on.
 *
 * Debian's linux-libc-dev (6.1, protocol 7.38) predates passthrough (7.40),
 * statx (7.39) and the newer INIT bits; those are written here from the
 * kernel's documentation (Documentation/filesystems/fuse-passthrough.rst and
 * the header's changelog).
 */

export const FUSE_KERNEL_VERSION = 7
/** The highest minor version this server understands; the kernel may offer more. */
export const FUSE_KERNEL_MINOR_VERSION = 40
/** Passthrough needs 7.40; below it the server serves reads and writes itself. */
export const PASSTHROUGH_MINOR = 40

export enum Op {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SETUPMAPPING = 48,
  REMOVEMAPPING = 49,
  SYNCFS = 50,
  TMPFILE = 51,
  STATX = 52,
}

/** INIT flags (fuse_init_in/out.flags; bits 32.. travel in flags2). */
export const InitFlag = {
  ASYNC_READ: 1n << 0n,
  POSIX_LOCKS: 1n << 1n,
  ATOMIC_O_TRUNC: 1n << 3n,
  EXPORT_SUPPORT: 1n << 4n,
  BIG_WRITES: 1n << 5n,
  DONT_MASK: 1n << 6n,
  FLOCK_LOCKS: 1n << 10n,
  AUTO_INVAL_DATA: 1n << 12n,
  DO_READDIRPLUS: 1n << 13n,
  READDIRPLUS_AUTO: 1n << 14n,
  ASYNC_DIO: 1n << 15n,
  WRITEBACK_CACHE: 1n << 16n,
  PARALLEL_DIROPS: 1n << 18n,
  HANDLE_KILLPRIV: 1n << 19n,
  POSIX_ACL: 1n << 20n,
  ABORT_ERROR: 1n << 21n,
  MAX_PAGES: 1n << 22n,
  CACHE_SYMLINKS: 1n << 23n,
  NO_OPENDIR_SUPPORT: 1n << 24n,
  EXPLICIT_INVAL_DATA: 1n << 25n,
  HANDLE_KILLPRIV_V2: 1n << 28n,
  SETXATTR_EXT: 1n << 29n,
  INIT_EXT: 1n << 30n,
  SECURITY_CTX: 1n << 32n,
  HAS_EXPIRE_ONLY: 1n << 35n,
  DIRECT_IO_ALLOW_MMAP: 1n << 36n,
  PASSTHROUGH: 1n << 37n,
  NO_EXPORT_SUPPORT: 1n << 38n,
  HAS_RESEND: 1n << 39n,
  OVER_IO_URING: 1n << 41n
} as const

/** fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0
export const FOPEN_KEEP_CACHE = 1 << 1
export const FOPEN_CACHE_DIR = 1 << 3
export const FOPEN_NOFLUSH = 1 << 5
export const FOPEN_PASSTHROUGH = 1 << 7

/** fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0
export const FATTR_UID = 1 << 1
export const FATTR_GID = 1 << 2
export const FATTR_SIZE = 1 << 3
export const FATTR_ATIME = 1 << 4
export const FATTR_MTIME = 1 << 5
export const FATTR_FH = 1 << 6
export const FATTR_ATIME_NOW = 1 << 7
export const FATTR_MTIME_NOW = 1 << 8
export const FATTR_LOCKOWNER = 1 << 9
export const FATTR_CTIME = 1 << 10
export const FATTR_KILL_SUIDGID = 1 << 11

export const FUSE_GETATTR_FH = 1 << 0
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0
export const FUSE_FSYNC_FDATASYNC = 1 << 0

export enum NotifyCode {
  INVAL_INODE = 2,
  INVAL_ENTRY = 3,
  DELETE = 6,
}

export const IN_HEADER_SIZE = 40
export const OUT_HEADER_SIZE = 16
export const ATTR_SIZE = 88
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE
export const DIRENT_HEADER_SIZE = 24
export const INIT_OUT_SIZE = 64
export const OPEN_OUT_SIZE = 16
export const STATFS_OUT_SIZE = 80

/** The largest request body the server accepts: max_pages (256) pages of data. */
export const MAX_PAGES = 256
export const MAX_WRITE = MAX_PAGES * 4096
/** The device read buffer: one maximal write plus its headers. */
export const READ_BUFFER_SIZE = MAX_WRITE + 4096

export const ROOT_NODE_ID = 1

/** Rounds a dirent length up to 8 bytes, as FUSE_DIRENT_ALIGN. */
export function direntAlign (n: number): number {
  return (n + 7) & ~7
}
