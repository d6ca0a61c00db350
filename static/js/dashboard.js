// The controller: applies socket messages and REST answers to the store, and the store to the views;
// keeps the filters in the URL.

import { h } from './dom.js';
import { listQuery, readFilters, writeFilters } from './url.js';

const STATS_EVERY = 2000; // ms: counters are resynced from /api/stats at most this often after status changes
const PAINT_EVERY = 100; // ms: live changes are drawn at most this often

export class Dashboard {
  constructor({ api, store, list, counters, detail, logs, filterBar, indicator, renderConnection, bulk, queue }) {
    Object.assign(this, { api, store, list, counters, detail, logs, filterBar, indicator, renderConnection, bulk, queue });
    this.form = null; // the submit form, once the task types have loaded
    this.loadToken = 0;
    this.loaded = false;
    this.pending = { ids: new Set(), list: false, counters: false }; // socket changes not drawn yet
    this.painting = false;
    this.paintedAt = -Infinity;
  }

  // --- the live connection -----------------------------------------------------------

  onState(state) {
    this.renderConnection(this.indicator, state);
  }

  /**
   * A fresh socket has no replay: (re)load the list, which is how it first loads (or, with no socket
   * at all, through the first poll). A resumed one replays the tasks that changed, but not the tasks
   * removed meanwhile (bulk delete, retention): reload the page's list too.
   */
  onHello() {
    this.load().catch(() => {}); // a failure shows; the socket stays
    this.logs.subscribe(); // a new socket follows no log until asked
    this.queue?.refresh().catch(() => {}); // a pause or resume may have come while the socket was down
  }

  onMessage(message) {
    if (message.type === 'reset') this.load().catch(() => {});
    if (message.type === 'queue') this.queue?.show(message);
    if (message.type === 'logs') this.logs.receive(message);
    if (message.type === 'deleted') this.onDeleted(message);
    if (message.type !== 'task') return;
    const outcome = this.store.applyEvent(message.change, message.task);
    if (!outcome.applied) return;
    // A closed panel's id is null, like the source of a task that is no re-run.
    if (message.change === 'created' && this.detail.id && message.task.source_task_id === this.detail.id) {
      this.detail.addRerun(message.task);
    }
    const { pending } = this;
    pending.ids.add(message.task.id);
    pending.list ||= outcome.listChanged;
    pending.counters ||= outcome.statusChanged;
    if (outcome.statusChanged) this.scheduleStats();
    if (outcome.listChanged && this.store.refillable) this.scheduleRefill();
    this.schedulePaint();
  }

