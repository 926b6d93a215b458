#!/usr/bin/env node
// Load test (issue 6): W worker processes (not the daemon) hammer one
// overlayts mount for S seconds with create, write, read, rename, unlink,
// readdir, mkdir/rmdir and copy-up (append to a file only a lower holds), all
// on one shared pool of names in trees that upper and both lowers share, so
// that the workers race each other on purpose.
//
// Expected errnos are exactly those two racing workers can cause one another
// on a shared name pool where file names and directory names never mix
// (files are fN, dirs are sN: so no EISDIR/ENOTDIR/EEXIST-on-type races):
//   create (open O_CREAT|O_EXCL + write)   EEXIST (name taken), ENOENT (parent sN just removed)
//   write / read / copyup (open existing)  ENOENT (unlinked or renamed away)
//   rename (file to file, may replace)     ENOENT (source gone, or target parent sN removed)
//   unlink                                 ENOENT
//   readdir                                ENOENT (sN removed)
//   mkdir sN                               EEXIST
//   rmdir sN                               ENOENT, ENOTEMPTY
// Anything else (EIO, EINVAL, EBADF, ENOTCONN, ESTALE, EACCES, ...) is
// unexpected and fails the run.
//
// Then: the daemon must still be alive and mounted; the merged view (names,
// types, sizes, modes, file contents) must equal the view computed from the
// layers on disk (upper, whiteouts, opaque dirs, lowers: so every merged file
// exists in upper or a lower, and nothing else shows) and the view a fresh
// remount shows; the lowers must be unchanged. The daemon's RSS is sampled
// every second (VmRSS from /proc/PID/status; PID from /run/overlayts/*.pid).
//
// Usage: node scripts/load.mjs [--seconds 60] [--workers 8] [--json]
// Root only. Exit status 1 on any anomaly.
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(REPO, 'bin', 'overlayts.js')
const execFileP = promisify(execFile)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const sha = (b) => createHash('sha256').update(b).digest('hex')

function arg (name, dflt) {
  const i = process.argv.indexOf(name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt
}

export const EXPECTED = {
  create: ['EEXIST', 'ENOENT'],
  write: ['ENOENT'],
  read: ['ENOENT'],
  copyup: ['ENOENT'],
  rename: ['ENOENT'],
  unlink: ['ENOENT'],
  readdir: ['ENOENT'],
  mkdir: ['EEXIST'],
  rmdir: ['ENOENT', 'ENOTEMPTY']
}

const TREES = ['t0', 't1', 't2', 't3']
const FILES = 12
const SUBS = 2

// ------------------------------------------------------------ worker

async function worker () {
  const merged = arg('--merged')
  const until = Number(arg('--until'))
  let seed = Number(arg('--seed', '1')) >>> 0
  const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296 }
  const pick = (a) => a[Math.floor(rnd() * a.length)]
  const ok = {}
  const err = {}
  const buf = Buffer.alloc(64 * 1024, 'w')
  // A directory: a tree or one of its sN subdirs; a file: fN in one of those.
  const dir = () => { const t = pick(TREES); return rnd() < 0.5 ? t : `${t}/s${Math.floor(rnd() * SUBS)}` }
  const file = () => `${dir()}/f${Math.floor(rnd() * FILES)}`
  const abs = (r) => path.join(merged, r)
  const ops = {
    async create () {
      const fh = await fsp.open(abs(file()), 'wx', 0o644)
      try { await fh.write(buf, 0, 1 + Math.floor(rnd() * buf.length)) } finally { await fh.close() }
    },
    async write () {
      const fh = await fsp.open(abs(file()), 'r+')
      try { await fh.write(buf, 0, 1 + Math.floor(rnd() * 8192), Math.floor(rnd() * 65536)) } finally { await fh.close() }
    },
    async read () { await fsp.readFile(abs(file())) },
    async copyup () {
      // Lower files are named fN too; appending copies up whichever lower file is visible.
      const fh = await fsp.open(abs(file()), 'a')
      try { await fh.write(buf, 0, 100) } finally { await fh.close() }
    },
    async rename () { await fsp.rename(abs(file()), abs(file())) },
    async unlink () { await fsp.unlink(abs(file())) },
    async readdir () { await fsp.readdir(abs(dir()), { withFileTypes: true }) },
    async mkdir () { await fsp.mkdir(abs(`${pick(TREES)}/s${Math.floor(rnd() * SUBS)}`)) },
    async rmdir () {
      // Empty it first (racing the other workers' creates), then remove it.
      const d = abs(`${pick(TREES)}/s${Math.floor(rnd() * SUBS)}`)
      for (const n of await fsp.readdir(d)) await fsp.unlink(path.join(d, n))
      await fsp.rmdir(d)
    }
  }
  const weights = [['create', 4], ['write', 3], ['read', 4], ['copyup', 2], ['rename', 3], ['unlink', 3], ['readdir', 3], ['mkdir', 1], ['rmdir', 1]]
  const table = weights.flatMap(([op, n]) => Array(n).fill(op))
  while (Date.now() < until) {
    const op = pick(table)
    try {
      await ops[op]()
      ok[op] = (ok[op] ?? 0) + 1
    } catch (e) {
      const k = `${op} ${e.code ?? e.message}`
      err[k] = (err[k] ?? 0) + 1
    }
  }
  process.stdout.write(JSON.stringify({ ok, err }) + '\n')
}

