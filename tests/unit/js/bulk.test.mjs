// Bulk actions' pure parts (static/js/bulk.js): the request, the confirmation, the outcome, the selection.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Selection, bulkBody, confirmation, filterOf, outcome } from '../../../static/js/bulk.js';

const NONE = { status: '', task_type: '', q: '', page: 1, task: '' };

test('the filter scope is the list query without paging, only the names that are set', () => {
  assert.deepEqual(filterOf(NONE), {});
  assert.deepEqual(filterOf({ ...NONE, status: 'FAILED', q: 'ab', page: 4, task: 'ab12' }), { status: 'FAILED', q: 'ab' });
});

test('a body carries the ids of a selection, or the filter, and whether it is a dry run', () => {
  assert.deepEqual(bulkBody('retry', { ids: ['a', 'b'] }, true), { action: 'retry', ids: ['a', 'b'], dry_run: true });
  assert.deepEqual(bulkBody('delete', { filter: { status: 'SUCCESS' } }, false),
    { action: 'delete', filter: { status: 'SUCCESS' }, dry_run: false });
});

test('the confirmation asks about the eligible share of what matched', () => {
  const retry = confirmation('retry', { matched: 40, eligible: 37 }, { ids: [] });
  assert.equal(retry.question, 'Retry 37 of 40 selected tasks?');
  assert.equal(retry.apply, true);
  assert.match(retry.note, /^3 not FAILED or CANCELLED will be left as they are\.$/);

  const filtered = confirmation('cancel', { matched: 1200, eligible: 1200 }, { filter: { task_type: 'x' } });
  assert.equal(filtered.question, 'Cancel 1,200 of 1,200 tasks matching the filter?');
  assert.equal(filtered.note, '');
  assert.equal(confirmation('delete', { matched: 5, eligible: 5 }, { filter: {} }).question, 'Delete 5 of all 5 tasks?');
  assert.match(confirmation('delete', { matched: 5, eligible: 5 }, { filter: {} }).note, /cannot be undone/);
});

test('nothing eligible is said plainly and offers nothing to apply', () => {
  const none = confirmation('retry', { matched: 1, eligible: 0 }, { ids: ['a'] });
  assert.equal(none.apply, false);
  assert.equal(none.question, 'None of the 1 selected task can be retried.');
  assert.equal(confirmation('cancel', { matched: 0, eligible: 0 }, { filter: {} }).question, 'No tasks match.');
});

test('the outcome names what was applied and what was skipped', () => {
  assert.equal(outcome('retry', { applied: 37, skipped: 0 }), '37 retried, 0 skipped');
  assert.equal(outcome('delete', { applied: 1500, skipped: 2 }), '1,500 deleted, 2 skipped');
});

test('a selection survives paging but not a change of filter', () => {
  const selection = new Selection();
  assert.equal(selection.follow(NONE), true);
  selection.set(['a', 'b', 'c'], true);
  selection.set(['b'], false);
  assert.equal(selection.follow({ ...NONE, page: 2 }), false);
  assert.deepEqual([...selection.ids], ['a', 'c']);
  assert.equal(selection.follow({ ...NONE, status: 'FAILED' }), true);
  assert.equal(selection.ids.size, 0);
});
