#!/usr/bin/env node
/*
 * Quantbus: TA-Lib reference fixture generator for libs/ta.
 *
 *   cd tools/talib-ref && npm ci && node gen.js
 *
 * Writes (relative to the repo root):
 *   tests/fixtures/ta/<series>.csv          synthetic OHLCV bars (seeded, reproducible)
 *   tests/fixtures/ta/<series>.ref.csv      TA-Lib outputs, one line per bar
 *   tests/fixtures/ta/real/<base>.ref.csv   TA-Lib outputs on ../shared/data/<base>.txt,
 *                                           sampled rows only, no bar data
 *   tests/fixtures/ta/real/sources.csv      which real file (sha256, bar count, dates)
 *
 * Everything is deterministic: same talib build + same inputs => byte-identical
 * output. See README.md for the conventions the C side must follow.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const talib = require('talib');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'tests', 'fixtures', 'ta');
const OUT_REAL = path.join(OUT, 'real');
const REAL_DIR = process.env.QB_SHARED_DATA || path.resolve(ROOT, '..', 'shared', 'data');
const REAL_FILES = ['nvda-1999-2014', 'orcl-1995-2014', 'yhoo-1996-2014'];

/* Master seed of every synthetic series (each series adds its own offset). */
const SEED = 20240917;

/* ------------------------------------------------------------------ PRNG */

/* mulberry32: 32-bit state, uniform in [0,1). Pure integer arithmetic. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRng(seed) {
  const u = mulberry32(seed);
  const rng = {
    u,
    range(a, b) { return a + (b - a) * u(); },
    int(a, b) { return a + Math.floor((b - a + 1) * u()); }, /* inclusive */
    /* standard normal, Box-Muller (one value per call, simple and reproducible) */
    normal() {
      let u1 = u();
      if (u1 < 1e-12) u1 = 1e-12;
      const u2 = u();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    sign() { return u() < 0.5 ? -1 : 1; },
  };
  return rng;
}

/* ------------------------------------------------------- number formats */

const PRICE_DEC = 4;          /* prices are exact 4-decimal strings */
const PRICE_SCALE = 10000;

/* Price -> integer ticks (1e-4), minimum 1 tick. */
function ticks(x) {
  const n = Math.round(x * PRICE_SCALE);
  return n < 1 ? 1 : n;
}
function ticksToStr(n) {
  const ip = Math.floor(n / PRICE_SCALE);
  const fp = n - ip * PRICE_SCALE;
  return ip + '.' + String(fp).padStart(PRICE_DEC, '0');
}

/* Output values. OUT_DIGITS = 0: JS shortest round-trip representation
 * (String(x)); strtod() of that string gives back exactly the same double.
 * OUT_DIGITS = N (e.g. 12): N significant digits, trailing zeros trimmed:
 * smaller files (~25% at 12), still 200x finer than a 1e-9 relative check,
 * but no longer bit-exact. */
const OUT_DIGITS = 0;
function fmtVal(x) {
  if (!Number.isFinite(x)) throw new Error('non-finite TA-Lib output: ' + x + ' in ' + fmtVal.ctx);
  if (Object.is(x, -0)) return '0';
  if (OUT_DIGITS === 0) return String(x);
  return String(Number(x.toPrecision(OUT_DIGITS)));
}

/* ------------------------------------------------------- bar building */

/* Bars hold prices as integer ticks of 1e-4 and integer volumes; they are
 * written as exact decimal strings, and the numeric arrays given to TA-Lib are
 * parseFloat() of those very strings (what the C side gets from strtod). */
class Bars {
  constructor() { this.o = []; this.h = []; this.l = []; this.c = []; this.v = []; }
  get length() { return this.c.length; }
  lastClose() { return this.c.length ? this.c[this.c.length - 1] : null; }
  /* prices in ticks (integers), volume integer */
  push(o, h, l, c, v) {
    if (!(Number.isInteger(o) && Number.isInteger(h) && Number.isInteger(l) && Number.isInteger(c)))
      throw new Error('non-integer ticks');
    if (!(l >= 1 && l <= o && l <= c && h >= o && h >= c)) throw new Error(`bad bar ${o} ${h} ${l} ${c}`);
    if (!(Number.isInteger(v) && v >= 0)) throw new Error('bad volume ' + v);
    this.o.push(o); this.h.push(h); this.l.push(l); this.c.push(c); this.v.push(v);
  }
}

