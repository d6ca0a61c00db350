// The store's seq guard, counter deltas and page bookkeeping (static/js/store.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Store, keepQueuePosition, keepWhole, matches, previousStatus } from '../../../static/js/store.js';

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

test('the whole task replaces the same version cut short in a list or a frame, never the reverse', () => {
  const store = new Store();
  const cut = task('a', 5, ['PENDING', 'RUNNING'], { parameters: { text: 'aaa …' }, truncated: ['parameters'] });
  assert.equal(store.put(cut), true);
  const whole = { ...cut, parameters: { text: 'aaaa' } };
  delete whole.truncated;
  assert.equal(store.put(whole), true);
  assert.equal(store.tasks.get('a').parameters.text, 'aaaa');
  assert.equal(store.put(cut), false);
  assert.equal(store.tasks.get('a').truncated, undefined);
});

/** A large task as GET /api/tasks/{id} gives it, and as a list or a frame carries it (its `cut` fields short). */
function large(seq, statuses, extra = {}) {
  const whole = task('a', seq, statuses, {
    parameters: { text: 'word '.repeat(9) }, result_data: null, error_message: null, error_traceback: null,
    attempts: 1, dispatch: 1, ...extra,
  });
  const cut = (...names) => ({
    ...whole, ...Object.fromEntries(names.map((name) => [name, name === 'parameters' ? { text: 'wo …' } : 'w …'])),
    truncated: names,
  });
  return { whole, cut };
}

test('newer progress frames cut short keep the whole fields held, which cannot have changed', () => {
  const store = new Store();
  const opened = large(5, ['PENDING', 'RUNNING'], { error_message: 'E'.repeat(9) });
  store.put(opened.cut('parameters', 'error_message'));
  store.put(opened.whole); // the panel read the whole task
  for (let seq = 6; seq < 50; seq += 1) {
    const frame = large(seq, ['PENDING', 'RUNNING'], { progress: seq, error_message: 'E'.repeat(9) });
    assert.equal(store.put(frame.cut('parameters', 'error_message')), true);
    const held = store.tasks.get('a');
    assert.equal(held.truncated, undefined);
    assert.deepEqual([held.seq, held.progress, held.parameters, held.error_message],
      [seq, seq, opened.whole.parameters, 'E'.repeat(9)]);
  }
});

test('a cut result or error that may have changed stays cut (the whole task is then read); parameters never do', () => {
  const held = large(5, ['PENDING', 'RUNNING'], { error_message: 'E'.repeat(9) }).whole;
  const check = (statuses, extra, names, still) => {
    const merged = keepWhole(held, large(6, statuses, extra).cut(...names));
    assert.deepEqual(merged.truncated, still);
    assert.deepEqual(merged.parameters, held.parameters); // a task's parameters are its for good
    return merged;
  };
  const done = check(['PENDING', 'RUNNING', 'SUCCESS'], { result_data: {} }, ['parameters', 'result_data'],
    ['result_data']);
  assert.equal(done.result_data, 'w …');
  check(['PENDING', 'RUNNING', 'RETRYING'], { dispatch: 2 }, ['error_message', 'error_traceback'],
    ['error_message', 'error_traceback']);
  // RUNNING again, a later attempt (its RETRYING frames missed): the error is another one
  check(['PENDING', 'RUNNING', 'RETRYING', 'RUNNING'], { dispatch: 2, attempts: 2 }, ['parameters', 'error_message'],
    ['error_message']);
  check(['PENDING', 'RUNNING'], { attempts: 2 }, ['error_message'], ['error_message']);
  // the same status, dispatch and attempt: the error is the one held
  assert.equal(check(['PENDING', 'RUNNING'], {}, ['error_message'], undefined).error_message, 'E'.repeat(9));
});

