// The task detail side panel: the error first, the user's fields, the result made readable (the raw
// JSON one click away), the files it produced, its log, its parameters by their titles, the
// timeline, its lineage (re-run of, re-runs), Cancel, Retry, Run now, Run again with changes and Duplicate
// with their outcome, its webhook deliveries, and the queue's own fields folded under "More".

import { artifactItems, artifactsOf } from './artifacts.js';
import { h, setAttr, setText } from './dom.js';
import { formatDuration, formatTimestamp } from './format.js';
import { LogView } from './logview.js';
import { resultView } from './results/index.js';
import { ParameterView } from './results/params.js';
import { rawJson } from './results/parts.js';
import { TaskFields } from './taskfields.js';
import { badge, progressBar, setBadge, setProgress, waitLine } from './views.js';
import { WebhookView } from './webhooks.js';

const CANCELLABLE = ['PENDING', 'RETRYING', 'RUNNING'];
const RETRYABLE = ['FAILED', 'CANCELLED'];
const FINAL = ['SUCCESS', 'FAILED', 'CANCELLED'];

export class DetailPanel {
  /**
   * @param {HTMLElement} el
   * @param {{withToken: () => boolean, fetch: (id: string, name: string) => Promise<Blob>}} [files] how
   *   a task's files load while a token is in use (fetched with it); without one, plain URLs do
   * @param {((id: string) => Promise<{deliveries: object[]}>)|null} [webhooks] a task's webhook deliveries
   * @param {{taskTypes?: () => Promise<{task_types: object[]}>, upload?: (id: string) => Promise<object>}} [schema]
   *   where parameter titles and upload file names come from (asked once, when first needed)
   */
  constructor(el, files = { withToken: () => false, fetch: null }, webhooks = null, schema = {}) {
    this.el = el;
    this.task = null;
    this.files = files;
    this.objectUrls = [];
    this.log = new LogView(); // filled by the LogFollower, not by update()
    this.webhooks = new WebhookView(webhooks);
    this.fields = new TaskFields();
    this.parameters = new ParameterView(schema.upload ?? null);
    this.loadTypes = schema.taskTypes ?? null;
    this.types = new Map();
    this.build();
  }

  build() {
    const r = (this.refs = {
      title: h('h2', { id: 'detail-title', class: 'mono' }), badge: badge('PENDING'),
      close: h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close details', title: 'Close (Esc)' }, '✕'),
      progress: progressBar(), wait: h('span', { class: 'wait' }), stage: h('p', { class: 'stage' }),
      cancel: h('button', { type: 'button', class: 'button danger', 'data-action': 'cancel' }, 'Cancel'),
      retry: h('button', { type: 'button', class: 'button', 'data-action': 'retry' }, 'Retry'),
      runNow: h('button', { type: 'button', class: 'button', 'data-action': 'runNow', title: 'Queue it at once instead of at its start time' }, 'Run now'),
      edit: h('button', { type: 'button', class: 'button', 'data-action': 'edit' }, 'Run again with changes'),
      duplicate: h('button', { type: 'button', class: 'button', 'data-action': 'duplicate' }, 'Duplicate'),
      source: h('p', { class: 'lineage-source' }), reruns: h('ul', { class: 'reruns' }),
      rerunsTitle: h('p', { class: 'lineage-title' }),
      outcome: h('p', { class: 'outcome', role: 'status', 'aria-live': 'polite' }),
      truncated: h('p', { class: 'rv-note truncated-note', hidden: true }),
      error: h('pre', { class: 'json error-text' }), traceback: h('pre', { class: 'traceback' }),
      result: h('div', { class: 'result-body' }), resultRaw: rawJson(),
      parameters: h('div', { class: 'parameters-body' }), parametersRaw: rawJson(),
      timeline: h('ol', { class: 'timeline' }), files: h('ul', { class: 'files' }),
    });
    r.tracebackBox = h('details', { class: 'traceback-box' }, h('summary', {}, 'Traceback'), r.traceback);
    // Of the error (always whole), the first line stays in sight: the box keeps above the fold.
    r.errorSection = section('Error', [r.error, r.tracebackBox], 'error');
    r.filesSection = section('Files', r.files, 'files');
    r.parametersSection = section('Parameters', [r.parameters, r.parametersRaw.el], 'parameters');
    r.lineage = section('Lineage', [r.source, r.rerunsTitle, r.reruns]);
    this.el.replaceChildren(
      h('header', { class: 'detail-head' }, h('div', {}, h('p', { class: 'eyebrow' }, 'Task'), r.title), r.close),
      h('div', { class: 'detail-body' },
        h('div', { class: 'detail-status' }, r.badge, r.progress, r.wait), r.stage,
        h('div', { class: 'actions' }, r.cancel, r.retry, r.runNow, r.edit, r.duplicate), r.outcome, r.truncated,
        r.errorSection, this.fields.main, r.lineage,
        section('Result', [r.result, r.resultRaw.el], 'result'), r.filesSection, section('Log', this.log.el),
        r.parametersSection, this.webhooks.el,
        section('History', r.timeline), this.fields.more));
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
    // each task's raw JSON starts folded, whatever the previous one showed
    this.refs.resultRaw.el.open = this.refs.parametersRaw.el.open = false;
    this.fetchTypes();
    if (task) this.update(task);
    this.refs.close.focus();
  }

