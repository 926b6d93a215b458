/**
 * Turning the user's layer paths into a LayerStack, with the checks the
 * kernel's overlayfs makes (and a few it cannot, because a FUSE daemon that
 * reads its own mount deadlocks): every layer an existing directory, upper
 * and work given together and on one filesystem, no directory twice, upper
 * and work outside every lower, outside each other and outside the mount.
 * Each failure is one StackError naming the path.
 *
 * The paths come in as ordinary (UTF-8) strings, from argv or mount(8); the
 * stack holds them as byte strings (see bytes.ts), the form every path in the
 * core takes. This is the one place they are converted.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { bytesOfString, displayPath, utf8ToBytes } from './bytes.js'
import type { WhiteoutForm, WhiteoutOption } from './layer-form.js'
import { whiteoutFormOf } from './layer-form.js'
import type { Layer, LayerStack } from './layers.js'
import { isWithin } from './layers.js'

export class StackError extends Error {
  constructor (message: string, readonly path?: string) {
    super(message)
    this.name = 'StackError'
  }
}

export interface StackSpec {
  /** Ordinary UTF-8 strings, as given on the command line. */
  readonly lowers: readonly string[]
  readonly upper?: string | undefined
  readonly workdir?: string | undefined
  /** The mountpoint; omitted when the stack is only inspected (index commands). */
  readonly merged?: string | undefined
  /** How the lowers' whiteouts are read (layer-form.ts); default `auto`, decided per layer. */
  readonly whiteouts?: WhiteoutOption | undefined
  /**
   * Each lower's form, decided already (by the daemon that mounted these
   * layers, see src/layers/stack-source.ts): taken as is, nothing is walked.
   */
  readonly whiteoutForms?: readonly WhiteoutForm[] | undefined
  /**
   * The stack is only read (the layer tools): an upper may come without a
   * workdir, since nothing will be copied up or whited out.
   */
  readonly readOnlyInspection?: boolean | undefined
}

/** The real path of `p` (a UTF-8 string), as a byte string, and its stat. */
function realDir (what: string, p: string): { real: string, st: fs.BigIntStats } {
  let real: string
  try {
    real = fs.realpathSync(Buffer.from(utf8ToBytes(p), 'latin1'), { encoding: 'buffer' }).toString('latin1')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new StackError(`${what} ${p}: ${code === 'ENOENT' ? 'no such directory' : `cannot be resolved (${code})`}`, p)
  }
  const st = fs.statSync(bytesOfString(real), { bigint: true })
  if (!st.isDirectory()) throw new StackError(`${what} ${p}: not a directory`, p)
  return { real, st }
}

export function openStack (spec: StackSpec): LayerStack {
  if (spec.lowers.length === 0) throw new StackError('at least one lowerdir is required')
  if (spec.whiteoutForms !== undefined && spec.whiteoutForms.length !== spec.lowers.length) throw new StackError('one whiteout form per lowerdir is required')
  if ((spec.upper === undefined) !== (spec.workdir === undefined) && !(spec.readOnlyInspection === true && spec.workdir === undefined)) {
    throw new StackError(spec.upper === undefined ? 'workdir given without upperdir' : 'upperdir given without workdir')
  }
  const merged = spec.merged === undefined ? undefined : realDir('mountpoint', spec.merged).real
  const seen = new Map<string, string>()
  const note = (what: string, real: string, given: string): void => {
    const prior = seen.get(real)
    if (prior !== undefined) throw new StackError(`${what} ${given}: the same directory as ${prior}`, given)
    seen.set(real, `${what} ${given}`)
  }
  const lowers: Layer[] = spec.lowers.map((given, index) => {
    const { real, st } = realDir('lowerdir', given)
    note('lowerdir', real, given)
    // The daemon reads layers by path: a layer under the mount, or the mount
    // inside a layer, would send the daemon's own reads back to itself.
    if (merged !== undefined && (isWithin(real, merged) || isWithin(merged, real))) throw new StackError(`lowerdir ${given}: overlaps the mountpoint ${spec.merged}`, given)
    return { root: real, role: 'lower', index, dev: st.dev, ino: st.ino, whiteouts: spec.whiteoutForms?.[index] ?? whiteoutFormOf(real, spec.whiteouts ?? 'auto') }
  })
  let upper: Layer | undefined
  let work: string | undefined
  let workdir: string | undefined
  if (spec.upper !== undefined && spec.workdir === undefined) {
    // Inspection only (checked above): the upper's place is all that matters.
    const u = realDir('upperdir', spec.upper)
    note('upperdir', u.real, spec.upper)
    for (const l of lowers) {
      if (isWithin(u.real, l.root)) throw new StackError(`upperdir ${spec.upper}: inside lowerdir ${displayPath(l.root)}`, spec.upper)
    }
    upper = { root: u.real, role: 'upper', index: -1, dev: u.st.dev, ino: u.st.ino }
  }
  if (spec.upper !== undefined && spec.workdir !== undefined) {
    const u = realDir('upperdir', spec.upper)
    note('upperdir', u.real, spec.upper)
    const w = realDir('workdir', spec.workdir)
    note('workdir', w.real, spec.workdir)
    for (const [what, given, real] of [['upperdir', spec.upper, u.real], ['workdir', spec.workdir, w.real]] as const) {
      for (const l of lowers) {
        if (isWithin(real, l.root)) throw new StackError(`${what} ${given}: inside lowerdir ${displayPath(l.root)}`, given)
      }
      if (merged !== undefined && (isWithin(real, merged) || isWithin(merged, real))) throw new StackError(`${what} ${given}: overlaps the mountpoint ${spec.merged}`, given)
    }
    if (isWithin(u.real, w.real) || isWithin(w.real, u.real)) {
      throw new StackError(`upperdir ${spec.upper} and workdir ${spec.workdir} must be separate subtrees`, spec.workdir)
    }
    if (u.st.dev !== w.st.dev) throw new StackError(`workdir ${spec.workdir}: not on the same filesystem as upperdir ${spec.upper}`, spec.workdir)
    upper = { root: u.real, role: 'upper', index: -1, dev: u.st.dev, ino: u.st.ino }
    workdir = w.real
    work = path.join(w.real, 'work')
  }
  return { lowers, upper, work, workdir }
}

/**
 * Readies workdir/work: creates it (mode 0, as the kernel) or empties it of
 * what an earlier mount or a crash left there. Nothing in it was ever visible.
 */
export async function prepareWork (stack: LayerStack): Promise<void> {
  if (stack.work === undefined) return
  const work = bytesOfString(stack.work)
  // Mode 0 as the kernel makes it (only privileged code goes in); a daemon
  // without root needs to enter it itself.
  const mode = process.getuid?.() === 0 ? 0 : 0o700
  await fs.promises.mkdir(work, { mode }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e })
  let st = await fs.promises.lstat(work)
  if (mode !== 0 && st.isDirectory() && (st.mode & 0o700) !== 0o700 && st.uid === process.getuid?.()) {
    await fs.promises.chmod(work, mode)
    st = await fs.promises.lstat(work)
  }
  if (!st.isDirectory()) throw new StackError(`workdir ${displayPath(stack.workdir ?? '')}: ${displayPath(stack.work)} is not a directory`, stack.work)
  for (const name of await fs.promises.readdir(work, { encoding: 'buffer' })) {
    await fs.promises.rm(Buffer.concat([work, Buffer.from('/'), name]), { recursive: true, force: true })
  }
}
