/**
 * PAX extended header records (POSIX.1-2001 `x` entries), byte for byte.
 *
 * A record is "LEN KEY=VALUE\n" where LEN counts the whole record. Keys and
 * values are byte strings (see ../overlay/bytes.ts): a path is the raw bytes
 * of the name (UTF-8 for the names people use, anything for the rest) and an
 * xattr value (`SCHILY.xattr.security.capability`) is binary, as GNU tar and
 * Go's archive/tar (so docker) write it. tar-stream's own PAX coder goes
 * through UTF-8 strings and would corrupt both, hence this module.
 */

/** Xattrs travel in PAX records under this prefix (GNU tar, star, Go, docker). */
export const PAX_XATTR_PREFIX = 'SCHILY.xattr.'

/** One record: "LEN KEY=VALUE\n", LEN being the record's own byte count in decimal. */
function record (key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let len = body.length + 1
  while (String(len).length + body.length > len) len++
  return `${len}${body}`
}

/** Records in the order given (callers sort them for determinism). */
export function encodePaxRecords (records: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(records.map(([k, v]) => record(k, v)).join(''), 'latin1')
}

export class PaxError extends Error {}

/** The records of a PAX block as byte strings; a malformed record is an error (a hostile or broken layer). */
export function decodePaxRecords (buf: Uint8Array): Map<string, string> {
  const out = new Map<string, string>()
  const s = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1')
  let at = 0
  while (at < s.length) {
    // Trailing NUL padding ends the block.
    if (s.charCodeAt(at) === 0) break
    const space = s.indexOf(' ', at)
    const len = space < 0 ? NaN : Number(s.slice(at, space))
    if (!Number.isSafeInteger(len) || len <= 0 || !/^[0-9]+$/.test(s.slice(at, space)) || at + len > s.length || s[at + len - 1] !== '\n') {
      throw new PaxError(`malformed PAX record at byte ${at}`)
    }
    const rec = s.slice(space + 1, at + len - 1)
    const eq = rec.indexOf('=')
    if (eq <= 0) throw new PaxError(`malformed PAX record at byte ${at}`)
    out.set(rec.slice(0, eq), rec.slice(eq + 1))
    at += len
  }
  return out
}
