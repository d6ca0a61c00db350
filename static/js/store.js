// The dashboard's state, with no DOM: tasks by id behind a per-task seq guard, the counters per
// status with live deltas, and the ids of the page on screen.

/**
 * @typedef {{status: string, at: string, attempt?: number, worker?: string, message?: string}} TimelineEntry
 * @typedef {{
 *   id: string, task_type: string, status: string, parameters: Record<string, unknown>,
 *   progress: number, stage: string|null, result_data: Record<string, unknown>|null,
 *   error_message: string|null, error_traceback: string|null, created_at: string, started_at: string|null,
 *   completed_at: string|null, updated_at: string, attempts: number, dispatch: number,
 *   seq: number, cancel_requested: boolean, worker: string|null, timeline: TimelineEntry[],
 *   next_run_at: string|null, queue_position?: number|null, priority: 'high'|'default'|'low',
 *   run_at: string|null, schedule_id: string|null, source_task_id: string|null, callback_url: string|null,
 *   truncated?: string[]
 * }} Task  mirrors the server's TaskDict (core/wire.py); `queue_position` only in REST answers; `truncated`
 *   (the fields cut short) only in lists and frames
 * @typedef {{status: string, task_type: string, q: string, text?: string, from?: string, to?: string,
 *   priority?: string, page: number, task: string}} Filters  `from`/`to`: UTC days, both included
 */

export const STATUSES = ['PENDING', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELLED'];
export const SCHEDULED = 'SCHEDULED'; // a view, not a status: PENDING tasks whose start lies ahead

/** Whether a PENDING task waits for a start still ahead (`next_run_at` is its run_at until it runs). */
export function scheduled(task, nowMs = Date.now()) {
  return task.status === 'PENDING' && Boolean(task.next_run_at) && Date.parse(task.next_run_at) > nowMs;
}
export const PRIORITIES = ['high', 'default', 'low'];

const zeroCounts = () => Object.fromEntries(STATUSES.map((s) => [s, 0]));

/** Whether a task belongs in a list filtered by `filters` (id search is by prefix, dashes ignored). */
export function matches(task, filters) {
  const prefix = (filters.q || '').toLowerCase().replaceAll('-', '');
  return (!filters.status || task.status === filters.status || (filters.status === SCHEDULED && scheduled(task)))
    && (!filters.task_type || task.task_type === filters.task_type)
    && task.id.startsWith(prefix)
    && (!filters.priority || task.priority === filters.priority)
    && (!filters.from || task.created_at.slice(0, 10) >= filters.from)
    && (!filters.to || task.created_at.slice(0, 10) <= filters.to)
    && textMatches(task, filters.text || '');
}

const WORD = /[\p{L}\p{N}]+/gu;

/** The server's text search (store/search.py): every word of `text` begins a word of the task's
 * parameters, result or error (JSON keys and values), in any letter case. */
export function textMatches(task, text) {
  const wanted = text.toLowerCase().match(WORD) || [];
  if (!wanted.length) return true;
  const parts = [];
  const walk = (value) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.entries(value).forEach(([key, item]) => { parts.push(key); walk(item); });
    else if (value !== null && value !== undefined) parts.push(String(value));
  };
  walk([task.parameters, task.result_data, task.error_message]);
  const tokens = parts.join(' ').toLowerCase().match(WORD) || [];
  return wanted.every((word) => tokens.some((token) => token.startsWith(word)));
}

/** The server's list order: newest first, ties by id (store/queries.py). */
export function newer(a, b) {
  return a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id);
}

/**
 * The task as it was before `change`, as far as the filters can tell, for a task not held before
 * (only the status and what a status change writes, the result and the error, ever change what
 * matches; a change of status came from the timeline's previous entry).
 */
export function earlier(change, task) {
  const from = change === 'status' ? previousStatus(task) : null;
  if (!from || from === task.status) return task;
  return {
    ...task, status: from, result_data: task.status === 'SUCCESS' ? null : task.result_data,
    error_message: task.status === 'FAILED' || task.status === 'RETRYING' ? null : task.error_message,
  };
}

/** The status a `status` event moved the task from: the timeline's second-to-last entry. */
export function previousStatus(task) {
  const timeline = task.timeline || [];
  return timeline.length >= 2 ? timeline[timeline.length - 2].status : null;
}

/**
 * Only REST answers carry `queue_position` (events never do): a task keeps the last one known
 * until its status changes, rather than losing it at its next event.
 */
export function keepQueuePosition(held, task) {
  if ('queue_position' in task || held?.queue_position == null || held.status !== task.status) return task;
  return { ...task, queue_position: held.queue_position };
}

