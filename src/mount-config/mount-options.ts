/**
 * The -o option string, parsed as the kernel's overlayfs and mount(8) write
 * it: comma-separated, `\,` a literal comma, `\:` a literal colon inside a
 * lowerdir list, `\\` a backslash. Relative layer paths are resolved against
 * the working directory at mount time. The generic flags mount(8) and fstab
 * add are accepted; anything unknown is an error, never silently ignored.
 */
import * as path from 'node:path'
import type { WhiteoutOption } from '../overlay/layer-form.js'
import { WHITEOUT_OPTIONS } from '../overlay/layer-form.js'
import type { UpperFormOption } from '../overlay/upper-form.js'
import { UPPER_FORM_OPTIONS } from '../overlay/upper-form.js'

export class OptionError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'OptionError'
  }
}

export interface MountOptions {
  lowers: string[]
  upper: string | undefined
  workdir: string | undefined
  /** 'off', or a path for the lookup index database; undefined = default place. */
  index: string | undefined
  readOnly: boolean
  /** Seconds the kernel may cache entries and attributes; undefined: the transport's default (src/fuse/mount.ts). */
  attrTimeout: number | undefined
  /** 'kernel': overlayts' own FUSE protocol server (default); 'fuse-native': the libfuse 2 binding. */
  transport: Transport
  /** Hand the kernel backing files at open (kernel transport), where the kernel allows it. */
  passthrough: boolean
  /**
   * FUSE over io_uring (kernel transport; src/fuse/kernel/session.ts): off by
   * default, since it measured no faster than device reads here (README,
   * Performance); auto takes it where the kernel offers it, on does too and
   * warns where it cannot.
   */
  uring: UringOption
  /** How the lowers' whiteouts are read: `.wh.*` files as OCI markers or as plain names (src/overlay/layer-form.ts). */
  whiteouts: WhiteoutOption
  /**
   * The form of the upper's markers (src/overlay/upper-form.ts): `userxattr`
   * (the kernel's option of that name), `upper_form=`, or `auto`: probed at mount.
   */
  upperForm: UpperFormOption
  /** `redirect_dir=` as given (the kernel refuses `on` with userxattr; so does overlayts). */
  redirectDir: string | undefined
}

export type Transport = 'kernel' | 'fuse-native'
export type UringOption = 'auto' | 'on' | 'off'
const URING_OPTIONS: readonly UringOption[] = ['auto', 'on', 'off']

/** Flags mount(8), fstab and FUSE helpers may pass; they change nothing here. */
const GENERIC_FLAGS = new Set([
  'rw', 'dev', 'nodev', 'suid', 'nosuid', 'exec', 'noexec', 'atime', 'noatime', 'relatime', 'norelatime',
  'strictatime', 'nostrictatime', 'diratime', 'nodiratime', 'lazytime', 'nolazytime', 'sync', 'async',
  'auto', 'noauto', 'user', 'nouser', 'users', 'defaults', '_netdev', 'nofail', 'silent', 'loud',
  'allow_other', 'allow_root', 'default_permissions', 'dirsync', 'mand', 'nomand', 'iversion', 'noiversion'
])

/** Kernel overlayfs options accepted for compatibility, with the values overlayts implements. */
const KERNEL_COMPAT: Record<string, ReadonlySet<string>> = {
  redirect_dir: new Set(['on', 'follow', 'nofollow', 'off']),
  index: new Set(), // handled separately
  xino: new Set(['on', 'auto', 'off']),
  metacopy: new Set(['off']),
  nfs_export: new Set(['off']),
  uuid: new Set(['on', 'off', 'null', 'auto']),
  volatile: new Set()
}

/** Splits on unescaped `sep`, keeping other escapes for the next stage. */
export function splitEscaped (s: string, sep: string): string[] {
  const out: string[] = []
  let cur = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]
      i++
    } else if (c === sep) {
      out.push(cur)
      cur = ''
    } else {
      cur += c
    }
  }
  out.push(cur)
  return out
}

export function unescape (s: string): string {
  return s.replace(/\\(.)/g, '$1')
}

function layerPath (key: string, raw: string, cwd: string): string {
  const p = unescape(raw)
  if (p === '') throw new OptionError(`${key}: empty path`)
  if (/[\n\0]/.test(p)) throw new OptionError(`${key}: path contains a newline or NUL`)
  return path.resolve(cwd, p)
}

