// The submit form, generated from the task types' parameter schemas (`GET /api/task-types`).
// The server validates; a 422 is shown next to the field it names.

import { h, setText } from './dom.js';
import { UploadField } from './uploadfield.js';

/**
 * One input (or a pair, for a size) per schema type; `read` gives the JSON value, undefined for
 * "default"; `write` puts a task's value back (a re-run with changes starts from its parameters).
 * Upload fields also carry their `uploads`, which a submit waits for.
 */
const CONTROLS = {
  integer: (name, p) => numberControl(name, p, 1),
  number: (name, p) => numberControl(name, p, 'any'),
  string: (name, p) => textControl(name, p),
  choice: (name, p) => {
    // A required choice starts unchosen (nothing is sent for it unless picked); an optional one whose
    // default is none of the choices (`Literal[…] | None = None`) can be left at that default.
    const open = p.required || !p.choices.includes(p.default);
    const blank = open ? [h('option', { value: '' }, p.required ? 'Choose…' : '(default)')] : [];
    const input = h('select', { id: `param-${name}`, name, required: p.required || undefined },
      [...blank, ...p.choices.map((c) => h('option', { value: String(c) }, String(c)))]);
    input.value = open ? '' : String(p.default);
    return {
      input, read: () => p.choices.find((c) => String(c) === input.value), // the choice itself (`Literal[1, 2]`: a number)
      write: (value) => { input.value = value === null || value === undefined ? '' : String(value); },
    };
  },
  boolean: (name, p) => {
    const input = h('input', { id: `param-${name}`, name, type: 'checkbox', checked: Boolean(initial(p, false)) });
    return { input, read: () => input.checked, write: (value) => { input.checked = Boolean(value); } };
  },
  size: (name, p) => sizeControl(name, p),
  list: (name, p) => jsonControl(name, p, 'A JSON array, e.g. ["a", 2].'),
  json: (name, p) => jsonControl(name, p, 'A JSON value.'),
  uploads: (name, p, api) => uploadsControl(name, p, api),
};

/** The starting value of a control: the default, or empty for a parameter that has none (required). */
const initial = (p, empty = '') => ('default' in p ? p.default : empty);

function numberControl(name, p, step) {
  const input = h('input', {
    id: `param-${name}`, name, type: 'number', inputmode: step === 1 ? 'numeric' : 'decimal',
    min: p.minimum, max: p.maximum, step, value: String(initial(p)), required: p.required || undefined,
  });
  return {
    input, read: () => (input.value === '' ? undefined : Number(input.value)),
    write: (value) => { input.value = value === null || value === undefined ? '' : String(value); },
  };
}

function textControl(name, p) {
  const attrs = { id: `param-${name}`, name, maxlength: p.max_length ?? undefined, value: initial(p),
    spellcheck: 'false', required: p.required || undefined };
  const input = p.multiline ? h('textarea', { ...attrs, rows: 4 }) : h('input', { ...attrs, type: 'text' });
  // Empty stands for "not given" where that differs from an empty string: a required parameter (the
  // server then names it) or one whose default is none (`str | None = None`).
  const unset = p.required || p.default === null;
  return {
    input, read: () => (unset && input.value === '' ? undefined : input.value),
    write: (value) => { input.value = value ?? ''; },
  };
}

/**
 * Files cannot be put back in a file input: a re-run keeps the earlier task's uploads unless others are chosen.
 * A parameter of one file (`many: false`) takes an id, one of several files a list of ids.
 */
function uploadsControl(name, p, api) {
  const uploads = new UploadField(name, p, api.upload);
  const note = h('p', { class: 'hint' });
  let kept;
  const write = (value) => {
    const ids = typeof value === 'string' ? [value] : value;
    kept = Array.isArray(ids) && ids.length ? ids : undefined;
    setText(note, kept ? `Keeps the earlier task's ${kept.length} file${kept.length === 1 ? '' : 's'} unless you choose others.` : '');
  };
  uploads.el.append(note);
  const read = () => {
    const ids = uploads.read() ?? kept;
    return p.many === false && ids ? ids[0] : ids;
  };
  return { input: uploads.el, read, write, uploads, hint: p.max_items > 1 ? `Up to ${p.max_items} files.` : '' };
}

function sizeControl(name, p) {
  const side = (label, value) => h('input', {
    type: 'number', min: p.minimum, max: p.maximum, step: 1, value: String(value), 'aria-label': `${name} ${label}`,
  });
  const [w, ht] = initial(p, ['', '']);
  const [width, height] = [side('width', w), side('height', ht)];
  width.id = `param-${name}`;
  const input = h('span', { class: 'size-pair' }, width, h('span', { 'aria-hidden': 'true' }, '×'), height);
  return {
    input, read: () => (width.value === '' && height.value === '' ? undefined : [Number(width.value), Number(height.value)]),
    write: ([w, ht]) => { [width.value, height.value] = [String(w), String(ht)]; },
  };
}

