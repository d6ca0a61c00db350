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

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
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

export const api = {
  taskTypes: () => request('GET', '/api/task-types'),
  /** @param {string} query from url.listQuery */
  listTasks: (query) => request('GET', `/api/tasks/${query}`),
  stats: () => request('GET', '/api/stats'),
  getTask: (id) => request('GET', `/api/tasks/${encodeURIComponent(id)}`),
  submit: (taskType, parameters) => request('POST', '/api/tasks/submit', { task_type: taskType, parameters }),
  cancel: (id) => request('DELETE', `/api/tasks/${encodeURIComponent(id)}`),
  retry: (id) => request('POST', `/api/tasks/${encodeURIComponent(id)}/retry`),
};
