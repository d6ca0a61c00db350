// Display formatting (static/js/format.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatBytes, formatClock, formatDuration, formatJson, formatTime, runTime } from '../../../static/js/format.js';

test('durations are short and readable at every scale', () => {
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(42.4), '42 ms');
  assert.equal(formatDuration(1234), '1.2 s');
  assert.equal(formatDuration(42_000), '42 s');
  assert.equal(formatDuration(184_000), '3 m 04 s');
  assert.equal(formatDuration(3_720_000), '1 h 02 m');
});

test('run time ticks while RUNNING and is fixed once the task ended', () => {
  const started = '2026-01-01T00:00:00.000Z';
  const start = Date.parse(started);
  assert.equal(runTime({ status: 'PENDING', started_at: null }), null);
  assert.equal(runTime({ status: 'RUNNING', started_at: started }, start + 1500), 1500);
  assert.equal(runTime({ status: 'SUCCESS', started_at: started, completed_at: '2026-01-01T00:00:02.000Z' }, start + 9e9), 2000);
});

test('times show the clock today and the date otherwise', () => {
  const now = new Date(2026, 0, 2, 12, 0, 0);
  assert.equal(formatTime(new Date(2026, 0, 2, 9, 5, 7).toISOString(), now), '09:05:07');
  assert.equal(formatTime(new Date(2026, 0, 1, 9, 5, 7).toISOString(), now), 'Jan 1');
  assert.equal(formatTime(new Date(2025, 11, 31).toISOString(), now), 'Dec 31 2025');
  assert.equal(formatTime(null, now), '—');
});

test('JSON is pretty-printed, and absence is a dash', () => {
  assert.equal(formatJson({ a: [1] }), '{\n  "a": [\n    1\n  ]\n}');
  assert.equal(formatJson(null), '—');
});

test('sizes in decimal units, as file managers show them', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1_234), '1.2 kB');
  assert.equal(formatBytes(52_428_800), '52 MB');
  assert.equal(formatBytes(3_000_000_000_000), '3000 GB');
  assert.equal(formatBytes(undefined), '—');
});

test('log times are the local clock time', () => {
  assert.equal(formatClock(new Date(2026, 0, 2, 9, 5, 7).toISOString()), '09:05:07');
  assert.equal(formatClock(null), '—');
});
