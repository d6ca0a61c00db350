// The task detail side panel: every field, the estimate or queue position, the files it produced,
// its log, JSON blocks, the timeline, its lineage (re-run of, re-runs), Cancel, Retry, Run again
// with changes and Duplicate with their outcome, its webhook deliveries.

import { artifactItems, artifactsOf } from './artifacts.js';
import { h, setAttr, setText } from './dom.js';
import { formatDuration, formatJson, formatTimestamp, runTime } from './format.js';
import { LogView } from './logview.js';
import { badge, priorityBadge, progressBar, setBadge, setPriority, setProgress, waitLine } from './views.js';
import { WebhookView } from './webhooks.js';

const CANCELLABLE = ['PENDING', 'RETRYING', 'RUNNING'];
const RETRYABLE = ['FAILED', 'CANCELLED'];

const FIELDS = [
  ['task_type', 'Type'], ['priority', 'Priority'], ['run_at', 'Start at'], ['schedule_id', 'Schedule'], ['attempts', 'Attempts'], ['dispatch', 'Dispatch'], ['worker', 'Worker'],
  ['created_at', 'Created'], ['started_at', 'Started'], ['completed_at', 'Completed'],
  ['updated_at', 'Updated'], ['runtime', 'Run time'], ['seq', 'Seq'], ['cancel_requested', 'Cancel requested'],
];
const TIMES = new Set(['created_at', 'started_at', 'completed_at', 'updated_at', 'run_at']);
const fieldElement = (name) => (name === 'priority' ? priorityBadge() : h(TIMES.has(name) ? 'time' : 'span'));

export class DetailPanel {
  /**
   * @param {HTMLElement} el
   * @param {{withToken: () => boolean, fetch: (id: string, name: string) => Promise<Blob>}} [files] how
   *   a task's files load while a token is in use (fetched with it); without one, plain URLs do
   * @param {((id: string) => Promise<{deliveries: object[]}>)|null} [webhooks] a task's webhook deliveries
   */
  constructor(el, files = { withToken: () => false, fetch: null }, webhooks = null) {
    this.el = el;
    this.task = null;
    this.files = files;
    this.objectUrls = [];
    this.log = new LogView(); // filled by the LogFollower, not by update()
    this.webhooks = new WebhookView(webhooks);
    this.build();
  }

  build() {
    const r = (this.refs = {
      title: h('h2', { id: 'detail-title', class: 'mono' }), badge: badge('PENDING'),
      close: h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close details', title: 'Close (Esc)' }, '✕'),
      progress: progressBar(), wait: h('span', { class: 'wait' }), stage: h('p', { class: 'stage' }),
      cancel: h('button', { type: 'button', class: 'button danger', 'data-action': 'cancel' }, 'Cancel'),
      retry: h('button', { type: 'button', class: 'button', 'data-action': 'retry' }, 'Retry'),
      edit: h('button', { type: 'button', class: 'button', 'data-action': 'edit' }, 'Run again with changes'),
      duplicate: h('button', { type: 'button', class: 'button', 'data-action': 'duplicate' }, 'Duplicate'),
      source: h('p', { class: 'lineage-source' }), reruns: h('ul', { class: 'reruns' }),
      rerunsTitle: h('p', { class: 'lineage-title' }),
      outcome: h('p', { class: 'outcome', role: 'status', 'aria-live': 'polite' }),
      fields: new Map(FIELDS.map(([name]) => [name, fieldElement(name)])),
      error: h('pre', { class: 'json error-text' }), result: h('pre', { class: 'json' }),
      traceback: h('pre', { class: 'traceback' }),
      parameters: h('pre', { class: 'json' }), timeline: h('ol', { class: 'timeline' }),
      files: h('ul', { class: 'files' }),
    });
    r.tracebackBox = h('details', { class: 'traceback-box' }, h('summary', {}, 'Traceback'), r.traceback);
    r.errorSection = section('Error', [r.error, r.tracebackBox]);
    r.filesSection = section('Files', r.files);
    r.lineage = section('Lineage', [r.source, r.rerunsTitle, r.reruns]);
    this.el.replaceChildren(
      h('header', { class: 'detail-head' }, h('div', {}, h('p', { class: 'eyebrow' }, 'Task'), r.title), r.close),
      h('div', { class: 'detail-body' },
        h('div', { class: 'detail-status' }, r.badge, r.progress, r.wait), r.stage,
        h('div', { class: 'actions' }, r.cancel, r.retry, r.edit, r.duplicate), r.outcome,
        h('dl', { class: 'fields' }, FIELDS.map(([name, label]) => [h('dt', {}, label), h('dd', {}, r.fields.get(name))])),
        r.lineage, r.errorSection, r.filesSection, this.webhooks.el, section('Log', this.log.el),
        section('Result', r.result), section('Parameters', r.parameters),
        section('History', r.timeline)));
    this.showReruns([], 0);
  }

