/**
 * Running the daemon detached: the parent re-runs the same command with -f
 * in a new session and waits on a pipe (fd 3 of the child) for one line,
 * "ok" once the mount is live or the error that stopped it. The parent exits
 * 0 or prints that error and exits 1, as fuse-overlayfs and mount(8) expect.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'

export const READY_FD_ENV = 'OVERLAYTS_READY_FD'

let reported = false

export function reportReady (err: Error | null): void {
  if (reported) return
  reported = true
  try {
    fs.writeSync(3, err ? `error ${err.message.replace(/\n/g, ' ')}\n` : 'ok\n')
    fs.closeSync(3)
  } catch { /* the parent went away: nothing to tell */ }
}

/**
 * The daemon's environment. NODE_EXTRA_CA_CERTS makes every Node start-up
 * read and parse a certificate bundle (~45 ms here); the daemon makes no TLS
 * connection. MALLOC_ARENA_MAX: the thread pool's threads would each get a
 * malloc arena of their own, memory an idle daemon keeps.
 */
function daemonEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [READY_FD_ENV]: '3' }
  delete env.NODE_EXTRA_CA_CERTS
  env.MALLOC_ARENA_MAX ??= '2'
  return env
}

export function detachDaemon (args: string[]): Promise<number> {
  const entry = process.argv[1]!
  const child = spawn(process.execPath, [entry, ...args, '-f'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: daemonEnv()
  })
  const pipe = child.stdio[3] as NodeJS.ReadableStream
  return new Promise((resolve) => {
    let text = ''
    let settled = false
    const settle = (code: number, msg?: string): void => {
      if (settled) return
      settled = true
      if (msg) process.stderr.write(`overlayts: ${msg}\n`)
      child.unref()
      ;(pipe as unknown as { destroy(): void }).destroy()
      resolve(code)
    }
    pipe.on('data', (d: Buffer) => {
      text += d.toString()
      const line = text.split('\n')[0]!
      if (!text.includes('\n')) return
      if (line === 'ok') settle(0)
      else settle(1, line.replace(/^error /, ''))
    })
    child.on('exit', (code) => settle(code === 0 ? 1 : (code ?? 1), text ? text.replace(/^error /, '').trim() : `daemon exited with status ${code} before mounting`))
    child.on('error', (e) => settle(1, `cannot start the daemon: ${e.message}`))
  })
}
