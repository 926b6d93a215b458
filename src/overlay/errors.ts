/**
 * Every failure in the overlay core is an FsError: a POSIX errno name plus the
 * merged path it concerns. The FUSE layer turns it into a negative errno; the
 * CLI prints its message. Keeping the errno symbolic ('ENOENT') rather than
 * numeric keeps the core free of platform tables.
 *
 * `path` is the merged path as the core holds it, a byte string (bytes.ts);
 * the message shows it through displayPath, readable and unambiguous.
 */
import { constants } from 'node:os'
import { displayPath } from './bytes.js'

export type ErrnoCode = keyof typeof constants.errno

export class FsError extends Error {
  readonly code: ErrnoCode
  readonly path: string
  readonly syscall: string | undefined

  constructor (code: ErrnoCode, path: string, syscall?: string, detail?: string) {
    // An errno is an answer, not a bug: no stack trace, which would cost more
    // than the lookup that found ENOENT.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`${code}: ${syscall ? syscall + ' ' : ''}${displayPath(path)}${detail ? ` (${detail})` : ''}`)
    Error.stackTraceLimit = limit
    this.name = 'FsError'
    this.code = code
    this.path = path
    this.syscall = syscall
  }

  /** The positive errno number for this platform. */
  get errno (): number {
    return constants.errno[this.code]
  }
}

/**
 * The upper refused a marker (whiteout, opaque dir, redirect) the overlay
 * had to write: answered with its errno, and always logged as an error by
 * the transports (a marker that cannot be written is a misconfigured upper,
 * never a routine answer). `form` is the upper's marker form (upper-form.ts).
 */
export class MarkerWriteError extends FsError {
  constructor (code: ErrnoCode, path: string, readonly marker: string, readonly form: string, syscall?: string) {
    super(code, path, syscall, `cannot write the ${marker} marker (${form} form)`)
    this.name = 'MarkerWriteError'
  }
}

interface NodeErrnoLike { code?: unknown, syscall?: unknown }

function isErrnoCode (code: unknown): code is ErrnoCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(constants.errno, code)
}

/**
 * Re-labels an error thrown by node:fs (which names a physical layer path)
 * with the merged path the caller asked about. Anything that is not an errno
 * error is a bug; it becomes EIO so the daemon answers instead of crashing,
 * and keeps the original as `cause` for the log.
 */
export function toFsError (err: unknown, mergedPath: string): FsError {
  // A marker error is made below the merged path: it learns it here.
  if (err instanceof MarkerWriteError && err.path === '') return new MarkerWriteError(err.code, mergedPath, err.marker, err.form, err.syscall)
  if (err instanceof FsError) return err
  const e = (err ?? {}) as NodeErrnoLike
  if (isErrnoCode(e.code)) {
    return new FsError(e.code, mergedPath, typeof e.syscall === 'string' ? e.syscall : undefined)
  }
  const wrapped = new FsError('EIO', mergedPath, undefined, err instanceof Error ? err.message : String(err))
  ;(wrapped as Error).cause = err
  return wrapped
}

export function errnoOf (err: unknown): ErrnoCode | undefined {
  const e = (err ?? {}) as NodeErrnoLike
  return isErrnoCode(e.code) ? e.code : undefined
}

/** True when a node:fs error means "this name is not there". */
export function isAbsent (err: unknown): boolean {
  const code = errnoOf(err)
  return code === 'ENOENT' || code === 'ENOTDIR'
}
