// The charts' scales, ticks, buckets and summaries (static/js/chartmath.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  barFactor, bucketAt, bucketBand, clockLabel, coarsen, formatSeconds, linear, maxOf, niceTicks, queueSummary, queueTip,
  runtimeExtent, runtimeSummary, runtimeText, segments, stepLabel, throughputSummary, timeTicks, waitSummary,
} from '../../../static/js/chartmath.js';

test('ticks are round steps that cover the data', () => {
  assert.deepEqual(niceTicks(0, 7, 4, { integer: true }), { ticks: [0, 2, 4, 6, 8], min: 0, max: 8, step: 2 });
  assert.deepEqual(niceTicks(0, 3, 4, { integer: true }).ticks, [0, 1, 2, 3]);
  assert.deepEqual(niceTicks(0, 0.3, 3).ticks, [0, 0.1, 0.2, 0.3]); // no 0.30000000000000004
  assert.deepEqual(niceTicks(0, 950, 4).ticks, [0, 500, 1000]); // at most `count` steps
  assert.deepEqual(niceTicks(0, 950, 5).ticks, [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(niceTicks(0, 12.5, 4).ticks, [0, 5, 10, 15]);
});

test('counts never get fractional ticks, and an empty chart still gets an axis', () => {
  assert.deepEqual(niceTicks(0, 1, 4, { integer: true }).ticks, [0, 1]);
  assert.deepEqual(niceTicks(0, 0, 4, { integer: true }).ticks, [0, 1]);
  assert.deepEqual(niceTicks(0, 0, 4).ticks, [0, 0.5, 1]);
  assert.deepEqual(niceTicks(0, NaN, 4, { integer: true }).ticks, [0, 1]);
});

test('a linear scale maps the domain onto the range, a flat domain onto its start', () => {
  const y = linear([0, 10], [200, 0]);
  assert.equal(y(0), 200);
  assert.equal(y(5), 100);
  assert.equal(y(10), 0);
  assert.equal(linear([3, 3], [50, 0])(3), 50);
});

test('buckets split the plot evenly, and the pointer finds its bucket', () => {
  assert.deepEqual(bucketBand(0, 60, 40, 600), { x: 40, w: 10 });
  assert.deepEqual(bucketBand(59, 60, 40, 600), { x: 630, w: 10 });
  assert.equal(bucketAt(40, 60, 40, 600), 0);
  assert.equal(bucketAt(49.9, 60, 40, 600), 0);
  assert.equal(bucketAt(50, 60, 40, 600), 1);
  assert.equal(bucketAt(639.9, 60, 40, 600), 59);
  assert.equal(bucketAt(39, 60, 40, 600), -1);
  assert.equal(bucketAt(640, 60, 40, 600), -1);
  assert.equal(bucketAt(100, 0, 40, 600), -1);
});

test('time ticks fall on round minutes and hours of the viewer clock', () => {
  const start = Date.UTC(2026, 11, 1, 13, 7, 0) / 1000;
  const hour = timeTicks(start, start + 3600, 8);
  assert.equal(hour.length, 6); // every 10 minutes: 13:10 … 14:00
  assert.deepEqual(hour.map((t) => clockLabel(t)), ['13:10', '13:20', '13:30', '13:40', '13:50', '14:00']);
  const day = timeTicks(start, start + 86400, 8);
  assert.deepEqual(day.slice(0, 2).map((t) => clockLabel(t)), ['15:00', '18:00']);
  // In a zone half an hour off the hour (UTC+5:30), hours are that zone's hours.
  const india = 5.5 * 3600;
  assert.deepEqual(timeTicks(start, start + 86400, 8, india).slice(0, 1).map((t) => clockLabel(t, india)), ['21:00']);
});

test('durations read short, steps in words', () => {
  assert.deepEqual([0, 0.0123, 0.85, 1, 1.25, 42.4, 90, 750, 7200].map(formatSeconds),
    ['0', '12 ms', '850 ms', '1 s', '1.3 s', '42 s', '1.5 min', '13 min', '2 h']);
  assert.equal(formatSeconds(null), '—');
  assert.deepEqual([60, 300, 3600, 7200, 30].map(stepLabel), ['minute', '5 minutes', 'hour', '2 hours', '30 seconds']);
});

test('lines break at missing values', () => {
  assert.deepEqual(segments([null, 1, 2, null, 3, null, null, 4, 5]), [[1, 2], [4, 4], [7, 8]]);
  assert.deepEqual(segments([null, null]), []);
  assert.deepEqual(segments([1, 2, 3]), [[0, 2]]);
  assert.equal(maxOf([null, 3, 1], [2, null]), 3);
  assert.equal(maxOf([null]), 0);
});

const base = Date.UTC(2026, 11, 1, 14, 0, 0) / 1000;
const series = {
  window: 'hour', step: 60, start: base, now: base + 180, buckets: [base, base + 60, base + 120],
  succeeded: [2, 0, 5], failed: [1, 0, 1], wait_p50: [0.2, null, 1.5], wait_p95: [0.4, null, 3],
  queue_depth: [0, 4, 2], queue_depth_mean: [0, 1.5, null],
  run_time: [{ task_type: 'data_processing', count: 7, p50: 1.2, p95: 3.4, max: 3.5 },
    { task_type: 'text_processing', count: 1, p50: 0.01, p95: 0.01, max: null }],
  queue_depth_now: 2, workers_live: 1,
};

test('each chart says in words what it draws', () => {
  assert.equal(throughputSummary(series),
    'Tasks per minute over the last hour: 7 tasks succeeded, 2 tasks failed. Busiest minute: 14:02 with 6 tasks.');
  assert.equal(runtimeSummary(series), 'Run time per task type: data_processing p50 1.2 s, p95 3.4 s, longest 3.5 s ' +
    '(7 runs); text_processing p50 10 ms, p95 10 ms (1 run).');
  assert.equal(queueSummary(series), 'Queue depth over the last hour: 2 tasks waiting now, at most 4 at once (14:01).');
  assert.equal(waitSummary(series), 'Wait time before start: latest p50 1.5 s, p95 3 s; highest p95 3 s.');
});

test('an empty window says so', () => {
  const empty = { ...series, window: 'day', succeeded: [0, 0, 0], failed: [0, 0, 0], wait_p50: [null, null, null],
    wait_p95: [null, null, null], queue_depth: [null, null, null], run_time: [], queue_depth_now: 0 };
  assert.equal(throughputSummary(empty), 'Tasks per minute over the last day: 0 tasks succeeded, 0 tasks failed.');
  assert.equal(runtimeSummary(empty), 'Run time per task type: no task finished in the last day.');
  assert.equal(queueSummary(empty), 'Queue depth over the last day: 0 tasks waiting now, at most 0 at once.');
  assert.equal(waitSummary(empty), 'Wait time before start: no task started in the last day.');
});

test("a day's minutes merge into round bars wide enough to see; counts are kept", () => {
  assert.equal(barFactor(60, 900), 1); // an hour: a bar per minute
  assert.equal(barFactor(1440, 900), 5); // a day: 288 bars of 3.1 px
  assert.equal(barFactor(1440, 300), 15);
  assert.equal(barFactor(1440, 10), 60);
  const start = Date.UTC(2026, 11, 1, 14, 3, 0) / 1000; // 14:03
  const minutes = { window: 'day', step: 60, buckets: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => start + i * 60),
    succeeded: [1, 0, 2, 0, 0, 3, 0, 1], failed: [0, 1, 0, 0, 0, 0, 2, 0] };
  const merged = coarsen(minutes, 5);
  assert.deepEqual(merged.buckets.map((t) => clockLabel(t)), ['14:00', '14:05', '14:10']); // round times
  assert.deepEqual(merged.succeeded, [1, 5, 1]); // 14:03-14:04 | 14:05-14:09 | 14:10
  assert.deepEqual(merged.failed, [1, 2, 0]);
  assert.equal(merged.step, 300);
  assert.match(throughputSummary(merged),
    /^Tasks per 5 minutes over the last day: 7 tasks succeeded, 3 tasks failed\. Busiest 5 minutes: 14:05 with 7 tasks\.$/);
  assert.deepEqual(coarsen(minutes, 1).succeeded, minutes.succeeded);
});

test("the queue tooltip gives a minute's maximum and its mean where workers sampled it", () => {
  assert.equal(queueTip(series, 1), 'at most 4 waiting · mean 1.5');
  assert.equal(queueTip(series, 2), 'at most 2 waiting'); // noted, not sampled (no worker)
  assert.equal(queueTip({ ...series, queue_depth: [null, 4, 2] }, 0), 'not observed');
  assert.equal(queueTip({ ...series, queue_depth_mean: undefined }, 1), 'at most 4 waiting'); // an older server
});

test('the run-time axis reaches the longest run, which the text names when it is known', () => {
  assert.equal(runtimeExtent(series.run_time), 3.5);
  assert.equal(runtimeExtent([{ p50: 1, p95: 2, max: null }]), 2);
  assert.equal(runtimeExtent([]), 0);
  assert.equal(runtimeText(series.run_time[0]), 'p50 1.2 s, p95 3.4 s, longest 3.5 s');
  assert.equal(runtimeText(series.run_time[1]), 'p50 10 ms, p95 10 ms');
});
