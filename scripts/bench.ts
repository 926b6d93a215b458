/**
 * Benchmark (issue 5 §2, extended by issue 9): overlayts on its two FUSE
 * transports against kernel overlayfs, fuse-overlayfs and unionfs-fuse, on
 * synthetic stacks of N lower layers, then on real work (find, du, grep, tar
 * over a copy of this project's node_modules as an image layer).
 *
 *   npm run bench -- [--layers 1,4,16,64,128] [--fs COLUMNS] [--quick]
 *                    [--json out.json] [--svg out.svg] [--tmp DIR] [--keep]
 *                    [--index off|PATH] [--ots-opts OPTS] [--ots-cpu-prof DIR]
 *                    [--no-real | --real-only] [--real-src DIR]
 *                    [--real-cmds find,du,grep,tar] [--real-repeat N]
 *                    [--real-index-prebuilt] [--no-pin]
 *   npm run bench -- --starts [--podman] [--starts-samples N] [--podman-runs N] [--podman-samples N]
 *
 * Columns (--fs takes these, comma-separated, or the groups overlayts, ots-pt,
 * fuse-overlayfs, unionfs-fuse, all):
 *   ots-pt-1st  overlayts, kernel transport, FUSE passthrough, first mount (index built)
 *   ots-pt-re   the same upper and workdir remounted (index there already)
 *   ots-nopt    overlayts, kernel transport, passthrough=off (first mount)
 *   ots-fn      overlayts, transport=fuse-native (libfuse 2, first mount)
 *   ots-uring   as ots-nopt, requests through FUSE over io_uring (uring=on; the
 *               fuse module's enable_uring is set to 1 for its mount only)
 *   ots-threads as ots-nopt, uring=off, requests read by native reader threads
 *               (OVERLAYTS_FUSE_READERS=threads)
 *   kernel      kernel overlayfs
 *   fuse-ovl    fuse-overlayfs
 *   unionfs     unionfs-fuse (synthetic stacks only)
 * --ots-opts is appended to the -o of every overlayts column.
 *
 * Metrics per column and stack (median of samples): mount, first_stat (drop
 * caches, mount, then the very first stat of fs1/fs2/fs3/fs4/first, a path
 * only in the bottom layer: one sample per mount), cold_stat, warm_stat,
 * neg_lookup, readdir (shared/, 8 names per layer), readdir_big (big/, 200
 * names per layer, caches dropped before each listing), seq_read, copy_up,
 * create, unlink; for overlayts columns also the daemon's CPU time per
 * operation (all its threads, from /proc/PID/task/TID/schedstat: cpu_cold_stat,
 * cpu_neg_lookup, cpu_seq_read per MiB, cpu_create, cpu_unlink), steadier
 * than latency when other work shares the CPUs. Real work (a separate table, --no-real / --real-only):
 * find, du, grep, tar over node_modules, each on a fresh mount after
 * drop_caches (--quick: find and tar).
 *
 * Start-up and podman (issue 12; these parts run instead of the stacks and
 * the real work): --starts times mount commands (command returns; first
 * stat answered) and reads the idle daemon's memory, overlayts against
 * fuse-overlayfs and the kernel (bench-lib/starts.ts); --podman times
 * podman run, five runs at once, commit and a 5-step build on overlay with
 * mount_program overlayts, with fuse-overlayfs, and native
 * (bench-lib/podman.ts).
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
import { podmanTable, runPodmanBench, type PodmanRun } from './bench-lib/podman.js'
import { runStarts, startsTable, type StartsRun } from './bench-lib/starts.js'
import { buildRealLayers, countEntries, REAL_COMMANDS, REAL_QUICK, runRealCommand, type RealCommand, type RealLayers } from './bench-lib/real.js'
import { lineChartSvg } from './bench-lib/svg.js'
import { readPidFile } from '../src/mount-config/pidfile.js'

// ---------------------------------------------------------------- options

type FsKind = 'overlayts' | 'kernel' | 'fuse-overlayfs' | 'unionfs'

/** One column of the tables: a filesystem, and for overlayts its options and mount history. */
interface ColumnDef {
  /** Short label, also the key in the JSON. */
  key: string
  /** Long label. */
  label: string
  fs: FsKind
  /** -o options of this overlayts column (before --ots-opts). */
  otsOpts?: string
  /** Columns with the same target share upper and workdir (a remount reuses the first mount's). */
  target: string
  /** Which disjoint set of mutable files (copy-up, unlink) this column uses in its target. */
  set: number
  /** Measured on a remount of the target: its index is built first if no earlier column did. */
  remount?: boolean
  /** Key of this column in the real-work table (none: not run there). */
  real?: string
  /** Chart legend and style. */
  legend: string
  color: string
  dash?: string
  /** Environment of the overlayts daemon, besides this process's. */
  env?: Record<string, string>
  /** Mount with the fuse module's enable_uring set to 1 (put back once mounted: a connection keeps its ring). */
  enableUring?: boolean
}

const PT = 'transport=kernel,passthrough=on'
const COLUMNS: ColumnDef[] = [
  { key: 'ots-pt-1st', label: 'overlayts, kernel transport, passthrough (first mount)', fs: 'overlayts', otsOpts: PT, target: 'pt', set: 0, real: 'ots-pt', legend: 'ots-pt, first mount', color: '#1f77b4' },
  { key: 'ots-pt-re', label: 'overlayts, kernel transport, passthrough (remount)', fs: 'overlayts', otsOpts: PT, target: 'pt', set: 1, remount: true, real: 'ots-pt', legend: 'ots-pt, remount', color: '#1f77b4', dash: '6 3' },
  { key: 'ots-nopt', label: 'overlayts, kernel transport, passthrough=off (first mount)', fs: 'overlayts', otsOpts: 'transport=kernel,passthrough=off', target: 'np', set: 0, real: 'ots-nopt', legend: 'ots passthrough=off', color: '#17becf' },
  { key: 'ots-fn', label: 'overlayts, transport=fuse-native (libfuse 2; first mount)', fs: 'overlayts', otsOpts: 'transport=fuse-native', target: 'fn', set: 0, real: 'ots-fn', legend: 'ots fuse-native', color: '#ff7f0e' },
  { key: 'ots-uring', label: 'overlayts, kernel transport, passthrough=off, FUSE over io_uring', fs: 'overlayts', otsOpts: 'transport=kernel,passthrough=off,uring=on', target: 'ur', set: 0, legend: 'ots io_uring', color: '#8c564b', enableUring: true },
  { key: 'ots-threads', label: 'overlayts, kernel transport, passthrough=off, uring=off, native reader threads', fs: 'overlayts', otsOpts: 'transport=kernel,passthrough=off,uring=off', target: 'th', set: 0, legend: 'ots reader threads', color: '#7f7f7f', env: { OVERLAYTS_FUSE_READERS: 'threads' } },
  { key: 'kernel', label: 'kernel overlayfs', fs: 'kernel', target: 'k', set: 0, real: 'kernel', legend: 'kernel overlayfs', color: '#d62728' },
  { key: 'fuse-ovl', label: 'fuse-overlayfs', fs: 'fuse-overlayfs', target: 'fo', set: 0, real: 'fuse-ovl', legend: 'fuse-overlayfs', color: '#2ca02c' },
  { key: 'unionfs', label: 'unionfs-fuse', fs: 'unionfs', target: 'un', set: 0, legend: 'unionfs-fuse', color: '#9467bd' }
]
const COLUMN_BY_KEY = new Map(COLUMNS.map((d) => [d.key, d]))
/** --fs groups and old names. */
const FS_ALIASES: Record<string, string[]> = {
  all: COLUMNS.map((d) => d.key),
  overlayts: ['ots-pt-1st', 'ots-pt-re', 'ots-nopt', 'ots-fn'],
  'ots-pt': ['ots-pt-1st', 'ots-pt-re'],
  'fuse-overlayfs': ['fuse-ovl'],
  'unionfs-fuse': ['unionfs']
}

