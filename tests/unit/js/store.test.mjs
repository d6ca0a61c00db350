// The store's seq guard, counter deltas and page bookkeeping (static/js/store.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Store, keepQueuePosition, matches, previousStatus } from '../../../static/js/store.js';

let clock = 0;
/** A task as the server sends it; `statuses` is its timeline, oldest first. */
function task(id, seq, statuses, extra = {}) {
  clock += 1;
  const timeline = statuses.map((status) => ({ status, at: new Date(Date.UTC(2026, 0, 1, 0, 0, clock)).toISOString() }));
  return {
    id, seq, status: statuses.at(-1), task_type: 'text_processing', timeline, progress: 0,
    created_at: timeline[0].at, ...extra,
  };
}

const page = (tasks, counts = {}, seq = 0) => ({ tasks, total: tasks.length, counts, seq });

test('an older or equal seq never replaces a newer task', () => {
  const store = new Store();
  assert.equal(store.put(task('a', 5, ['PENDING', 'RUNNING'])), true);
  assert.equal(store.put(task('a', 4, ['PENDING'])), false);
  assert.equal(store.put(task('a', 5, ['PENDING'])), false);
  assert.equal(store.tasks.get('a').status, 'RUNNING');
  assert.equal(store.put(task('a', 6, ['PENDING', 'RUNNING', 'SUCCESS'])), true);
  assert.equal(store.tasks.get('a').status, 'SUCCESS');
});

test('REST rows and socket events go through the same guard', () => {
  const store = new Store();
  store.applyEvent('status', task('a', 9, ['PENDING', 'RUNNING', 'SUCCESS']));
  store.setPage(page([task('a', 7, ['PENDING', 'RUNNING'])])); // a REST answer read before the event
  assert.equal(store.tasks.get('a').status, 'SUCCESS');
  assert.deepEqual(store.ids, ['a']);

  store.setPage(page([task('b', 3, ['PENDING', 'RUNNING'])]));
  assert.equal(store.applyEvent('progress', task('b', 2, ['PENDING'])).applied, false);
  assert.equal(store.tasks.get('b').status, 'RUNNING');
});

test('tasks off the page are dropped beyond a bound; the guard still holds for them', () => {
  const store = new Store(50, 1);
  store.setPage(page([task('a', 8, ['PENDING', 'RUNNING', 'FAILED'])]));
  store.setPage(page([task('b', 1, ['PENDING'])]));
  assert.equal(store.tasks.has('a'), true, 'one task off the page is kept');
  store.setPage(page([task('c', 2, ['PENDING'])]));
  assert.equal(store.tasks.has('a'), false);
  assert.equal(store.tasks.has('b'), true);
  assert.equal(store.applyEvent('status', task('a', 8, ['PENDING', 'RUNNING', 'FAILED'])).applied, false);

  store.setPage(page([task('a', 8, ['PENDING', 'RUNNING', 'FAILED'])])); // back to a's page
  assert.equal(store.pageTasks()[0].status, 'FAILED');
});

test('counter deltas: created adds, status moves one from the previous status', () => {
  const store = new Store();
  store.setPage(page([], { PENDING: 1, RUNNING: 0 }, 10));
  store.applyEvent('created', task('a', 11, ['PENDING']));
  assert.equal(store.counts.PENDING, 2);
  store.applyEvent('status', task('a', 12, ['PENDING', 'RUNNING']));
  assert.deepEqual([store.counts.PENDING, store.counts.RUNNING], [1, 1]);
  store.applyEvent('progress', task('a', 13, ['PENDING', 'RUNNING']));
  assert.deepEqual([store.counts.PENDING, store.counts.RUNNING], [1, 1]);
});

test('a delta is applied once per (task, seq), and not for changes the snapshot holds', () => {
  const store = new Store();
  store.setCounts({ PENDING: 0, RUNNING: 1 }, 20);
  const done = task('a', 21, ['PENDING', 'RUNNING', 'SUCCESS']);
  store.applyEvent('status', done);
  store.applyEvent('status', done); // delivered twice (e.g. replayed after a resume)
  assert.deepEqual([store.counts.RUNNING, store.counts.SUCCESS], [0, 1]);
  store.applyEvent('status', task('b', 19, ['PENDING', 'RUNNING'])); // already in the snapshot
  assert.deepEqual([store.counts.PENDING, store.counts.RUNNING], [0, 0]);
  store.applyEvent('replay', task('c', 30, ['PENDING', 'RUNNING', 'FAILED'])); // replay carries no delta
  assert.equal(store.counts.FAILED, 0);
});

