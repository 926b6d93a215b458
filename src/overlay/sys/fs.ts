/**
 * The one seam between the overlay core and the host filesystem. Every
 * syscall the core makes goes through `sys`, so tests can swap a function
 * (tap's t.mockImport, or plain assignment) to inject faults.
 *
 * Metadata calls are synchronous on purpose: each costs a few microseconds,
 * less than a trip through libuv's thread pool, and the daemon's single JS
 * thread answers them in order. Data calls (copy, read, write, fsync) are
 * asynchronous so that a large copy-up or a slow disk never blocks other
 * requests.
 *
 * Paths are byte strings (each char code one byte, see ../bytes.ts): each
 * becomes a Buffer of exactly those bytes before the syscall, and names and
 * link targets read back are decoded the same way, so any name a layer holds
 * (not only valid UTF-8) goes through unchanged.
 */
import * as fs from 'node:fs'
import { lgetxattr, llistxattr, lremovexattr, lsetxattr } from './xattr.js'
import * as native from './native.js'

export type Stats = fs.BigIntStats

/** A byte string path's bytes, for node:fs. */
function b (p: string): Buffer { return Buffer.from(p, 'latin1') }

/**
 * Host paths of this many bytes or more are refused by the kernel
 * (ENAMETOOLONG; PATH_MAX counts the NUL). A layer root plus a merged path
 * of up to 4,095 bytes (which the kernel's overlayfs serves) can be that long,
 * so such a path goes through viaDirFd. Shorter paths (all but a few) go
 * straight to the syscall, as before: one length check is their only cost.
 */
const PATH_MAX = 4096

/**
 * Runs `call` on a short path that names the same object as the long host
 * path `p`: p's parent directory is opened one component at a time
 * (native openDirChain: openat with O_PATH | O_DIRECTORY | O_NOFOLLOW from
 * "/", never following a symlink), and `call` gets
 * `/proc/self/fd/<fd>/<last name>`. The magic link resolves to that directory,
 * and the last name is treated exactly as in `p` (the l* calls still do not
 * follow it). The fd is closed afterwards; errors name `p`, not the short path.
 * A name longer than NAME_MAX still fails with ENAMETOOLONG, as on the kernel.
 */
function viaDirFd<T> (p: string, call: (short: string) => T): T {
  const slash = p.lastIndexOf('/')
  const fd = openParent(p, slash)
  const short = `/proc/self/fd/${fd}/${p.slice(slash + 1)}`
  try {
    return call(short)
  } catch (e) {
    throw relabel(e, short, p)
  } finally {
    fs.closeSync(fd)
  }
}

/** viaDirFd for an asynchronous call: the fd stays open until it settles. */
async function viaDirFdAsync<T> (p: string, call: (short: string) => Promise<T>): Promise<T> {
  const slash = p.lastIndexOf('/')
  const fd = openParent(p, slash)
  const short = `/proc/self/fd/${fd}/${p.slice(slash + 1)}`
  try {
    return await call(short)
  } catch (e) {
    throw relabel(e, short, p)
  } finally {
    fs.closeSync(fd)
  }
}

/** Two paths (rename, link): each one that is too long goes through viaDirFd, `from` first. */
function viaDirFds<T> (from: string, to: string, call: (from: string, to: string) => T): T {
  if (from.length < PATH_MAX) return viaDirFd(to, (t) => call(from, t))
  return viaDirFd(from, (f) => to.length < PATH_MAX ? call(f, to) : viaDirFd(to, (t) => call(f, t)))
}

function openParent (p: string, slash: number): number {
  try {
    return native.openDirChain(slash <= 0 ? '/' : p.slice(0, slash))
  } catch (e) {
    throw relabel(e, undefined, p)
  }
}

/** Puts the caller's long path back into an error that names the short one. */
function relabel (e: unknown, short: string | undefined, p: string): unknown {
  const err = e as NodeJS.ErrnoException & { dest?: string }
  if (err === null || typeof err !== 'object') return e
  if (short === undefined) {
    if (typeof err.path === 'string') err.path = p
    return e
  }
  for (const key of ['path', 'dest'] as const) {
    const v = err[key]
    if (typeof v === 'string' && v.startsWith(short)) err[key] = p + v.slice(short.length)
    else if (Buffer.isBuffer(v) && v.toString('latin1').startsWith(short)) err[key] = p + v.toString('latin1').slice(short.length)
  }
  return e
}

