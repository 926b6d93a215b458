/**
 * Which layers a live mountpoint serves, for the layer tools:
 *
 * - an overlayts mount (fstype `fuse.overlayts`, or any FUSE mount with a
 *   mount record): its daemon's mount record (src/mount-config/mount-record.ts), the
 *   options resolved at mount and each lower's whiteout form as the daemon
 *   decided it. /proc/self/mountinfo shows a FUSE mount's FUSE options only,
 *   never its layers, so the daemon writes the record itself;
 * - a kernel overlayfs mount (fstype `overlay`): the layers are its super
 *   options in /proc/self/mountinfo (`lowerdir=`, `lowerdir+=`, `upperdir=`,
 *   `workdir=`), every layer in the kernel's whiteout form.
 *
 * The record is trusted only while its daemon lives and the path is still a
 * mountpoint; anything else is a clear error that suggests `-o`.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { MountRecord } from '../mount-config/mount-record.js'
import { mountRecordPath, readMountRecord } from '../mount-config/mount-record.js'
import { splitEscaped, unescape } from '../mount-config/mount-options.js'
import type { WhiteoutForm } from '../overlay/layer-form.js'
import type { UpperForm } from '../overlay/upper-form.js'

export class LiveMountError extends Error {
  constructor (message: string, readonly path: string) {
    super(message)
    this.name = 'LiveMountError'
  }
}

/** One line of /proc/self/mountinfo, the fields the tools need. */
export interface MountInfoLine {
  readonly mountPoint: string
  readonly fstype: string
  readonly source: string
  readonly superOptions: string
}

/** The kernel's octal escapes in mountinfo (`\040` space, `\011`, `\012`, `\134` backslash). */
export function unescapeMountInfo (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

export function parseMountInfo (text: string): MountInfoLine[] {
  const out: MountInfoLine[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (dash < 0 || f.length < dash + 4) continue
    out.push({ mountPoint: unescapeMountInfo(f[4]!), fstype: f[dash + 1]!, source: unescapeMountInfo(f[dash + 2]!), superOptions: f[dash + 3]! })
  }
  return out
}

export function readMountInfo (): MountInfoLine[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
}

/** What a live mount is made of: the layers as resolved option values, and each lower's form. */
export interface LiveStack {
  readonly merged: string
  readonly kind: 'overlayts' | 'kernel-overlay'
  readonly lowers: readonly string[]
  readonly upper: string | undefined
  readonly workdir: string | undefined
  readonly whiteoutForms: readonly WhiteoutForm[]
  /** The upper's marker form: the daemon's choice, or the kernel's (userxattr when mounted with it). */
  readonly upperForm: UpperForm
  /** overlayts: the daemon's record (pid, index file, layer identities). */
  readonly record: MountRecord | undefined
}

/**
 * A kernel overlayfs mount's layers from its mountinfo super options. Raw
 * commas separate options (a comma inside a path is octal-escaped); inside a
 * lowerdir list `\:` is a colon, as in the mount options themselves.
 */
export function kernelOverlayLayers (superOptions: string): { lowers: string[], upper: string | undefined, workdir: string | undefined, upperForm: UpperForm } {
  const lowers: string[] = []
  let upper: string | undefined
  let workdir: string | undefined
  let upperForm: UpperForm = 'kernel'
  for (const raw of superOptions.split(',')) {
    const item = unescapeMountInfo(raw)
    if (item === 'userxattr') upperForm = 'userxattr'
    const eq = item.indexOf('=')
    if (eq < 0) continue
    const key = item.slice(0, eq)
    const value = item.slice(eq + 1)
    if (key === 'lowerdir') lowers.push(...splitEscaped(value, ':').filter((l) => l !== '').map(unescape))
    else if (key === 'lowerdir+') lowers.push(value)
    else if (key === 'upperdir') upper = value
    else if (key === 'workdir') workdir = value
  }
  return { lowers, upper, workdir, upperForm }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The stack behind the live mountpoint `given` (a path as typed; resolved lexically, then through symlinks). */
export function liveStackOf (given: string, mounts: readonly MountInfoLine[] = readMountInfo()): LiveStack {
  const lexical = path.resolve(given)
  const candidates = [lexical]
  try {
    const real = fs.realpathSync(lexical)
    if (real !== lexical) candidates.push(real)
  } catch { /* checked below: not a mountpoint */ }
  for (const merged of candidates) {
    // The last mount at a path is the one seen there.
    const m = [...mounts].reverse().find((l) => l.mountPoint === merged)
    if (m === undefined) continue
    if (m.fstype === 'overlay') {
      const k = kernelOverlayLayers(m.superOptions)
      if (k.lowers.length === 0) throw new LiveMountError(`${merged}: kernel overlay mount without a lowerdir in /proc/self/mountinfo`, merged)
      return { merged, kind: 'kernel-overlay', ...k, whiteoutForms: k.lowers.map(() => 'kernel'), record: undefined }
    }
    const record = readMountRecord(merged)
    if (record === undefined && fs.existsSync(mountRecordPath(merged))) {
      try {
        fs.accessSync(mountRecordPath(merged), fs.constants.R_OK)
      } catch {
        throw new LiveMountError(`${merged}: its mount record ${mountRecordPath(merged)} is not readable by this user (the daemon's owner can read it): give the layers with -o`, merged)
      }
    }
    if (record === undefined) {
      throw new LiveMountError(`${merged}: a ${m.fstype} mount with no overlayts mount record (its daemon predates the record, or could not write it): give the layers with -o lowerdir=...,upperdir=...`, merged)
    }
    if (!alive(record.pid)) throw new LiveMountError(`${merged}: the daemon that recorded this mount (pid ${record.pid}) is gone: give the layers with -o`, merged)
    return { merged, kind: 'overlayts', lowers: record.lowers, upper: record.upper, workdir: record.workdir, whiteoutForms: record.whiteoutForms, upperForm: record.upperForm ?? 'kernel', record }
  }
  throw new LiveMountError(`${lexical}: not a mountpoint (give a live overlay mount, or the layers with -o lowerdir=...,upperdir=...)`, lexical)
}
