// dashboard.mjs — the browser half of tests/e2e/test_api_dashboard.sh:
// headless Debian Chromium driven by playwright-core (no browser download).
//
// Environment (set by the shell test):
//   API            base URL of qb-api (serves the dashboard at /)
//   DASH_USER / DASH_PASS   a trader's credentials
//   DASH_SYMBOL / DASH_QTY / DASH_AVG  the open position the page must show
//   DASH_STRATEGY  a strategy instance (enabled, paper) to switch off
//   BT_STRATEGY, BT_SYMBOLS, BT_TIMEFRAME, BT_FROM, BT_TO, BT_PARAMS
//                  what to type into the backtest form
//   DASH_SHOT      where to save the screenshot (PNG)
//   CHROMIUM       the browser (default /usr/bin/chromium)
// Asserted: the page loads with no request leaving the gateway's origin and
// no uncaught script error; a bad login shows the API's message; login
// works; the account summary and the positions table show the position;
// the strategy switch and mode select take effect (read back through the
// API and after a refresh; live is not offered to a trader); an order
// placed by another client appears in the orders table through the live
// stream; the backtest form shows the API's errors, submits, the progress
// bar is seen strictly between 0 and 100% and then at 100% "finished"; the
// metrics and the equity + drawdown charts are drawn; the access token was
// refreshed on its own and the stream is still connected; a full-page
// screenshot is saved; then the kill switch, engaged through its
// confirmation dialog, shows ENGAGED and the open order shows canceled
// (second screenshot). Prints "N passed, N failed".
import { chromium } from 'playwright-core';

