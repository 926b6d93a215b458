/**
 * Benchmark (issue 5 §2): overlayts against kernel overlayfs, fuse-overlayfs
 * and unionfs-fuse on synthetic stacks of N lower layers.
 *
 *   npm run bench -- [--layers 1,4,16,64,128] [--fs overlayts,kernel,fuse-overlayfs,unionfs]
 *                    [--quick] [--json out.json] [--svg out.svg] [--tmp DIR] [--keep]
 *                    [--index off|PATH] [--ots-opts OPTS] [--ots-cpu-prof DIR]
 *
 * This process is never a FUSE daemon: every filesystem is served by its own
 * process (overlayts detaches its daemon), so the synchronous I/O done here
 * on the mounts is safe. Per-operation times are taken around each syscall
 * with process.hrtime.bigint(); a value is the median of its samples.
 *
 * Must run as root (mount(2), /proc/sys/vm/drop_caches). Every mount made is
 * unmounted in a finally block; a watchdog thread aborts and lazily unmounts
 * FUSE mounts if the main thread ever blocks on a hung daemon.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { forceUnmount, isMounted, mountInfo } from './bench-lib/mounts.js'
import { lineChartSvg } from './bench-lib/svg.js'

// ---------------------------------------------------------------- options

type FsKind = 'overlayts' | 'kernel' | 'fuse-overlayfs' | 'unionfs'
const ALL_FS: FsKind[] = ['overlayts', 'kernel', 'fuse-overlayfs', 'unionfs']

interface Options {
  layers: number[]
  fs: FsKind[]
  quick: boolean
  json: string | undefined
  svg: string | undefined
  tmp: string | undefined
  keep: boolean
  index: string | undefined
  /** Extra -o options for overlayts (e.g. attr_timeout=1). */
  otsOpts: string | undefined
  otsCpuProf: string | undefined
  pin: boolean
}