/* A "normal" bar: open near prev close (or given), close = open*exp(vol*z),
 * wicks proportional to vol. */
function normalBar(rng, bars, opts) {
  const prevC = bars.lastClose();
  const vol = opts.vol;
  const drift = opts.drift || 0;
  let open;
  if (opts.open !== undefined) open = opts.open;
  else if (prevC === null) open = opts.start;
  else open = (prevC / PRICE_SCALE) * (1 + 0.2 * vol * rng.normal());
  let close = open * Math.exp(drift + vol * rng.normal());
  /* keep prices in a sane band (reflect) */
  if (close < 2) close = 2 + (2 - close);
  const hi = Math.max(open, close) * (1 + Math.abs(0.6 * vol * rng.normal()));
  const lo = Math.min(open, close) * (1 - Math.min(0.5, Math.abs(0.6 * vol * rng.normal())));
  const o = ticks(open), c = ticks(close);
  let h = ticks(hi), l = ticks(lo);
  if (h < Math.max(o, c)) h = Math.max(o, c);
  if (l > Math.min(o, c)) l = Math.min(o, c);
  const baseVol = opts.baseVolume || 1000000;
  const v = Math.max(0, Math.round(baseVol * Math.exp(0.5 * rng.normal()) * (1 + 20 * Math.abs(close / open - 1))));
  bars.push(o, h, l, c, v);
}

/* (a) trend: up-trend for the first half, down-trend for the second
 *     (drift +-0.25%/bar), volatility regimes (0.4% / 1.2% / 2.5% daily)
 *     switching every 120-400 bars. */
function genTrend(n) {
  const rng = makeRng(SEED + 1);
  const bars = new Bars();
  const regimes = [0.004, 0.012, 0.025];
  let regime = 0, left = 0;
  for (let i = 0; i < n; i++) {
    if (left <= 0) { regime = (regime + rng.int(1, 2)) % 3; left = rng.int(120, 400); }
    left--;
    const drift = i < n / 2 ? 0.0025 : -0.0025;
    normalBar(rng, bars, { start: 20, vol: regimes[regime], drift });
  }
  return bars;
}

/* (b) flat: starts with 40 identical bars (volume 0); later identical-OHLC
 *     stretches of 30-45 bars (volume 0, and with volume), one of 150 bars,
 *     "flat close" stretches (O=C constant, H/L moving), isolated zero-volume
 *     bars and runs of equal closes. */
function genFlat(n) {
  const rng = makeRng(SEED + 2);
  const bars = new Bars();
  const flatAt = new Map([      /* start index -> [length, kind] */
    [0, [40, 'flat0']],
    [300, [35, 'flat0']],
    [520, [31, 'flatv']],
    [800, [40, 'flatclose']],
    [1000, [150, 'flat0']],
    [1350, [45, 'flatv']],
    [1600, [33, 'flatclose']],
    [1800, [30, 'flat0']],
  ]);
  let i = 0;
  while (i < n) {
    const f = flatAt.get(i);
    if (f) {
      const [len, kind] = f;
      const p = bars.lastClose() === null ? ticks(25) : bars.lastClose();
      for (let k = 0; k < len && i < n; k++, i++) {
        if (kind === 'flat0') bars.push(p, p, p, p, 0);
        else if (kind === 'flatv') bars.push(p, p, p, p, rng.int(1000, 50000));
        else {
          const up = ticks((p / PRICE_SCALE) * rng.range(0, 0.02));
          const dn = ticks((p / PRICE_SCALE) * rng.range(0, 0.02));
          bars.push(p, p + up, Math.max(1, p - dn), p, rng.int(0, 3) === 0 ? 0 : rng.int(1000, 500000));
        }
      }
      continue;
    }
    const r = rng.u();
    if (r < 0.03) {
      /* isolated zero-volume bar */
      normalBar(rng, bars, { start: 25, vol: 0.01 });
      const j = bars.length - 1;
      bars.v[j] = 0;
    } else if (r < 0.06 && bars.length > 0) {
      /* equal close to previous bar, different H/L */
      const p = bars.lastClose();
      bars.push(p, p + ticks(p / PRICE_SCALE * 0.01), p - ticks(p / PRICE_SCALE * 0.01), p, rng.int(1000, 900000));
    } else {
      normalBar(rng, bars, { start: 25, vol: 0.012, drift: 0.0002 });
    }
    i++;
  }
  return bars;
}