// ------------------------------------------------------------ layers and views

async function buildLayers (root) {
  const l1 = path.join(root, 'l1'); const l2 = path.join(root, 'l2')
  for (const t of TREES) {
    for (const l of [l1, l2]) await fsp.mkdir(path.join(l, t, 's0'), { recursive: true })
    await fsp.mkdir(path.join(l2, t, 's1'), { recursive: true })
    for (let i = 0; i < FILES; i++) {
      // Overlapping names: even files in the bottom lower, every third in the top one.
      if (i % 2 === 0) await fsp.writeFile(path.join(l2, t, `f${i}`), Buffer.alloc(256 * 1024 + i, `l2${t}${i}`))
      if (i % 3 === 0) await fsp.writeFile(path.join(l1, t, `f${i}`), Buffer.alloc(128 * 1024 + i, `l1${t}${i}`))
      if (i % 4 === 1) await fsp.writeFile(path.join(l2, t, 's1', `f${i}`), `s1 ${t} ${i}\n`)
      if (i % 5 === 2) await fsp.writeFile(path.join(l1, t, 's0', `f${i}`), `s0 ${t} ${i}\n`)
    }
  }
  return { l1, l2 }
}

/** name -> "type size mode hash" for every entry under `root`, read through whatever `root` is. */
async function snapshot (root) {
  const out = new Map()
  const walk = async (rel) => {
    for (const name of (await fsp.readdir(path.join(root, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`
      const st = await fsp.lstat(path.join(root, r))
      if (st.isDirectory()) { out.set(r, `d ${(st.mode & 0o7777).toString(8)}`); await walk(r) } else if (st.isFile()) out.set(r, `f ${st.size} ${(st.mode & 0o7777).toString(8)} ${sha(await fsp.readFile(path.join(root, r)))}`)
      else out.set(r, `o ${st.mode.toString(8)}`)
    }
  }
  await walk('')
  return out
}

/**
 * The merged view computed from the layers on disk, following the overlay
 * rules (no redirects here: the load renames files only): upper first, a
 * whiteout (char 0/0) hides, an opaque upper dir stops the merge, a lower
 * non-dir ends it, first occurrence wins.
 */
async function expectedView (upper, lowers, opaqueDirs) {
  const out = new Map()
  const walk = async (rel, layerDirs) => {
    const names = new Map()
    const hidden = new Set()
    for (const [i, d] of layerDirs.entries()) {
      let ents
      try { ents = await fsp.readdir(d, { withFileTypes: true }) } catch { continue }
      for (const e of ents) {
        if (hidden.has(e.name) || names.has(e.name)) continue
        const st = await fsp.lstat(path.join(d, e.name))
        if (st.isCharacterDevice() && st.rdev === 0) { hidden.add(e.name); continue }
        names.set(e.name, { layer: i, st, phys: path.join(d, e.name) })
      }
    }
    for (const name of [...names.keys()].sort()) {
      const { layer, st, phys } = names.get(name)
      const r = rel === '' ? name : `${rel}/${name}`
      if (st.isDirectory()) {
        out.set(r, `d ${(st.mode & 0o7777).toString(8)}`)
        const below = []
        if (!(layer === 0 && opaqueDirs.has(phys))) {
          for (const d of layerDirs.slice(layer + 1)) {
            const p = path.join(d, name)
            const s = await fsp.lstat(p).catch(() => undefined)
            if (s === undefined) continue
            if (!s.isDirectory()) break
            below.push(p)
          }
        }
        await walk(r, [phys, ...below])
      } else if (st.isFile()) out.set(r, `f ${st.size} ${(st.mode & 0o7777).toString(8)} ${sha(await fsp.readFile(phys))}`)
      else out.set(r, `o ${st.mode.toString(8)}`)
    }
  }
  await walk('', [upper, ...lowers])
  return out
}

async function opaqueUpperDirs (upper) {
  const out = new Set()
  const { stdout } = await execFileP('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', upper], { maxBuffer: 64 << 20 }).catch((e) => ({ stdout: e.stdout ?? '' }))
  let cur
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) cur = line.slice(8)
    else if (line.startsWith('trusted.overlay.opaque="y"') && cur !== undefined) out.add(cur)
  }
  return out
}

function diff (a, b, la, lb) {
  const out = []
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${la} ${v} / ${lb} ${b.get(k) ?? '(absent)'}`)
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: ${la} (absent) / ${lb} ${v}`)
  return out
}

function pidOf (merged) {
  const file = `${process.env.OVERLAYTS_RUNDIR ?? '/run/overlayts'}/${createHash('sha256').update(merged).digest('hex').slice(0, 16)}.pid`
  return Number(fs.readFileSync(file, 'utf8'))
}

function rssKiB (pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1])
}

function mounted (mp) {
  return fs.readFileSync('/proc/self/mountinfo', 'latin1').split('\n').some((l) => l.split(' ')[4] === mp && l.includes(' fuse.overlayts '))
}

// ------------------------------------------------------------ main

async function main () {
  const seconds = Number(arg('--seconds', '60'))
  const workers = Number(arg('--workers', '8'))
  const json = process.argv.includes('--json')
  const say = (s) => { if (!json) process.stdout.write(s + '\n') }
  // Beside the tests' dirs ($TMPDIR/overlayts-test, see test/helpers/tmp.ts).
  const base = path.join(os.tmpdir(), 'overlayts-test')
  await fsp.mkdir(base, { recursive: true })
  const root = await fsp.mkdtemp(path.join(base, `${process.pid}-load-`))
  const u = path.join(root, 'u'); const w = path.join(root, 'w'); const m = path.join(root, 'm')
  for (const d of [u, w, m]) await fsp.mkdir(d)
  const { l1, l2 } = await buildLayers(root)
  const lowerBefore = await snapshot(l1).then(async (a) => JSON.stringify([...a, ...await snapshot(l2)]))
  const opts = `lowerdir=${l1}:${l2},upperdir=${u},workdir=${w}`
  const logFile = path.join(root, 'daemon.log')
  const problems = []
  let children = []
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) { try { c.kill('SIGKILL') } catch {} }
  }
  process.on('exit', cleanup)
  const umount = async () => { await execFileP(process.execPath, [BIN, 'umount', m], { timeout: 60_000 }) }
  try {
    await execFileP(process.execPath, [BIN, 'mount', '-o', opts, m, '--log-file', logFile], { timeout: 60_000 })
    const pid = pidOf(m)
    say(`load: ${workers} workers, ${seconds} s, daemon pid ${pid}, dir ${root}`)
    const rss = [{ t: 0, kib: rssKiB(pid) }]
    const t0 = Date.now()
    const until = t0 + seconds * 1000
    const results = []
    const done = []
    for (let i = 0; i < workers; i++) {
      const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', '--merged', m, '--until', String(until), '--seed', String(i * 7919 + 1)], { stdio: ['ignore', 'pipe', 'inherit'] })
      children.push(c)
      let out = ''
      c.stdout.on('data', (d) => { out += d })
      done.push(new Promise((resolve) => c.on('exit', (code, sig) => {
        try { results.push(JSON.parse(out.trim())) } catch { problems.push(`worker ${i} exited ${code ?? sig} without a report`) }
        resolve()
      })))
    }
    const sampler = setInterval(() => { try { rss.push({ t: Math.round((Date.now() - t0) / 1000), kib: rssKiB(pid) }) } catch { /* gone: checked below */ } }, 1000)
    await Promise.all(done)
    clearInterval(sampler)
    const elapsed = (Date.now() - t0) / 1000
    try { rss.push({ t: Math.round(elapsed), kib: rssKiB(pid) }) } catch { problems.push('daemon died under load') }
    if (!mounted(m)) problems.push('mount gone after the load')
    // Counts.
    const ok = {}; const err = {}; const unexpected = {}
    for (const r of results) {
      for (const [k, v] of Object.entries(r.ok)) ok[k] = (ok[k] ?? 0) + v
      for (const [k, v] of Object.entries(r.err)) {
        err[k] = (err[k] ?? 0) + v
        const [op, code] = k.split(' ')
        if (!(EXPECTED[op] ?? []).includes(code)) unexpected[k] = (unexpected[k] ?? 0) + v
      }
    }
    for (const [k, v] of Object.entries(unexpected)) problems.push(`unexpected errno ${k} x${v}`)
    const perSec = Object.fromEntries(Object.entries(ok).map(([k, v]) => [k, Math.round(v / elapsed)]))
    const totalOk = Object.values(ok).reduce((a, b) => a + b, 0)
    // Views.
    const live = await snapshot(m)
    const fromDisk = await expectedView(u, [l1, l2], await opaqueUpperDirs(u))
    for (const d of diff(live, fromDisk, 'merged', 'layers-on-disk').slice(0, 10)) problems.push(`merged vs layers on disk: ${d}`)
    const leftovers = (await fsp.readdir(path.join(w, 'work'))).length
    await umount()
    // Gone, or a zombie waiting for whoever adopted it to reap it: it has exited.
    const running = () => { try { const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z' } catch { return false } }
    if (running()) problems.push('daemon still running after umount')
    await execFileP(process.execPath, [BIN, 'mount', '-o', opts, m, '--log-file', logFile], { timeout: 60_000 })
    const again = await snapshot(m)
    await umount()
    for (const d of diff(live, again, 'before', 'after-remount').slice(0, 10)) problems.push(`merged vs fresh remount: ${d}`)
    const lowerAfter = await snapshot(l1).then(async (a) => JSON.stringify([...a, ...await snapshot(l2)]))
    if (lowerAfter !== lowerBefore) problems.push('lower layers changed')
    const log = fs.readFileSync(logFile, 'utf8')
    const logErrors = log.split('\n').filter((l) => /"level":(50|60)/.test(l)).length
    if (logErrors > 0) problems.push(`${logErrors} error lines in the daemon log`)
    const kibs = rss.map((r) => r.kib)
    const summary = {
      seconds: elapsed, workers, totalOps: totalOk, opsPerSec: perSec, errnos: err, unexpected,
      entries: live.size, workLeftovers: leftovers,
      rssKiB: { start: kibs[0], max: Math.max(...kibs), end: kibs[kibs.length - 1], samples: rss.filter((_, i) => i % Math.max(1, Math.round(rss.length / 12)) === 0 || i === rss.length - 1) },
      problems
    }
    if (json) process.stdout.write(JSON.stringify(summary) + '\n')
    else {
      say(`${totalOk} operations in ${elapsed.toFixed(1)} s (${Math.round(totalOk / elapsed)}/s)`)
      say(`ops/s: ${JSON.stringify(perSec)}`)
      say(`errnos: ${JSON.stringify(err)}`)
      say(`unexpected errnos: ${JSON.stringify(unexpected)}`)
      say(`daemon RSS (KiB) start ${summary.rssKiB.start}, max ${summary.rssKiB.max}, end ${summary.rssKiB.end}; over time: ${summary.rssKiB.samples.map((r) => `${r.t}s=${r.kib}`).join(' ')}`)
      say(`merged entries at the end: ${live.size}; work leftovers after load: ${leftovers}`)
      for (const p of problems) say(`problem: ${p}`)
      say(problems.length === 0 ? 'load: ok' : `load: ${problems.length} problems`)
    }
    process.exitCode = problems.length === 0 ? 0 : 1
  } finally {
    children = children.filter((c) => c.exitCode === null)
    cleanup()
    if (mounted(m)) await umount().catch(() => {})
    if (mounted(m)) {
      // Last resort: abort the connection and detach.
      const line = fs.readFileSync('/proc/self/mountinfo', 'latin1').split('\n').find((l) => l.split(' ')[4] === m)
      if (line) { try { fs.writeFileSync(`/sys/fs/fuse/connections/${line.split(' ')[2].split(':')[1]}/abort`, '1') } catch {} }
      await execFileP('umount', ['-l', m]).catch(() => {})
    }
    if (process.exitCode === 0) await fsp.rm(root, { recursive: true, force: true })
    else process.stderr.write(`kept ${root}\n`)
  }
}

if (process.argv.includes('--worker')) await worker()
else await main()
