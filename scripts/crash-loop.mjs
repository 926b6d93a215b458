#!/usr/bin/env node
// Crash loop (issue 6): SIGKILL the overlayts daemon at random moments while a
// workload copies up large files, renames files and directories (lower dirs
// too, which makes redirects), creates, unlinks and rmdirs; then abort the
// FUSE connection, `umount -l`, remount and check that the crash left nothing
// visible that a crash must not leave:
//
//  - every visible file verifies: small files carry their own checksum, big
//    files are exactly their lower content followed by whole 4 KiB records,
//    each with its own checksum (appends are single 4 KiB writes); so a
//    partial copy-up or a torn record is detected by content, under any name;
//  - no file id is visible twice (rename/copy-up/whiteout atomicity), and no
//    id that should exist is missing (the worker journals its intents outside
//    the mount: "c ID" before a create, "d ID" once it is complete, "u ID"
//    before an unlink);
//  - readdir and lstat agree, no overlay marker shows through the mount;
//  - workdir/work is empty once the daemon has mounted again;
//  - `overlayts index verify` passes once the daemon reports its index ready;
//  - the lower layers are unchanged: every entry's lstat signature (type,
//    mode, owner, size, mtime, ctime, ino), names, symlink targets and the
//    contents of small files every round; the full contents of everything
//    (big files too) at the start, every 50 kills and at the end.
//
// Usage: node scripts/crash-loop.mjs [--kills N] [--seed S] [--max-delay MS] [--keep]
// Prints "N kills: P passed, F failed" and exits 1 on any anomaly.
// Run as root (mounts, /sys/fs/fuse/connections), after `npx tsc -p .`.
import { spawn, execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(REPO, 'bin', 'overlayts.js')
const REC = 4096
const MiB = 1024 * 1024

// ------------------------------------------------------------ small helpers

function arg (name, dflt) {
  const i = process.argv.indexOf(name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt
}

/** Deterministic PRNG (mulberry32). */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sha = (b) => createHash('sha256').update(b).digest('hex')
const execFileP = promisify(execFile)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Small self-verifying file: "OTS1 <id>\n" body "\n#<sha256 of all before>\n". */
function smallContent (id, len) {
  const head = Buffer.from(`OTS1 ${id}\n`)
  const body = Buffer.alloc(len, `${id}:`)
  const pre = Buffer.concat([head, body])
  return Buffer.concat([pre, Buffer.from(`\n#${sha(pre)}\n`)])
}

function checkSmall (buf) {
  const s = buf.toString('latin1')
  const m = /^OTS1 (\d+)\n/.exec(s)
  if (m === null) return { ok: false, why: 'no OTS1 header' }
  const tail = s.lastIndexOf('\n#')
  if (tail < 0 || !s.endsWith('\n') || s.length - tail !== 67) return { ok: false, why: 'no checksum trailer (partial?)' }
  const want = s.slice(tail + 2, tail + 66)
  if (sha(buf.subarray(0, tail)) !== want) return { ok: false, why: 'checksum mismatch' }
  return { ok: true, id: Number(m[1]) }
}

/** A 4 KiB append record, checksummed. */
function record (id, round, seq) {
  const b = Buffer.alloc(REC, '.')
  b.write(`REC ${id} ${round} ${seq} `)
  const h = sha(b.subarray(0, REC - 65))
  b.write(h + '\n', REC - 65)
  return b
}

function checkRecord (b) {
  if (!b.subarray(0, 4).equals(Buffer.from('REC '))) return false
  return sha(b.subarray(0, REC - 65)) === b.subarray(REC - 65, REC - 1).toString('latin1') && b[REC - 1] === 10
}

// ------------------------------------------------------------ worker (the workload)

async function worker () {
  const merged = arg('--merged')
  const journal = arg('--journal')
  const seed = Number(arg('--seed', '1'))
  const round = Number(arg('--round', '0'))
  let nextId = Number(arg('--first-id'))
  const rnd = prng(seed)
  const pick = (a) => a[Math.floor(rnd() * a.length)]
  const jfd = fs.openSync(journal, 'a')
  const note = (s) => fs.writeSync(jfd, s + '\n')
  const errors = {}
  const okCount = {}
  const count = (op, e) => { const k = `${op}:${e.code ?? e.message}`; errors[k] = (errors[k] ?? 0) + 1 }
  // Learn the tree through the mount (another process than the daemon).
  const dirs = ['']
  const files = []
  const bigs = []
  const walk = async (rel) => {
    for (const e of await fsp.readdir(path.join(merged, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : rel + '/' + e.name
      // A `.tmp` is a create an earlier crash interrupted: not a file to work on
      // (renaming it would give an incomplete file a committed name).
      if (e.isDirectory()) { dirs.push(r); await walk(r) } else if (e.isFile() && !e.name.endsWith('.tmp')) (e.name.startsWith('big') ? bigs : files).push(r)
    }
  }
  // Killed mid-walk (the daemon went first): nothing to report.
  try { await walk('') } catch { process.stdout.write('{}\n'); return }
  let seq = 0
  const abs = (r) => path.join(merged, r)
  const rename = (list, from, to) => { const i = list.indexOf(from); if (i >= 0) list[i] = to }
  const fresh = () => `n${round}x${(seq++).toString(36)}`
  const ops = {
    async appendBig () {
      const f = pick(bigs); if (f === undefined) return
      // No O_CREAT: the other loop may have unlinked or moved it meanwhile.
      const fh = await fsp.open(abs(f), fs.constants.O_RDWR | fs.constants.O_APPEND)
      try {
        const hdr = Buffer.alloc(64)
        await fh.read(hdr, 0, 64, 0)
        const id = Number(/^BIG (\d+)/.exec(hdr.toString('latin1'))?.[1] ?? -1)
        await fh.write(record(id, round, seq++))
      } finally { await fh.close() }
    },
    async renameBig () {
      const f = pick(bigs); if (f === undefined) return
      const d = pick(dirs)
      const to = (d === '' ? '' : d + '/') + 'big' + fresh()
      await fsp.rename(abs(f), abs(to)); rename(bigs, f, to)
    },
    async renameFile () {
      const f = pick(files); if (f === undefined) return
      const d = pick(dirs)
      const to = (d === '' ? '' : d + '/') + fresh()
      await fsp.rename(abs(f), abs(to)); rename(files, f, to)
    },
    async renameDir () {
      const from = pick(dirs); if (from === undefined || from === '') return
      const parent = pick(dirs.filter((d) => d !== from && !d.startsWith(from + '/')))
      if (parent === undefined) return
      const to = (parent === '' ? '' : parent + '/') + 'D' + fresh()
      await fsp.rename(abs(from), abs(to))
      const fix = (p) => p === from ? to : p.startsWith(from + '/') ? to + p.slice(from.length) : p
      for (const l of [dirs, files, bigs]) for (let i = 0; i < l.length; i++) l[i] = fix(l[i])
    },
    async create () {
      const d = pick(dirs)
      const id = nextId++
      const name = (d === '' ? '' : d + '/') + `f${id}`
      note(`c ${id}`)
      // Written under a temporary name and renamed: the final name shows only complete files.
      await fsp.writeFile(abs(name + '.tmp'), smallContent(id, Math.floor(rnd() * 60000)), { flag: 'wx' })
      await fsp.rename(abs(name + '.tmp'), abs(name))
      note(`d ${id}`)
      files.push(name)
    },
    async unlink () {
      const f = pick(rnd() < 0.9 ? files : bigs); if (f === undefined) return
      const head = Buffer.alloc(64)
      const fh = await fsp.open(abs(f), 'r')
      try { await fh.read(head, 0, 64, 0) } finally { await fh.close() }
      const m = /^(?:OTS1|BIG) (\d+)/.exec(head.toString('latin1'))
      if (m !== null) note(`u ${m[1]}`)
      await fsp.unlink(abs(f))
      for (const l of [files, bigs]) { const i = l.indexOf(f); if (i >= 0) l.splice(i, 1) }
    },
    async mkdir () {
      const d = pick(dirs)
      const name = (d === '' ? '' : d + '/') + 'D' + fresh()
      await fsp.mkdir(abs(name)); dirs.push(name)
    },
    async rmdir () {
      // Empty a small directory (journalled unlinks), then remove it.
      const d = pick(dirs.filter((x) => x !== '' && !dirs.some((y) => y.startsWith(x + '/')))); if (d === undefined) return
      const inside = files.filter((f) => f.startsWith(d + '/'))
      if (inside.length > 4 || bigs.some((f) => f.startsWith(d + '/'))) return
      for (const f of inside) {
        const m = /^OTS1 (\d+)/.exec((await fsp.readFile(abs(f))).toString('latin1'))
        if (m !== null) note(`u ${m[1]}`)
        await fsp.unlink(abs(f)); files.splice(files.indexOf(f), 1)
      }
      await fsp.rmdir(abs(d)); dirs.splice(dirs.indexOf(d), 1)
    }
  }
  const bigLoop = async () => {
    // Start with copy-ups of large files (append, rename), then keep mixing them in.
    for (;;) {
      const op = pick(['appendBig', 'appendBig', 'renameBig'])
      try { await ops[op](); okCount[op] = (okCount[op] ?? 0) + 1 } catch (e) { count(op, e); if (e.code === 'ENOTCONN' || e.code === 'ECONNABORTED') return }
    }
  }
  const smallLoop = async () => {
    for (;;) {
      const op = pick(['create', 'create', 'create', 'renameFile', 'renameFile', 'renameDir', 'unlink', 'mkdir', 'rmdir'])
      try { await ops[op](); okCount[op] = (okCount[op] ?? 0) + 1 } catch (e) { count(op, e); if (e.code === 'ENOTCONN' || e.code === 'ECONNABORTED') return }
    }
  }
  const report = () => process.stdout.write(JSON.stringify({ ok: okCount, err: errors }) + '\n')
  process.on('SIGTERM', () => { report(); process.exit(0) })
  await Promise.all([bigLoop(), smallLoop()])
  report()
}

// ------------------------------------------------------------ layers

async function writeBig (file, id, size) {
  const h = createHash('sha256')
  const fh = await fsp.open(file, 'wx')
  try {
    const head = Buffer.alloc(REC, ' ')
    head.write(`BIG ${id} ${size}\n`)
    h.update(head); await fh.write(head)
    const chunk = randomBytes(MiB)
    for (let off = REC, i = 0; off < size; i++) {
      const n = Math.min(MiB, size - off)
      chunk.writeUInt32LE(i, 0)
      const part = chunk.subarray(0, n)
      h.update(part); await fh.write(part)
      off += n
    }
  } finally { await fh.close() }
  return h.digest('hex')
}

async function buildLayers (root, rnd) {
  const l1 = path.join(root, 'l1')
  const l2 = path.join(root, 'l2')
  const lowerIds = new Set()
  const bigInfo = new Map()
  let id = 1
  const small = async (file) => {
    await fsp.writeFile(file, smallContent(id, Math.floor(rnd() * 20000))); lowerIds.add(id++)
  }
  for (const l of [l1, l2]) await fsp.mkdir(l)
  // Bottom layer: d0..d4 with subdirs, and the big files.
  for (let d = 0; d < 5; d++) {
    await fsp.mkdir(path.join(l2, `d${d}`, 's0'), { recursive: true })
    for (let f = 0; f < 4; f++) await small(path.join(l2, `d${d}`, `l2f${f}`))
    for (let f = 0; f < 2; f++) await small(path.join(l2, `d${d}`, 's0', `l2g${f}`))
  }
  await fsp.mkdir(path.join(l2, 'big'))
  await fsp.mkdir(path.join(l1, 'big'))
  const sizes = [64, 128, 192, 256]
  for (let i = 0; i < sizes.length; i++) {
    // Two in the bottom layer, two in the top one: copy-ups from both.
    const layer = i % 2 === 0 ? l2 : l1
    const size = sizes[i] * MiB
    const hash = await writeBig(path.join(layer, 'big', `big${i}`), id, size)
    bigInfo.set(id, { size, hash }); lowerIds.add(id++)
  }
  // Top layer: merges into d0..d2, hides d3/l2f0 (whiteout), makes d4 opaque, adds e0.
  for (let d = 0; d < 3; d++) {
    await fsp.mkdir(path.join(l1, `d${d}`, 's1'), { recursive: true })
    for (let f = 0; f < 3; f++) await small(path.join(l1, `d${d}`, `l1f${f}`))
    await small(path.join(l1, `d${d}`, 's1', 'l1g'))
  }
  await fsp.mkdir(path.join(l1, 'd3'))
  execFileSync('mknod', [path.join(l1, 'd3', 'l2f0'), 'c', '0', '0'])
  await fsp.mkdir(path.join(l1, 'd4'))
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(l1, 'd4')])
  await small(path.join(l1, 'd4', 'own'))
  await fsp.mkdir(path.join(l1, 'e0'))
  await small(path.join(l1, 'e0', 'only'))
  await fsp.symlink('../d0/l2f1', path.join(l1, 'e0', 'link'))
  // Ids hidden by the whiteout / the opaque dir are not visible to begin with.
  return { l1, l2, lowerIds, bigInfo, nextId: id }
}

/** Lower layer fingerprint: every entry's metadata; contents of files up to `fullLimit` bytes. */
async function fingerprint (roots, fullLimit) {
  const h = createHash('sha256')
  const walk = async (dir) => {
    const names = (await fsp.readdir(dir)).sort()
    for (const n of names) {
      const p = path.join(dir, n)
      const st = await fsp.lstat(p, { bigint: true })
      h.update(`${p} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino} ${st.rdev}\n`)
      if (st.isSymbolicLink()) h.update(await fsp.readlink(p))
      else if (st.isFile() && st.size <= BigInt(fullLimit)) {
        const fh = await fsp.open(p, fs.constants.O_RDONLY | fs.constants.O_NOATIME)
        try {
          for await (const c of fh.createReadStream({ highWaterMark: MiB })) h.update(c)
        } finally { await fh.close().catch(() => {}) }
      } else if (st.isDirectory()) await walk(p)
    }
  }
  for (const r of roots) { h.update(`${r} ${(await fsp.lstat(r, { bigint: true })).ctimeNs}\n`); await walk(r) }
  return h.digest('hex')
}

// ------------------------------------------------------------ mounts

function mountInfo (mp) {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'latin1').split('\n')
  let found
  for (const l of lines) {
    const f = l.split(' ')
    if (f[4] === mp) {
      const sep = f.indexOf('-', 6)
      found = { minor: Number(f[2].split(':')[1]), fstype: f[sep + 1] }
    }
  }
  return found
}

function ensureFusectl () {
  if (fs.readFileSync('/proc/self/mountinfo', 'latin1').includes(' /sys/fs/fuse/connections ')) return
  try { execFileSync('mount', ['-t', 'fusectl', 'fusectl', '/sys/fs/fuse/connections'], { stdio: 'ignore' }) } catch { /* best effort */ }
}

/** Aborts the FUSE connection and lazily unmounts whatever is at mp. */
function forceUnmount (mp) {
  for (let i = 0; i < 8; i++) {
    const m = mountInfo(mp)
    if (m === undefined) return
    if (m.fstype.startsWith('fuse')) {
      ensureFusectl()
      try { fs.writeFileSync(`/sys/fs/fuse/connections/${m.minor}/abort`, '1') } catch { /* gone already */ }
    }
    try { execFileSync('umount', ['-l', '-c', mp], { stdio: 'ignore', timeout: 10_000 }) } catch { /* next round */ }
  }
}

function alive (pid) { try { process.kill(pid, 0); return true } catch { return false } }

// ------------------------------------------------------------ main

async function main () {
  const kills = Number(arg('--kills', '200'))
  const seed = Number(arg('--seed', String(Date.now() % 100000)))
  const maxDelay = Number(arg('--max-delay', '1200'))
  const keep = process.argv.includes('--keep')
  const rnd = prng(seed)
  // Not under $TMPDIR/overlayts-test: the test helpers there delete the dirs of
  // exited processes, and a failed run keeps its dir for inspection.
  const base = path.join(os.tmpdir(), 'overlayts-crash')
  await fsp.mkdir(base, { recursive: true })
  const root = await fsp.mkdtemp(path.join(base, `${process.pid}-`))
  const u = path.join(root, 'u')
  const w = path.join(root, 'w')
  const m = path.join(root, 'm')
  for (const d of [u, w, m]) await fsp.mkdir(d)
  const say = (s) => process.stdout.write(s + '\n')
  say(`crash-loop: seed ${seed}, ${kills} kills, dir ${root}`)
  const t0 = Date.now()
  const layers = await buildLayers(root, rnd)
  const lowers = [layers.l1, layers.l2]
  const fullHash0 = await fingerprint(lowers, Number.MAX_SAFE_INTEGER)
  const quickHash0 = await fingerprint(lowers, MiB)
  say(`layers built and hashed in ${Date.now() - t0} ms`)
  const opts = `lowerdir=${layers.l1}:${layers.l2},upperdir=${u},workdir=${w}`

  let daemon
  let wk
  const cleanup = () => {
    // Every daemon this run started (the current one included), and the workload.
    for (const c of [wk, ...daemons]) if (c !== undefined && c.exitCode === null && c.signalCode === null) { try { c.kill('SIGKILL') } catch {} }
    forceUnmount(m)
  }
  process.on('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130) })

  let logN = 0
  const daemons = new Set()
  const startDaemon = async () => {
    const logFile = path.join(root, `log-${logN++}.json`)
    const child = spawn(process.execPath, [BIN, 'mount', '-f', '-o', opts, m, '--log-file', logFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    daemons.add(child)
    child.once('exit', () => daemons.delete(child))
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    const deadline = Date.now() + 30_000
    while (mountInfo(m)?.fstype !== 'fuse.overlayts') {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon exited before mounting: ${stderr}`)
      if (Date.now() > deadline) throw new Error('daemon did not mount in 30 s')
      await sleep(10)
    }
    return { child, logFile }
  }
  const waitLog = async (file, re, ms) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
      const hit = re.exec(text)
      if (hit) return hit[0]
      await sleep(25)
    }
    return undefined
  }

  // Expectations, reset whenever upper is reset.
  let journal
  let firstId = layers.nextId
  const visibleLower = new Set(layers.lowerIds)
  // Hidden in the lowers from the start: whiteout d3/l2f0 and the opaque d4 (l2's d4 files).
  const initial = await (async () => {
    const ids = new Set()
    const walk = async (dir) => {
      for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) await walk(p)
        else if (e.isFile()) ids.add(Number(/^(?:OTS1|BIG) (\d+)/.exec((await readHead(p)).toString('latin1'))[1]))
      }
    }
    const { child } = await startDaemon()
    daemon = child
    await walk(m)
    return ids
  })()
  for (const id of [...visibleLower]) if (!initial.has(id)) visibleLower.delete(id)
  let verifiedBig = new Map()
  let failed = 0
  let passed = 0
  let hitWork = 0
  const problems = []
  const errTotals = {}
  const okTotals = {}
  let resets = 0

  const newEpoch = () => {
    journal = path.join(root, `journal-${resets++}`)
    fs.writeFileSync(journal, '')
  }
  newEpoch()

  const verify = async (k) => {
    const bad = []
    // 1. workdir/work empty now that the daemon has mounted again.
    const left = await fsp.readdir(path.join(w, 'work')).catch((e) => [`(readdir: ${e.code})`])
    if (left.length > 0) bad.push(`workdir/work not empty after mount: ${left.slice(0, 5).join(' ')}`)
    // 2. the merged tree.
    const j = fs.readFileSync(journal, 'utf8').split('\n')
    const created = new Set(); const done = new Set(); const unlinked = new Set()
    for (const l of j) {
      const [op, id] = l.split(' ')
      if (op === 'c') created.add(Number(id)); else if (op === 'd') done.add(Number(id)); else if (op === 'u') unlinked.add(Number(id))
    }
    const seen = new Map()
    const walk = async (rel) => {
      const dir = path.join(m, rel)
      let entries
      try { entries = await fsp.readdir(dir, { withFileTypes: true }) } catch (e) { bad.push(`readdir /${rel}: ${e.code}`); return }
      for (const e of entries) {
        const r = rel === '' ? e.name : rel + '/' + e.name
        const p = path.join(m, r)
        let st
        try { st = await fsp.lstat(p, { bigint: true }) } catch (err) { bad.push(`lstat /${r} (listed by readdir): ${err.code}`); continue }
        if (e.name.startsWith('#ots') || e.name.startsWith('.wh.') || (st.isCharacterDevice() && st.rdev === 0n)) { bad.push(`marker visible: /${r}`); continue }
        if (st.isDirectory()) { await walk(r); continue }
        if (st.isSymbolicLink()) continue
        if (!st.isFile()) { bad.push(`unexpected type at /${r}`); continue }
        if (e.name.endsWith('.tmp')) continue // a create the crash interrupted: not a committed file
        let id
        const head = await readHead(p)
        if (head.subarray(0, 4).toString() === 'BIG ') {
          const mm = /^BIG (\d+) (\d+)\n/.exec(head.toString('latin1'))
          id = Number(mm?.[1])
          const info = layers.bigInfo.get(id)
          if (info === undefined) { bad.push(`/${r}: unknown big id ${mm?.[1]}`); continue }
          const size = Number(st.size)
          if (size < info.size || (size - info.size) % REC !== 0) { bad.push(`/${r}: big ${id} size ${size} is not lower size ${info.size} + whole records (partial copy-up or torn append)`); continue }
          const key = `${id} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`
          if (verifiedBig.get(id) !== key) {
            const why = await checkBig(p, info)
            if (why !== undefined) { bad.push(`/${r}: big ${id}: ${why}`); continue }
            verifiedBig.set(id, key)
          }
        } else {
          const data = await fsp.readFile(p)
          const c = checkSmall(data)
          if (!c.ok) { bad.push(`/${r}: ${c.why} (size ${data.length}, starts ${JSON.stringify(data.subarray(0, 24).toString('latin1'))})`); continue }
          id = c.id
          if (!visibleLower.has(id) && !created.has(id)) bad.push(`/${r}: id ${id} was never created`)
        }
        if (seen.has(id)) bad.push(`id ${id} visible twice: /${seen.get(id)} and /${r}`)
        seen.set(id, r)
      }
    }
    await walk('')
    for (const id of [...visibleLower, ...done]) {
      if (!seen.has(id) && !unlinked.has(id)) bad.push(`id ${id} is missing (never unlinked)`)
    }
    // 3. the lookup index, once the daemon says it is ready.
    const line = await waitLog(current.logFile, /lookup index (ready|failed|unusable)|index worker failed/, 60_000)
    if (line === undefined || line !== 'lookup index ready') bad.push(`lookup index not ready after remount: ${line ?? 'no message in 60 s'}`)
    try {
      await execFileP(process.execPath, [BIN, 'index', 'verify', '-o', `lowerdir=${layers.l1}:${layers.l2},workdir=${w}`], { timeout: 60_000 })
    } catch (e) { bad.push(`index verify failed: ${(e.stdout ?? '').toString().trim()} ${(e.stderr ?? '').toString().trim()}`) }
    // 4. the lowers.
    if (await fingerprint(lowers, MiB) !== quickHash0) bad.push('lower layers changed (metadata or small files)')
    if ((k % 50 === 0 || k === kills) && await fingerprint(lowers, Number.MAX_SAFE_INTEGER) !== fullHash0) bad.push('lower layers changed (full content hash)')
    return bad
  }

  let current = { child: daemon, logFile: path.join(root, 'log-0.json') }
  for (let k = 1; k <= kills; k++) {
    // Workload on the live mount, then SIGKILL the daemon after a random delay.
    const wkOut = []
    wk = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', '--merged', m, '--journal', journal,
      '--seed', String(Math.floor(rnd() * 1e9)), '--round', String(k), '--first-id', String(firstId)], { stdio: ['ignore', 'pipe', 'inherit'] })
    firstId += 100_000
    wk.stdout.on('data', (d) => wkOut.push(d))
    // Half the kills early (while the first copy-ups of big files run), half anywhere.
    const delay = Math.floor(rnd() * (rnd() < 0.5 ? maxDelay / 2 : maxDelay))
    await sleep(delay)
    current.child.kill('SIGKILL')
    await new Promise((resolve) => current.child.exitCode !== null || current.child.signalCode !== null ? resolve() : current.child.once('exit', resolve))
    // Mid-copy-up (or mid-whiteout) garbage in the work dir: the crash hit in the middle of something.
    try { if ((await fsp.readdir(path.join(w, 'work'))).length > 0) hitWork++ } catch {}
    // The workload goes before the lazy unmount: it works by path and would
    // otherwise go on in the bare mountpoint directory.
    wk.kill('SIGTERM')
    await new Promise((resolve) => {
      if (wk.exitCode !== null || wk.signalCode !== null) return resolve()
      const t = setTimeout(() => { wk.kill('SIGKILL') }, 2000)
      wk.once('exit', () => { clearTimeout(t); resolve() })
    })
    forceUnmount(m)
    const stray = await fsp.readdir(m)
    if (stray.length > 0) { problems.push(`kill ${k}: bare mountpoint not empty: ${stray.join(' ')}`); failed++; break }
    try {
      const r = JSON.parse(Buffer.concat(wkOut).toString().trim().split('\n').pop() || '{}')
      for (const [kk, v] of Object.entries(r.err ?? {})) errTotals[kk] = (errTotals[kk] ?? 0) + v
      for (const [kk, v] of Object.entries(r.ok ?? {})) okTotals[kk] = (okTotals[kk] ?? 0) + v
    } catch {}
    if (mountInfo(m) !== undefined) { problems.push(`kill ${k}: mount still there after abort + umount -l`); failed++; break }
    if (alive(current.child.pid)) { problems.push(`kill ${k}: daemon survived SIGKILL`); failed++; break }

    current = await startDaemon()
    const bad = await verify(k)
    if (bad.length === 0) passed++
    else {
      failed++
      problems.push(`kill ${k} (delay ${delay} ms): ${bad.slice(0, 8).join('; ')}`)
      say(`FAIL kill ${k} (delay ${delay} ms):\n  ${bad.slice(0, 20).join('\n  ')}`)
      if (process.argv.includes('--stop-on-fail')) break
      // Start over from a clean upper so one failure does not cascade.
    }
    if (k % 10 === 0) say(`${k} kills: ${passed} passed, ${failed} failed (${hitWork} left work-dir scratch, ${Math.round((Date.now() - t0) / 1000)} s)`)
    // Now and then start over from an empty upper, so that big files are in the lowers again (copy-ups).
    if (bad.length > 0 || rnd() < 0.5) {
      // Asynchronously: the daemon is our child, and a blocked event loop would leave it a zombie,
      // which `overlayts umount` (waiting for the pid to go) would wait on.
      await execFileP(process.execPath, [BIN, 'umount', m], { timeout: 60_000 })
      await fsp.rm(u, { recursive: true, force: true }); await fsp.mkdir(u)
      verifiedBig = new Map()
      newEpoch()
      current = await startDaemon()
    }
  }
  // Clean end: unmount through the CLI.
  try { await execFileP(process.execPath, [BIN, 'umount', m], { timeout: 60_000 }) } catch (e) { problems.push(`final umount failed: ${e.message}`); failed++ }
  forceUnmount(m)
  say(`operations completed before the kills: ${JSON.stringify(okTotals)}`)
  say(`worker errnos (ENOTCONN after the kill expected; ENOENT/EEXIST/ENOTEMPTY between the two loops expected): ${JSON.stringify(errTotals)}`)
  say(`kills that left scratch in workdir/work (crash mid copy-up/whiteout/rmdir): ${hitWork}; upper resets: ${resets - 1}`)
  for (const p of problems.slice(0, 20)) say(`problem: ${p}`)
  say(`${kills} kills: ${passed} passed, ${failed} failed`)
  if (!keep && failed === 0) await fsp.rm(root, { recursive: true, force: true })
  else say(`kept ${root}`)
  process.exitCode = failed === 0 && passed === kills ? 0 : 1
}

async function readHead (p) {
  const fh = await fsp.open(p, 'r')
  try {
    const b = Buffer.alloc(64)
    const { bytesRead } = await fh.read(b, 0, 64, 0)
    return b.subarray(0, bytesRead)
  } finally { await fh.close() }
}

async function checkBig (p, info) {
  const fh = await fsp.open(p, 'r')
  try {
    const h = createHash('sha256')
    const buf = Buffer.alloc(MiB)
    let off = 0
    while (off < info.size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(MiB, info.size - off), off)
      if (bytesRead === 0) return `short read at ${off}`
      h.update(buf.subarray(0, bytesRead)); off += bytesRead
    }
    if (h.digest('hex') !== info.hash) return 'lower part differs from the lower file (partial or corrupt copy-up)'
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, REC, off)
      if (bytesRead === 0) return undefined
      if (bytesRead !== REC || !checkRecord(buf.subarray(0, REC))) return `torn or corrupt record at ${off}`
      off += REC
    }
  } finally { await fh.close() }
}

if (process.argv.includes('--worker')) await worker()
else {
  try { await main() } catch (e) {
    process.stdout.write(`crash-loop: ${e.stack ?? e}\n`)
    process.exitCode = 1
  }
}
