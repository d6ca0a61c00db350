// Where the app lives: '/' or, behind a proxy under a prefix (ROOT_PATH), e.g. '/tq/'. Taken from this
// module's own URL (it is served at <base>js/base.js), so every API call, file link and the socket
// follow the prefix the browser sees, with no server-side templating and no inline script.
// Outside a page (node's unit tests) it is '/'.

export const BASE = globalThis.location ? new URL('..', import.meta.url).pathname : '/';

/** The app's path `path` ('/api/…', as docs/api.md names it) under the base. */
export const appUrl = (path) => BASE + path.replace(/^\//, '');

/** The WebSocket URL of the app's path `path` on this page's host. */
export function socketUrl(path) {
  const url = new URL(appUrl(path), globalThis.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}
