// Display formatting (static/js/format.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  formatBytes, formatClock, formatDateTime, formatDuration, formatFromNow, formatJson, formatTime, runTime,
} from '../../../static/js/format.js';

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

test('a date and time reads to the minute, with the year only when it is not this one', () => {
  const now = new Date(2026, 0, 2, 12, 0, 0);
  assert.equal(formatDateTime(new Date(2026, 11, 7, 14, 30, 59).toISOString(), now), '7 Dec, 14:30');
  assert.equal(formatDateTime(new Date(2026, 0, 2, 9, 5).toISOString(), now), '2 Jan, 09:05');
  assert.equal(formatDateTime(new Date(2027, 0, 1, 0, 0).toISOString(), now), '1 Jan 2027, 00:00');
  assert.equal(formatDateTime(null, now), '—');
});

test('the distance from now is in its largest unit, ahead or past', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const at = (seconds) => new Date(now + seconds * 1000).toISOString();
  assert.equal(formatFromNow(at(0.4), now), 'now');
  assert.equal(formatFromNow(at(45), now), 'in 45 s');
  assert.equal(formatFromNow(at(59.6), now), 'in 1 min');
  assert.equal(formatFromNow(at(5 * 60 + 20), now), 'in 5 min');
  assert.equal(formatFromNow(at(3 * 3600 - 300), now), 'in 3 h');
  assert.equal(formatFromNow(at(47 * 3600), now), 'in 47 h');
  assert.equal(formatFromNow(at(3 * 86400), now), 'in 3 d');
  assert.equal(formatFromNow(at(-90), now), '2 min ago');
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
