/**
 * Names are bytes. Linux names are any bytes but '/' and NUL, so inside the
 * overlay core, the index and the transports every path, name, symlink target
 * and xattr name is a *byte string*: a JS string in which each char code is one
 * byte (0-255), the 'latin1' decoding of the raw bytes. It compares, hashes,
 * slices and splits on '/' exactly as the bytes do, and `s.length` is the
 * byte count.
 *
 * Conversion happens only at the edges: the host seam (sys/) turns byte
 * strings into Buffers for each syscall and decodes what it reads back; the
 * CLI's UTF-8 option values become byte strings once, where the layer stack is
 * built; logs and error messages show paths through displayPath.
 */

/** A byte string's raw bytes. */
export function bytesOfString (s: string): Buffer {
  return Buffer.from(s, 'latin1')
}

/** Raw bytes as a byte string. */
export function stringOfBytes (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** A UTF-8 (ordinary JS) string, such as an argv path, as the byte string of its UTF-8 encoding. */
export function utf8ToBytes (s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1')
}

/** A byte string decoded as UTF-8 (invalid bytes become U+FFFD): for APIs that only take UTF-8 strings. */
export function bytesToUtf8 (s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8')
}

/**
 * A byte string for logs and messages, readable and unambiguous: valid UTF-8
 * shows as its characters, every byte that is not part of valid UTF-8 as
 * `\xNN`, and a backslash as `\\` (so `\xff` the byte and `\xff` the four
 * characters differ). Control characters (including newlines) show as
 * `\xNN` too, so one path never breaks a log line.
 */
export function displayPath (s: string): string {
  let out = ''
  const n = s.length
  let i = 0
  while (i < n) {
    const c = s.charCodeAt(i)
    if (c < 0x80) {
      if (c === 0x5c) out += '\\\\'
      else if (c < 0x20 || c === 0x7f) out += hex(c)
      else out += s[i]
      i++
      continue
    }
    const len = utf8SeqLength(s, i)
    if (len === 0) {
      out += hex(c)
      i++
      continue
    }
    out += Buffer.from(s.slice(i, i + len), 'latin1').toString('utf8')
    i += len
  }
  return out
}

function hex (c: number): string {
  return '\\x' + (c < 16 ? '0' : '') + c.toString(16)
}

/**
 * The length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF) starting at `i`, or 0 when there is none.
 */
function utf8SeqLength (s: string, i: number): number {
  const c = s.charCodeAt(i)
  const cont = (j: number, lo = 0x80, hi = 0xbf): boolean => {
    if (j >= s.length) return false
    const d = s.charCodeAt(j)
    return d >= lo && d <= hi
  }
  if (c >= 0xc2 && c <= 0xdf) return cont(i + 1) ? 2 : 0
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80
    const hi = c === 0xed ? 0x9f : 0xbf
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80
    const hi = c === 0xf4 ? 0x8f : 0xbf
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0
  }
  return 0
}
