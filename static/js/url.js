// Filters (and the open task) ↔ the page's query string, so a view can be bookmarked and shared.

import { STATUSES } from './store.js';

/** @returns {import('./store.js').Filters} */
export function readFilters(search) {
  const query = new URLSearchParams(search);
  const status = (query.get('status') || '').toUpperCase();
  const page = Number.parseInt(query.get('page') || '1', 10);
  return {
    status: STATUSES.includes(status) ? status : '',
    task_type: query.get('task_type') || '',
    q: (query.get('q') || '').trim(),
    page: Number.isInteger(page) && page >= 1 ? page : 1,
    task: query.get('task') || '',
  };
}

/** The query string for `filters` ('' or '?…'), leaving defaults out so URLs stay short. */
export function writeFilters(filters) {
  const query = new URLSearchParams();
  if (filters.status) query.set('status', filters.status);
  if (filters.task_type) query.set('task_type', filters.task_type);
  if (filters.q) query.set('q', filters.q);
  if (filters.page > 1) query.set('page', String(filters.page));
  if (filters.task) query.set('task', filters.task);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** The `GET /api/tasks/` query for one page of `filters`. */
export function listQuery(filters, limit) {
  const query = new URLSearchParams({ limit: String(limit), offset: String((filters.page - 1) * limit) });
  for (const name of ['status', 'task_type', 'q']) if (filters[name]) query.set(name, filters[name]);
  return `?${query}`;
}