/* (c) gaps: opening gaps of +-10..20% vs the previous close every 40-120 bars;
 *     single-bar spikes: high spike (+15..40%), low spike (-15..35%), a close
 *     spike that gaps back next bar, volume spikes (x20..x50). */
function genGaps(n) {
  const rng = makeRng(SEED + 3);
  const bars = new Bars();
  let nextGap = rng.int(40, 120);
  for (let i = 0; i < n; i++) {
    const prevC = bars.lastClose();
    if (prevC !== null && i >= nextGap) {
      nextGap = i + rng.int(40, 120);
      const g = rng.sign() * rng.range(0.10, 0.20);
      normalBar(rng, bars, { vol: 0.015, open: (prevC / PRICE_SCALE) * (1 + g) });
      continue;
    }
    const r = rng.u();
    normalBar(rng, bars, { start: 80, vol: 0.015 });
    const j = bars.length - 1;
    if (r < 0.012) {
      bars.h[j] = ticks(Math.max(bars.o[j], bars.c[j]) / PRICE_SCALE * (1 + rng.range(0.15, 0.40)));
    } else if (r < 0.024) {
      bars.l[j] = ticks(Math.min(bars.o[j], bars.c[j]) / PRICE_SCALE * (1 - rng.range(0.15, 0.35)));
    } else if (r < 0.032 && i + 1 < n) {
      /* close spike, next bar opens back near the pre-spike level */
      const base = bars.o[j];
      const c = ticks(base / PRICE_SCALE * (1 + rng.sign() * rng.range(0.15, 0.30)));
      bars.c[j] = c;
      bars.h[j] = Math.max(bars.h[j], c);
      bars.l[j] = Math.min(bars.l[j], c);
      i++;
      normalBar(rng, bars, { vol: 0.015, open: base / PRICE_SCALE });
    } else if (r < 0.045) {
      bars.v[j] = bars.v[j] * rng.int(20, 50);
    }
  }
  /* re-validate after in-place edits */
  const chk = new Bars();
  for (let k = 0; k < bars.length; k++) chk.push(bars.o[k], bars.h[k], bars.l[k], bars.c[k], bars.v[k]);
  return bars;
}

/* (d) short: 60 bars, for lookback edges (many columns stay empty). */
function genShort(n) {
  const rng = makeRng(SEED + 4);
  const bars = new Bars();
  for (let i = 0; i < n; i++) normalBar(rng, bars, { start: 10, vol: 0.02 });
  return bars;
}

/* ------------------------------------------------------- indicators */

/* Inputs by key: o,h,l,c,v = open/high/low/close/volume arrays.
 * `inputs` maps the talib execute() parameter names to those keys.
 * `outs` (multi-output only): [talibOutputName, suffix]. */
const HLC = { high: 'h', low: 'l', close: 'c' };
const HLCV = { high: 'h', low: 'l', close: 'c', volume: 'v' };
const HL = { high: 'h', low: 'l' };
const CLOSE = { inReal: 'c' };

