// The workers panel: each worker from GET /api/workers, kept current by the heartbeats the socket
// forwards (`{"type": "worker", "worker", "ttl"}`, after the page asks with `{"type": "workers"}`).
// A dead worker says nothing, so a timer here marks a worker lost once no beat came within its TTL.

import { h, setAttr, setText } from './dom.js';
import { formatDuration, formatTime, shortId } from './format.js';

const LABELS = { live: 'Live', lost: 'Lost', stopped: 'Stopped' };
const GLYPHS = { live: '●', lost: '✕', stopped: '■' };
const SHOWN_RUNNING = 3; // task links per row; more are counted
const TYPES_SHOWN = 8; // task type names per row; the rest are counted (all in the cell's tooltip)
const RELOAD_EVERY = 60_000; // ms: the list is reloaded this often too, so forgotten workers leave

/**
 * A worker as the page keeps it: the server's fields, plus `seenAt` (when its last beat was sent, on
 * this page's clock: the server's own `now` converts it, so clocks need not agree) and its `ttl`.
 * @typedef {{id: string, host: string, pid: number, queues: string[], concurrency: number, task_types: string[],
 *   started: number, last_heartbeat: number, running: string[], completed: number, failed: number,
 *   state: 'live'|'lost'|'stopped', stopped: number|null, seenAt: number, ttl: number}} Worker
 */

/** The workers of a GET /api/workers answer received at `nowMs`. */
export function fromList(answer, nowMs) {
  return answer.workers.map((worker) => ({
    ...worker, seenAt: nowMs - (answer.now - worker.last_heartbeat) * 1000, ttl: answer.heartbeat_ttl,
  }));
}

/** The worker of a heartbeat message, received at `nowMs` (it was published just before). */
export function fromBeat(message, nowMs) {
  return { ...message.worker, seenAt: nowMs, ttl: message.ttl };
}

/** live, until no beat arrived within the TTL: then lost; a worker that stopped cleanly stays stopped. */
export function stateAt(worker, nowMs) {
  if (worker.state !== 'live') return worker.state;
  return nowMs - worker.seenAt > worker.ttl * 1000 ? 'lost' : 'live';
}