/**
 * A newer version cut short (`truncated`, core/wire.py brief) of a task held whole: the held whole
 * value of each cut field that cannot have changed is kept, so a large running task's progress frames
 * leave it whole (else every frame would make the open panel load the whole task again). Parameters
 * never change; the result and the error change only with the status or a new dispatch or attempt
 * (an attempt's end, a retry: app/lifecycle). Fields still cut stay named in `truncated`.
 */
export function keepWhole(held, task) {
  if (!held || !task.truncated) return task;
  const same = held.status === task.status && held.dispatch === task.dispatch && held.attempts === task.attempts;
  const kept = task.truncated.filter((name) => !held.truncated?.includes(name) && (name === 'parameters' || same));
  if (!kept.length) return task;
  const merged = { ...task, ...Object.fromEntries(kept.map((name) => [name, held[name]])) };
  const cut = task.truncated.filter((name) => !kept.includes(name));
  if (cut.length) merged.truncated = cut;
  else delete merged.truncated;
  return merged;
}

export class Store {
  /** @param {number} keep tasks held beyond the page and the open one (older ones are dropped) */
  constructor(limit = 50, keep = 2000) {
    this.keep = keep;
    /** @type {Map<string, Task>} */
    this.tasks = new Map();
    /** @type {Map<string, number>} latest seq per task id, kept when the task itself is dropped */
    this.seqs = new Map();
    this.counts = zeroCounts();
    this.countsSeq = -1; // the seq the counters are exact at; older events are already in them
    this.limit = limit;
    /** @type {Filters} */
    this.filters = { status: '', task_type: '', q: '', text: '', from: '', to: '', priority: '', page: 1, task: '' };
    this.ids = [];
    this.total = 0;
    this.unseen = 0; // new matching tasks not shown because this is not the first page
    this.insertedDuringLoad = null; // ids inserted live while a page load is in flight
    this.deleted = new Set(); // a page read before a deletion must not bring its tasks back
  }

  /** The seq guard, for REST rows and socket events alike: only something newer replaces a task (keeping
   * what it cuts short that the store holds whole and still valid: `keepWhole`), or the whole task
   * (GET /api/tasks/{id}) the same version cut short in a list or a frame (`truncated`). */
  put(task) {
    const held = this.tasks.get(task.id);
    const whole = held?.seq === task.seq && held.truncated && !task.truncated;
    if ((this.seqs.get(task.id) ?? -1) >= task.seq && !whole) {
      // The same version read over REST may bring a queue position the event did not carry.
      if (held?.seq === task.seq && 'queue_position' in task) this.tasks.set(task.id, { ...held, queue_position: task.queue_position });
      return false;
    }
    this.seqs.set(task.id, task.seq);
    this.tasks.delete(task.id); // re-inserted last: the map stays ordered by latest change
    this.tasks.set(task.id, keepQueuePosition(held, keepWhole(held, task)));
    return true;
  }

  get offset() {
    return (this.filters.page - 1) * this.limit;
  }

  /** A page load starts: tasks inserted live from now on survive its answer. */
  beginLoad() {
    this.insertedDuringLoad = [];
  }

  /** Applies a `GET /api/tasks/` answer: its rows through the guard, its order, total and counts. */
  setPage(answer) {
    const rows = answer.tasks.filter((task) => !this.deleted.has(task.id));
    const ids = rows.map((task) => {
      // A row the guard refuses shows what the store holds; if it dropped that task, the row is
      // the best left (and the next event for the task still has to be newer than the seq seen).
      if (!this.put(task) && !this.tasks.has(task.id)) this.tasks.set(task.id, task);
      return task.id;
    });
    const fresh = (this.insertedDuringLoad || []).filter((id) => !ids.includes(id));
    this.insertedDuringLoad = null;
    this.ids = [...fresh, ...ids].slice(0, this.limit);
    this.total = answer.total + fresh.length - (answer.tasks.length - rows.length);
    this.unseen = 0;
    this.setCounts(answer.counts, answer.seq);
    this.forget();
  }

  /** Replaces the counters with a server snapshot, unless one exact at a later seq is held. */
  setCounts(counts, seq) {
    if (seq < this.countsSeq) return false;
    this.counts = { ...zeroCounts(), ...counts };
    this.countsSeq = seq;
    return true;
  }

