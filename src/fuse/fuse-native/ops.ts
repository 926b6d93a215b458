/**
 * The FUSE operations table: a thin map from fuse-native's callbacks onto
 * Overlay. It converts FUSE paths to merged paths, runs the operation,
 * answers with the value or a negative errno, and logs. No overlay logic.
 *
 * Operations with nothing to do are left out, not answered with 0: libfuse
 * then answers opendir/releasedir/fsyncdir itself, and after the first
 * ENOSYS the kernel stops sending FLUSH; each saves a trip into JS.
 *
 * Every callback is answered exactly once, whatever happens: a FUSE worker
 * thread waits on each request, so an unanswered one would hang its caller.
 * An exception that is not an FsError (a bug) is answered with EIO and logged
 * at error level with its stack; the daemon keeps serving.
 *
 * Names: libfuse hands over and takes back UTF-8 strings, while the core holds
 * byte strings (src/overlay/bytes.ts). Paths, names, symlink targets and
 * xattr names are converted on the way in, and listing names, link targets
 * and xattr names on the way out. A name that is not valid UTF-8 cannot
 * cross this binding intact (it shows with U+FFFD): a limit of this
 * transport; the default kernel transport passes any byte.
 */
import type Fuse from 'fuse-native'
import type { Logger } from 'pino'
import { bytesToUtf8, displayPath, utf8ToBytes } from '../../overlay/bytes.js'
import { FsError, MarkerWriteError, toFsError } from '../../overlay/errors.js'
import type { Attr, Caller, DirEntry, Overlay } from '../../overlay/overlay.js'
import { toRel } from '../../overlay/paths.js'
import type { IoStats } from '../io-stats.js'

type Errno = number