function usage (msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: node dist/scripts/bench.js [--layers 1,4,16,64,128] [--fs ${ALL_FS.join(',')}] [--quick] [--json FILE] [--svg FILE] [--tmp DIR] [--keep] [--index off|PATH] [--ots-opts OPTS] [--ots-cpu-prof DIR] [--no-pin]\n`)
  process.exit(2)
}

function parseArgs (argv: string[]): Options {
  const o: Options = { layers: [1, 4, 16, 64, 128], fs: [...ALL_FS], quick: false, json: undefined, svg: undefined, tmp: undefined, keep: false, index: undefined, otsOpts: undefined, otsCpuProf: undefined, pin: os.cpus().length >= 2 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const eq = a.indexOf('=')
    const key = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a
    const val = (): string => {
      if (a.startsWith('--') && eq > 0) return a.slice(eq + 1)
      const v = argv[++i]
      if (v === undefined) usage(`${a} needs a value`)
      return v
    }
    switch (key) {
      case '--layers':
        o.layers = val().split(',').filter(Boolean).map((s) => {
          const n = Number(s)
          if (!Number.isInteger(n) || n < 1 || n > 500) usage(`bad layer count: ${s}`)
          return n
        })
        break
      case '--fs':
        o.fs = val().split(',').filter(Boolean).map((s) => {
          if (!(ALL_FS as string[]).includes(s)) usage(`unknown filesystem: ${s}`)
          return s as FsKind
        })
        break
      case '--quick': o.quick = true; break
      case '--json': o.json = val(); break
      case '--svg': o.svg = val(); break
      case '--tmp': o.tmp = val(); break
      case '--keep': o.keep = true; break
      case '--pin': o.pin = true; break
      case '--no-pin': o.pin = false; break
      case '--index': o.index = val(); break
      case '--ots-opts': o.otsOpts = val(); break
      case '--ots-cpu-prof': o.otsCpuProf = path.resolve(val()); break
      case '--help': case '-h': usage('help')
      // eslint-disable-next-line no-fallthrough
      default: usage(`unknown argument: ${a}`)
    }
  }
  o.layers = [...new Set(o.layers)].sort((a, b) => a - b)
  return o
}

// ---------------------------------------------------------------- sizes

const SHARED_PER_LAYER = 8
const COPY_UP_SIZE = 4 << 20
const SEQ_SIZE = 64 << 20
const CREATE_SIZE = 4096
/** Two disjoint sets of mutable files: one per column that shares an upper (overlayts first mount, remount). */
const SETS = 2

interface Counts { cold: number, neg: number, readdir: number, seq: number, copyUp: number, create: number, unlink: number }
const FULL: Counts = { cold: 300, neg: 300, readdir: 40, seq: 5, copyUp: 10, create: 200, unlink: 200 }
const QUICK: Counts = { cold: 50, neg: 50, readdir: 8, seq: 1, copyUp: 3, create: 20, unlink: 20 }

// ---------------------------------------------------------------- metrics

interface MetricDef { id: string, label: string, unit: 'µs' | 'ms' | 'MB/s', higherIsBetter?: boolean }
const METRICS: MetricDef[] = [
  { id: 'mount', label: 'mount (command returns)', unit: 'ms' },
  { id: 'cold_stat', label: 'cold stat, bottom-layer file', unit: 'µs' },
  { id: 'warm_stat', label: 'warm stat (repeat)', unit: 'µs' },
  { id: 'neg_lookup', label: 'negative lookup (absent)', unit: 'µs' },
  { id: 'readdir', label: 'readdir merged dir (8/layer)', unit: 'µs' },
  { id: 'seq_read', label: 'seq read 64 MiB, cold', unit: 'MB/s', higherIsBetter: true },
  { id: 'copy_up', label: 'copy-up 4 MiB (append 1 B)', unit: 'µs' },
  { id: 'create', label: 'create 4 KiB file', unit: 'µs' },
  { id: 'unlink', label: 'unlink lower file', unit: 'µs' }
]

interface Summary { median: number, p10: number, p90: number, min: number, max: number, n: number }

function summarize (xs: number[]): Summary | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): number => {
    const i = (s.length - 1) * p
    const lo = Math.floor(i); const hi = Math.ceil(i)
    return s[lo]! + (s[hi]! - s[lo]!) * (i - lo)
  }
  return { median: q(0.5), p10: q(0.1), p90: q(0.9), min: s[0]!, max: s[s.length - 1]!, n: s.length }
}

interface Column {
  key: string // overlayts-first | overlayts-remount | kernel | fuse-overlayfs | unionfs
  label: string
  fs: FsKind
  layers: number
  metrics: Record<string, Summary | undefined>
  notes: string[]
  error?: string
}

const COLUMN_LABELS: Record<string, string> = {
  'overlayts-first': 'overlayts (first mount)',
  'overlayts-remount': 'overlayts (remount)',
  kernel: 'kernel overlayfs',
  'fuse-overlayfs': 'fuse-overlayfs',
  unionfs: 'unionfs-fuse'
}
const COLUMN_SHORT: Record<string, string> = {
  'overlayts-first': 'ots-1st',
  'overlayts-remount': 'ots-remnt',
  kernel: 'kernel',
  'fuse-overlayfs': 'fuse-ovl',
  unionfs: 'unionfs'
}

// ---------------------------------------------------------------- plumbing

const BIN = fileURLToPath(new URL('../../bin/overlayts.js', import.meta.url))
const now = (): bigint => process.hrtime.bigint()
const usSince = (t0: bigint): number => Number(now() - t0) / 1000
const log = (s: string): void => { process.stderr.write(s + '\n') }

function sh (cmd: string, args: string[], opts: { cwd?: string, timeout?: number } = {}): { ok: boolean, out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, timeout: opts.timeout ?? 120_000, encoding: 'utf8' })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim()
  return { ok: r.status === 0 && r.error === undefined, out }
}

/**
 * CPU placement. A FUSE request is a wake-up of the daemon by the caller: on
 * the same CPU it costs a few µs, across CPUs (an IPI, slow in a VM) tens of
 * µs, and left to the scheduler it is either, per mount, which makes medians
 * bimodal. Pinned, the benchmark runs on the last CPU and every daemon on the
 * others, so every FUSE filesystem pays the same cross-CPU hop on every run.
 */
let daemonCpus: string | undefined
function pinned (cmd: string, args: string[]): [string, string[]] {
  return daemonCpus === undefined ? [cmd, args] : ['taskset', ['-c', daemonCpus, cmd, ...args]]
}

function have (cmd: string): boolean {
  return sh('sh', ['-c', `command -v ${cmd}`]).ok
}

function dropCaches (): void {
  spawnSync('sync', { timeout: 120_000 })
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
}

// Watchdog: the deadline lives in shared memory so a blocked main thread cannot delay it.
const deadline = new Float64Array(new SharedArrayBuffer(8))
let watchdog: Worker | undefined
const active = new Map<string, () => void>() // mountpoint -> orderly unmount

function arm (seconds: number): void { deadline[0] = Date.now() + seconds * 1000 }
function disarm (): void { deadline[0] = 0 }
function publishMounts (): void { watchdog?.postMessage({ mounts: [...active.keys()] }) }

function startWatchdog (): void {
  watchdog = new Worker(new URL('./bench-lib/watchdog.js', import.meta.url), { workerData: { shared: deadline.buffer } })
  watchdog.unref()
}

/** Orderly unmount of everything still mounted, falling back to abort + lazy unmount. */
function cleanupAll (): void {
  for (const [mp, unmount] of [...active]) {
    try { unmount() } catch { /* fall through */ }
    if (isMounted(mp) !== undefined) forceUnmount(mp)
    active.delete(mp)
  }
  publishMounts()
}

// ---------------------------------------------------------------- stacks

interface Stack {
  n: number
  dir: string
  /** Lower layers, top first (l0 is the top, l{n-1} the bottom). */
  lowers: string[]
  bottom: string
}

function writeFilled (file: string, size: number): void {
  const chunk = randomBytes(Math.min(size, 1 << 20))
  const fd = fs.openSync(file, 'w')
  try {
    for (let off = 0; off < size; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - off))
  } finally { fs.closeSync(fd) }
}

/** Big files written once and hardlinked into the bottom layer of every stack. */
function buildMaster (root: string, c: Counts): string {
  const m = path.join(root, 'master')
  fs.mkdirSync(m, { recursive: true })
  writeFilled(path.join(m, 'big.bin'), SEQ_SIZE)
  for (let s = 0; s < SETS; s++) {
    for (let k = 0; k < c.copyUp; k++) writeFilled(path.join(m, `cp${s}_${k}`), COPY_UP_SIZE)
  }
  return m
}

function buildStack (root: string, master: string, n: number, c: Counts): Stack {
  const dir = path.join(root, String(n))
  fs.mkdirSync(dir)
  const lowers: string[] = []
  const small = Buffer.alloc(64, 'x')
  for (let i = 0; i < n; i++) {
    const l = path.join(dir, `l${i}`)
    lowers.push(l)
    for (const d of ['', 'shared', 'c', 'w']) fs.mkdirSync(path.join(l, d), { recursive: true })
    fs.writeFileSync(path.join(l, `t${i}`), small)
    for (let k = 0; k < SHARED_PER_LAYER; k++) fs.writeFileSync(path.join(l, 'shared', `s${i}_${k}`), small)
  }
  const bottom = lowers[n - 1]!
  // The "deep" files: only in the bottom layer, under c/ which every layer has.
  for (let k = 0; k < Math.max(c.cold, 1); k++) fs.writeFileSync(path.join(bottom, 'c', `f${k}`), small)
  fs.writeFileSync(path.join(bottom, 'deep'), small)
  for (let s = 0; s < SETS; s++) {
    for (let k = 0; k < c.unlink; k++) fs.writeFileSync(path.join(bottom, 'c', `u${s}_${k}`), small)
    for (let k = 0; k < c.copyUp; k++) fs.linkSync(path.join(master, `cp${s}_${k}`), path.join(bottom, 'c', `cp${s}_${k}`))
  }
  fs.linkSync(path.join(master, 'big.bin'), path.join(bottom, 'big.bin'))
  return { n, dir, lowers, bottom }
}

// ---------------------------------------------------------------- mounting

interface Target { upper: string, work: string, mp: string }

function freshTarget (st: Stack, tag: string): Target {
  const t = { upper: path.join(st.dir, `u-${tag}`), work: path.join(st.dir, `w-${tag}`), mp: path.join(st.dir, `m-${tag}`) }
  for (const d of [t.upper, t.work]) fs.rmSync(d, { recursive: true, force: true })
  for (const d of [t.upper, t.work, t.mp]) fs.mkdirSync(d, { recursive: true })
  return t
}

interface MountResult { ms: number, notes: string[] }

function waitUnmounted (mp: string, ms: number): boolean {
  const end = Date.now() + ms
  while (isMounted(mp) !== undefined) {
    if (Date.now() > end) return false
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
  }
  return true
}

let indexOption: string | undefined // undefined: the default (the index in workdir)
let indexRejected = false
const profChildren = new Map<string, ReturnType<typeof spawn>>()

async function mountOverlayts (st: Stack, t: Target, opts: Options): Promise<MountResult> {
  const notes: string[] = []
  const base = `lowerdir=${st.lowers.join(':')},upperdir=${t.upper},workdir=${t.work}` + (opts.otsOpts !== undefined ? `,${opts.otsOpts}` : '')
  const withIndex = indexOption !== undefined && !indexRejected ? `${base},index=${indexOption}` : base
  const unmount = (): void => {
    sh(process.execPath, [BIN, 'umount', t.mp], { timeout: 60_000 })
  }
  if (opts.otsCpuProf !== undefined) {
    // Foreground daemon under the V8 profiler; ready once the mount shows up.
    fs.mkdirSync(opts.otsCpuProf, { recursive: true })
    const t0 = now()
    const child = spawn(...pinned(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${opts.otsCpuProf}`, BIN, 'mount', '-f', '--log-level', 'warn', '-o', withIndex, t.mp]), { stdio: 'ignore' })
    let exited = false
    child.on('exit', () => { exited = true })
    active.set(t.mp, unmount); publishMounts()
    while (isMounted(t.mp)?.fstype !== 'fuse.overlayts') {
      if (exited) { active.delete(t.mp); throw new Error('overlayts daemon exited before mounting') }
      if (usSince(t0) > 300e6) throw new Error('overlayts did not mount within 300 s')
      await new Promise((r) => setTimeout(r, 5))
    }
    profChildren.set(t.mp, child)
    notes.push('daemon under --cpu-prof (mount time includes polling)')
    return { ms: usSince(t0) / 1000, notes }
  }
  let t0 = now()
  let r = sh(...pinned(process.execPath, [BIN, 'mount', '-o', withIndex, t.mp]), { timeout: 300_000 })
  let ms = usSince(t0) / 1000
  if (!r.ok && withIndex !== base && /index/i.test(r.out)) {
    indexRejected = true
    notes.push(`index=${indexOption} rejected (${r.out}); mounted without it`)
    t0 = now()
    r = sh(...pinned(process.execPath, [BIN, 'mount', '-o', base, t.mp]), { timeout: 300_000 })
    ms = usSince(t0) / 1000
  }
  if (!r.ok) {
    if (isMounted(t.mp) !== undefined) { active.set(t.mp, unmount); publishMounts() }
    throw new Error(`overlayts mount failed: ${r.out}`)
  }
  active.set(t.mp, unmount); publishMounts()
  return { ms, notes }
}

