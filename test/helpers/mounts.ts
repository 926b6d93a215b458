// Mount helpers for the integration tests: overlayts (through its CLI) and the
// kernel's overlayfs (the oracle), plus robust unmounting that never leaves a
// mount behind, even when the FUSE daemon is hung or dead.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from './exec.js'
import { inUserxattrMode } from './userns.js'

/** The part of tap's Test that the helpers need (tap's `t` satisfies it). */
export interface TeardownHost {
  teardown (fn: () => void | Promise<void>): void
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const OVERLAYTS_BIN = join(REPO_ROOT, 'bin', 'overlayts.js')
export const OVERLAYTS_FSTYPE = 'fuse.overlayts'

export interface MountInfo {
  id: number
  parent: number
  major: number
  minor: number
  root: string
  mountPoint: string
  options: string
  fstype: string
  source: string
  superOptions: string
}

/** Undo the octal escaping of /proc/self/mountinfo (\040 space, \011 tab, \012 newline, \134 backslash). */
function unescapeMountField (s: string): string {
  const bytes: number[] = []
  const raw = Buffer.from(s, 'latin1')
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number
    if (c === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8))
      i += 3
    } else {
      bytes.push(c)
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

export function parseMountInfo (text: string): MountInfo[] {
  const out: MountInfo[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const f = line.split(' ')
    const sep = f.indexOf('-', 6)
    if (sep < 0 || f.length < sep + 3) continue
    const [maj, min] = (f[2] ?? '0:0').split(':').map(Number)
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      major: maj ?? 0,
      minor: min ?? 0,
      root: unescapeMountField(f[3] ?? ''),
      mountPoint: unescapeMountField(f[4] ?? ''),
      options: f[5] ?? '',
      fstype: unescapeMountField(f[sep + 1] ?? ''),
      source: unescapeMountField(f[sep + 2] ?? ''),
      superOptions: f[sep + 3] ?? ''
    })
  }
  return out
}

// Read as latin1 so escaped bytes survive; file names are decoded by unescapeMountField.
export async function listMounts (): Promise<MountInfo[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'latin1'))
}
export function listMountsSync (): MountInfo[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'latin1'))
}

/**
 * Whether `path` is a mount point. Purely textual (path.resolve, no realpath,
 * no stat): stat-ing the root of a hung FUSE mount would block forever.
 */
export async function isMounted (path: string): Promise<boolean> {
  const p = resolve(path)
  return (await listMounts()).some(m => m.mountPoint === p)
}
export function isMountedSync (path: string): boolean {
  const p = resolve(path)
  return listMountsSync().some(m => m.mountPoint === p)
}

/** The topmost mount at `path`, or undefined. */
export async function mountAt (path: string): Promise<MountInfo | undefined> {
  const p = resolve(path)
  const all = (await listMounts()).filter(m => m.mountPoint === p)
  return all[all.length - 1]
}

/** Mounts at or below `prefix`, deepest (and most recent) first. */
export async function mountsUnder (prefix: string): Promise<MountInfo[]> {
  const p = resolve(prefix)
  const all = (await listMounts()).filter(m => m.mountPoint === p || m.mountPoint.startsWith(p + '/'))
  return all.reverse().sort((a, b) => b.mountPoint.length - a.mountPoint.length)
}

// ---------------------------------------------------------------------------
// FUSE connection abort

const FUSECTL = '/sys/fs/fuse/connections'

function ensureFusectlSync (): void {
  try {
    if (listMountsSync().some(m => m.mountPoint === FUSECTL)) return
    execFileSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL], { stdio: 'ignore', timeout: 10_000 })
  } catch { /* best effort */ }
}

/**
 * Abort the FUSE connection of the mount (its connection number is the minor
 * number of the mount's st_dev, field 3 of mountinfo). After this every request
 * fails with ENOTCONN and nothing can block on the daemon any more.
 */
