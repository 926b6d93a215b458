/**
 * The start-up part of the bench (`--starts`, issue 12): how long a mount
 * command takes to return and to give a usable mount (its first stat
 * answered), and what an idle daemon holds in memory, for overlayts (as
 * `overlayts mount` and as bin/overlayts-mount), fuse-overlayfs and the
 * kernel's overlayfs, on one image-like stack.
 *
 * Samples are interleaved (overlayts, fuse-overlayfs, kernel, overlayts, ...)
 * so that other work on the machine weighs on every column alike. Each
 * sample mounts a fresh upper and workdir. Idle memory is read from
 * /proc/PID/status and smaps_rollup of the daemon, a few seconds after its
 * mount (the index is then checked): VmRSS counts the pages of the Node
 * binary that every Node process shares; RssAnon is what each daemon adds.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { forceUnmount, isMounted } from './mounts.js'

/** overlayts-mount: bin/overlayts-mount, the same daemon started with one Node start-up. */
export type StartsKind = 'overlayts' | 'overlayts-mount' | 'fuse-overlayfs' | 'kernel'

export interface StartsOptions {
  /** A scratch directory of this run (removed by the caller). */
  readonly root: string
  /** bin/overlayts.js */
  readonly bin: string
  /** Mounts (and idle-memory reads) per column. */
  readonly samples: number
  readonly memorySamples: number
  /** The command as the bench runs daemons (CPU pinning). */
  readonly pinned: (cmd: string, args: string[]) => [string, string[]]
  readonly log: (s: string) => void
}

interface Median { median: number, n: number }

export interface StartsColumn {
  kind: StartsKind
  /** The command returns, ms. */
  mount?: Median
  /** The command returns and a first stat in the mount is answered, ms. */
  usable?: Median
  /** The daemon, idle, kB. */
  vmRss?: Median
  rssAnon?: Median
  pss?: Median
  threads?: Median
  errors: string[]
}

export interface StartsRun {
  layers: number
  entries: number
  columns: StartsColumn[]
  /** Set in the environment the mount commands ran with (it costs every Node start-up). */
  nodeExtraCaCerts: boolean
}

const median = (xs: number[]): Median | undefined => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  return { median: m, n: s.length }
}

const msSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6

/** An image-like stack: a base layer of 100 dirs x 10 files, two small layers over it. */
function buildStack (dir: string): { lowers: string[], probe: string, entries: number } {
  const lowers = ['l0', 'l1', 'l2'].map((l) => path.join(dir, l))
  let entries = 0
  const small = Buffer.alloc(100, 'x')
  for (let d = 0; d < 100; d++) {
    const sub = path.join(lowers[2]!, 'usr', `d${d}`)
    fs.mkdirSync(sub, { recursive: true })
    for (let f = 0; f < 10; f++) fs.writeFileSync(path.join(sub, `f${f}`), small)
    entries += 11
  }
  for (const l of lowers.slice(0, 2)) {
    fs.mkdirSync(path.join(l, 'etc'), { recursive: true })
    fs.writeFileSync(path.join(l, 'etc', path.basename(l)), small)
    entries += 2
  }
  return { lowers, probe: 'usr/d50/f5', entries }
}

/** The pid of the process whose command line names `mp` (the FUSE daemon of that mount). */
function daemonPid (mp: string): number | undefined {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0')
      if (argv.includes(mp) && !argv.includes('umount')) return Number(e)
    } catch { /* gone */ }
  }
  return undefined
}

function kB (text: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

function run (cmd: string, args: string[]): { ok: boolean, out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim() }
}