function lstatDirect (p: string): Stats | undefined {
  return fs.lstatSync(b(p), { bigint: true, throwIfNoEntry: false })
}

/** lstat that answers undefined for a missing name (ENOENT or ENOTDIR). */
function lstatOrUndefined (p: string): Stats | undefined {
  try {
    return p.length < PATH_MAX ? lstatDirect(p) : viaDirFd(p, lstatDirect)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR' || (code === 'ENOENT' && p.length >= PATH_MAX)) return undefined
    throw e
  }
}

function readdirTypedDirect (p: string): fs.Dirent[] {
  const entries = fs.readdirSync(b(p), { withFileTypes: true, encoding: 'buffer' }) as unknown as Array<{ name: Buffer | string }>
  for (const e of entries) e.name = (e.name as Buffer).toString('latin1')
  return entries as unknown as fs.Dirent[]
}

/** readdir with types; each Dirent's name is a byte string. */
function readdirTyped (p: string): fs.Dirent[] {
  return p.length < PATH_MAX ? readdirTypedDirect(p) : viaDirFd(p, readdirTypedDirect)
}

function readdirNamesDirect (p: string): string[] {
  return fs.readdirSync(b(p), { encoding: 'buffer' }).map((n) => n.toString('latin1'))
}

function readdirNames (p: string): string[] {
  return p.length < PATH_MAX ? readdirNamesDirect(p) : viaDirFd(p, readdirNamesDirect)
}

function exists (p: string): boolean {
  return lstatOrUndefined(p) !== undefined
}

const readlinkDirect = (p: string): string => fs.readlinkSync(b(p), { encoding: 'buffer' }).toString('latin1')
const mkdirDirect = (p: string, mode: number): void => { fs.mkdirSync(b(p), { mode }) }
const rmdirDirect = (p: string): void => fs.rmdirSync(b(p))
const unlinkDirect = (p: string): void => fs.unlinkSync(b(p))
const renameDirect = (from: string, to: string): void => fs.renameSync(b(from), b(to))
const symlinkDirect = (target: string, p: string): void => fs.symlinkSync(b(target), b(p))
const linkDirect = (from: string, to: string): void => fs.linkSync(b(from), b(to))
const lchownDirect = (p: string, uid: number, gid: number): void => fs.lchownSync(b(p), uid, gid)
const chmodDirect = (p: string, mode: number): void => fs.chmodSync(b(p), mode)
const truncateDirect = (p: string, len: number): void => fs.truncateSync(b(p), len)
const statfsDirect = (p: string): fs.StatsFs => fs.statfsSync(b(p))
const openDirect = (p: string, flags: number, mode?: number): number => fs.openSync(b(p), flags, mode)
const rmTreeDirect = (p: string): Promise<void> => fs.promises.rm(b(p), { recursive: true, force: true })

