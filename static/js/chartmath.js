// The charts' pure logic: round ticks, scales, buckets ↔ x, time labels and the text that says what
// a chart shows (its aria-label). No DOM here: tested with node.

const round = (v) => Number(v.toPrecision(12)); // 0.1 + 0.2 steps stay 0.3 on an axis

/**
 * At most `count` round steps (1, 2 or 5 × 10^k) from a round value at or below `min` to one at or
 * above `max`; `integer` for counts (no step under 1). A flat or empty range becomes one unit.
 */
export function niceTicks(min, max, count = 4, { integer = false } = {}) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 1];
  if (max <= min) max = min + 1;
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9));
  if (integer) step = Math.max(1, Math.round(step));
  const low = round(Math.floor(min / step + 1e-9) * step);
  const high = round(Math.ceil(max / step - 1e-9) * step);
  const ticks = [];
  for (let i = 0; low + i * step <= high + step / 2; i += 1) ticks.push(round(low + i * step));
  return { ticks, min: low, max: high, step };
}

/** A linear map from `domain` onto `range` (a zero-width domain maps to the range's start). */
export function linear([d0, d1], [r0, r1]) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** Bucket `index` of `count` across a plot `width` wide starting at `left`: its x and width. */
export function bucketBand(index, count, left, width) {
  const w = width / count;
  return { x: left + index * w, w };
}

/** The bucket under `x`, or -1 outside the plot. */
export function bucketAt(x, count, left, width) {
  if (count === 0 || x < left || x >= left + width) return -1;
  return Math.min(count - 1, Math.floor(((x - left) / width) * count));
}

const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/**
 * Round times between `start` and `end` (unix s) for the x axis, at most `most` of them, on round
 * minutes and hours of the viewer's clock (`offset`: seconds east of UTC, as in a local time).
 */
export function timeTicks(start, end, most, offset = 0) {
  const step = TIME_STEPS.find((s) => (end - start) / s <= most) ?? TIME_STEPS.at(-1);
  const ticks = [];
  for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) ticks.push(t);
  return ticks;
}

const pad = (n) => String(n).padStart(2, '0');

