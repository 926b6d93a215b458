/**
 * The mount record: what a running daemon was started with, written beside
 * its pid file (RUN_DIR/<hash of MERGED>.json) once the mount is live and
 * removed when it ends. /proc/self/mountinfo shows a FUSE mount's source and
 * FUSE options only, never the layers, so this is how the layer tools
 * (`overlayts diff|layers|which MERGED`, src/layers) find the stack behind a
 * mountpoint: the options as resolved at mount (absolute layer paths) and
 * each lower's whiteout form as the daemon decided it, so a tool reads every
 * layer exactly as the daemon does without walking it again.
 *
 * Written to a scratch name and renamed, so a reader sees all of it or none.
 * A daemon that cannot write RUN_DIR (not root, no OVERLAYTS_RUNDIR) leaves
 * no record; the tools then ask for -o.
 */
import * as fs from 'node:fs'
import type { WhiteoutForm } from '../overlay/layer-form.js'
import type { LayerStack } from '../overlay/layers.js'
import type { UpperForm } from '../overlay/upper-form.js'
import type { MountOptions } from './mount-options.js'
import { RUN_DIR, runFileFor } from './pidfile.js'

export const MOUNT_RECORD_VERSION = 1

export interface MountRecord {
  readonly version: number
  readonly pid: number
  /** The mountpoint, as the daemon resolved it (path.resolve). */
  readonly merged: string
  /** Layer paths as given and resolved at mount (ordinary UTF-8 strings). */
  readonly lowers: readonly string[]
  readonly upper: string | undefined
  readonly workdir: string | undefined
  /** `index=`: 'off', a path, or undefined for the default place. */
  readonly index: string | undefined
  readonly readOnly: boolean
  /** Each lower's whiteout form as the daemon read it, in `lowers` order. */
  readonly whiteoutForms: readonly WhiteoutForm[]
  /** Device and inode of each lower root, then the upper's: a layer replaced since the mount is noticed. */
  readonly identities: ReadonlyArray<{ dev: string, ino: string }>
  /** The lookup index file the daemon uses, if any. */
  readonly indexDb: string | undefined
  /** The upper's marker form the daemon chose (src/overlay/upper-form.ts); absent in records before it existed: kernel. */
  readonly upperForm?: UpperForm
}

export function mountRecordPath (merged: string): string {
  return runFileFor(merged, 'json')
}

/**
 * The record of a daemon serving `merged` from `stack`. With `ro` and an
 * upper, the daemon reads the upper as its top lower; the record keeps the
 * options' shape (upper as upper) and the forms of the real lowers.
 */
export function mountRecordOf (merged: string, opts: MountOptions, stack: LayerStack, indexDb: string | undefined, upperForm: UpperForm = 'kernel'): MountRecord {
  const lowers = opts.readOnly && opts.upper !== undefined ? stack.lowers.slice(1) : stack.lowers
  const upperLayer = opts.readOnly && opts.upper !== undefined ? stack.lowers[0] : stack.upper
  const ids = [...lowers, ...(upperLayer === undefined ? [] : [upperLayer])].map((l) => ({ dev: String(l.dev), ino: String(l.ino) }))
  return {
    version: MOUNT_RECORD_VERSION,
    pid: process.pid,
    merged,
    lowers: opts.lowers,
    upper: opts.upper,
    workdir: opts.workdir,
    index: opts.index,
    readOnly: opts.readOnly,
    whiteoutForms: lowers.map((l) => l.whiteouts ?? 'oci'),
    identities: ids,
    indexDb,
    upperForm
  }
}

export function writeMountRecord (record: MountRecord): void {
  const file = mountRecordPath(record.merged)
  const tmp = `${file}.tmp-${process.pid}`
  try {
    fs.mkdirSync(RUN_DIR, { recursive: true })
    fs.writeFileSync(tmp, JSON.stringify(record) + '\n', { mode: 0o600 })
    fs.renameSync(tmp, file)
  } catch {
    fs.rmSync(tmp, { force: true })
  }
}

export function removeMountRecord (merged: string): void {
  const r = readMountRecord(merged)
  if (r !== undefined && r.pid === process.pid) fs.rmSync(mountRecordPath(merged), { force: true })
}

/** The record for `merged`, or undefined when there is none or it is not one this version reads. */
export function readMountRecord (merged: string): MountRecord | undefined {
  let text: string
  try {
    text = fs.readFileSync(mountRecordPath(merged), 'utf8')
  } catch { return undefined }
  try {
    const r = JSON.parse(text) as MountRecord
    if (r.version !== MOUNT_RECORD_VERSION || typeof r.pid !== 'number' || !Array.isArray(r.lowers)) return undefined
    return r
  } catch { return undefined }
}
