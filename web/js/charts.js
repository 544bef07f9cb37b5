// charts.js — time-series line / area charts as inline SVG (no library).
//
// lineChart(box, points, opts) draws points [{t: ms, v: number}] into the
// element `box` (sized by CSS): nice y ticks, date x ticks, an optional
// filled area down to a baseline, and a hover read-out (mouse, or the arrow
// keys once the chart has focus). Long series are reduced to at most ~2
// points per pixel column (first/min/max/last of each bucket) so the shape,
// peaks and troughs included, survives. The SVG carries an aria-label
// summarising the series for screen readers.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

// "Nice" ticks covering [lo, hi].
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.01 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const start = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = start; v <= hi + step * 0.5; v += step) ticks.push(+v.toFixed(12));
  return ticks;
}

// Reduce to buckets keeping first, min, max, last (in time order).
export function downsample(points, maxBuckets) {
  if (points.length <= maxBuckets * 4) return points;
  const out = [];
  const size = points.length / maxBuckets;
  for (let b = 0; b < maxBuckets; b++) {
    const s = Math.floor(b * size), e = Math.min(points.length, Math.floor((b + 1) * size));
    if (s >= e) continue;
    let mn = s, mx = s;
    for (let i = s; i < e; i++) {
      if (points[i].v < points[mn].v) mn = i;
      if (points[i].v > points[mx].v) mx = i;
    }
    for (const i of [...new Set([s, mn, mx, e - 1])].sort((a, b2) => a - b2)) out.push(points[i]);
  }
  return out;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function dateLabel(ms, spanMs) { // UTC, as the bars are stamped
  const d = new Date(ms);
  if (spanMs > 3 * 365 * 864e5) return String(d.getUTCFullYear());
  if (spanMs > 300 * 864e5) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  if (spanMs > 2 * 864e5) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  return d.toISOString().slice(11, 16);
}

export function lineChart(box, points, opts = {}) {
  box.textContent = '';
  const fmt = opts.format || ((v) => v.toFixed(2));
  const color = opts.color || 'var(--accent)';
  if (!points.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.style.padding = '12px';
    p.textContent = 'No data';
    box.appendChild(p);
    return;
  }
  const W = Math.max(300, box.clientWidth || 800);
  const H = Math.max(100, box.clientHeight || 240);
  const m = { l: 64, r: 12, t: 10, b: 22 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const pts = downsample(points, Math.max(50, Math.floor(pw / 2)));
  const extra = (opts.extra || []).filter((x) => x.points && x.points.length)
    .map((x) => ({ ...x, pts: downsample(x.points, Math.max(50, Math.floor(pw / 2))) }));
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  let lo = Infinity, hi = -Infinity;
  for (const p of pts) { if (p.v < lo) lo = p.v; if (p.v > hi) hi = p.v; }
  for (const x of extra) for (const p of x.pts) { if (p.v < lo) lo = p.v; if (p.v > hi) hi = p.v; }
  if (opts.baseline !== undefined) { lo = Math.min(lo, opts.baseline); hi = Math.max(hi, opts.baseline); }
  const ticks = niceTicks(lo, hi, opts.yTicks || 4);
  const y0 = Math.min(lo, ticks[0]), y1 = Math.max(hi, ticks[ticks.length - 1]);
  const X = (t) => m.l + (t1 > t0 ? ((t - t0) / (t1 - t0)) * pw : pw / 2);
  const Y = (v) => m.t + (y1 > y0 ? (1 - (v - y0) / (y1 - y0)) * ph : ph / 2);

  const svg = el('svg', {
    viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', tabindex: 0,
    'aria-label': `${opts.label || 'Chart'}: ${points.length} points from ${new Date(t0).toISOString().slice(0, 10)} ` +
      `to ${new Date(t1).toISOString().slice(0, 10)}, first ${fmt(points[0].v)}, last ${fmt(points[points.length - 1].v)}, ` +
      `low ${fmt(lo)}, high ${fmt(hi)}`,
  });
  const grid = el('g', { class: 'grid' }, svg);
  const axis = el('g', { class: 'axis' }, svg);
  for (const v of ticks) {
    if (v < y0 || v > y1) continue;
    el('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }, grid);
    const tx = el('text', { x: m.l - 6, y: Y(v) + 3, 'text-anchor': 'end' }, axis);
    tx.textContent = fmt(v);
  }
  const nx = Math.max(2, Math.min(8, Math.floor(pw / 110)));
  for (let i = 0; i <= nx; i++) {
    const t = t0 + ((t1 - t0) * i) / nx;
    const tx = el('text', { x: X(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === nx ? 'end' : 'middle' }, axis);
    tx.textContent = dateLabel(t, t1 - t0);
  }
  const pathOf = (ps) => {
    let s = '';
    ps.forEach((p, i) => { s += (i ? 'L' : 'M') + X(p.t).toFixed(1) + ',' + Y(p.v).toFixed(1); });
    return s;
  };
  for (const x of extra) {
    const e = el('path', { d: pathOf(x.pts), fill: 'none', stroke: x.color || 'var(--muted)', 'stroke-width': 1,
      'stroke-dasharray': x.dash || '', 'vector-effect': 'non-scaling-stroke', class: 'series-extra' }, svg);
    if (x.label) el('title', {}, e).textContent = x.label;
  }
  const d = pathOf(pts);
  if (opts.area) {
    const base = Y(opts.baseline !== undefined ? opts.baseline : y0);
    el('path', {
      d: `${d}L${X(t1).toFixed(1)},${base.toFixed(1)}L${X(t0).toFixed(1)},${base.toFixed(1)}Z`,
      fill: opts.fill || color, 'fill-opacity': 0.25, stroke: 'none',
    }, svg);
  }
  el('path', { d, fill: 'none', stroke: color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke', class: 'series' }, svg);

  // hover / keyboard read-out
  const cross = el('line', { y1: m.t, y2: m.t + ph, stroke: 'var(--muted)', 'stroke-dasharray': '3 3', visibility: 'hidden' }, svg);
  const dot = el('circle', { r: 3, fill: color, visibility: 'hidden' }, svg);
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.hidden = true;
  box.append(svg, tip);
  let idx = -1;
  const show = (i) => {
    idx = Math.max(0, Math.min(pts.length - 1, i));
    const p = pts[idx];
    const x = X(p.t), y = Y(p.v);
    cross.setAttribute('x1', x); cross.setAttribute('x2', x); cross.setAttribute('visibility', 'visible');
    dot.setAttribute('cx', x); dot.setAttribute('cy', y); dot.setAttribute('visibility', 'visible');
    tip.hidden = false;
    tip.textContent = `${new Date(p.t).toISOString().slice(0, 16).replace('T', ' ')}  ${fmt(p.v)}`;
    const sx = box.clientWidth / W, sy = box.clientHeight / H;
    tip.style.left = Math.min(box.clientWidth - tip.offsetWidth - 4, x * sx + 8) + 'px';
    tip.style.top = Math.max(0, y * sy - 28) + 'px';
  };
  const hide = () => { cross.setAttribute('visibility', 'hidden'); dot.setAttribute('visibility', 'hidden'); tip.hidden = true; };
  svg.addEventListener('mousemove', (e) => {
    const r = svg.getBoundingClientRect();
    const t = t0 + (((e.clientX - r.left) * (W / r.width) - m.l) / pw) * (t1 - t0);
    let lo2 = 0, hi2 = pts.length - 1;
    while (hi2 - lo2 > 1) { const mid = (lo2 + hi2) >> 1; if (pts[mid].t < t) lo2 = mid; else hi2 = mid; }
    show(Math.abs(pts[lo2].t - t) < Math.abs(pts[hi2].t - t) ? lo2 : hi2);
  });
  svg.addEventListener('mouseleave', hide);
  svg.addEventListener('blur', hide);
  svg.addEventListener('keydown', (e) => {
    const step = e.shiftKey ? Math.ceil(pts.length / 20) : 1;
    if (e.key === 'ArrowRight') { show(idx < 0 ? 0 : idx + step); e.preventDefault(); }
    else if (e.key === 'ArrowLeft') { show(idx < 0 ? pts.length - 1 : idx - step); e.preventDefault(); }
    else if (e.key === 'Home') { show(0); e.preventDefault(); }
    else if (e.key === 'End') { show(pts.length - 1); e.preventDefault(); }
    else if (e.key === 'Escape') hide();
  });
}

// Drawdown series from equity: v = equity / running peak - 1 (<= 0).
export function drawdown(points) {
  let peak = -Infinity;
  return points.map((p) => {
    if (p.v > peak) peak = p.v;
    return { t: p.t, v: peak > 0 ? p.v / peak - 1 : 0 };
  });
}
