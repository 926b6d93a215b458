/** Sizes for people: bytes below 1 kB, else one decimal in kB, MB, GB, TB (powers of 1000, as dive and docker print them). */
export function humanBytes (n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n / 1000
  let u = 0
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++ }
  return `${v.toFixed(1)} ${units[u]!}`
}

/** A table: columns padded to their widest cell, numbers right-aligned. */
export function table (rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => c === r.length - 1 ? cell : rightAligned.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n') + '\n'
}
