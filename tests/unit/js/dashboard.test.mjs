// Which created tasks the detail panel lists as its task's re-runs (static/js/dashboard.js onMessage).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Dashboard } from '../../../static/js/dashboard.js';

globalThis.requestAnimationFrame ??= () => 0; // the batched drawing is not under test here

/** A dashboard whose store applies every event without touching the list; the panel open on `openId`. */
function dashboard(openId) {
  const reruns = [];
  const store = { applyEvent: () => ({ applied: true, listChanged: false, statusChanged: false }), refillable: false };
  const detail = { id: openId, addRerun: (task) => reruns.push(task.id) };
  return { reruns, board: new Dashboard({ store, detail }) };
}

const created = (id, source) => ({ type: 'task', change: 'created', task: { id, status: 'PENDING', source_task_id: source } });

test('a task re-run from the open one joins its re-runs; others do not', () => {
  const { reruns, board } = dashboard('a');
  board.onMessage(created('b', 'a'));
  board.onMessage(created('c', 'x'));
  board.onMessage(created('d', null));
  assert.deepEqual(reruns, ['b']);
});

test('with the panel closed, a task that is no re-run is nobody\'s re-run', () => {
  const { reruns, board } = dashboard(null); // a closed panel's id is null, like such a task's source
  board.onMessage(created('b', null));
  assert.deepEqual(reruns, []);
});
