// stream.js — one Server-Sent Events subscription to /api/v1/stream.
//
// EventSource cannot send headers, so the access token goes in the
// access_token query parameter. While the connection merely drops,
// EventSource reconnects by itself and sends Last-Event-ID, and the
// gateway resumes right after it. When the gateway refuses the reconnect
// (the token in the URL expired, or it restarted) the EventSource closes
// for good; then, and after every token refresh, the stream is opened anew
// with the current token and last_event_id= the last id seen, so nothing is
// missed either. When the gateway cannot resume (restarted, or we were away
// longer than its buffer) it sends `event: reset`: onReset re-reads the
// state through the REST routes.

import { accessToken } from './api.js';

export class LiveStream {
  // params: {topics: 'signals,orders', run?: id, symbols?: 'A,B'}
  // handlers: {signals(msg, ev), orders(msg, ev), backtests(msg, ev), ...,
  //            onReset(reason), onState('live'|'connecting'|'offline'), onOpen()}
  constructor(params, handlers) {
    this.params = params;
    this.h = handlers;
    this.es = null;
    this.lastId = '';
    this.retryTimer = null;
    this.backoff = 1000;
    this.closed = true;
  }

  url() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(this.params)) if (v) q.set(k, v);
    const tok = accessToken();
    if (tok) q.set('access_token', tok);
    if (this.lastId) q.set('last_event_id', this.lastId);
    return '/api/v1/stream?' + q.toString();
  }

  state(s) { if (this.h.onState) this.h.onState(s); }

  open() {
    this.closed = false;
    this.teardown();
    this.state('connecting');
    const es = new EventSource(this.url());
    this.es = es;
    es.onopen = () => {
      this.backoff = 1000;
      this.state('live');
      if (this.h.onOpen) this.h.onOpen();
    };
    es.onerror = () => {
      if (this.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // refused (401 after the token expired, 503...): reopen ourselves
        this.state('offline');
        this.teardown();
        if (!this.closed) {
          this.retryTimer = setTimeout(() => this.open(), this.backoff);
          this.backoff = Math.min(this.backoff * 2, 15000);
        }
      } else {
        this.state('connecting'); // EventSource retries by itself
      }
    };
    for (const name of String(this.params.topics || '').split(',')) {
      if (!name) continue;
      es.addEventListener(name, (ev) => this.dispatch(name, ev));
    }
    es.addEventListener('reset', (ev) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId;
      let reason = '';
      try { reason = JSON.parse(ev.data).reason || ''; } catch (_) { /* plain text */ }
      if (this.h.onReset) this.h.onReset(reason);
    });
  }

  dispatch(name, ev) {
    if (ev.lastEventId) this.lastId = ev.lastEventId;
    let data;
    try { data = JSON.parse(ev.data); } catch (_) { return; }
    const fn = this.h[name];
    if (fn) fn(data.message || {}, data);
  }

  // After a token refresh: continue on a connection with the new token.
  reopen() { if (!this.closed) this.open(); }

  teardown() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.es) { this.es.onerror = null; this.es.close(); this.es = null; }
  }

  close() {
    this.closed = true;
    this.teardown();
    this.state('offline');
  }
}
