// State → DOM for the list page: rows updated in place, counters, pager, connection indicator.
// Task data only ever goes in as text (h() and setText() never parse HTML).

import { h, setAttr, setText } from './dom.js';
import { waitParts } from './eta.js';
import { GLYPHS, formatClock, formatDuration, formatProgress, formatTime, runTime, shortId } from './format.js';
import { SCHEDULED, STATUSES } from './store.js';

const LABELS = Object.fromEntries(STATUSES.map((s) => [s, s[0] + s.slice(1).toLowerCase()]));

/** A status badge: colour, glyph and word, so it reads without colour too. */
export function badge(status) {
  const el = h('span', { class: 'badge' }, h('span', { class: 'glyph', 'aria-hidden': 'true' }), h('span'));
  setBadge(el, status);
  return el;
}

export function setBadge(el, status) {
  setAttr(el, 'class', `badge badge-${status.toLowerCase()}`);
  setText(el.firstChild, GLYPHS[status] || '?');
  setText(el.lastChild, LABELS[status] || status);
}

const PRIORITY_GLYPHS = { high: '▲', low: '▼' };

/** A priority badge: high and low stand out; default stays quiet (no text at all where `quiet`). */
export function priorityBadge() {
  return h('span', { class: 'priority' });
}

export function setPriority(el, priority, { quiet = true } = {}) {
  const p = priority || 'default';
  setAttr(el, 'data-priority', p);
  setText(el, p === 'default' ? (quiet ? '' : p) : `${PRIORITY_GLYPHS[p] ?? ''} ${p}`);
}

/**
 * When a PENDING task whose start lies ahead may start (its `next_run_at`: the `run_at`, until a
 * manual retry queues it at once), as local time with the date unless today; null for any other.
 */
export function scheduledAt(task, nowMs) {
  const at = task.next_run_at;
  if (task.status !== 'PENDING' || !at || Date.parse(at) <= nowMs) return null;
  const now = new Date(nowMs);
  const day = new Date(at).toDateString() === now.toDateString() ? '' : `${formatTime(at, now)}, `;
  return `${day}${formatClock(at)}`;
}

/** What the task waits for: its start time (it has no queue position meanwhile), or eta.js's estimates. */
export function waitLine(task, nowMs) {
  const at = scheduledAt(task, nowMs);
  return at ? [`scheduled for ${at}`] : waitParts(task, nowMs);
}

const track = () => h('span', { class: 'track' }, h('span', { class: 'fill' }));

/** A progress bar with its percentage; the fill's position is set through CSSOM, which a CSP allows. */
export function progressBar() {
  return h('span', { class: 'progress' }, track(), h('span', { class: 'pct' }));
}

/** Sets the bar and percentage inside `el` (a progressBar(), or a row's progress cell). */
export function setProgress(el, progress) {
  const transform = `translateX(${Math.min(100, Math.max(0, progress ?? 0)) - 100}%)`;
  const fill = el.querySelector('.fill');
  if (fill.style.transform !== transform) fill.style.transform = transform;
  setText(el.querySelector('.pct'), formatProgress(progress));
}

function buildRow(task) {
  const cell = (name, ...children) => h('td', { class: `c-${name}` }, ...children);
  const refs = {
    badge: badge(task.status),
    select: h('input', { type: 'checkbox', class: 'row-select', 'aria-label': `Select task ${shortId(task.id)}` }),
    open: h('button', { type: 'button', class: 'task-link', title: task.id }, shortId(task.id)),
    type: h('span', { class: 'type-name' }), priority: priorityBadge(), stage: h('span', { class: 'stage' }), created: h('time'), started: h('time'),
    runtime: h('span'), wait: h('span', { class: 'wait' }), attempts: h('span'),
  };
  refs.progress = cell('progress', track(), h('span', { class: 'progress-meta' }, refs.stage, h('span', { class: 'pct' })));
  refs.row = h('tr', { 'data-task-id': task.id },
    cell('select', h('label', { class: 'select-hit' }, refs.select)),
    cell('status', refs.badge), cell('id', refs.open), cell('type', refs.type, refs.priority), refs.progress,
    cell('created', refs.created), cell('started', refs.started), cell('runtime', refs.runtime, refs.wait),
    cell('attempts', refs.attempts));
  return refs;
}

