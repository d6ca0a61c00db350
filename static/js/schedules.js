// The schedules page: recurring tasks with their next and last runs, a form that creates or edits one
// (parameter fields built by form.js from `GET /api/task-types`, like the submit form's), pause and
// resume, run now, delete, and a schedule's recent runs. Schedules send no live events: it polls.
// Schedule data only ever goes in as text.

import { createApi } from './api.js';
import { TokenGate, TokenKeeper, sessionStore } from './auth.js';
import { h, setAttr, setText } from './dom.js';
import { clearFieldErrors, fieldRow, showFieldError } from './form.js';
import { formatTime, formatTimestamp, shortId } from './format.js';
import { TokenDialog } from './tokendialog.js';
import { badge } from './views.js';

const REFRESH = 2000; // ms between reloads of the list (and of the open runs)
const RUNS_SHOWN = 10;
const RETRY_TYPES = 3000; // ms between attempts to fetch the task types while the server is unreachable

/** How often a schedule runs, in words. */
function describeTiming(schedule) {
  if (schedule.interval !== null) return `every ${schedule.interval} s`;
  return `cron ${schedule.cron}${schedule.timezone === 'UTC' ? '' : ` (${schedule.timezone})`}`;
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

const cell = (className, ...children) => h('td', { class: className }, ...children);
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
    this.tbody.replaceChildren(...schedules.map((s) => this.rows.get(s.id).tr));
    this.empty.hidden = schedules.length > 0;
  }

  build(id) {
    const refs = {
      name: cell('schedule-name'), type: cell('mono'), timing: cell('timing'), next: cell('next-run'),
      last: cell('last-run'), runs: cell('runs num'), pause: action('pause', 'Pause'),
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
    setText(refs.next, schedule.paused ? 'paused' : formatTime(schedule.next_run_at));
    setAttr(refs.next, 'title', schedule.paused ? '' : formatTimestamp(schedule.next_run_at));
    setText(refs.runs, schedule.runs);
    setText(refs.pause, schedule.paused ? 'Resume' : 'Pause');
    const link = refs.last.firstChild;
    if (!schedule.last_task_id) refs.last.replaceChildren('—');
    else if (link?.dataset?.taskId !== schedule.last_task_id || link.dataset.at !== schedule.last_run_at) {
      refs.last.replaceChildren(h('a', {
        href: `/?task=${encodeURIComponent(schedule.last_task_id)}`, class: 'task-link',
        title: formatTimestamp(schedule.last_run_at), dataset: { taskId: schedule.last_task_id, at: schedule.last_run_at },
      }, `${formatTime(schedule.last_run_at)} · ${shortId(schedule.last_task_id)}`));
    }
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
    h('td', {}, badge(task.status)),
    h('td', {}, h('a', { href: `/?task=${encodeURIComponent(task.id)}`, class: 'task-link' }, shortId(task.id))),
    h('td', { title: formatTimestamp(task.run_at) }, formatTime(task.run_at)),
    h('td', {}, formatTime(task.started_at)), h('td', {}, formatTime(task.completed_at)))));
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

const table = new ScheduleTable($('schedule-rows'), $('schedules-empty'));
let runsOf = null; // the schedule whose runs are shown

async function refresh() {
  try {
    table.render((await api.schedules()).schedules);
    $('schedules-error').hidden = true;
    if (runsOf) {
      const query = new URLSearchParams({ schedule_id: runsOf, limit: String(RUNS_SHOWN) });
      renderRuns($('schedule-runs'), $('runs-empty'), (await api.listTasks(`?${query}`)).tasks);
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
      if (!window.confirm(`Delete the schedule “${schedule.name}”? The tasks it made stay.`)) return;
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

loadForm();
refresh();
setInterval(refresh, REFRESH);
