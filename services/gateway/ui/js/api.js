// The one way the UI talks to the gateway: /api/v1, same origin, cookies.
//
// - Unsafe methods carry the CSRF header (x-csrf-token = the atrium_csrf cookie).
// - A failure becomes an ApiError whose .message is a sentence for people
//   (from the gateway's {"error": {code, message, field}} body).
// - The login is renewed shortly before the access token expires, and once on a 401,
//   through POST /api/v1/refresh; when that fails, listeners of onSignedOut are told.

const BASE = '/api/v1';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const EXPIRY_KEY = 'atrium.access_expires_at';
// Renew this long before the access token expires.
const REFRESH_AHEAD_MS = 60 * 1000;

export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.field = field || '';
    this.retryAfter = retryAfter || 0;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

export function csrfToken() {
  return cookie('atrium_csrf');
}

// Field names as people read them: "options.zone_id" -> "Zone id".
function fieldLabel(field) {
  const last = String(field).split('.').pop().replace(/\[\d+\]$/, '').replace(/_/g, ' ');
  return last.charAt(0).toUpperCase() + last.slice(1);
}

function finish(text) {
  let s = String(text || '').trim();
  if (!s) return '';
  s = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + '.';
}

// A sentence for the {"error": {...}} body of a failed call.
// `own`: the call is a sign-in step, whose "unauthenticated" message is the answer itself
// ("invalid username or password").
export function sentence(status, error, retryAfter, own = false) {
  const code = (error && error.code) || '';
  let message = (error && error.message) || '';
  const field = (error && error.field) || '';
  if (field && message.startsWith(field + ':')) {
    message = message.slice(field.length + 1).trim();
  }
  if (field) message = `${fieldLabel(field)}: ${message || 'is not valid'}`;
  switch (code) {
    case 'unauthenticated':
      if (own && message) return finish(message);
      return 'You are not signed in, or your sign-in has expired. Please sign in again.';
    case 'csrf':
      return 'The page could not prove it is yours (CSRF check). Reload the page and try again.';
    case 'internal':
      return 'The server had an internal problem. Please try again; if it persists, tell your administrator.';
    case 'unavailable':
      return finish(message || 'A service is unavailable right now') + ' Please try again in a moment.';
    case 'timeout':
      return 'The server took too long to answer. Please try again.';
  }
  if (status === 429 || code === 'resource_exhausted' || code === 'too_many') {
    const wait = retryAfter ? ` Try again in ${retryAfter} seconds.` : ' Try again later.';
    return finish(message || 'Too many attempts') + wait;
  }
  if (code === 'permission_denied' && !message) return 'You are not allowed to do that.';
  if (code === 'not_found' && !message) return 'That no longer exists.';
  if (!message) return `The request failed (HTTP ${status}).`;
  return finish(message);
}

// ---- renewing the login ------------------------------------------------------------------

let refreshing = null;
let refreshTimer = 0;
const signedOutListeners = new Set();

export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

function signedOut(reason) {
  clearLoginExpiry();
  for (const fn of signedOutListeners) {
    try { fn(reason); } catch (e) { console.error(e); }
  }
}

// Remembers when the access token expires (from a login answer) and plans its renewal.
export function noteLogin(answer) {
  const at = answer && answer.access_token_expires_at;
  if (!at) return;
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) return;
  try { sessionStorage.setItem(EXPIRY_KEY, String(ms)); } catch (e) { /* private mode */ }
  scheduleRefresh();
}

export function clearLoginExpiry() {
  try { sessionStorage.removeItem(EXPIRY_KEY); } catch (e) { /* private mode */ }
  clearTimeout(refreshTimer);
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  let ms = 0;
  try { ms = Number(sessionStorage.getItem(EXPIRY_KEY)) || 0; } catch (e) { return; }
  if (!ms) return;
  const wait = Math.max(5000, ms - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, wait);
}

