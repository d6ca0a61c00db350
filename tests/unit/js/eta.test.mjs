// Estimates, retry countdowns and queue positions (static/js/eta.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { etaMs, formatEta, waitParts } from '../../../static/js/eta.js';

const start = Date.parse('2026-01-01T00:00:00.000Z');
const running = (progress, extra = {}) => ({ status: 'RUNNING', progress, started_at: '2026-01-01T00:00:00.000Z', ...extra });

test('the estimate extrapolates the average rate: elapsed × (100 − p) / p', () => {
  assert.equal(etaMs(running(25), start + 10_000), 30_000);
  assert.equal(etaMs(running(50), start + 4_000), 4_000);
  assert.equal(etaMs(running(2), start + 1_000), 49_000);
});

test('no estimate before 2 % and 1 s, at 100 %, or for a task not running', () => {
  assert.equal(etaMs(running(1.9), start + 60_000), null);
  assert.equal(etaMs(running(50), start + 999), null);
  assert.equal(etaMs(running(100), start + 5_000), null);
  assert.equal(etaMs(running(50, { started_at: null }), start + 5_000), null);
  assert.equal(etaMs({ ...running(50), status: 'SUCCESS' }, start + 5_000), null);
});

test('estimates are rounded up to seconds, then to minutes', () => {
  assert.equal(formatEta(0), '1 s');
  assert.equal(formatEta(11_200), '12 s');
  assert.equal(formatEta(59_000), '59 s');
  assert.equal(formatEta(150_000), '3 m');
  assert.equal(formatEta(3_900_000), '1 h 05 m');
});

test('what a task waits for, by status', () => {
  const now = start + 10_000;
  assert.deepEqual(waitParts(running(25), now), ['≈ 30 s left']);
  assert.deepEqual(waitParts(running(1), now), []);
  assert.deepEqual(waitParts({ status: 'PENDING', queue_position: 3 }, now), ['#3 in queue']);
  assert.deepEqual(waitParts({ status: 'PENDING' }, now), [], 'events carry no queue position');
  assert.deepEqual(waitParts({ status: 'PENDING', queue_position: null }, now), [], 'its job is not queued');
  const retrying = { status: 'RETRYING', next_run_at: new Date(now + 3_500).toISOString(), queue_position: 1 };
  assert.deepEqual(waitParts(retrying, now), ['retry in 4 s', '#1 in queue']);
  assert.deepEqual(waitParts(retrying, now + 4_000), ['retry due', '#1 in queue']);
  assert.deepEqual(waitParts({ status: 'SUCCESS', queue_position: 2 }, now), []);
});
