// Filters ↔ query string (static/js/url.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { listQuery, readFilters, writeFilters } from '../../../static/js/url.js';

const DEFAULTS = { status: '', task_type: '', q: '', text: '', from: '', to: '', priority: '', page: 1, task: '' };

test('filters survive a round trip through the URL', () => {
  const cases = [
    DEFAULTS,
    { ...DEFAULTS, status: 'RUNNING', task_type: 'text_processing', q: 'ab12', page: 3, task: 'ab12cd' },
    { ...DEFAULTS, q: 'a b&c=d' },
    { ...DEFAULTS, text: 'Zürich timeout&x=1', from: '2026-11-01', to: '2026-11-30', priority: 'high' },
  ];
  for (const filters of cases) assert.deepEqual(readFilters(writeFilters(filters)), filters);
});

test('defaults are left out of the URL', () => {
  assert.equal(writeFilters(DEFAULTS), '');
  assert.equal(writeFilters({ ...DEFAULTS, status: 'FAILED', page: 1 }), '?status=FAILED');
});

test('hand-edited URLs are normalised: unknown status dropped, bad pages are page 1', () => {
  assert.deepEqual(readFilters('?status=running&page=0'), { ...DEFAULTS, status: 'RUNNING' });
  assert.deepEqual(readFilters('?status=SLEEPING&page=x&q=%20ab%20'), { ...DEFAULTS, q: 'ab' });
});

test('hand-edited search filters are normalised: bad days and priorities dropped, text trimmed', () => {
  assert.deepEqual(readFilters('?from=2026-13-45&to=yesterday&priority=urgent&text=%20a%20b%20'),
    { ...DEFAULTS, text: 'a b' });
});

test('the list query sends the day after "to": the dashboard includes that day, the API excludes it', () => {
  const query = new URLSearchParams(listQuery({ ...DEFAULTS, text: 'x', from: '2026-02-28', to: '2026-02-28' }, 50));
  assert.deepEqual(Object.fromEntries(query), { limit: '50', offset: '0', text: 'x', from: '2026-02-28', to: '2026-03-01' });
});

test('the list query pages by offset and carries only the filters that are set', () => {
  const query = new URLSearchParams(listQuery({ ...DEFAULTS, task_type: 'batch_processing', page: 3 }, 50));
  assert.deepEqual(Object.fromEntries(query), { limit: '50', offset: '100', task_type: 'batch_processing' });
});