/** Types without a dedicated control (and lists) are edited as JSON; a parse error stays in the browser. */
function jsonControl(name, p, hint) {
  const input = h('textarea', { id: `param-${name}`, name, rows: 3, spellcheck: 'false', class: 'mono',
    value: 'default' in p ? JSON.stringify(p.default) : '', required: p.required || undefined });
  const read = () => {
    if (input.value.trim() === '') return undefined;
    try {
      return JSON.parse(input.value);
    } catch {
      throw Object.assign(new Error('not valid JSON'), { field: name });
    }
  };
  return { input, read, hint, write: (value) => { input.value = JSON.stringify(value); } };
}

/** A parameter's label: the title its schema gives (pydantic's default: `processing_time` → "Processing Time"), else its name in words. */
export function labelOf(name, p) {
  if (p.title) return p.title;
  const words = name.replaceAll('_', ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** One parameter's labelled control, hint and error line (the schedules page builds its form with it too). */
export function fieldRow(name, p, api) {
  const control = (CONTROLS[p.type] || ((n, q) => jsonControl(n, q, 'JSON value.')))(name, p, api);
  const hint = [p.description, control.hint].filter(Boolean).join(' ');
  const text = labelOf(name, p) + (p.required ? ' (required)' : '');
  const label = p.type === 'boolean'
    ? h('label', { class: 'check', for: `param-${name}` }, control.input, ` ${text}`)
    : h('label', { for: `param-${name}` }, text);
  const row = h('div', { class: 'field', 'data-field': name },
    label, p.type === 'boolean' ? null : control.input,
    h('p', { class: 'hint' }, hint), h('p', { class: 'field-error', 'data-error-for': name, role: 'alert' }));
  return { row, read: control.read, write: control.write, uploads: control.uploads };
}

export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) setText(el, '');
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/**
 * Shows `detail` next to the field named `field` (a parameter's, or `<prefix>-<field>` for the form's
 * own options); under the parameters when no such field is on screen. A field inside a parameter
 * (`shape.width`) shows at its parameter, named in the message.
 */
export function showFieldError(form, field, detail, prefix) {
  const [top, ...inner] = (field || '').split('.');
  const name = CSS.escape(top);
  const target = form.querySelector(`[data-error-for="${name}"]`) || form.querySelector('[data-error-for="parameters"]');
  setText(target, inner.length ? `${inner.join('.')}: ${detail}` : detail);
  form.querySelector(`#param-${name}, #${prefix}-${name}`)?.setAttribute('aria-invalid', 'true');
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * A `datetime-local` value (wall time, no offset) as ISO 8601 with this browser's offset for that
 * moment, e.g. `2026-12-24T18:00:00+01:00`; null when it is not a date and time.
 */
export function localToIso(value) {
  const t = new Date(value); // a date-time without an offset is read as local time
  if (!value || Number.isNaN(t.getTime())) return null;
  const offset = -t.getTimezoneOffset();
  const zone = `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const date = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
  return `${date}T${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}${zone}`;
}

const refuse = (field, message) => { throw Object.assign(new Error(message), { field }); };

/**
 * The submit options from the form's controls: the priority, `run_at` or `delay` by the start
 * chosen (none for "now"), and a callback URL if one is given. Errors name the field, like the server's.
 * @param {{priority: string, start: 'now'|'at'|'after', at: string, delay: string, callback?: string}} chosen
 */
export function readOptions({ priority, start, at, delay, callback = '' }) {
  const options = { priority };
  if (callback.trim()) options.callback_url = callback.trim();
  if (start === 'at') options.run_at = localToIso(at) ?? refuse('run_at', 'choose a date and time');
  if (start === 'after') {
    const seconds = delay.trim() === '' ? NaN : Number(delay);
    if (!(seconds >= 0)) refuse('delay', 'give the seconds to wait (0 or more)');
    options.delay = seconds;
  }
  return options;
}

/** The callback URL option, added beside the others: a signed POST on each final state of the task. */
function callbackField(options) {
  const input = h('input', { id: 'opt-callback_url', name: 'callback_url', type: 'url', maxlength: 2000,
    placeholder: 'https://example.com/hook', spellcheck: 'false', autocomplete: 'off' });
  options.append(h('div', { class: 'field' }, h('label', { for: 'opt-callback_url' }, 'Callback URL'), input,
    h('p', { class: 'hint' }, 'Optional: gets a signed POST when the task ends (needs WEBHOOK_SECRET on the server).'),
    h('p', { class: 'field-error', 'data-error-for': 'callback_url', role: 'alert' })));
  return input;
}

const RETRY_TYPES = 3000; // ms between attempts to fetch the task types while the server is unreachable

export class SubmitForm {
  /** Builds the form once `GET /api/task-types` answers (retrying until it does), then calls `ready`. */
  static async load(api, form, ready) {
    let answer;
    try {
      answer = await api.taskTypes();
    } catch (error) {
      setText(form.querySelector('#type-description'), `Could not load the task types (${error.detail}); retrying…`);
      setTimeout(() => SubmitForm.load(api, form, ready), RETRY_TYPES);
      return;
    }
    ready(new SubmitForm(form, answer.task_types, api));
  }

  constructor(form, taskTypes, api) {
    this.form = form;
    this.api = api;
    this.types = new Map(taskTypes.map((t) => [t.name, t]));
    this.select = form.querySelector('#task-type');
    this.fields = form.querySelector('#param-fields');
    this.description = form.querySelector('#type-description');
    this.result = form.querySelector('#submit-result');
    this.priority = form.querySelector('#opt-priority');
    this.start = form.querySelector('#opt-start');
    this.runAt = form.querySelector('#opt-run_at');
    this.delay = form.querySelector('#opt-delay');
    this.callback = callbackField(form.querySelector('.options'));
    this.banner = form.querySelector('#rerun-banner');
    this.submitButton = form.querySelector('[data-submit]');
    this.rerunOf = null; // the task a submit re-runs, while the form is filled from it
    this.select.replaceChildren(...taskTypes.map((t) => h('option', { value: t.name }, t.name)));
    this.select.addEventListener('change', () => this.showType());
    this.start.addEventListener('change', () => this.showStart());
    this.banner.querySelector('[data-rerun-stop]').addEventListener('click', () => this.newTask());
    this.showType();
  }

  /** The fields of the selected type, filled with `values` (a task's parameters) or the defaults. */
  showType(values = {}) {
    const type = this.types.get(this.select.value);
    setText(this.description, type.description);
    this.readers = new Map();
    this.uploads = [];
    this.fields.replaceChildren(...Object.entries(type.parameters).map(([name, p]) => {
      const { row, read, write, uploads } = fieldRow(name, p, this.api);
      this.readers.set(name, read);
      if (uploads) this.uploads.push(uploads);
      if (name in values) write(values[name]);
      return row;
    }));
    this.clearErrors();
  }

  showStart() {
    this.runAt.hidden = this.start.value !== 'at';
    this.delay.parentElement.hidden = this.start.value !== 'after';
  }

  options() {
    const options = readOptions({ priority: this.priority.value, start: this.start.value, at: this.runAt.value,
      delay: this.delay.value, callback: this.callback.value });
    // a re-run keeps its source's callback unless told otherwise: an emptied field drops it
    if (this.rerunOf && !('callback_url' in options)) options.callback_url = null;
    return options;
  }

  /** "Run again with changes": the form filled from `task`; a submit then re-runs it (its type stays). */
  editRerun(task) {
    this.rerunOf = task.id;
    this.select.value = task.task_type;
    this.select.disabled = true;
    this.showType(task.parameters);
    this.priority.value = task.priority || 'default';
    this.callback.value = task.callback_url || '';
    this.start.value = 'now';
    this.showStart();
    setText(this.banner.querySelector('[data-rerun-of]'), task.id);
    this.banner.hidden = false;
    setText(this.submitButton, 'Run again');
    this.showResult([]);
    const card = this.form.closest('details');
    if (card) card.open = true;
    this.form.scrollIntoView({ block: 'nearest' });
    (this.fields.querySelector('input, select, textarea') || this.submitButton).focus();
  }

  /** Back to submitting a new task, with the defaults. */
  newTask() {
    this.rerunOf = null;
    this.select.disabled = false;
    this.banner.hidden = true;
    setText(this.submitButton, 'Submit task');
    this.callback.value = '';
    this.showType();
  }

  /** The body's parameters; fields left empty are omitted so the server fills in their default. */
  values() {
    const parameters = {};
    for (const [name, read] of this.readers) {
      const value = read();
      if (value !== undefined) parameters[name] = value;
    }
    return parameters;
  }

  clearErrors() {
    clearFieldErrors(this.form);
  }

  showError(field, detail) {
    showFieldError(this.form, field, detail, 'opt');
  }

  showResult(content) {
    this.result.replaceChildren(...content);
  }

  typeNames() {
    return [...this.types.keys()];
  }

  bindOpen(handler) {
    this.result.addEventListener('click', (event) => {
      const button = event.target.closest('[data-open]');
      if (button) handler(button.dataset.open);
    });
  }

  /** A submit while files are still uploading waits for them, and says so. */
  async uploadsSettled() {
    const pending = this.uploads.reduce((sum, field) => sum + field.pending, 0);
    if (pending === 0) return;
    this.showResult([`Waiting for ${pending} upload${pending === 1 ? '' : 's'} to finish…`]);
    await Promise.all(this.uploads.map((field) => field.settled()));
    this.showResult([]);
  }

  bindSubmit(handler) {
    this.form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (this.waiting) return; // one submit already waits for the uploads
      this.clearErrors();
      this.waiting = true;
      await this.uploadsSettled(); // never rejects: a failed upload shows on its own line
      this.waiting = false;
      try {
        handler(this.select.value, this.values(), this.options());
      } catch (error) {
        this.showError(error.field, error.message);
      }
    });
  }
}