  /** The task types' schemas, for titles and upload parameters: asked once (again after a failure). */
  fetchTypes() {
    if (!this.loadTypes || this.types.size || this.typesLoading) return;
    this.typesLoading = this.loadTypes().then((answer) => {
      this.types = new Map(answer.task_types.map((type) => [type.name, type]));
    }, () => {}).then(() => {
      this.typesLoading = null;
      if (!this.task) return;
      // only what the schemas label: the result (and its images, fetched already) stays as it is
      this.fields.update(this.task, this.types.get(this.task.task_type));
      if (this.shown) this.showParameters(this.task);
    });
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
    this.fields.update(task, this.types.get(task.task_type));
    r.cancel.disabled = !CANCELLABLE.includes(task.status) || this.busy;
    r.retry.disabled = !RETRYABLE.includes(task.status) || this.busy;
    // only while the task waits for a start still ahead: shown then, gone once it is queued
    r.runNow.hidden = !waitsForLater(task, Date.now());
    r.runNow.disabled = Boolean(this.busy);
    r.edit.disabled = r.duplicate.disabled = Boolean(this.busy);
    const key = `${task.status}/${task.timeline.length}/${task.truncated ?? ''}`;
    if (this.shown === key) return;
    this.shown = key;
    // a large task comes cut short in lists and live frames (core/wire.py brief): the whole one is asked for
    r.truncated.hidden = !task.truncated;
    setText(r.truncated, task.truncated ? `Truncated (${task.truncated.join(', ')}) — opening the whole task…` : '');
    if (task.truncated) this.onTruncated?.(task.id);
    this.webhooks.refresh(task.id); // a final state is what makes deliveries
    r.errorSection.hidden = !task.error_message;
    setText(r.error, task.error_message || '');
    r.tracebackBox.hidden = !task.error_traceback;
    setText(r.traceback, task.error_traceback || '');
    this.revokeFiles();
    const fetchFile = this.fileFetcher(task.id);
    const view = resultView(task, { fetchFile });
    const none = FINAL.includes(task.status) ? 'No result.' : 'No result yet.';
    r.result.replaceChildren(view ? view.node : h('p', { class: 'rv-note' }, none));
    r.resultRaw.el.hidden = !view;
    r.resultRaw.show(task.result_data);
    this.showFiles(task, artifactsOf(task).filter((file) => !view?.files.has(file.name)), fetchFile);
    this.showParameters(task);
    r.timeline.replaceChildren(...task.timeline.map((entry, i) => timelineItem(entry, task.timeline[i - 1])));
  }

  /** The parameters, `aria-busy` until their titles and upload names are known (tools and tests wait on it). */
  showParameters(task) {
    const r = this.refs;
    const { node, named } = this.parameters.render(task.parameters, this.types.get(task.task_type));
    r.parameters.replaceChildren(node);
    r.parametersRaw.show(task.parameters);
    const shown = (this.parametersShown = node);
    setAttr(r.parametersSection, 'aria-busy', 'true');
    named.then(() => {
      if (this.parametersShown === shown && !this.typesLoading) r.parametersSection.removeAttribute('aria-busy');
    });
  }

  /**
   * The files the result view did not show. The list is in the page only while it lists something:
   * `#detail .files` then always names the one list of the task's files, wherever it is shown.
   */
  showFiles(task, files, fetchFile) {
    const r = this.refs;
    r.filesSection.hidden = files.length === 0;
    r.files.replaceChildren(...artifactItems(task.id, files, fetchFile));
    if (files.length) r.filesSection.append(r.files);
    else r.files.remove();
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

  tick() {
    if (!this.task) return;
    const now = Date.now();
    this.fields.tick(this.task, now);
    setText(this.refs.wait, waitLine(this.task, now).join(' · '));
    this.refs.runNow.hidden = !waitsForLater(this.task, now);
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

  /** `handler(id)` when the open task shows cut short: it loads the whole one (GET /api/tasks/{id}). */
  bindTruncated(handler) {
    this.onTruncated = handler;
  }

  bindActions(handler) {
    for (const button of [this.refs.cancel, this.refs.retry, this.refs.runNow, this.refs.edit, this.refs.duplicate]) {
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

/** Scheduled (PENDING) or backing off before its next attempt (RETRYING), with the start still ahead. */
const waitsForLater = (task, nowMs) => ['PENDING', 'RETRYING'].includes(task.status) && Boolean(task.next_run_at)
  && Date.parse(task.next_run_at) > nowMs;

const openLink = (id) => h('button', { type: 'button', class: 'task-link', 'data-open': id, title: id }, id);

function rerunItem(task) {
  return h('li', { 'data-rerun': task.id }, badge(task.status), openLink(task.id),
    h('time', { datetime: task.created_at, title: task.created_at }, formatTimestamp(task.created_at)));
}

function section(title, body, name = null) {
  return h('section', { class: 'detail-section', 'data-section': name }, h('h3', {}, title), body);
}

function timelineItem(entry, previous) {
  const since = previous ? `+${formatDuration(Date.parse(entry.at) - Date.parse(previous.at))}` : '';
  const when = h('time', { datetime: entry.at, title: entry.at }, formatTimestamp(entry.at));
  return h('li', {},
    badge(entry.status), h('span', { class: 'when' }, when, since && h('span', { class: 'since' }, ` ${since}`)),
    entry.worker && h('span', { class: 'worker' }, entry.worker),
    entry.message && h('span', { class: 'message' }, entry.message));
}
