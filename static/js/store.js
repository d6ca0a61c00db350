// The dashboard's state, with no DOM: tasks by id behind a per-task seq guard, the counters per
// status with live deltas, and the ids of the page on screen.

/**
 * @typedef {{status: string, at: string, attempt?: number, worker?: string, message?: string}} TimelineEntry
 * @typedef {{
 *   id: string, task_type: string, status: string, parameters: Record<string, unknown>,
 *   progress: number, stage: string|null, result_data: Record<string, unknown>|null,
 *   error_message: string|null, created_at: string, started_at: string|null,
 *   completed_at: string|null, updated_at: string, attempts: number, dispatch: number,
 *   seq: number, cancel_requested: boolean, worker: string|null, timeline: TimelineEntry[],
 *   next_run_at: string|null, queue_position?: number|null, priority: 'high'|'default'|'low',
 *   run_at: string|null, schedule_id: string|null, source_task_id: string|null, callback_url: string|null
 * }} Task  mirrors the server's TaskDict (core/wire.py); `queue_position` only in REST answers
 * @typedef {{status: string, task_type: string, q: string, text?: string, from?: string, to?: string,
 *   priority?: string, page: number, task: string}} Filters  `from`/`to`: UTC days, both included
 */

export const STATUSES = ['PENDING', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELLED'];
export const PRIORITIES = ['high', 'default', 'low'];

const zeroCounts = () => Object.fromEntries(STATUSES.map((s) => [s, 0]));

/** Whether a task belongs in a list filtered by `filters` (id search is by prefix, dashes ignored). */
export function matches(task, filters) {
  const prefix = (filters.q || '').toLowerCase().replaceAll('-', '');
  return (!filters.status || task.status === filters.status)
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

  /** The seq guard, for REST rows and socket events alike: only something newer replaces a task. */
  put(task) {
    const held = this.tasks.get(task.id);
    if ((this.seqs.get(task.id) ?? -1) >= task.seq) {
      // The same version read over REST may bring a queue position the event did not carry.
      if (held?.seq === task.seq && 'queue_position' in task) this.tasks.set(task.id, { ...held, queue_position: task.queue_position });
      return false;
    }
    this.seqs.set(task.id, task.seq);
    this.tasks.delete(task.id); // re-inserted last: the map stays ordered by latest change
    this.tasks.set(task.id, keepQueuePosition(held, task));
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
   * Applies one socket `task` message.
   * @returns {{applied: boolean, listChanged: boolean, statusChanged: boolean}}
   */
  applyEvent(change, task) {
    const known = this.seqs.has(task.id);
    const previous = this.tasks.get(task.id)?.status;
    // A task opened as soon as it was made (a re-run) may be read over REST before its `created`
    // event arrives: that event still counts it and puts it on the list.
    const readFirst = change === 'created' && this.tasks.get(task.id)?.seq === task.seq;
    if (!this.put(task) && !readFirst) return { applied: false, listChanged: false, statusChanged: false };
    if (task.seq > this.countsSeq) this.countDelta(change, task);
    const isNew = change === 'created' || (change === 'replay' && !known && this.newerThanTop(task));
    return { applied: true, listChanged: isNew && this.insert(task), statusChanged: previous !== task.status };
  }

  countDelta(change, task) {
    if (change === 'created') this.counts[task.status] += 1;
    if (change !== 'status') return;
    const from = previousStatus(task);
    if (from) this.counts[from] = Math.max(0, this.counts[from] - 1);
    this.counts[task.status] += 1;
  }

  /** A replayed task we never saw, created after the first row, was created while the socket was down. */
  newerThanTop(task) {
    const top = this.tasks.get(this.ids[0]);
    return this.filters.page === 1 && (!top || task.created_at > top.created_at);
  }

  /** Puts a new task on top of page 1, or counts it for the "N new" pill; true if either happened. */
  insert(task) {
    if (!matches(task, this.filters) || this.ids.includes(task.id)) return false;
    this.total += 1;
    if (this.filters.page !== 1) {
      this.unseen += 1;
      return true;
    }
    this.ids = [task.id, ...this.ids].slice(0, this.limit);
    this.insertedDuringLoad?.push(task.id);
    return true;
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
