/**
 * `overlayts which [-o lowerdir=...] [--json] PATH...`: where each merged
 * path comes from (src/layers/which.ts). With -o the PATHs are merged paths;
 * without, paths under live overlay mounts, each looked up in its mount's
 * layers.
 */
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { displayPath, utf8ToBytes } from '../overlay/bytes.js'
import { readMountInfo } from '../layers/live-mount.js'
import { layerRef, writeJson } from '../layers/report.js'
import type { StackSource } from '../layers/stack-source.js'
import type { Copy, Which } from '../layers/which.js'
import { WhichExplainer } from '../layers/which.js'
import { humanBytes } from './human.js'
import { WHICH_HELP } from './layer-help.js'
import { OptionError } from '../mount-config/mount-options.js'
import { openToolStack, STACK_FLAGS } from './stack-args.js'

/** A merged path given on the command line, as a byte string without the leading '/'; '..' refused. */
function mergedRel (given: string): string {
  const parts = utf8ToBytes(given).split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) throw new OptionError(`${given}: '..' is not a path in the merged view`)
  return parts.join('/')
}

/** The overlay mount a path lies under: the longest mountpoint that is a prefix of it. */
function mountOf (abs: string): string {
  let best: string | undefined
  for (const m of readMountInfo()) {
    if (m.fstype !== 'overlay' && !m.fstype.startsWith('fuse')) continue
    if ((abs === m.mountPoint || abs.startsWith(m.mountPoint === '/' ? '/' : m.mountPoint + '/')) && (best === undefined || m.mountPoint.length > best.length)) best = m.mountPoint
  }
  if (best === undefined) throw new OptionError(`${abs}: not under an overlay mount (give the layers with -o to look up merged paths)`)
  return best
}

function copyText (c: Copy): string {
  // A directory's own size says nothing of what it holds: not shown.
  return `${c.layer.label} ${displayPath(c.path)} (${c.type === 'dir' ? 'dir' : `${c.type}, ${humanBytes(c.size)}`})`
}

function whichText (w: Which): string {
  const p = displayPath(w.path)
  if (!w.present) {
    const by = w.by === undefined ? '' : ` in ${w.by.layer.label} (${displayPath(w.by.path)}${w.by.form === undefined ? '' : `, ${w.by.form} form`})`
    const why = w.reason === 'whiteout' ? `whited out${by}` : w.reason === 'opaque' ? `under an opaque directory${by}` : w.reason === 'not-a-directory' ? `a parent is not a directory${by}` : 'in no layer'
    const missing = w.missing === w.path ? '' : ` (${displayPath(w.missing)} is missing)`
    const hidden = w.hidden.map((c) => `\n  hides ${copyText(c)}`).join('')
    return `${p}: absent${missing}: ${why}${hidden}\n`
  }
  let out = `${p}: ${w.type}${w.type === 'dir' ? '' : `, ${humanBytes(w.size)}`}, from ${w.layer.label} (${displayPath(w.layerPath)})\n`
  for (const part of w.parts ?? []) {
    out += `  merges ${part.layer.label} ${displayPath(part.path)}${part.opaque ? ' (opaque)' : ''}${part.redirect === undefined ? '' : ` (redirect ${displayPath(part.redirect)})`}\n`
  }
  for (const c of w.shadows) out += `  ${w.type === 'dir' ? 'cuts off' : 'shadows'} ${copyText(c)}\n`
  return out
}

function whichJson (w: Which): object {
  const copy = (c: Copy): object => ({ layer: c.layer.label, path: displayPath(c.path), type: c.type, size: c.size })
  if (!w.present) {
    return { path: displayPath(w.path), present: false, missing: displayPath(w.missing), reason: w.reason, by: w.by === undefined ? null : { layer: w.by.layer.label, path: displayPath(w.by.path), form: w.by.form ?? null }, hidden: w.hidden.map(copy) }
  }
  return {
    path: displayPath(w.path),
    present: true,
    type: w.type,
    layer: layerRef(w.layer),
    layerPath: displayPath(w.layerPath),
    size: w.size,
    shadows: w.shadows.map(copy),
    parts: w.parts === undefined ? null : w.parts.map((p) => ({ layer: p.layer.label, path: displayPath(p.path), opaque: p.opaque, redirect: p.redirect === undefined ? null : displayPath(p.redirect) }))
  }
}

export async function whichCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: STACK_FLAGS, allowPositionals: true })
  if (values.help === true) {
    process.stdout.write(`usage: overlayts which [-o lowerdir=L1:L2[,upperdir=U]] [--json] PATH...\n\n${WHICH_HELP}\n`)
    return 0
  }
  if (positionals.length === 0) throw new OptionError('usage: overlayts which [-o lowerdir=...] PATH...')
  const json = values.json === true
  const sources = new Map<string, { src: StackSource, explainer: WhichExplainer }>()
  const results: Which[] = []
  try {
    for (const given of positionals) {
      let key: string
      let rel: string
      if (values.o !== undefined) {
        key = ''
        rel = mergedRel(given)
      } else {
        const abs = path.resolve(given)
        key = mountOf(abs)
        rel = mergedRel(path.relative(key, abs))
      }
      let one = sources.get(key)
      if (one === undefined) {
        const src = await openToolStack(key === '' ? { o: values.o, json } : { merged: key, json })
        one = { src, explainer: new WhichExplainer(src) }
        sources.set(key, one)
      }
      results.push(one.explainer.explain(rel))
    }
  } finally {
    for (const s of sources.values()) s.src.close()
  }
  if (json) writeJson(results.map(whichJson))
  else for (const w of results) process.stdout.write(whichText(w))
  return results.every((w) => w.present) ? 0 : 1
}
