// Reconnect backoff, the connection state machine and polling-while-down (static/js/socket.js),
// driven by a fake WebSocket and a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Connection, ConnectionState, DEFAULTS, reconnectDelay } from '../../../static/js/socket.js';

test('reconnect delays grow ×1.5 from the base delay, then stay at the cap', () => {
  const noJitter = () => 0;
  const delays = [0, 1, 2, 3].map((n) => reconnectDelay(n, DEFAULTS, noJitter));
  assert.deepEqual(delays, [500, 750, 1125, 1687.5]);
  assert.equal(reconnectDelay(30, DEFAULTS, noJitter), DEFAULTS.maxDelay);
});

test('jitter only takes off up to its share, so delays stay within bounds and under the cap', () => {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const raw = Math.min(DEFAULTS.maxDelay, DEFAULTS.baseDelay * 1.5 ** attempt);
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const delay = reconnectDelay(attempt, DEFAULTS, () => r);
      assert.ok(delay <= raw && delay >= raw * (1 - DEFAULTS.jitter), `${attempt}/${r}: ${delay}`);
    }
  }
  const spread = new Set(Array.from({ length: 20 }, () => reconnectDelay(3)));
  assert.ok(spread.size > 1, 'the default random source spreads delays');
});

test('state machine: live → reconnecting → offline after the time threshold → live', () => {
  const state = new ConnectionState(0);
  assert.equal(state.state, 'reconnecting');
  state.opened();
  assert.equal(state.state, 'live');
  assert.equal(state.failed(10_000), 'reconnecting');
  assert.equal(state.polling, false);
  assert.equal(state.check(10_000 + DEFAULTS.offlineAfterMs - 1), 'reconnecting');
  assert.equal(state.check(10_000 + DEFAULTS.offlineAfterMs), 'offline');
  assert.equal(state.polling, true);
  state.opened();
  assert.equal(state.state, 'live');
  assert.equal(state.polling, false);
});

test('state machine: offline after enough failed attempts, however quick', () => {
  const state = new ConnectionState(0);
  state.opened();
  assert.equal(state.failed(100), 'reconnecting');
  assert.equal(state.failed(101), 'reconnecting');
  assert.equal(state.failed(102), 'offline');
});

class FakeClock {
  constructor() {
    this.time = 0;
    this.timers = new Map();
    this.nextId = 1;
  }

  env(WebSocket) {
    return {
      WebSocket, now: () => this.time, random: () => 0,
      setTimeout: (fn, ms) => (this.timers.set(this.nextId, { at: this.time + ms, fn }), this.nextId++),
      clearTimeout: (id) => this.timers.delete(id),
    };
  }

  /** Runs every timer due within `ms`, in order, letting promises settle in between. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.time = end;
  }
}

class FakeSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.made.push(this);
  }

  send(text) { this.sent.push(JSON.parse(text)); }

  close() { this.closedByClient = true; }

  /** The server's side of a successful connect: open, then its hello. */
  open(seq = 0) {
    this.onopen?.();
    this.receive({ type: 'hello', seq });
  }

  receive(message) { this.onmessage?.({ data: JSON.stringify(message) }); }

  drop(code = 1006, reason = '') { this.onclose?.({ code, reason }); }
}

function setUp(extra = {}) {
  FakeSocket.made = [];
  const clock = new FakeClock();
  const seen = { states: [], messages: [], hellos: [], polls: [] };
  const connection = new Connection({
    url: (since) => (since === null ? '/ws' : `/ws?since=${since}`),
    onMessage: (m) => seen.messages.push(m), onState: (s) => seen.states.push(s),
    onHello: (info) => seen.hellos.push(info), poll: async () => seen.polls.push(clock.time),
    env: clock.env(FakeSocket), ...extra,
  });
  connection.start();
  const socket = () => FakeSocket.made.at(-1);
  return { clock, seen, connection, socket };
}

