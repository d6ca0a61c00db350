// Log lines merged by number (static/js/loglines.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LogLines } from '../../../static/js/loglines.js';

const lines = (...ns) => ns.map((n) => ({ n, at: '2026-01-01T00:00:00Z', attempt: 1, line: `line ${n}` }));
const numbers = (log) => log.lines.map((line) => line.n);

test('lines arriving in order are appended', () => {
  const log = new LogLines();
  assert.equal(log.last, 0);
  assert.deepEqual(log.merge(lines(3, 7)), { added: lines(3, 7), appended: true });
  assert.deepEqual(log.merge(lines(9)).appended, true);
  assert.deepEqual(numbers(log), [3, 7, 9]);
  assert.equal(log.last, 9);
});

test('history after live lines: duplicates dropped, the rest put in order', () => {
  const log = new LogLines();
  log.merge(lines(20, 21)); // live lines first
  const { added, appended } = log.merge(lines(5, 12, 20)); // then the stored history, overlapping
  assert.deepEqual(added.map((line) => line.n), [5, 12]);
  assert.equal(appended, false);
  assert.deepEqual(numbers(log), [5, 12, 20, 21]);
});

test('a resent history adds nothing; repeats within one batch count once', () => {
  const log = new LogLines();
  log.merge(lines(1, 2, 3));
  assert.deepEqual(log.merge(lines(1, 2, 3)), { added: [], appended: true });
  assert.deepEqual(log.merge(lines(5, 4, 5)).added.map((line) => line.n), [4, 5]);
  assert.deepEqual(numbers(log), [1, 2, 3, 4, 5]);
});
