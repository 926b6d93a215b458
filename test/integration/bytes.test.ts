// Names are bytes (issue 9 item 3): names, symlink targets and xattr names
// that are not valid UTF-8 go through overlayts (default transport) exactly
// as through the kernel's overlayfs, the oracle. Both mount copies of the
// same lower layer side by side; the same script runs through each mount,
// every answer is recorded as bytes and compared, then the merged trees and,
// after unmounting, the upper dirs are compared byte for byte.
//
// The daemon is a child process, so the test process may use the mount
// synchronously (node:fs with Buffer paths; xattrs through the addon).
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { mountKernel, mountOverlayts, type MountHandle } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'
import { sys } from '../../src/overlay/sys/fs.js'
import { displayPath } from '../../src/overlay/bytes.js'

/** A byte string (one char per byte) from text and raw bytes. */
const B = (...parts: Array<string | number[]>): string =>
  parts.map((p) => typeof p === 'string' ? Buffer.from(p, 'utf8').toString('latin1') : Buffer.from(p).toString('latin1')).join('')
/** A byte string's bytes, for node:fs. */
const raw = (s: string): Buffer => Buffer.from(s, 'latin1')
const hex = (s: string | Buffer): string => (typeof s === 'string' ? raw(s) : s).toString('hex')

const A_FF = B('a', [0xff])
const B_FE80 = B('b', [0xfe, 0x80])
const D_C3 = B('d', [0xc3])
const X_FF = B('x', [0xff])
const S_FF = B('s', [0xff])
const LOWER_TARGET = B('t', [0x80, 0xff], '/', [0xfe])
const XA = 'xa'
const VALUE = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x61])
const USER_N = B('user.n', [0xff])

/** The lower layer, written with raw bytes. */
function buildLower (root: string): void {
  const at = (rel: string): Buffer => raw(root + '/' + rel)
  fs.mkdirSync(at(''), { recursive: true })
  fs.writeFileSync(at(A_FF), 'A\n')
  fs.writeFileSync(at(B_FE80), 'B\n')
  fs.mkdirSync(at(D_C3), { mode: 0o755 })
  fs.writeFileSync(at(D_C3 + '/' + X_FF), 'X\n')
  fs.writeFileSync(at(D_C3 + '/plain'), 'P\n')
  fs.symlinkSync(raw(LOWER_TARGET), at(S_FF))
  fs.writeFileSync(at(XA), 'xa\n')
  sys.lsetxattr(root + '/' + XA, 'user.v', VALUE)
  sys.lsetxattr(root + '/' + XA, USER_N, Buffer.from('n'))
  // Same times on both copies, so nothing differs by when it was built.
  for (const rel of [A_FF, B_FE80, D_C3 + '/' + X_FF, D_C3 + '/plain', XA, D_C3, '']) fs.utimesSync(at(rel), 1_600_000_000, 1_600_000_000)
}

