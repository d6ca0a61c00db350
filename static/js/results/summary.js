// The readable result of `ai_summarization` (app/tasks/builtin/ai_summarization.py): the summary as
// text, how much of the document it keeps, and each kept sentence with where it sits in the document
// (its characters, found in the task's `document` parameter, and a strip of the whole document).

import { h } from '../dom.js';
import { formatNumber, formatShare, sentencePositions } from './figures.js';
import { heading, longText, pairs } from './parts.js';

const SUMMARY_SHOWN = 5000;
const SENTENCE_SHOWN = 600;

/** @returns {Node|null} null when the result is not a summary */
export function summaryView(result, { task }) {
  if (typeof result.summary !== 'string' || !Array.isArray(result.sentences)) return null;
  const document = task.parameters?.document;
  const length = typeof document === 'string' ? document.length : result.original_length;
  const positions = sentencePositions(document, result.sentences);
  return h('div', { class: 'rv-summary' },
    h('blockquote', { class: 'rv-quote' }, longText(result.summary, SUMMARY_SHOWN)),
    pairs([
      ['Sentences kept',
        `${formatNumber(result.sentence_count ?? result.sentences.length)} of ${formatNumber(result.original_sentence_count)}`],
      ['Length', `${formatNumber(result.summary_length)} of ${formatNumber(result.original_length)} characters `
        + `(${formatShare(result.compression_ratio)})`],
      result.method && ['Method', String(result.method)],
    ]),
    heading('Sentences and where they are'),
    h('ol', { class: 'rv-sentences' }, result.sentences.map((sentence, i) => item(sentence, positions[i], length))));
}

function item(sentence, position, length) {
  return h('li', { 'data-start': position ? position.start : null },
    longText(String(sentence), SENTENCE_SHOWN),
    h('p', { class: 'rv-where' }, position
      ? [where(position, length),
        `characters ${formatNumber(position.start + 1)}–${formatNumber(position.end)} of ${formatNumber(length)}`]
      : 'not found in the document'));
}

/** The document as a strip, the sentence's span marked on it. */
function where({ start, end }, length) {
  const mark = h('span', { class: 'rv-where-mark' });
  mark.style.setProperty('--from', String((start / Math.max(1, length)) * 100));
  mark.style.setProperty('--to', String((end / Math.max(1, length)) * 100));
  return h('span', { class: 'rv-where-strip', 'aria-hidden': 'true' }, mark);
}