async function unmountOverlayts (mp: string): Promise<void> {
  const r = sh(process.execPath, [BIN, 'umount', mp], { timeout: 60_000 })
  const child = profChildren.get(mp)
  if (child !== undefined) {
    profChildren.delete(mp)
    if (child.exitCode === null) await new Promise((res) => { child.once('exit', res); setTimeout(res, 30_000) })
  }
  if (!r.ok) throw new Error(`overlayts umount: ${r.out}`)
}

function mountKernel (st: Stack, t: Target): MountResult {
  const notes: string[] = []
  let opt = `lowerdir=${st.lowers.join(':')},upperdir=${t.upper},workdir=${t.work}`
  let cwd: string | undefined
  // The kernel takes at most one page of options: fall back to paths relative to the stack dir.
  if (opt.length > 4000) {
    cwd = st.dir
    opt = `lowerdir=${st.lowers.map((l) => path.relative(st.dir, l)).join(':')},upperdir=${path.relative(st.dir, t.upper)},workdir=${path.relative(st.dir, t.work)}`
    notes.push(`relative lowerdir paths (${opt.length} B of options)`)
  }
  const t0 = now()
  const r = sh('mount', ['-t', 'overlay', 'overlay', '-o', opt, t.mp], { cwd })
  const ms = usSince(t0) / 1000
  if (!r.ok) throw new Error(`kernel overlay mount failed: ${r.out}`)
  active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts()
  return { ms, notes }
}