test('an older counter snapshot does not replace a newer one', () => {
  const store = new Store();
  assert.equal(store.setCounts({ SUCCESS: 5 }, 40), true);
  assert.equal(store.setCounts({ SUCCESS: 3 }, 39), false);
  assert.equal(store.counts.SUCCESS, 5);
  assert.equal(store.counts.FAILED, 0);
});

test('previousStatus reads the second-to-last timeline entry', () => {
  assert.equal(previousStatus(task('a', 1, ['PENDING'])), null);
  assert.equal(previousStatus(task('a', 3, ['PENDING', 'RUNNING', 'RETRYING'])), 'RUNNING');
});

test('created tasks matching the filters go on top of page 1, without outgrowing the page', () => {
  const store = new Store(2);
  store.setPage(page([task('b', 2, ['PENDING']), task('a', 1, ['PENDING'])]));
  assert.equal(store.applyEvent('created', task('c', 3, ['PENDING'])).listChanged, true);
  assert.deepEqual(store.ids, ['c', 'b']);
  assert.equal(store.total, 3);

  store.filters = { ...store.filters, task_type: 'email_simulation' };
  assert.equal(store.applyEvent('created', task('d', 4, ['PENDING'])).listChanged, false);
  assert.deepEqual(store.ids, ['c', 'b']);
});

test('on a later page new tasks are only counted, for the "N new" pill', () => {
  const store = new Store();
  store.filters = { ...store.filters, page: 2 };
  store.beginLoad();
  store.setPage(page([task('a', 1, ['PENDING'])]));
  store.applyEvent('created', task('b', 2, ['PENDING']));
  assert.deepEqual(store.ids, ['a']);
  assert.equal(store.unseen, 1);
});

test('a row whose task stops matching a filter stays until the next load', () => {
  const store = new Store();
  store.filters = { ...store.filters, status: 'RUNNING' };
  store.beginLoad();
  store.setPage(page([task('a', 1, ['PENDING', 'RUNNING'])]));
  store.applyEvent('status', task('a', 2, ['PENDING', 'RUNNING', 'SUCCESS']));
  assert.deepEqual(store.ids, ['a']);
  assert.equal(store.pageTasks()[0].status, 'SUCCESS');
});

test('tasks created while a page load is in flight survive its answer', () => {
  const store = new Store();
  store.beginLoad();
  store.applyEvent('created', task('new', 5, ['PENDING']));
  store.setPage(page([task('old', 1, ['PENDING'])], {}, 4)); // read before the task existed
  assert.deepEqual(store.ids, ['new', 'old']);
});

test('a replayed task newer than the first row was created while away: it goes on top', () => {
  const store = new Store();
  store.setPage(page([task('a', 1, ['PENDING'])]));
  store.setPage(page([task('b', 2, ['PENDING'])])); // forgets a
  assert.equal(store.applyEvent('replay', task('c', 5, ['PENDING', 'RUNNING', 'SUCCESS'])).listChanged, true);
  const old = task('z', 6, ['PENDING', 'RUNNING']);
  old.created_at = '2020-01-01T00:00:00+00:00'; // an old task that merely changed: not on this page
  assert.equal(store.applyEvent('replay', old).listChanged, false);
  assert.deepEqual(store.ids, ['c', 'b']);
});

test('matches: status, type and an id prefix (dashes and case ignored)', () => {
  const t = { id: 'ab12cd', status: 'RUNNING', task_type: 'text_processing' };
  const none = { status: '', task_type: '', q: '' };
  assert.equal(matches(t, none), true);
  assert.equal(matches(t, { ...none, status: 'RUNNING', q: 'AB-12' }), true);
  assert.equal(matches(t, { ...none, status: 'SUCCESS' }), false);
  assert.equal(matches(t, { ...none, task_type: 'batch_processing' }), false);
  assert.equal(matches(t, { ...none, q: 'cd' }), false);
});