function specs() {
  const list = [];
  const add = (name, fn, inputs, params, opt, outs, extraOpt) => {
    list.push({
      spec: [name].concat(params.map(String)).join(':'),
      fn, inputs, opt: Object.assign({}, opt, extraOpt || {}), outs: outs || null,
    });
  };
  const p1 = (name, fn, inputs, periods) => {
    for (const p of periods) add(name, fn, inputs, [p], { optInTimePeriod: p });
  };

  p1('sma', 'SMA', CLOSE, [30, 2, 20]);
  p1('ema', 'EMA', CLOSE, [30, 2, 12]);
  p1('wma', 'WMA', CLOSE, [30, 2]);
  p1('dema', 'DEMA', CLOSE, [30, 2]);
  p1('tema', 'TEMA', CLOSE, [30, 2]);
  p1('trima', 'TRIMA', CLOSE, [30, 5, 2]);     /* even, odd, smallest even */
  p1('kama', 'KAMA', CLOSE, [30, 10, 2]);
  p1('rsi', 'RSI', CLOSE, [14, 2]);

  const macdOuts = [['outMACD', 'macd'], ['outMACDSignal', 'signal'], ['outMACDHist', 'hist']];
  /* signal period 1 is accepted by TA_MACD but yields garbage (EMA lookback(1) = -1): not used */
  for (const [f, s, g] of [[12, 26, 9], [5, 13, 4], [2, 3, 2]])
    add('macd', 'MACD', CLOSE, [f, s, g], { optInFastPeriod: f, optInSlowPeriod: s, optInSignalPeriod: g }, macdOuts);

  const bbOuts = [['outRealUpperBand', 'upper'], ['outRealMiddleBand', 'middle'], ['outRealLowerBand', 'lower']];
  for (const [p, up, dn] of [[5, 2, 2], [20, 2, 2], [10, 1.5, 2.5]])
    add('bbands', 'BBANDS', CLOSE, [p, up, dn], { optInTimePeriod: p, optInNbDevUp: up, optInNbDevDn: dn, optInMAType: 0 }, bbOuts);

  p1('atr', 'ATR', HLC, [14, 1]);
  p1('natr', 'NATR', HLC, [14, 2]);          /* NATR(1) is TA-Lib's un-normalised TRANGE: not used */
  add('trange', 'TRANGE', HLC, [], {});

  for (const [fk, sk, sd] of [[5, 3, 3], [14, 3, 3], [1, 1, 1]])
    add('stoch', 'STOCH', HLC, [fk, sk, sd],
      { optInFastK_Period: fk, optInSlowK_Period: sk, optInSlowK_MAType: 0, optInSlowD_Period: sd, optInSlowD_MAType: 0 },
      [['outSlowK', 'slowk'], ['outSlowD', 'slowd']]);
  for (const [fk, fd] of [[5, 3], [14, 3]])
    add('stochf', 'STOCHF', HLC, [fk, fd], { optInFastK_Period: fk, optInFastD_Period: fd, optInFastD_MAType: 0 },
      [['outFastK', 'fastk'], ['outFastD', 'fastd']]);
  for (const [p, fk, fd] of [[14, 5, 3], [14, 14, 3]])
    add('stochrsi', 'STOCHRSI', CLOSE, [p, fk, fd], { optInTimePeriod: p, optInFastK_Period: fk, optInFastD_Period: fd, optInFastD_MAType: 0 },
      [['outFastK', 'fastk'], ['outFastD', 'fastd']]);

  p1('adx', 'ADX', HLC, [14, 2]);
  p1('plus_di', 'PLUS_DI', HLC, [14, 2]);    /* period 1: TA-Lib gives DM/TR without *100: not used */
  p1('minus_di', 'MINUS_DI', HLC, [14, 2]);
  p1('cci', 'CCI', HLC, [14, 2]);
  p1('roc', 'ROC', CLOSE, [10, 1]);
  p1('mom', 'MOM', CLOSE, [10, 1]);
  p1('willr', 'WILLR', HLC, [14, 2]);
  p1('mfi', 'MFI', HLCV, [14, 2]);
  add('obv', 'OBV', { inReal: 'c', volume: 'v' }, [], {});
  add('ad', 'AD', HLCV, [], {});
  for (const [f, s] of [[3, 10], [2, 5]])
    add('adosc', 'ADOSC', HLCV, [f, s], { optInFastPeriod: f, optInSlowPeriod: s });
  for (const p of [14, 2])
    add('aroon', 'AROON', HL, [p], { optInTimePeriod: p }, [['outAroonDown', 'down'], ['outAroonUp', 'up']]);
  for (const [a, m] of [[0.02, 0.2], [0.01, 0.1]])
    add('sar', 'SAR', HL, [a, m], { optInAcceleration: a, optInMaximum: m });
  for (const [p, d] of [[5, 1], [20, 1], [5, 2]])
    add('stddev', 'STDDEV', CLOSE, [p, d], { optInTimePeriod: p, optInNbDev: d });
  for (const [a, b, c] of [[7, 14, 28], [2, 4, 8]])
    add('ultosc', 'ULTOSC', HLC, [a, b, c], { optInTimePeriod1: a, optInTimePeriod2: b, optInTimePeriod3: c });
  p1('trix', 'TRIX', CLOSE, [30, 2]);          /* TRIX(1) reads before the input (garbage): not used */
  for (const [f, s] of [[12, 26], [5, 13]])
    add('ppo', 'PPO', CLOSE, [f, s], { optInFastPeriod: f, optInSlowPeriod: s, optInMAType: 0 });
  p1('cmo', 'CMO', CLOSE, [14, 2]);
  p1('correl', 'CORREL', { inReal0: 'h', inReal1: 'l' }, [30, 10]);
  return list;
}