function mountFuseOverlayfs (st: Stack, t: Target): MountResult {
  const t0 = now()
  const r = sh(...pinned('fuse-overlayfs', ['-o', `lowerdir=${st.lowers.join(':')},upperdir=${t.upper},workdir=${t.work}`, t.mp]))
  const ms = usSince(t0) / 1000
  if (!r.ok) {
    if (isMounted(t.mp) !== undefined) { active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts() }
    throw new Error(`fuse-overlayfs failed: ${r.out}`)
  }
  active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts()
  return { ms, notes: [] }
}

let unionfsBin = 'unionfs'
function mountUnionfs (st: Stack, t: Target): MountResult {
  const branches = [`${t.upper}=RW`, ...st.lowers.map((l) => `${l}=RO`)].join(':')
  const t0 = now()
  const r = sh(...pinned(unionfsBin, ['-o', 'cow,allow_other', branches, t.mp]))
  const ms = usSince(t0) / 1000
  if (!r.ok) {
    if (isMounted(t.mp) !== undefined) { active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts() }
    throw new Error(`unionfs failed: ${r.out}`)
  }
  active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts()
  return { ms, notes: [] }
}

async function unmountAny (fsk: FsKind, mp: string): Promise<void> {
  try {
    if (fsk === 'overlayts') await unmountOverlayts(mp)
    else {
      const r = sh('umount', [mp], { timeout: 60_000 })
      if (!r.ok) throw new Error(`umount ${mp}: ${r.out}`)
    }
    if (!waitUnmounted(mp, 10_000)) throw new Error(`${mp} still mounted`)
  } finally {
    if (isMounted(mp) !== undefined) forceUnmount(mp)
    active.delete(mp); publishMounts()
  }
}