test('connection: polls only while down past the threshold, and stops once the socket is back', async () => {
  const { clock, seen, socket } = setUp();
  socket().open(7);
  assert.deepEqual(seen.states, ['reconnecting', 'live']);
  await clock.advance(10_000);
  assert.deepEqual(seen.polls, [], 'no polling while live');

  socket().drop();
  assert.equal(seen.states.at(-1), 'reconnecting');
  await clock.advance(DEFAULTS.offlineAfterMs - 1);
  assert.deepEqual(seen.polls, [], 'no polling in the first moments of a drop');
  await clock.advance(1);
  assert.equal(seen.states.at(-1), 'offline');
  const firstPoll = clock.time;
  await clock.advance(2 * DEFAULTS.pollEvery);
  assert.deepEqual(seen.polls, [firstPoll, firstPoll + DEFAULTS.pollEvery, firstPoll + 2 * DEFAULTS.pollEvery]);

  socket().open();
  assert.equal(seen.states.at(-1), 'live');
  const polled = seen.polls.length;
  await clock.advance(5 * DEFAULTS.pollEvery);
  assert.equal(seen.polls.length, polled, 'polling stopped once live again');
});

test('connection: reconnects with growing delays and resumes with the last seq seen', async () => {
  const { clock, seen, socket } = setUp();
  assert.equal(socket().url, '/ws');
  socket().open(7);
  socket().receive({ type: 'task', change: 'status', seq: 9, task: {} });
  assert.deepEqual(seen.hellos, [{ resumed: false }]);

  const made = FakeSocket.made.length;
  socket().drop(1012);
  await clock.advance(499);
  assert.equal(FakeSocket.made.length, made);
  await clock.advance(1);
  assert.equal(socket().url, '/ws?since=9');
  socket().drop();
  await clock.advance(749);
  assert.equal(FakeSocket.made.length, made + 1);
  await clock.advance(1);
  assert.equal(FakeSocket.made.length, made + 2);

  socket().open(12);
  assert.deepEqual(seen.hellos.at(-1), { resumed: true });
  socket().receive({ type: 'reset', seq: 15 });
  socket().drop();
  await clock.advance(500); // delays start over after a successful connection
  assert.equal(socket().url, '/ws?since=15');
});

test('connection: a deletion counts as seen, so a resume does not start before it', async () => {
  const { clock, socket } = setUp();
  socket().open(3);
  socket().receive({ type: 'task', change: 'status', seq: 4, task: {} });
  socket().receive({ type: 'deleted', seq: 8, task_ids: ['a', 'b'] });
  socket().drop();
  await clock.advance(500);
  assert.equal(socket().url, '/ws?since=8');
});

test('connection: a refused since (1008) starts over without one', async () => {
  const { clock, socket } = setUp();
  socket().open(3);
  socket().drop(1008);
  await clock.advance(500);
  assert.equal(socket().url, '/ws');
});

test('connection: a socket that closes before the hello never counts as live', async () => {
  const { clock, seen, socket } = setUp();
  for (let i = 0; i < 3; i += 1) {
    socket().drop(1011);
    await clock.advance(DEFAULTS.maxDelay);
  }
  assert.deepEqual(seen.states, ['reconnecting', 'offline']);
});

test('connection: a connect that never opens is abandoned after the timeout', async () => {
  const { clock, seen, socket } = setUp();
  const first = socket();
  await clock.advance(DEFAULTS.connectTimeout);
  assert.equal(first.closedByClient, true);
  assert.equal(seen.states.at(-1), 'offline');
  await clock.advance(500);
  assert.notEqual(socket(), first);
});

test('connection: pings while live, and drops a connection that stopped answering', async () => {
  const { clock, seen, socket } = setUp();
  const live = socket();
  live.open();
  await clock.advance(DEFAULTS.pingEvery);
  assert.deepEqual(live.sent, [{ type: 'ping' }]);
  live.receive({ type: 'pong', seq: 1 });
  await clock.advance(DEFAULTS.pingEvery);
  assert.equal(live.sent.length, 2);
  await clock.advance(DEFAULTS.pingEvery); // the second ping went unanswered
  assert.equal(live.closedByClient, true);
  assert.equal(seen.states.at(-1), 'reconnecting');
});

