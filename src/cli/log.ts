/**
 * pino JSON lines: on stdout, or to a file when the daemon runs detached.
 * A detached daemon without --log-file logs nowhere, so it gets a silent
 * logger and never loads pino: every container start would pay for it.
 */
import type { Logger } from 'pino'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

export async function makeLogger (level: LogLevel, file?: string): Promise<Logger> {
  const { default: pino } = await import('pino')
  const dest = file === undefined ? pino.destination({ fd: 1, sync: true }) : pino.destination({ dest: file, sync: true, mkdir: true })
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest)
}

const ignore = (): void => {}

/** The logger of a daemon whose output goes nowhere: the calls the daemon makes, doing nothing. */
export function silentLogger (): Logger {
  const log = { level: 'silent', trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore, fatal: ignore, isLevelEnabled: () => false }
  return log as unknown as Logger
}
