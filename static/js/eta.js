// Pure estimates of what a task is waiting for: the time left of a RUNNING task from its progress
// rate, the queue position of a waiting one, the countdown to a retry. Shared by rows and the panel.

const MIN_PROGRESS = 2; // %: below it (or in the first second) the rate says too little to estimate
const MIN_ELAPSED = 1000; // ms

/**
 * ms left for a RUNNING task if it keeps its average rate so far; null while that says too little.
 * `started_at` is the current attempt's start, and progress restarts with each attempt.
 * @param {import('./store.js').Task} task
 */
export function etaMs(task, nowMs) {
  if (task.status !== 'RUNNING' || !task.started_at) return null;
  const p = task.progress ?? 0;
  const elapsed = nowMs - Date.parse(task.started_at);
  if (p < MIN_PROGRESS || p >= 100 || elapsed < MIN_ELAPSED) return null;
  return (elapsed * (100 - p)) / p;
}

/** Coarser than a run time on purpose: seconds shown on an estimate of minutes would only look precise. */
export function formatEta(ms) {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} m`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} m`;
}

/**
 * What the task waits for, most telling first ([] when there is nothing to say): the estimate while
 * RUNNING; the retry countdown while RETRYING; the queue position, which only REST answers carry.
 * @param {import('./store.js').Task & {queue_position?: number|null}} task
 */
export function waitParts(task, nowMs) {
  if (task.status === 'RUNNING') {
    const eta = etaMs(task, nowMs);
    return eta === null ? [] : [`≈ ${formatEta(eta)} left`];
  }
  const parts = [];
  if (task.status === 'RETRYING' && task.next_run_at) {
    const wait = Date.parse(task.next_run_at) - nowMs;
    parts.push(wait > 0 ? `retry in ${formatEta(wait)}` : 'retry due');
  }
  if ((task.status === 'PENDING' || task.status === 'RETRYING') && task.queue_position) {
    parts.push(`#${task.queue_position} in queue`);
  }
  return parts;
}
