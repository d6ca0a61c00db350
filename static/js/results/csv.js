// The readable result of `data_processing` (app/tasks/builtin/csvstats.py): where the data came from,
// then per column its statistics as a table — numbers with a quantile strip, categories with their
// most frequent values — and how each figure is defined.

import { h } from '../dom.js';
import { formatBytes, formatDuration } from '../format.js';
import { formatNumber, isObject, percentAlong, plural } from './figures.js';
import { bar, heading, note, pairs, table } from './parts.js';

const MAX_COLUMNS = 40;
const QUANTILES = [['p5', 'p5'], ['p25', 'p25'], ['p50', 'Median'], ['p75', 'p75'], ['p95', 'p95']];

/** @returns {Node|null} null when the result is not a CSV analysis */
export function csvView(result) {
  if (!isObject(result.columns) || !Array.isArray(result.column_names)) return null;
  const names = result.column_names.filter((name) => isObject(result.columns[name]));
  const shown = names.slice(0, MAX_COLUMNS);
  return h('div', { class: 'rv-csv' },
    pairs([
      ['Source', source(result)],
      ['Rows', result.rows],
      result.blank_lines > 0 && ['Blank lines skipped', result.blank_lines],
      ['Columns', columnCount(result, names.length)],
      Number.isFinite(result.chunks) && ['Read', `${plural(result.chunks, 'chunk')} of up to ${formatNumber(result.chunk_size)} rows`],
      Number.isFinite(result.elapsed_seconds) && ['Analysed in', formatDuration(result.elapsed_seconds * 1000)],
    ]),
    shown.map((name) => column(name, result.columns[name])),
    names.length > shown.length && note(`… ${plural(names.length - shown.length, 'more column')} (see Raw JSON)`),
    isObject(result.definitions) && h('details', { class: 'rv-fold' }, h('summary', {}, 'How these figures are computed'),
      pairs(Object.entries(result.definitions).map(([term, text]) => [term, String(text)]))));
}

/** Columns beyond CSV_MAX_COLUMNS are only counted (`columns_not_analysed`). */
function columnCount(result, analysed) {
  if (!(result.columns_not_analysed > 0)) return analysed;
  return `${formatNumber(result.column_count)} (statistics of the first ${formatNumber(analysed)})`;
}

function source(result) {
  if (result.source === 'upload') {
    const size = Number.isFinite(result.bytes) ? ` (${formatBytes(result.bytes)})` : '';
    return h('span', {}, 'uploaded file ', h('span', { class: 'rv-file' }, String(result.file ?? '?')), size);
  }
  return result.seed === undefined ? String(result.source ?? '—') : `generated, seed ${result.seed}`;
}

function column(name, stats) {
  const numeric = stats.kind === 'numeric';
  return h('section', { class: 'rv-column', 'data-column': name, 'data-kind': stats.kind },
    heading(name, h('span', { class: 'rv-kind' }, String(stats.kind ?? ''))),
    numeric ? numericStats(stats) : categoricalStats(stats));
}

function numericStats(stats) {
  const q = isObject(stats.quantiles) ? stats.quantiles : {};
  return [
    table(['Count', 'Missing', 'Mean', 'Std', 'Min', 'Max'],
      [[stats.count, stats.missing, stats.mean, stats.std, stats.min, stats.max]], { className: 'rv-stats' }),
    Number.isFinite(stats.min) && Number.isFinite(stats.max) && strip(stats, q),
    table(QUANTILES.map(([, label]) => label), [QUANTILES.map(([key]) => q[key])], { className: 'rv-quantiles' }),
  ];
}

/**
 * Where the values lie between min and max: the p5–p95 whisker, the p25–p75 box, the median and
 * the mean, placed by CSS from custom properties.
 */
function strip(stats, q) {
  const at = (value) => percentAlong(value, stats.min, stats.max);
  const span = (className, from, to) => place(h('span', { class: className }), { '--from': at(from), '--to': at(to) });
  const label = `min ${formatNumber(stats.min)}, p25 ${formatNumber(q.p25)}, median ${formatNumber(q.p50)}, `
    + `p75 ${formatNumber(q.p75)}, max ${formatNumber(stats.max)}`;
  return h('div', { class: 'rv-strip-box' },
    h('div', { class: 'rv-strip', role: 'img', 'aria-label': label, title: label },
      Number.isFinite(q.p5) && Number.isFinite(q.p95) && span('rv-strip-whisker', q.p5, q.p95),
      Number.isFinite(q.p25) && Number.isFinite(q.p75) && span('rv-strip-iqr', q.p25, q.p75),
      Number.isFinite(q.p50) && span('rv-strip-median', q.p50, q.p50),
      Number.isFinite(stats.mean) && place(h('span', { class: 'rv-strip-mean', title: `mean ${formatNumber(stats.mean)}` }),
        { '--from': at(stats.mean), '--to': at(stats.mean) })),
    h('div', { class: 'rv-strip-scale' }, h('span', {}, formatNumber(stats.min)), h('span', {}, formatNumber(stats.max))));
}

function place(el, properties) {
  for (const [name, value] of Object.entries(properties)) el.style.setProperty(name, String(value));
  return el;
}

function categoricalStats(stats) {
  const top = Array.isArray(stats.top) ? stats.top.filter(isObject) : [];
  const total = Number(stats.count) || 0;
  return [
    table(['Count', 'Missing', 'Distinct'], [[stats.count, stats.missing, stats.distinct]], { className: 'rv-stats' }),
    top.length > 0 && table(['Most frequent', 'Count', 'Share'], top.map((item) => [
      h('span', { class: 'rv-value' }, String(item.value)), item.count,
      bar(total ? item.count / total : 0, `${formatNumber(item.count)} of ${formatNumber(total)}`)]), { className: 'rv-top' }),
  ];
}