export function abortFuseConnectionSync (m: MountInfo): boolean {
  if (!m.fstype.startsWith('fuse')) return false
  ensureFusectlSync()
  const abort = join(FUSECTL, String(m.minor), 'abort')
  try {
    writeFileSync(abort, '1')
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------
// Unmounting

export interface UnmountReport {
  path: string
  steps: string[]
  ok: boolean
}

/**
 * Unmount whatever is mounted at `path`, escalating until it is gone:
 *  1. for fuse.overlayts: `overlayts umount PATH` (the daemon's clean path),
 *  2. `umount -c PATH` (-c: no canonicalize, so umount does not stat a hung mount),
 *  3. for FUSE: abort the connection via /sys/fs/fuse/connections/N/abort,
 *  4. `umount -l -c PATH`.
 * Loops while something is still mounted there (stacked mounts).
 */
export async function unmount (path: string, opts: { useCli?: boolean } = {}): Promise<UnmountReport> {
  const p = resolve(path)
  const steps: string[] = []
  for (let round = 0; round < 8; round++) {
    const m = await mountAt(p)
    if (m === undefined) return { path: p, steps, ok: true }
    if (m.fstype === OVERLAYTS_FSTYPE && opts.useCli !== false && existsSync(OVERLAYTS_BIN)) {
      const r = await run(process.execPath, [OVERLAYTS_BIN, 'umount', p], { timeoutMs: 30_000 }).catch((e: Error) => ({ code: -1, stderr: e.message, timedOut: false }))
      steps.push(`overlayts umount: exit ${r.code}${r.timedOut ? ' (timeout)' : ''} ${r.stderr.trim()}`.trim())
      if (!(await isMountedSameId(p, m.id))) continue
    }
    {
      const r = await run('umount', ['-c', p], { timeoutMs: 10_000 })
      steps.push(`umount: exit ${r.code}${r.timedOut ? ' (timeout)' : ''} ${r.stderr.trim()}`.trim())
      if (!(await isMountedSameId(p, m.id))) continue
    }
    if (m.fstype.startsWith('fuse')) {
      steps.push(`abort fuse connection ${m.minor}: ${abortFuseConnectionSync(m) ? 'ok' : 'failed'}`)
    }
    {
      const r = await run('umount', ['-l', '-c', p], { timeoutMs: 10_000 })
      steps.push(`umount -l: exit ${r.code}${r.timedOut ? ' (timeout)' : ''} ${r.stderr.trim()}`.trim())
    }
  }
  return { path: p, steps, ok: !(await isMounted(p)) }
}

async function isMountedSameId (p: string, id: number): Promise<boolean> {
  return (await listMounts()).some(m => m.mountPoint === p && m.id === id)
}

/** Synchronous last-resort unmount (used from process 'exit'/signal handlers). */
export function forceUnmountSync (path: string): void {
  const p = resolve(path)
  for (let round = 0; round < 8; round++) {
    const all = listMountsSync().filter(m => m.mountPoint === p)
    const m = all[all.length - 1]
    if (m === undefined) return
    if (m.fstype.startsWith('fuse')) abortFuseConnectionSync(m)
    try { execFileSync('umount', ['-l', '-c', p], { stdio: 'ignore', timeout: 10_000 }) } catch { /* next round */ }
  }
}

// Registry of mounts made by this process, for the exit / signal safety net.
const live = new Set<string>()
let exitHooked = false
function hookExit (): void {
  if (exitHooked) return
  exitHooked = true
  const cleanup = (): void => {
    for (const p of [...live].reverse()) {
      try { forceUnmountSync(p) } catch { /* ignore */ }
      live.delete(p)
    }
  }
  process.on('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      cleanup()
      process.removeListener(sig, handler)
      process.kill(process.pid, sig)
    }
    process.on(sig, handler)
  }
}

/**
 * Global safety net: unmount everything under `prefix` (deepest first). With
 * `onlyDeadOwners`, only mounts inside `prefix/<pid>-*` dirs whose pid is no
 * longer alive are touched, so that parallel test processes are left alone.
 * Returns the mount points it unmounted.
 */
export async function cleanupStaleMounts (prefix: string, opts: { onlyDeadOwners?: boolean } = {}): Promise<string[]> {
  const root = resolve(prefix)
  const done: string[] = []
  for (const m of await mountsUnder(root)) {
    if (opts.onlyDeadOwners === true) {
      const rel = m.mountPoint.slice(root.length + 1)
      const owner = /^(\d+)-/.exec(rel.split('/')[0] ?? '')
      if (owner === null || pidAlive(Number(owner[1]))) continue
    }
    const r = await unmount(m.mountPoint)
    if (r.ok) done.push(m.mountPoint)
  }
  return done
}

/**
 * Whether `pid` is a running process. A zombie is not: it has exited, and
 * whoever adopted it reaps it when it does (in a container without an init,
 * PID 1 may never reap it at all).
 */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------
// Mounting

export interface MountSpec {
  /** lower layers, top first */
  lower: string[]
  upper?: string
  work?: string
  merged: string
  /** extra CLI args (overlayts) or extra -o options (kernel) */
  extra?: string[]
}

export interface KernelMountSpec extends MountSpec {
  redirectDir?: boolean
}

export interface MountHandle {
  merged: string
  fstype: string
  unmount: () => Promise<UnmountReport>
}

/**
 * Escape one path for overlayfs' lowerdir= list: ':' separates layers and '\'
 * escapes. Commas cannot be expressed through mount(8)'s -o (it splits on them).
 */
export function escapeLowerdir (dir: string): string {
  if (dir.includes(',')) throw new Error(`overlay layer paths cannot contain ',': ${dir}`)
  return dir.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
}
export function formatLowerdir (dirs: readonly string[]): string {
  return dirs.map(d => escapeLowerdir(resolve(d))).join(':')
}

function overlayOptions (spec: MountSpec, work: string | undefined): string {
  if (spec.lower.length === 0) throw new Error('at least one lower layer is required')
  const opts = [`lowerdir=${formatLowerdir(spec.lower)}`]
  if (spec.upper !== undefined) {
    opts.push(`upperdir=${escapeLowerdir(resolve(spec.upper))}`)
    opts.push(`workdir=${escapeLowerdir(resolve(work ?? ''))}`)
  }
  return opts.join(',')
}

async function defaultWork (spec: MountSpec): Promise<string | undefined> {
  if (spec.upper === undefined) return undefined
  const work = spec.work ?? join(dirname(resolve(spec.upper)), basename(spec.upper) + '.work')
  await mkdir(work, { recursive: true })
  return work
}

function registerTeardown (t: TeardownHost, merged: string): MountHandle['unmount'] {
  let done: Promise<UnmountReport> | undefined
  const doUnmount = async (): Promise<UnmountReport> => {
    done ??= unmount(merged).then(r => {
      if (r.ok) live.delete(merged)
      return r
    })
    return await done
  }
  t.teardown(async () => {
    const r = await doUnmount()
    if (!r.ok) {
      // Loud: a leftover mount would poison every later test.
      process.stderr.write(`# WARNING: could not unmount ${merged}: ${r.steps.join('; ')}\n`)
    }
  })
  return doUnmount
}

/** What both mounts do first: the mountpoint and work dir exist, and teardown will unmount. */
async function prepareMount (t: TeardownHost, spec: MountSpec): Promise<{ merged: string, work: string | undefined, doUnmount: MountHandle['unmount'] }> {
  const merged = resolve(spec.merged)
  const work = await defaultWork(spec)
  await mkdir(merged, { recursive: true })
  hookExit()
  live.add(merged)
  return { merged, work, doUnmount: registerTeardown(t, merged) }
}

/**
 * Mount overlayts through its CLI (detached form) and register a teardown that
 * ALWAYS unmounts. Throws (after cleaning up) if the CLI fails, times out, or
 * returns 0 without a live fuse.overlayts mount.
 */
export async function mountOverlayts (t: TeardownHost, spec: MountSpec, opts: { timeoutMs?: number } = {}): Promise<MountHandle> {
  const { merged, work, doUnmount } = await prepareMount(t, spec)
  const args = [OVERLAYTS_BIN, 'mount', '-o', overlayOptions(spec, work), merged, ...(spec.extra ?? [])]
  const r = await run(process.execPath, args, { timeoutMs: opts.timeoutMs ?? 60_000, cwd: REPO_ROOT })
  const m = await mountAt(merged)
  if (r.code !== 0 || m === undefined || m.fstype !== OVERLAYTS_FSTYPE) {
    const cleaned = await doUnmount()
    const why = r.code !== 0
      ? (r.timedOut ? 'timed out' : `exited ${r.code}`)
      : (m === undefined ? 'exited 0 but nothing is mounted' : `exited 0 but the mount's fstype is ${m.fstype}`)
    throw new Error(`overlayts mount ${why}: ${summarizeStderr(r.stderr)}` +
      `\n  command: node ${args.map(a => JSON.stringify(a)).join(' ')}` +
      (cleaned.steps.length > 0 ? `\n  cleanup: ${cleaned.steps.join('; ')}` : ''))
  }
  return { merged, fstype: m.fstype, unmount: doUnmount }
}

/** The daemon prints one error line; a crash prints a stack: keep the lines that say what happened. */
export function summarizeStderr (stderr: string): string {
  const lines = stderr.split('\n').map(l => l.trim()).filter(l => l !== '')
  if (lines.length === 0) return '(no stderr)'
  if (lines.length <= 3) return lines.join(' | ')
  const key = lines.filter(l => /^(\w*Error\b|Error \[|overlayts:|code: )/.test(l))
  return (key.length > 0 ? key : lines.slice(-3)).slice(0, 4).join(' | ')
}

/** Mount the kernel's overlayfs (the oracle), with the same teardown guarantee. */
export async function mountKernel (t: TeardownHost, spec: KernelMountSpec): Promise<MountHandle> {
  const { merged, work, doUnmount } = await prepareMount(t, spec)
  let o = overlayOptions(spec, work)
  // In a user namespace (test/helpers/userns.ts) the kernel mounts with
  // userxattr, which refuses redirect_dir=on (directory renames are EXDEV).
  if (inUserxattrMode()) o += ',userxattr'
  else if (spec.redirectDir === true) o += ',redirect_dir=on'
  for (const e of spec.extra ?? []) o += ',' + e
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', o, merged], { timeoutMs: 30_000 })
  const m = await mountAt(merged)
  if (r.code !== 0 || m === undefined || m.fstype !== 'overlay') {
    await doUnmount()
    let dmesg = ''
    try {
      const d = await run('dmesg', [], { timeoutMs: 5000 })
      dmesg = d.stdout.toString('utf8').split('\n').filter(l => l.includes('overlay')).slice(-3).join(' | ')
    } catch { /* no dmesg */ }
    throw new Error(`kernel overlay mount failed (exit ${r.code}): ${r.stderr.trim()} ${dmesg}\n  options: ${o}`)
  }
  return { merged, fstype: m.fstype, unmount: doUnmount }
}
