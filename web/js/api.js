// api.js — the dashboard's client of /api/v1: login, tokens, JSON calls.
//
// Tokens: the access token (short-lived JWT) and the refresh token live in
// memory and in sessionStorage (so a reload of the tab stays logged in; a
// new tab or a closed browser logs in again). The access token is refreshed
// through POST /auth/refresh shortly before it expires; each refresh token
// works once, so refreshes are serialised (one in flight at a time). A call
// answered 401 triggers one refresh and one retry; when the refresh fails
// the session is over (onLogout listeners run).
//
// Errors: every non-2xx answer becomes an ApiError carrying the API's
// {"error": {"code", "message", "field"}} so the UI can show the message and
// point at the field.

const STORE_KEY = 'qb.auth';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.field = field || null;
  }
}

let auth = null;          // {access, refresh, exp (ms), user: {user_id, name, role}}
let refreshTimer = null;
let refreshing = null;    // the promise of the refresh in flight
const listeners = { login: [], logout: [], token: [] };

export function on(what, fn) { listeners[what].push(fn); }
function emit(what, arg) { for (const fn of listeners[what]) { try { fn(arg); } catch (e) { console.error(e); } } }

export function user() { return auth ? auth.user : null; }
export function accessToken() { return auth ? auth.access : null; }
export function loggedIn() { return !!auth; }

function save() {
  try {
    if (auth) sessionStorage.setItem(STORE_KEY, JSON.stringify(auth));
    else sessionStorage.removeItem(STORE_KEY);
  } catch (_) { /* storage disabled: memory only */ }
}

function adopt(tok) {
  auth = {
    access: tok.access_token,
    refresh: tok.refresh_token,
    exp: Date.now() + (tok.expires_in || 900) * 1000,
    user: tok.user || (auth && auth.user) || null,
  };
  save();
  schedule();
}

// Refresh at 80% of the token's life, at least 5 s from now.
function schedule() {
  clearTimeout(refreshTimer);
  if (!auth) return;
  const left = auth.exp - Date.now();
  const wait = Math.max(5000, Math.min(left - 30000, left * 0.8));
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, wait);
}

// Restores a session kept in sessionStorage; true when there was one.
export async function restore() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null'); } catch (_) { saved = null; }
  if (!saved || !saved.refresh) return false;
  auth = saved;
  if (auth.exp - Date.now() < 10000) {
    try { await refresh(); } catch (_) { return false; }
  } else {
    schedule();
  }
  emit('login', auth.user);
  return true;
}

export async function login(username, password) {
  const tok = await call('POST', '/api/v1/auth/login', { username, password }, { anonymous: true });
  adopt(tok);
  emit('login', auth.user);
  return auth.user;
}

export function refresh() {
  if (refreshing) return refreshing;
  if (!auth || !auth.refresh) return Promise.reject(new ApiError(401, 'unauthorized', 'not logged in'));
  const rt = auth.refresh;
  refreshing = call('POST', '/api/v1/auth/refresh', { refresh_token: rt }, { anonymous: true, noRetry: true })
    .then((tok) => { adopt(tok); emit('token', auth.access); return auth.access; })
    .catch((e) => {
      // 4xx: the refresh token is no good any more; the session is over.
      if (e.status >= 400 && e.status < 500) endSession('Your session has expired: please sign in again.');
      else schedule();
      throw e;
    })
    .finally(() => { refreshing = null; });
  return refreshing;
}

export async function logout() {
  const rt = auth && auth.refresh;
  if (rt) {
    try { await call('POST', '/api/v1/auth/logout', { refresh_token: rt }, { noRetry: true }); } catch (_) { /* gone anyway */ }
  }
  endSession(null);
}

function endSession(reason) {
  clearTimeout(refreshTimer);
  const had = !!auth;
  auth = null;
  save();
  if (had) emit('logout', reason);
}

// call(method, path, body?, opts?) -> parsed JSON (null for 204).
// opts.anonymous: send no credentials; opts.noRetry: no refresh on 401.
export async function call(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined && body !== null) headers['Content-Type'] = 'application/json';
  if (!opts.anonymous && auth) headers.Authorization = 'Bearer ' + auth.access;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body !== undefined && body !== null ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The gateway cannot be reached (' + (e.message || 'network error') + ')');
  }
  if (resp.status === 401 && !opts.anonymous && !opts.noRetry && auth) {
    await refresh();
    return call(method, path, body, { ...opts, noRetry: true });
  }
  const text = await resp.text();
  let json = null;
  if (text) { try { json = JSON.parse(text); } catch (_) { json = null; } }
  if (!resp.ok) {
    const e = json && json.error;
    let msg = e && e.message;
    if (!msg) msg = `${method} ${path}: HTTP ${resp.status}`;
    if (resp.status === 429) {
      const ra = resp.headers.get('Retry-After');
      if (ra) msg += ` (retry in ${ra} s)`;
    }
    throw new ApiError(resp.status, e && e.code, msg, e && e.field);
  }
  return json;
}

// Every item of a paginated list ({items, next_cursor}), up to maxPages pages.
export async function listAll(path, maxPages = 20) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await call('GET', cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    const items = Array.isArray(page) ? page : (page && page.items) || [];
    out.push(...items);
    cursor = page && page.next_cursor;
    if (!cursor) break;
  }
  return out;
}
