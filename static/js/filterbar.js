// The filter bar above the list: status, task type, id search; and where list errors are shown.

import { h, setText } from './dom.js';
import { STATUSES } from './store.js';

const SEARCH_DELAY = 250; // ms of no typing before the search runs

export class FilterBar {
  constructor(form) {
    this.form = form;
    this.status = form.elements.status;
    this.type = form.elements.task_type;
    this.q = form.elements.q;
    this.searchError = form.querySelector('[data-error-for="q"]');
    this.listError = document.getElementById('list-error');
    this.status.append(...STATUSES.map((s) => h('option', { value: s }, s[0] + s.slice(1).toLowerCase())));
  }

  /** Task types arrive after the page: keep whatever type the URL already selected. */
  setTypes(names) {
    const selected = this.type.value;
    this.type.replaceChildren(h('option', { value: '' }, 'All types'), ...names.map((n) => h('option', { value: n }, n)));
    this.selectType(selected);
  }

  selectType(name) {
    if (name && ![...this.type.options].some((o) => o.value === name)) this.type.append(h('option', { value: name }, name));
    this.type.value = name;
  }

  show(filters) {
    this.status.value = filters.status;
    this.selectType(filters.task_type);
    if (document.activeElement !== this.q) this.q.value = filters.q;
  }

  /** An answer naming the search box goes next to it; any other failure above the list. */
  showError(error) {
    const onSearch = error?.field === 'q';
    setText(this.searchError, onSearch ? error.detail : '');
    setText(this.listError, error && !onSearch ? `Could not load tasks: ${error.detail}` : '');
    this.listError.hidden = !error || onSearch;
  }

  /** `handler(changes, typing)`: typing in the search box replaces the URL instead of adding history. */
  bindChange(handler) {
    this.status.addEventListener('change', () => handler({ status: this.status.value }, false));
    this.type.addEventListener('change', () => handler({ task_type: this.type.value }, false));
    let timer;
    this.q.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => handler({ q: this.q.value.trim() }, true), SEARCH_DELAY);
    });
    this.form.addEventListener('submit', (event) => event.preventDefault());
  }
}
