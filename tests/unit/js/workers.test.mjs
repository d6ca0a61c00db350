// The workers panel's logic: heartbeat ages on the page's clock, lost after the TTL, order, summary
// (static/js/workers.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fromBeat, fromList, ordered, stateAt, summary } from '../../../static/js/workers.js';

const worker = (id, extra = {}) => ({
  id, host: 'box', pid: 1, queues: ['tq:queue'], concurrency: 10, started: 1000, last_heartbeat: 1100,
  running: [], completed: 0, failed: 0, state: 'live', stopped: null, ...extra,
});

test("a listed worker's last beat is placed on the page's clock by the server's own now", () => {
  const answer = { workers: [worker('a', { last_heartbeat: 1098.5 })], heartbeat_interval: 2, heartbeat_ttl: 6, now: 1100 };
  const [a] = fromList(answer, 50_000); // the page's clock is unrelated to the server's
  assert.equal(a.seenAt, 48_500);
  assert.equal(a.ttl, 6);
  assert.equal(stateAt(a, 50_000), 'live');
  assert.equal(stateAt(a, 48_500 + 6000), 'live');
  assert.equal(stateAt(a, 48_500 + 6001), 'lost');
});

test('a beat counts from when it arrived, with its own TTL', () => {
  const beat = fromBeat({ type: 'worker', worker: worker('a', { completed: 3 }), ttl: 1.5 }, 10_000);
  assert.equal(beat.completed, 3);
  assert.equal(stateAt(beat, 11_400), 'live');
  assert.equal(stateAt(beat, 11_600), 'lost');
});

test('lost and stopped come from the server as they are; a new beat brings a lost worker back', () => {
  const lost = fromList({ workers: [worker('a', { state: 'lost' })], heartbeat_ttl: 6, now: 1100 }, 0)[0];
  assert.equal(stateAt(lost, 0), 'lost');
  const stopped = fromBeat({ worker: worker('a', { state: 'stopped', stopped: 1200 }), ttl: 6 }, 0);
  assert.equal(stateAt(stopped, 10 ** 9), 'stopped'); // never turns lost
  assert.equal(stateAt(fromBeat({ worker: worker('a'), ttl: 6 }, 5000), 5000), 'live');
});

test('oldest first, so a row keeps its place; the summary counts each state', () => {
  const list = [worker('b', { started: 5 }), worker('c', { started: 1 }), worker('a', { started: 5 })];
  assert.deepEqual(ordered(list).map((w) => w.id), ['c', 'a', 'b']);
  const now = 100_000;
  const seen = [
    { ...worker('a'), seenAt: now, ttl: 6 }, { ...worker('b'), seenAt: now, ttl: 6 },
    { ...worker('c'), seenAt: now - 7000, ttl: 6 }, { ...worker('d', { state: 'stopped' }), seenAt: now, ttl: 6 },
  ];
  assert.equal(summary(seen, now), '2 live, 1 lost, 1 stopped');
  assert.equal(summary([], now), '0 live');
});