export async function runStarts (o: StartsOptions): Promise<StartsRun> {
  const dir = path.join(o.root, 'starts')
  fs.mkdirSync(dir, { recursive: true })
  const st = buildStack(dir)
  const kinds: StartsKind[] = ['overlayts', 'overlayts-mount', 'fuse-overlayfs', 'kernel']
  const launcher = path.join(path.dirname(o.bin), 'overlayts-mount')
  const raw = new Map(kinds.map((k) => [k, { mount: [] as number[], usable: [] as number[], vmRss: [] as number[], rssAnon: [] as number[], pss: [] as number[], threads: [] as number[], errors: [] as string[] }]))
  const mp = path.join(dir, 'm')
  fs.mkdirSync(mp)
  const unmount = (kind: StartsKind): void => {
    const r = kind.startsWith('overlayts') ? run(process.execPath, [o.bin, 'umount', mp]) : run('umount', [mp])
    if (!r.ok || isMounted(mp) !== undefined) forceUnmount(mp)
  }
  for (let i = 0; i < o.samples; i++) {
    for (const kind of kinds) {
      const r = raw.get(kind)!
      const upper = path.join(dir, 'u'); const work = path.join(dir, 'w')
      for (const d of [upper, work]) { fs.rmSync(d, { recursive: true, force: true }); fs.mkdirSync(d) }
      const opts = `lowerdir=${st.lowers.join(':')},upperdir=${upper},workdir=${work}`
      const [cmd, args] = kind === 'overlayts'
        ? o.pinned(process.execPath, [o.bin, 'mount', '-o', opts, mp])
        : kind === 'overlayts-mount' ? o.pinned(launcher, ['-o', opts, mp])
          : kind === 'fuse-overlayfs' ? o.pinned('fuse-overlayfs', ['-o', opts, mp]) : ['mount', ['-t', 'overlay', 'overlay', '-o', opts, mp]]
      const t0 = process.hrtime.bigint()
      const m = run(cmd, args)
      const mounted = msSince(t0)
      try {
        if (!m.ok) throw new Error(`${kind} mount failed: ${m.out}`)
        fs.statSync(path.join(mp, st.probe))
        r.usable.push(msSince(t0))
        r.mount.push(mounted)
        const pid = kind === 'kernel' ? undefined : daemonPid(mp)
        if (pid !== undefined && i < o.memorySamples) {
          await new Promise((resolve) => setTimeout(resolve, 3000))
          const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
          const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
          for (const [key, v] of [['vmRss', kB(status, 'VmRSS')], ['rssAnon', kB(status, 'RssAnon')], ['pss', kB(rollup, 'Pss')], ['threads', kB(status, 'Threads')]] as const) {
            if (v !== undefined) r[key].push(v)
          }
        }
      } catch (e) {
        if (r.errors.length < 3) r.errors.push((e as Error).message.split('\n')[0]!)
      } finally {
        if (isMounted(mp) !== undefined) unmount(kind)
      }
    }
    o.log(`bench: starts: sample ${i + 1}/${o.samples}`)
  }
  fs.rmSync(dir, { recursive: true, force: true })
  return {
    layers: st.lowers.length,
    entries: st.entries,
    nodeExtraCaCerts: process.env.NODE_EXTRA_CA_CERTS !== undefined,
    columns: kinds.map((kind) => {
      const r = raw.get(kind)!
      const col: StartsColumn = { kind, errors: r.errors }
      for (const key of ['mount', 'usable', 'vmRss', 'rssAnon', 'pss', 'threads'] as const) {
        const v = median(r[key])
        if (v !== undefined) col[key] = v
      }
      return col
    })
  }
}

/** The table: one row per measure, one column per filesystem, then overlayts' ratios to fuse-overlayfs. */
export function startsTable (s: StartsRun): string {
  const cols = s.columns
  const ots = cols.find((c) => c.kind === 'overlayts')
  const otsMount = cols.find((c) => c.kind === 'overlayts-mount')
  const fo = cols.find((c) => c.kind === 'fuse-overlayfs')
  const rows: Array<[string, keyof StartsColumn, number]> = [
    ['mount: command returns [ms]', 'mount', 1],
    ['mount: first stat answered [ms]', 'usable', 1],
    ['idle daemon VmRSS [MB]', 'vmRss', 1024],
    ['idle daemon RssAnon (private) [MB]', 'rssAnon', 1024],
    ['idle daemon Pss [MB]', 'pss', 1024],
    ['idle daemon threads', 'threads', 1]
  ]
  const val = (c: StartsColumn | undefined, k: keyof StartsColumn, div: number): number | undefined => {
    const v = c?.[k] as Median | undefined
    return v === undefined ? undefined : v.median / div
  }
  const f = (v: number | undefined): string => v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1)
  const head = ['starts (median)', 'overlayts', 'ots-mount', 'fuse-ovl', 'kernel', 'ots/fo', 'mnt/fo']
  const ratio = (a: number | undefined, b: number | undefined): string => a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : '-'
  const body = rows.map(([label, k, div]) => {
    const b = val(fo, k, div)
    return [label, ...cols.map((c) => f(val(c, k, div))), ratio(val(ots, k, div), b), ratio(val(otsMount, k, div), b)]
  })
  const w = head.map((_h, i) => Math.max(...[head, ...body].map((r) => r[i]!.length)))
  const line = (r: string[]): string => r[0]!.padEnd(w[0]!) + ' | ' + r.slice(1).map((x, i) => x.padStart(w[i + 1]!)).join(' ')
  const out = [
    `starts: ${s.layers} lower layers (${s.entries} entries), fresh upper each mount, ${cols[0]?.mount?.n ?? 0} mounts per column, interleaved` +
      (s.nodeExtraCaCerts ? '; NODE_EXTRA_CA_CERTS is set here (the detaching parent pays ~45 ms to read it; the daemon is started without it)' : ''),
    line(head), '-'.repeat(w[0]!) + '-+-' + w.slice(1).map((x) => '-'.repeat(x)).join('-'), ...body.map(line)
  ]
  for (const c of cols) for (const e of c.errors) out.push(`  ${c.kind}: ERROR ${e}`)
  return out.join('\n')
}
