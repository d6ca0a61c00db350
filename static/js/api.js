// fetch wrappers for the REST API: parsed JSON, or an ApiError carrying status, detail and field.
// Each request carries the stored token; a 401 waits for a token (see auth.js) and is sent again.
// Paths are the API's own ('/api/…'); they are sent under the app's base (a ROOT_PATH prefix, base.js).

import { authHeaders } from './auth.js';
import { appUrl } from './base.js';

export class ApiError extends Error {
  /** @param {number} status 0 when the server could not be reached */
  constructor(status, detail, field = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.field = field;
  }
}

const json = (value) => ({ body: JSON.stringify(value), type: 'application/json' });

/**
 * @typedef {{token: () => string|null, refused: (sent: string|null) => Promise<void>}} Auth
 * `refused` resolves once a token worth trying is at hand (the user was asked for one).
 */
const NO_AUTH = { token: () => null, refused: null };

/**
 * @param {Auth} auth
 * @param {{body: BodyInit, type: string}} [content] the request body and its Content-Type
 */
async function request(auth, method, path, content) {
  const response = await authorized(auth, method, path, content);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.detail || response.statusText || 'request failed', data?.field);
  }
  return data;
}

/** The response, once it is not a 401 (or there is no one to ask for a token). */
async function authorized(auth, method, path, content) {
  for (;;) {
    const token = auth.token();
    const response = await send(method, path, content, token);
    if (response.status !== 401 || !auth.refused) return response;
    await auth.refused(token); // then the same request again, with the token the user gave
  }
}

async function send(method, path, content, token) {
  const init = { method, headers: { Accept: 'application/json', ...authHeaders(token) } };
  if (content) {
    init.headers['Content-Type'] = content.type;
    init.body = content.body;
  }
  try {
    return await fetch(appUrl(path), init);
  } catch (error) {
    throw new ApiError(0, `server unreachable (${error.message})`);
  }
}

const task = (id) => `/api/tasks/${encodeURIComponent(id)}`;
const schedule = (id) => `/api/schedules/${encodeURIComponent(id)}`;
const artifactPath = (id, name) => `${task(id)}/artifacts/${encodeURIComponent(name)}`;
const LOG_PAGE = 5000; // lines per log request: the server's most, so one answer holds a whole capped log

/** The REST API; with `auth`, every call carries the token and waits out a 401 for a new one. */
export function createApi(auth = NO_AUTH) {
  const call = (method, path, content) => request(auth, method, path, content);
  return {
    taskTypes: () => call('GET', '/api/task-types'),
    /** @param {string} query from url.listQuery */
    listTasks: (query) => call('GET', `/api/tasks/${query}`),
    stats: () => call('GET', '/api/stats'),
    workers: () => call('GET', '/api/workers'),
    /** @param {'hour'|'day'} window */
    series: (window) => call('GET', `/api/metrics/series?window=${window}`),
    getTask: (id) => call('GET', task(id)),
    /** @param {Record<string, unknown>} [options] priority, run_at or delay, beside the parameters */
    submit: (taskType, parameters, options = {}) =>
      call('POST', '/api/tasks/submit', json({ task_type: taskType, parameters, ...options })),
    cancel: (id) => call('DELETE', task(id)),
    retry: (id) => call('POST', `${task(id)}/retry`),
    /** A task waiting for a later start (scheduled, or backing off before a retry) is queued at once. */
    runNow: (id) => call('POST', `${task(id)}/run-now`),
    /** `{queue, paused, paused_at}`; pausing keeps new tasks waiting until the queue is resumed. */
    queue: () => call('GET', '/api/queue'),
    pauseQueue: () => call('POST', '/api/queue/pause'),
    resumeQueue: () => call('POST', '/api/queue/resume'),
    /** A new task from this one: `{}` duplicates it; `parameters` (replacing them whole) and options change it. */
    rerun: (id, changes = {}) => call('POST', `${task(id)}/rerun`, json(changes)),
    /** `{action, ids | filter, dry_run}` → `{matched, eligible, applied, skipped}` */
    bulk: (body) => call('POST', '/api/tasks/bulk', json(body)),
    schedules: () => call('GET', '/api/schedules'),
    createSchedule: (body) => call('POST', '/api/schedules', json(body)),
    editSchedule: (id, changes) => call('PATCH', schedule(id), json(changes)),
    deleteSchedule: (id) => call('DELETE', schedule(id)),
    runSchedule: (id) => call('POST', `${schedule(id)}/run`),
    logs: (id, after) => call('GET', `${task(id)}/logs?after=${after}&limit=${LOG_PAGE}`),
    webhooks: (id) => call('GET', `${task(id)}/webhooks`),
    /** The file itself is the body, sent as `type`; the server checks its bytes against that type. */
    upload: (file, type) => call('POST', `/api/uploads?filename=${encodeURIComponent(file.name)}`, { body: file, type }),
    /** An upload's description: `{id, filename, kind, size, …}` (the detail panel names upload parameters by it). */
    uploadInfo: (id) => call('GET', `/api/uploads/${encodeURIComponent(id)}`),
    /** A file the task produced, as a Blob (an <img> or a link cannot send the token itself). */
    artifact: (id, name) => blob(auth, artifactPath(id, name)),
  };
}

/** The file's URL for a link or an <img>, under the app's base. */
export const artifactUrl = (id, name) => appUrl(artifactPath(id, name));

async function blob(auth, path) {
  const response = await authorized(auth, 'GET', path);
  if (!response.ok) throw new ApiError(response.status, response.statusText || 'request failed');
  return response.blob();
}
