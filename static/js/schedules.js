// The schedules page: recurring tasks with their next and last runs, a form that creates or edits one
// (parameter fields built by form.js from `GET /api/task-types`, like the submit form's), pause and
// resume, run now, delete (asked in the page), and a schedule's recent runs. Live over the dashboard's
// socket: a schedule's runs are tasks carrying its `schedule_id`, and their events reload what they change.
// Schedule data only ever goes in as text.

import { createApi } from './api.js';
import { TokenGate, TokenKeeper, sessionStore } from './auth.js';
import { BASE, socketUrl } from './base.js';
import { h, setAttr, setText } from './dom.js';
import { clearFieldErrors, fieldRow, showFieldError } from './form.js';
import { formatDateTime, formatFromNow, formatTime, formatTimestamp, shortId } from './format.js';
import { Connection } from './socket.js';
import { TokenDialog } from './tokendialog.js';
import { badge, renderConnection } from './views.js';

// Schedules created, edited or paused elsewhere (another tab, the API) send no event: reloaded this often.
const REFRESH = 30000; // ms
const LIVE_DELAY = 250; // ms: the events that come within this of one another (a run made, started, ended) are one reload
const RUNS_SHOWN = 10;
const RETRY_TYPES = 3000; // ms between attempts to fetch the task types while the server is unreachable

/** How often a schedule runs, in words. */
function describeTiming(schedule) {
  if (schedule.interval !== null) return `every ${schedule.interval} s`;
  return `cron ${schedule.cron}${schedule.timezone === 'UTC' ? '' : ` (${schedule.timezone})`}`;
}

/** "7 Dec, 14:30 · in 3 h"; "due" once the time has come (a worker's scheduler is about to run it). */
function describeNextRun(schedule, nowMs = Date.now()) {
  const at = schedule.next_run_at;
  if (schedule.paused) return 'paused';
  if (!at) return '—';
  return `${formatDateTime(at, new Date(nowMs))} · ${Date.parse(at) > nowMs ? formatFromNow(at, nowMs) : 'due'}`;
}

/** The create or edit form: name, task type and its parameters, timing, priority. */
class ScheduleForm {
  constructor(form, taskTypes, api) {
    Object.assign(this, { form, api, editing: null });
    this.types = new Map(taskTypes.map((t) => [t.name, t]));
    this.select = form.querySelector('#task-type');
    this.timing = form.querySelector('#schedule-timing');
    this.title = document.getElementById('schedule-form-title');
    this.submitButton = form.querySelector('button[type=submit]');
    this.cancelButton = form.querySelector('#schedule-cancel-edit');
    this.result = form.querySelector('#schedule-result');
    this.select.replaceChildren(...taskTypes.map((t) => h('option', { value: t.name }, t.name)));
    this.select.addEventListener('change', () => this.showType({}));
    this.timing.addEventListener('change', () => this.showTiming());
    this.cancelButton.addEventListener('click', () => this.reset());
    const zones = Intl.supportedValuesOf?.('timeZone') ?? [];
    form.querySelector('#timezones').replaceChildren(...['UTC', ...zones].map((z) => h('option', { value: z })));
    this.showType({});
    this.showTiming();
  }

  /** The selected type's parameter fields, filled with `values` where given, else the defaults. */
  showType(values) {
    const type = this.types.get(this.select.value);
    setText(this.form.querySelector('#type-description'), type.description);
    this.readers = new Map();
    this.form.querySelector('#param-fields').replaceChildren(...Object.entries(type.parameters).map(([name, p]) => {
      const { row, read } = fieldRow(name, name in values ? { ...p, default: values[name] } : p, this.api);
      this.readers.set(name, read);
      return row;
    }));
  }

  showTiming() {
    for (const el of this.form.querySelectorAll('[data-timing]')) el.hidden = el.dataset.timing !== this.timing.value;
  }

  /** The request body; fields left empty are omitted so the server fills in their default. */
  body() {
    const parameters = {};
    for (const [name, read] of this.readers) {
      const value = read();
      if (value !== undefined) parameters[name] = value;
    }
    const field = (name) => this.form.querySelector(`#schedule-${name}`).value.trim();
    const byCron = this.timing.value === 'cron';
    const interval = field('interval') === '' ? null : Number(field('interval'));
    return {
      name: field('name'), task_type: this.select.value, parameters, priority: field('priority'),
      cron: byCron ? field('cron') : null, interval: byCron ? null : interval,
      timezone: byCron ? field('timezone') || 'UTC' : 'UTC',
    };
  }