/* Runs every spec on the numeric arrays; returns {cols: [name], data: [Array(n) of number|null], first: [idx]} */
function compute(arr, specList) {
  const n = arr.c.length;
  const cols = [], data = [], first = [];
  for (const s of specList) {
    const params = { name: s.fn, startIdx: 0, endIdx: n - 1 };
    for (const [k, key] of Object.entries(s.inputs)) params[k] = arr[key];
    Object.assign(params, s.opt);
    const res = talib.execute(params);
    if (!res || res.error) throw new Error(s.spec + ': ' + JSON.stringify(res));
    const beg = res.begIndex, nb = res.nbElement;
    const outs = s.outs || [[Object.keys(res.result)[0], null]];
    if (!s.outs && Object.keys(res.result).length !== 1) throw new Error(s.spec + ': expected 1 output');
    for (const [oname, suffix] of outs) {
      const r = res.result[oname];
      if (!r) throw new Error(s.spec + ': no output ' + oname);
      const col = new Array(n).fill(null);
      if (nb > 0) {
        if (beg + nb !== n) throw new Error(`${s.spec}: begIndex ${beg} + nb ${nb} != ${n}`);
        for (let i = 0; i < nb; i++) col[beg + i] = r[i];
      }
      cols.push(suffix ? s.spec + '.' + suffix : s.spec);
      data.push(col);
      first.push(nb > 0 ? beg : -1);
    }
  }
  return { cols, data, first };
}

function refCsv(result, rows) {
  const lines = ['row,' + result.cols.join(',')];
  for (const i of rows) {
    const cells = [String(i)];
    result.data.forEach((col, c) => {
      fmtVal.ctx = result.cols[c] + ' row ' + i;
      cells.push(col[i] === null ? '' : fmtVal(col[i]));
    });
    lines.push(cells.join(','));
  }
  return lines.join('\n') + '\n';
}

/* ------------------------------------------------------- output */

function isoDate(dayOffset) {
  const t = Date.UTC(2000, 0, 3) + dayOffset * 86400000;
  return new Date(t).toISOString().slice(0, 10);
}

function writeFile(p, text) {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  console.log(`wrote ${path.relative(ROOT, p)} (${text.length} bytes)`);
}

