// Bulk actions on the list: the rows ticked, or every task matching the filter; a dry run first says
// how many the action would touch and asks, then the server applies it and its outcome is shown.

import { setAttr, setText } from './dom.js';
import { listQuery } from './url.js';

export const ACTIONS = {
  cancel: { verb: 'Cancel', done: 'cancelled', applies: 'PENDING, RETRYING or RUNNING' },
  retry: { verb: 'Retry', done: 'retried', applies: 'FAILED or CANCELLED' },
  delete: { verb: 'Delete', done: 'deleted', applies: 'SUCCESS, FAILED or CANCELLED' },
};

/** The list's filter as a bulk `filter`: the very names and values of the list's query, those set. */
export function filterOf(filters) {
  const query = new URLSearchParams(listQuery(filters, 1));
  for (const name of ['limit', 'offset', 'after']) query.delete(name);
  return Object.fromEntries(query);
}

/** @typedef {{ids: string[]} | {filter: Record<string, string>}} Scope */

/** @param {Scope} scope */
export function bulkBody(action, scope, dryRun) {
  return 'ids' in scope ? { action, ids: scope.ids, dry_run: dryRun } : { action, filter: scope.filter, dry_run: dryRun };
}

const count = (n) => n.toLocaleString('en');
const tasks = (n) => `task${n === 1 ? '' : 's'}`;

/** "selected tasks", "tasks matching the filter" or, with no filter, every task. */
function described(matched, scope) {
  if ('ids' in scope) return `${count(matched)} selected ${tasks(matched)}`;
  if (Object.keys(scope.filter).length) return `${count(matched)} ${tasks(matched)} matching the filter`;
  return `all ${count(matched)} ${tasks(matched)}`;
}

/**
 * The confirmation a dry run's answer asks for: `question` ("Retry 37 of 40 selected tasks?"), a
 * `note` on what is left alone, and whether there is anything to apply.
 * @param {{matched: number, eligible: number}} found
 */
export function confirmation(action, { matched, eligible }, scope) {
  const { verb, done, applies } = ACTIONS[action];
  if (eligible === 0) {
    const none = matched === 0 ? 'No tasks match.' : `None of the ${described(matched, scope)} can be ${done}.`;
    return { question: none, note: `${verb} applies to ${applies} tasks.`, apply: false };
  }
  const notes = [];
  if (eligible < matched) notes.push(`${count(matched - eligible)} not ${applies} will be left as they are.`);
  if (action === 'delete') notes.push('Their logs and files go too; this cannot be undone.');
  return { question: `${verb} ${count(eligible)} of ${described(matched, scope)}?`, note: notes.join(' '), apply: true };
}

/** "37 retried, 0 skipped" (skipped: changed meanwhile, so the action no longer applied). */
export function outcome(action, { applied, skipped }) {
  return `${count(applied)} ${ACTIONS[action].done}, ${count(skipped)} skipped`;
}

/** The ticked task ids, kept across pages; new filters start a new selection. */
export class Selection {
  constructor() {
    this.ids = new Set();
    this.key = null; // the filter the selection was made under
  }

  set(ids, selected) {
    for (const id of ids) {
      if (selected) this.ids.add(id);
      else this.ids.delete(id);
    }
  }

  /** True when `filters` differ from those the selection was made under (it is then emptied). */
  follow(filters) {
    const key = JSON.stringify(filterOf(filters));
    if (key === this.key) return false;
    this.key = key;
    this.ids.clear();
    return true;
  }
}

export class BulkBar {
  /**
   * @param {HTMLElement} el the bar: scope radios, action buttons, outcome line
   * @param {HTMLDialogElement} dialog the confirmation
   * @param {{api: {bulk: Function}, list: import('./views.js').TaskList, onApplied: () => void}} deps
   */
  constructor(el, dialog, { api, list, onApplied, opener }) {
    Object.assign(this, { el, dialog, api, list, onApplied, opener });
    this.selection = new Selection();
    this.filters = null;
    this.total = 0;
    this.busy = false;
    this.opened = false; // shown for the whole filter (or kept for an outcome) with nothing ticked
    this.scopes = [...el.querySelectorAll('input[name="bulk-scope"]')];
    this.buttons = [...el.querySelectorAll('[data-bulk]')];
    this.outcomeEl = el.querySelector('.bulk-outcome');
    list.selected = (id) => this.selection.ids.has(id);
    list.bindSelect((ids, selected) => {
      this.selection.set(ids, selected);
      if (selected) this.scopes.find((input) => input.value === 'selection').checked = true; // ticking says what is meant
      this.list.showSelected();
      this.render();
    });
    for (const input of this.scopes) input.addEventListener('change', () => this.render());
    for (const button of this.buttons) button.addEventListener('click', () => this.run(button.dataset.bulk));
    opener?.addEventListener('click', () => {
      this.opened = true;
      this.scopes.find((input) => input.value === 'filter').checked = true;
      this.render();
      this.buttons[0].focus();
    });
    el.querySelector('[data-bulk-close]')?.addEventListener('click', () => {
      this.opened = false;
      this.selection.set([...this.selection.ids], false);
      this.showOutcome('', true);
      this.list.showSelected();
      this.render();
      opener?.focus();
    });
  }