  /**
   * Applies one socket `task` message: the task, the counters, and the list, which the task enters
   * or leaves when the change makes it match the filters or stop matching them.
   * @returns {{applied: boolean, listChanged: boolean, statusChanged: boolean}}
   */
  applyEvent(change, task) {
    const held = this.tasks.get(task.id);
    // A task opened as soon as it was made (a re-run) may be read over REST before its `created`
    // event arrives: that event still counts it and puts it on the list.
    const readFirst = change === 'created' && held?.seq === task.seq;
    if (!this.put(task) && !readFirst) return { applied: false, listChanged: false, statusChanged: false };
    if (task.seq > this.countsSeq) this.countDelta(change, task, held);
    // A replayed task not held may have changed in any way while the socket was down (the page is
    // reloaded after a resume anyway): if it matches now, it is placed as if new.
    const unseen = change === 'created' || (change === 'replay' && !held);
    const before = unseen ? false : matches(held ?? earlier(change, task), this.filters);
    return { applied: true, listChanged: this.follow(task, before), statusChanged: held?.status !== task.status };
  }

  /** A task read over REST (the answer to a cancel or a retry): as an event would, it may enter or leave. */
  applyRead(task) {
    const held = this.tasks.get(task.id);
    if (!this.put(task)) return false;
    return this.follow(task, held ? matches(held, this.filters) : this.ids.includes(task.id));
  }

  /** The list after a change of `task`, which matched the filters `before` it: true if the page changed. */
  follow(task, before) {
    const after = matches(task, this.filters);
    if (after && !before) return this.insert(task);
    if (before && !after) return this.leave(task.id);
    return false;
  }

  /** A `status` change moves one from the status the task had: the held task's, when there is one (a
   * cancel request is a `status` change that adds no timeline entry: app/lifecycle/cancel.py). */
  countDelta(change, task, held) {
    if (change === 'created') this.counts[task.status] += 1;
    if (change !== 'status') return;
    const from = held ? held.status : previousStatus(task);
    if (from) this.counts[from] = Math.max(0, this.counts[from] - 1);
    this.counts[task.status] += 1;
  }

  /**
   * A task that came to match: counted, and put in its place on the page (newest first) when it
   * falls within it; on a later page, one newer than the page's rows is counted for the "N new"
   * pill. True if the page or the pill changed.
   */
  insert(task) {
    if (this.ids.includes(task.id)) return false;
    this.total += 1;
    const rows = this.pageTasks();
    const at = rows.findIndex((row) => newer(task, row));
    if (this.filters.page !== 1) {
      if (at !== 0 || !rows.length) return false;
      this.unseen += 1;
      return true;
    }
    if (at === -1 && rows.length >= this.limit) return false; // it belongs on a later page
    const position = at === -1 ? rows.length : at;
    this.ids = [...this.ids.slice(0, position), task.id, ...this.ids.slice(position)].slice(0, this.limit);
    this.insertedDuringLoad?.push(task.id);
    return true;
  }

  /** A task that stopped matching leaves the count and the page (the dashboard refills a full page). */
  leave(id) {
    this.total = Math.max(0, this.total - 1);
    if (!this.ids.includes(id)) return false;
    this.ids = this.ids.filter((other) => other !== id);
    if (this.insertedDuringLoad) this.insertedDuringLoad = this.insertedDuringLoad.filter((other) => other !== id);
    return true;
  }

  /** Rows of the page that no longer match as time passes (a scheduled task whose start came): they leave. */
  expire() {
    const gone = this.pageTasks().filter((task) => !matches(task, this.filters));
    for (const task of gone) this.leave(task.id);
    return gone.length > 0;
  }

  /** Whether rows exist beyond the page on screen that a short page should show (fetched by a reload). */
  get refillable() {
    return this.ids.length < this.limit && this.offset + this.ids.length < this.total;
  }

  /**
   * Applies a `deleted` message: the tasks leave the store and the page (anything older about them
   * that still arrives is refused by their seq). True when the page on screen lost a row.
   */
  remove(ids, seq) {
    const gone = new Set(ids);
    for (const id of gone) {
      this.tasks.delete(id);
      this.seqs.set(id, Math.max(seq, this.seqs.get(id) ?? -1));
      this.deleted.add(id);
    }
    if (this.insertedDuringLoad) this.insertedDuringLoad = this.insertedDuringLoad.filter((id) => !gone.has(id));
    const kept = this.ids.filter((id) => !gone.has(id));
    const removed = this.ids.length - kept.length;
    this.ids = kept;
    this.total = Math.max(0, this.total - removed);
    return removed > 0;
  }

  /** Drops the least recently changed tasks off the page, so memory stays flat over a long session. */
  forget() {
    const keep = new Set(this.ids);
    if (this.filters.task) keep.add(this.filters.task);
    let excess = this.tasks.size - keep.size - this.keep;
    for (const id of this.tasks.keys()) {
      if (excess <= 0) break;
      if (keep.has(id)) continue;
      this.tasks.delete(id);
      excess -= 1;
    }
  }

  /** The tasks of the page, in order. */
  pageTasks() {
    return this.ids.map((id) => this.tasks.get(id)).filter(Boolean);
  }
}