  /** Fills the form with a schedule; the next submit edits it. */
  edit(schedule) {
    this.editing = schedule.id;
    this.clearErrors();
    this.form.querySelector('#schedule-name').value = schedule.name;
    this.select.value = schedule.task_type;
    this.showType(schedule.parameters);
    this.timing.value = schedule.cron === null ? 'interval' : 'cron';
    if (schedule.interval !== null) this.form.querySelector('#schedule-interval').value = String(schedule.interval);
    if (schedule.cron !== null) this.form.querySelector('#schedule-cron').value = schedule.cron;
    this.form.querySelector('#schedule-timezone').value = schedule.timezone;
    this.form.querySelector('#schedule-priority').value = schedule.priority;
    this.showTiming();
    setText(this.title, `Edit schedule “${schedule.name}”`);
    setText(this.submitButton, 'Save changes');
    this.cancelButton.hidden = false;
    this.form.closest('details').open = true;
    this.form.querySelector('#schedule-name').focus();
  }

  reset() {
    this.editing = null;
    this.form.reset();
    this.clearErrors();
    this.showType({});
    this.showTiming();
    setText(this.title, 'New schedule');
    setText(this.submitButton, 'Create schedule');
    this.cancelButton.hidden = true;
  }

  clearErrors() {
    clearFieldErrors(this.form);
  }

  showError(field, detail) {
    showFieldError(this.form, field, detail, 'schedule');
  }

  /** `handler(body, editingId)` on submit; what it throws (an ApiError naming a field) is shown. */
  bindSubmit(handler) {
    this.form.addEventListener('submit', async (event) => {
      event.preventDefault();
      this.clearErrors();
      setText(this.result, '');
      try {
        await handler(this.body(), this.editing);
        setText(this.result, this.editing ? 'Saved.' : 'Created.');
        this.reset();
      } catch (error) {
        this.showError(error.field, error.detail || error.message);
      }
    });
  }
}

// Where the table is narrower than its columns need, each row is a card whose fields `data-label` names (app.css).
const cell = (className, label) => h('td', { class: className, 'data-label': label });
const action = (name, label) => h('button', { type: 'button', class: 'button small', 'data-action': name }, label);

/** The schedules table, rows kept by id and updated in place (a click is never lost to a redraw). */
class ScheduleTable {
  constructor(tbody, empty) {
    Object.assign(this, { tbody, empty, rows: new Map() });
  }

  render(schedules) {
    const seen = new Set();
    for (const schedule of schedules) {
      seen.add(schedule.id);
      if (!this.rows.has(schedule.id)) this.rows.set(schedule.id, this.build(schedule.id));
      this.fill(this.rows.get(schedule.id), schedule);
    }
    for (const [id, refs] of this.rows) {
      if (!seen.has(id)) {
        refs.tr.remove();
        this.rows.delete(id);
      }
    }
    // A row moves only when out of place: a moved row loses the focus (a keyboard user's, or the one the
    // delete dialog gives back).
    let next = this.tbody.firstChild;
    for (const schedule of schedules) {
      const { tr } = this.rows.get(schedule.id);
      if (tr === next) next = next.nextSibling;
      else this.tbody.insertBefore(tr, next);
    }
    this.empty.hidden = schedules.length > 0;
  }

  build(id) {
    const refs = {
      name: cell('schedule-name'), type: cell('mono', 'Type'), timing: cell('timing', 'Timing'),
      next: cell('next-run', 'Next run'), last: cell('last-run', 'Last run'), runs: cell('runs num', 'Runs'),
      pause: action('pause', 'Pause'),
    };
    refs.tr = h('tr', { 'data-schedule-id': id }, refs.name, refs.type, refs.timing, refs.next, refs.last, refs.runs,
      h('td', {}, h('div', { class: 'actions' }, refs.pause, action('run', 'Run now'), action('edit', 'Edit'),
        action('runs', 'Runs'), action('delete', 'Delete'))));
    return refs;
  }