// ---------------------------------------------------------------- workloads

function timeEach (n: number, fn: (k: number) => void): number[] {
  const out: number[] = []
  for (let k = 0; k < n; k++) {
    const t0 = now()
    fn(k)
    out.push(usSince(t0))
  }
  return out
}

function runWorkloads (st: Stack, mp: string, set: number, tag: string, c: Counts, col: Column): void {
  const M = (rel: string): string => path.join(mp, rel)
  const m = col.metrics
  // Cold stat: caches dropped, every file a first lookup, each under a dir present in all layers.
  dropCaches()
  m.cold_stat = summarize(timeEach(c.cold, (k) => { fs.statSync(M(`c/f${k}`)) }))
  m.warm_stat = summarize(timeEach(c.cold, (k) => { fs.statSync(M(`c/f${k}`)) }))
  const negs = timeEach(c.neg, (k) => {
    if (fs.statSync(M(`c/nx${k}`), { throwIfNoEntry: false }) !== undefined) throw new Error(`c/nx${k} exists`)
  })
  m.neg_lookup = summarize(negs)
  // Readdir of shared/, merged from every layer (opendir + getdents + close each time).
  let entries = -1
  m.readdir = summarize(timeEach(c.readdir, () => { entries = fs.readdirSync(M('shared')).length }))
  if (entries !== st.n * SHARED_PER_LAYER) col.notes.push(`readdir shared/ listed ${entries} names, expected ${st.n * SHARED_PER_LAYER}`)
  // Sequential read of the 64 MiB bottom-layer file, caches dropped first.
  const buf = Buffer.allocUnsafe(1 << 20)
  const rates: number[] = []
  for (let s = 0; s < c.seq; s++) {
    dropCaches()
    const t0 = now()
    const fd = fs.openSync(M('big.bin'), 'r')
    let total = 0
    try {
      for (;;) {
        const got = fs.readSync(fd, buf, 0, buf.length, null)
        if (got === 0) break
        total += got
      }
    } finally { fs.closeSync(fd) }
    const sec = usSince(t0) / 1e6
    if (total !== SEQ_SIZE) col.notes.push(`read ${total} bytes of big.bin, expected ${SEQ_SIZE}`)
    rates.push(total / (1 << 20) / sec)
  }
  m.seq_read = summarize(rates)
  // Copy-up: the lower files are read into the page cache first (from the
  // lower layer itself, not through the mount) so the copy is what is timed.
  for (let k = 0; k < c.copyUp; k++) fs.readFileSync(path.join(st.bottom, 'c', `cp${set}_${k}`))
  const one = Buffer.from('x')
  m.copy_up = summarize(timeEach(c.copyUp, (k) => {
    const fd = fs.openSync(M(`c/cp${set}_${k}`), 'a')
    try { fs.writeSync(fd, one) } finally { fs.closeSync(fd) }
  }))
  const cpSize = fs.statSync(M(`c/cp${set}_0`)).size
  if (c.copyUp > 0 && cpSize !== COPY_UP_SIZE + 1) col.notes.push(`copied-up file has size ${cpSize}, expected ${COPY_UP_SIZE + 1}`)
  // Create 4 KiB files in w/ (a dir every layer has: each create starts with an N-layer negative lookup).
  const data = Buffer.alloc(CREATE_SIZE, 'y')
  m.create = summarize(timeEach(c.create, (k) => {
    const fd = fs.openSync(M(`w/n${tag}_${k}`), 'wx')
    try { fs.writeSync(fd, data) } finally { fs.closeSync(fd) }
  }))
  // Unlink lower files (the name is looked up first, untimed: the unlink itself is timed).
  for (let k = 0; k < c.unlink; k++) fs.statSync(M(`c/u${set}_${k}`))
  m.unlink = summarize(timeEach(c.unlink, (k) => { fs.unlinkSync(M(`c/u${set}_${k}`)) }))
  if (c.unlink > 0 && fs.statSync(M(`c/u${set}_0`), { throwIfNoEntry: false }) !== undefined) col.notes.push('an unlinked lower file is still visible')
}

function describeWorkdir (work: string): string {
  const items: string[] = []
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (r === 'work') continue
      if (e.isDirectory()) walk(path.join(d, e.name), r)
      else items.push(`${r} (${(fs.statSync(path.join(d, e.name)).size / 1024).toFixed(0)} KiB)`)
    }
  }
  try { walk(work, '') } catch { /* unreadable */ }
  return items.length === 0 ? 'workdir holds nothing but work/ (no index file)' : `workdir: ${items.join(', ')}`
}

