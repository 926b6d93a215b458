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
 */
import * as fs from 'node:fs'
import { lgetxattr, llistxattr, lremovexattr, lsetxattr } from './xattr.js'
import * as native from './native.js'

export type Stats = fs.BigIntStats

/** lstat that answers undefined for a missing name (ENOENT or ENOTDIR). */
function lstatOrUndefined (p: string): Stats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw e
  }
}

function readdirTyped (p: string): fs.Dirent[] {
  return fs.readdirSync(p, { withFileTypes: true })
}

function exists (p: string): boolean {
  return lstatOrUndefined(p) !== undefined
}

export const sys = {
  lstat: lstatOrUndefined,
  exists,
  fstat: (fd: number): Stats => fs.fstatSync(fd, { bigint: true }),
  readdir: readdirTyped,
  readdirNames: (p: string): string[] => fs.readdirSync(p),
  readlink: (p: string): string => fs.readlinkSync(p),
  mkdir: (p: string, mode: number): void => fs.mkdirSync(p, { mode }),
  rmdir: (p: string): void => fs.rmdirSync(p),
  unlink: (p: string): void => fs.unlinkSync(p),
  rename: (from: string, to: string): void => fs.renameSync(from, to),
  renameat2: native.renameat2,
  symlink: (target: string, p: string): void => fs.symlinkSync(target, p),
  link: (from: string, to: string): void => fs.linkSync(from, to),
  mknod: native.mknod,
  lchown: (p: string, uid: number, gid: number): void => fs.lchownSync(p, uid, gid),
  chmod: (p: string, mode: number): void => fs.chmodSync(p, mode),
  utimensat: native.utimensat,
  truncate: (p: string, len: number): void => fs.truncateSync(p, len),
  statfs: (p: string): fs.StatsFs => fs.statfsSync(p),
  openSync: (p: string, flags: number, mode?: number): number => fs.openSync(p, flags, mode),
  closeSync: (fd: number): void => fs.closeSync(fd),
  writeSync: (fd: number, buf: Buffer, len: number, pos: number): number => fs.writeSync(fd, buf, 0, len, pos),
  fchown: (fd: number, uid: number, gid: number): void => fs.fchownSync(fd, uid, gid),
  fchmod: (fd: number, mode: number): void => fs.fchmodSync(fd, mode),
  fallocate: native.fallocate,
  lseek: native.lseek,
  rmTree: (p: string): Promise<void> => fs.promises.rm(p, { recursive: true, force: true }),

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
