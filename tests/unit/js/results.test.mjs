// The readable result views' pure helpers (static/js/results/figures.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  cut, failedFirst, formatNumber, formatSeconds, formatShare, humanize, percentAlong, sentencePositions,
} from '../../../static/js/results/figures.js';

test('numbers read at every scale, integers in full', () => {
  assert.equal(formatNumber(1234567), '1,234,567');
  assert.equal(formatNumber(250.5), '250.5');
  assert.equal(formatNumber(144.4818327679989), '144.482');
  assert.equal(formatNumber(25.950000000000003), '25.95');
  assert.equal(formatNumber(1234.56), '1,234.6');
  assert.equal(formatNumber(0.35355339), '0.3536');
  assert.equal(formatNumber(0.000123456), '0.0001235');
  assert.equal(formatNumber(-4), '-4');
  assert.equal(formatNumber(0), '0');
  assert.equal(formatNumber(1.5e300), '1.5e+300');
  assert.equal(formatNumber(2.5e-9), '2.5e-9');
  assert.equal(formatNumber('7'), '7');
});

test('shares, seconds and keys', () => {
  assert.equal(formatShare(0.4121), '41.2 %');
  assert.equal(formatShare(undefined), '—');
  assert.equal(formatSeconds(16.8), '16.8 s');
  assert.equal(formatSeconds(125), '2 min 05 s');
  assert.equal(humanize('reading_time_seconds'), 'Reading time seconds');
  assert.equal(humanize('<b>x</b>'), '<b>x</b>');
  assert.equal(humanize(''), '');
});

test('text is cut at the bound, never inside a surrogate pair', () => {
  assert.deepEqual(cut('short', 10), { shown: 'short', more: 0 });
  assert.deepEqual(cut('abcdef', 4), { shown: 'abcd', more: 2 });
  assert.deepEqual(cut('ab😀cd', 3), { shown: 'ab', more: 4 });
});

test("a summary's sentences are found in document order, a repeated sentence at its next place", () => {
  const document = 'One. Two is here. One. Three.';
  assert.deepEqual(sentencePositions(document, ['Two is here.', 'One.']), [{ start: 5, end: 17 }, { start: 18, end: 22 }]);
  assert.deepEqual(sentencePositions(document, ['Missing.', 'Three.']), [null, { start: 23, end: 29 }]);
  assert.deepEqual(sentencePositions(undefined, ['One.']), [null]);
});

test("a batch's failed items come first, each group in item order", () => {
  const items = [{ index: 0, ok: true }, { index: 1, ok: false }, { index: 2, ok: true }, { index: 3, ok: false }];
  assert.deepEqual(failedFirst(items).map((item) => item.index), [1, 3, 0, 2]);
});

test('positions along a span are clamped to it', () => {
  assert.equal(percentAlong(2, 1, 5), 25);
  assert.equal(percentAlong(9, 1, 5), 100);
  assert.equal(percentAlong(3, 3, 3), 0);
});