async function runColumn (key: string, fsk: FsKind, st: Stack, t: Target, set: number, c: Counts, opts: Options): Promise<Column> {
  const col: Column = { key, label: COLUMN_LABELS[key]!, fs: fsk, layers: st.n, metrics: {}, notes: [] }
  const started = Date.now()
  arm(300)
  try {
    dropCaches()
    let mr: MountResult
    switch (fsk) {
      case 'overlayts': mr = await mountOverlayts(st, t, opts); break
      case 'kernel': mr = mountKernel(st, t); break
      case 'fuse-overlayfs': mr = mountFuseOverlayfs(st, t); break
      case 'unionfs': mr = mountUnionfs(st, t); break
    }
    col.metrics.mount = summarize([mr.ms])
    col.notes.push(...mr.notes)
    arm(opts.quick ? 120 : 300)
    runWorkloads(st, t.mp, set, key.replace(/[^a-z]/g, ''), c, col)
  } catch (e) {
    col.error = (e as Error).message
    log(`  ${col.label} N=${st.n}: ERROR ${col.error}`)
  } finally {
    arm(120)
    try { await unmountAny(fsk, t.mp) } catch (e) {
      col.notes.push(`unmount: ${(e as Error).message}`)
    }
    disarm()
  }
  if (fsk === 'overlayts') col.notes.push(describeWorkdir(t.work))
  const cs = col.metrics.cold_stat?.median
  log(`  ${col.label.padEnd(24)} N=${String(st.n).padEnd(4)} ${((Date.now() - started) / 1000).toFixed(1)} s` +
    (cs !== undefined ? `  cold stat ${cs.toFixed(1)} µs` : ''))
  return col
}

// ---------------------------------------------------------------- report

function fmt (v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return '-'
  if (unit === 'MB/s') return v >= 100 ? v.toFixed(0) : v.toFixed(1)
  if (unit === 'ms') return v >= 100 ? v.toFixed(0) : v.toFixed(1)
  return v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(0) : v.toFixed(1)
}

function table (cols: Column[]): string {
  const head = 'workload (median)'
  const w0 = Math.max(head.length, ...METRICS.map((m) => `${m.label} [${m.unit}]`.length))
  const ws = cols.map((c) => Math.max(8, COLUMN_SHORT[c.key]!.length, ...METRICS.map((m) => fmt(c.metrics[m.id]?.median, m.unit).length)))
  const lines: string[] = []
  lines.push(''.padEnd(w0) + ' | ' + cols.map((c, i) => COLUMN_SHORT[c.key]!.padStart(ws[i]!)).join(' '))
  lines.push(head.padEnd(w0) + ' | ' + cols.map((c, i) => `N=${c.layers}`.padStart(ws[i]!)).join(' '))
  lines.push('-'.repeat(w0) + '-+-' + cols.map((_c, i) => '-'.repeat(ws[i]!)).join('-'))
  for (const m of METRICS) {
    lines.push(`${m.label} [${m.unit}]`.padEnd(w0) + ' | ' + cols.map((c, i) => fmt(c.metrics[m.id]?.median, m.unit).padStart(ws[i]!)).join(' '))
  }
  lines.push('')
  lines.push('columns: ' + [...new Set(cols.map((c) => c.key))].map((k) => `${COLUMN_SHORT[k]} = ${COLUMN_LABELS[k]}`).join('; '))
  return lines.join('\n')
}

interface Ratio { name: string, variant: string, value: number | undefined, goal: string, pass: boolean | undefined, detail: string }