  fill(refs, schedule) {
    refs.schedule = schedule;
    setAttr(refs.tr, 'data-paused', String(schedule.paused));
    setText(refs.name, schedule.name);
    setText(refs.type, schedule.task_type);
    setText(refs.timing, describeTiming(schedule));
    setText(refs.next, describeNextRun(schedule));
    setAttr(refs.next, 'title', schedule.paused ? '' : formatTimestamp(schedule.next_run_at));
    setText(refs.runs, schedule.runs);
    setText(refs.pause, schedule.paused ? 'Resume' : 'Pause');
    const link = refs.last.firstChild;
    if (!schedule.last_task_id) refs.last.replaceChildren('—');
    else if (link?.dataset?.taskId !== schedule.last_task_id || link.dataset.at !== schedule.last_run_at) {
      refs.last.replaceChildren(h('a', {
        href: `${BASE}?task=${encodeURIComponent(schedule.last_task_id)}`, class: 'task-link',
        title: formatTimestamp(schedule.last_run_at), dataset: { taskId: schedule.last_task_id, at: schedule.last_run_at },
      }, `${formatDateTime(schedule.last_run_at)} · ${shortId(schedule.last_task_id)}`));
    }
  }

  /** The next runs' distance from now, which time alone changes. */
  tick() {
    for (const refs of this.rows.values()) setText(refs.next, describeNextRun(refs.schedule));
  }

  has(id) {
    return this.rows.has(id);
  }

  schedule(id) {
    return this.rows.get(id)?.schedule;
  }

  bindActions(handler) {
    this.tbody.addEventListener('click', (event) => {
      const button = event.target.closest('[data-action]');
      const tr = button?.closest('tr[data-schedule-id]');
      if (tr) handler(button.dataset.action, this.schedule(tr.dataset.scheduleId));
    });
  }
}

/** A schedule's latest tasks (the list endpoint's `schedule_id` filter), each linking to the task. */
function renderRuns(tbody, empty, tasks) {
  tbody.replaceChildren(...tasks.map((task) => h('tr', { 'data-task-id': task.id, 'data-status': task.status },
    h('td', { 'data-label': 'Status' }, badge(task.status)),
    h('td', { 'data-label': 'Task' },
      h('a', { href: `${BASE}?task=${encodeURIComponent(task.id)}`, class: 'task-link' }, shortId(task.id))),
    h('td', { 'data-label': 'Tick', title: formatTimestamp(task.run_at) }, formatTime(task.run_at)),
    h('td', { 'data-label': 'Started' }, formatTime(task.started_at)),
    h('td', { 'data-label': 'Ended' }, formatTime(task.completed_at)))));
  empty.hidden = tasks.length > 0;
}

const $ = (id) => document.getElementById(id);
const keeper = new TokenKeeper(sessionStore());
const tokenDialog = new TokenDialog($('token-dialog'), { enter: $('token-enter'), forget: $('token-forget') });
const gate = new TokenGate(keeper, (reason) => tokenDialog.ask(reason));
const api = createApi({ token: () => keeper.token, refused: (sent) => gate.refused(sent) });
tokenDialog.bindSubmit((token) => gate.provide(token));
tokenDialog.bindForget(() => {
  keeper.forget();
  location.reload();
});
tokenDialog.showStored(Boolean(keeper.token));

/** Asks in the page (not `confirm()`); true only for "Delete schedule". Escape keeps it, like "Keep". */
function confirmDelete(schedule) {
  const dialog = $('delete-dialog');
  setText($('delete-question'), `Delete the schedule “${schedule.name}”?`);
  dialog.returnValue = ''; // Escape leaves it as it was
  dialog.showModal(); // closing gives the focus back to the button that opened it
  dialog.querySelector('[data-keep]').focus(); // Enter on a destructive question changes nothing
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'delete'), { once: true });
  });
}

const table = new ScheduleTable($('schedule-rows'), $('schedules-empty'));
let runsOf = null; // the schedule whose runs are shown

let reloads = 0;
const drawn = { list: 0, runs: 0 }; // the latest reload drawn of each part

/** True when reload number `reload` is the latest yet to answer for `part`: an older answer coming later is dropped. */
function newest(part, reload) {
  if (reload < drawn[part]) return false;
  drawn[part] = reload;
  return true;
}