function doSynthetic(name, bars, specList) {
  const lines = ['time,open,high,low,close,volume'];
  const s = { o: [], h: [], l: [], c: [], v: [] };
  for (let i = 0; i < bars.length; i++) {
    const row = [ticksToStr(bars.o[i]), ticksToStr(bars.h[i]), ticksToStr(bars.l[i]), ticksToStr(bars.c[i]), String(bars.v[i])];
    lines.push(isoDate(i) + ',' + row.join(','));
    s.o.push(row[0]); s.h.push(row[1]); s.l.push(row[2]); s.c.push(row[3]); s.v.push(row[4]);
  }
  writeFile(path.join(OUT, name + '.csv'), lines.join('\n') + '\n');
  /* TA-Lib gets parseFloat() of the very strings written above */
  const arr = {};
  for (const k of Object.keys(s)) arr[k] = s[k].map(parseFloat);
  const res = compute(arr, specList);
  const rows = [];
  for (let i = 0; i < bars.length; i++) rows.push(i);
  writeFile(path.join(OUT, name + '.ref.csv'), refCsv(res, rows));
  return res;
}

/* Yahoo CSV: Date,Open,High,Low,Close,Adj Close,Volume. Sorted oldest-first
 * by Date (string compare of ISO dates); duplicate dates are an error. */
function readYahoo(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const hdr = lines.shift();
  if (hdr.trim() !== 'Date,Open,High,Low,Close,Adj Close,Volume') throw new Error(file + ': unexpected header ' + hdr);
  let rows = lines.map((l) => l.split(','));
  for (const r of rows) if (r.length !== 7) throw new Error(file + ': bad line ' + r.join(','));
  const wasAscending = rows.every((r, i) => i === 0 || rows[i - 1][0] < r[0]);
  rows = rows.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 1; i < rows.length; i++) if (rows[i - 1][0] === rows[i][0]) throw new Error(file + ': duplicate date ' + rows[i][0]);
  const arr = { o: [], h: [], l: [], c: [], v: [] };
  for (const r of rows) {
    arr.o.push(parseFloat(r[1])); arr.h.push(parseFloat(r[2])); arr.l.push(parseFloat(r[3]));
    arr.c.push(parseFloat(r[4])); arr.v.push(parseFloat(r[6]));
  }
  for (const k of Object.keys(arr)) for (const x of arr[k]) if (!Number.isFinite(x)) throw new Error(file + ': non-numeric ' + k);
  const sha = crypto.createHash('sha256').update(text).digest('hex');
  return { arr, n: rows.length, first: rows[0][0], last: rows[rows.length - 1][0], sha, wasAscending };
}

/* every 10th row, the last 50 rows, and rows within 5 of each column's first valid index */
function sampleRows(n, firsts) {
  const keep = new Set();
  for (let i = 0; i < n; i += 10) keep.add(i);
  for (let i = Math.max(0, n - 50); i < n; i++) keep.add(i);
  for (const f of firsts) {
    if (f < 0) continue;
    for (let i = f - 5; i <= f + 5; i++) if (i >= 0 && i < n) keep.add(i);
  }
  return Array.from(keep).sort((a, b) => a - b);
}

function main() {
  /* Unstable period 0 for every function (this is also TA-Lib's default). */
  if (!talib.setUnstablePeriod(talib.functionUnstIds.TA_FUNC_UNST_ALL, 0)) throw new Error('setUnstablePeriod failed');

  const specList = specs();
  doSynthetic('trend', genTrend(1100), specList);
  doSynthetic('flat', genFlat(1100), specList);
  doSynthetic('gaps', genGaps(1100), specList);
  doSynthetic('short', genShort(60), specList);

  if (!fs.existsSync(REAL_DIR)) {
    console.warn(`real data dir ${REAL_DIR} not found: tests/fixtures/ta/real left as is`);
    return;
  }
  const src = ['file,bars,first_date,last_date,file_was_oldest_first,sha256'];
  for (const base of REAL_FILES) {
    const f = path.join(REAL_DIR, base + '.txt');
    const y = readYahoo(f);
    const res = compute(y.arr, specList);
    writeFile(path.join(OUT_REAL, base + '.ref.csv'), refCsv(res, sampleRows(y.n, res.first)));
    src.push([base + '.txt', y.n, y.first, y.last, y.wasAscending ? 'yes' : 'no', y.sha].join(','));
  }
  writeFile(path.join(OUT_REAL, 'sources.csv'), src.join('\n') + '\n');
}

main();