function ratios (cols: Column[], layers: number[]): { ref: number, base: number, list: Ratio[] } {
  const ref = layers.includes(64) ? 64 : layers[layers.length - 1]!
  const base = layers.includes(1) ? 1 : layers[0]!
  const get = (key: string, n: number, id: string): number | undefined => cols.find((c) => c.key === key && c.layers === n)?.metrics[id]?.median
  const list: Ratio[] = []
  const add = (name: string, variant: string, a: number | undefined, b: number | undefined, goal: string, ok: (r: number) => boolean, detail: string): void => {
    const value = a !== undefined && b !== undefined && b > 0 ? a / b : undefined
    list.push({ name, variant, value, goal, pass: value === undefined ? undefined : ok(value), detail })
  }
  for (const v of ['overlayts-first', 'overlayts-remount']) {
    const vn = v === 'overlayts-first' ? 'first mount' : 'remount'
    add(`cold stat @${ref} layers: overlayts / kernel`, vn, get(v, ref, 'cold_stat'), get('kernel', ref, 'cold_stat'), '<= 0.25', (r) => r <= 0.25, `${fmt(get(v, ref, 'cold_stat'), 'µs')} / ${fmt(get('kernel', ref, 'cold_stat'), 'µs')} µs`)
    add(`cold stat overlayts @${ref} / @${base} layers`, vn, get(v, ref, 'cold_stat'), get(v, base, 'cold_stat'), '<= 1.3', (r) => r <= 1.3, `${fmt(get(v, ref, 'cold_stat'), 'µs')} / ${fmt(get(v, base, 'cold_stat'), 'µs')} µs`)
    add(`negative lookup overlayts @${ref} / @${base} layers (flat)`, vn, get(v, ref, 'neg_lookup'), get(v, base, 'neg_lookup'), '<= 1.3', (r) => r <= 1.3, `${fmt(get(v, ref, 'neg_lookup'), 'µs')} / ${fmt(get(v, base, 'neg_lookup'), 'µs')} µs`)
    add(`seq read @${ref} layers: overlayts / fuse-overlayfs`, vn, get(v, ref, 'seq_read'), get('fuse-overlayfs', ref, 'seq_read'), '>= 1.0', (r) => r >= 1.0, `${fmt(get(v, ref, 'seq_read'), 'MB/s')} / ${fmt(get('fuse-overlayfs', ref, 'seq_read'), 'MB/s')} MB/s`)
    add(`create @${ref} layers: overlayts / fuse-overlayfs`, vn, get(v, ref, 'create'), get('fuse-overlayfs', ref, 'create'), '<= 1.0', (r) => r <= 1.0, `${fmt(get(v, ref, 'create'), 'µs')} / ${fmt(get('fuse-overlayfs', ref, 'create'), 'µs')} µs`)
    add(`unlink @${ref} layers: overlayts / fuse-overlayfs`, vn, get(v, ref, 'unlink'), get('fuse-overlayfs', ref, 'unlink'), '<= 1.0', (r) => r <= 1.0, `${fmt(get(v, ref, 'unlink'), 'µs')} / ${fmt(get('fuse-overlayfs', ref, 'unlink'), 'µs')} µs`)
  }
  return { ref, base, list }
}

