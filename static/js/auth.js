// The API token: kept in sessionStorage for this tab's session, sent as a bearer header and as the
// socket's first message (never in a URL), asked for once when the server answers 401. Pure enough to
// test in node: the storage and the question are handed in.

const KEY = 'taskqueue.token';

/** The token of this browser session: sessionStorage when the browser allows it, else memory only. */
export class TokenKeeper {
  /** @param {Storage|null} storage */
  constructor(storage) {
    this.storage = storage;
    this.memory = null;
    this.listeners = [];
    try {
      this.memory = storage?.getItem(KEY) || null;
    } catch {
      this.storage = null; // storage blocked (a browser setting): keep it in this page only
    }
  }

  get token() {
    return this.memory;
  }

  set(token) {
    this.memory = token || null;
    try {
      if (this.memory) this.storage?.setItem(KEY, this.memory);
      else this.storage?.removeItem(KEY);
    } catch {
      // a full or blocked storage: the token still lives in this page
    }
    for (const listener of this.listeners) listener(this.memory);
  }

  forget() {
    this.set(null);
  }

  /** Called with the token (or null) whenever it changes. */
  onChange(listener) {
    this.listeners.push(listener);
  }
}

/**
 * One question at a time: every request (and the socket) refused for want of a token waits for the
 * same answer, then tries again with it.
 */
export class TokenGate {
  /**
   * @param {TokenKeeper} keeper
   * @param {(reason: 'required'|'refused') => void} ask shows the question; its answer comes to provide()
   */
  constructor(keeper, ask) {
    this.keeper = keeper;
    this.ask = ask;
    this.waiting = null; // {promise, resolve} while a question is open
  }

  /**
   * Something sent with `sent` (a token, or null for none) was refused with 401 (or the socket's
   * authentication close): resolves once there is a token worth trying again with.
   */
  refused(sent) {
    if (this.waiting) return this.waiting.promise;
    // Another request got its answer meanwhile: try again with the token it brought.
    if (this.keeper.token !== sent) return Promise.resolve();
    const reason = sent ? 'refused' : 'required';
    if (sent) this.keeper.forget(); // a refused token is not kept for the next page load
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    this.waiting = { promise, resolve };
    this.ask(reason);
    return promise;
  }

  get asking() {
    return this.waiting !== null;
  }

  /** The user's answer: kept, and everything waiting tries again with it. */
  provide(token) {
    this.keeper.set(token.trim());
    const { waiting } = this;
    this.waiting = null;
    waiting?.resolve();
  }
}

/** This tab's sessionStorage, or null where the browser refuses it (a privacy setting). */
export function sessionStore() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** The server's close of a socket that did not authenticate (1008 "authentication required…"). */
export function isAuthClose(code, reason) {
  return code === 1008 && /auth/i.test(reason || '');
}

/** The request headers carrying `token`, if any. */
export function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}
