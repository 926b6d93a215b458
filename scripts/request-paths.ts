/**
 * The kernel transport's three request paths side by side, interleaved so
 * that load from other work on the machine falls on each alike:
 *
 *   node dist/scripts/request-paths.js [--rounds 25]
 *
 * Mounts three overlayts daemons (passthrough=off) over empty layers, pinned
 * to the first CPU (this process runs on the last): device reads
 * (uring=off), FUSE over io_uring (uring=on; the fuse module's enable_uring
 * is set to 1 for that mount only and put back), and native reader threads
 * (OVERLAYTS_FUSE_READERS=threads). Each round runs, on each mount in turn,
 * 1,500 stats of absent names, 200 creates (write 1 byte) and 200 unlinks,
 * timing each batch and the daemon's CPU time over it (all its threads, from
 * schedstat). Prints per path the median over rounds of µs per operation,
 * and its ratio to device reads. Must run as root; unmounts everything.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { readPidFile } from '../src/mount-config/pidfile.js'

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'overlayts.js')
const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring'
const LOOKUPS = 1500
const FILES = 200

interface PathDef { name: string, opts: string, env?: Record<string, string>, uring?: boolean }
const PATHS: PathDef[] = [
  { name: 'device reads', opts: 'uring=off' },
  { name: 'io_uring', opts: 'uring=on', uring: true },
  { name: 'reader threads', opts: 'uring=off', env: { OVERLAYTS_FUSE_READERS: 'threads' } }
]

function cpuUs (pid: number): Map<string, number> {
  const ns = new Map<string, number>()
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try { ns.set(tid, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000) } catch { /* ended */ }
  }
  return ns
}

function spent (a: Map<string, number>, b: Map<string, number>): number {
  let us = 0
  for (const [tid, v] of b) us += v - (a.get(tid) ?? 0)
  return us
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

function main (): void {
  if (process.getuid?.() !== 0) throw new Error('must run as root')
  const ai = process.argv.indexOf('--rounds')
  const rounds = ai > 0 ? Number(process.argv[ai + 1]) : 25
  const cpus = os.cpus().length
  const pin = (args: string[]): [string, string[]] => cpus > 1 ? ['taskset', ['-c', '0', ...args]] : [args[0]!, args.slice(1)]
  if (cpus > 1) spawnSync('taskset', ['-a', '-p', '-c', String(cpus - 1), String(process.pid)])
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ots-paths-'))
  const mounted: string[] = []
  try {
    const mps = PATHS.map((p, i) => {
      const d = path.join(root, String(i))
      for (const s of ['l', 'u', 'w', 'm']) fs.mkdirSync(path.join(d, s), { recursive: true })
      const mp = path.join(d, 'm')
      const old = p.uring === true ? fs.readFileSync(ENABLE_URING, 'utf8').trim() : undefined
      if (old !== undefined) fs.writeFileSync(ENABLE_URING, '1')
      try {
        const [cmd, args] = pin([process.execPath, BIN, 'mount', '--log-file', path.join(d, 'log'), '-o',
          `lowerdir=${d}/l,upperdir=${d}/u,workdir=${d}/w,passthrough=off,${p.opts}`, mp])
        const r = spawnSync(cmd, args, { env: { ...process.env, ...p.env }, encoding: 'utf8' })
        if (r.status !== 0) throw new Error(`mount (${p.name}) failed: ${r.stderr}`)
      } finally {
        if (old !== undefined) fs.writeFileSync(ENABLE_URING, old === 'Y' ? '1' : '0')
      }
      mounted.push(mp)
      const line = fs.readFileSync(path.join(d, 'log'), 'utf8').split('\n').find((l) => l.includes('"msg":"mounted"')) ?? '{}'
      const requests = (JSON.parse(line) as { requests?: string }).requests
      if ((p.uring === true) !== (requests === 'io_uring')) throw new Error(`${p.name}: the daemon says requests: ${String(requests)}`)
      const pid = readPidFile(mp)
      if (pid === undefined) throw new Error(`${p.name}: no daemon pid`)
      return { mp, pid }
    })
    const samples = PATHS.map(() => new Map<string, number[]>())
    const add = (i: number, k: string, v: number): void => { samples[i]!.set(k, [...(samples[i]!.get(k) ?? []), v]) }
    let n = 0
    for (let r = 0; r < rounds; r++) {
      mps.forEach(({ mp, pid }, i) => {
        n++
        const batches: Array<[string, number, () => void]> = [
          ['lookup', LOOKUPS, () => { for (let k = 0; k < LOOKUPS; k++) fs.statSync(`${mp}/a${n}_${k}`, { throwIfNoEntry: false }) }],
          ['create', FILES, () => { for (let k = 0; k < FILES; k++) fs.writeFileSync(`${mp}/c${n}_${k}`, 'x') }],
          ['unlink', FILES, () => { for (let k = 0; k < FILES; k++) fs.unlinkSync(`${mp}/c${n}_${k}`) }]
        ]
        for (const [what, ops, run] of batches) {
          const c0 = cpuUs(pid)
          const t0 = process.hrtime.bigint()
          run()
          const us = Number(process.hrtime.bigint() - t0) / 1000
          add(i, what, us / ops)
          add(i, `${what} cpu`, spent(c0, cpuUs(pid)) / ops)
        }
      })
    }
    console.log(`${rounds} rounds; median µs per operation (ratio to device reads); "cpu": the daemon's CPU time`)
    for (const [i, p] of PATHS.entries()) {
      const cells = [...samples[i]!.keys()].map((k) => {
        const v = median(samples[i]!.get(k)!)
        return `${k} ${v.toFixed(1)} (${(v / median(samples[0]!.get(k)!)).toFixed(2)})`
      })
      console.log(`${p.name.padEnd(15)} ${cells.join('  ')}`)
    }
    console.log(`load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(1)} on ${cpus} CPUs`)
  } finally {
    for (const mp of mounted) spawnSync(process.execPath, [BIN, 'umount', mp], { stdio: 'inherit' })
    fs.rmSync(root, { recursive: true, force: true })
  }
}

main()
