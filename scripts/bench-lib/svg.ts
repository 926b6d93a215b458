/** A hand-written SVG line chart: log-scale x and y, one line per series. */

export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Stroke colour and dash pattern; by default from the palette, in series order. */
  readonly color?: string
  readonly dash?: string
}

const COLORS = ['#1f77b4', '#aec7e8', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2']
const DASH = ['', '6 3', '', '', '', '2 2', '', '']

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function fmtTick (v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`
  return `${+v.toPrecision(3)}`
}

export function lineChartSvg (o: { title: string, xLabel: string, yLabel: string, series: readonly Series[] }): string {
  const W = 820; const H = 520
  const L = 90; const R = 230; const T = 50; const B = 70
  const pw = W - L - R; const ph = H - T - B
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0])).filter((v) => v > 0)
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v))
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${L + pw / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(o.title)}</text>`)
  if (xs.length === 0 || ys.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`)
    return out.join('\n')
  }
  const xMin = Math.min(...xs); const xMax = Math.max(...xs, xMin * 2)
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys)))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys) * 1.0001))
  const lx0 = Math.log(xMin); const lx1 = Math.log(xMax)
  const ly0 = Math.log10(yMin); const ly1 = Math.log10(yMax === yMin ? yMin * 10 : yMax)
  const X = (v: number): number => L + (Math.log(v) - lx0) / (lx1 - lx0) * pw
  const Y = (v: number): number => T + ph - (Math.log10(v) - ly0) / (ly1 - ly0) * ph
  // grid and y ticks (decades, with 2 and 5 minor lines)
  for (let d = ly0; d <= ly1; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d
      if (v < yMin || v > 10 ** ly1) continue
      const y = Y(v).toFixed(1)
      out.push(`<line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`)
      out.push(`<text x="${L - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="${m === 1 ? '#000' : '#777'}">${fmtTick(v)}</text>`)
    }
  }
  // x ticks at the measured layer counts
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    const x = X(v).toFixed(1)
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${T + ph}" stroke="#eee"/>`)
    out.push(`<text x="${x}" y="${T + ph + 18}" text-anchor="middle">${v}</text>`)
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#000"/>`)
  out.push(`<text x="${L + pw / 2}" y="${H - 22}" text-anchor="middle">${esc(o.xLabel)}</text>`)
  out.push(`<text transform="translate(22 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`)
  o.series.forEach((s, i) => {
    const c = s.color ?? COLORS[i % COLORS.length]!
    const dash = s.dash ?? DASH[i % DASH.length]!
    const pts = s.points.filter((p) => p[0] > 0 && p[1] > 0 && Number.isFinite(p[1]))
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`)
    }
    for (const p of pts) out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3.5" fill="${c}"><title>${esc(s.name)}: ${p[0]} layers, ${p[1].toFixed(1)}</title></circle>`)
    const ly = T + 10 + i * 22
    out.push(`<line x1="${L + pw + 16}" y1="${ly}" x2="${L + pw + 46}" y2="${ly}" stroke="${c}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`)
    out.push(`<circle cx="${L + pw + 31}" cy="${ly}" r="3.5" fill="${c}"/>`)
    out.push(`<text x="${L + pw + 54}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
