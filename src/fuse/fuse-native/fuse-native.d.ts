/**
 * Types for fuse-native 2.2.6 as patched by patches/fuse-native+2.2.6.patch
 * (built from source against Debian's libfuse2).
 *
 * Conventions (unchanged from upstream): every callback's first argument is
 * the result: 0 / null on success or a negative errno (e.g. -2 for ENOENT).
 * For read/write/getxattr-style ops the success value is a byte count.
 * Every operation except init receives the caller's identity first.
 */
declare module 'fuse-native' {
  namespace Fuse {
    /** Identity of the process making the request (fuse_get_context()). */
    interface Caller {
      uid: number
      gid: number
      pid: number
    }

    /** Seconds + nanoseconds. nsec may be UTIME_NOW (0x3fffffff) or UTIME_OMIT (0x3ffffffe) in utimens. */
    interface Timespec {
      sec: number
      nsec: number
    }

    type Int = number | bigint

    /**
     * Stat reply. A Node `fs.BigIntStats` (fs.lstatSync(p, { bigint: true }))
     * fits as is. Encoded losslessly: 64-bit ino/size/blocks/dev/rdev,
     * nanosecond times (nanoseconds since the epoch, may be negative).
     */
    interface StatInput {
      mode: Int
      uid: Int
      gid: Int
      size: Int
      dev: Int
      nlink: Int
      ino: Int
      rdev: Int
      blksize: Int
      blocks: Int
      atimeNs: bigint
      mtimeNs: bigint
      ctimeNs: bigint
    }

    /**
     * statfs reply; Node's fs.statfsSync(p, { bigint: true }) (or without bigint) fits.
     * 64-bit counters. Defaults: frsize = bsize, favail = ffree, namemax = 255, flag = 0.
     */
    interface StatfsInput {
      bsize: Int
      blocks: Int
      bfree: Int
      bavail: Int
      files: Int
      ffree: Int
      frsize?: Int
      favail?: Int
      namemax?: Int
      flag?: Int
      fsid?: Int
    }

    /**
     * The path of an operation on an open handle: null when the file or
     * directory was removed while open (libfuse's flag_nullpath_ok, set by the
     * patched binding: with hard_remove an unlinked node has no path). Such an
     * operation must be served from the fh alone.
     */
    type FhPath = string | null

    /** 0 or null = success, otherwise a negative errno. */
    type Errno = number | null

    type DoneCallback = (err: Errno) => void
    /** (result): negative errno on failure, byte count on success. */
    type ResultCallback = (result: number) => void
    type StatCallback = (err: Errno, stat?: StatInput) => void
    type StatfsCallback = (err: Errno, statfs?: StatfsInput) => void
    /** fh: a small non-negative integer (uint32); 0 is a valid handle. */
    type FhCallback = (err: Errno, fh?: number) => void
    type ReaddirCallback = (err: Errno, names?: string[], stats?: StatInput[]) => void
    type ReadlinkCallback = (err: Errno, target?: string) => void
    /** value null => ENODATA. Size probes and ERANGE are handled by the binding. */
    type GetxattrCallback = (err: Errno, value?: Buffer | null) => void
    type ListxattrCallback = (err: Errno, names?: string[]) => void

    interface Operations {
      init?(cb: DoneCallback): void
      error?(cb: DoneCallback): void
      access?(ctx: Caller, path: string, mode: number, cb: DoneCallback): void
      statfs?(ctx: Caller, path: string, cb: StatfsCallback): void
      getattr?(ctx: Caller, path: string, cb: StatCallback): void
      fgetattr?(ctx: Caller, path: FhPath, fh: number, cb: StatCallback): void
      flush?(ctx: Caller, path: FhPath, fh: number, cb: DoneCallback): void
      fsync?(ctx: Caller, path: FhPath, datasync: number, fh: number, cb: DoneCallback): void
      fsyncdir?(ctx: Caller, path: FhPath, datasync: number, fh: number, cb: DoneCallback): void
      readdir?(ctx: Caller, path: FhPath, cb: ReaddirCallback): void
      truncate?(ctx: Caller, path: string, size: number, cb: DoneCallback): void
      ftruncate?(ctx: Caller, path: FhPath, fh: number, size: number, cb: DoneCallback): void
      utimens?(ctx: Caller, path: string, atime: Timespec, mtime: Timespec, cb: DoneCallback): void
      readlink?(ctx: Caller, path: string, cb: ReadlinkCallback): void
      chown?(ctx: Caller, path: string, uid: number, gid: number, cb: DoneCallback): void
      chmod?(ctx: Caller, path: string, mode: number, cb: DoneCallback): void
      /** rdev: the full dev_t as a number. */
      mknod?(ctx: Caller, path: string, mode: number, rdev: number, cb: DoneCallback): void
      /**
       * value points into libfuse's request memory and is detached once cb is
       * called: copy it if it must outlive the callback. position is always 0 on Linux.
       */
      setxattr?(ctx: Caller, path: string, name: string, value: Buffer, position: number, flags: number, cb: DoneCallback): void
      getxattr?(ctx: Caller, path: string, name: string, position: number, cb: GetxattrCallback): void
      listxattr?(ctx: Caller, path: string, cb: ListxattrCallback): void
      removexattr?(ctx: Caller, path: string, name: string, cb: DoneCallback): void
      open?(ctx: Caller, path: string, flags: number, cb: FhCallback): void
      opendir?(ctx: Caller, path: string, flags: number, cb: FhCallback): void
      /**
       * buf is libfuse's buffer (detached after cb). offset is a number (exact below 2^53).
       * cb(bytesRead) or cb(-errno).
       */
      read?(ctx: Caller, path: FhPath, fh: number, buf: Buffer, len: number, offset: number, cb: ResultCallback): void
      /** cb(bytesWritten) or cb(-errno). buf is detached after cb. */
      write?(ctx: Caller, path: FhPath, fh: number, buf: Buffer, len: number, offset: number, cb: ResultCallback): void
      release?(ctx: Caller, path: FhPath, fh: number, cb: DoneCallback): void
      releasedir?(ctx: Caller, path: FhPath, fh: number, cb: DoneCallback): void
      /** flags: the open(2) flags. */
      create?(ctx: Caller, path: string, mode: number, flags: number, cb: FhCallback): void
      unlink?(ctx: Caller, path: string, cb: DoneCallback): void
      rename?(ctx: Caller, src: string, dest: string, cb: DoneCallback): void
      link?(ctx: Caller, src: string, dest: string, cb: DoneCallback): void
      symlink?(ctx: Caller, target: string, linkpath: string, cb: DoneCallback): void
      mkdir?(ctx: Caller, path: string, mode: number, cb: DoneCallback): void
      rmdir?(ctx: Caller, path: string, cb: DoneCallback): void
    }

