// Pure formatting of task fields for display: times, durations, ids, JSON.

/** Each status has a glyph as well as a colour, so a badge reads without colour too. */
export const GLYPHS = {
  PENDING: '○', RUNNING: '◐', SUCCESS: '✓', FAILED: '✕', CANCELLED: '⊘', RETRYING: '↻',
};

export function shortId(id) {
  return id.slice(0, 8);
}

const pad = (n) => String(n).padStart(2, '0');
const clock = (t) => `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
const day = (t) => `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Local time of day, or the date when it is not today (a list column is narrow); '—' for no time. */
export function formatTime(iso, now = new Date()) {
  if (!iso) return '—';
  const t = new Date(iso);
  if (t.toDateString() === now.toDateString()) return clock(t);
  const year = t.getFullYear() === now.getFullYear() ? '' : ` ${t.getFullYear()}`;
  return `${MONTHS[t.getMonth()]} ${t.getDate()}${year}`;
}

/** Local date and time to the minute, "7 Dec, 14:30" (the year when not this one): for times ahead. */
export function formatDateTime(iso, now = new Date()) {
  if (!iso) return '—';
  const t = new Date(iso);
  const year = t.getFullYear() === now.getFullYear() ? '' : ` ${t.getFullYear()}`;
  return `${t.getDate()} ${MONTHS[t.getMonth()]}${year}, ${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/** How far a time lies from now, in its largest unit: "in 45 s", "in 3 h", "2 d ago"; "now" within a second. */
export function formatFromNow(iso, nowMs = Date.now()) {
  const ms = Date.parse(iso) - nowMs;
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds === 0) return 'now';
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(minutes / 60);
  let span = `${Math.round(hours / 24)} d`;
  if (seconds < 60) span = `${seconds} s`;
  else if (minutes < 60) span = `${minutes} min`;
  else if (hours < 48) span = `${hours} h`;
  return ms > 0 ? `in ${span}` : `${span} ago`;
}

/** Local time of day to the second, whatever the day: for log lines, which a day rarely separates. */
export function formatClock(iso) {
  return iso ? clock(new Date(iso)) : '—';
}

/** Date and time to the millisecond, local: for the detail view, where precision matters. */
export function formatTimestamp(iso) {
  if (!iso) return '—';
  const t = new Date(iso);
  return `${day(t)} ${clock(t)}.${String(t.getMilliseconds()).padStart(3, '0')}`;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${pad(Math.floor(seconds % 60))} s`;
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} m`;
}

/**
 * How long the task has run: until now while RUNNING, until completion once ended.
 * @param {import('./store.js').Task} task
 */
export function runTime(task, nowMs = Date.now()) {
  if (!task.started_at) return null;
  const start = Date.parse(task.started_at);
  if (task.status === 'RUNNING') return nowMs - start;
  return task.completed_at ? Date.parse(task.completed_at) - start : null;
}

const UNITS = ['kB', 'MB', 'GB'];

/** A file size in decimal units, as file managers show them. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '—';
  if (bytes < 1000) return `${bytes} B`;
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

export function formatProgress(progress) {
  return `${Math.round(progress ?? 0)}%`;
}

export function formatJson(value) {
  return value === null || value === undefined ? '—' : JSON.stringify(value, null, 2);
}
