/** pino JSON lines: on stdout, or to a file when the daemon runs detached. */
import pino from 'pino'
import type { Logger } from 'pino'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

export function makeLogger (level: LogLevel, file?: string): Logger {
  const dest = file === undefined ? pino.destination({ fd: 1, sync: true }) : pino.destination({ dest: file, sync: true, mkdir: true })
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest)
}
