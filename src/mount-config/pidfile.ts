/**
 * Where `overlayts umount` finds the daemon of a mountpoint: one pid file per
 * mountpoint under /run/overlayts, named by a hash of its path.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'

export const RUN_DIR = process.env.OVERLAYTS_RUNDIR ?? '/run/overlayts'

/** The run file of a mountpoint with this extension ('pid', 'json'). */
export function runFileFor (merged: string, ext: string): string {
  return `${RUN_DIR}/${createHash('sha256').update(merged).digest('hex').slice(0, 16)}.${ext}`
}

function fileFor (merged: string): string {
  return runFileFor(merged, 'pid')
}

export function writePidFile (merged: string): void {
  try {
    fs.mkdirSync(RUN_DIR, { recursive: true })
    fs.writeFileSync(fileFor(merged), `${process.pid}\n`)
  } catch { /* umount then only waits for the mount to go */ }
}

export function removePidFile (merged: string): void {
  try {
    const pid = Number(fs.readFileSync(fileFor(merged), 'utf8'))
    if (pid === process.pid) fs.unlinkSync(fileFor(merged))
  } catch { /* already gone */ }
}

export function readPidFile (merged: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(fileFor(merged), 'utf8'))
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch { return undefined }
}