function ratioText (r: ReturnType<typeof ratios>): string {
  const w = Math.max(...r.list.map((x) => x.name.length))
  return r.list.map((x) => `${x.name.padEnd(w)}  [${x.variant.padEnd(11)}]  ${x.value === undefined ? '   n/a' : x.value.toFixed(3).padStart(6)}  goal ${x.goal.padEnd(7)} ${x.pass === undefined ? 'N/A ' : x.pass ? 'PASS' : 'MISS'}  (${x.detail})`).join('\n')
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  const c = opts.quick ? QUICK : FULL
  if (process.getuid?.() !== 0) usage('must run as root (mount, drop_caches)')
  indexOption = opts.index
  const t0 = Date.now()
  const loadBefore = os.loadavg()

  // Which filesystems can run here.
  const skipped: string[] = []
  const fsList = opts.fs.filter((f) => {
    let ok = true
    if (f === 'overlayts') ok = fs.existsSync(fileURLToPath(new URL('../src/cli/main.js', import.meta.url)))
    if (f === 'kernel') {
      sh('modprobe', ['overlay'])
      ok = /\toverlay\n/.test(fs.readFileSync('/proc/filesystems', 'utf8'))
    }
    if (f === 'fuse-overlayfs') ok = have('fuse-overlayfs')
    if (f === 'unionfs') {
      ok = have('unionfs') || have('unionfs-fuse')
      if (ok && !have('unionfs')) unionfsBin = 'unionfs-fuse'
    }
    if (!ok) skipped.push(f)
    return ok
  })
  for (const s of skipped) log(`bench: skipping ${s}: not available on this system`)

  if (opts.pin) {
    const n = os.cpus().length
    const r = sh('taskset', ['-a', '-p', '-c', String(n - 1), String(process.pid)])
    if (r.ok && have('taskset')) daemonCpus = n === 2 ? '0' : `0-${n - 2}`
    else log(`bench: cannot pin CPUs (${r.out}); running unpinned`)
  }
  const root = fs.mkdtempSync(path.join(opts.tmp ?? os.tmpdir(), 'ob'))
  log(`bench: ${daemonCpus === undefined ? 'unpinned' : `bench on CPU ${os.cpus().length - 1}, daemons on CPU ${daemonCpus}`}`)
  log(`bench: ${opts.quick ? 'quick' : 'full'} run; layers ${opts.layers.join(',')}; filesystems ${fsList.join(',')}; in ${root}`)
  startWatchdog()
  const onSignal = (sig: string): void => {
    log(`bench: ${sig}: unmounting`)
    cleanupAll()
    process.exit(130)
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))

  const cols: Column[] = []
  const builds: Record<number, number> = {}
  try {
    let tb = Date.now()
    const master = buildMaster(root, c)
    log(`bench: master files written in ${((Date.now() - tb) / 1000).toFixed(1)} s`)
    for (const n of opts.layers) {
      tb = Date.now()
      const st = buildStack(root, master, n, c)
      builds[n] = (Date.now() - tb) / 1000
      log(`bench: stack of ${n} layers built in ${builds[n]!.toFixed(2)} s`)
      for (const f of fsList) {
        const t = freshTarget(st, f === 'fuse-overlayfs' ? 'fo' : f === 'overlayts' ? 'ot' : f === 'kernel' ? 'k' : 'un')
        if (f === 'overlayts') {
          cols.push(await runColumn('overlayts-first', f, st, t, 0, c, opts))
          cols.push(await runColumn('overlayts-remount', f, st, t, 1, c, opts))
        } else {
          cols.push(await runColumn(f, f, st, t, 0, c, opts))
        }
        if (isMounted(t.mp) === undefined) {
          fs.rmSync(t.upper, { recursive: true, force: true })
          fs.rmSync(t.work, { recursive: true, force: true })
        }
      }
    }
  } finally {
    cleanupAll()
    disarm()
    watchdog?.postMessage({ stop: true })
    const left = mountInfo().filter((m) => m.mountpoint.startsWith(root + '/'))
    if (left.length > 0) log(`bench: WARNING: still mounted: ${left.map((m) => m.mountpoint).join(' ')}; keeping ${root}`)
    else if (!opts.keep) fs.rmSync(root, { recursive: true, force: true })
    else log(`bench: kept ${root}`)
  }

  // Order the columns by filesystem, then layer count.
  const order = ['overlayts-first', 'overlayts-remount', 'kernel', 'fuse-overlayfs', 'unionfs']
  cols.sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key) || a.layers - b.layers)
  const elapsed = (Date.now() - t0) / 1000
  const r = ratios(cols, opts.layers)

  const out: string[] = []
  out.push('')
  out.push(table(cols))
  const notes = cols.flatMap((col) => [...(col.error ? [`ERROR ${col.error}`] : []), ...col.notes].map((n) => `  ${col.label} N=${col.layers}: ${n}`))
  if (notes.length > 0) out.push('', 'notes:', ...notes)
  if (skipped.length > 0) out.push('', `skipped (not installed): ${skipped.join(', ')}`)
  out.push('', `goal ratios (issue 5; reference ${r.ref} layers, base ${r.base} layer${r.base === 1 ? '' : 's'}):`, ratioText(r))
  const loadAfter = os.loadavg()
  out.push('', `total run time ${elapsed.toFixed(1)} s (${opts.quick ? 'quick' : 'full'}; stack builds ${Object.values(builds).reduce((a, b) => a + b, 0).toFixed(1)} s)`)
  out.push(`load average (1 min) before ${loadBefore[0]!.toFixed(2)}, after ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs` +
    (Math.max(loadBefore[0]!, loadAfter[0]!) > 0.5 ? ': other work was running, expect noise' : ''))
  process.stdout.write(out.join('\n') + '\n')

  if (opts.json !== undefined) {
    const doc = {
      date: new Date().toISOString(),
      host: { kernel: os.release(), cpus: os.cpus().length, node: process.version },
      quick: opts.quick,
      layers: opts.layers,
      filesystems: fsList,
      skipped,
      samples: c,
      cpuPinning: daemonCpus === undefined ? null : { bench: os.cpus().length - 1, daemons: daemonCpus },
      elapsedSeconds: elapsed,
      loadavg: { before: loadBefore, after: loadAfter },
      buildSeconds: builds,
      metrics: METRICS,
      columns: cols,
      ratios: r
    }
    fs.writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n')
    log(`bench: wrote ${opts.json}`)
  }
  if (opts.svg !== undefined) {
    const keys = order.filter((k) => cols.some((col) => col.key === k))
    const svg = lineChartSvg({
      title: 'Cold lookup (stat of a bottom-layer file) vs number of layers',
      xLabel: 'number of lower layers (log scale)',
      yLabel: 'median cold stat, µs (log scale)',
      series: keys.map((k) => ({
        name: COLUMN_LABELS[k]!,
        points: cols.filter((col) => col.key === k && col.metrics.cold_stat !== undefined).map((col) => [col.layers, col.metrics.cold_stat!.median] as const)
      }))
    })
    fs.writeFileSync(opts.svg, svg)
    log(`bench: wrote ${opts.svg}`)
  }
  return cols.some((col) => col.error !== undefined) ? 1 : 0
}

main().then((code) => { process.exitCode = code }, (e: unknown) => {
  cleanupAll()
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})
