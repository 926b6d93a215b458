// Side by side with the kernel: one layer stack built twice, the kernel's
// overlayfs (redirect_dir=on) mounted on one copy and overlayts on the other,
// so a test can run the same steps on both merged dirs and compare what each
// answers, then compare the uppers. Every mount is unmounted in teardown.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { buildLayer, buildStack, type LayerForm, type StackSpec } from './layers.js'
import { mountKernel, mountOverlayts, type MountHandle } from './mounts.js'
import { tmpDir } from './tmp.js'

export interface Side {
  readonly lowers: string[]
  readonly upper: string
  readonly work: string
  readonly merged: string
}

export interface Pair {
  readonly kernel: Side
  readonly overlayts: Side
  /** Unmounts both (the uppers are final then). */
  unmount (): Promise<void>
  /** Unmounts overlayts (if mounted) and mounts it again on the same layers. */
  remountOverlayts (extra?: string[]): Promise<void>
}

export interface PairOptions {
  readonly form?: LayerForm
  /** Runs on each copy's lower dirs (top first) and side after they are built, before anything is mounted. */
  readonly prepare?: (lowers: string[], side: Side) => Promise<void> | void
  /** Extra arguments for `overlayts mount` (e.g. ['-o', 'whiteouts=kernel']). */
  readonly overlaytsExtra?: string[]
  /** Kernel mount options besides redirect_dir=on. */
  readonly kernelExtra?: string[]
  /** The overlayts copy's form of each layer (top first), when not all `form`; the kernel's copy is all kernel form. */
  readonly forms?: LayerForm[]
}

export async function mountPair (t: Test, label: string, spec: StackSpec, opts: PairOptions = {}): Promise<Pair> {
  const tmp = await tmpDir(t, label)
  const build = async (name: string, s: StackSpec, forms?: LayerForm[]): Promise<Side> => {
    const dir = join(tmp, name)
    const lowers = forms === undefined
      ? (await buildStack(join(dir, 'layers'), s, { form: opts.form ?? 'kernel' })).lowers
      : await Promise.all(s.layers.map(async (l, i) => {
        const d = join(dir, 'layers', `${String(i).padStart(2, '0')}-${forms[i] ?? 'kernel'}`)
        await buildLayer(d, l, forms[i] ?? 'kernel')
        return d
      }))
    const side = { lowers, upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') }
    for (const d of [side.upper, side.work, side.merged]) await mkdir(d, { mode: 0o755 })
    await opts.prepare?.(lowers, side)
    return side
  }
  const kernel = await build('k', spec)
  const overlayts = await build('o', spec, opts.forms)
  const k = await mountKernel(t, { lower: kernel.lowers, upper: kernel.upper, work: kernel.work, merged: kernel.merged, redirectDir: true, extra: opts.kernelExtra ?? [] })
  let o: MountHandle | undefined
  const mountO = async (extra: string[]): Promise<void> => {
    o = await mountOverlayts(t, { lower: overlayts.lowers, upper: overlayts.upper, work: overlayts.work, merged: overlayts.merged, extra })
  }
  await mountO(opts.overlaytsExtra ?? [])
  return {
    kernel,
    overlayts,
    async unmount () {
      await k.unmount()
      await o?.unmount()
    },
    async remountOverlayts (extra = opts.overlaytsExtra ?? []) {
      await o?.unmount()
      await mountO(extra)
    }
  }
}

/** Runs `fn` and answers 'ok' plus its value, or the errno code it failed with. */
export function attempt (fn: () => unknown): string {
  try {
    const v = fn()
    return v === undefined ? 'ok' : `ok ${String(v)}`
  } catch (e) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    throw e
  }
}

/**
 * The Python counterpart of `attempt`, for scripts run in each merged dir:
 * step(what, fn) appends "what: ok [json value]" or "what: ERRNO" to `out`.
 * Needs `errno` and `json` imported.
 */
export const PY_STEP = String.raw`out = []
def step(what, fn):
    try:
        r = fn()
        out.append(what + ': ok' + ('' if r is None else ' ' + json.dumps(r)))
    except OSError as e:
        out.append(what + ': ' + errno.errorcode[e.errno])`
