// The pieces every readable view is built of: tables, figures, bars, notes, cut text and the
// "Raw JSON" fold. Data only ever goes in as text (h() never parses HTML); bar lengths go through
// CSSOM custom properties, which the CSP allows where a style attribute would be refused.

import { h, setText } from '../dom.js';
import { formatJson } from '../format.js';
import { cut, formatNumber } from './figures.js';

/** A number with its exact value on hover. */
export function num(value) {
  if (typeof value !== 'number') return h('span', { class: 'rv-missing' }, value === null || value === undefined ? '—' : String(value));
  return h('span', { class: 'rv-num', title: String(value) }, formatNumber(value));
}

/**
 * A table; `headers` are column titles, each row an array of cells (nodes or text).
 * @param {string[]} headers
 * @param {Array<Array<Node|string|number|null>>} rows
 * @param {{className?: string, rowAttrs?: (index: number) => Record<string, unknown>, caption?: string}} [options]
 */
export function table(headers, rows, { className = '', rowAttrs = () => ({}), caption = null } = {}) {
  return h('div', { class: 'rv-scroll' }, h('table', { class: `rv-table ${className}`.trim() },
    caption && h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, rows.map((cells, i) => h('tr', rowAttrs(i), cells.map((c) => h('td', {}, cellOf(c))))))));
}

/** A table of names and values, one pair a row. */
export function pairs(entries, className = '') {
  return h('table', { class: `rv-table rv-pairs ${className}`.trim() },
    h('tbody', {}, entries.filter(Boolean).map(([name, value, attrs = {}]) =>
      h('tr', attrs, h('th', { scope: 'row' }, name), h('td', {}, cellOf(value))))));
}

const cellOf = (cell) => (typeof cell === 'number' ? num(cell) : cell ?? '—');

/**
 * Big figures side by side: `[label, value, tone]` (tone: "good", "bad" or nothing).
 * @param {Array<[string, number|string, string?]>} figures
 */
export function tiles(figures) {
  return h('dl', { class: 'rv-tiles' }, figures.filter(Boolean).map(([label, value, tone]) =>
    h('div', { class: 'rv-tile', 'data-tone': tone || null, 'data-figure': label },
      h('dt', {}, label), h('dd', {}, typeof value === 'number' ? formatNumber(value) : value))));
}

/** A horizontal bar filled to `share` (0 to 1) of its length. */
export function bar(share, label) {
  const fill = h('span', { class: 'rv-bar-fill' });
  fill.style.setProperty('--share', String(Math.min(1, Math.max(0, Number(share) || 0))));
  return h('span', { class: 'rv-bar', role: 'img', 'aria-label': label }, fill);
}

export function note(...text) {
  return h('p', { class: 'rv-note' }, ...text);
}

export function heading(text, ...extra) {
  return h('h4', { class: 'rv-heading' }, text, ...extra);
}

/** Text cut at `limit` characters, saying how many more the raw JSON holds. */
export function longText(text, limit, className = 'rv-text') {
  const { shown, more } = cut(text, limit);
  return h('p', { class: className }, shown,
    more > 0 && h('span', { class: 'rv-more' }, ` … ${formatNumber(more)} more characters`));
}

/**
 * A value in its JSON form, one click away; `pre.json` is what scripts and tests read back.
 * @returns {{el: HTMLElement, pre: HTMLElement, show: (value: unknown) => void}}
 */
export function rawJson() {
  const pre = h('pre', { class: 'json' });
  const el = h('details', { class: 'raw-json' }, h('summary', {}, 'Raw JSON'), pre);
  return { el, pre, show: (value) => setText(pre, formatJson(value)) };
}