    interface Options {
      /** Extra `-o` options appended verbatim, e.g. ['fsname=overlay', 'big_writes', 'max_write=131072']. */
      options?: string[]
      /** Report the ino from getattr/readdir (mount option use_ino). */
      useIno?: boolean
      /** Per-op timeout in ms, answering ETIMEDOUT. Default: no timeout. */
      timeout?: number | false
      /**
       * Called once the FUSE loop has ended (the filesystem was unmounted,
       * by unmount() or by anyone running `umount`). Loop handles are closed
       * by then, so the process can exit.
       */
      onUnmounted?: () => void
      debug?: boolean
      /** Create the mountpoint if missing. */
      mkdir?: boolean
      /** Lazily unmount a stale (ENOTCONN) mount at the mountpoint before mounting. */
      force?: boolean
      /** unmount() uses `umount -l` / `fusermount -uz`. Default false. */
      lazyUnmount?: boolean
      allowOther?: boolean
      allowRoot?: boolean
      autoUnmount?: boolean
      defaultPermissions?: boolean
      fsname?: string
      subtype?: string
      maxRead?: number
      blksize?: number
      kernelCache?: boolean
      autoCache?: boolean
      umask?: number
      uid?: number
      gid?: number
      entryTimeout?: number
      attrTimeout?: number
      acAttrTimeout?: number
      noforget?: boolean
    }

    interface UnmountOptions {
      lazy?: boolean
    }
  }

  class Fuse {
    constructor (mnt: string, ops: Fuse.Operations, opts?: Fuse.Options)
    readonly mnt: string
    readonly opts: Fuse.Options
    readonly ops: Fuse.Operations

    /** Mounts; cb runs once the kernel handshake (init) is done, or with an Error if mounting failed. */
    mount (cb: (err: Error | null) => void): void
    /**
     * Unmounts (as root: `umount MNT`, falling back to `fusermount -u MNT`)
     * and waits for the FUSE loop to end. A no-op if already unmounted.
     */
    unmount (cb: (err: Error | null) => void): void
    errno (code: string): number

    /** Unmount any mountpoint (same strategy as unmount()); lazy only when asked. */
    static unmount (mnt: string, cb: (err: Error | null) => void): void
    static unmount (mnt: string, opts: Fuse.UnmountOptions, cb: (err: Error | null) => void): void

    static readonly UTIME_NOW: number
    static readonly UTIME_OMIT: number

    static readonly EPERM: number
    static readonly ENOENT: number
    static readonly ESRCH: number
    static readonly EINTR: number
    static readonly EIO: number
    static readonly ENXIO: number
    static readonly E2BIG: number
    static readonly EBADF: number
    static readonly EAGAIN: number
    static readonly ENOMEM: number
    static readonly EACCES: number
    static readonly EFAULT: number
    static readonly EBUSY: number
    static readonly EEXIST: number
    static readonly EXDEV: number
    static readonly ENODEV: number
    static readonly ENOTDIR: number
    static readonly EISDIR: number
    static readonly EINVAL: number
    static readonly ENFILE: number
    static readonly EMFILE: number
    static readonly ETXTBSY: number
    static readonly EFBIG: number
    static readonly ENOSPC: number
    static readonly ESPIPE: number
    static readonly EROFS: number
    static readonly EMLINK: number
    static readonly EPIPE: number
    static readonly ERANGE: number
    static readonly ENAMETOOLONG: number
    static readonly ENOSYS: number
    static readonly ENOTEMPTY: number
    static readonly ELOOP: number
    static readonly ENODATA: number
    static readonly EOVERFLOW: number
    static readonly EOPNOTSUPP: number
    static readonly ENOTCONN: number
    static readonly ETIMEDOUT: number
    static readonly ESTALE: number
    static readonly EDQUOT: number
  }

  export = Fuse
}
