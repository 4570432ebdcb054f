// The Onsite API over fetch: bearer token, JSON in and out, one error type.
// Paths are relative ("v1/…") so the page also works under a path prefix.

export class ApiError extends Error {
  constructor(status, code, message, field, reason) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.reason = reason || '';
  }
}

let token = '';
let onUnauthorized = () => {};

export function setToken(t) {
  token = t || '';
}

export function getToken() {
  return token;
}

/** fn runs when a call made with a token answers 401 (the session ended). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/**
 * The URL of an API path, or null when the path could lead the token
 * elsewhere: it must be relative, start with "v1/", and have no "." or ".."
 * segment (ids come from data and from the address bar; a URL resolves dot
 * segments even percent-encoded).
 */
export function apiUrl(path) {
  // The URL parser drops tabs and newlines and reads "\" as "/": so do we.
  const p = String(path).replace(/[\t\n\r]/g, '').replace(/^\//, '');
  const route = p.split(/[?#]/)[0];
  if (!/^v1\//.test(route)) return null;
  if (route.split(/[/\\]/).some((seg) => /^(\.|%2e){1,2}$/i.test(seg))) return null;
  const url = new URL(p, document.baseURI);
  const base = new URL('v1/', document.baseURI);
  return url.origin === location.origin && url.pathname.startsWith(base.pathname) ? url.href : null;
}

export async function request(method, path, body) {
  const target = apiUrl(path);
  if (!target) throw new ApiError(0, 'bad_path', 'That address is not one of the API\'s.');
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(target, init);
  } catch {
    throw new ApiError(0, 'network', 'Onsite cannot be reached; check the connection.');
  }
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data?.error ?? {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || `${res.status} ${res.statusText}`, e.field, e.reason);
    if (res.status === 401 && headers.Authorization) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);

/** Builds "path?a=1&b=2", leaving out empty values. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString().replace(/%2C/gi, ',');
  return s ? `${path}?${s}` : path;
}

export const enc = encodeURIComponent;