const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? process.env[k] : d);
const API = env('API');
const SHOT = env('DASH_SHOT', 'dashboard.png');
let passed = 0, failed = 0;
function check(cond, what, extra) {
  if (cond) { passed++; console.log('ok   ' + what); }
  else { failed++; console.log('FAIL ' + what + (extra !== undefined ? ' -- ' + JSON.stringify(extra) : '')); }
  return cond;
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const origin = new URL(API).origin;
const external = [];
const pageErrors = [];
const consoleErrors = [];
let exitCode = 1;
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, locale: 'en-US', timezoneId: 'UTC' });
  const page = await ctx.newPage();
  // nothing may leave the gateway's origin (no CDN, no fonts, no analytics)
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + '/') || u.startsWith('data:')) return route.continue();
    external.push(u);
    return route.abort();
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

  // ---- every route the page calls is in the gateway's OpenAPI document ----
  const USED = [['post', '/api/v1/auth/login'], ['post', '/api/v1/auth/refresh'], ['post', '/api/v1/auth/logout'],
    ['get', '/api/v1/account'], ['get', '/api/v1/positions'], ['get', '/api/v1/orders'], ['get', '/api/v1/signals'],
    ['get', '/api/v1/stream'], ['get', '/api/v1/risk/kill-switch'], ['post', '/api/v1/risk/kill-switch'],
    ['delete', '/api/v1/risk/kill-switch'], ['get', '/api/v1/strategies'],
    ['post', '/api/v1/strategies/{strategy}/enable'], ['post', '/api/v1/strategies/{strategy}/disable'],
    ['put', '/api/v1/strategies/{strategy}/mode'], ['post', '/api/v1/backtests'], ['get', '/api/v1/backtests/{run}'],
    ['get', '/api/v1/backtests/{run}/result'], ['get', '/api/v1/backtests/{run}/equity'],
    ['get', '/api/v1/backtests/{run}/report']];
  const doc = await (await fetch(API + '/api/v1/openapi.json')).json();
  const missing = USED.filter(([m, p]) => !(doc.paths[p] && doc.paths[p][m])).map(([m, p]) => `${m.toUpperCase()} ${p}`);
  check(missing.length === 0, 'every route the dashboard calls is in /api/v1/openapi.json', missing);

  // ---- load + login ----
  const resp = await page.goto(API + '/', { waitUntil: 'load' });
  check(resp && resp.status() === 200, 'GET / serves the dashboard', resp && resp.status());
  check(/html/.test((resp && resp.headers()['content-type']) || ''), 'dashboard is text/html');
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 10000 });
  check(await page.isVisible('#login-form'), 'login form shown');

  // a wrong password shows the API's message and stays on the login form
  await page.fill('#login-user', env('DASH_USER'));
  await page.fill('#login-pass', 'wrong-' + env('DASH_PASS'));
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.trim() !== '', null, { timeout: 10000 });
  const loginErr = await page.textContent('#login-error');
  check(/password|credential|invalid|user/i.test(loginErr), 'bad password: API error shown', loginErr);

  await page.fill('#login-user', env('DASH_USER'));
  await page.fill('#login-pass', env('DASH_PASS'));
  await page.press('#login-pass', 'Enter'); // keyboard submit
  await page.waitForSelector('#main', { state: 'visible', timeout: 10000 });
  const who = await page.textContent('#who');
  check(who.includes(env('DASH_USER')), 'logged in, user shown', who);
  const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('qb.auth') || 'null'));
  check(stored && stored.access && stored.refresh, 'tokens kept in sessionStorage');

  // ---- account + positions ----
  await page.waitForSelector('#account .kpi', { timeout: 10000 }).catch(() => {});
  const kpis = await page.$$eval('#account .kpi .k', (els) => els.map((e) => e.textContent));
  check(kpis.includes('Equity') && kpis.includes('Cash'), 'account summary shown', kpis);
  const sym = env('DASH_SYMBOL');
  const row = `#positions tbody tr[data-symbol="${sym}"]`;
  const hasPos = await page.waitForSelector(row, { timeout: 15000 }).then(() => true, () => false);
  check(hasPos, `positions table shows ${sym}`, hasPos ? undefined : await page.textContent('#positions tbody'));
  if (hasPos) {
    const cells = await page.$$eval(row + ' td', (tds) => tds.map((t) => t.textContent));
    check(Number(cells[1].replace(/,/g, '')) === Number(env('DASH_QTY')), `position quantity ${env('DASH_QTY')}`, cells);
    if (env('DASH_AVG')) check(cells[2] === env('DASH_AVG'), `position average price ${env('DASH_AVG')}`, cells);
  }

  const token = () => page.evaluate(() => JSON.parse(sessionStorage.getItem('qb.auth')).access);
  const firstToken = stored && stored.access;
  const apiCall = async (method, path, body) => {
    const r = await fetch(API + path, {
      method,
      headers: { Authorization: 'Bearer ' + (await token()), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  };
  const until = async (fn, ms, what) => {
    const end = Date.now() + ms;
    let v;
    while (Date.now() < end) { v = await fn(); if (v) return v; await new Promise((res) => setTimeout(res, 150)); }
    check(false, 'timed out: ' + what, v);
    return null;
  };

  // ---- live stream connected ----
  const live = await page.waitForFunction(() => /connected/.test(document.getElementById('stream-pill').textContent), null, { timeout: 10000 })
    .then(() => true, () => false);
  check(live, 'live stream (signals, orders) connected', await page.textContent('#stream-pill'));
  const ks = await page.textContent('#ks-state');
  check(/Off|ENGAGED/.test(ks), 'kill switch state shown', ks);
  // ---- strategy controls ----
  const sid = env('DASH_STRATEGY');
  const srow = `#strategies-table tr[data-strategy="${sid}"]`;
  const hasStrat = await page.waitForSelector(srow, { timeout: 10000 }).then(() => true, () => false);
  check(hasStrat, `strategies table shows ${sid}`, await page.textContent('#strategies-table tbody'));
  if (hasStrat) {
    check(await page.getAttribute(srow + ' .switch', 'aria-checked') === 'true', 'strategy shown enabled');
    check(await page.$eval(srow + ' select', (s) => s.value) === 'paper', 'strategy shown in paper mode');
    check(await page.$eval(srow + ' select option[value="live"]', (o) => o.disabled), 'live mode not offered to a trader');
    await page.focus(srow + ' .switch');
    await page.keyboard.press('Space'); // keyboard operable
    await page.waitForFunction((sel) => document.querySelector(sel).getAttribute('aria-checked') === 'false', srow + ' .switch', { timeout: 10000 });
    await page.selectOption(srow + ' select', 'off');
    const st = await until(async () => {
      const r = await apiCall('GET', `/api/v1/strategies/${encodeURIComponent(sid)}`);
      return r.status === 200 && r.json.enabled === false && r.json.mode === 'off' ? r.json : null;
    }, 15000, 'strategy disabled and off');
    check(!!st, 'strategy disabled and mode off (read back through the API)', st);
    await page.click('#refresh-all');
    await page.waitForFunction((sel) => { const r = document.querySelector(sel); return r && r.querySelector('select').value === 'off'; }, srow, { timeout: 10000 }).catch(() => {});
    check(await page.getAttribute(srow + ' .switch', 'aria-checked') === 'false' &&
      await page.$eval(srow + ' select', (s) => s.value) === 'off', 'after a refresh the table shows disabled, off');
  }

  // ---- an order from another client appears live (SSE) ----
  const o = await apiCall('POST', '/api/v1/orders', { symbol: sym, side: 'sell', qty: 3, type: 'limit', limit_price: 108, time_in_force: 'gtc' });
  check(o.status === 202 && o.json.order_id, 'another client placed an order', o);
  const orow = `#orders tr[data-order="${o.json && o.json.order_id}"]`;
  const liveRow = await page.waitForFunction((sel) => {
    const r = document.querySelector(sel);
    return r && /accepted|submitted|new/.test(r.cells[5].textContent) && r.cells[1].textContent;
  }, orow, { timeout: 15000 }).then(() => true, () => false);
  check(liveRow, 'the order appeared in the orders table through the live stream', await page.textContent('#orders tbody'));
  if (liveRow) {
    const cells = await page.$$eval(orow + ' td', (tds) => tds.map((t) => t.textContent));
    check(cells[1] === sym && cells[2] === 'sell' && cells[3] === '3', 'live order row: symbol, side, quantity', cells);
  }

  // ---- a bad backtest: the API's error is shown next to the form ----
  await page.fill('#bt-strategy', env('BT_STRATEGY'));
  await page.fill('#bt-symbols', env('BT_SYMBOLS'));
  await page.selectOption('#bt-timeframe', env('BT_TIMEFRAME', '1d'));
  await page.fill('#bt-start', env('BT_FROM', ''));
  await page.fill('#bt-end', env('BT_TO', ''));
  await page.fill('#bt-params', '{"fast": 10,');
  await page.click('#bt-submit');
  const perr = await page.textContent('#bt-error');
  check(/JSON/.test(perr) && (await page.getAttribute('#bt-params', 'aria-invalid')) === 'true', 'bad parameters refused in the form', perr);
  await page.fill('#bt-params', env('BT_PARAMS', '{}'));
  await page.fill('#bt-grid', env('BT_GRID', ''));
  await page.fill('#bt-cash', '-5');
  await page.click('#bt-submit');
  const cashErr = await page.waitForFunction(() => document.getElementById('bt-error').textContent.trim(), null, { timeout: 10000 })
    .then((h) => h.jsonValue(), () => '');
  check(/cash/i.test(cashErr), 'API error (negative cash) shown with the field', cashErr);
  await page.fill('#bt-cash', '100000');

  // ---- the backtest: progress, then result ----
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('bt-progress');
    new MutationObserver(() => window.__progress.push(Number(bar.getAttribute('aria-valuenow'))))
      .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
  });
  await page.click('#bt-submit');
  await page.waitForSelector('#bt-run', { state: 'visible', timeout: 10000 });
  const label = await page.textContent('#bt-label');
  check(/^Run [0-9a-f-]{36}$/.test(label), 'backtest accepted: run id shown', label);
  const final = await page.waitForFunction(() => /finished|failed/.test(document.getElementById('bt-state').textContent),
    null, { timeout: Number(env('BT_TIMEOUT_MS', '120000')) }).then(() => page.textContent('#bt-state'), () => 'timeout');
  check(final === 'finished', 'backtest finished', { state: final, error: await page.textContent('#bt-run-error') });
  const seen = await page.evaluate(() => window.__progress);
  console.log('progress bar values seen: ' + seen.join(' '));
  check(seen.some((v) => v > 0 && v < 100), 'progress bar moved through intermediate values', seen);
  check(seen.length && seen[seen.length - 1] === 100, 'progress bar ends at 100%', seen);
  for (let i = 1; i < seen.length; i++) if (seen[i] < seen[i - 1]) { check(false, 'progress never goes back', seen); break; }

  const hasResult = await page.waitForSelector('#bt-result', { state: 'visible', timeout: 15000 }).then(() => true, () => false);
  check(hasResult, 'result shown', await page.textContent('#bt-run-error'));
  if (hasResult) {
    const metrics = await page.$$eval('#bt-metrics div', (ds) => Object.fromEntries(ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
    check(metrics['Total return'] !== undefined && /%$/.test(metrics['Total return']), 'metric: total return', metrics);
    check(metrics['Sharpe'] !== undefined && metrics['Max drawdown'] !== undefined, 'metrics: sharpe, max drawdown', metrics);
    const eq = await page.$eval('#chart-equity svg path.series', (p) => p.getAttribute('d')).catch(() => '');
    const npts = (eq.match(/[ML]/g) || []).length;
    check(npts >= 20, 'equity chart drawn', npts);
    const dd = await page.$eval('#chart-drawdown svg path.series', (p) => p.getAttribute('d')).catch(() => '');
    check((dd.match(/[ML]/g) || []).length >= 20, 'drawdown chart drawn');
    const aria = await page.getAttribute('#chart-equity svg', 'aria-label');
    check(/Equity: \d+ points/.test(aria || ''), 'equity chart has an accessible summary', aria);
  }

  // ---- accessibility basics: every control is named ----
  const unnamed = await page.$$eval('input, select, button, [role="switch"], [role="progressbar"]', (els) => els
    .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
      !e.getAttribute('aria-labelledby') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map((e) => e.id || e.outerHTML.slice(0, 80)));
  check(unnamed.length === 0, 'every form control, button, switch and progress bar has an accessible name', unnamed);

  // ---- the session survived token refreshes ----
  // (12 s tokens: the page refreshes about 5 s after login, and again every 5 s)
  const nowToken = await until(async () => { const t = await token(); return t !== firstToken ? t : null; }, 20000, 'a token refresh');
  check(!!nowToken, 'access token refreshed on its own');
  const back = await apiCall('GET', '/api/v1/me');
  check(back.status === 200 && back.json.name === env('DASH_USER'), 'the refreshed token works', back);
  const who2 = await page.textContent('#who');
  check(await page.isVisible('#main') && who2.includes(env('DASH_USER')), 'still logged in after refreshes');
  const relive = await page.waitForFunction(() => /connected/.test(document.getElementById('stream-pill').textContent), null, { timeout: 10000 })
    .then(() => true, () => false);
  check(relive, 'live stream connected after refreshes (re-opened with the new token)', await page.textContent('#stream-pill'));

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: SHOT, fullPage: true });
  console.log('screenshot: ' + SHOT);

  // ---- kill switch: confirmation dialog, then ENGAGED; the open order is canceled ----
  check(await page.isDisabled('#ks-off'), 'release not offered to a trader');
  await page.click('#ks-on');
  await page.waitForSelector('#confirm', { state: 'visible', timeout: 5000 });
  await page.click('#confirm-ok'); // no reason: the dialog refuses to close
  check(await page.isVisible('#confirm'), 'kill switch needs a reason');
  await page.fill('#confirm-reason', 'dashboard e2e');
  await page.click('#confirm-ok');
  const engaged = await page.waitForFunction(() => /ENGAGED/.test(document.getElementById('ks-state').textContent), null, { timeout: 20000 })
    .then(() => true, () => false);
  check(engaged, 'kill switch shown ENGAGED', await page.textContent('#ks-state'));
  check(/ON/.test(await page.textContent('#ks-pill')), 'kill switch pill ON');
  const canceled = await page.waitForFunction((sel) => { const r = document.querySelector(sel); return r && /cancel/.test(r.cells[5].textContent); },
    orow, { timeout: 20000 }).then(() => true, () => false);
  check(canceled, 'the open order is shown canceled (live)', await page.$eval(orow, (r) => r.textContent).catch(() => ''));
  await page.evaluate(() => window.scrollTo(0, 0));
  const shot2 = SHOT.replace(/\.png$/, '') + '-kill-switch.png';
  await page.screenshot({ path: shot2, fullPage: true });
  console.log('screenshot: ' + shot2);

  check(external.length === 0, 'no request left the gateway origin', external);
  check(pageErrors.length === 0, 'no uncaught script error', pageErrors);
  if (consoleErrors.length) console.log('console errors (not failing): ' + JSON.stringify(consoleErrors.slice(0, 10)));
  exitCode = failed ? 1 : 0;
} catch (e) {
  check(false, 'browser test threw', String(e && e.stack || e));
  exitCode = 1;
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