  /** Opens the panel on `task` (or on just an id while the task loads). */
  open(id, task) {
    this.id = id;
    this.task = null;
    this.shown = null;
    setText(this.refs.outcome, '');
    this.showReruns([], 0);
    setText(this.refs.title, id);
    this.el.hidden = false;
    setAttr(this.el, 'data-task-id', id);
    this.el.removeAttribute('data-status');
    if (task) this.update(task);
    this.refs.close.focus();
  }

  close() {
    this.el.hidden = true;
    this.id = null;
    this.task = null;
    this.revokeFiles();
    this.webhooks.stop();
  }

  /** Shows the latest state of the open task; the costly parts only when they can have changed. */
  update(task) {
    if (task.id !== this.id) return;
    this.task = task;
    const r = this.refs;
    setAttr(this.el, 'data-status', task.status);
    setBadge(r.badge, task.status);
    setProgress(r.progress, task.progress);
    setText(r.stage, task.stage || '');
    setText(r.wait, waitLine(task, Date.now()).join(' · '));
    this.showSource(task.source_task_id);
    for (const [name, el] of r.fields) this.setField(name, el, task);
    r.cancel.disabled = !CANCELLABLE.includes(task.status) || this.busy;
    r.retry.disabled = !RETRYABLE.includes(task.status) || this.busy;
    r.edit.disabled = r.duplicate.disabled = Boolean(this.busy);
    const key = `${task.status}/${task.timeline.length}`;
    if (this.shown === key) return;
    this.shown = key;
    this.webhooks.refresh(task.id); // a final state is what makes deliveries
    r.errorSection.hidden = !task.error_message;
    setText(r.error, task.error_message || '');
    r.tracebackBox.hidden = !task.error_traceback;
    setText(r.traceback, task.error_traceback || '');
    setText(r.result, formatJson(task.result_data));
    const files = artifactsOf(task);
    r.filesSection.hidden = files.length === 0;
    this.revokeFiles();
    r.files.replaceChildren(...artifactItems(task.id, files, this.fileFetcher(task.id)));
    setText(r.parameters, formatJson(task.parameters));
    r.timeline.replaceChildren(...task.timeline.map((entry, i) => timelineItem(entry, task.timeline[i - 1])));
  }

  /** Fetches a file with the token and keeps its object URL until the files are shown anew. */
  fileFetcher(id) {
    if (!this.files.withToken()) return null;
    return async (name) => {
      const url = URL.createObjectURL(await this.files.fetch(id, name));
      this.objectUrls.push(url);
      return url;
    };
  }

  revokeFiles() {
    for (const url of this.objectUrls.splice(0)) URL.revokeObjectURL(url);
  }

  /** "Re-run of <id>": a link that opens the task this one was made from. */
  showSource(sourceId) {
    const { source } = this.refs;
    if ((source.dataset.source ?? '') === (sourceId ?? '')) return;
    source.dataset.source = sourceId ?? '';
    source.replaceChildren(...(sourceId ? ['Re-run of ', openLink(sourceId)] : []));
    this.showLineage();
  }

  /** The tasks made from this one (GET /api/tasks/?source_task_id=…), newest first. */
  showReruns(tasks, total) {
    this.rerunIds = new Set(tasks.map((task) => task.id));
    this.rerunTotal = total;
    this.refs.reruns.replaceChildren(...tasks.map(rerunItem));
    this.showLineage();
  }