/** The script: each step's answer as a line (bytes as hex), the same on both mounts. */
function runScript (m: string): string[] {
  const out: string[] = []
  const at = (rel: string): Buffer => raw(m + '/' + rel)
  const step = (what: string, fn: () => unknown): void => {
    try {
      const r = fn()
      out.push(`${what}: ok${r === undefined ? '' : ' ' + String(r)}`)
    } catch (e) {
      out.push(`${what}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
    }
  }
  const list = (rel: string) => (): string => fs.readdirSync(at(rel), { encoding: 'buffer' }).map((n) => n.toString('hex')).sort().join(',')
  const read = (rel: string) => (): string => fs.readFileSync(at(rel)).toString('hex')
  const old = process.umask(0o022)
  try {
    step('list /', list(''))
    step('list d\\xc3', list(D_C3))
    step('read a\\xff', read(A_FF))
    step('read d\\xc3/x\\xff', read(D_C3 + '/' + X_FF))
    step('stat b\\xfe\\x80', () => fs.lstatSync(at(B_FE80)).size)
    step('stat a\\xfe (absent)', () => fs.lstatSync(at(B('a', [0xfe]))).size)
    step('readlink s\\xff', () => hex(fs.readlinkSync(at(S_FF), { encoding: 'buffer' })))
    // Two names that differ only in an invalid byte are two files.
    step('create a\\xfe', () => fs.writeFileSync(at(B('a', [0xfe])), 'made fe\n', { flag: 'wx' }))
    step('create a\\xfd', () => fs.writeFileSync(at(B('a', [0xfd])), 'made fd\n', { flag: 'wx' }))
    step('list / after create', list(''))
    step('read a\\xfe', read(B('a', [0xfe])))
    step('read a\\xfd', read(B('a', [0xfd])))
    step('rename a\\xfe -> c\\xff', () => fs.renameSync(at(B('a', [0xfe])), at(B('c', [0xff]))))
    step('unlink a\\xfd', () => fs.unlinkSync(at(B('a', [0xfd]))))
    step('read c\\xff', read(B('c', [0xff])))
    // Lower names: copy-up, whiteouts and a redirect, all named with bytes.
    step('unlink a\\xff (lower)', () => fs.unlinkSync(at(A_FF)))
    step('rename b\\xfe\\x80 -> d\\xc3/b\\xfe (lower)', () => fs.renameSync(at(B_FE80), at(D_C3 + '/' + B('b', [0xfe]))))
    step('append d\\xc3/x\\xff (copy-up)', () => fs.appendFileSync(at(D_C3 + '/' + X_FF), 'more\n'))
    step('rename d\\xc3 -> r\\xff (redirect)', () => fs.renameSync(at(D_C3), at(B('r', [0xff]))))
    step('list r\\xff', list(B('r', [0xff])))
    step('read r\\xff/x\\xff', read(B('r', [0xff], '/') + X_FF))
    step('mkdir e\\xff', () => fs.mkdirSync(at(B('e', [0xff])), { mode: 0o750 }))
    step('create e\\xff/f\\x80', () => fs.writeFileSync(at(B('e', [0xff], '/f', [0x80])), 'f\n', { flag: 'wx' }))
    step('list / at the end', list(''))
    // Symlinks with targets that are not UTF-8.
    const target = B('u', [0xfe, 0xff], '/v', [0xc3])
    step('symlink l\\xfe', () => fs.symlinkSync(raw(target), at(B('l', [0xfe]))))
    step('readlink l\\xfe', () => hex(fs.readlinkSync(at(B('l', [0xfe])), { encoding: 'buffer' })))
    // xattrs: a value that is not UTF-8, a user. name with an invalid byte.
    const path = (rel: string): string => m + '/' + rel
    const names = (rel: string) => (): string => sys.llistxattr(path(rel)).filter((n) => n.startsWith('user.')).map(hex).sort().join(',')
    step('getxattr xa user.v', () => hex(sys.lgetxattr(path(XA), 'user.v') ?? Buffer.from('(unset)')))
    step('getxattr xa user.n\\xff', () => hex(sys.lgetxattr(path(XA), USER_N) ?? Buffer.from('(unset)')))
    step('listxattr xa', names(XA))
    step('setxattr c\\xff user.m\\xfe', () => sys.lsetxattr(path(B('c', [0xff])), B('user.m', [0xfe]), Buffer.from([0x80, 0xff, 0x00])))
    step('setxattr c\\xff user.m\\xfe CREATE again', () => sys.lsetxattr(path(B('c', [0xff])), B('user.m', [0xfe]), Buffer.from('x'), 1))
    step('getxattr c\\xff user.m\\xfe', () => hex(sys.lgetxattr(path(B('c', [0xff])), B('user.m', [0xfe])) ?? Buffer.from('(unset)')))
    step('getxattr c\\xff user.m\\xfd (absent)', () => hex(sys.lgetxattr(path(B('c', [0xff])), B('user.m', [0xfd])) ?? Buffer.from('(unset)')))
    step('setxattr xa user.o\\xc3 (copy-up)', () => sys.lsetxattr(path(XA), B('user.o', [0xc3]), VALUE))
    step('removexattr xa user.n\\xff', () => sys.lremovexattr(path(XA), USER_N))
    step('listxattr xa after', names(XA))
    step('setxattr r\\xff/plain user.p\\xff', () => sys.lsetxattr(path(B('r', [0xff], '/plain')), B('user.p', [0xff]), Buffer.from([0xfe])))
    step('listxattr r\\xff/plain', names(B('r', [0xff], '/plain')))
  } finally { process.umask(old) }
  return out
}

/** Overlay xattrs that are bookkeeping of one implementation, not the format (see test/helpers/snapshot.ts). */
const PRIVATE = (name: string): boolean =>
  ['trusted.overlay.origin', 'trusted.overlay.impure', 'trusted.overlay.uuid', 'trusted.overlay.nlink'].includes(name) ||
  name.startsWith('trusted.overlay.ts.')

/**
 * Every entry under `root` as one line, names and targets as bytes (hex);
 * times left out. In an upper dir, whiteouts are recorded by name only and
 * the private bookkeeping xattrs are dropped, as snapshotUpper does.
 */
function snapshot (root: string, opts: { upper: boolean }): string[] {
  const lines: string[] = []
  const visit = (rel: string): void => {
    const p = rel === '' ? root : root + '/' + rel
    const st = fs.lstatSync(raw(p), { bigint: true })
    const mode = Number(st.mode)
    if (opts.upper && st.isCharacterDevice() && st.rdev === 0n) {
      // A whiteout: only its name matters (the kernel may share one inode among them).
      lines.push(`${displayPath(rel)} [${hex(rel)}] whiteout`)
      return
    }
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? `chr ${st.rdev}` : 'other'
    let line = `${displayPath(rel === '' ? '.' : rel)} [${hex(rel)}] ${type} ${(mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (st.isFile()) line += ` ${st.size} ${createHash('sha256').update(fs.readFileSync(raw(p))).digest('hex').slice(0, 16)}`
    if (st.isSymbolicLink()) line += ` -> ${hex(fs.readlinkSync(raw(p), { encoding: 'buffer' }))}`
    if (!st.isDirectory()) line += ` nlink ${st.nlink}`
    const xs = sys.llistxattr(p).filter((n) => !(opts.upper && PRIVATE(n))).sort()
    for (const n of xs) line += ` ${hex(n)}=${hex(sys.lgetxattr(p, n) ?? Buffer.alloc(0))}`
    lines.push(line)
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(raw(p), { encoding: 'buffer' })) visit(rel === '' ? n.toString('latin1') : rel + '/' + n.toString('latin1'))
    }
  }
  visit('')
  return lines.sort()
}

interface Side { lower: string, upper: string, work: string, merged: string }

async function side (t: Test, tmp: string, name: string): Promise<Side> {
  const s = { lower: join(tmp, name, 'lower'), upper: join(tmp, name, 'upper'), work: join(tmp, name, 'work'), merged: join(tmp, name, 'merged') }
  buildLower(s.lower)
  for (const d of [s.upper, s.work, s.merged]) fs.mkdirSync(d, { recursive: true, mode: 0o755 })
  return s
}

t.test('non-UTF-8 names, targets and xattr names: overlayts answers and writes as the kernel', async t => {
  const tmp = await tmpDir(t, 'bytes')
  const k = await side(t, tmp, 'kernel')
  const o = await side(t, tmp, 'overlayts')
  t.same(snapshot(o.lower, { upper: false }), snapshot(k.lower, { upper: false }), 'the two lowers are the same')

  const km: MountHandle = await mountKernel(t, { lower: [k.lower], upper: k.upper, work: k.work, merged: k.merged, redirectDir: true })
  const om: MountHandle = await mountOverlayts(t, { lower: [o.lower], upper: o.upper, work: o.work, merged: o.merged })

  const kernelAnswers = runScript(k.merged)
  const overlaytsAnswers = runScript(o.merged)
  t.same(overlaytsAnswers, kernelAnswers, 'every step answers as the kernel')
  // The answers themselves, so a bug shared by both cannot pass unnoticed.
  const answer = (what: string): string | undefined => overlaytsAnswers.find((l) => l.startsWith(what + ':'))
  t.equal(answer('list /'), `list /: ok ${[A_FF, B_FE80, D_C3, S_FF, XA].map(hex).sort().join(',')}`)
  t.equal(answer('list / after create'), `list / after create: ok ${[A_FF, B('a', [0xfe]), B('a', [0xfd]), B_FE80, D_C3, S_FF, XA].map(hex).sort().join(',')}`, 'a\\xfe and a\\xfd are two files')
  t.equal(answer('read a\\xfd'), `read a\\xfd: ok ${Buffer.from('made fd\n').toString('hex')}`)
  t.equal(answer('readlink s\\xff'), `readlink s\\xff: ok ${hex(LOWER_TARGET)}`)
  t.equal(answer('readlink l\\xfe'), `readlink l\\xfe: ok ${hex(B('u', [0xfe, 0xff], '/v', [0xc3]))}`)
  t.equal(answer('getxattr xa user.v'), `getxattr xa user.v: ok ${VALUE.toString('hex')}`)
  t.equal(answer('listxattr xa'), `listxattr xa: ok ${[USER_N, 'user.v'].map(hex).sort().join(',')}`)
  t.equal(answer('setxattr c\\xff user.m\\xfe CREATE again'), 'setxattr c\\xff user.m\\xfe CREATE again: EEXIST')
  t.equal(answer('list r\\xff'), `list r\\xff: ok ${[B('b', [0xfe]), 'plain', X_FF].map(hex).sort().join(',')}`)

  t.same(snapshot(o.merged, { upper: false }), snapshot(k.merged, { upper: false }), 'the merged trees are the same, byte for byte')

  t.ok((await om.unmount()).ok, 'overlayts unmounted')
  t.ok((await km.unmount()).ok, 'kernel unmounted')
  const ou = snapshot(o.upper, { upper: true })
  const ku = snapshot(k.upper, { upper: true })
  t.same(ou, ku, 'the upper dirs are the same, byte for byte')
  t.ok(ku.some((l) => l.includes(`[${hex(A_FF)}] whiteout`)), 'the upper holds a whiteout named a\\xff')
  t.ok(ku.some((l) => l.includes(`${hex('trusted.overlay.redirect')}=${hex(D_C3)}`)), 'the upper holds a redirect to d\\xc3')
})
