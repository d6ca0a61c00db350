// The readable result of `text_processing` (app/tasks/builtin/text_processing.py): its counts as a
// table, the top words with their counts, the normalised text folded.

import { h } from '../dom.js';
import { formatNumber, formatSeconds, isObject } from './figures.js';
import { bar, heading, longText, note, pairs, table } from './parts.js';

const NORMALIZED_SHOWN = 10_000;

/** @returns {Node|null} null when the result is not a text analysis */
export function textView(result) {
  if (!Number.isFinite(result.word_count) || !Array.isArray(result.top_words)) return null;
  const top = result.top_words.filter(isObject);
  const most = Math.max(1, ...top.map((w) => Number(w.count) || 0));
  return h('div', { class: 'rv-textstats' },
    pairs([
      ['Words', result.word_count],
      ['Distinct words', result.unique_words],
      ['Sentences', result.sentence_count],
      ['Paragraphs', result.paragraph_count],
      ['Characters', result.char_count],
      ['Characters without spaces', result.char_count_no_spaces],
      ['Reading time', formatSeconds(result.reading_time_seconds)],
    ], 'rv-counts'),
    heading('Top words'),
    top.length ? table(['#', 'Word', 'Count', ''], top.map((w, i) => [
      i + 1, h('span', { class: 'rv-value' }, String(w.word)), w.count, bar(w.count / most, `${formatNumber(w.count)} times`)]),
    { className: 'rv-top' }) : note('No words but stop words.'),
    typeof result.normalized_text === 'string' && h('details', { class: 'rv-fold' },
      h('summary', {}, 'Normalised text'),
      longText(result.normalized_text, NORMALIZED_SHOWN, 'rv-text rv-normalized'),
      result.normalized_truncated && note('The result keeps the first 10,000 characters of it.')));
}