  /** A re-run made while the panel is open (its `created` event). */
  addRerun(task) {
    if (this.rerunIds.has(task.id)) return;
    this.rerunIds.add(task.id);
    this.rerunTotal += 1;
    this.refs.reruns.prepend(rerunItem(task));
    this.showLineage();
  }

  showLineage() {
    const { source, reruns, rerunsTitle, lineage } = this.refs;
    const total = this.rerunTotal;
    const more = total > reruns.children.length ? ` (the latest ${reruns.children.length} below)` : '';
    setText(rerunsTitle, total ? `Re-run ${total} time${total === 1 ? '' : 's'}${more}:` : '');
    lineage.hidden = !source.firstChild && !this.rerunTotal;
  }

  setField(name, el, task) {
    if (name === 'priority') return setPriority(el, task.priority, { quiet: false });
    if (TIMES.has(name)) {
      setAttr(el, 'datetime', task[name] || '');
      return setText(el, formatTimestamp(task[name]));
    }
    if (name === 'runtime') return setText(el, formatDuration(runTime(task)));
    if (name === 'cancel_requested') return setText(el, task.cancel_requested ? 'yes' : 'no');
    if (name === 'schedule_id') return setSchedule(el, task.schedule_id);
    return setText(el, task[name] ?? '—');
  }

  tick() {
    if (!this.task) return;
    const now = Date.now();
    if (this.task.status === 'RUNNING') setText(this.refs.fields.get('runtime'), formatDuration(runTime(this.task, now)));
    setText(this.refs.wait, waitLine(this.task, now).join(' · '));
  }

  /** Disables both actions while one is in flight, then shows what the server answered. */
  setBusy(busy) {
    this.busy = busy;
    if (this.task) this.update(this.task);
  }

  showOutcome(text, ok) {
    setText(this.refs.outcome, text);
    setAttr(this.refs.outcome, 'data-outcome', ok ? 'ok' : 'error');
  }

  bindClose(handler) {
    this.refs.close.addEventListener('click', handler);
    document.addEventListener('keydown', (event) => {
      // An Escape that closes a dialog above the panel (the token question) is that dialog's.
      if (event.key === 'Escape' && !this.el.hidden && !event.target.closest?.('dialog')) handler();
    });
  }

  bindActions(handler) {
    for (const button of [this.refs.cancel, this.refs.retry, this.refs.edit, this.refs.duplicate]) {
      button.addEventListener('click', () => handler(button.dataset.action, this.id));
    }
  }

  /** The links to other tasks (the one this was re-run from, its re-runs). */
  bindOpen(handler) {
    this.refs.lineage.addEventListener('click', (event) => {
      const link = event.target.closest('[data-open]');
      if (link) handler(link.dataset.open);
    });
  }
}

/** The schedule that made the task, linking to the schedules page; '—' for a task submitted by hand. */
function setSchedule(el, id) {
  if (el.dataset.schedule === (id ?? '')) return;
  el.dataset.schedule = id ?? '';
  const href = `/schedules.html?${new URLSearchParams({ schedule: id ?? '' })}`;
  el.replaceChildren(id ? h('a', { class: 'mono', href, title: 'Open the schedules page' }, id) : '—');
}

const openLink = (id) => h('button', { type: 'button', class: 'task-link', 'data-open': id, title: id }, id);

function rerunItem(task) {
  return h('li', { 'data-rerun': task.id }, badge(task.status), openLink(task.id),
    h('time', { datetime: task.created_at, title: task.created_at }, formatTimestamp(task.created_at)));
}

function section(title, body) {
  return h('section', { class: 'detail-section' }, h('h3', {}, title), body);
}

function timelineItem(entry, previous) {
  const since = previous ? `+${formatDuration(Date.parse(entry.at) - Date.parse(previous.at))}` : '';
  const when = h('time', { datetime: entry.at, title: entry.at }, formatTimestamp(entry.at));
  return h('li', {},
    badge(entry.status), h('span', { class: 'when' }, when, since && h('span', { class: 'since' }, ` ${since}`)),
    entry.worker && h('span', { class: 'worker' }, entry.worker),
    entry.message && h('span', { class: 'message' }, entry.message));
}
