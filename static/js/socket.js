// The live connection: WebSocket lifecycle, resume with `?since=<last seq>`, reconnect backoff,
// and REST polling only while the socket is down. The policy parts are pure and tested in node.
// With a token, the socket's first message is `{"type": "auth", "token": …}`: never in the URL.

import { isAuthClose } from './auth.js';

export const DEFAULTS = {
  baseDelay: 500, // ms before the first reconnect attempt
  factor: 1.5, // each further attempt waits this much longer…
  maxDelay: 10000, // …up to this
  jitter: 0.3, // up to this share of a delay is taken off at random, so tabs do not reconnect in step
  offlineAfterMs: 2000, // down this long (or this many failed attempts) counts as offline: poll REST
  offlineAfterFailures: 3,
  pollEvery: 3000,
  connectTimeout: 5000, // a connect without the server's hello by then is abandoned and retried
  pingEvery: 15000, // a ping unanswered until the next one means a dead (half-open) connection
};

/** Delay before reconnect attempt `attempt` (0-based): grows ×factor, capped, jittered downwards. */
export function reconnectDelay(attempt, options = DEFAULTS, random = Math.random) {
  const raw = Math.min(options.maxDelay, options.baseDelay * options.factor ** attempt);
  return raw * (1 - options.jitter * random());
}

/** live → reconnecting (just dropped) → offline (still down after the threshold) → live. */
export class ConnectionState {
  constructor(now, options = DEFAULTS) {
    this.options = options;
    this.state = 'reconnecting'; // also while the first connection is being made
    this.failures = 0;
    this.downSince = now;
  }

  opened() {
    this.state = 'live';
    this.failures = 0;
    this.downSince = null;
  }

  failed(now) {
    this.failures += 1;
    this.downSince ??= now;
    return this.check(now);
  }

  check(now) {
    if (this.downSince === null) return this.state; // live
    const { offlineAfterMs, offlineAfterFailures } = this.options;
    const long = now - this.downSince >= offlineAfterMs || this.failures >= offlineAfterFailures;
    this.state = long ? 'offline' : 'reconnecting';
    return this.state;
  }

  /** ms until being down turns into offline by time alone. */
  offlineIn(now) {
    return Math.max(0, this.downSince + this.options.offlineAfterMs - now);
  }

  get polling() {
    return this.state === 'offline';
  }
}

const BROWSER = {
  WebSocket: globalThis.WebSocket,
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
  now: () => Date.now(),
  random: Math.random,
};

/**
 * @typedef {{
 *   url: (since: number|null) => string, onMessage: (msg: object) => void,
 *   onState: (state: string) => void, onHello: (info: {resumed: boolean}) => void,
 *   poll: () => Promise<unknown>, options?: typeof DEFAULTS, env?: typeof BROWSER,
 *   token?: () => string|null, onAuthRefused?: (sent: string|null) => Promise<void>
 * }} ConnectionConfig
 * `onAuthRefused` resolves once there is a token worth trying (the socket waits for it, no backoff).
 */
export class Connection {
  /** @param {ConnectionConfig} config */
  constructor(config) {
    this.config = config;
    this.options = config.options || DEFAULTS;
    this.env = config.env || BROWSER;
    this.since = null; // last seq seen on the socket; null until the first hello
    this.attempt = 0;
    this.socket = null; // the live socket (after its hello), for messages the page sends
    this.pending = null; // a socket connecting (before its hello), and the token it was opened with
    this.timers = {};
    this.status = new ConnectionState(this.env.now(), this.options);
  }

  start() {
    this.setState(this.status.state);
    this.schedule('offline', () => this.update(), this.options.offlineAfterMs);
    this.connect();
  }