export const sys = {
  lstat: lstatOrUndefined,
  exists,
  fstat: (fd: number): Stats => fs.fstatSync(fd, { bigint: true }),
  readdir: readdirTyped,
  readdirNames,
  readlink: (p: string): string => p.length < PATH_MAX ? readlinkDirect(p) : viaDirFd(p, readlinkDirect),
  mkdir: (p: string, mode: number): void => p.length < PATH_MAX ? mkdirDirect(p, mode) : viaDirFd(p, (s) => mkdirDirect(s, mode)),
  rmdir: (p: string): void => p.length < PATH_MAX ? rmdirDirect(p) : viaDirFd(p, rmdirDirect),
  unlink: (p: string): void => p.length < PATH_MAX ? unlinkDirect(p) : viaDirFd(p, unlinkDirect),
  rename: (from: string, to: string): void =>
    from.length < PATH_MAX && to.length < PATH_MAX ? renameDirect(from, to) : viaDirFds(from, to, renameDirect),
  renameat2: (from: string, to: string, flags: number): void =>
    from.length < PATH_MAX && to.length < PATH_MAX ? native.renameat2(from, to, flags) : viaDirFds(from, to, (f, t) => native.renameat2(f, t, flags)),
  // The target is the link's content, not a path to resolve.
  symlink: (target: string, p: string): void => p.length < PATH_MAX ? symlinkDirect(target, p) : viaDirFd(p, (s) => symlinkDirect(target, s)),
  link: (from: string, to: string): void =>
    from.length < PATH_MAX && to.length < PATH_MAX ? linkDirect(from, to) : viaDirFds(from, to, linkDirect),
  mknod: (p: string, mode: number, rdev: number): void =>
    p.length < PATH_MAX ? native.mknod(p, mode, rdev) : viaDirFd(p, (s) => native.mknod(s, mode, rdev)),
  lchown: (p: string, uid: number, gid: number): void =>
    p.length < PATH_MAX ? lchownDirect(p, uid, gid) : viaDirFd(p, (s) => lchownDirect(s, uid, gid)),
  chmod: (p: string, mode: number): void => p.length < PATH_MAX ? chmodDirect(p, mode) : viaDirFd(p, (s) => chmodDirect(s, mode)),
  utimensat: (p: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void =>
    p.length < PATH_MAX
      ? native.utimensat(p, atimeSec, atimeNsec, mtimeSec, mtimeNsec)
      : viaDirFd(p, (s) => native.utimensat(s, atimeSec, atimeNsec, mtimeSec, mtimeNsec)),
  truncate: (p: string, len: number): void => p.length < PATH_MAX ? truncateDirect(p, len) : viaDirFd(p, (s) => truncateDirect(s, len)),
  statfs: (p: string): fs.StatsFs => p.length < PATH_MAX ? statfsDirect(p) : viaDirFd(p, statfsDirect),
  openSync: (p: string, flags: number, mode?: number): number =>
    p.length < PATH_MAX ? openDirect(p, flags, mode) : viaDirFd(p, (s) => openDirect(s, flags, mode)),
  closeSync: (fd: number): void => fs.closeSync(fd),
  writeSync: (fd: number, buf: Buffer, len: number, pos: number): number => fs.writeSync(fd, buf, 0, len, pos),
  fchown: (fd: number, uid: number, gid: number): void => fs.fchownSync(fd, uid, gid),
  fchmod: (fd: number, mode: number): void => fs.fchmodSync(fd, mode),
  fallocate: native.fallocate,
  lseek: native.lseek,
  linkFd: (fd: number, newPath: string): void =>
    newPath.length < PATH_MAX ? native.linkFd(fd, newPath) : viaDirFd(newPath, (s) => native.linkFd(fd, s)),
  rmTree: (p: string): Promise<void> => p.length < PATH_MAX ? rmTreeDirect(p) : viaDirFdAsync(p, rmTreeDirect),

  lgetxattr: (p: string, name: string): Buffer | undefined =>
    p.length < PATH_MAX ? lgetxattr(p, name) : viaDirFd(p, (s) => lgetxattr(s, name)),
  llistxattr: (p: string): string[] => p.length < PATH_MAX ? llistxattr(p) : viaDirFd(p, llistxattr),
  lsetxattr: (p: string, name: string, value: Uint8Array, flags = 0): void =>
    p.length < PATH_MAX ? lsetxattr(p, name, value, flags) : viaDirFd(p, (s) => lsetxattr(s, name, value, flags)),
  lremovexattr: (p: string, name: string): void =>
    p.length < PATH_MAX ? lremovexattr(p, name) : viaDirFd(p, (s) => lremovexattr(s, name)),

  copyFile: (src: string, dst: string): Promise<void> =>
    src.length < PATH_MAX
      ? dst.length < PATH_MAX ? native.copyData(src, dst) : viaDirFdAsync(dst, (t) => native.copyData(src, t))
      : viaDirFdAsync(src, (s) => dst.length < PATH_MAX ? native.copyData(s, dst) : viaDirFdAsync(dst, (t) => native.copyData(s, t))),
  preadNowait: native.preadNowait,
  read: (fd: number, buf: Buffer, len: number, pos: number): Promise<number> =>
    new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (e, n) => e ? reject(e) : resolve(n))),
  write: (fd: number, buf: Buffer, len: number, pos: number): Promise<number> =>
    new Promise((resolve, reject) => fs.write(fd, buf, 0, len, pos, (e, n) => e ? reject(e) : resolve(n))),
  fsync: (fd: number, datasync: boolean): Promise<void> =>
    new Promise((resolve, reject) => (datasync ? fs.fdatasync : fs.fsync)(fd, (e) => e ? reject(e) : resolve())),
  ftruncate: (fd: number, len: number): Promise<void> =>
    new Promise((resolve, reject) => fs.ftruncate(fd, len, (e) => e ? reject(e) : resolve())),
  close: (fd: number): Promise<void> =>
    new Promise((resolve, reject) => fs.close(fd, (e) => e ? reject(e) : resolve()))
}

export type Sys = typeof sys