/** Reloads the list and the open runs (a part given as `false` stays as it is). */
async function refresh({ list = true, runs = true } = {}) {
  const reload = ++reloads;
  try {
    if (list) {
      const { schedules } = await api.schedules();
      if (newest('list', reload)) table.render(schedules);
    }
    $('schedules-error').hidden = true;
    if (runs && runsOf) {
      const shown = runsOf;
      const query = new URLSearchParams({ schedule_id: shown, limit: String(RUNS_SHOWN) });
      const { tasks } = await api.listTasks(`?${query}`);
      if (shown === runsOf && newest('runs', reload)) renderRuns($('schedule-runs'), $('runs-empty'), tasks);
    }
  } catch (error) {
    setText($('schedules-error'), `Could not load the schedules: ${error.detail}`);
    $('schedules-error').hidden = false;
  }
}

table.bindActions(async (name, schedule) => {
  if (!schedule) return;
  try {
    if (name === 'pause') await api.editSchedule(schedule.id, { paused: !schedule.paused });
    if (name === 'run') await api.runSchedule(schedule.id);
    if (name === 'edit') form?.edit(schedule);
    if (name === 'delete') {
      if (!(await confirmDelete(schedule))) return;
      await api.deleteSchedule(schedule.id);
      if (runsOf === schedule.id) runsOf = null;
      $('schedule-runs-card').hidden = runsOf === null;
    }
    if (name === 'runs') {
      runsOf = schedule.id;
      setText($('runs-title'), `Recent runs of “${schedule.name}”`);
      $('schedule-runs-card').hidden = false;
    }
  } catch (error) {
    setText($('schedules-error'), `${schedule.name}: ${error.detail}`);
    $('schedules-error').hidden = false;
    return;
  }
  await refresh();
});

let form = null;
async function loadForm() {
  let answer;
  try {
    answer = await api.taskTypes();
  } catch (error) {
    setText($('type-description'), `Could not load the task types (${error.detail}); retrying…`);
    setTimeout(loadForm, RETRY_TYPES);
    return;
  }
  form = new ScheduleForm($('schedule-form'), answer.task_types, api);
  form.bindSubmit(async (body, editing) => {
    if (editing) await api.editSchedule(editing, body);
    else await api.createSchedule(body);
    await refresh();
  });
}

let due = null; // the parts a live reload, already on its way, covers
function reloadSoon(list, runs) {
  if (!due) {
    due = { list: false, runs: false };
    setTimeout(() => {
      const parts = due;
      due = null;
      refresh(parts);
    }, LIVE_DELAY);
  }
  due.list ||= list;
  due.runs ||= runs;
}

/** Task events of schedules' runs (`docs/api.md`): a new run moves its schedule's next and last run and count. */
function onMessage(message) {
  if (message.type === 'reset') reloadSoon(true, true);
  const shown = (id) => $('schedule-runs').querySelector(`tr[data-task-id="${CSS.escape(id)}"]`);
  if (message.type === 'deleted' && message.task_ids.some(shown)) reloadSoon(false, true);
  if (message.type !== 'task' || message.change === 'progress' || !message.task.schedule_id) return;
  const id = message.task.schedule_id;
  const newRun = message.change === 'created' || message.change === 'replay';
  // A run of a schedule missing here: one created elsewhere since the list loaded.
  reloadSoon(newRun || !table.has(id), id === runsOf);
}

const connection = new Connection({
  url: (since) => socketUrl(`/ws${since === null ? '' : `?since=${since}`}`),
  onMessage,
  onState: (state) => renderConnection($('connection'), state),
  onHello: () => refresh(), // the first load, and on a reconnect what the socket missed
  poll: () => refresh(),
  token: () => keeper.token, onAuthRefused: (sent) => gate.refused(sent),
});
keeper.onChange((token) => {
  tokenDialog.showStored(Boolean(token));
  if (token) connection.reconnect(); // a socket still waiting without a token need not time out first
});

// On a phone the list comes first: the form starts folded.
if (matchMedia('(max-width: 720px)').matches) $('schedule-form').closest('details').open = false;
loadForm();
connection.start();
setInterval(() => {
  if (!connection.status.polling) refresh(); // while offline, the connection polls
}, REFRESH);
setInterval(() => table.tick(), 1000);