test('matches: priority, creation days (both included) and text words by prefix, as the server searches', () => {
  const t = { id: 'ab', status: 'FAILED', task_type: 'x', priority: 'high', created_at: '2026-11-20T23:59:00+00:00',
    parameters: { Text_Field: ['Zürich', true, 42] }, result_data: null, error_message: 'Timeout-Error' };
  const none = { status: '', task_type: '', q: '' };
  for (const text of ['', 'zür', 'ZURICH timeout', 'text field', 'true 4', 'error', '!!']) {
    assert.equal(matches(t, { ...none, text: text.replace('ZURICH', 'ZÜRICH') }), true, text);
  }
  for (const text of ['zurich', 'rich', 'timeouterror', 'null', 'false']) assert.equal(matches(t, { ...none, text }), false, text);
  assert.equal(matches(t, { ...none, priority: 'high', from: '2026-11-20', to: '2026-11-20' }), true);
  assert.equal(matches(t, { ...none, priority: 'low' }), false);
  assert.equal(matches(t, { ...none, from: '2026-11-21' }), false);
  assert.equal(matches(t, { ...none, to: '2026-11-19' }), false);
});

test('a queue position (REST only) is kept until the status changes, and a REST read of the same version adds it', () => {
  const store = new Store();
  const created = task('q', 1, ['PENDING']);
  store.applyEvent('created', created);
  assert.equal(store.put({ ...created, queue_position: 2 }), false, 'the same version is no change');
  assert.equal(store.tasks.get('q').queue_position, 2);

  store.put({ ...task('q', 2, ['PENDING']) }); // an event while still PENDING: no position in it
  assert.equal(store.tasks.get('q').queue_position, 2);
  store.put({ ...task('q', 3, ['PENDING']), queue_position: 1 }); // a newer REST read wins
  assert.equal(store.tasks.get('q').queue_position, 1);
  store.put(task('q', 4, ['PENDING', 'RUNNING']));
  assert.equal(store.tasks.get('q').queue_position, undefined);
});

test('keepQueuePosition only carries a known position across events of the same status', () => {
  const held = { status: 'PENDING', queue_position: 3 };
  assert.equal(keepQueuePosition(held, { status: 'PENDING' }).queue_position, 3);
  assert.equal(keepQueuePosition(held, { status: 'PENDING', queue_position: null }).queue_position, null);
  assert.equal(keepQueuePosition(held, { status: 'RUNNING' }).queue_position, undefined);
  assert.equal(keepQueuePosition(undefined, { status: 'PENDING' }).queue_position, undefined);
});

test('a deletion drops its tasks from the page and the total, and nothing older brings them back', () => {
  const store = new Store();
  const [a, b, c] = [task('a', 1, ['SUCCESS']), task('b', 2, ['FAILED']), task('c', 3, ['PENDING'])];
  store.setPage({ ...page([c, b, a]), total: 60 });
  assert.equal(store.remove(['a', 'b', 'elsewhere'], 10), true);
  assert.deepEqual(store.ids, ['c']);
  assert.equal(store.total, 58);
  assert.equal(store.tasks.has('a'), false);

  assert.equal(store.applyEvent('status', task('a', 5, ['SUCCESS'])).applied, false, 'an event from before the deletion');
  store.setPage({ ...page([c, b, a]), total: 60 }); // a page read before the deletion
  assert.deepEqual(store.ids, ['c']);
  assert.equal(store.total, 58);
  assert.equal(store.remove(['zz'], 11), false, 'no row on the page changed');
});

test('a task inserted live during a load and deleted before its answer stays deleted', () => {
  const store = new Store();
  store.beginLoad();
  store.applyEvent('created', task('n', 4, ['PENDING']));
  store.remove(['n'], 5);
  store.setPage(page([task('m', 1, ['PENDING'])]));
  assert.deepEqual(store.ids, ['m']);
});

test('a created event for a task already read over REST still counts it and lists it', () => {
  const store = new Store();
  store.setPage(page([task('old', 1, ['SUCCESS'])], { SUCCESS: 1 }, 1));
  const made = task('new', 2, ['PENDING']);
  store.put(made); // opened at once: GET /api/tasks/new answered before the event
  const outcome = store.applyEvent('created', made);
  assert.equal(outcome.listChanged, true);
  assert.deepEqual(store.ids, ['new', 'old']);
  assert.equal(store.counts.PENDING, 1);
  assert.equal(store.applyEvent('progress', made).applied, false, 'only the created event is let through');
});
