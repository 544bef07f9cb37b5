// app.js — the dashboard: login, account, positions, live signals and
// orders, strategy controls, kill switch, backtests.
//
// State comes from the REST routes (re-read after login, on "Refresh", when
// the stream says `reset`, and after an order or position event); live
// changes come from one SSE stream (signals, orders) opened after login.
// A backtest opens its own stream (topics=backtests&run=ID) for its progress
// bar; on FINISHED it reads the result and the equity curve and draws the
// charts. Every API error is shown with the API's own message.

import * as api from './api.js';
import { LiveStream } from './stream.js';
import { lineChart, drawdown } from './charts.js';

const $ = (id) => document.getElementById(id);
const KINDS = ['sma_cross', 'ema_cross', 'macd_momentum', 'rsi_reversion', 'bollinger_breakout',
  'bollinger_reversion', 'donchian_breakout', 'basic_signals'];
const MODES = ['off', 'paper', 'live']; // API modes (off = orders refused)
const MAX_ROWS = 200;

let live = null;        // the signals/orders stream
let btStream = null;    // the running backtest's stream
let btRun = null;       // {id, done}
let lastCharts = null;  // equity points, to redraw on resize
const orderRows = new Map(); // order_id -> <tr>

// ---------------------------------------------------------------- formatting
const nf2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const nf4 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 4 });
const num = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v));
const money = (v) => (Number.isFinite(num(v)) ? nf2.format(num(v)) : '—');
const qty = (v) => (Number.isFinite(num(v)) ? nf4.format(num(v)) : '—');
const pct = (v) => (Number.isFinite(num(v)) ? (num(v) * 100).toFixed(2) + '%' : '—');
const ratio = (v) => (Number.isFinite(num(v)) ? num(v).toFixed(2) : '—');
const fixed8 = (v) => (v === undefined || v === null || v === '' ? NaN : Number(v) / 1e8); // int64 x1e8 text
const signCls = (v) => (num(v) > 0 ? 'up' : num(v) < 0 ? 'down' : '');
function pick(o, ...keys) { for (const k of keys) if (o && o[k] !== undefined && o[k] !== null) return o[k]; return undefined; }
function enumName(v, prefix) { // "SIDE_BUY" -> "buy"
  if (v === undefined || v === null) return '';
  let s = String(v);
  if (prefix && s.toUpperCase().startsWith(prefix)) s = s.slice(prefix.length);
  return s.toLowerCase().replace(/_/g, ' ');
}
function timeText(v) {
  if (v === undefined || v === null || v === '') return '';
  let d;
  if (/^\d{12,}$/.test(String(v))) d = new Date(Number(BigInt(String(v)) / 1000000n)); // ns
  else d = new Date(v);
  if (isNaN(d)) return String(v);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function nsToMs(v) {
  if (/^\d{12,}$/.test(String(v))) return Number(BigInt(String(v)) / 1000000n);
  const d = Date.parse(v);
  return isNaN(d) ? NaN : d;
}
function td(text, cls) {
  const c = document.createElement('td');
  c.textContent = text === undefined || text === null ? '' : String(text);
  if (cls) c.className = cls;
  return c;
}
function badge(text, kind) {
  const b = document.createElement('span');
  b.className = 'badge' + (kind ? ' ' + kind : '');
  b.textContent = text;
  return b;
}
function statusKind(s) {
  s = String(s || '').toLowerCase();
  if (/fill|finish|done|live|active|ok/.test(s) && !/partial/.test(s)) return 'ok';
  if (/reject|cancel|fail|expire|error|halt/.test(s)) return 'bad';
  if (/partial|pend|new|submit|accept|queued|running|paper/.test(s)) return 'info';
  return '';
}

// ---------------------------------------------------------------- messages
export function toast(msg, kind = 'error', ms = 8000) {
  const t = document.createElement('div');
  t.className = 'toast' + (kind === 'info' ? ' info' : '');
  const close = document.createElement('button');
  close.type = 'button';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.onclick = () => t.remove();
  t.append(close, document.createTextNode(msg));
  $('toasts').appendChild(t);
  if (ms) setTimeout(() => t.remove(), ms);
}
function errText(e) { return e && e.message ? e.message : String(e); }
function showError(e, where) {
  if (e && e.status === 401 && !api.loggedIn()) return; // the session ended: login view says why
  toast((where ? where + ': ' : '') + errText(e));
}
// Marks the form control named by an API error's field.
function markField(form, e) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (!e || !e.field) return;
  const name = String(e.field).split(/[.[]/)[0];
  const el = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (el) { el.setAttribute('aria-invalid', 'true'); el.focus(); }
}

// Confirmation dialog; resolves to the reason text, or null when cancelled.
function confirmDialog(title, text, okLabel, askReason, reasonRequired) {
  const dlg = $('confirm');
  $('confirm-reason').required = !!reasonRequired;
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  $('confirm-reason-wrap').hidden = !askReason;
  $('confirm-reason').value = '';
  return new Promise((resolve) => {
    dlg.onclose = () => resolve(dlg.returnValue === 'ok' ? $('confirm-reason').value.trim() : null);
    dlg.returnValue = '';
    dlg.showModal();
    (askReason ? $('confirm-reason') : $('confirm-cancel')).focus();
  });
}

// ---------------------------------------------------------------- views
function showLogin(reason) {
  $('main').hidden = true;
  $('nav').hidden = true;
  $('top-right').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = reason || '';
  $('login-pass').value = '';
  $('login-user').focus();
}

function showDashboard(u) {
  $('login-view').hidden = true;
  $('main').hidden = false;
  $('nav').hidden = false;
  $('top-right').hidden = false;
  $('who').textContent = u ? `${u.name} (${u.role})` : '';
  document.body.dataset.role = u ? u.role : '';
  const trader = u && (u.role === 'trader' || u.role === 'admin');
  for (const id of ['ks-on', 'bt-submit']) $(id).disabled = !trader;
  $('ks-off').disabled = !(u && u.role === 'admin');
  if (!trader) $('strategies-note').textContent = 'read-only: your role cannot change strategies';
}

const canTrade = () => { const u = api.user(); return !!u && (u.role === 'trader' || u.role === 'admin'); };

// ---------------------------------------------------------------- account
async function loadAccount() {
  const box = $('account');
  try {
    const a = await api.call('GET', '/api/v1/account');
    $('account-name').textContent = a.account ? `account ${a.account}` : '';
    // exposure: {long, short, gross, net, leverage}
    const ex = a.exposure && typeof a.exposure === 'object' ? a.exposure : { gross: a.exposure };
    const items = [
      ['Equity', money(pick(a, 'equity')), ''],
      ['Cash', money(pick(a, 'cash')), ''],
      ['Day P&L', money(pick(a, 'day_pnl')), signCls(pick(a, 'day_pnl'))],
      ['Total P&L', money(pick(a, 'total_pnl')), signCls(pick(a, 'total_pnl'))],
      ['Unrealized P&L', money(pick(a, 'unrealized_pnl')), signCls(pick(a, 'unrealized_pnl'))],
      ['Realized P&L', money(pick(a, 'realized_pnl')), signCls(pick(a, 'realized_pnl'))],
      ['Gross exposure', money(ex.gross), ''],
      ['Leverage', Number.isFinite(num(ex.leverage)) ? num(ex.leverage).toFixed(2) + '×' : '—', ''],
      ['Drawdown', pct(pick(a, 'drawdown')), num(pick(a, 'drawdown')) > 0 ? 'down' : ''],
      ['Open orders', qty(pick(a, 'open_orders')), ''],
    ].filter(([, v], i) => !v.startsWith('—') || i < 2);
    const st = pick(a, 'status');
    box.textContent = '';
    for (const [k, v, cls] of items) {
      const d = document.createElement('div');
      d.className = 'kpi';
      d.innerHTML = '<div class="k"></div><div class="v"></div>';
      d.firstChild.textContent = k;
      d.lastChild.textContent = v;
      if (cls) d.lastChild.classList.add(cls);
      box.appendChild(d);
    }
    if (st) {
      const d = document.createElement('div');
      d.className = 'kpi';
      d.innerHTML = '<div class="k">Trading</div><div class="v"></div>';
      d.lastChild.appendChild(badge(enumName(st) + (a.status_text ? ': ' + a.status_text : ''),
        String(st).toLowerCase() === 'active' ? 'ok' : String(st).toLowerCase() === 'halted' ? 'bad' : 'warn'));
      box.appendChild(d);
    }
  } catch (e) {
    box.textContent = '';
    const p = document.createElement('p');
    p.className = e.status === 404 ? 'muted' : 'form-error'; // 404: no activity on the account yet
    p.textContent = 'Account: ' + errText(e);
    box.appendChild(p);
  }
}

// ---------------------------------------------------------------- positions
async function loadPositions() {
  const tb = $('positions').tBodies[0];
  try {
    const items = await api.listAll('/api/v1/positions', 5);
    tb.textContent = '';
    const open = items.filter((p) => num(pick(p, 'qty', 'quantity')) !== 0);
    $('positions-count').textContent = `${open.length} open`;
    if (!open.length) {
      const r = tb.insertRow();
      r.appendChild(td('No open positions', 'muted')).colSpan = 6;
      return;
    }
    for (const p of open) {
      const r = tb.insertRow();
      r.dataset.symbol = p.symbol;
      const q = pick(p, 'qty', 'quantity');
      const upnl = pick(p, 'unrealized_pnl', 'unrealized');
      const last = pick(p, 'last_price', 'mark', 'market_price', 'price');
      let mv = pick(p, 'market_value');
      if (mv === undefined && Number.isFinite(num(last))) mv = num(last) * num(q);
      r.append(td(p.symbol), td(qty(q), 'num ' + (num(q) < 0 ? 'down' : '')),
        td(money(pick(p, 'avg_price', 'avg_cost', 'average_price')), 'num'), td(money(last), 'num'),
        td(money(mv), 'num'), td(money(upnl), 'num ' + signCls(upnl)));
    }
  } catch (e) {
    tb.textContent = '';
    tb.insertRow().appendChild(td('Positions: ' + errText(e), 'form-error wrap')).colSpan = 6;
  }
}

// ---------------------------------------------------------------- kill switch
// GET /risk/kill-switch: {platform: {status, engaged, text, changed_at, ...},
// accounts: [every account not ACTIVE, same fields + account]}. Engage is a
// trader's action (POST {reason}), release an admin's (DELETE ?reason=).
const isAdmin = () => { const u = api.user(); return !!u && u.role === 'admin'; };
function renderKill(k) {
  const plat = (k && k.platform) || {};
  const active = !!plat.engaged;
  const others = ((k && k.accounts) || []).filter((a) => a.status && a.status !== 'ACTIVE');
  const s = $('ks-state');
  s.textContent = active ? 'ENGAGED — all trading halted' : 'Off — trading allowed';
  s.className = 'ks-state ' + (active ? 'on' : 'off');
  const pill = $('ks-pill');
  pill.textContent = 'Kill switch: ' + (active ? 'ON' : others.length ? `${others.length} account(s) halted` : 'off');
  pill.className = 'pill ' + (active ? 'bad' : others.length ? 'warn' : 'ok');
  const bits = [];
  if (active && plat.changed_at) bits.push('since ' + timeText(plat.changed_at));
  if (active && plat.text) bits.push(plat.text);
  if (plat.execution_engaged !== undefined && plat.execution_engaged !== null && !!plat.execution_engaged !== active) {
    bits.push('execution: ' + (plat.execution_engaged ? 'still engaged' : 'not yet engaged'));
  }
  for (const a of others) bits.push(`${a.account}: ${String(a.status).toLowerCase()}${a.text ? ' (' + a.text + ')' : ''}`);
  $('ks-detail').textContent = bits.join(' · ');
  $('ks-on').disabled = !canTrade() || active;
  $('ks-off').disabled = !isAdmin() || (!active && !others.length);
  $('ks-off').title = isAdmin() ? '' : 'Releasing the kill switch needs the admin role';
}
async function loadKill() {
  try {
    renderKill(await api.call('GET', '/api/v1/risk/kill-switch'));
  } catch (e) {
    $('ks-state').textContent = 'State unknown';
    $('ks-state').className = 'ks-state';
    $('ks-detail').textContent = errText(e);
    $('ks-pill').textContent = 'Kill switch: ?';
    $('ks-pill').className = 'pill warn';
  }
}
async function setKill(on) {
  const reason = await confirmDialog(
    on ? 'Engage the kill switch?' : 'Release the kill switch?',
    on ? 'Every open order of every account is cancelled and new orders are refused until an admin releases the switch.'
      : 'Trading resumes on every account: strategies and manual orders may place orders again.',
    on ? 'Engage kill switch' : 'Release', true, on);
  if (reason === null) return;
  try {
    if (on) await api.call('POST', '/api/v1/risk/kill-switch', { reason });
    else await api.call('DELETE', '/api/v1/risk/kill-switch' + (reason ? '?reason=' + encodeURIComponent(reason) : ''));
    toast(on ? 'Kill switch: engage requested' : 'Kill switch: release requested', 'info', 4000);
    // the state changes once qb-risk has acted: re-read a few times
    for (const ms of [300, 1000, 2500, 5000]) setTimeout(loadKill, ms);
    setTimeout(loadAccount, 2500);
  } catch (e) { showError(e, 'Kill switch'); }
}

// ---------------------------------------------------------------- strategies
async function loadStrategies() {
  const tb = $('strategies-table').tBodies[0];
  try {
    const items = await api.listAll('/api/v1/strategies?limit=1000', 5);
    tb.textContent = '';
    const dl = $('bt-kinds');
    const kinds = new Set(KINDS);
    for (const s of items) if (s.kind) kinds.add(s.kind);
    dl.textContent = '';
    for (const k of kinds) { const o = document.createElement('option'); o.value = k; dl.appendChild(o); }
    if (!items.length) {
      tb.insertRow().appendChild(td('No strategies', 'muted')).colSpan = 6;
      return;
    }
    for (const s of items) tb.appendChild(strategyRow(s));
  } catch (e) {
    tb.textContent = '';
    tb.insertRow().appendChild(td('Strategies: ' + errText(e), 'form-error wrap')).colSpan = 6;
  }
}

function strategyRow(s) {
  const id = pick(s, 'strategy_id', 'id', 'name');
  const r = document.createElement('tr');
  r.dataset.strategy = id;
  const syms = Array.isArray(s.symbols) ? s.symbols.join(', ') : (s.symbols || '');
  r.append(td(id), td(s.kind || ''), td(syms, 'wrap'), td(s.timeframe || ''));
  // enabled: a switch button
  const c1 = document.createElement('td');
  const sw = document.createElement('button');
  sw.type = 'button';
  sw.className = 'switch';
  sw.setAttribute('role', 'switch');
  sw.setAttribute('aria-checked', String(!!s.enabled));
  sw.setAttribute('aria-label', `${id} enabled`);
  sw.disabled = !canTrade();
  sw.onclick = async () => {
    const want = sw.getAttribute('aria-checked') !== 'true';
    sw.disabled = true;
    try {
      await api.call('POST', `/api/v1/strategies/${encodeURIComponent(id)}/${want ? 'enable' : 'disable'}`);
      sw.setAttribute('aria-checked', String(want));
      toast(`${id}: ${want ? 'enable' : 'disable'} requested`, 'info', 3000);
    } catch (e) { showError(e, id); }
    sw.disabled = !canTrade();
  };
  c1.appendChild(sw);
  // mode: a select
  const c2 = document.createElement('td');
  const sel = document.createElement('select');
  sel.setAttribute('aria-label', `${id} trading mode`);
  const mode = String(pick(s, 'mode') || 'paper').toLowerCase();
  for (const m of MODES) {
    const o = document.createElement('option');
    o.value = m; o.selected = m === mode;
    o.textContent = m === 'live' && s.rollout_pct && s.rollout_pct < 100 ? `live (${s.rollout_pct}%)` : m;
    // going live is the approval: admins only
    if (m === 'live' && !isAdmin() && mode !== 'live') o.disabled = true;
    sel.appendChild(o);
  }
  sel.dataset.prev = mode;
  sel.disabled = !canTrade();
  sel.onchange = async () => {
    const m = sel.value;
    if (m === 'live') {
      const ok = await confirmDialog('Switch to LIVE trading?',
        `${id} will send real orders to the broker. Switching to live records you as its approver.`, 'Go live', false);
      if (ok === null) { sel.value = sel.dataset.prev; return; }
    }
    sel.disabled = true;
    try {
      await api.call('PUT', `/api/v1/strategies/${encodeURIComponent(id)}/mode`, { mode: m });
      sel.dataset.prev = m;
      toast(`${id}: mode ${m} requested`, 'info', 3000);
    } catch (e) { sel.value = sel.dataset.prev; showError(e, id); }
    sel.disabled = !canTrade();
  };
  c2.appendChild(sel);
  r.append(c1, c2);
  return r;
}

// ---------------------------------------------------------------- signals + orders
async function loadSignals() {
  try {
    const page = await api.call('GET', '/api/v1/signals?limit=50');
    const tb = $('signals').tBodies[0];
    tb.textContent = '';
    signalIds.clear();
    const items = (page && page.items) || [];
    if (!items.length) {
      const r = tb.insertRow();
      r.className = 'empty';
      r.appendChild(td('No signals yet', 'muted')).colSpan = 6;
    }
    for (const s of items.slice().reverse()) onSignal(s, null, true);
  } catch (e) { showError(e, 'Signals'); }
}

function prependRow(table, r) {
  const tb = table.tBodies[0];
  const empty = tb.querySelector('tr.empty');
  if (empty) empty.remove();
  tb.insertBefore(r, tb.firstChild);
  while (tb.rows.length > MAX_ROWS) {
    const last = tb.rows[tb.rows.length - 1];
    if (last.dataset.order) orderRows.delete(last.dataset.order);
    last.remove();
  }
}

const signalIds = new Set();
function onSignal(m, _ev, fromRest) {
  const id = m.signal_id;
  if (id && signalIds.has(id)) return;
  if (id) signalIds.add(id);
  const r = document.createElement('tr');
  if (!fromRest) r.className = 'flash';
  const dir = enumName(m.direction, 'SIGNAL_DIRECTION_');
  r.append(td(timeText(pick(m, 'time', 'bar_ts'))), td(pick(m, 'strategy_id', 'strategy')), td(m.symbol));
  const c = document.createElement('td');
  c.appendChild(badge(dir, /long|buy/.test(dir) ? 'ok' : /short|sell/.test(dir) ? 'bad' : ''));
  r.append(c, td(Number.isFinite(num(m.confidence)) ? num(m.confidence).toFixed(2) : '', 'num'),
    td(m.reason || '', 'wrap'));
  prependRow($('signals'), r);
}

// one row per order: created from the Order, updated by its ExecutionReports
function orderRow(id) {
  let r = orderRows.get(id);
  if (r) return r;
  r = document.createElement('tr');
  r.dataset.order = id;
  for (let i = 0; i < 7; i++) r.appendChild(td('', i === 3 || i === 6 ? 'num' : ''));
  orderRows.set(id, r);
  prependRow($('orders'), r);
  return r;
}
function setStatus(r, s, why) {
  const c = r.cells[5];
  c.textContent = '';
  const b = badge(s, statusKind(s));
  c.appendChild(b);
  if (why) { b.title = why; c.appendChild(document.createTextNode(' ' + why)); c.classList.add('wrap', 'small'); }
}
// run fn once, 500 ms after the last of a burst of calls
const soonTimers = new Map();
function soon(fn) {
  clearTimeout(soonTimers.get(fn));
  soonTimers.set(fn, setTimeout(() => { soonTimers.delete(fn); fn(); }, 500));
}

function onOrderEvent(m, ev) {
  const type = ev && ev.type ? ev.type : '';
  if (!m.order_id) return;
  const r = orderRow(m.order_id);
  r.classList.remove('flash'); void r.offsetWidth; r.classList.add('flash');
  if (/ExecutionReport/.test(type) || m.status !== undefined) {
    if (m.symbol) r.cells[1].textContent = m.symbol;
    // a rejection by qb-risk is the only message of its order: fill the row from it
    if (!r.cells[0].textContent) r.cells[0].textContent = timeText(m.header && m.header.event_time);
    if (!r.cells[2].textContent && m.side && !/UNSPECIFIED/.test(m.side)) {
      r.cells[2].textContent = enumName(m.side, 'SIDE_');
      r.cells[2].className = /buy/i.test(m.side) ? 'up' : 'down';
    }
    if (!r.cells[3].textContent && fixed8(m.order_qty) > 0) r.cells[3].textContent = qty(fixed8(m.order_qty));
    setStatus(r, enumName(m.status, 'ORDER_STATUS_'), m.reason_text || enumName(m.reason_code, 'REASON_CODE_').replace(/^unspecified$/, ''));
    const ap = fixed8(m.avg_price), fq = fixed8(m.cum_qty);
    if (ap > 0) r.cells[6].textContent = `${qty(fq)} @ ${money(ap)}`;
    if (/fill/i.test(String(m.status))) loadPositions();
    soon(loadAccount); // open orders, cash, P&L
  } else {
    r.cells[0].textContent = timeText(m.header && m.header.event_time);
    r.cells[1].textContent = m.symbol || '';
    r.cells[2].textContent = enumName(m.side, 'SIDE_');
    r.cells[2].className = /buy/i.test(m.side) ? 'up' : 'down';
    r.cells[3].textContent = qty(fixed8(m.qty));
    r.cells[4].textContent = enumName(m.type, 'ORDER_TYPE_');
    if (!r.cells[5].textContent) setStatus(r, 'new');
  }
}

async function loadOrders() {
  try {
    const page = await api.call('GET', '/api/v1/orders?limit=50');
    const items = (page && page.items) || [];
    $('orders').tBodies[0].textContent = '';
    orderRows.clear();
    if (!items.length) {
      const r = $('orders').tBodies[0].insertRow();
      r.className = 'empty';
      r.appendChild(td('No orders yet', 'muted')).colSpan = 7;
    }
    for (const o of items.slice().reverse()) {
      const id = pick(o, 'order_id', 'id');
      if (!id) continue;
      const r = orderRow(id);
      r.classList.remove('flash');
      r.cells[0].textContent = timeText(pick(o, 'created_at', 'time', 'submitted_at'));
      r.cells[1].textContent = o.symbol || '';
      r.cells[2].textContent = o.side || '';
      r.cells[2].className = /buy/i.test(o.side) ? 'up' : 'down';
      r.cells[3].textContent = qty(pick(o, 'qty', 'quantity'));
      r.cells[4].textContent = o.type || '';
      setStatus(r, String(o.status || ''), o.status === 'rejected' ? (o.reason_text || o.reason || '') : '');
      const ap = num(pick(o, 'avg_price', 'avg_fill_price'));
      if (ap > 0) r.cells[6].textContent = `${qty(pick(o, 'filled_qty', 'cum_qty'))} @ ${money(ap)}`;
    }
  } catch (e) {
    if (e.status !== 404) showError(e, 'Orders');
  }
}

function setStreamPill(s) {
  const p = $('stream-pill');
  p.textContent = s === 'live' ? 'Live: connected' : s === 'connecting' ? 'Live: reconnecting…' : 'Live: offline';
  p.className = 'pill ' + (s === 'live' ? 'ok' : s === 'connecting' ? 'warn' : 'bad');
}

function startLive() {
  if (live) live.close();
  live = new LiveStream({ topics: 'signals,orders' }, {
    signals: onSignal,
    orders: onOrderEvent,
    onState: setStreamPill,
    onReset: () => { refreshAll(); },
  });
  live.open();
}

// ---------------------------------------------------------------- backtests
function setProgress(p, state) {
  const v = Math.max(0, Math.min(100, Math.round(p * 100)));
  const bar = $('bt-progress');
  // never move backwards (events of a run can arrive out of order across replicas)
  const cur = Number(bar.getAttribute('aria-valuenow')) || 0;
  const val = state === 'failed' ? cur : Math.max(cur, v);
  bar.setAttribute('aria-valuenow', String(val));
  bar.setAttribute('aria-valuetext', `${val}%${state ? ' ' + state : ''}`);
  $('bt-progress-fill').style.width = val + '%';
  $('bt-pct').textContent = val + '%';
  if (state) {
    const b = $('bt-state');
    b.textContent = state;
    b.className = 'badge ' + statusKind(state);
    bar.classList.toggle('done', state === 'finished');
    bar.classList.toggle('failed', state === 'failed');
  }
}

function btForm() {
  const f = $('bt-form');
  const v = (n) => f.elements[n].value.trim();
  const body = {
    strategy: v('strategy'),
    symbols: v('symbols').split(/[\s,]+/).filter(Boolean).map((s) => s.toUpperCase()),
    timeframe: v('timeframe'),
  };
  if (v('start')) body.start = v('start');
  if (v('end')) body.end = v('end');
  if (v('initial_cash')) body.initial_cash = Number(v('initial_cash'));
  if (v('params')) {
    try { body.params = JSON.parse(v('params')); } catch (e) {
      const err = new api.ApiError(400, 'bad_request', 'Parameters: not valid JSON (' + e.message + ')', 'params');
      throw err;
    }
    if (typeof body.params !== 'object' || Array.isArray(body.params) || body.params === null) {
      throw new api.ApiError(400, 'bad_request', 'Parameters: must be a JSON object', 'params');
    }
  }
  if (v('grid')) {
    let g;
    try { g = JSON.parse(v('grid')); } catch (e) {
      throw new api.ApiError(400, 'bad_request', 'Search grid: not valid JSON (' + e.message + ')', 'grid');
    }
    if (typeof g !== 'object' || Array.isArray(g) || g === null || !Object.values(g).every(Array.isArray)) {
      throw new api.ApiError(400, 'bad_request', 'Search grid: an object of parameter -> list of values', 'grid');
    }
    body.grid = g;
  }
  return body;
}

async function submitBacktest(ev) {
  ev.preventDefault();
  const f = $('bt-form');
  $('bt-error').textContent = '';
  markField(f, null);
  let body;
  try { body = btForm(); } catch (e) { $('bt-error').textContent = e.message; markField(f, e); return; }
  $('bt-submit').disabled = true;
  try {
    const res = await api.call('POST', '/api/v1/backtests', body);
    const id = pick(res, 'run_id', 'id');
    watchRun(id);
    $('bt-kind').textContent = res.kind === 'grid' ? `parameter search, ${res.combinations} combinations`
      : res.kind === 'walk_forward' ? 'walk-forward' : '';
  } catch (e) {
    $('bt-error').textContent = errText(e);
    markField(f, e);
  } finally {
    $('bt-submit').disabled = !canTrade();
  }
}

function watchRun(id) {
  if (btStream) btStream.close();
  btRun = { id, done: false, lastEvent: Date.now() };
  $('bt-run').hidden = false;
  $('bt-result').hidden = true;
  $('bt-run-error').textContent = '';
  $('bt-label').textContent = 'Run ' + id;
  const bar = $('bt-progress');
  bar.setAttribute('aria-valuenow', '0');
  bar.classList.remove('done', 'failed');
  setProgress(0, 'queued');
  const run = btRun;
  btStream = new LiveStream({ topics: 'backtests', run: id }, {
    backtests: (m) => {
      if (run !== btRun || run.done) return;
      run.lastEvent = Date.now();
      const kind = String(m.kind || '');
      if (/PROGRESS|WINDOW_DONE/.test(kind)) setProgress(num(m.progress) || 0, 'running');
      else if (/FINISHED/.test(kind)) finishRun(run);
      else if (/FAILED/.test(kind)) failRun(run, m.error || 'the backtest failed');
    },
    // on (re)connect and after a reset: the run may have moved meanwhile
    onOpen: () => pollRun(run),
    onReset: () => pollRun(run),
  });
  btStream.open();
  // safety net when no event arrives for a while (e.g. the stream is down)
  run.timer = setInterval(() => { if (Date.now() - run.lastEvent > 4000) pollRun(run); }, 2000);
}

async function pollRun(run) {
  if (run !== btRun || run.done) return;
  try {
    const s = await api.call('GET', `/api/v1/backtests/${encodeURIComponent(run.id)}`);
    if (run !== btRun || run.done) return;
    const st = String(s.status || '').toLowerCase(); // queued | running | finished | failed
    if (st === 'finished') finishRun(run);
    else if (st === 'failed') failRun(run, s.error || 'the backtest failed');
    else setProgress(num(s.progress) || 0, st || 'running');
  } catch (e) {
    if (e.status !== 404) { $('bt-run-error').textContent = errText(e); }
  }
}

function stopRun(run) {
  run.done = true;
  clearInterval(run.timer);
  if (btStream && run === btRun) { btStream.close(); btStream = null; }
}

function failRun(run, msg) {
  stopRun(run);
  setProgress(0, 'failed');
  $('bt-run-error').textContent = msg;
}

async function finishRun(run) {
  if (run.done) return;
  stopRun(run);
  setProgress(1, 'finished');
  try {
    // the curve bucketed to about 2 points per pixel of a wide chart; each
    // point carries the bucket's deepest drawdown
    const [res, eq] = await Promise.all([
      api.call('GET', `/api/v1/backtests/${encodeURIComponent(run.id)}/result`),
      api.call('GET', `/api/v1/backtests/${encodeURIComponent(run.id)}/equity?points=2000`),
    ]);
    if (run !== btRun) return;
    showMetrics(res);
    const items = (eq && eq.items) || [];
    const ok = (p) => Number.isFinite(p.t) && Number.isFinite(p.v);
    const t = (p) => nsToMs(pick(p, 'time', 'ts'));
    const equity = items.map((p) => ({ t: t(p), v: num(p.equity) })).filter(ok);
    const bench = items.map((p) => ({ t: t(p), v: num(p.benchmark) })).filter(ok);
    let dd = items.map((p) => ({ t: t(p), v: num(p.drawdown) })).filter(ok);
    if (dd.length !== equity.length) dd = drawdown(equity);
    lastCharts = { equity, bench: bench.some((p) => p.v > 0) ? bench : null, dd };
    $('bt-result').hidden = false;
    drawCharts();
  } catch (e) {
    $('bt-run-error').textContent = 'Result: ' + errText(e);
  }
}

function showMetrics(res) {
  const m = (res && res.metrics) || {};
  const rows = [
    ['Total return', pct(pick(m, 'total_return')), signCls(pick(m, 'total_return'))],
    ['CAGR', pct(pick(m, 'cagr')), signCls(pick(m, 'cagr'))],
    ['Sharpe', ratio(pick(m, 'sharpe')), ''],
    ['Sortino', ratio(pick(m, 'sortino')), ''],
    ['Max drawdown', pct(pick(m, 'max_dd_pct', 'max_drawdown')), 'down'],
    ['Calmar', ratio(pick(m, 'calmar')), ''],
    ['Volatility', pct(pick(m, 'volatility')), ''],
    ['Win rate', pct(pick(m, 'win_rate')), ''],
    ['Profit factor', ratio(pick(m, 'profit_factor')), ''],
    ['Exposure', pct(pick(m, 'exposure')), ''],
    ['Trades', qty(pick(m, 'trades', 'trades_closed')), ''],
    ['Net profit', money(pick(m, 'net_profit')), signCls(pick(m, 'net_profit'))],
    ['Final equity', money(pick(m, 'final_equity')), ''],
  ].filter(([, v]) => v !== '—');
  const bits = [];
  if (res && res.params !== undefined) bits.push(`${res.best_params_note || 'parameters'}: ${typeof res.params === 'string' ? res.params : JSON.stringify(res.params)}`);
  if (m.first_ts && m.last_ts) bits.push(`${String(m.first_ts).slice(0, 10)} → ${String(m.last_ts).slice(0, 10)}`);
  if (Number.isFinite(num(m.bars))) bits.push(`${m.bars} bars`);
  $('bt-result-note').textContent = bits.join(' · ');
  $('bt-report').dataset.run = res.run_id;
  const dl = $('bt-metrics');
  dl.textContent = '';
  for (const [k, v, cls] of rows) {
    const d = document.createElement('div');
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    if (cls) dd.className = cls;
    d.append(dt, dd);
    dl.appendChild(d);
  }
}

function drawCharts() {
  if (!lastCharts || $('bt-result').hidden) return;
  lineChart($('chart-equity'), lastCharts.equity, {
    label: 'Equity', format: (v) => nf2.format(v), color: 'var(--accent)',
    extra: lastCharts.bench ? [{ points: lastCharts.bench, color: 'var(--muted)', dash: '4 3', label: 'Benchmark (buy and hold)' }] : [],
  });
  $('chart-legend').hidden = !lastCharts.bench;
  lineChart($('chart-drawdown'), lastCharts.dd, {
    label: 'Drawdown', format: (v) => (v * 100).toFixed(1) + '%', color: 'var(--down)', area: true, baseline: 0, yTicks: 3,
  });
}

// The HTML report needs the Authorization header: fetched, then shown from a blob.
async function openReport() {
  const run = $('bt-report').dataset.run;
  if (!run) return;
  const win = window.open('', '_blank');
  try {
    const resp = await fetch(`/api/v1/backtests/${encodeURIComponent(run)}/report`, {
      headers: { Authorization: 'Bearer ' + api.accessToken() },
    });
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      try { msg = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const url = URL.createObjectURL(new Blob([await resp.text()], { type: 'text/html' }));
    if (win) win.location = url; else window.location = url;
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    if (win) win.close();
    showError(e, 'Report');
  }
}

// ---------------------------------------------------------------- wiring
function refreshAll() {
  loadSignals();
  loadAccount();
  loadPositions();
  loadKill();
  loadStrategies();
  loadOrders();
}

function onLogin(u) {
  showDashboard(u);
  refreshAll();
  startLive();
  $('main').focus({ preventScroll: true });
}

function onLogout(reason) {
  if (live) { live.close(); live = null; }
  if (btRun) stopRun(btRun);
  showLogin(reason || '');
}

async function submitLogin(ev) {
  ev.preventDefault();
  const u = $('login-user').value.trim(), p = $('login-pass').value;
  $('login-error').textContent = '';
  if (!u || !p) { $('login-error').textContent = 'Enter your user name and password.'; return; }
  $('login-submit').disabled = true;
  try {
    await api.login(u, p); // -> onLogin through the 'login' listener
  } catch (e) {
    $('login-error').textContent = errText(e);
    $('login-pass').focus();
  } finally {
    $('login-submit').disabled = false;
  }
}

function init() {
  api.on('login', onLogin);
  api.on('logout', onLogout);
  api.on('token', () => { if (live) live.reopen(); if (btStream) btStream.reopen(); });
  $('login-form').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', () => api.logout());
  $('refresh-all').addEventListener('click', refreshAll);
  $('ks-on').addEventListener('click', () => setKill(true));
  $('ks-off').addEventListener('click', () => setKill(false));
  $('bt-form').addEventListener('submit', submitBacktest);
  $('bt-report').addEventListener('click', openReport);
  let rt = null;
  window.addEventListener('resize', () => { clearTimeout(rt); rt = setTimeout(drawCharts, 150); });
  // a kept session resumes; otherwise the login form (unless a failed
  // restore already showed it with the reason)
  api.restore().then((ok) => { if (!ok && $('login-view').hidden) showLogin(''); });
}

init();
