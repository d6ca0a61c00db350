// What a row and the panel say a task waits for (static/js/views.js waitLine).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { waitLine } from '../../../static/js/views.js';

const now = Date.parse('2026-12-01T12:00:00Z');
const at = (ms) => new Date(now + ms).toISOString();

test('a PENDING task whose start lies ahead is scheduled, instead of queued', () => {
  const [line] = waitLine({ status: 'PENDING', next_run_at: at(90_000), queue_position: 3 }, now);
  assert.match(line, /^scheduled for (\w{3} \d+, )?\d\d:\d\d:\d\d$/);
  assert.equal(line.endsWith(new Date(now + 90_000).toTimeString().slice(0, 8)), true);
  assert.match(waitLine({ status: 'PENDING', next_run_at: at(3 * 86_400_000) }, now)[0], /^scheduled for \w{3} \d+, \d\d:\d\d:\d\d$/);
});

test('once its time has come, or for any other status, the usual estimates apply', () => {
  assert.deepEqual(waitLine({ status: 'PENDING', next_run_at: at(-1000), queue_position: 2 }, now), ['#2 in queue']);
  // A manual retry of a scheduled task queues it at once: its run_at stays, its next_run_at goes.
  assert.deepEqual(waitLine({ status: 'PENDING', run_at: at(5000), next_run_at: null, queue_position: 1 }, now), ['#1 in queue']);
  assert.deepEqual(waitLine({ status: 'SUCCESS', next_run_at: at(5000) }, now), []);
});
