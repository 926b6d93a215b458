/**
 * Times the layer tools on a generated large stack (issue 11: "100k+
 * entries, 64+ layers answer in seconds"):
 *
 *   npm run build && node dist/scripts/bench-layers.js [--layers 64] [--entries 100000] [--tmp DIR] [--keep]
 *
 * The stack: N lower layers in kernel form, about ENTRIES entries in all,
 * each layer 16 directories of files (100 bytes each): most names unique to
 * their layer, a fifth shared by every layer (shadowed below the top one),
 * and every other layer whiting out a name of the next and making one of
 * its directories opaque; plus an upper with a few hundred changes. Each run
 * is one `overlayts layers -o ...` (and one `diff`) as a child process, wall
 * time from one run each: with the index being built, with it reused, and
 * with index=off (a scan of the layers).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { sys } from '../src/overlay/sys/fs.js'
import { lsetxattr } from '../src/overlay/sys/xattr.js'

const { values } = parseArgs({
  options: { layers: { type: 'string', default: '64' }, entries: { type: 'string', default: '100000' }, tmp: { type: 'string' }, keep: { type: 'boolean', default: false } }
})
const LAYERS = Number(values.layers)
const ENTRIES = Number(values.entries)
const DIRS = 16
const BIN = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bin', 'overlayts.js')

const root = fs.mkdtempSync(path.join(values.tmp ?? os.tmpdir(), 'bench-layers-'))
const body = Buffer.alloc(100, 0x78)
const perLayer = Math.ceil(ENTRIES / LAYERS)
const filesPerDir = Math.max(1, Math.floor((perLayer - DIRS) / DIRS))
const lowers: string[] = []
let made = 0
const t0 = Date.now()
for (let i = 0; i < LAYERS; i++) {
  const l = path.join(root, `l${String(i).padStart(3, '0')}`)
  lowers.push(l)
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(l, `d${d}`)
    fs.mkdirSync(dir, { recursive: true })
    made++
    for (let f = 0; f < filesPerDir; f++) {
      // A fifth of the names are the same in every layer: the top copy shadows the rest.
      const name = f % 5 === 0 ? `shared-${f}` : `l${i}-${f}`
      fs.writeFileSync(path.join(dir, name), body)
      made++
    }
  }
  if (i % 2 === 0 && i + 1 < LAYERS) {
    sys.mknod(path.join(l, 'd0', `l${i + 1}-1`), fs.constants.S_IFCHR, 0) // whites out a name of the next layer
    lsetxattr(path.join(l, `d${1 + (i % (DIRS - 1))}`), 'trusted.overlay.opaque', Buffer.from('y'))
  }
}
const upper = path.join(root, 'upper'); const work = path.join(root, 'work')
fs.mkdirSync(path.join(upper, 'd0'), { recursive: true }); fs.mkdirSync(work)
for (let f = 0; f < 300; f++) fs.writeFileSync(path.join(upper, 'd0', `new-${f}`), body)
for (let f = 0; f < 100; f++) sys.mknod(path.join(upper, 'd0', `shared-${f * 5}`), fs.constants.S_IFCHR, 0)
process.stdout.write(`stack: ${LAYERS} layers, ${made} lower entries + 400 in upper, generated in ${((Date.now() - t0) / 1000).toFixed(1)} s under ${root}\n`)

const lowerdir = lowers.join(':')
function timed (label: string, args: string[]): void {
  execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' })
  // GNU time: wall and CPU seconds (the CPU is shared: CPU time is the cost, wall time what one waits).
  const timeFile = path.join(root, 'time.out')
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%e %U %S %M', process.execPath, BIN, ...args], { maxBuffer: 1 << 30 })
  // `which` exits 1 when a path is absent: any exit code is a result here.
  if (r.status !== 0 && r.status !== 1) throw new Error(`overlayts ${args[0]!} exited ${r.status}: ${r.stderr.toString()}`)
  const [wall, user, sysTime, maxKb] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number, number]
  const lines = r.stdout.toString().trim().split('\n')
  const tail = `(${lines.length} lines) ${lines.pop() ?? ''}`
  process.stdout.write(`${label.padEnd(40)} wall ${wall.toFixed(2).padStart(6)} s  cpu ${(user + sysTime).toFixed(2).padStart(5)} s  rss ${Math.round(maxKb / 1024)} MB  ${tail.slice(0, 90)}\n`)
}
try {
  process.stdout.write(`load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs\n`)
  timed('layers, index built (first run, cold cache)', ['layers', '-o', `lowerdir=${lowerdir},upperdir=${upper},workdir=${work}`])
  timed('layers, index reused (cold cache)', ['layers', '-o', `lowerdir=${lowerdir},upperdir=${upper},workdir=${work}`])
  timed('layers, index=off (scan, cold cache)', ['layers', '-o', `lowerdir=${lowerdir},upperdir=${upper},index=off`])
  timed('diff, index reused (cold cache)', ['diff', '-o', `lowerdir=${lowerdir},upperdir=${upper},workdir=${work}`])
  timed('which, index reused (cold cache)', ['which', '-o', `lowerdir=${lowerdir},upperdir=${upper},workdir=${work}`, '/d0/shared-5', '/d3/l40-2'])
} finally {
  if (values.keep !== true) fs.rmSync(root, { recursive: true, force: true })
  else process.stdout.write(`kept ${root}\n`)
}
