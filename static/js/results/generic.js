// A readable view of any JSON value (a user's own task type's result, a built-in result whose shape
// is not the usual one, a parameter without a control of its own): objects as name/value tables,
// lists of objects as tables, lists of scalars inline, nested values nested. Bounded every way —
// rows, columns, text, depth and cells in all — so a megabyte of result is drawn in milliseconds;
// what is left out says how much, and the raw JSON beside it holds everything.

import { h } from '../dom.js';
import { cut, formatNumber, humanize, isObject, plural } from './figures.js';
import { longText, num } from './parts.js';

export const LIMITS = { keys: 60, rows: 50, columns: 8, inline: 30, text: 400, inlineText: 80, depth: 4, cells: 1500 };

/** `value` readable, within LIMITS. */
export function genericView(value) {
  return h('div', { class: 'rv-generic' }, render(value, 0, { cells: LIMITS.cells }));
}

function render(value, depth, budget) {
  budget.cells -= 1;
  if (value === null || value === undefined) return h('span', { class: 'rv-missing' }, '—');
  if (typeof value === 'boolean') return h('span', { class: 'rv-bool' }, value ? 'yes' : 'no');
  if (typeof value === 'number') return num(value);
  if (typeof value === 'string') {
    return value.length > LIMITS.inlineText ? longText(value, LIMITS.text) : h('span', { class: 'rv-str' }, value);
  }
  if (depth >= LIMITS.depth || budget.cells <= 0) return folded(value);
  return Array.isArray(value) ? list(value, depth, budget) : object(value, depth, budget);
}

/** What was cut by depth or budget: only its size. */
function folded(value) {
  const size = Array.isArray(value) ? plural(value.length, 'item') : plural(Object.keys(value).length, 'key');
  return h('span', { class: 'rv-folded', title: 'Nested too deep to show here: see Raw JSON' },
    `${Array.isArray(value) ? '[…]' : '{…}'} ${size}`);
}

const more = (count, what) => count > 0
  && h('p', { class: 'rv-more' }, `… ${formatNumber(count)} more ${count === 1 ? what : `${what}s`} (see Raw JSON)`);

function object(value, depth, budget) {
  const keys = Object.keys(value);
  if (!keys.length) return h('span', { class: 'rv-missing' }, 'empty');
  const rows = [];
  for (const key of keys.slice(0, LIMITS.keys)) {
    if (budget.cells <= 0) break;
    rows.push(h('tr', {},
      h('th', { scope: 'row', title: key }, humanize(key)), h('td', {}, render(value[key], depth + 1, budget))));
  }
  return h('div', { class: 'rv-object' },
    h('table', { class: 'rv-table rv-pairs' }, h('tbody', {}, rows)), more(keys.length - rows.length, 'key'));
}

function list(value, depth, budget) {
  if (!value.length) return h('span', { class: 'rv-missing' }, 'none');
  if (value.every((item) => item === null || typeof item !== 'object')) return inline(value, budget);
  const shown = value.slice(0, LIMITS.rows);
  if (shown.every(isObject)) return records(value, shown, depth, budget);
  const items = [];
  for (const item of shown) {
    if (budget.cells <= 0) break;
    items.push(h('li', {}, render(item, depth + 1, budget)));
  }
  return h('div', { class: 'rv-list' }, h('ol', { class: 'rv-items' }, items), more(value.length - items.length, 'item'));
}

/** Scalars on one line, comma-separated. */
function inline(value, budget) {
  const shown = value.slice(0, LIMITS.inline);
  budget.cells -= shown.length;
  const parts = shown.map((item, i) => [i ? ', ' : '', scalar(item)]);
  const rest = value.length - shown.length;
  return h('span', { class: 'rv-inline' }, parts, rest > 0 && h('span', { class: 'rv-more' }, ` … ${formatNumber(rest)} more`));
}

function scalar(item) {
  if (typeof item === 'number') return num(item);
  if (typeof item === 'string') {
    const { shown, more: rest } = cut(item, LIMITS.inlineText);
    return h('span', { class: 'rv-str' }, rest ? `${shown}…` : shown);
  }
  return h('span', { class: 'rv-missing' }, item === null ? '—' : item ? 'yes' : 'no');
}

/** Objects as a table whose columns are their keys (the first ones met, up to LIMITS.columns). */
function records(value, shown, depth, budget) {
  const keys = [...new Set(shown.flatMap((item) => Object.keys(item)))];
  const columns = keys.slice(0, LIMITS.columns);
  const rows = [];
  for (const item of shown) {
    if (budget.cells <= 0) break;
    rows.push(h('tr', {}, columns.map((key) => h('td', {}, key in item ? render(item[key], depth + 1, budget) : ''))));
  }
  return h('div', { class: 'rv-records' },
    h('div', { class: 'rv-scroll' }, h('table', { class: 'rv-table' },
      h('thead', {}, h('tr', {}, columns.map((key) => h('th', { scope: 'col', title: key }, humanize(key))))),
      h('tbody', {}, rows))),
    keys.length > columns.length
      && h('p', { class: 'rv-more' }, `… ${plural(keys.length - columns.length, 'more column')} (see Raw JSON)`),
    more(value.length - rows.length, 'row'));
}
