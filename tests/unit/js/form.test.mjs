// The submit options read from the form (static/js/form.js): priority, and a start now, at a time or after a delay.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { labelOf, localToIso, readOptions } from '../../../static/js/form.js';

test('a datetime-local value becomes ISO 8601 with the offset of that local moment', () => {
  for (const value of ['2026-12-24T18:00', '2026-07-01T09:30:15', '2027-03-28T02:30']) {
    const iso = localToIso(value);
    assert.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    assert.equal(Date.parse(iso), new Date(value).getTime(), value);
  }
  assert.equal(localToIso(''), null);
  assert.equal(localToIso('tomorrow'), null);
});

test('options follow the start chosen; a missing time or delay names its field', () => {
  const base = { priority: 'high', start: 'now', at: '2026-12-24T18:00', delay: '30' };
  assert.deepEqual(readOptions(base), { priority: 'high' });
  assert.deepEqual(readOptions({ ...base, start: 'after' }), { priority: 'high', delay: 30 });
  assert.deepEqual(readOptions({ ...base, start: 'at' }), { priority: 'high', run_at: localToIso('2026-12-24T18:00') });
  assert.throws(() => readOptions({ ...base, start: 'at', at: '' }), { field: 'run_at' });
  assert.throws(() => readOptions({ ...base, start: 'after', delay: '' }), { field: 'delay' });
  assert.throws(() => readOptions({ ...base, start: 'after', delay: '-1' }), { field: 'delay' });
});

test('a field is labelled by its schema title, else by its name in words', () => {
  assert.equal(labelOf('processing_time', { title: 'Processing Time' }), 'Processing Time');
  assert.equal(labelOf('text', { title: 'Text to count' }), 'Text to count');
  assert.equal(labelOf('processing_time', {}), 'Processing time');
  assert.equal(labelOf('_x_', { title: '' }), 'X');
});