/** Fills a row from `task`; nothing to do for the very version it shows (on the same day). */
function fillRow(refs, task, now) {
  const day = now.toDateString(); // a time of day shown turns into a date once the day is over
  if (refs.task === task && refs.day === day) return;
  refs.task = task;
  refs.day = day;
  setAttr(refs.row, 'data-status', task.status);
  setBadge(refs.badge, task.status);
  setText(refs.type, task.task_type);
  setPriority(refs.priority, task.priority);
  setProgress(refs.progress, task.progress);
  setProgressLine(refs, task);
  setTime(refs.created, task.created_at, now);
  setTime(refs.started, task.started_at, now);
  setTimes(refs, task, now.getTime());
  setText(refs.attempts, task.attempts);
}

const ERRED = new Set(['FAILED', 'RETRYING']);

/**
 * Under the bar, what the row can say that its badge does not: the stage while it runs, the error's
 * first line when it failed (or will be retried), where a cancelled one stopped; nothing for a
 * success (its badge says it all, and the bar is hidden).
 */
function setProgressLine(refs, task) {
  const error = ERRED.has(task.status) && task.error_message ? task.error_message.split('\n')[0] : '';
  const line = error || (task.status === 'SUCCESS' ? '' : task.stage || '');
  setText(refs.stage, line);
  setAttr(refs.stage, 'title', error ? task.error_message : line);
  refs.stage.classList.toggle('stage-error', Boolean(error));
  if (task.status === 'SUCCESS') setText(refs.progress.querySelector('.pct'), '');
}

/** The run time, and under it the most telling of the estimate, retry countdown, start time or queue position. */
function setTimes(refs, task, nowMs) {
  // A task waiting for its start says so where its run time will be: one line is too narrow for both.
  const at = scheduledAt(task, nowMs);
  setText(refs.runtime, at ? 'scheduled for' : formatDuration(runTime(task, nowMs)));
  const wait = at ?? waitParts(task, nowMs)[0] ?? '';
  setText(refs.wait, wait);
  setAttr(refs.wait, 'title', wait); // a narrow column may cut it
}

/**
 * Puts `rows` in `tbody`, in order, moving only rows out of place: a task added on top inserts one
 * row and drops the last, instead of re-inserting the page (which lays every row out anew).
 */
function placeRows(tbody, rows) {
  const keep = new Set(rows);
  for (const row of [...tbody.children]) if (!keep.has(row)) row.remove();
  let next = tbody.firstElementChild;
  for (const row of rows) {
    if (row === next) next = next.nextElementSibling;
    else tbody.insertBefore(row, next);
  }
}

const TICKING = new Set(['RUNNING', 'RETRYING']); // run time and estimate, or the retry countdown

function setTime(el, iso, now = new Date()) {
  setText(el, formatTime(iso, now));
  setAttr(el, 'datetime', iso || '');
  setAttr(el, 'title', iso ? new Date(iso).toLocaleString() : '');
}

export class TaskList {
  constructor(doc) {
    this.tbody = doc.getElementById('task-rows');
    this.empty = doc.getElementById('empty');
    this.pageInfo = doc.getElementById('page-info');
    this.prev = doc.getElementById('page-prev');
    this.next = doc.getElementById('page-next');
    this.pill = doc.getElementById('new-pill');
    this.selectPage = doc.getElementById('select-page');
    this.rows = new Map(); // task id → refs of its row
    this.selected = () => false; // whether a task is selected for a bulk action (see bulk.js)
  }

  /** Shows exactly `tasks`, in order, reusing the rows already on screen. */
  render(tasks, { total, offset, limit, unseen }) {
    const now = new Date();
    const wanted = tasks.map((task) => {
      const refs = this.rows.get(task.id) || buildRow(task);
      this.rows.set(task.id, refs);
      fillRow(refs, task, now);
      return refs.row;
    });
    const ids = new Set(tasks.map((task) => task.id));
    for (const id of this.rows.keys()) if (!ids.has(id)) this.rows.delete(id);
    placeRows(this.tbody, wanted);
    this.showSelected();
    this.empty.hidden = tasks.length > 0;
    this.renderPager(total, offset, limit);
    this.pill.hidden = unseen === 0;
    setText(this.pill, `${unseen} new — show`);
  }