/** Oldest first, as the server lists them: a row keeps its place when its worker is lost. */
export function ordered(workers) {
  return [...workers].sort((a, b) => a.started - b.started || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** "2 live, 1 lost", for the panel's head (and screen readers). */
export function summary(workers, nowMs) {
  const counts = { live: 0, lost: 0, stopped: 0 };
  for (const worker of workers) counts[stateAt(worker, nowMs)] += 1;
  const parts = Object.entries(counts).filter(([, n]) => n).map(([state, n]) => `${n} ${state}`);
  return parts.length ? parts.join(', ') : '0 live';
}

export class WorkersPanel {
  constructor(root, { api, now = () => Date.now() }) {
    this.root = root;
    this.api = api;
    this.now = now;
    this.workers = new Map();
    this.rows = new Map();
    this.body = root.querySelector('#worker-rows');
    this.empty = root.querySelector('#workers-empty');
    this.summary = root.querySelector('#workers-summary');
    this.loadedAt = -Infinity;
  }

  /** Task ids in a row open the task's details. */
  bindOpen(handler) {
    this.body.addEventListener('click', (event) => {
      const link = event.target.closest('[data-open]');
      if (link) handler(link.dataset.open);
    });
  }

  async load() {
    this.loadedAt = this.now();
    const answer = await this.api.workers();
    this.workers = new Map(fromList(answer, this.now()).map((worker) => [worker.id, worker]));
    this.render();
  }

  onMessage(message) {
    if (message.type !== 'worker') return;
    const worker = fromBeat(message, this.now());
    this.workers.set(worker.id, worker);
    this.render();
  }

  /** Every second: ages, and lost workers (the silence is the news); now and then, the list again. */
  tick() {
    if (this.now() - this.loadedAt >= RELOAD_EVERY) this.load().catch(() => {});
    this.render();
  }

  render() {
    const now = this.now();
    const workers = ordered(this.workers.values());
    for (const [id, row] of this.rows) {
      if (!this.workers.has(id)) {
        row.row.remove();
        this.rows.delete(id);
      }
    }
    workers.forEach((worker, index) => {
      let row = this.rows.get(worker.id);
      if (!row) {
        row = buildRow(worker);
        this.rows.set(worker.id, row);
      }
      fillRow(row, worker, now);
      if (this.body.children[index] !== row.row) this.body.insertBefore(row.row, this.body.children[index] ?? null);
    });
    this.empty.hidden = workers.length > 0;
    setText(this.summary, summary(workers, now));
  }
}

function buildRow(worker) {
  const refs = {
    badge: h('span', { class: 'badge' }, h('span', { class: 'glyph', 'aria-hidden': 'true' }), h('span')),
    host: h('span', { class: 'worker-host' }), pid: h('span', { class: 'worker-pid' }),
    queues: h('td', { class: 'c-queues' }), types: h('td', { class: 'c-types' }), started: h('td', { class: 'c-since' }),
    beat: h('td', { class: 'c-beat' }), running: h('td', { class: 'c-running' }),
    completed: h('td', { class: 'c-completed num', title: 'attempts ended with SUCCESS' }),
    failed: h('td', { class: 'c-failed num', title: 'attempts failed (retried or not): not a count of failed tasks' }),
  };
  refs.row = h('tr', { 'data-worker-id': worker.id, 'data-pid': worker.pid },
    h('td', { class: 'c-state' }, refs.badge),
    h('td', { class: 'c-worker', title: worker.id }, refs.host, ' ', refs.pid),
    refs.queues, refs.types, refs.started, refs.beat, refs.running, refs.completed, refs.failed);
  return refs;
}

function fillRow(refs, worker, now) {
  const state = stateAt(worker, now);
  setAttr(refs.row, 'data-state', state);
  setAttr(refs.badge, 'class', `badge badge-${state}`);
  setText(refs.badge.firstChild, GLYPHS[state]);
  setText(refs.badge.lastChild, LABELS[state]);
  setText(refs.host, worker.host);
  setText(refs.pid, `pid ${worker.pid}`);
  setText(refs.queues, worker.queues.join(', '));
  fillTypes(refs.types, worker.task_types || []);
  setText(refs.started, formatTime(new Date(worker.started * 1000).toISOString()));
  const ago = state === 'stopped' ? `stopped ${formatTime(new Date(worker.stopped * 1000).toISOString())}`
    : `${formatDuration(now - worker.seenAt)} ago`;
  setText(refs.beat, ago);
  setText(refs.completed, worker.completed);
  setText(refs.failed, worker.failed);
  fillRunning(refs.running, worker, state);
}

/** The first few type names, all of them in the tooltip; each name is a span the stylesheet keeps whole, so
 * the list wraps between names only (not inside one); redrawn only when the list changed. */
function fillTypes(cell, types) {
  const key = types.join(', ');
  if (cell.dataset.key === key) return;
  cell.dataset.key = key;
  setAttr(cell, 'title', key);
  const names = types.slice(0, TYPES_SHOWN).map((type) => h('span', { class: 'type-name' }, type));
  const more = types.length > TYPES_SHOWN ? [` +${types.length - TYPES_SHOWN} more`] : [];
  cell.replaceChildren(...(names.length ? names.flatMap((name, i) => (i ? [', ', name] : [name])) : ['—']), ...more);
}

/** "2 / 10" and the first few task ids as links; redrawn only when the list changed. */
function fillRunning(cell, worker, state) {
  const key = `${state}|${worker.running.join(',')}|${worker.concurrency}`;
  if (cell.dataset.key === key) return;
  cell.dataset.key = key;
  const links = worker.running.slice(0, SHOWN_RUNNING).map((id) =>
    h('button', { type: 'button', class: 'task-link', 'data-open': id, title: id }, shortId(id)));
  const more = worker.running.length > SHOWN_RUNNING ? `+${worker.running.length - SHOWN_RUNNING}` : null;
  // A lost worker's list is what it ran at its last beat (the watchdog hands those tasks on).
  const counted = { live: `${worker.running.length} / ${worker.concurrency}`, stopped: '—',
    lost: worker.running.length ? `${worker.running.length} at its last beat:` : '0' }[state];
  cell.replaceChildren(h('span', { class: 'running-count' }, counted), ...links.flatMap((l) => [' ', l]),
    ...(more ? [' ', more] : []));
}
