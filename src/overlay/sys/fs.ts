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

/** lstat that answers undefined for a missing name (ENOENT or ENOTDIR). */
function lstatOrUndefined (p: string): Stats | undefined {
  try {
    return fs.lstatSync(b(p), { bigint: true, throwIfNoEntry: false })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw e
  }
}

/** readdir with types; each Dirent's name is a byte string. */
function readdirTyped (p: string): fs.Dirent[] {
  const entries = fs.readdirSync(b(p), { withFileTypes: true, encoding: 'buffer' }) as unknown as Array<{ name: Buffer | string }>
  for (const e of entries) e.name = (e.name as Buffer).toString('latin1')
  return entries as unknown as fs.Dirent[]
}

function readdirNames (p: string): string[] {
  return fs.readdirSync(b(p), { encoding: 'buffer' }).map((n) => n.toString('latin1'))
}

function exists (p: string): boolean {
  return lstatOrUndefined(p) !== undefined
}

export const sys = {
  lstat: lstatOrUndefined,
  exists,
  fstat: (fd: number): Stats => fs.fstatSync(fd, { bigint: true }),
  readdir: readdirTyped,
  readdirNames,
  readlink: (p: string): string => fs.readlinkSync(b(p), { encoding: 'buffer' }).toString('latin1'),
  mkdir: (p: string, mode: number): void => { fs.mkdirSync(b(p), { mode }) },
  rmdir: (p: string): void => fs.rmdirSync(b(p)),
  unlink: (p: string): void => fs.unlinkSync(b(p)),
  rename: (from: string, to: string): void => fs.renameSync(b(from), b(to)),
  renameat2: native.renameat2,
  symlink: (target: string, p: string): void => fs.symlinkSync(b(target), b(p)),
  link: (from: string, to: string): void => fs.linkSync(b(from), b(to)),
  mknod: native.mknod,
  lchown: (p: string, uid: number, gid: number): void => fs.lchownSync(b(p), uid, gid),
  chmod: (p: string, mode: number): void => fs.chmodSync(b(p), mode),
  utimensat: native.utimensat,
  truncate: (p: string, len: number): void => fs.truncateSync(b(p), len),
  statfs: (p: string): fs.StatsFs => fs.statfsSync(b(p)),
  openSync: (p: string, flags: number, mode?: number): number => fs.openSync(b(p), flags, mode),
  closeSync: (fd: number): void => fs.closeSync(fd),
  writeSync: (fd: number, buf: Buffer, len: number, pos: number): number => fs.writeSync(fd, buf, 0, len, pos),
  fchown: (fd: number, uid: number, gid: number): void => fs.fchownSync(fd, uid, gid),
  fchmod: (fd: number, mode: number): void => fs.fchmodSync(fd, mode),
  fallocate: native.fallocate,
  lseek: native.lseek,
  linkFd: native.linkFd,
  rmTree: (p: string): Promise<void> => fs.promises.rm(b(p), { recursive: true, force: true }),

  lgetxattr,
  llistxattr,
  lsetxattr,
  lremovexattr,

  copyFile: native.copyData,
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
