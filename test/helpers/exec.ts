// Small async wrapper around child_process.execFile for the test helpers.
import { execFile } from 'node:child_process'

export interface RunResult {
  code: number
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
  timedOut: boolean
}

export interface RunOptions {
  /** kill the child after this many ms (SIGKILL); 0 = no limit */
  timeoutMs?: number
  cwd?: string
  env?: NodeJS.ProcessEnv
  input?: string
}

/**
 * Run a command, never throwing on a non-zero exit: the caller inspects `code`.
 * stdout is returned raw (Buffer) so that callers parsing file names keep the bytes.
 */
export function run (cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, [...args], {
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 0,
      killSignal: 'SIGKILL',
      cwd: opts.cwd,
      env: opts.env ?? process.env
    }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean, signal?: NodeJS.Signals | null, code?: number | string }) | null
      if (e !== null && typeof e.code === 'string') {
        // spawn failure (ENOENT...) or maxBuffer: a real error
        if (e.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') { reject(e); return }
      }
      resolve({
        code: e === null ? 0 : (typeof e.code === 'number' ? e.code : (child.exitCode ?? -1)),
        signal: e?.signal ?? null,
        stdout: Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout),
        stderr: (Buffer.isBuffer(stderr) ? stderr : Buffer.from(stderr)).toString('utf8'),
        timedOut: e?.killed === true && (opts.timeoutMs ?? 0) > 0
      })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** Like run() but throws with a readable message on a non-zero exit. */
export async function runOk (cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) {
    const what = r.timedOut ? `timed out after ${opts.timeoutMs ?? 0} ms` : `exited ${r.code}${r.signal !== null ? ` (${r.signal})` : ''}`
    throw new Error(`${cmd} ${args.map(a => JSON.stringify(a)).join(' ')} ${what}: ${r.stderr.trim()}`)
  }
  return r.stdout
}