  renderPager(total, offset, limit) {
    const last = Math.min(total, offset + limit);
    setText(this.pageInfo, total ? `${offset + 1}–${last} of ${total.toLocaleString('en')}` : 'No tasks');
    this.prev.disabled = offset === 0;
    this.next.disabled = last >= total;
  }

  /** Updates the task's row in place, if it is on this page. */
  update(task) {
    const refs = this.rows.get(task.id);
    if (refs) fillRow(refs, task, new Date());
  }

  /** Advances what counts in time on RUNNING and RETRYING rows (one shared timer ticks every row). */
  tick(tasks) {
    const now = Date.now();
    for (const task of tasks) {
      const refs = TICKING.has(task.status) && this.rows.get(task.id);
      if (refs) setTimes(refs, task, now);
    }
  }

  /** Ticks each row's box as `this.selected` says, and the page's box: all, some (indeterminate) or none. */
  showSelected() {
    let count = 0;
    for (const [id, refs] of this.rows) {
      refs.select.checked = this.selected(id);
      count += refs.select.checked;
    }
    this.selectPage.checked = count > 0 && count === this.rows.size;
    this.selectPage.indeterminate = count > 0 && count < this.rows.size;
    this.selectPage.disabled = this.rows.size === 0;
  }

  /** `handler(ids, selected)`: one row's box, or the page's box for every row on it. */
  bindSelect(handler) {
    this.tbody.addEventListener('change', (event) => {
      const row = event.target.classList.contains('row-select') && event.target.closest('[data-task-id]');
      if (row) handler([row.dataset.taskId], event.target.checked);
    });
    this.selectPage.addEventListener('change', () => handler([...this.rows.keys()], this.selectPage.checked));
  }

  bindOpen(handler) {
    this.tbody.addEventListener('click', (event) => {
      if (event.target.closest('.c-select')) return; // ticking a box is not opening the task
      const row = event.target.closest('[data-task-id]');
      if (row) handler(row.dataset.taskId);
    });
  }

  bindPaging(handler) {
    this.prev.addEventListener('click', () => handler(-1));
    this.next.addEventListener('click', () => handler(+1));
    this.pill.addEventListener('click', () => handler(0));
  }
}

/** What each counter counts: tasks, each once (the workers panel and the charts count attempts). */
const COUNTED = {
  PENDING: 'Tasks waiting to start', RUNNING: 'Tasks running now', RETRYING: 'Tasks waiting for another attempt',
  SUCCESS: 'Tasks that succeeded', FAILED: 'Tasks that failed, each once however many of its attempts failed',
  CANCELLED: 'Tasks cancelled',
};

/** The per-status counters; each one is also a button filtering the list by its status. */
export class Counters {
  constructor(el) {
    this.el = el;
    const counter = (status, glyph, label, title) => h('button', {
      type: 'button', class: `counter counter-${status.toLowerCase()}`, 'data-count': status, title,
    }, h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyph), h('span', { class: 'counter-label' }, label),
    h('span', { class: 'count' }, ''));
    this.buttons = new Map(STATUSES.map((status) => [status, counter(status, GLYPHS[status], LABELS[status],
      `${COUNTED[status]} (click to list them)`)]));
    // A view beside the statuses: the tasks waiting for a start ahead (counted when listed).
    this.buttons.set(SCHEDULED, counter(SCHEDULED, '◷', 'Scheduled', 'Pending tasks whose start lies ahead'));
    el.replaceChildren(...this.buttons.values());
  }

  render(counts, active, total) {
    for (const [status, button] of this.buttons) {
      const count = status === SCHEDULED ? (active === SCHEDULED ? total : null) : counts[status] ?? 0;
      setText(button.querySelector('.count'), count === null ? '' : count.toLocaleString('en'));
      setAttr(button, 'aria-pressed', String(status === active));
    }
  }

  bindPick(handler) {
    this.el.addEventListener('click', (event) => {
      const button = event.target.closest('[data-count]');
      if (button) handler(button.dataset.count);
    });
  }
}

const CONNECTION_LABELS = { live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline — polling' };

export function renderConnection(el, state) {
  setAttr(el, 'data-connection', state);
  setText(el.querySelector('.connection-label'), CONNECTION_LABELS[state]);
  setAttr(el, 'title', state === 'offline'
    ? 'The live connection is down: the list is refreshed every few seconds until it is back.'
    : '');
}
