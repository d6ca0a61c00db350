// The "Webhooks" section of the task detail: each delivery of the task (its event, hook, URL and
// state) with every attempt. Loaded when the task's status changes, and again every few seconds
// while a delivery is still pending; hidden for a task that has none.

import { h, setAttr } from './dom.js';
import { formatTimestamp } from './format.js';

const STATES = { pending: '○ pending', delivered: '✓ delivered', failed: '✕ failed' };
const HOOKS = { task: "the task's callback_url", global: 'the global webhook' };
const REFRESH = 2000; // ms between looks while a delivery is pending and the panel shows it

export class WebhookView {
  /** @param {((id: string) => Promise<{deliveries: object[]}>)|null} load GET /api/tasks/{id}/webhooks */
  constructor(load) {
    this.load = load;
    this.list = h('ol', { class: 'webhooks' });
    this.el = h('section', { class: 'detail-section', 'data-section': 'webhooks', hidden: true },
      h('h3', {}, 'Webhooks'), this.list);
    this.id = null;
    this.timer = null;
  }

  /** Shows `id`'s deliveries as the server has them now. */
  async refresh(id) {
    clearTimeout(this.timer);
    if (id !== this.id) {
      this.id = id;
      this.render([]);
    }
    if (!this.load || !id) return;
    let answer;
    try {
      answer = await this.load(id);
    } catch {
      return; // the task went away, or the server did: the next status change looks again
    }
    if (id !== this.id) return; // another task opened meanwhile
    this.render(answer.deliveries);
    if (answer.deliveries.some((d) => d.status === 'pending')) {
      this.timer = setTimeout(() => this.refresh(id), REFRESH);
    }
  }

  stop() {
    clearTimeout(this.timer);
    this.id = null;
    this.render([]);
  }

  render(deliveries) {
    this.el.hidden = deliveries.length === 0;
    this.list.replaceChildren(...deliveries.map(deliveryItem));
  }
}

function deliveryItem(d) {
  const item = h('li', { 'data-delivery-id': d.id },
    h('div', { class: 'webhook-head' },
      h('span', { class: 'webhook-state' }, STATES[d.status] ?? d.status),
      h('span', { class: 'mono' }, d.event), h('span', { class: 'webhook-hook' }, `to ${HOOKS[d.hook] ?? d.hook}`)),
    h('p', { class: 'webhook-url mono' }, d.url),
    h('p', { class: 'webhook-meta' }, summary(d)),
    d.history.length > 0 && h('ol', { class: 'webhook-attempts' }, d.history.map(attemptItem)));
  setAttr(item, 'data-status', d.status);
  return item;
}

function summary(d) {
  const parts = [`${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`];
  if (d.status === 'delivered') parts.push(`delivered ${formatTimestamp(d.delivered_at)}`);
  if (d.status === 'pending' && d.next_attempt_at) parts.push(`next attempt ${formatTimestamp(d.next_attempt_at)}`);
  if (d.status === 'failed') parts.push('given up');
  return parts.join(' · ');
}

function attemptItem(a) {
  const answer = a.status_code === null ? 'no answer' : `HTTP ${a.status_code}`;
  return h('li', { 'data-ok': a.error === null ? 'true' : 'false' },
    `#${a.attempt} `, h('time', { datetime: a.at, title: a.at }, formatTimestamp(a.at)),
    ` · ${answer} · ${Math.round(a.duration_ms)} ms`, a.error && h('span', { class: 'message' }, ` · ${a.error}`));
}