/** Long labels of the real-work table's columns (ColumnDef.real), in order. */
const REAL_LABELS: Record<string, string> = {
  'ots-pt': 'overlayts, kernel transport, passthrough',
  'ots-nopt': 'overlayts, kernel transport, passthrough=off',
  'ots-fn': 'overlayts, transport=fuse-native',
  kernel: 'kernel overlayfs',
  'fuse-ovl': 'fuse-overlayfs'
}

interface Options {
  layers: number[]
  /** Selected column keys, in COLUMNS order. */
  cols: string[]
  quick: boolean
  json: string | undefined
  svg: string | undefined
  tmp: string | undefined
  keep: boolean
  index: string | undefined
  /** Extra -o options for every overlayts column (e.g. attr_timeout=1). */
  otsOpts: string | undefined
  otsCpuProf: string | undefined
  pin: boolean
  /** Synthetic stacks / real work. */
  synthetic: boolean
  real: boolean
  realSrc: string
  realCmds: string[] | undefined
  realRepeat: number
  /** Real work: build each overlayts mount's index (untimed) before drop_caches and mount. */
  realPrebuiltIndex: boolean
  /** Start-up part (mount time, idle memory) and its mounts per column. */
  starts: boolean
  startsSamples: number
  /** podman part: runs, and samples of run5/commit/build. */
  podman: boolean
  podmanRuns: number
  podmanSamples: number
}

const USAGE = 'usage: node dist/scripts/bench.js [--layers 1,4,16,64,128] [--fs COLUMNS] [--quick] [--json FILE] [--svg FILE] [--tmp DIR] [--keep] [--index off|PATH] [--ots-opts OPTS] [--ots-cpu-prof DIR] [--no-pin] [--no-real | --real-only] [--real-src DIR] [--real-cmds find,du,grep,tar] [--real-repeat N] [--real-index-prebuilt]\n' +
  '       node dist/scripts/bench.js --starts [--podman] [--starts-samples N] [--podman-runs N] [--podman-samples N]\n' +
  `  columns: ${COLUMNS.map((d) => d.key).join(',')}; groups: ${Object.keys(FS_ALIASES).join(',')}\n`

