// The token's keeping and the one-question-at-a-time gate (static/js/auth.js), with a fake storage.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TokenGate, TokenKeeper, authHeaders, isAuthClose } from '../../../static/js/auth.js';

class FakeStorage {
  constructor(items = {}) { this.items = new Map(Object.entries(items)); }

  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }

  setItem(key, value) { this.items.set(key, String(value)); }

  removeItem(key) { this.items.delete(key); }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function gateWith(token = null) {
  const storage = new FakeStorage(token ? { 'taskqueue.token': token } : {});
  const keeper = new TokenKeeper(storage);
  const asked = [];
  const gate = new TokenGate(keeper, (reason) => asked.push(reason));
  return { storage, keeper, asked, gate };
}

test('keeper: the token lives in the session storage, and forgetting removes it', () => {
  const storage = new FakeStorage({ 'taskqueue.token': 'kept' });
  const keeper = new TokenKeeper(storage);
  assert.equal(keeper.token, 'kept', 'a reload finds it again');
  const changes = [];
  keeper.onChange((token) => changes.push(token));
  keeper.set('other');
  assert.equal(storage.getItem('taskqueue.token'), 'other');
  keeper.forget();
  assert.equal(keeper.token, null);
  assert.equal(storage.getItem('taskqueue.token'), null);
  assert.deepEqual(changes, ['other', null]);
});

test('keeper: a storage that throws (blocked by the browser) leaves the token in memory', () => {
  const blocked = { getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('x'); }, removeItem() {} };
  const keeper = new TokenKeeper(blocked);
  assert.equal(keeper.token, null);
  keeper.set('mem');
  assert.equal(keeper.token, 'mem');
  assert.equal(new TokenKeeper(null).token, null);
});

test('gate: concurrent 401s ask once, and all go again with the answer', async () => {
  const { gate, keeper, asked, storage } = gateWith();
  let retried = 0;
  const waits = [gate.refused(null), gate.refused(null), gate.refused(null)].map((p) => p.then(() => { retried += 1; }));
  assert.deepEqual(asked, ['required']);
  assert.equal(gate.asking, true);
  await settle();
  assert.equal(retried, 0, 'nothing retries before the answer');
  gate.provide('  tok  ');
  await Promise.all(waits);
  assert.equal(retried, 3);
  assert.equal(keeper.token, 'tok');
  assert.equal(storage.getItem('taskqueue.token'), 'tok');
  assert.equal(gate.asking, false);
});

test('gate: a refused token is forgotten and the question says so', async () => {
  const { gate, keeper, asked, storage } = gateWith('stale');
  const wait = gate.refused('stale');
  assert.deepEqual(asked, ['refused']);
  assert.equal(keeper.token, null);
  assert.equal(storage.getItem('taskqueue.token'), null, 'a reload would not send it again');
  gate.provide('fresh');
  await wait;
  assert.equal(keeper.token, 'fresh');
});

test('gate: a request refused with an older token goes again at once with the newer one', async () => {
  const { gate, asked } = gateWith('newer');
  await gate.refused('older');
  await gate.refused(null);
  assert.deepEqual(asked, []);
});

test('socket closes: only 1008 naming authentication asks for a token', () => {
  assert.equal(isAuthClose(1008, 'authentication required: send {"type": "auth", "token": ...} first'), true);
  assert.equal(isAuthClose(1008, "since must be a non-negative integer, got 'x'"), false);
  assert.equal(isAuthClose(1008, undefined), false);
  assert.equal(isAuthClose(1012, 'authentication'), false);
});

test('headers: a bearer token only when there is one', () => {
  assert.deepEqual(authHeaders('abc'), { Authorization: 'Bearer abc' });
  assert.deepEqual(authHeaders(null), {});
});