  connect() {
    const token = this.config.token?.() ?? null;
    const ws = new this.env.WebSocket(this.config.url(this.since));
    this.pending = { ws, token };
    this.schedule('connect', () => this.drop(ws), this.options.connectTimeout);
    // The server reads nothing before the auth message, and the page sends nothing before the hello.
    ws.onopen = () => {
      if (token) ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (event) => this.received(ws, JSON.parse(event.data));
    ws.onclose = (event) => this.closed(event.code, event.reason, token);
  }

  /**
   * Connects at once with the current token (the user just gave one), unless a socket is live or
   * already connecting with it.
   */
  reconnect() {
    const token = this.config.token?.() ?? null;
    if (this.socket || (this.pending && this.pending.token === token)) return;
    if (this.pending) this.detach(this.pending.ws);
    this.cancel('reconnect');
    this.attempt = 0;
    this.connect();
  }

  detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close();
    this.pending = null;
  }

  /** Live from the server's hello: a socket that opens and closes at once never counts as live. */
  live(ws) {
    this.pending = null;
    this.cancel('connect');
    this.cancel('offline');
    this.stopPolling();
    this.attempt = 0;
    this.socket = ws;
    this.status.opened();
    this.setState('live');
    this.heartbeat(ws, false);
  }

  heartbeat(ws, awaiting) {
    this.awaitingPong = awaiting;
    this.schedule('ping', () => {
      if (this.awaitingPong) return this.drop(ws);
      ws.send(JSON.stringify({ type: 'ping' }));
      this.heartbeat(ws, true);
    }, this.options.pingEvery);
  }

  received(ws, message) {
    this.awaitingPong = false; // any frame proves the connection alive
    if (message.type === 'hello') {
      this.live(ws);
      const resumed = this.since !== null;
      if (!resumed) this.since = message.seq; // a replay follows only a resume
      this.config.onHello({ resumed });
    } else if (message.type === 'task' || message.type === 'deleted') {
      this.since = Math.max(this.since ?? 0, message.seq);
    } else if (message.type === 'reset') {
      this.since = message.seq;
    }
    this.config.onMessage(message);
  }

  /** Sends `message` on the live socket; false when there is none (a new one starts from scratch). */
  send(message) {
    if (!this.socket) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Gives up on a socket that never opened or stopped answering, without waiting for its close. */
  drop(ws) {
    this.detach(ws);
    this.closed(4000);
  }

  closed(code, reason = '', token = null) {
    this.socket = null;
    this.pending = null;
    this.cancel('connect');
    this.cancel('ping');
    const auth = isAuthClose(code, reason) && this.config.onAuthRefused;
    if (code === 1008 && !auth) this.since = null; // our since was refused: start over, with a full reload
    const now = this.env.now();
    this.status.failed(now);
    this.update();
    this.schedule('offline', () => this.update(), this.status.offlineIn(now));
    if (auth) {
      // Retrying with the same token is pointless: wait for the user's (reconnect() comes with it).
      this.config.onAuthRefused(token).then(() => this.reconnect());
      return;
    }
    const delay = reconnectDelay(this.attempt++, this.options, this.env.random);
    this.schedule('reconnect', () => this.connect(), delay);
  }

  /** Re-evaluates the state (time passes while down) and starts polling once offline. */
  update() {
    this.setState(this.status.check(this.env.now()));
    if (this.status.polling && !this.pollRound) this.startPolling();
  }

  setState(state) {
    if (state !== this.shownState) this.config.onState(state);
    this.shownState = state;
  }

  startPolling() {
    const round = {};
    this.pollRound = round;
    this.pollOnce(round);
  }

  async pollOnce(round) {
    await this.config.poll().catch(() => {}); // an unreachable server is what we are waiting out
    // A poll that was in flight when the socket came back must not start another one.
    if (round !== this.pollRound) return;
    this.schedule('poll', () => this.pollOnce(round), this.options.pollEvery);
  }

  stopPolling() {
    this.pollRound = null;
    this.cancel('poll');
  }

  schedule(name, fn, ms) {
    this.cancel(name);
    this.timers[name] = this.env.setTimeout(() => {
      delete this.timers[name];
      fn();
    }, ms);
  }

  cancel(name) {
    if (this.timers[name] !== undefined) this.env.clearTimeout(this.timers[name]);
    delete this.timers[name];
  }
}
