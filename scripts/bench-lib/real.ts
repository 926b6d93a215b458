/**
 * The benchmark's "real work" (issue 9): an image layer holding a real
 * node_modules tree under a small top layer, and the commands a container
 * runs over it. Building the layers and running one command live here; the
 * mounting stays in bench.ts (it owns the mount table and the watchdog).
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

export interface RealCommand {
  /** Short id: find | du | grep | tar. */
  readonly id: string
  /** What the table prints. */
  readonly label: string
  readonly argv: readonly string[]
  /** Exit statuses that mean success (grep -l: 0 found, 1 nothing found). */
  readonly okStatus: readonly number[]
}

export const REAL_COMMANDS: readonly RealCommand[] = [
  { id: 'find', label: "find . -name '*.js'", argv: ['find', '.', '-name', '*.js'], okStatus: [0] },
  { id: 'du', label: 'du -s .', argv: ['du', '-s', '.'], okStatus: [0] },
  { id: 'grep', label: 'grep -rl fuse --include=*.js .', argv: ['grep', '-rl', 'fuse', '--include=*.js', '.'], okStatus: [0, 1] },
  // GNU tar notices an archive that is /dev/null (even as stdout) and then
  // skips reading file data; through a pipe it has to read every byte.
  { id: 'tar', label: 'tar -cf - . | cat > /dev/null', argv: ['sh', '-c', 'tar -cf - . | cat > /dev/null'], okStatus: [0] }
]
/** --quick: a metadata walk and a full data read. */
export const REAL_QUICK = ['find', 'tar']

export interface RealLayers {
  /** The stack root (upper/work/mountpoints go under it). */
  readonly dir: string
  /** Lower layers, top first. */
  readonly lowers: string[]
  readonly entries: number
  readonly bytes: number
  readonly copySeconds: number
  /** What the top layer does to the image. */
  readonly top: string[]
  readonly notes: string[]
}

function walk (dir: string): { entries: number, bytes: number } {
  let entries = 0; let bytes = 0
  const stack = [dir]
  while (stack.length > 0) {
    const d = stack.pop()!
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      entries++
      const p = path.join(d, e.name)
      if (e.isDirectory()) stack.push(p)
      else if (e.isFile()) bytes += fs.lstatSync(p).size
    }
  }
  return { entries, bytes }
}

/**
 * l1 (the image): a `cp -a` of src as l1/node_modules. l0 (the top): a small
 * app dir, one file added to node_modules, one package whited out (a 0/0 char
 * device, as the kernel writes them) and one package made opaque
 * (trusted.overlay.opaque=y) with a file of its own.
 */
export function buildRealLayers (root: string, src: string): RealLayers {
  const dir = path.join(root, 'real')
  const l0 = path.join(dir, 'l0'); const l1 = path.join(dir, 'l1')
  fs.mkdirSync(l1, { recursive: true })
  fs.mkdirSync(l0, { recursive: true })
  const notes: string[] = []
  const t0 = Date.now()
  const cp = spawnSync('cp', ['-a', src, path.join(l1, 'node_modules')], { encoding: 'utf8', timeout: 900_000 })
  if (cp.status !== 0) throw new Error(`cp -a ${src}: ${(cp.stderr ?? '').trim() || cp.error?.message || `status ${cp.status}`}`)
  const copySeconds = (Date.now() - t0) / 1000
  const { entries, bytes } = walk(l1)

  const top: string[] = []
  fs.mkdirSync(path.join(l0, 'app'))
  fs.writeFileSync(path.join(l0, 'app', 'package.json'), '{ "name": "app", "version": "1.0.0", "main": "server.js" }\n')
  fs.writeFileSync(path.join(l0, 'app', 'server.js'), "'use strict'\n// served over fuse\nconsole.log('hello')\n")
  fs.writeFileSync(path.join(l0, 'app', 'README'), 'top layer\n')
  fs.mkdirSync(path.join(l0, 'node_modules'))
  fs.writeFileSync(path.join(l0, 'node_modules', '.top-layer.js'), '// added by the top layer\n')
  top.push('3 files in app/, node_modules/.top-layer.js')
  // Packages to white out and to make opaque: plain dirs a third and two thirds through the sorted list.
  const pkgs = fs.readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !e.name.startsWith('@')).map((e) => e.name).sort()
  if (pkgs.length >= 2) {
    const wh = pkgs[Math.floor(pkgs.length / 3)]!
    const op = pkgs[Math.floor(pkgs.length * 2 / 3)]!
    const mk = spawnSync('mknod', [path.join(l0, 'node_modules', wh), 'c', '0', '0'], { encoding: 'utf8' })
    if (mk.status === 0) top.push(`whiteout node_modules/${wh}`)
    else notes.push(`no whiteout: mknod: ${(mk.stderr ?? '').trim() || mk.error?.message}`)
    const od = path.join(l0, 'node_modules', op)
    fs.mkdirSync(od)
    fs.writeFileSync(path.join(od, 'package.json'), `{ "name": "${op}", "version": "0.0.0-top" }\n`)
    fs.writeFileSync(path.join(od, 'index.js'), 'module.exports = {}\n')
    const sx = spawnSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', od], { encoding: 'utf8' })
    if (sx.status === 0) top.push(`opaque node_modules/${op}/ (2 files)`)
    else notes.push(`no opaque dir: setfattr: ${(sx.stderr ?? '').trim() || sx.error?.message}`)
  } else notes.push('fewer than 2 packages in the source: no whiteout, no opaque dir')
  return { dir, lowers: [l0, l1], entries, bytes, copySeconds, top, notes }
}

export interface CommandResult { seconds: number, status: number | null, error?: string }

/** One command with cwd at the mount, stdout to /dev/null; stderr kept for the error text. */
export function runRealCommand (cmd: RealCommand, cwd: string, timeoutMs: number): CommandResult {
  const devnull = fs.openSync('/dev/null', 'w')
  try {
    const t0 = process.hrtime.bigint()
    const r = spawnSync(cmd.argv[0]!, cmd.argv.slice(1), { cwd, stdio: ['ignore', devnull, 'pipe'], timeout: timeoutMs, maxBuffer: 16 << 20 })
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const res: CommandResult = { seconds, status: r.status }
    if (r.error !== undefined || r.status === null || !cmd.okStatus.includes(r.status)) {
      const err = (r.stderr?.toString() ?? '').trim().split('\n')
      res.error = `${cmd.id}: ${r.error?.message ?? (r.status === null ? `killed by ${r.signal}` : `exit ${r.status}`)}` +
        (err[0] ? `: ${err.slice(0, 3).join(' | ')}${err.length > 3 ? ` (+${err.length - 3} lines)` : ''}` : '')
    }
    return res
  } finally { fs.closeSync(devnull) }
}

/** Names under cwd, untimed (a sanity check that every filesystem shows the same tree). */
export function countEntries (cwd: string): number | string {
  const r = spawnSync('find', ['.', '-mindepth', '1', '-printf', 'x'], { cwd, timeout: 300_000, maxBuffer: 64 << 20, encoding: 'latin1' })
  if (r.status !== 0) return `find: ${r.error?.message ?? (r.stderr ?? '').trim().split('\n')[0]}`
  return r.stdout.length
}
