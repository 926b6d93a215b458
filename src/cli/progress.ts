/**
 * A progress line on stderr while a layer tool works, drawn only when stderr
 * is a terminal (cli-progress: rate-limited redraws, the line cleared at the
 * end), so scripts and `--json` consumers see nothing of it.
 */
import cliProgress from 'cli-progress'

export interface Progress {
  /** A new phase: `total` steps (0 when unknown: the count alone is shown). */
  phase (label: string, total: number): void
  update (done: number): void
  stop (): void
}

export function progressLine (stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { phase () {}, update () {}, stop () {} }
  let bar: cliProgress.SingleBar | undefined
  const stop = (): void => { bar?.stop(); bar = undefined }
  return {
    phase (label, total) {
      stop()
      const format = total > 0 ? `${label} [{bar}] {value}/{total} {duration_formatted}` : `${label} {value} {duration_formatted}`
      bar = new cliProgress.SingleBar({ format, stream, clearOnComplete: true, hideCursor: true, etaBuffer: 20 }, cliProgress.Presets.shades_classic)
      bar.start(total > 0 ? total : 1e12, 0)
    },
    update (done) { bar?.update(done) },
    stop
  }
}