  /** The list was drawn for `filters`, with `total` tasks matching them. */
  pageShown(filters, total) {
    if (this.selection.follow(filters)) this.list.showSelected();
    this.filters = filters;
    this.total = total;
    this.render();
  }

  /** Deleted tasks cannot stay selected. */
  forget(ids) {
    this.selection.set(ids, false);
    this.list.showSelected();
    this.render();
  }

  get scopeName() {
    return this.scopes.find((input) => input.checked)?.value ?? 'selection';
  }

  /** @returns {Scope} */
  scope() {
    return this.scopeName === 'selection' ? { ids: [...this.selection.ids] } : { filter: filterOf(this.filters) };
  }

  render() {
    const selected = this.selection.ids.size;
    const filtered = this.filters && Object.keys(filterOf(this.filters)).length > 0;
    setText(this.el.querySelector('[data-scope-label="selection"]'), `Selected (${count(selected)})`);
    setText(this.el.querySelector('[data-scope-label="filter"]'),
      filtered ? `All ${count(this.total)} matching the filter` : `All ${count(this.total)} tasks`);
    setAttr(this.el, 'data-scope', this.scopeName);
    const empty = this.scopeName === 'selection' ? selected === 0 : this.total === 0;
    for (const button of this.buttons) button.disabled = this.busy || empty;
    // Out of the way until rows are ticked or it is opened for the whole filter.
    this.el.hidden = !(selected > 0 || this.opened || this.busy);
    if (this.opener) this.opener.hidden = !this.el.hidden;
  }

  /** Dry run, confirmation, then the action itself; the list reloads after it. */
  async run(action) {
    const scope = this.scope();
    this.setBusy(true);
    this.showOutcome('', true);
    try {
      const found = await this.api.bulk(bulkBody(action, scope, true));
      if (!(await this.confirm(confirmation(action, found, scope), action))) return;
      const answer = await this.api.bulk(bulkBody(action, scope, false));
      this.opened = true; // the outcome stays in sight until the bar is closed
      this.showOutcome(outcome(action, answer), true);
      if ('ids' in scope) this.selection.set(scope.ids, false);
      this.list.showSelected();
      this.onApplied();
    } catch (error) {
      this.showOutcome(`${ACTIONS[action].verb} refused${error.status ? ` (${error.status})` : ''}: ${error.detail}`, false);
    } finally {
      this.setBusy(false);
    }
  }

  /** Shows the dry run's question; resolves true only when the user confirms it. */
  confirm({ question, note, apply }, action) {
    const { dialog } = this;
    const confirm = dialog.querySelector('[data-confirm]');
    const keep = dialog.querySelector('[data-keep]');
    setText(dialog.querySelector('#bulk-question'), question);
    setText(dialog.querySelector('#bulk-note'), note);
    setText(confirm, ACTIONS[action].verb);
    setAttr(dialog, 'data-action', action);
    confirm.hidden = !apply;
    setText(keep, apply ? 'Keep them' : 'Close');
    dialog.returnValue = ''; // Escape leaves it as it was
    dialog.showModal();
    keep.focus(); // Enter on a destructive question changes nothing
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(apply && dialog.returnValue === 'apply'), { once: true });
    });
  }

  setBusy(busy) {
    this.busy = busy;
    setAttr(this.el, 'aria-busy', String(busy));
    this.render();
  }

  showOutcome(text, ok) {
    setText(this.outcomeEl, text);
    setAttr(this.outcomeEl, 'data-outcome', ok ? 'ok' : 'error');
  }
}