function usage (msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}`)
  process.exit(2)
}

function parseArgs (argv: string[]): Options {
  const o: Options = {
    layers: [1, 4, 16, 64, 128], cols: COLUMNS.map((d) => d.key), quick: false, json: undefined, svg: undefined, tmp: undefined, keep: false, index: undefined, otsOpts: undefined, otsCpuProf: undefined, pin: os.cpus().length >= 2,
    synthetic: true, real: true, realSrc: fileURLToPath(new URL('../../node_modules', import.meta.url)), realCmds: undefined, realRepeat: 1, realPrebuiltIndex: false,
    starts: false, startsSamples: 15, podman: false, podmanRuns: 15, podmanSamples: 3
  }
  let pinAsked = false
  const count = (v: string, max: number): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1 || n > max) usage(`takes 1..${max}, not ${v}`)
    return n
  }
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
      case '--fs': {
        const want = new Set<string>()
        for (const s of val().split(',').filter(Boolean)) {
          const keys = FS_ALIASES[s] ?? (COLUMN_BY_KEY.has(s) ? [s] : undefined)
          if (keys === undefined) usage(`unknown filesystem column: ${s}`)
          for (const k of keys) want.add(k)
        }
        o.cols = COLUMNS.map((d) => d.key).filter((k) => want.has(k))
        break
      }
      case '--quick': o.quick = true; break
      case '--json': o.json = val(); break
      case '--svg': o.svg = val(); break
      case '--tmp': o.tmp = val(); break
      case '--keep': o.keep = true; break
      case '--pin': o.pin = true; pinAsked = true; break
      case '--no-pin': o.pin = false; break
      case '--index': o.index = val(); break
      case '--ots-opts': o.otsOpts = val(); break
      case '--ots-cpu-prof': o.otsCpuProf = path.resolve(val()); break
      case '--no-real': o.real = false; break
      case '--real-only': o.synthetic = false; break
      case '--real-src': o.realSrc = path.resolve(val()); break
      case '--real-cmds':
        o.realCmds = val().split(',').filter(Boolean).map((s) => {
          if (!REAL_COMMANDS.some((c) => c.id === s)) usage(`unknown real-work command: ${s} (${REAL_COMMANDS.map((c) => c.id).join(',')})`)
          return s
        })
        break
      case '--real-index-prebuilt': o.realPrebuiltIndex = true; break
      case '--starts': o.starts = true; break
      case '--starts-samples': o.startsSamples = count(val(), 200); break
      case '--podman': o.podman = true; break
      case '--podman-runs': o.podmanRuns = count(val(), 200); break
      case '--podman-samples': o.podmanSamples = count(val(), 50); break
      case '--real-repeat': {
        const n = Number(val())
        if (!Number.isInteger(n) || n < 1 || n > 20) usage('--real-repeat takes 1..20')
        o.realRepeat = n
        break
      }
      case '--help': case '-h': usage('help')
      // eslint-disable-next-line no-fallthrough
      default: usage(`unknown argument: ${a}`)
    }
  }
  // Start-ups and podman measure whole processes, not request wake-ups: unpinned unless asked.
  if (o.starts || o.podman) { o.synthetic = false; o.real = false; if (!pinAsked) o.pin = false }
  if (!o.synthetic && !o.real && !o.starts && !o.podman) usage('--no-real and --real-only leave nothing to run')
  o.layers = [...new Set(o.layers)].sort((a, b) => a - b)
  return o
}

// ---------------------------------------------------------------- sizes

const SHARED_PER_LAYER = 8
/** Files in big/ per layer (distinct names per layer): 12,800 names merged at 64 layers. */
const BIG_PER_LAYER = 200
/** first_stat's target: only in the bottom layer, a few dirs deep. */
const FIRST_STAT_PATH = 'fs1/fs2/fs3/fs4/first'
const COPY_UP_SIZE = 4 << 20
const SEQ_SIZE = 64 << 20
const CREATE_SIZE = 4096
/** Two disjoint sets of mutable files: one per column that shares an upper (ots-pt-1st, ots-pt-re). */
const SETS = 2

interface Counts { cold: number, neg: number, readdir: number, readdirBig: number, seq: number, copyUp: number, create: number, unlink: number }
const FULL: Counts = { cold: 300, neg: 300, readdir: 40, readdirBig: 5, seq: 5, copyUp: 10, create: 200, unlink: 200 }
const QUICK: Counts = { cold: 50, neg: 50, readdir: 8, readdirBig: 2, seq: 1, copyUp: 3, create: 20, unlink: 20 }

// ---------------------------------------------------------------- metrics

interface MetricDef { id: string, label: string, unit: 'µs' | 'ms' | 'MB/s', higherIsBetter?: boolean }
const METRICS: MetricDef[] = [
  { id: 'mount', label: 'mount (command returns)', unit: 'ms' },
  { id: 'first_stat', label: 'first stat after mount, 4 dirs deep', unit: 'µs' },
  { id: 'cold_stat', label: 'cold stat, bottom-layer file', unit: 'µs' },
  { id: 'warm_stat', label: 'warm stat (repeat)', unit: 'µs' },
  { id: 'neg_lookup', label: 'negative lookup (absent)', unit: 'µs' },
  { id: 'readdir', label: 'readdir merged dir (8/layer)', unit: 'µs' },
  { id: 'readdir_big', label: 'readdir big/ (200/layer), cold', unit: 'ms' },
  { id: 'seq_read', label: 'seq read 64 MiB, cold', unit: 'MB/s', higherIsBetter: true },
  { id: 'copy_up', label: 'copy-up 4 MiB (append 1 B)', unit: 'µs' },
  { id: 'create', label: 'create 4 KiB file', unit: 'µs' },
  { id: 'unlink', label: 'unlink lower file', unit: 'µs' },
  // The overlayts daemon's own CPU time (all its threads, from schedstat) per
  // operation: steadier than latency on a shared machine, and where request
  // paths (device reads, reader threads, io_uring) differ.
  { id: 'cpu_cold_stat', label: 'daemon CPU per cold stat', unit: 'µs' },
  { id: 'cpu_neg_lookup', label: 'daemon CPU per negative lookup', unit: 'µs' },
  { id: 'cpu_seq_read', label: 'daemon CPU per MiB of seq read', unit: 'µs' },
  { id: 'cpu_create', label: 'daemon CPU per create', unit: 'µs' },
  { id: 'cpu_unlink', label: 'daemon CPU per unlink', unit: 'µs' }
]

/** CPU time (ns) each thread of process `pid` has run (schedstat: ns resolution). */
function threadCpu (pid: number): Map<string, number> | undefined {
  try {
    const ns = new Map<string, number>()
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try { ns.set(tid, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])) } catch { /* the thread ended */ }
    }
    return ns
  } catch { return undefined }
}

/** CPU µs the threads alive at `after` ran since `before` (a thread that ended meanwhile is not counted). */
function cpuSpentUs (before: Map<string, number> | undefined, after: Map<string, number> | undefined): number | undefined {
  if (before === undefined || after === undefined) return undefined
  let ns = 0
  for (const [tid, v] of after) ns += v - (before.get(tid) ?? 0)
  return ns / 1000
}

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
  key: string // a ColumnDef key: ots-pt-1st | ots-pt-re | ots-nopt | ots-fn | kernel | fuse-ovl | unionfs
  label: string
  fs: FsKind
  layers: number
  metrics: Record<string, Summary | undefined>
  notes: string[]
  error?: string
}

// ---------------------------------------------------------------- plumbing

const BIN = fileURLToPath(new URL('../../bin/overlayts.js', import.meta.url))
const now = (): bigint => process.hrtime.bigint()
const usSince = (t0: bigint): number => Number(now() - t0) / 1000
const log = (s: string): void => { process.stderr.write(s + '\n') }

function sh (cmd: string, args: string[], opts: { cwd?: string, timeout?: number, env?: Record<string, string> } = {}): { ok: boolean, out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, timeout: opts.timeout ?? 120_000, encoding: 'utf8', env: opts.env === undefined ? undefined : { ...process.env, ...opts.env } })
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

/** An error output on one line: the first "...Error: ..." line if there is one (a Node stack), else the first lines. */
function brief (out: string, max = 400): string {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean)
  const err = lines.find((l) => /^[A-Za-z]*Error\b.*:/.test(l))
  const s = err ?? lines.slice(0, 3).join(' | ')
  return s.length > max ? s.slice(0, max) + '...' : s
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
    for (const d of ['', 'shared', 'c', 'w', 'big']) fs.mkdirSync(path.join(l, d), { recursive: true })
    fs.writeFileSync(path.join(l, `t${i}`), small)
    for (let k = 0; k < SHARED_PER_LAYER; k++) fs.writeFileSync(path.join(l, 'shared', `s${i}_${k}`), small)
    for (let k = 0; k < BIG_PER_LAYER; k++) fs.writeFileSync(path.join(l, 'big', `b${i}_${k}`), small)
  }
  const bottom = lowers[n - 1]!
  // first_stat's file: the whole path only in the bottom layer.
  fs.mkdirSync(path.join(bottom, path.dirname(FIRST_STAT_PATH)), { recursive: true })
  fs.writeFileSync(path.join(bottom, FIRST_STAT_PATH), small)
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

/** -o of an overlayts mount: the layers, the column's options, then --ots-opts. */
function otsBase (st: Stack, t: Target, colOpts: string | undefined, opts: Options): string {
  return `lowerdir=${st.lowers.join(':')},upperdir=${t.upper},workdir=${t.work}` +
    (colOpts !== undefined ? `,${colOpts}` : '') + (opts.otsOpts !== undefined ? `,${opts.otsOpts}` : '')
}

/** Build the index of a target without mounting (for a remount column whose first mount was not run). */
function primeIndex (st: Stack, t: Target): string {
  const o = `lowerdir=${st.lowers.join(':')},workdir=${t.work}` + (indexOption !== undefined && !indexRejected ? `,index=${indexOption}` : '')
  const r = sh(process.execPath, [BIN, 'index', 'build', '-o', o], { timeout: 300_000 })
  return r.ok ? 'index built by `overlayts index build` before mounting (untimed)' : `overlayts index build failed: ${brief(r.out)}`
}

const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring'

/**
 * Runs `mount` with the fuse module's enable_uring on, puts the old value
 * back, and checks in the daemon's log that requests do come through the ring.
 */
async function withUringEnabled (t: Target, mount: (logArgs: string[]) => Promise<MountResult>): Promise<MountResult> {
  if (!fs.existsSync(ENABLE_URING)) throw new Error('this kernel has no FUSE over io_uring (no fuse enable_uring parameter)')
  const old = fs.readFileSync(ENABLE_URING, 'utf8').trim()
  const logFile = path.join(path.dirname(t.work), `${path.basename(t.work)}-daemon.log`)
  fs.rmSync(logFile, { force: true })
  fs.writeFileSync(ENABLE_URING, '1')
  let r: MountResult
  try {
    r = await mount(['--log-file', logFile])
  } finally {
    fs.writeFileSync(ENABLE_URING, old === 'Y' ? '1' : '0')
  }
  const mounted = fs.readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('"msg":"mounted"'))
  const requests = mounted === undefined ? undefined : (JSON.parse(mounted) as { requests?: string }).requests
  if (requests !== 'io_uring') throw new Error(`the daemon did not take io_uring (requests: ${String(requests)})`)
  r.notes.push('requests through io_uring (the daemon\'s mounted line)')
  return r
}

async function mountOverlayts (st: Stack, t: Target, colOpts: string | undefined, opts: Options, env?: Record<string, string>, extraArgs: string[] = []): Promise<MountResult> {
  const notes: string[] = []
  const base = otsBase(st, t, colOpts, opts)
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
  let r = sh(...pinned(process.execPath, [BIN, 'mount', ...extraArgs, '-o', withIndex, t.mp]), { timeout: 300_000, env })
  let ms = usSince(t0) / 1000
  if (!r.ok && withIndex !== base && /index/i.test(r.out)) {
    indexRejected = true
    notes.push(`index=${indexOption} rejected (${brief(r.out)}); mounted without it`)
    t0 = now()
    r = sh(...pinned(process.execPath, [BIN, 'mount', ...extraArgs, '-o', base, t.mp]), { timeout: 300_000, env })
    ms = usSince(t0) / 1000
  }
  if (!r.ok) {
    if (isMounted(t.mp) !== undefined) { active.set(t.mp, unmount); publishMounts() }
    throw new Error(`overlayts mount failed: ${brief(r.out)}`)
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
  if (!r.ok) throw new Error(`overlayts umount: ${brief(r.out)}`)
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
  if (!r.ok) throw new Error(`kernel overlay mount failed: ${brief(r.out)}`)
  active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts()
  return { ms, notes }
}

function mountFuseOverlayfs (st: Stack, t: Target): MountResult {
  const t0 = now()
  const r = sh(...pinned('fuse-overlayfs', ['-o', `lowerdir=${st.lowers.join(':')},upperdir=${t.upper},workdir=${t.work}`, t.mp]))
  const ms = usSince(t0) / 1000
  if (!r.ok) {
    if (isMounted(t.mp) !== undefined) { active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts() }
    throw new Error(`fuse-overlayfs failed: ${brief(r.out)}`)
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
    throw new Error(`unionfs failed: ${brief(r.out)}`)
  }
  active.set(t.mp, () => { sh('umount', [t.mp]) }); publishMounts()
  return { ms, notes: [] }
}

async function unmountAny (fsk: FsKind, mp: string): Promise<void> {
  try {
    if (fsk === 'overlayts') await unmountOverlayts(mp)
    else {
      const r = sh('umount', [mp], { timeout: 60_000 })
      if (!r.ok) throw new Error(`umount ${mp}: ${brief(r.out)}`)
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
  // The daemon's CPU per operation, for overlayts (its pid file).
  const pid = col.fs === 'overlayts' ? readPidFile(mp) : undefined
  const cpuNow = (): Map<string, number> | undefined => pid === undefined ? undefined : threadCpu(pid)
  const cpuPer = (id: string, ops: number, run: () => void): void => {
    const c0 = cpuNow()
    run()
    const us = cpuSpentUs(c0, cpuNow())
    if (us !== undefined && ops > 0) m[id] = summarize([us / ops])
  }
  // First stat: what a container start meets. Caches were dropped before the
  // mount and nothing has touched the mount since: one sample per mount.
  {
    const t0 = now()
    fs.statSync(M(FIRST_STAT_PATH))
    m.first_stat = summarize([usSince(t0)])
  }
  // Cold stat: caches dropped, every file a first lookup, each under a dir present in all layers.
  dropCaches()
  cpuPer('cpu_cold_stat', c.cold, () => { m.cold_stat = summarize(timeEach(c.cold, (k) => { fs.statSync(M(`c/f${k}`)) })) })
  m.warm_stat = summarize(timeEach(c.cold, (k) => { fs.statSync(M(`c/f${k}`)) }))
  cpuPer('cpu_neg_lookup', c.neg, () => {
    m.neg_lookup = summarize(timeEach(c.neg, (k) => {
      if (fs.statSync(M(`c/nx${k}`), { throwIfNoEntry: false }) !== undefined) throw new Error(`c/nx${k} exists`)
    }))
  })
  // Readdir of shared/, merged from every layer (opendir + getdents + close each time).
  let entries = -1
  m.readdir = summarize(timeEach(c.readdir, () => { entries = fs.readdirSync(M('shared')).length }))
  if (entries !== st.n * SHARED_PER_LAYER) col.notes.push(`readdir shared/ listed ${entries} names, expected ${st.n * SHARED_PER_LAYER}`)
  // Readdir of big/ (200 names per layer, merged from every layer): caches dropped before each listing.
  const bigs: number[] = []
  let bigEntries = -1
  for (let k = 0; k < c.readdirBig; k++) {
    dropCaches()
    const t0 = now()
    bigEntries = fs.readdirSync(M('big')).length
    bigs.push(usSince(t0) / 1000)
  }
  m.readdir_big = summarize(bigs)
  if (c.readdirBig > 0 && bigEntries !== st.n * BIG_PER_LAYER) col.notes.push(`readdir big/ listed ${bigEntries} names, expected ${st.n * BIG_PER_LAYER}`)
  // Sequential read of the 64 MiB bottom-layer file, caches dropped first.
  const buf = Buffer.allocUnsafe(1 << 20)
  const rates: number[] = []
  let cpuSeq = 0
  for (let s = 0; s < c.seq; s++) {
    dropCaches()
    const c0 = cpuNow()
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
    const us = cpuSpentUs(c0, cpuNow())
    if (us !== undefined) cpuSeq += us / (total / (1 << 20))
    if (total !== SEQ_SIZE) col.notes.push(`read ${total} bytes of big.bin, expected ${SEQ_SIZE}`)
    rates.push(total / (1 << 20) / sec)
  }
  m.seq_read = summarize(rates)
  if (pid !== undefined && c.seq > 0) m.cpu_seq_read = summarize([cpuSeq / c.seq])
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
  cpuPer('cpu_create', c.create, () => {
    m.create = summarize(timeEach(c.create, (k) => {
      const fd = fs.openSync(M(`w/n${tag}_${k}`), 'wx')
      try { fs.writeSync(fd, data) } finally { fs.closeSync(fd) }
    }))
  })
  // Unlink lower files (the name is looked up first, untimed: the unlink itself is timed).
  for (let k = 0; k < c.unlink; k++) fs.statSync(M(`c/u${set}_${k}`))
  cpuPer('cpu_unlink', c.unlink, () => { m.unlink = summarize(timeEach(c.unlink, (k) => { fs.unlinkSync(M(`c/u${set}_${k}`)) })) })
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

async function mountAny (def: ColumnDef, st: Stack, t: Target, opts: Options): Promise<MountResult> {
  switch (def.fs) {
    case 'overlayts':
      if (def.enableUring !== true) return await mountOverlayts(st, t, def.otsOpts, opts, def.env)
      return await withUringEnabled(t, async (logArgs) => await mountOverlayts(st, t, def.otsOpts, opts, def.env, logArgs))
    case 'kernel': return mountKernel(st, t)
    case 'fuse-overlayfs': return mountFuseOverlayfs(st, t)
    case 'unionfs': return mountUnionfs(st, t)
  }
}

async function runColumn (def: ColumnDef, st: Stack, t: Target, c: Counts, opts: Options, pre: string[]): Promise<Column> {
  const col: Column = { key: def.key, label: def.label, fs: def.fs, layers: st.n, metrics: {}, notes: [...pre] }
  const started = Date.now()
  arm(300)
  try {
    dropCaches()
    const mr = await mountAny(def, st, t, opts)
    col.metrics.mount = summarize([mr.ms])
    col.notes.push(...mr.notes)
    arm(opts.quick ? 120 : 300)
    runWorkloads(st, t.mp, def.set, def.key.replace(/[^a-z0-9]/g, ''), c, col)
  } catch (e) {
    col.error = (e as Error).message
    log(`  ${def.key} N=${st.n}: ERROR ${col.error}`)
  } finally {
    arm(120)
    try { await unmountAny(def.fs, t.mp) } catch (e) {
      col.notes.push(`unmount: ${(e as Error).message}`)
    }
    disarm()
  }
  if (def.fs === 'overlayts') col.notes.push(describeWorkdir(t.work))
  const cs = col.metrics.cold_stat?.median
  log(`  ${def.key.padEnd(10)} N=${String(st.n).padEnd(4)} ${((Date.now() - started) / 1000).toFixed(1)} s` +
    (cs !== undefined ? `  cold stat ${cs.toFixed(1)} µs` : ''))
  return col
}

// ---------------------------------------------------------------- real work

interface RealResult { seconds: Summary | undefined, samples: number[], errors: string[] }
interface RealColumn {
  key: string // ots-pt | ots-nopt | ots-fn | kernel | fuse-ovl
  label: string
  /** The synthetic column whose mount options it uses. */
  from: string
  results: Record<string, RealResult>
  /** Mount command times of all its mounts. */
  mount: Summary | undefined
  /** Names under the mount root (find, untimed, after the first command). */
  entries: number | undefined
  notes: string[]
}
interface RealRun {
  source: string
  layers: RealLayers
  commands: RealCommand[]
  repeat: number
  prebuiltIndex: boolean
  columns: RealColumn[]
}

/**
 * For each column and command: fresh upper and workdir (as a new container
 * gets), drop_caches, mount, the command with cwd at the mount root, unmount.
 */
async function runReal (root: string, defs: ColumnDef[], opts: Options): Promise<RealRun | string> {
  if (!fs.existsSync(opts.realSrc)) return `real work skipped: ${opts.realSrc} does not exist`
  const wanted = opts.realCmds ?? (opts.quick ? REAL_QUICK : REAL_COMMANDS.map((c) => c.id))
  const commands = REAL_COMMANDS.filter((c) => wanted.includes(c.id))
  const realDefs: ColumnDef[] = []
  for (const k of Object.keys(REAL_LABELS)) {
    const d = defs.find((x) => x.real === k)
    if (d !== undefined) realDefs.push(d)
  }
  if (realDefs.length === 0) return 'real work skipped: none of the selected columns runs it (unionfs does not)'
  const tb = Date.now()
  const layers = buildRealLayers(root, opts.realSrc)
  log(`bench: real work: ${layers.entries} entries, ${(layers.bytes / 1e6).toFixed(0)} MB copied from ${opts.realSrc} in ${layers.copySeconds.toFixed(1)} s (layers ready in ${((Date.now() - tb) / 1000).toFixed(1)} s)`)
  const st: Stack = { n: layers.lowers.length, dir: layers.dir, lowers: layers.lowers, bottom: layers.lowers[layers.lowers.length - 1]! }
  const columns: RealColumn[] = []
  for (const def of realDefs) {
    const rc: RealColumn = { key: def.real!, label: REAL_LABELS[def.real!]!, from: def.key, results: {}, mount: undefined, entries: undefined, notes: [] }
    columns.push(rc)
    const mounts: number[] = []
    for (const cmd of commands) {
      const res: RealResult = { seconds: undefined, samples: [], errors: [] }
      rc.results[cmd.id] = res
      for (let rep = 0; rep < opts.realRepeat; rep++) {
        const t = freshTarget(st, def.real!)
        const started = Date.now()
        arm(300)
        try {
          if (opts.realPrebuiltIndex && def.fs === 'overlayts') {
            const n = primeIndex(st, t)
            if (!rc.notes.includes(n)) rc.notes.push(n)
          }
          dropCaches()
          const mr = await mountAny(def, st, t, opts)
          mounts.push(mr.ms)
          for (const n of mr.notes) if (!rc.notes.includes(n)) rc.notes.push(n)
          arm(660)
          const r = runRealCommand(cmd, t.mp, 600_000)
          if (r.error !== undefined) res.errors.push(r.error)
          else res.samples.push(r.seconds)
          if (rc.entries === undefined) {
            const n = countEntries(t.mp)
            if (typeof n === 'number') rc.entries = n
            else rc.notes.push(`entry count: ${n}`)
          }
          log(`  real ${rc.key.padEnd(8)} ${cmd.id.padEnd(5)} ${r.seconds.toFixed(2)} s${r.error !== undefined ? `  ERROR ${r.error}` : ''}  (${((Date.now() - started) / 1000).toFixed(1)} s with mount)`)
        } catch (e) {
          res.errors.push((e as Error).message)
          log(`  real ${rc.key} ${cmd.id}: ERROR ${(e as Error).message}`)
        } finally {
          arm(120)
          try { await unmountAny(def.fs, t.mp) } catch (e) { rc.notes.push(`unmount: ${(e as Error).message}`) }
          disarm()
          if (isMounted(t.mp) === undefined) {
            fs.rmSync(t.upper, { recursive: true, force: true })
            fs.rmSync(t.work, { recursive: true, force: true })
          }
        }
      }
      res.seconds = summarize(res.samples)
    }
    rc.mount = summarize(mounts)
  }
  return { source: opts.realSrc, layers, commands, repeat: opts.realRepeat, prebuiltIndex: opts.realPrebuiltIndex, columns }
}

// ---------------------------------------------------------------- report

function fmt (v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return '-'
  if (unit === 'MB/s') return v >= 100 ? v.toFixed(0) : v.toFixed(1)
  if (unit === 'ms') return v >= 100 ? v.toFixed(0) : v.toFixed(1)
  if (unit === 's') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
  if (unit === 'x') return v.toFixed(2)
  return v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(0) : v.toFixed(1)
}

/** A text table: a header row (or two), a rule, then rows; the first column left-aligned. */
function grid (heads: string[][], rows: string[][]): string {
  const all = [...heads, ...rows]
  const ncol = Math.max(...all.map((r) => r.length))
  const w = Array.from({ length: ncol }, (_v, i) => Math.max(i === 0 ? 0 : 8, ...all.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]): string => (r[0] ?? '').padEnd(w[0]!) + ' | ' + w.slice(1).map((wi, i) => (r[i + 1] ?? '').padStart(wi)).join(' ')
  const out = heads.map(line)
  out.push('-'.repeat(w[0]!) + '-+-' + w.slice(1).map((wi) => '-'.repeat(wi)).join('-'))
  for (const r of rows) out.push(line(r))
  return out.join('\n')
}

function table (cols: Column[]): string {
  const heads = [
    ['', ...cols.map((c) => c.key)],
    ['workload (median)', ...cols.map((c) => `N=${c.layers}`)]
  ]
  const rows = METRICS.map((m) => [`${m.label} [${m.unit}]`, ...cols.map((c) => fmt(c.metrics[m.id]?.median, m.unit))])
  const keys = [...new Set(cols.map((c) => c.key))]
  return grid(heads, rows) + '\n\ncolumns: ' + keys.map((k) => `${k} = ${COLUMN_BY_KEY.get(k)!.label}`).join('; ')
}

function realTable (rr: RealRun): string {
  const get = (key: string, id: string): number | undefined => rr.columns.find((c) => c.key === key)?.results[id]?.seconds?.median
  const ots = rr.columns.filter((c) => c.key.startsWith('ots-'))
  const refs: Array<[string, string]> = [['fuse-ovl', 'fo'], ['kernel', 'k']]
  const ratioCols: Array<{ head: string, a: string, b: string }> = []
  for (const o of ots) {
    for (const [b, bs] of refs) if (rr.columns.some((c) => c.key === b)) ratioCols.push({ head: `${o.key.slice(4)}/${bs}`, a: o.key, b })
  }
  const heads = [['real work [s]', ...rr.columns.map((c) => c.key), ...ratioCols.map((r) => r.head)]]
  const rows: string[][] = []
  for (const cmd of rr.commands) {
    rows.push([cmd.label, ...rr.columns.map((c) => {
      const r = c.results[cmd.id]
      return r?.seconds === undefined && (r?.errors.length ?? 0) > 0 ? 'ERR' : fmt(r?.seconds?.median, 's')
    }), ...ratioCols.map((rc) => {
      const a = get(rc.a, cmd.id); const b = get(rc.b, cmd.id)
      return a !== undefined && b !== undefined && b > 0 ? fmt(a / b, 'x') : '-'
    })])
  }
  rows.push(['mount, median [ms]', ...rr.columns.map((c) => fmt(c.mount?.median, 'ms'))])
  rows.push(['names seen (find, untimed)', ...rr.columns.map((c) => c.entries === undefined ? '-' : String(c.entries))])
  const L = rr.layers
  const out: string[] = []
  out.push(`real work: ${rr.source} copied (cp -a) as the image layer: ${L.entries} entries, ${(L.bytes / 1e6).toFixed(0)} MB; top layer: ${L.top.join('; ')}.`)
  out.push(`Each cell: fresh upper and workdir (${rr.prebuiltIndex ? 'overlayts: index built before, untimed' : 'a first mount: overlayts builds its index in a worker meanwhile'}), drop_caches, mount, the command (cwd at the mount root, stdout to /dev/null), unmount; ${rr.repeat === 1 ? 'one run' : `median of ${rr.repeat} runs`}.`)
  out.push('')
  out.push(grid(heads, rows))
  out.push('')
  out.push('columns: ' + rr.columns.map((c) => `${c.key} = ${c.label}`).join('; ') + (ratioCols.length > 0 ? '; X/fo, X/k = ots-X / fuse-overlayfs, / kernel' : ''))
  const notes: string[] = [...L.notes.map((n) => `  layers: ${n}`)]
  const kEntries = rr.columns.find((c) => c.key === 'kernel')?.entries
  for (const c of rr.columns) {
    for (const cmd of rr.commands) for (const e of c.results[cmd.id]?.errors ?? []) notes.push(`  ${c.key}: ERROR ${e}`)
    for (const n of c.notes) notes.push(`  ${c.key}: ${n}`)
    if (kEntries !== undefined && c.entries !== undefined && c.entries !== kEntries) notes.push(`  ${c.key}: find saw ${c.entries} names, the kernel ${kEntries}`)
  }
  if (notes.length > 0) out.push('', 'real-work notes:', ...notes)
  return out.join('\n')
}

interface Ratio { name: string, variant: string, value: number | undefined, goal: string, pass: boolean | undefined, detail: string }

function ratios (cols: Column[], layers: number[], rr: RealRun | undefined): { ref: number, base: number, list: Ratio[] } {
  const ref = layers.includes(64) ? 64 : layers[layers.length - 1]!
  const base = layers.includes(1) ? 1 : layers[0]!
  const get = (key: string, n: number, id: string): number | undefined => cols.find((c) => c.key === key && c.layers === n)?.metrics[id]?.median
  const unitOf = (id: string): string => METRICS.find((m) => m.id === id)!.unit
  const list: Ratio[] = []
  const add = (name: string, variant: string, a: number | undefined, b: number | undefined, goal: string, ok: (r: number) => boolean, detail: string): void => {
    const value = a !== undefined && b !== undefined && b > 0 ? a / b : undefined
    list.push({ name, variant, value, goal, pass: value === undefined ? undefined : ok(value), detail })
  }
  const le = (g: number) => (r: number): boolean => r <= g
  const ge = (g: number) => (r: number): boolean => r >= g
  const FO = 'fuse-ovl'; const K = 'kernel'
  const refName: Record<string, string> = { [FO]: 'fuse-overlayfs', [K]: 'kernel' }
  const vs = (v: string, id: string, what: string, other: string, goal: string, ok: (r: number) => boolean): void => {
    const u = unitOf(id)
    add(`${what} @${ref} layers: ots-pt / ${refName[other]}`, v, get(v, ref, id), get(other, ref, id), goal, ok,
      `${fmt(get(v, ref, id), u)} / ${fmt(get(other, ref, id), u)} ${u}`)
  }
  const flat = (v: string, id: string, what: string): void => {
    const u = unitOf(id)
    add(`${what} ots-pt @${ref} / @${base} layers (flat)`, v, get(v, ref, id), get(v, base, id), '<= 1.3', le(1.3),
      `${fmt(get(v, ref, id), u)} / ${fmt(get(v, base, id), u)} ${u}`)
  }
  for (const v of ['ots-pt-1st', 'ots-pt-re']) {
    if (!cols.some((c) => c.key === v)) continue
    vs(v, 'seq_read', 'seq read', K, '>= 0.9', ge(0.9))
    vs(v, 'create', 'create', FO, '<= 1.0', le(1.0))
    vs(v, 'cold_stat', 'cold stat', FO, '<= 1.0', le(1.0))
    vs(v, 'first_stat', 'first stat after mount', FO, '<= 1.0', le(1.0))
    vs(v, 'warm_stat', 'warm stat', K, '<= 1.5', le(1.5))
    vs(v, 'unlink', 'unlink', FO, '<= 1.0', le(1.0))
    vs(v, 'readdir_big', 'readdir big/', K, '<= 2.0', le(2.0))
    if (ref !== base) {
      flat(v, 'cold_stat', 'cold stat')
      flat(v, 'neg_lookup', 'negative lookup')
    }
  }
  if (rr !== undefined) {
    const g = (key: string, id: string): number | undefined => rr.columns.find((c) => c.key === key)?.results[id]?.seconds?.median
    for (const cmd of rr.commands) {
      const a = g('ots-pt', cmd.id); const f = g(FO, cmd.id); const k = g(K, cmd.id)
      add(`real ${cmd.id}: ots-pt / fuse-overlayfs`, rr.prebuiltIndex ? 'index built' : 'fresh mount', a, f, '<= 1.0', le(1.0),
        `${fmt(a, 's')} / ${fmt(f, 's')} s; ots-pt / kernel ${a !== undefined && k !== undefined && k > 0 ? fmt(a / k, 'x') : 'n/a'} (kernel ${fmt(k, 's')} s)`)
    }
  }
  return { ref, base, list }
}

function ratioText (r: ReturnType<typeof ratios>): string {
  const w = Math.max(...r.list.map((x) => x.name.length))
  return r.list.map((x) => `${x.name.padEnd(w)}  [${x.variant.padEnd(11)}]  ${x.value === undefined ? '   n/a' : x.value.toFixed(3).padStart(6)}  goal ${x.goal.padEnd(7)} ${x.pass === undefined ? 'N/A ' : x.pass ? 'PASS' : 'MISS'}  (${x.detail})`).join('\n')
}

// ---------------------------------------------------------------- main

function available (f: FsKind): boolean {
  switch (f) {
    case 'overlayts': return fs.existsSync(fileURLToPath(new URL('../src/cli/main.js', import.meta.url)))
    case 'kernel':
      sh('modprobe', ['overlay'])
      return /\toverlay\n/.test(fs.readFileSync('/proc/filesystems', 'utf8'))
    case 'fuse-overlayfs': return have('fuse-overlayfs')
    case 'unionfs':
      if (have('unionfs')) return true
      if (have('unionfs-fuse')) { unionfsBin = 'unionfs-fuse'; return true }
      return false
  }
}

async function main (): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  const c = opts.quick ? QUICK : FULL
  if (process.getuid?.() !== 0) usage('must run as root (mount, drop_caches)')
  indexOption = opts.index
  const t0 = Date.now()
  const loadBefore = os.loadavg()

  // Which filesystems can run here.
  const skipped: string[] = []
  const avail = new Map<FsKind, boolean>()
  const defs = opts.cols.map((k) => COLUMN_BY_KEY.get(k)!).filter((d) => {
    if (!avail.has(d.fs)) avail.set(d.fs, available(d.fs))
    if (!avail.get(d.fs)!) skipped.push(d.key)
    return avail.get(d.fs)!
  })
  for (const s of skipped) log(`bench: skipping ${s}: not available on this system`)

  if (opts.pin) {
    const n = os.cpus().length
    const r = sh('taskset', ['-a', '-p', '-c', String(n - 1), String(process.pid)])
    if (r.ok && have('taskset')) daemonCpus = n === 2 ? '0' : `0-${n - 2}`
    else log(`bench: cannot pin CPUs (${brief(r.out)}); running unpinned`)
  }
  const root = fs.mkdtempSync(path.join(opts.tmp ?? os.tmpdir(), 'ob'))
  log(`bench: ${daemonCpus === undefined ? 'unpinned' : `bench on CPU ${os.cpus().length - 1}, daemons on CPU ${daemonCpus}`}`)
  log(`bench: ${opts.quick ? 'quick' : 'full'} run; ${opts.synthetic ? `layers ${opts.layers.join(',')}` : 'no synthetic stacks'}; ${opts.real ? 'real work' : 'no real work'}; columns ${defs.map((d) => d.key).join(',')}; in ${root}`)
  startWatchdog()
  const finish = (): void => {
    const left = mountInfo().filter((m) => m.mountpoint.startsWith(root + '/'))
    if (left.length > 0) log(`bench: WARNING: still mounted: ${left.map((m) => m.mountpoint).join(' ')}; keeping ${root}`)
    else if (!opts.keep) fs.rmSync(root, { recursive: true, force: true })
    else log(`bench: kept ${root}`)
  }
  const onSignal = (sig: string): void => {
    log(`bench: ${sig}: unmounting`)
    cleanupAll()
    try { finish() } catch { /* best effort */ }
    process.exit(130)
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))

  const cols: Column[] = []
  const builds: Record<number, number> = {}
  let real: RealRun | undefined
  let realNote: string | undefined
  let starts: StartsRun | undefined
  let podmanRun: PodmanRun | undefined
  try {
    if (opts.starts) starts = await runStarts({ root, bin: BIN, samples: opts.startsSamples, memorySamples: 3, pinned, log })
    if (opts.podman) {
      if (have('podman')) podmanRun = await runPodmanBench({ root, bin: BIN, runs: opts.podmanRuns, others: opts.podmanSamples, log })
      else log('bench: podman is not installed: no podman part')
    }
    if (opts.synthetic) {
      let tb = Date.now()
      const master = buildMaster(root, c)
      log(`bench: master files written in ${((Date.now() - tb) / 1000).toFixed(1)} s`)
      for (const n of opts.layers) {
        tb = Date.now()
        const st = buildStack(root, master, n, c)
        builds[n] = (Date.now() - tb) / 1000
        log(`bench: stack of ${n} layers built in ${builds[n]!.toFixed(2)} s`)
        const targets = new Map<string, Target>()
        for (const def of defs) {
          let t = targets.get(def.target)
          const pre: string[] = []
          if (t === undefined) {
            t = freshTarget(st, def.target)
            targets.set(def.target, t)
            if (def.remount === true && def.fs === 'overlayts') pre.push(primeIndex(st, t))
          }
          cols.push(await runColumn(def, st, t, c, opts, pre))
        }
        for (const t of targets.values()) {
          if (isMounted(t.mp) === undefined) {
            fs.rmSync(t.upper, { recursive: true, force: true })
            fs.rmSync(t.work, { recursive: true, force: true })
          }
        }
      }
    }
    if (opts.real) {
      const r = await runReal(root, defs, opts)
      if (typeof r === 'string') { realNote = r; log(`bench: ${r}`) } else real = r
    }
  } finally {
    cleanupAll()
    disarm()
    watchdog?.postMessage({ stop: true })
    finish()
  }

  // Order the columns as COLUMNS, then by layer count.
  const order = COLUMNS.map((d) => d.key)
  cols.sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key) || a.layers - b.layers)
  const elapsed = (Date.now() - t0) / 1000
  const r = ratios(cols, opts.layers, real)

  const out: string[] = []
  if (opts.synthetic) {
    out.push('')
    out.push(table(cols))
    const notes = cols.flatMap((col) => [...(col.error ? [`ERROR ${col.error}`] : []), ...col.notes].map((n) => `  ${col.key} N=${col.layers}: ${n}`))
    if (notes.length > 0) out.push('', 'notes:', ...notes)
  }
  if (starts !== undefined) out.push('', startsTable(starts))
  if (podmanRun !== undefined) out.push('', podmanTable(podmanRun))
  if (real !== undefined) out.push('', realTable(real))
  if (realNote !== undefined) out.push('', realNote)
  if (skipped.length > 0) out.push('', `skipped (not installed): ${skipped.join(', ')}`)
  if (opts.synthetic || opts.real) out.push('', `goal ratios (issue 9; reference ${r.ref} layers, base ${r.base} layer${r.base === 1 ? '' : 's'}${opts.synthetic ? '' : '; synthetic stacks not run'}):`, ratioText(r))
  const loadAfter = os.loadavg()
  out.push('', `total run time ${elapsed.toFixed(1)} s (${opts.quick ? 'quick' : 'full'}; stack builds ${Object.values(builds).reduce((a, b) => a + b, 0).toFixed(1)} s` +
    (real !== undefined ? `; node_modules copy ${real.layers.copySeconds.toFixed(1)} s` : '') + ')')
  out.push(`load average (1 min) before ${loadBefore[0]!.toFixed(2)}, after ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs` +
    (Math.max(loadBefore[0]!, loadAfter[0]!) > 0.5 ? ': other work was running, expect noise' : ''))
  process.stdout.write(out.join('\n') + '\n')

  if (opts.json !== undefined) {
    const doc = {
      date: new Date().toISOString(),
      host: { kernel: os.release(), cpus: os.cpus().length, node: process.version },
      quick: opts.quick,
      layers: opts.synthetic ? opts.layers : [],
      filesystems: defs.map((d) => d.key),
      columnDefs: defs.map((d) => ({ key: d.key, label: d.label, fs: d.fs, otsOpts: d.fs === 'overlayts' ? [d.otsOpts, opts.otsOpts].filter(Boolean).join(',') : undefined, remount: d.remount === true })),
      skipped,
      samples: c,
      cpuPinning: daemonCpus === undefined ? null : { bench: os.cpus().length - 1, daemons: daemonCpus },
      elapsedSeconds: elapsed,
      loadavg: { before: loadBefore, after: loadAfter },
      buildSeconds: builds,
      metrics: METRICS,
      columns: cols,
      real: real === undefined
        ? { skipped: realNote ?? 'not run' }
        : {
            source: real.source,
            entries: real.layers.entries,
            bytes: real.layers.bytes,
            top: real.layers.top,
            notes: real.layers.notes,
            copySeconds: real.layers.copySeconds,
            repeat: real.repeat,
            prebuiltIndex: real.prebuiltIndex,
            commands: real.commands,
            columns: real.columns
          },
      ratios: r,
      ...(starts !== undefined ? { starts } : {}),
      ...(podmanRun !== undefined ? { podman: podmanRun } : {})
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
      series: keys.map((k) => {
        const d = COLUMN_BY_KEY.get(k)!
        return {
          name: d.legend,
          color: d.color,
          dash: d.dash ?? '',
          points: cols.filter((col) => col.key === k && col.metrics.cold_stat !== undefined).map((col) => [col.layers, col.metrics.cold_stat!.median] as const)
        }
      })
    })
    fs.writeFileSync(opts.svg, svg)
    log(`bench: wrote ${opts.svg}`)
  }
  const realErrors = real?.columns.some((col) => Object.values(col.results).some((x) => x.errors.length > 0)) ?? false
  const partErrors = (starts?.columns.some((col) => col.errors.length > 0) ?? false) || (podmanRun !== undefined && podmanRun.errors.length > 0)
  return cols.some((col) => col.error !== undefined) || realErrors || partErrors ? 1 : 0
}

main().then((code) => { process.exitCode = code }, (e: unknown) => {
  cleanupAll()
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})
