/**
 * A podman storage of its own, for the podman bench and the podman test
 * (issue 12): a graphroot and runroot in a scratch directory, a
 * storage.conf naming the overlay driver (natively, or with a
 * mount_program: overlayts or fuse-overlayfs) and a containers.conf with
 * what this kind of VM needs (runc, cgroupfs, lower ulimits, no network, no
 * events), passed through CONTAINERS_STORAGE_CONF and CONTAINERS_CONF. The
 * machine's own podman configuration is never read or touched.
 *
 * The image is made on the spot from busybox-static: a rootfs tarball of
 * /bin/busybox and its applet links, `podman import`ed. No registry.
 *
 * removeStore() ends everything a store left: containers, images, the
 * mounts podman keeps under the graphroot (its overlay bind mount, the
 * containers' merged dirs, FUSE daemons) and the scratch directory.
 */
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { MountInfo } from './mounts.js'
import { mountInfo } from './mounts.js'

export type StoreKind = 'overlayts' | 'fuse-overlayfs' | 'native'

export interface PodmanStore {
  readonly kind: StoreKind
  readonly dir: string
  readonly graphroot: string
  readonly env: NodeJS.ProcessEnv
  /** Rootless: podman runs as this uid (and gid), through setpriv. */
  readonly uid: number | undefined
}

export interface PodmanResult { code: number | null, stdout: string, stderr: string, ms: number }

/** runc refuses the default rlimits (nproc, nofile) here; these are within the VM's hard limits. */
const ULIMITS = ['nofile=1024:1024', 'nproc=1024:1024']

/**
 * A store in dir. With `uid`, podman runs rootless as that user (its own
 * user namespace; with no /etc/subuid range for the user, podman maps that
 * one id, enough for an image whose files all belong to root); the store
 * belongs to the user, and HOME and XDG_RUNTIME_DIR point into it.
 */
export function makeStore (dir: string, kind: StoreKind, overlaytsBin: string, mountOpts: string[] = [], uid?: number): PodmanStore {
  const graphroot = path.join(dir, 'graph')
  const runroot = path.join(dir, 'run')
  const tmp = path.join(dir, 'tmp')
  const xdg = path.join(dir, 'xdg')
  for (const d of [graphroot, runroot, tmp, xdg]) fs.mkdirSync(d, { recursive: true, mode: 0o700 })
  const program = kind === 'overlayts' ? overlaytsBin : kind === 'fuse-overlayfs' ? '/usr/bin/fuse-overlayfs' : undefined
  const q = (s: string): string => JSON.stringify(s)
  fs.writeFileSync(path.join(dir, 'storage.conf'), [
    '[storage]', 'driver = "overlay"', `graphroot = ${q(graphroot)}`, `runroot = ${q(runroot)}`,
    '[storage.options.overlay]',
    ...(program !== undefined ? [`mount_program = ${q(program)}`] : []),
    ...(mountOpts.length > 0 ? [`mountopt = ${q(mountOpts.join(','))}`] : []),
    ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'containers.conf'), [
    '[containers]', `default_ulimits = [${ULIMITS.map(q).join(', ')}]`, 'netns = "none"',
    '[engine]', 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "none"', `tmp_dir = ${q(tmp)}`,
    '[network]', `network_config_dir = ${q(path.join(dir, 'networks'))}`,
    ''
  ].join('\n'))
  const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf'), CONTAINERS_CONF: path.join(dir, 'containers.conf'), TMPDIR: tmp }
  if (uid !== undefined) {
    Object.assign(env, { HOME: dir, XDG_RUNTIME_DIR: xdg, USER: `uid${uid}` })
    spawnSync('chown', ['-R', `${uid}:${uid}`, dir])
    fs.chmodSync(dir, 0o755)
  }
  return { kind, dir, graphroot, env, uid }
}

