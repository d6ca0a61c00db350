// The readable result of `batch_processing` (app/tasks/builtin/batch_processing.py): the counts, then
// each listed item's outcome — the failed ones first and marked — beside the item it was given.

import { h } from '../dom.js';
import { cut, failedFirst, formatNumber, humanize, isObject } from './figures.js';
import { note, table, tiles } from './parts.js';

const TEXT_SHOWN = 80;

/** @returns {Node|null} null when the result is not a batch's */
export function batchView(result, { task }) {
  if (!Number.isFinite(result.total) || !Array.isArray(result.items)) return null;
  const inputs = Array.isArray(task.parameters?.data) ? task.parameters.data : [];
  const items = failedFirst(result.items.filter(isObject));
  return h('div', { class: 'rv-batch' },
    tiles([
      ['Items', result.total],
      ['Succeeded', result.succeeded, result.succeeded ? 'good' : null],
      ['Failed', result.failed, result.failed ? 'bad' : null],
    ]),
    items.length > 0 && table(['#', 'Outcome', 'Item', 'Output'], items.map((item) => [
      item.index,
      h('span', { class: 'rv-outcome' }, item.ok ? '✓ ok' : '✕ failed'),
      short(inputs[item.index]),
      item.ok ? output(item.output) : h('span', { class: 'rv-error' }, String(item.error ?? 'failed')),
    ]), { className: 'rv-items-table', rowAttrs: (i) => ({ 'data-ok': String(Boolean(items[i].ok)), 'data-index': items[i].index }) }),
    result.items_truncated
      && note(`The result lists the first ${formatNumber(result.items.length)} of ${formatNumber(result.total)} items.`));
}

/** A scalar cut short; null and missing as a dash. */
function short(value) {
  if (value === null || value === undefined) return h('span', { class: 'rv-missing' }, '—');
  if (typeof value === 'number') return formatNumber(value);
  const { shown, more } = cut(typeof value === 'string' ? value : JSON.stringify(value), TEXT_SHOWN);
  const title = more ? `${formatNumber(more)} more characters in Raw JSON` : null;
  return h('span', { class: 'rv-value', title }, more ? `${shown}…` : shown);
}

/** An item's output on one line: "Length 5 · Upper ALPHA · Sha256 8ed3…". */
function output(value) {
  if (!isObject(value)) return short(value);
  return h('span', { class: 'rv-output' }, Object.entries(value).slice(0, 8).map(([key, v], i) =>
    [i ? ' · ' : '', h('span', { class: 'rv-key' }, humanize(key)), ' ', short(v)]));
}
