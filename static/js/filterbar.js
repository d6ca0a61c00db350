// The filter bar above the list: status, type, priority, id prefix, text search, creation days; and
// where list errors are shown.

import { h, setText } from './dom.js';
import { PRIORITIES, SCHEDULED, STATUSES } from './store.js';

const SEARCH_DELAY = 250; // ms of no typing before the search runs

export class FilterBar {
  constructor(form) {
    this.form = form;
    this.status = form.elements.status;
    this.type = form.elements.task_type;
    this.q = form.elements.q;
    this.text = form.elements.text;
    this.priority = form.elements.priority;
    this.days = [form.elements.from, form.elements.to];
    this.listError = document.getElementById('list-error');
    this.status.append(...STATUSES.map((s) => h('option', { value: s }, s[0] + s.slice(1).toLowerCase())),
      h('option', { value: SCHEDULED, title: 'Pending, with a start still ahead' }, 'Scheduled'));
    this.priority.append(...PRIORITIES.map((p) => h('option', { value: p }, p[0].toUpperCase() + p.slice(1))));
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
    this.priority.value = filters.priority || '';
    for (const input of [this.q, this.text]) if (document.activeElement !== input) input.value = filters[input.name] || '';
    for (const input of this.days) input.value = filters[input.name] || '';
  }

  /** An answer naming a field of the bar goes next to it; any other failure above the list. */
  showError(error) {
    const spots = this.form.querySelectorAll('[data-error-for]');
    const spot = [...spots].find((s) => s.dataset.errorFor === error?.field);
    for (const s of spots) setText(s, s === spot ? error.detail : '');
    setText(this.listError, error && !spot ? `Could not load tasks: ${error.detail}` : '');
    this.listError.hidden = !error || Boolean(spot);
  }

  /** `handler(changes, typing)`: typing in the search box replaces the URL instead of adding history. */
  bindChange(handler) {
    this.status.addEventListener('change', () => handler({ status: this.status.value }, false));
    this.type.addEventListener('change', () => handler({ task_type: this.type.value }, false));
    this.priority.addEventListener('change', () => handler({ priority: this.priority.value }, false));
    for (const input of this.days) input.addEventListener('change', () => handler({ [input.name]: input.value }, false));
    for (const input of [this.q, this.text]) {
      let timer;
      input.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => handler({ [input.name]: input.value.trim() }, true), SEARCH_DELAY);
      });
    }
    this.form.addEventListener('submit', (event) => event.preventDefault());
  }
}
