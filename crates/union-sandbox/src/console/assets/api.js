// FlyteAdmin's HTTP API (/api/v1), as the sandbox serves it: protobuf JSON with proto field names.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: { Accept: 'application/json' } };
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
