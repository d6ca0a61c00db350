// fetch wrappers for the REST API: parsed JSON, or an ApiError carrying status, detail and field.

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

/** @param {{body: BodyInit, type: string}} [content] the request body and its Content-Type */
async function request(method, path, content) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (content) {
    init.headers['Content-Type'] = content.type;
    init.body = content.body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `server unreachable (${error.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.detail || response.statusText || 'request failed', data?.field);
  }
  return data;
}

const task = (id) => `/api/tasks/${encodeURIComponent(id)}`;
const LOG_PAGE = 5000; // lines per log request: the server's most, so one answer holds a whole capped log

export const api = {
  taskTypes: () => request('GET', '/api/task-types'),
  /** @param {string} query from url.listQuery */
  listTasks: (query) => request('GET', `/api/tasks/${query}`),
  stats: () => request('GET', '/api/stats'),
  getTask: (id) => request('GET', task(id)),
  submit: (taskType, parameters) => request('POST', '/api/tasks/submit', json({ task_type: taskType, parameters })),
  cancel: (id) => request('DELETE', task(id)),
  retry: (id) => request('POST', `${task(id)}/retry`),
  logs: (id, after) => request('GET', `${task(id)}/logs?after=${after}&limit=${LOG_PAGE}`),
  /** The file itself is the body, sent as `type`; the server checks its bytes against that type. */
  upload: (file, type) => request('POST', `/api/uploads?filename=${encodeURIComponent(file.name)}`, { body: file, type }),
};