/** Errnos that are ordinary answers, not failures worth a warning. */
const ROUTINE = new Set(['ENOENT', 'ENODATA', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EROFS', 'EOPNOTSUPP', 'EACCES', 'EPERM', 'ENAMETOOLONG', 'EINVAL', 'EXDEV', 'ENOSYS'])

export interface OpsOptions {
  readonly log: Logger
  /** Log every operation (at debug level). */
  readonly traceOps: boolean
  /** Counts read/write requests by size (see io-stats.ts). */
  readonly ioStats?: IoStats
}

/**
 * The path of an operation on an open handle, for logs: libfuse passes none
 * (null) once the file was removed while open; such operations work by fh.
 */
function fhPath (path: Fuse.FhPath): string { return path ?? '(removed)' }

/**
 * Files unlinked while open. libfuse 2's high-level API needs a path for
 * every getattr, so with hard_remove an fstat of such a file fails with
 * ENOENT. Without hard_remove, libfuse instead renames the file to
 * `.fuse_hiddenXXXXXXXXYYYYYYYY` and unlinks that name at the last close.
 * That rename is caught here: the file is unlinked from the overlay for real
 * (nothing named .fuse_hidden* ever appears in the merged dir or in upper),
 * and the hidden name lives only in this table, answered from the open handle.
 */
const HIDDEN_NAME = /(^|\/)\.fuse_hidden[0-9a-f]{16}$/

class DetachedFiles {
  private readonly byPath = new Map<string, number[]>()

  static isHiddenName (path: string): boolean { return HIDDEN_NAME.test(path) }

  add (path: string, fhs: number[]): void { this.byPath.set(path, fhs) }
  /** An open handle of the detached file at `path`, if any. */
  handle (path: string): number | undefined { return this.byPath.get(path)?.[0] }
  has (path: string): boolean { return this.byPath.has(path) }
  remove (path: string): void { this.byPath.delete(path) }
  released (fh: number): void {
    for (const fhs of this.byPath.values()) {
      const i = fhs.indexOf(fh)
      if (i >= 0) fhs.splice(i, 1)
    }
  }
}

export function makeOperations (overlay: Overlay, opts: OpsOptions): Fuse.Operations {
  const { log, traceOps, ioStats } = opts
  const detached = new DetachedFiles()

  /** Runs `fn` and answers `reply(0, value)` or `reply(-errno)`. */
  function run<T> (op: string, path: string, fn: () => T | Promise<T>, reply: (err: Errno, value?: T) => void): void {
    const fail = (e: unknown): void => {
      const err = toFsError(e, utf8ToBytes(path))
      if (!(e instanceof FsError) && err.code === 'EIO') {
        log.error({ op, path: displayPath(err.path), errno: err.code, err: e }, 'operation failed unexpectedly')
      } else if (err instanceof MarkerWriteError) {
        log.error({ op, path: displayPath(err.path), errno: err.code, marker: err.marker, form: err.form }, 'cannot write an overlay marker in upper')
      } else if (!ROUTINE.has(err.code)) {
        log.warn({ op, path: displayPath(err.path), errno: err.code }, 'operation failed')
      } else if (traceOps) {
        log.debug({ op, path: displayPath(err.path), errno: err.code }, 'op')
      }
      reply(-err.errno)
    }
    let result: T | Promise<T>
    try {
      result = fn()
    } catch (e) { fail(e); return }
    if (result instanceof Promise) {
      result.then((v) => { if (traceOps) log.debug({ op, path }, 'op'); reply(0, v) }, fail)
    } else {
      if (traceOps) log.debug({ op, path }, 'op')
      reply(0, result)
    }
  }

  /** read/write answer a byte count or a negative errno in one argument. */
  function runCount (op: string, path: string, fn: () => Promise<number>, reply: (n: number) => void): void {
    run(op, path, fn, (err, n) => reply(err !== 0 ? err : (n ?? 0)))
  }

  /** A libfuse path (UTF-8) as the core's merged path (a byte string). */
  const rel = (fusePath: string): string => toRel(utf8ToBytes(fusePath))

  const statOf = (a: Attr): Fuse.StatInput => ({ ...a, dev: 0 })
  // readdir's entries carry only what libfuse puts in a dirent: inode number and type.
  const direntStat = (e: DirEntry): Fuse.StatInput => ({
    mode: e.mode, ino: e.ino, uid: 0, gid: 0, size: 0, dev: 0, nlink: 1, rdev: 0, blksize: 0, blocks: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n
  })

  return {
    init (cb) { cb(0) },
    getattr (_ctx, path, cb) {
      run('getattr', path, () => {
        if (detached.has(path)) {
          const fh = detached.handle(path)
          if (fh === undefined) throw new FsError('ENOENT', utf8ToBytes(path), 'getattr')
          return statOf(overlay.fgetattr(fh))
        }
        return statOf(overlay.getattr(rel(path)))
      }, cb)
    },
    fgetattr (_ctx, path, fh, cb) { run('fgetattr', fhPath(path), () => statOf(overlay.fgetattr(fh)), cb) },
    access (_ctx, path, mode, cb) { run('access', path, () => overlay.access(rel(path), mode), (e) => cb(e)) },
    readlink (_ctx, path, cb) { run('readlink', path, () => bytesToUtf8(overlay.readlink(rel(path))), cb) },
    readdir (_ctx, path, cb) {
      // A directory removed while open lists as empty, as on any local filesystem.
      if (path === null) { cb(0, [], []); return }
      run('readdir', path, () => overlay.readdir(rel(path)), (err, entries) => {
        if (err !== 0 || entries === undefined) return cb(err)
        cb(0, entries.map((e) => bytesToUtf8(e.name)), entries.map((e) => direntStat(e)))
      })
    },
    statfs (_ctx, path, cb) { run('statfs', path, () => overlay.statfs(), cb) },
    open (_ctx, path, flags, cb) { run('open', path, () => overlay.open(rel(path), flags), cb) },
    create (ctx, path, mode, flags, cb) { run('create', path, () => overlay.create(rel(path), mode, flags, caller(ctx)), cb) },
    read (_ctx, path, fh, buf, len, offset, cb) {
      ioStats?.count('read', len)
      runCount('read', fhPath(path), () => overlay.read(fh, buf, len, offset), cb)
    },
    write (ctx, path, fh, buf, len, offset, cb) {
      ioStats?.count('write', len)
      runCount('write', fhPath(path), () => overlay.write(fh, buf, len, offset, caller(ctx)), cb)
    },
    release (_ctx, path, fh, cb) {
      detached.released(fh)
      run('release', fhPath(path), () => overlay.release(fh), (e) => cb(e))
    },
    fsync (_ctx, path, datasync, fh, cb) { run('fsync', fhPath(path), () => overlay.fsync(fh, datasync !== 0), (e) => cb(e)) },
    truncate (ctx, path, size, cb) { run('truncate', path, () => overlay.truncate(rel(path), size, caller(ctx)), (e) => cb(e)) },
    ftruncate (ctx, path, fh, size, cb) { run('ftruncate', fhPath(path), () => overlay.ftruncate(fh, size, caller(ctx)), (e) => cb(e)) },
    chmod (_ctx, path, mode, cb) { run('chmod', path, () => overlay.chmod(rel(path), mode), (e) => cb(e)) },
    chown (_ctx, path, uid, gid, cb) { run('chown', path, () => overlay.chown(rel(path), uid, gid), (e) => cb(e)) },
    utimens (_ctx, path, atime, mtime, cb) { run('utimens', path, () => overlay.utimens(rel(path), atime, mtime), (e) => cb(e)) },
    mknod (ctx, path, mode, rdev, cb) { run('mknod', path, () => overlay.mknod(rel(path), mode, rdev, caller(ctx)), (e) => cb(e)) },
    mkdir (ctx, path, mode, cb) { run('mkdir', path, () => overlay.mkdir(rel(path), mode, caller(ctx)), (e) => cb(e)) },
    symlink (ctx, target, linkpath, cb) { run('symlink', linkpath, () => overlay.symlink(utf8ToBytes(target), rel(linkpath), caller(ctx)), (e) => cb(e)) },
    link (_ctx, src, dest, cb) { run('link', dest, () => overlay.link(rel(src), rel(dest)), (e) => cb(e)) },
    unlink (_ctx, path, cb) {
      if (detached.has(path)) { detached.remove(path); cb(0); return }
      run('unlink', path, () => overlay.unlink(rel(path)), (e) => cb(e))
    },
    rmdir (_ctx, path, cb) { run('rmdir', path, () => overlay.rmdir(rel(path)), (e) => cb(e)) },
    rename (_ctx, src, dest, cb) {
      if (DetachedFiles.isHiddenName(dest)) {
        // libfuse hiding a file unlinked while open (see DetachedFiles).
        run('unlink', src, async () => {
          const r = rel(src)
          await overlay.unlink(r)
          detached.add(dest, overlay.detachHandles(r))
        }, (e) => cb(e))
        return
      }
      run('rename', src, () => overlay.rename(rel(src), rel(dest)), (e) => cb(e))
    },
    getxattr (_ctx, path, name, _position, cb) { run('getxattr', path, () => overlay.getxattr(rel(path), utf8ToBytes(name)), cb) },
    listxattr (_ctx, path, cb) { run('listxattr', path, () => overlay.listxattr(rel(path)).map(bytesToUtf8), cb) },
    setxattr (_ctx, path, name, value, _position, flags, cb) {
      // The binding's buffer is libfuse's memory, gone after cb: copy before any await.
      const copy = Buffer.from(value)
      run('setxattr', path, () => overlay.setxattr(rel(path), utf8ToBytes(name), copy, flags), (e) => cb(e))
    },
    removexattr (_ctx, path, name, cb) { run('removexattr', path, () => overlay.removexattr(rel(path), utf8ToBytes(name)), (e) => cb(e)) }
  }
}

function caller (ctx: Fuse.Caller): Caller {
  return { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid }
}