test('connection: the page can send only on a live socket', async () => {
  const { clock, connection, socket } = setUp();
  assert.equal(connection.send({ type: 'logs', task_id: 'a' }), false, 'not before the hello');
  const live = socket();
  live.open();
  assert.equal(connection.send({ type: 'logs', task_id: 'a' }), true);
  assert.deepEqual(live.sent, [{ type: 'logs', task_id: 'a' }]);
  live.drop();
  assert.equal(connection.send({ type: 'logs', task_id: 'a' }), false, 'not while reconnecting');
  await clock.advance(500);
  socket().open();
  assert.equal(connection.send({ type: 'logs', task_id: null }), true);
  assert.deepEqual(socket().sent, [{ type: 'logs', task_id: null }]);
});

// --- the API token -------------------------------------------------------------------------

const AUTH_CLOSE = 'authentication required: send {"type": "auth", "token": ...} first';

/** A connection whose token is `holder.token`, and whose auth refusals wait on `holder.answer()`. */
function setUpWithToken(token) {
  const holder = { token, refusals: [] };
  holder.next = new Promise((resolve) => { holder.answer = resolve; });
  const setup = setUp({
    token: () => holder.token,
    onAuthRefused: (sent) => {
      holder.refusals.push(sent);
      return holder.next;
    },
  });
  return { ...setup, holder };
}

test('connection: with a token, auth is the first message of every socket, and never in the URL', async () => {
  const { clock, connection, socket } = setUpWithToken('s3cret');
  const first = socket();
  first.open(4);
  connection.send({ type: 'logs', task_id: 'a' });
  assert.deepEqual(first.sent, [{ type: 'auth', token: 's3cret' }, { type: 'logs', task_id: 'a' }]);
  first.receive({ type: 'task', change: 'status', seq: 6, task: {} });

  first.drop(1012);
  await clock.advance(500);
  const second = socket();
  assert.notEqual(second, first);
  second.open(8);
  assert.deepEqual(second.sent, [{ type: 'auth', token: 's3cret' }], 'again on the reconnect');
  for (const made of FakeSocket.made) assert.ok(!made.url.includes('s3cret'), made.url);
  assert.equal(second.url, '/ws?since=6');
});

test('connection: without a token nothing is sent before the hello', () => {
  const { socket } = setUpWithToken(null);
  socket().open();
  assert.deepEqual(socket().sent, []);
});

test('connection: an authentication close waits for a new token instead of retrying, then connects at once', async () => {
  const { clock, connection, socket, holder } = setUpWithToken('wrong');
  const refused = socket();
  refused.onopen();
  refused.drop(1008, AUTH_CLOSE);
  assert.deepEqual(holder.refusals, ['wrong']);
  const made = FakeSocket.made.length;
  await clock.advance(DEFAULTS.maxDelay * 3);
  assert.equal(FakeSocket.made.length, made, 'no reconnect with the refused token');

  holder.token = 'right';
  holder.answer();
  await clock.advance(0);
  assert.equal(FakeSocket.made.length, made + 1);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: 'auth', token: 'right' }]);
  assert.equal(connection.socket, socket());
});

test('connection: a 1008 for anything but authentication keeps the ordinary backoff', async () => {
  const { clock, socket, holder } = setUpWithToken('t');
  socket().open(3);
  socket().drop(1008, "since must be a non-negative integer, got 'x'");
  assert.deepEqual(holder.refusals, []);
  await clock.advance(500);
  assert.equal(socket().url, '/ws', 'the refused since is dropped');
});

test('connection: reconnect() replaces a socket still connecting without the new token, and only that', async () => {
  const { clock, connection, socket, holder } = setUpWithToken(null);
  const waiting = socket(); // opened without a token: the server would wait 5 s, then close it
  waiting.onopen();
  holder.token = 'given';
  connection.reconnect();
  assert.equal(waiting.closedByClient, true);
  const fresh = socket();
  assert.notEqual(fresh, waiting);
  waiting.drop(1008, AUTH_CLOSE); // a late close of the abandoned socket changes nothing
  assert.deepEqual(holder.refusals, []);

  connection.reconnect(); // connecting with this token already
  assert.equal(socket(), fresh);
  fresh.open();
  connection.reconnect(); // live
  assert.equal(socket(), fresh);
  assert.deepEqual(fresh.sent, [{ type: 'auth', token: 'given' }]);
  await clock.advance(DEFAULTS.pingEvery - 1);
  assert.equal(FakeSocket.made.at(-1), fresh);
});