export function podman (store: PodmanStore, args: string[], timeoutMs = 120_000, input?: string): Promise<PodmanResult> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint()
    const [cmd, argv] = store.uid === undefined
      ? ['podman', args]
      : ['setpriv', [`--reuid=${store.uid}`, `--regid=${store.uid}`, '--clear-groups', 'podman', ...args]]
    const child = spawn(cmd, argv, { env: store.env, cwd: store.dir, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''; let stderr = ''
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString() })
    if (input !== undefined) child.stdin!.end(input)
    const timer = setTimeout(() => { stderr += `\n(killed after ${timeoutMs} ms)`; child.kill('SIGKILL') }, timeoutMs)
    child.on('error', (e) => { stderr += e.message })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 })
    })
  })
}

/** podman, failing with its stderr on a non-zero exit. */
export async function podmanOk (store: PodmanStore, args: string[], timeoutMs?: number, input?: string): Promise<PodmanResult> {
  const r = await podman(store, args, timeoutMs, input)
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} (${store.kind}): exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  return r
}

/** A rootfs tarball of busybox-static and its applet links (a tiny image, no registry). */
export function busyboxTarball (dir: string): string {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p))
  if (busybox === undefined) throw new Error('busybox-static is not installed (/bin/busybox)')
  const rootfs = path.join(dir, 'rootfs')
  for (const d of ['bin', 'etc', 'tmp', 'root']) fs.mkdirSync(path.join(rootfs, d), { recursive: true })
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'))
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755)
  const list = spawnSync(busybox, ['--list'], { encoding: 'utf8' })
  for (const applet of list.stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox')) {
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet))
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\n')
  const tar = path.join(dir, 'rootfs.tar')
  const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tar, '.'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`)
  fs.rmSync(rootfs, { recursive: true, force: true })
  return tar
}

function mountsUnder (dir: string): MountInfo[] {
  return mountInfo()
    .filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(dir + '/'))
    .reverse().sort((a, b) => b.mountpoint.length - a.mountpoint.length)
}

/** Unmounts whatever is mounted under dir, deepest first, aborting FUSE connections that do not let go. */
export function unmountUnder (dir: string): void {
  for (let round = 0; round < 3; round++) {
    const left = mountsUnder(dir)
    if (left.length === 0) return
    for (const m of left) {
      if (spawnSync('umount', [m.mountpoint], { stdio: 'ignore', timeout: 20_000 }).status === 0) continue
      if (m.fstype.startsWith('fuse')) {
        try { fs.writeFileSync(`/sys/fs/fuse/connections/${m.dev.split(':')[1]}/abort`, '1') } catch { /* not live */ }
      }
      spawnSync('umount', ['-l', m.mountpoint], { stdio: 'ignore', timeout: 20_000 })
    }
  }
}

/**
 * Processes working in a store: a command line naming a path under dir (a
 * FUSE daemon), or podman's configuration under dir in the environment
 * (rootless podman's pause process, which holds its user namespace).
 */
function processesOf (dir: string): number[] {
  const out: number[] = []
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue
    try {
      const named = (file: string): boolean => fs.readFileSync(`/proc/${e}/${file}`, 'utf8').split('\0').some((a) => a.includes(dir + '/'))
      if (named('cmdline') || named('environ')) out.push(Number(e))
    } catch { /* gone, or not ours to read */ }
  }
  return out
}

/**
 * Removes every container and image of the store, its mounts and its
 * directory. (Not `podman system reset`: it also removes network
 * definitions, and those are the machine's unless configured away.)
 */
export async function removeStore (store: PodmanStore): Promise<void> {
  await podman(store, ['rm', '-a', '-f', '-t', '0'], 60_000)
  await podman(store, ['rmi', '-a', '-f'], 60_000)
  unmountUnder(store.dir)
  // Rootless podman leaves a pause process holding its user namespace, and a
  // FUSE daemon in that namespace's mounts would keep it alive: end every
  // process still working in the store.
  for (const pid of processesOf(store.dir)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  fs.rmSync(store.dir, { recursive: true, force: true })
}
