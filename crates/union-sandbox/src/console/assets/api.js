// FlyteAdmin's HTTP API (/api/v1), as the sandbox serves it: protobuf JSON with proto field names.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const TOKEN_KEY = 'union-console-token';
const SIGNIN_KEY = 'union-console-signin';
let signingIn = false;

/** The bearer token from signing in, for sandboxes started with --auth. */
export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Signs in through the sandbox's own OAuth2 server: the authorization code flow with PKCE, as
 * flytekit's public client does, coming back to /console/signin (see signinPage).
 */
async function signIn() {
  if (signingIn) return;
  signingIn = true;
  const meta = await (await fetch('/.well-known/oauth-authorization-server')).json();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const back = window.location.pathname + window.location.search;
  sessionStorage.setItem(SIGNIN_KEY, JSON.stringify({ verifier, state, back, token: new URL(meta.token_endpoint).pathname }));
  // The endpoints name the sandbox's address; this page may have reached it by another name.
  const url = new URL(new URL(meta.authorization_endpoint).pathname, window.location.origin);
  url.search = new URLSearchParams({
    client_id: 'flytectl', response_type: 'code', scope: 'all', state,
    redirect_uri: `${window.location.origin}/console/signin`,
    code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: 'S256',
  }).toString();
  window.location.assign(url.toString());
}

/** The end of signing in: the code exchanged for a token, then back to the page that asked. */
export async function finishSignIn(query) {
  const saved = JSON.parse(sessionStorage.getItem(SIGNIN_KEY) || 'null');
  sessionStorage.removeItem(SIGNIN_KEY);
  if (query.get('error')) throw new Error(`Signing in was refused (${query.get('error')}).`);
  if (!saved || saved.state !== query.get('state')) throw new Error('This sign-in was not started by this page; open the console again.');
  const res = await fetch(saved.token, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: query.get('code') || '', client_id: 'flytectl',
      redirect_uri: `${window.location.origin}/console/signin`, code_verifier: saved.verifier,
    }),
  });
  const body = await res.json();
  if (!res.ok || !body.access_token) throw new Error(`The sandbox did not give a token: ${body.error_description || body.error || res.status}`);
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  return saved.back || '/console';
}

export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...authHeaders() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1/${path}`, init);
  const text = await res.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (res.status === 401) {
    // No token yet, or it expired: sign in (the page leaves), then come back here.
    sessionStorage.removeItem(TOKEN_KEY);
    await signIn();
    throw new ApiError('Signing in…', 401);
  }
  if (!res.ok) throw new ApiError(data.message || `${res.status} ${res.statusText}`, res.status);
  return data;
}

export const enc = encodeURIComponent;

/** "project/domain/name" of an id, each part encoded. */
export function idPath(id, ...more) {
  return [id.project, id.domain, id.name, ...more].map(enc).join('/');
}

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT', 'SKIPPED', 'RECOVERED']);

/** A phase name; the JSON leaves out the zero value (UNDEFINED). */
export function phaseOf(closure) {
  return (closure && closure.phase) || 'UNDEFINED';
}

/** Milliseconds of a protobuf JSON duration ("1.5s"). */
export function durationMs(d) {
  if (!d) return null;
  const n = parseFloat(String(d).replace(/s$/, ''));
  return Number.isFinite(n) ? n * 1000 : null;
}

export function formatDuration(ms) {
  if (ms == null) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString();
}