// Renews the tokens from the refresh cookie; one renewal at a time. Resolves true on success.
export function refresh() {
  // No CSRF cookie: no login was ever made in this browser, nothing to renew.
  if (!csrfToken()) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await fetch(BASE + '/refresh', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken() },
          body: '{}',
        });
        if (!res.ok) return false;
        const answer = await res.json().catch(() => ({}));
        noteLogin(answer);
        return answer.status === 'LOGIN_STATUS_SUCCESS' || !answer.status;
      } catch (e) {
        return false;
      } finally {
        setTimeout(() => { refreshing = null; }, 0);
      }
    })();
  }
  return refreshing;
}

// ---- calls ------------------------------------------------------------------------------

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => params.append(k, x));
    else params.append(k, String(v));
  }
  const q = params.toString();
  return q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path;
}

async function send(method, path, body, options) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (!SAFE.has(method)) headers['x-csrf-token'] = csrfToken();
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network',
      'The server could not be reached. Check your connection and try again.');
  }
  return res;
}

// Calls /api/v1<path>. Resolves the JSON answer; rejects with an ApiError (a sentence).
//   options.query:   an object for the query string
//   options.signal:  an AbortSignal
//   options.noRetry: do not renew the login on a 401 (the login routes themselves)
export async function api(method, path, body, options = {}) {
  method = method.toUpperCase();
  path = withQuery(path, options.query);
  let res = await send(method, path, body, options);
  if (res.status === 401 && !options.noRetry) {
    if (await refresh()) {
      res = await send(method, path, body, options);
    }
    if (res.status === 401) {
      const err = await toError(res, options);
      signedOut(err.message);
      throw err;
    }
  }
  if (!res.ok) throw await toError(res, options);
  if (res.status === 204) return {};
  const text = await res.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(res.status, 'bad_answer', 'The server sent an answer the page cannot read.');
  }
}

async function toError(res, options = {}) {
  let error = null;
  try {
    const body = await res.json();
    error = body && body.error;
  } catch (e) { /* not JSON */ }
  const retry = Number(res.headers.get('retry-after')) || 0;
  return new ApiError(res.status, error && error.code, sentence(res.status, error, retry, !!options.noRetry),
    error && error.field, retry);
}

export const get = (path, query, options = {}) => api('GET', path, undefined, { ...options, query });
export const post = (path, body, options) => api('POST', path, body === undefined ? {} : body, options);
export const put = (path, body, options) => api('PUT', path, body === undefined ? {} : body, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);

// Follows a watch route (Server-Sent Events): onMessage(json) for every event, onError(sentence)
// when the stream reports an error. The browser reconnects a dropped stream by itself; after
// a 401 the login is renewed first. Returns a function that stops watching.
export function watch(path, onMessage, onError) {
  let source = null;
  let stopped = false;
  let failures = 0;
  const open = () => {
    if (stopped) return;
    source = new EventSource(BASE + path, { withCredentials: true });
    source.onmessage = (event) => {
      failures = 0;
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      onMessage(data);
    };
    source.addEventListener('error', (event) => {
      // A server-sent "error" event carries the {"error": …} body.
      if (event.data) {
        let body = null;
        try { body = JSON.parse(event.data); } catch (e) { /* ignore */ }
        if (onError) onError(sentence(0, body && body.error));
        return;
      }
      // The connection failed or closed: renew the login and reopen, a few times.
      source.close();
      if (stopped) return;
      failures += 1;
      if (failures > 5) {
        if (onError) onError('Lost the connection to the server. Reload the page to try again.');
        return;
      }
      // GET /me renews the login on a 401 (so the stream's cookie is fresh again).
      api('GET', '/me').catch(() => {})
        .finally(() => setTimeout(open, Math.min(1000 * failures, 5000)));
    });
  };
  open();
  return () => {
    stopped = true;
    if (source) source.close();
  };
}

scheduleRefresh();
