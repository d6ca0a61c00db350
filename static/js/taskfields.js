// The detail panel's fields: what the user chose and sees happen first (type, priority, start,
// attempts, times), then, folded under "More", the queue's own bookkeeping (worker id, dispatch,
// seq, cancel flag, attempt budget, limits, idempotency key). A field with nothing to say is hidden
// where it only applies to some tasks.

import { h, setAttr, setText } from './dom.js';
import { formatDuration, formatTimestamp, runTime } from './format.js';
import { formatSeconds } from './results/figures.js';
import { priorityBadge, setPriority } from './views.js';

/** [name, label, shown only when it has a value] */
const MAIN = [
  ['task_type', 'Type'], ['priority', 'Priority'], ['run_at', 'Start at', true], ['schedule_id', 'Schedule', true],
  ['attempts', 'Attempts'], ['created_at', 'Created'], ['started_at', 'Started'], ['completed_at', 'Completed'],
  ['runtime', 'Run time'], ['callback_url', 'Callback URL', true],
];
const MORE = [
  ['worker', 'Worker'], ['dispatch', 'Dispatch'], ['seq', 'Seq'], ['cancel_requested', 'Cancel requested'],
  ['attempts_base', 'Attempts before the last retry by hand', true], ['max_attempts', 'Attempts allowed'],
  ['timeout', 'Time limit'], ['next_run_at', 'Next run', true], ['idempotency_key', 'Idempotency key', true],
  ['updated_at', 'Updated'],
];
const TIMES = new Set(['created_at', 'started_at', 'completed_at', 'updated_at', 'run_at', 'next_run_at']);
const OPTIONAL = new Set([...MAIN, ...MORE].filter(([, , optional]) => optional).map(([name]) => name));

export class TaskFields {
  constructor() {
    this.refs = new Map([...MAIN, ...MORE].map(([name]) => [name, fieldElement(name)]));
    this.rows = new Map();
    const list = (fields, className) => h('dl', { class: className }, fields.map(([name, label]) => {
      const row = h('div', { 'data-field': name }, h('dt', {}, label), h('dd', {}, this.refs.get(name)));
      this.rows.set(name, row);
      return row;
    }));
    this.main = list(MAIN, 'fields');
    this.more = h('details', { class: 'more-fields' }, h('summary', {}, 'More'), list(MORE, 'more-list'));
  }

  /** @param {object} task @param {{max_attempts?: number, timeout?: number}|undefined} type its task type */
  update(task, type) {
    for (const [name, el] of this.refs) {
      if (OPTIONAL.has(name)) this.rows.get(name).hidden = task[name] === null || task[name] === undefined || task[name] === '';
      setField(name, el, task, type);
    }
  }

  tick(task, now) {
    if (task.status === 'RUNNING') setText(this.refs.get('runtime'), formatDuration(runTime(task, now)));
  }
}

const fieldElement = (name) => (name === 'priority' ? priorityBadge() : h(TIMES.has(name) ? 'time' : 'span'));

function setField(name, el, task, type) {
  if (name === 'priority') return setPriority(el, task.priority, { quiet: false });
  if (TIMES.has(name)) {
    setAttr(el, 'datetime', task[name] || '');
    return setText(el, formatTimestamp(task[name]));
  }
  if (name === 'runtime') return setText(el, formatDuration(runTime(task)));
  if (name === 'attempts') return setText(el, attempts(task, type));
  if (name === 'max_attempts') return setText(el, task.max_attempts ?? typeDefault(type?.max_attempts, String));
  if (name === 'timeout') {
    return setText(el, task.timeout ? formatSeconds(task.timeout) : typeDefault(type?.timeout, formatSeconds));
  }
  if (name === 'cancel_requested') return setText(el, task.cancel_requested ? 'yes' : 'no');
  if (name === 'schedule_id') return setSchedule(el, task.schedule_id);
  return setText(el, task[name] ?? '—');
}

const typeDefault = (value, format) => (value === null || value === undefined ? '—' : `${format(value)} (the type's)`);

/** "1 of 3": the attempts since the last retry by hand, of those allowed (and all of them, after one). */
function attempts(task, type) {
  const made = task.attempts - (task.attempts_base || 0);
  const allowed = task.max_attempts || type?.max_attempts;
  const all = task.attempts_base ? ` (${task.attempts} in all)` : '';
  return `${made}${allowed ? ` of ${allowed}` : ''}${all}`;
}

/** The schedule that made the task, linking to the schedules page; '—' for a task submitted by hand. */
function setSchedule(el, id) {
  if (el.dataset.schedule === (id ?? '')) return;
  el.dataset.schedule = id ?? '';
  const href = `schedules.html?${new URLSearchParams({ schedule: id ?? '' })}`; // beside this page, under any prefix
  el.replaceChildren(id ? h('a', { class: 'mono', href, title: 'Open the schedules page' }, id) : '—');
}
