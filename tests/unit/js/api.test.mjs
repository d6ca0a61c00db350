// The REST client's token handling (static/js/api.js): the bearer header on every call, a 401 waited
// out and sent again with the new token, a 403 reported; against a fake fetch.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError, createApi } from '../../../static/js/api.js';

/** A fetch answering 401 unless the request carries `Bearer <valid>`; 403 for `readOnly` on writes. */
function fakeServer({ valid, readOnly = null }) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    const header = init.headers.Authorization ?? null;
    calls.push({ url, method: init.method, header, body: init.body });
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    if (header === `Bearer ${readOnly}` && init.method !== 'GET') return json(403, { detail: 'this token is read-only' });
    if (header !== `Bearer ${valid}` && header !== `Bearer ${readOnly}`) return json(401, { detail: 'a valid API token is required' });
    return json(200, { ok: true, url });
  };
  return calls;
}

function authWith(answers) {
  const auth = { current: null, refusals: [] };
  auth.token = () => auth.current;
  auth.refused = async (sent) => {
    auth.refusals.push(sent);
    auth.current = answers.shift();
  };
  return auth;
}

test('a 401 waits for a token and the same request goes again, with the header', async () => {
  const calls = fakeServer({ valid: 'good' });
  const auth = authWith(['bad', 'good']);
  const api = createApi(auth);
  const answer = await api.submit('text_processing', { text: 'x' });
  assert.deepEqual(answer, { ok: true, url: '/api/tasks/submit' });
  assert.deepEqual(calls.map((c) => c.header), [null, 'Bearer bad', 'Bearer good']);
  assert.deepEqual(auth.refusals, [null, 'bad']);
  assert.ok(calls.every((c) => c.body === '{"task_type":"text_processing","parameters":{"text":"x"}}'));
  assert.ok(calls.every((c) => !c.url.includes('good') && !c.url.includes('bad')), 'never in the URL');
});

test('uploads and file downloads carry the token too', async () => {
  const calls = fakeServer({ valid: 'tok' });
  const auth = authWith([]);
  auth.current = 'tok';
  const api = createApi(auth);
  await api.upload({ name: 'a b.csv' }, 'text/csv');
  const blob = await api.artifact('abc', 'image_1.png');
  assert.ok(blob.size > 0);
  assert.deepEqual(calls.map((c) => [c.url, c.header]), [
    ['/api/uploads?filename=a%20b.csv', 'Bearer tok'], ['/api/tasks/abc/artifacts/image_1.png', 'Bearer tok'],
  ]);
});

test('a read-only token gets the 403 as an error to show, without asking again', async () => {
  fakeServer({ valid: 'rw', readOnly: 'ro' });
  const auth = authWith([]);
  auth.current = 'ro';
  const api = createApi(auth);
  assert.deepEqual(await api.getTask('t1'), { ok: true, url: '/api/tasks/t1' });
  await assert.rejects(api.cancel('t1'), (error) => error instanceof ApiError && error.status === 403
    && error.detail === 'this token is read-only');
  assert.deepEqual(auth.refusals, []);
});

test('without auth a 401 is an error like any other', async () => {
  fakeServer({ valid: 'x' });
  await assert.rejects(createApi().stats(), (error) => error.status === 401);
});
