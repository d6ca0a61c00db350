// Filters (and the open task) ↔ the page's query string, so a view can be bookmarked and shared.

import { PRIORITIES, SCHEDULED, STATUSES } from './store.js';

const SEARCH_FIELDS = ['q', 'text', 'from', 'to', 'priority'];

/** @returns {import('./store.js').Filters} */
export function readFilters(search) {
  const query = new URLSearchParams(search);
  const status = (query.get('status') || '').toUpperCase();
  const page = Number.parseInt(query.get('page') || '1', 10);
  return {
    status: STATUSES.includes(status) || status === SCHEDULED ? status : '',
    task_type: query.get('task_type') || '',
    q: (query.get('q') || '').trim(),
    text: (query.get('text') || '').trim(),
    from: isDate(query.get('from')) ? query.get('from') : '',
    to: isDate(query.get('to')) ? query.get('to') : '',
    priority: PRIORITIES.includes(query.get('priority')) ? query.get('priority') : '',
    page: Number.isInteger(page) && page >= 1 ? page : 1,
    task: query.get('task') || '',
  };
}

/** The query string for `filters` ('' or '?…'), leaving defaults out so URLs stay short. */
export function writeFilters(filters) {
  const query = new URLSearchParams();
  if (filters.status) query.set('status', filters.status);
  if (filters.task_type) query.set('task_type', filters.task_type);
  for (const name of SEARCH_FIELDS) if (filters[name]) query.set(name, filters[name]);
  if (filters.page > 1) query.set('page', String(filters.page));
  if (filters.task) query.set('task', filters.task);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** The `GET /api/tasks/` query for one page of `filters`. */
export function listQuery(filters, limit) {
  const query = new URLSearchParams({ limit: String(limit), offset: String((filters.page - 1) * limit) });
  for (const name of ['status', 'task_type', ...SEARCH_FIELDS]) if (filters[name]) query.set(name, filters[name]);
  if (filters.status === SCHEDULED) {
    query.delete('status');
    query.set('scheduled', 'true');
  }
  if (filters.to) query.set('to', nextDay(filters.to)); // the dashboard's "to" day is included, the API's excluded
  return `?${query}`;
}

/** Whether `value` is a date as the date inputs give it: YYYY-MM-DD (a day in UTC). */
export function isDate(value) {
  return /^\d{4}-\d{2}-\d{2}$/.test(value || '') && !Number.isNaN(Date.parse(`${value}T00:00:00Z`));
}

export function nextDay(date) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}