/** Parses one or more -o strings (mount(8) may pass several). */
export function parseMountOptions (optionStrings: readonly string[], cwd = process.cwd()): MountOptions {
  const out: MountOptions = { lowers: [], upper: undefined, workdir: undefined, index: undefined, readOnly: false, attrTimeout: undefined, transport: 'kernel', passthrough: true, uring: 'off', whiteouts: 'auto', upperForm: 'auto', redirectDir: undefined }
  let userxattr = false
  let upperForm: UpperFormOption | undefined
  const seen = new Set<string>()
  for (const str of optionStrings) {
    for (const item of splitEscaped(str, ',')) {
      if (item === '') continue
      const eq = item.indexOf('=')
      const key = eq < 0 ? item : item.slice(0, eq)
      const value = eq < 0 ? undefined : item.slice(eq + 1)
      if (['lowerdir', 'upperdir', 'workdir', 'index'].includes(key)) {
        if (seen.has(key)) throw new OptionError(`${key} given twice`)
        seen.add(key)
        if (value === undefined || value === '') throw new OptionError(`${key} needs a value`)
      }
      switch (key) {
        case 'lowerdir':
          out.lowers = splitEscaped(value!, ':').map((l) => layerPath('lowerdir', l, cwd))
          break
        case 'upperdir':
          out.upper = layerPath('upperdir', value!, cwd)
          break
        case 'workdir':
          out.workdir = layerPath('workdir', value!, cwd)
          break
        case 'index':
          out.index = value === 'off' ? 'off' : value === 'on' ? undefined : layerPath('index', value!, cwd)
          break
        case 'ro':
          out.readOnly = true
          break
        case 'attr_timeout': {
          const n = Number(value)
          if (value === undefined || value === '' || !Number.isFinite(n) || n < 0) throw new OptionError(`attr_timeout needs a number of seconds, not ${value ?? '(none)'}`)
          out.attrTimeout = n
          break
        }
        case 'transport':
          if (value !== 'kernel' && value !== 'fuse-native') throw new OptionError(`transport is kernel or fuse-native, not ${value ?? '(none)'}`)
          out.transport = value
          break
        case 'whiteouts':
          if (!WHITEOUT_OPTIONS.includes(value as WhiteoutOption)) throw new OptionError(`whiteouts is ${WHITEOUT_OPTIONS.join(', ')}, not ${value ?? '(none)'}`)
          out.whiteouts = value as WhiteoutOption
          break
        case 'userxattr':
          if (value !== undefined) throw new OptionError(`userxattr takes no value, not ${value}`)
          userxattr = true
          break
        case 'upper_form':
          if (!UPPER_FORM_OPTIONS.includes(value as UpperFormOption)) throw new OptionError(`upper_form is ${UPPER_FORM_OPTIONS.join(', ')}, not ${value ?? '(none)'}`)
          upperForm = value as UpperFormOption
          break
        case 'passthrough':
          if (value !== 'on' && value !== 'off') throw new OptionError(`passthrough is on or off, not ${value ?? '(none)'}`)
          out.passthrough = value === 'on'
          break
        case 'uring':
          if (!URING_OPTIONS.includes(value as UringOption)) throw new OptionError(`uring is ${URING_OPTIONS.join(', ')}, not ${value ?? '(none)'}`)
          out.uring = value as UringOption
          break
        default:
          if (value === undefined && GENERIC_FLAGS.has(key)) break
          if (key.startsWith('x-') || key === 'comment') break
          if (key in KERNEL_COMPAT) {
            const allowed = KERNEL_COMPAT[key]!
            if (allowed.size === 0 && value === undefined) break
            if (value !== undefined && allowed.has(value)) {
              if (key === 'redirect_dir') out.redirectDir = value
              break
            }
            throw new OptionError(`unsupported value for ${key}: ${value ?? '(none)'}`)
          }
          throw new OptionError(`unknown option: ${key}`)
      }
    }
  }
  if (out.lowers.length === 0) throw new OptionError('missing lowerdir=')
  if (userxattr && upperForm !== undefined && upperForm !== 'userxattr') throw new OptionError(`conflicting options: userxattr,upper_form=${upperForm}`)
  out.upperForm = userxattr ? 'userxattr' : upperForm ?? 'auto'
  if (out.upperForm === 'userxattr' && out.redirectDir === 'on') throw new OptionError('conflicting options: userxattr,redirect_dir=on')
  return out
}