  /** A page short of rows (tasks left it) is filled up by a reload soon after (its answer has the counts too). */
  scheduleRefill() {
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => this.load().catch(() => {}), STATS_EVERY);
  }

  /** Deleted tasks leave the page (refilled by a reload soon after), the selection and the panel. */
  onDeleted({ task_ids: ids, seq }) {
    this.bulk?.forget(ids);
    if (ids.includes(this.detail.id)) {
      this.hideTask();
      this.recordTask('');
    }
    if (!this.store.remove(ids, seq)) return this.scheduleStats();
    this.pending.list = true;
    this.schedulePaint();
    this.scheduleRefill();
  }

  /**
   * Changes are drawn in the next frame, but no sooner than PAINT_EVERY after the last drawing: a
   * lone change shows at once, a stream of them (100/s) costs ten redraws a second, not sixty.
   */
  schedulePaint() {
    if (this.painting) return;
    this.painting = true;
    const wait = Math.max(0, this.paintedAt + PAINT_EVERY - performance.now());
    setTimeout(() => requestAnimationFrame(() => this.paint()), wait);
  }

  /** The changes since the last drawing, drawn once: the latest state of each row, the list and counters once. */
  paint() {
    const { ids, list, counters } = this.pending;
    this.painting = false;
    this.paintedAt = performance.now();
    this.pending = { ids: new Set(), list: false, counters: false };
    const { store } = this;
    if (list) this.renderList();
    else for (const id of ids) if (store.tasks.has(id)) this.list.update(store.tasks.get(id));
    // With what the store keeps, such as the queue position.
    if (ids.has(this.detail.id) && store.tasks.has(this.detail.id)) this.detail.update(store.tasks.get(this.detail.id));
    if (counters) this.counters.render(store.counts, store.filters.status, store.total);
  }

  /** Only while the socket is down: the current page, the counters and the open task with its log, over REST. */
  poll() {
    return Promise.all([this.load(), this.refreshStats(), this.refreshTask(), this.logs.poll()]);
  }

  // --- REST --------------------------------------------------------------------------

  async load() {
    const token = ++this.loadToken;
    const { store } = this;
    store.beginLoad();
    try {
      const answer = await this.api.listTasks(listQuery(store.filters, store.limit));
      if (token !== this.loadToken) return; // a newer load (other filters) superseded this one
      store.setPage(answer);
      this.loaded = true;
      this.filterBar.showError(null);
      this.renderList();
      this.counters.render(store.counts, store.filters.status, store.total);
    } catch (error) {
      // An unreachable server is the connection indicator's to show; answers are shown here, with
      // no rows under them (the rows of the previous filters do not match these).
      if (token === this.loadToken && error.status !== 0) {
        this.filterBar.showError(error);
        store.setPage({ tasks: [], total: 0, counts: store.counts, seq: store.countsSeq });
        this.renderList();
      }
      throw error;
    }
  }

  async refreshStats() {
    const stats = await this.api.stats();
    if (this.store.setCounts(stats.counts, stats.seq)) this.counters.render(this.store.counts, this.store.filters.status, this.store.total);
  }

  scheduleStats() {
    if (this.statsTimer) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = null;
      this.refreshStats().catch(() => {}); // the next status change or poll tries again
    }, STATS_EVERY);
  }

  renderList() {
    const { store } = this;
    this.list.render(store.pageTasks(), { total: store.total, offset: store.offset, limit: store.limit, unseen: store.unseen });
    this.bulk?.pageShown(store.filters, store.total);
    this.counters.render(store.counts, store.filters.status, store.total); // a view's count is its total
  }

  tick() {
    if (this.store.expire()) { // a scheduled task whose start came leaves the Scheduled view
      this.renderList();
      if (this.store.refillable) this.scheduleRefill();
    }
    this.list.tick(this.store.pageTasks());
    this.detail.tick();
  }

  // --- filters, paging and the URL ---------------------------------------------------

  /** Changes filters (page 1 unless given), records them in the URL and reloads the list. */
  setFilters(changes, { replace = false } = {}) {
    const filters = { ...this.store.filters, page: 1, ...changes };
    history[replace ? 'replaceState' : 'pushState'](null, '', writeFilters(filters) || location.pathname);
    this.store.filters = filters;
    this.filterBar.show(filters);
    this.load().catch(() => {});
  }

  page(step) {
    this.setFilters({ page: step === 0 ? 1 : Math.max(1, this.store.filters.page + step) });
  }

  /** Back/forward, and the first load: the URL is the source of the filters. */
  fromUrl() {
    const filters = readFilters(location.search);
    this.store.filters = filters;
    this.filterBar.show(filters);
    if (filters.task) this.openTask(filters.task, { record: false });
    else this.hideTask();
    if (this.loaded) this.load().catch(() => {});
  }

  // --- the detail panel --------------------------------------------------------------

  async openTask(id, { record = true } = {}) {
    this.detail.open(id, this.store.tasks.get(id));
    if (this.logs.id !== id) this.logs.follow(id);
    if (record) this.recordTask(id);
    try {
      await Promise.all([this.refreshTask(), this.loadReruns(id)]);
    } catch (error) {
      this.detail.showOutcome(`Could not load this task: ${error.detail}`, false);
    }
  }

  /** The tasks re-run from the open one, newest first (one page of them is plenty). */
  async loadReruns(id) {
    const answer = await this.api.listTasks(`?${new URLSearchParams({ source_task_id: id, limit: '20' })}`);
    if (this.detail.id === id) this.detail.showReruns(answer.tasks, answer.total);
  }

  /** The open task over REST: when it opens, and (the page may not hold it) in each poll. */
  async refreshTask() {
    const { id } = this.detail;
    if (!id) return;
    const task = await this.api.getTask(id);
    this.onRead(task); // the guard keeps a newer version the socket may have brought
    this.detail.update(this.store.tasks.get(id) ?? task);
  }

  closeTask() {
    const row = this.detail.id && this.list.rows.get(this.detail.id);
    this.hideTask();
    this.recordTask('');
    row?.open.focus(); // back where the user came from
  }

  hideTask() {
    this.detail.close();
    this.logs.unfollow();
  }

  /** The open task is in the URL too (replaced, not pushed: opening tasks is not navigation). */
  recordTask(id) {
    this.store.filters = { ...this.store.filters, task: id };
    history.replaceState(null, '', writeFilters(this.store.filters) || location.pathname);
  }

  async act(action, id) {
    if (action === 'edit') return this.editRerun(id);
    if (action === 'duplicate') return this.duplicate(id);
    const verb = { cancel: 'Cancel', retry: 'Retry', runNow: 'Run now' }[action];
    this.detail.setBusy(true);
    try {
      const task = await this.api[action](id);
      this.onRead(task);
      this.detail.update(this.store.tasks.get(id) ?? task);
      this.detail.showOutcome(`${verb}: the server answered ${describe(task)}.`, true);
    } catch (error) {
      this.detail.showOutcome(`${verb} refused${error.status ? ` (${error.status})` : ''}: ${error.detail}`, false);
    } finally {
      this.detail.setBusy(false);
    }
  }

  /** A task read over REST: its row, and the list when it now enters or leaves the filters. */
  onRead(task) {
    if (this.store.applyRead(task)) {
      this.renderList();
      if (this.store.refillable) this.scheduleRefill();
    } else {
      this.list.update(this.store.tasks.get(task.id) ?? task);
    }
  }

  /** "Run again with changes": the submit form, filled from the task, re-runs it on submit. */
  editRerun(id) {
    const task = this.detail.task;
    if (!this.form || !task || task.id !== id || task.truncated) { // never a form filled with cut-short values
      this.detail.showOutcome('The form is still loading; try again in a moment.', false);
      return;
    }
    // the panel (modal, over a backdrop) makes way for the form; the re-run opens once submitted
    this.hideTask();
    this.recordTask('');
    this.form.editRerun(task);
  }

  /** "Duplicate": the same task again, linked to this one; the new one opens. */
  async duplicate(id) {
    this.detail.setBusy(true);
    try {
      const task = await this.api.rerun(id, {});
      this.store.put(task);
      await this.openTask(task.id);
    } catch (error) {
      this.detail.showOutcome(`Duplicate refused${error.status ? ` (${error.status})` : ''}: ${error.detail}`, false);
    } finally {
      this.detail.setBusy(false);
    }
  }

  // --- the submit form ---------------------------------------------------------------

  /** A new task; or, while the form is filled from a task, a re-run of it (which then opens). */
  async submit(form, taskType, parameters, options) {
    const source = form.rerunOf;
    try {
      const task = source
        ? await this.api.rerun(source, { parameters, ...options })
        : await this.api.submit(taskType, parameters, options);
      const link = h('button', { type: 'button', class: 'task-link', 'data-open': task.id }, task.id);
      if (!source) return form.showResult(['Submitted ', link]);
      form.newTask();
      form.showResult(['Re-ran as ', link]);
      this.store.put(task);
      await this.openTask(task.id);
    } catch (error) {
      form.showError(error.field || 'parameters', error.detail);
    }
  }
}

function describe(task) {
  if (task.status === 'RUNNING' && task.cancel_requested) return 'still RUNNING, cancel requested: the worker stops it at its next step';
  return task.status;
}