/** "14:05" on the viewer's clock (`offset`: seconds east of UTC). */
export function clockLabel(unix, offset = 0) {
  const t = new Date((unix + offset) * 1000);
  return `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
}

/** A duration in seconds, short: "850 ms", "1.5 s", "42 s", "3.5 min", "2 h". */
export function formatSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  if (s === 0) return '0';
  if (s < 1) return `${round(Math.round(s * 1000))} ms`;
  if (s < 60) return `${s < 10 ? round(Number(s.toFixed(1))) : Math.round(s)} s`;
  if (s < 3600) return `${round(Number((s / 60).toFixed(s < 600 ? 1 : 0)))} min`;
  return `${round(Number((s / 3600).toFixed(1)))} h`;
}

/** "minute", "5 minutes", "hour": what one bucket of `step` seconds is. */
export function stepLabel(step) {
  if (step % 3600 === 0) return step === 3600 ? 'hour' : `${step / 3600} hours`;
  if (step % 60 === 0) return step === 60 ? 'minute' : `${step / 60} minutes`;
  return `${step} seconds`;
}

const FACTORS = [1, 2, 5, 10, 15, 30, 60];

/** How many buckets one bar merges, so that `count` buckets across `width` px make bars `least` px wide. */
export function barFactor(count, width, least = 3) {
  return FACTORS.find((f) => width / Math.ceil(count / f) >= least) ?? FACTORS.at(-1);
}

/**
 * The throughput of `series` in buckets `factor` times as long, summed, starting on round times of
 * the viewer's clock (`offset`: seconds east of UTC), so a day's 1440 minutes fit a narrow chart.
 */
export function coarsen(series, factor, offset = 0) {
  const step = series.step * factor;
  const merged = { window: series.window, step, buckets: [], succeeded: [], failed: [] };
  series.buckets.forEach((t, i) => {
    const start = Math.floor((t + offset) / step) * step - offset;
    if (merged.buckets.at(-1) !== start) {
      merged.buckets.push(start);
      merged.succeeded.push(0);
      merged.failed.push(0);
    }
    merged.succeeded[merged.succeeded.length - 1] += series.succeeded[i];
    merged.failed[merged.failed.length - 1] += series.failed[i];
  });
  return merged;
}

/** The runs of consecutive non-null values, as [first, last] index pairs: a line breaks at a gap. */
export function segments(values) {
  const runs = [];
  let first = -1;
  values.forEach((v, i) => {
    if (v !== null && v !== undefined && first < 0) first = i;
    if ((v === null || v === undefined) && first >= 0) {
      runs.push([first, i - 1]);
      first = -1;
    }
  });
  if (first >= 0) runs.push([first, values.length - 1]);
  return runs;
}

/** The largest value, nulls ignored; 0 when there is none. */
export function maxOf(...lists) {
  let most = 0;
  for (const list of lists) for (const v of list) if (v !== null && v !== undefined && v > most) most = v;
  return most;
}

const sum = (values) => values.reduce((a, b) => a + b, 0);
const WINDOWS = { hour: 'the last hour', day: 'the last day' };
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * What the throughput chart shows, in words: totals and the busiest bucket. It counts tasks (each
 * time one ended SUCCESS or FAILED), never attempts: the workers panel counts attempts.
 */
export function throughputSummary(series, offset = 0) {
  const succeeded = sum(series.succeeded);
  const failed = sum(series.failed);
  const per = stepLabel(series.step);
  let text = `Tasks per ${per} over ${WINDOWS[series.window] ?? series.window}: ` +
    `${plural(succeeded, 'task')} succeeded, ${plural(failed, 'task')} failed.`;
  const totals = series.succeeded.map((n, i) => n + series.failed[i]);
  const busiest = totals.indexOf(Math.max(0, ...totals));
  if (succeeded + failed > 0) {
    text += ` Busiest ${per}: ${clockLabel(series.buckets[busiest], offset)} with ${plural(totals[busiest], 'task')}.`;
  }
  return text;
}

/** A task type's run times in words: "p50 1.2 s, p95 2.9 s, longest 3 s" (the longest when known). */
export function runtimeText(row) {
  const longest = row.max === null || row.max === undefined ? '' : `, longest ${formatSeconds(row.max)}`;
  return `p50 ${formatSeconds(row.p50)}, p95 ${formatSeconds(row.p95)}${longest}`;
}

/** Where the run-time chart's axis must reach: every bar and every longest run. */
export function runtimeExtent(rows) {
  return Math.max(0, ...rows.map((r) => Math.max(r.p95 ?? 0, r.max ?? 0)));
}

/** What the run-time chart shows, in words. */
export function runtimeSummary(series) {
  if (!series.run_time.length) return `Run time per task type: no task finished in ${WINDOWS[series.window] ?? 'this window'}.`;
  return `Run time per task type: ${series.run_time.map((r) =>
    `${r.task_type} ${runtimeText(r)} (${plural(r.count, 'run')})`).join('; ')}.`;
}

/** What the queue-depth chart shows, in words: now, and the most waiting at once in any minute. */
export function queueSummary(series, offset = 0) {
  const most = maxOf(series.queue_depth);
  const at = most > 0 ? ` (${clockLabel(series.buckets[series.queue_depth.indexOf(most)], offset)})` : '';
  return `Queue depth over ${WINDOWS[series.window] ?? series.window}: ${plural(series.queue_depth_now, 'task')} ` +
    `waiting now, at most ${most} at once${at}.`;
}

/** The queue-depth tooltip of minute `index`: its maximum, and its mean where workers sampled it. */
export function queueTip(series, index) {
  const most = series.queue_depth[index];
  if (most === null || most === undefined) return 'not observed';
  const mean = series.queue_depth_mean?.[index];
  return `at most ${most} waiting${mean === null || mean === undefined ? '' : ` · mean ${mean}`}`;
}

/** What the wait-time chart shows, in words: the latest bucket with starts, and the worst p95. */
export function waitSummary(series) {
  const last = series.wait_p50.findLastIndex((v) => v !== null && v !== undefined);
  if (last < 0) return `Wait time before start: no task started in ${WINDOWS[series.window] ?? 'this window'}.`;
  return `Wait time before start: latest p50 ${formatSeconds(series.wait_p50[last])}, ` +
    `p95 ${formatSeconds(series.wait_p95[last])}; highest p95 ${formatSeconds(maxOf(series.wait_p95))}.`;
}
