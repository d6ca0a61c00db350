// The composition root: builds the pieces, wires their events, starts the live connection.

import { createApi } from './api.js';
import { TokenGate, TokenKeeper, sessionStore } from './auth.js';
import { socketUrl as appSocketUrl } from './base.js';
import { BulkBar } from './bulk.js';
import { ChartsPanel } from './charts.js';
import { Dashboard } from './dashboard.js';
import { DetailPanel } from './detail.js';
import { FilterBar } from './filterbar.js';
import { SubmitForm } from './form.js';
import { LogFollower } from './logfollow.js';
import { QueueControl } from './queuecontrol.js';
import { Connection } from './socket.js';
import { Store } from './store.js';
import { TokenDialog } from './tokendialog.js';
import { Counters, TaskList, renderConnection } from './views.js';
import { WorkersPanel } from './workers.js';

const $ = (id) => document.getElementById(id);
// The token, asked for on the first 401 (or refused socket) and kept for this tab's session.
const keeper = new TokenKeeper(sessionStore());
const tokenDialog = new TokenDialog($('token-dialog'), { enter: $('token-enter'), forget: $('token-forget') });
const gate = new TokenGate(keeper, (reason) => tokenDialog.ask(reason));
const auth = { token: () => keeper.token, refused: (sent) => gate.refused(sent) };
const api = createApi(auth);
tokenDialog.bindSubmit((token) => gate.provide(token));
tokenDialog.bindForget(() => {
  keeper.forget();
  location.reload(); // nothing of it stays in this page either: the next request asks again
});
tokenDialog.showStored(Boolean(keeper.token));

const detail = new DetailPanel($('detail'), { withToken: () => Boolean(keeper.token), fetch: api.artifact }, api.webhooks,
  { taskTypes: api.taskTypes, upload: api.uploadInfo });
// `connection` is declared below, before anything (dashboard.fromUrl first) can send.
const logs = new LogFollower({ api, send: (message) => connection.send(message), view: detail.log });
const list = new TaskList(document);
// Its `onApplied` reloads the list through `dashboard`, declared next (nothing applies before then).
const bulk = new BulkBar($('bulk-bar'), $('bulk-dialog'), {
  api, list, opener: $('bulk-open'), onApplied: () => dashboard.load().catch(() => {}),
});
const dashboard = new Dashboard({
  api, store: new Store(50), list, counters: new Counters($('counters')),
  detail, logs, filterBar: new FilterBar($('filters')), indicator: $('connection'), renderConnection, bulk,
  queue: new QueueControl($('queue-toggle'), $('queue-banner'), api),
});
dashboard.list.bindOpen((id) => dashboard.openTask(id));
dashboard.list.bindPaging((step) => dashboard.page(step));
dashboard.counters.bindPick((status) => dashboard.setFilters({ status: status === dashboard.store.filters.status ? '' : status }));
dashboard.filterBar.bindChange((changes, typing) => dashboard.setFilters(changes, { replace: typing }));
dashboard.detail.bindClose(() => dashboard.closeTask());
$('detail-backdrop').addEventListener('click', () => dashboard.closeTask()); // a click beside the panel closes it
dashboard.detail.bindActions((action, id) => dashboard.act(action, id));
dashboard.detail.bindOpen((id) => dashboard.openTask(id));
dashboard.detail.bindTruncated(() => dashboard.refreshTask().catch(() => {}));
window.addEventListener('popstate', () => dashboard.fromUrl());
const workers = new WorkersPanel($('workers'), { api });
workers.bindOpen((id) => dashboard.openTask(id));
const charts = new ChartsPanel($('charts'), { api });
charts.bind();

const socketUrl = (since) => appSocketUrl(`/ws${since === null ? '' : `?since=${since}`}`);
const connection = new Connection({
  url: socketUrl, onMessage: (m) => [dashboard, workers, charts].forEach((part) => part.onMessage(m)),
  onState: (s) => dashboard.onState(s),
  // Every (re)connect: heartbeats asked for again, and what the socket missed reloaded.
  onHello: (info) => {
    dashboard.onHello(info);
    connection.send({ type: 'workers' });
    workers.load().catch(() => {});
    charts.refresh().catch(() => {});
  },
  poll: () => Promise.all([dashboard.poll(), workers.load(), charts.poll()]),
  token: auth.token, onAuthRefused: auth.refused,
});
keeper.onChange((token) => {
  tokenDialog.showStored(Boolean(token));
  if (token) connection.reconnect(); // a socket still waiting without a token need not time out first
});
dashboard.fromUrl();
connection.start();
// One shared timer: live run times, heartbeat ages (and lost workers), the charts' moving time axis.
setInterval(() => [dashboard, workers, charts].forEach((part) => part.tick()), 1000);

// On a phone the list comes first: the form starts folded.
if (matchMedia('(max-width: 720px)').matches) $('submit-form').closest('details').open = false;
SubmitForm.load(api, $('submit-form'), (form) => {
  dashboard.form = form;
  form.bindSubmit((type, parameters, options) => dashboard.submit(form, type, parameters, options));
  form.bindOpen((id) => dashboard.openTask(id));
  dashboard.filterBar.setTypes(form.typeNames());
});
