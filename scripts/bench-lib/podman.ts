/**
 * The podman part of the bench (`--podman`, issue 12): the same podman
 * workloads on three storages of their own (podman-store.ts), overlay with
 * mount_program = overlayts, with mount_program = fuse-overlayfs, and the
 * native overlay driver (the kernel's overlayfs):
 *
 * - run:   `podman run --rm IMAGE true`, median of `runs`;
 * - run5:  five such runs at once, the time until all five are done;
 * - commit: `podman commit` of a container that wrote 200 files, deleted
 *   and renamed some (the time of the commit alone);
 * - build: `podman build --no-cache` of a 5-step Containerfile.
 *
 * overlayts runs as bin/overlayts-mount (one Node start-up per mount).
 * The kinds take turns at every sample, so load from elsewhere weighs on
 * them alike. The image is busybox-static, made on the spot.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { PodmanStore, StoreKind } from './podman-store.js'
import { busyboxTarball, makeStore, podmanOk, removeStore } from './podman-store.js'

export interface PodmanBenchOptions {
  readonly root: string
  readonly bin: string
  readonly runs: number
  readonly others: number
  readonly log: (s: string) => void
}

const KINDS: StoreKind[] = ['overlayts', 'fuse-overlayfs', 'native']
const METRICS = [
  { id: 'run', label: 'podman run --rm IMAGE true [s]' },
  { id: 'run5', label: 'five podman run at once, all done [s]' },
  { id: 'commit', label: 'podman commit (200 files written) [s]' },
  { id: 'build', label: 'podman build, 5 RUN steps, --no-cache [s]' }
] as const
type MetricId = typeof METRICS[number]['id']

export interface PodmanRun {
  samples: Record<StoreKind, Record<MetricId, number[]>>
  medians: Record<StoreKind, Partial<Record<MetricId, number>>>
  errors: string[]
}

const IMAGE = 'localhost/otsbench-base:1'
const CONTAINERFILE = [
  `FROM ${IMAGE}`,
  'RUN echo one > /one && mkdir /data',
  'RUN for i in $(seq 1 300); do echo $i > /data/f$i; done',
  'RUN rm /data/f1 /bin/vi && mv /data/f2 /data/g2',
  'RUN cp -a /bin /bin2',
  'RUN find / -xdev -type f | wc -l > /count',
  ''
].join('\n')
const WRITER = 'mkdir /w && for i in $(seq 1 200); do echo $i > /w/f$i; done && rm /bin/vi && mv /etc/passwd /etc/passwd.old'

const median = (xs: number[]): number | undefined => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export async function runPodmanBench (o: PodmanBenchOptions): Promise<PodmanRun> {
  const dir = path.join(o.root, 'podman')
  fs.mkdirSync(dir, { recursive: true })
  const tar = busyboxTarball(dir)
  const ctx = path.join(dir, 'context')
  fs.mkdirSync(ctx)
  fs.writeFileSync(path.join(ctx, 'Containerfile'), CONTAINERFILE)
  const stores = new Map<StoreKind, PodmanStore>()
  const samples = Object.fromEntries(KINDS.map((k) => [k, { run: [], run5: [], commit: [], build: [] }])) as unknown as PodmanRun['samples']
  const errors: string[] = []
  const attempt = async (kind: StoreKind, what: string, fn: () => Promise<void>): Promise<void> => {
    try { await fn() } catch (e) { if (errors.length < 12) errors.push(`${kind} ${what}: ${(e as Error).message}`) }
  }
  try {
    for (const kind of KINDS) {
      // As the README recommends for podman: the one-Node-start-up launcher.
      const store = makeStore(path.join(dir, kind), kind, path.join(path.dirname(o.bin), 'overlayts-mount'))
      stores.set(kind, store)
      await podmanOk(store, ['import', '-q', tar, IMAGE])
      await attempt(kind, 'warm-up run', async () => { await podmanOk(store, ['run', '--rm', IMAGE, 'true']) })
    }
    for (let i = 0; i < o.runs; i++) {
      for (const kind of KINDS) {
        await attempt(kind, 'run', async () => { samples[kind].run.push((await podmanOk(stores.get(kind)!, ['run', '--rm', IMAGE, 'true'])).ms / 1000) })
      }
    }
    o.log(`bench: podman: ${o.runs} runs each`)
    for (let i = 0; i < o.others; i++) {
      for (const kind of KINDS) {
        const store = stores.get(kind)!
        await attempt(kind, 'run5', async () => {
          const t0 = process.hrtime.bigint()
          await Promise.all([0, 1, 2, 3, 4].map(() => podmanOk(store, ['run', '--rm', IMAGE, 'true'])))
          samples[kind].run5.push(Number(process.hrtime.bigint() - t0) / 1e9)
        })
        await attempt(kind, 'commit', async () => {
          const name = `otsbench-c${i}`
          await podmanOk(store, ['run', '--name', name, IMAGE, 'sh', '-c', WRITER])
          try {
            samples[kind].commit.push((await podmanOk(store, ['commit', '-q', name, `localhost/otsbench-commit:${i}`])).ms / 1000)
          } finally {
            await podmanOk(store, ['rm', '-f', name])
          }
        })
        await attempt(kind, 'build', async () => {
          samples[kind].build.push((await podmanOk(store, ['build', '-q', '--no-cache', '--network', 'none', '-t', `localhost/otsbench-build:${i}`, ctx], 600_000)).ms / 1000)
        })
      }
      o.log(`bench: podman: sample ${i + 1}/${o.others} of run5, commit, build`)
    }
  } finally {
    for (const store of stores.values()) await removeStore(store)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const medians = Object.fromEntries(KINDS.map((k) => [k, Object.fromEntries(METRICS.map((m) => [m.id, median(samples[k][m.id])]))])) as PodmanRun['medians']
  return { samples, medians, errors }
}

export function podmanTable (r: PodmanRun): string {
  const f = (v: number | undefined): string => v === undefined ? '-' : v.toFixed(2)
  const ratio = (a: number | undefined, b: number | undefined): string => a === undefined || b === undefined || b === 0 ? '-' : (a / b).toFixed(2)
  const head = ['podman (median)', 'overlayts', 'fuse-ovl', 'native', 'ots/fo', 'ots/nat']
  const body = METRICS.map((m) => {
    const [a, b, c] = KINDS.map((k) => r.medians[k][m.id])
    return [`${m.label.replace(' [s]', '')} [s]`, f(a), f(b), f(c), ratio(a, b), ratio(a, c)]
  })
  const w = head.map((_h, i) => Math.max(...[head, ...body].map((x) => x[i]!.length)))
  const line = (x: string[]): string => x[0]!.padEnd(w[0]!) + ' | ' + x.slice(1).map((v, i) => v.padStart(w[i + 1]!)).join(' ')
  const n = (id: MetricId): number => r.samples.overlayts[id].length
  return [
    `podman ${'(busybox-static image made on the spot; runc; samples: run ' + n('run') + ', run5/commit/build ' + n('build') + ', interleaved)'}`,
    line(head), '-'.repeat(w[0]!) + '-+-' + w.slice(1).map((x) => '-'.repeat(x)).join('-'), ...body.map(line),
    ...r.errors.map((e) => `  ERROR ${e}`)
  ].join('\n')
}