test('only fields held whole are kept: a field the held copy has cut short stays cut', () => {
  const store = new Store();
  store.put(large(5, ['PENDING', 'RUNNING']).cut('parameters'));
  store.put(large(6, ['PENDING', 'RUNNING']).cut('parameters'));
  assert.deepEqual(store.tasks.get('a').truncated, ['parameters']);
  const whole = large(6, ['PENDING', 'RUNNING']).whole;
  assert.equal(store.put(whole), true); // the whole one still replaces the cut copy of its version
  assert.equal(keepWhole(undefined, large(7, ['PENDING']).cut('parameters')).truncated[0], 'parameters');
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

test('a cancel request, a status change with no timeline entry of its own, moves no counter', () => {
  const store = new Store();
  const running = task('a', 2, ['PENDING', 'RUNNING']);
  store.setPage(page([running], { PENDING: 0, RUNNING: 1 }, 2));
  store.applyEvent('status', { ...running, seq: 3, cancel_requested: true });
  assert.deepEqual([store.counts.PENDING, store.counts.RUNNING], [0, 1]);
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

test('a row whose task stops matching the filters leaves the page and the total at once', () => {
  const store = new Store();
  store.filters = { ...store.filters, status: 'RUNNING' };
  store.beginLoad();
  store.setPage(page([task('a', 1, ['PENDING', 'RUNNING'])]));
  assert.equal(store.applyEvent('status', task('a', 2, ['PENDING', 'RUNNING', 'SUCCESS'])).listChanged, true);
  assert.deepEqual(store.ids, []);
  assert.equal(store.total, 0);
});

test('a task whose change makes it match enters the page in its place, newest first', () => {
  const store = new Store();
  store.filters = { ...store.filters, status: 'RUNNING' };
  const [older, newer, newest] = [task('o', 1, ['PENDING']), task('n', 2, ['PENDING']), task('w', 3, ['PENDING'])];
  store.setPage(page([{ ...newest, seq: 3, status: 'RUNNING' }, { ...older, seq: 1, status: 'RUNNING' }]));
  // not held before: its previous status comes from its timeline
  const started = { ...newer, seq: 5, status: 'RUNNING', timeline: [...newer.timeline, { status: 'RUNNING', at: newer.created_at }] };
  assert.equal(store.applyEvent('status', started).listChanged, true);
  assert.deepEqual(store.ids, ['w', 'n', 'o']);
  assert.equal(store.total, 3);
  assert.equal(store.applyEvent('progress', { ...started, seq: 6, progress: 50 }).listChanged, false, 'it stays');
});

test('each filter field follows a change: status, type, priority, id prefix, text and dates', () => {
  const base = task('ab12', 1, ['PENDING', 'RUNNING'], { priority: 'high', parameters: { text: 'quarterly sales' } });
  const cases = [
    [{ status: 'FAILED' }, { status: 'FAILED', error_message: 'boom' }],
    [{ text: 'boom' }, { status: 'FAILED', error_message: 'ValueError: boom' }],
    [{ text: 'total' }, { status: 'SUCCESS', result_data: { total: 3 } }],
  ];
  for (const [filters, change] of cases) {
    const store = new Store();
    store.filters = { ...store.filters, ...filters };
    store.setPage(page([]));
    const ended = { ...base, ...change, seq: 2, timeline: [...base.timeline, { status: change.status, at: base.created_at }] };
    assert.equal(store.applyEvent('status', ended).listChanged, true, JSON.stringify(filters));
    assert.deepEqual(store.ids, ['ab12']);
    const retried = { ...ended, seq: 3, status: 'PENDING', error_message: null, result_data: null,
      timeline: [...ended.timeline, { status: 'PENDING', at: base.created_at }] };
    assert.equal(store.applyEvent('status', retried).listChanged, true, `leaves ${JSON.stringify(filters)}`);
    assert.deepEqual(store.ids, []);
  }
  // the fields a task never changes: a held task that matches stays, one that does not never enters
  for (const filters of [{ task_type: 'text_processing' }, { priority: 'high' }, { q: 'AB-1' },
    { from: base.created_at.slice(0, 10), to: base.created_at.slice(0, 10) }]) {
    const store = new Store();
    store.filters = { ...store.filters, ...filters };
    store.setPage(page([base]));
    assert.equal(store.applyEvent('progress', { ...base, seq: 2, progress: 10 }).listChanged, false);
    assert.deepEqual(store.ids, ['ab12'], JSON.stringify(filters));
  }
  const other = new Store();
  other.filters = { ...other.filters, priority: 'low' };
  other.setPage(page([]));
  assert.equal(other.applyEvent('created', { ...base, seq: 2, status: 'PENDING' }).listChanged, false);
});

test('a page short of rows after a task leaves can be refilled; a later page counts newer arrivals', () => {
  const store = new Store(2);
  store.filters = { ...store.filters, status: 'FAILED' };
  const failed = (id, seq) => task(id, seq, ['PENDING', 'RUNNING', 'FAILED']);
  store.setPage({ ...page([failed('b', 2), failed('a', 1)]), total: 3 });
  assert.equal(store.refillable, false);
  store.applyEvent('status', { ...failed('b', 2), seq: 9, status: 'PENDING', timeline: [...failed('b', 2).timeline, { status: 'PENDING', at: 'x' }] });
  assert.deepEqual(store.ids, ['a']);
  assert.equal(store.total, 2);
  assert.equal(store.refillable, true);
});

test('a task read over REST (a retry answered) leaves or enters as an event would', () => {
  const store = new Store();
  store.filters = { ...store.filters, status: 'FAILED' };
  const failed = task('f', 3, ['PENDING', 'RUNNING', 'FAILED']);
  store.setPage(page([failed]));
  assert.equal(store.applyRead({ ...failed, seq: 4, status: 'PENDING' }), true);
  assert.deepEqual(store.ids, []);
  assert.equal(store.applyEvent('status', { ...failed, seq: 4, status: 'PENDING' }).applied, false, 'the event after it');
});

test('tasks created while a page load is in flight survive its answer', () => {
  const store = new Store();
  store.beginLoad();
  store.applyEvent('created', task('new', 5, ['PENDING']));
  store.setPage(page([task('old', 1, ['PENDING'])], {}, 4)); // read before the task existed
  assert.deepEqual(store.ids, ['new', 'old']);
});

test('a replayed task newer than the first row was created while away: it goes on top', () => {
  const store = new Store(2);
  store.setPage(page([task('a', 1, ['PENDING'])]));
  const [b, y] = [task('b', 2, ['PENDING']), task('y', 3, ['PENDING'])];
  store.setPage(page([y, b])); // newest first, as the server lists; forgets a; a full page
  assert.equal(store.applyEvent('replay', task('c', 5, ['PENDING', 'RUNNING', 'SUCCESS'])).listChanged, true);
  const old = task('z', 6, ['PENDING', 'RUNNING']);
  old.created_at = '2020-01-01T00:00:00+00:00'; // an old task that merely changed: on a later page
  assert.equal(store.applyEvent('replay', old).listChanged, false);
  assert.deepEqual(store.ids, ['c', 'y']);
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
