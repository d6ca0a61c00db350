// Following the open task's log over the socket, or REST while it is down (static/js/logfollow.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LogFollower } from '../../../static/js/logfollow.js';

const lines = (...ns) => ns.map((n) => ({ n, at: '2026-01-01T00:00:00Z', attempt: 1, line: `line ${n}` }));

function setUp({ live = true, stored = { a: lines(1, 2, 3), b: lines(7) } } = {}) {
  const seen = { sent: [], requests: [], shown: null, resets: 0 };
  const socket = { live };
  const follower = new LogFollower({
    api: {
      logs: async (id, after) => {
        seen.requests.push([id, after]);
        return { lines: stored[id].filter((line) => line.n > after) };
      },
    },
    send: (message) => {
      if (socket.live) seen.sent.push(message);
      return socket.live;
    },
    view: { reset: () => { seen.resets += 1; }, show: (all) => { seen.shown = all.map((line) => line.n); } },
  });
  return { follower, seen, socket };
}

test('opening a task follows it over the socket; closing stops; frames of other tasks are ignored', () => {
  const { follower, seen } = setUp();
  follower.follow('a');
  assert.deepEqual(seen.sent, [{ type: 'logs', task_id: 'a' }]);
  assert.deepEqual(seen.requests, [], 'no REST while the socket is up');
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(4, 5) });
  follower.receive({ type: 'logs', task_id: 'b', lines: lines(9) });
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(1, 4) });
  assert.deepEqual(seen.shown, [1, 4, 5]);
  follower.unfollow();
  assert.deepEqual(seen.sent.at(-1), { type: 'logs', task_id: null });
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(6) });
  assert.deepEqual(seen.shown, [1, 4, 5]);
});

test('stored lines come a page at a time: each page that says `next` asks for the following one', () => {
  const { follower, seen } = setUp();
  follower.follow('a');
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(1, 2), next: 2 });
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(9) }); // a live line meanwhile: no page asked
  follower.receive({ type: 'logs', task_id: 'a', lines: lines(3, 4) }); // the last page
  follower.receive({ type: 'logs', task_id: 'b', lines: lines(1), next: 1 }); // late, for another task
  assert.deepEqual(seen.sent, [{ type: 'logs', task_id: 'a' }, { type: 'logs', task_id: 'a', after: 2 }]);
  assert.deepEqual(seen.shown, [1, 2, 3, 4, 9]);
});

test('every reconnect asks again, only while a task is open', () => {
  const { follower, seen } = setUp();
  assert.equal(follower.subscribe(), false);
  follower.follow('a');
  follower.subscribe();
  assert.deepEqual(seen.sent, [{ type: 'logs', task_id: 'a' }, { type: 'logs', task_id: 'a' }]);
});

test('without a socket: fetched at once, then polled after the last line held', async () => {
  const { follower, seen, socket } = setUp({ live: false });
  follower.follow('a');
  await new Promise(setImmediate);
  assert.deepEqual(seen.requests, [['a', 0]]);
  assert.deepEqual(seen.shown, [1, 2, 3]);
  await follower.poll();
  assert.deepEqual(seen.requests.at(-1), ['a', 3]);

  socket.live = true; // back: a drop afterwards may have lost lines in flight, so the next poll starts over
  follower.subscribe();
  await follower.poll();
  assert.deepEqual(seen.requests.at(-1), ['a', 0]);

  follower.unfollow();
  await follower.poll();
  assert.equal(seen.requests.length, 3, 'no polling with the panel closed');
});

test('an answer for a task no longer open is dropped', async () => {
  const { follower, seen } = setUp({ live: false });
  follower.follow('a');
  follower.follow('b'); // before a's answer arrives
  await new Promise(setImmediate);
  assert.equal(seen.resets, 2);
  assert.deepEqual(seen.requests.map(([id]) => id), ['a', 'b']);
  assert.deepEqual(seen.shown, [7]);
});
