// The readable result of `email_simulation` (app/tasks/builtin/email_simulation.py): how many were
// sent and failed, where they went, the failures with their reasons, every listed recipient folded.

import { h } from '../dom.js';
import { formatBytes } from '../format.js';
import { formatNumber, isObject } from './figures.js';
import { note, pairs, table, tiles } from './parts.js';

/** @returns {Node|null} null when the result is not an e-mail run's */
export function emailView(result) {
  if (!Number.isFinite(result.sent) || !Number.isFinite(result.failed) || !Array.isArray(result.recipients)) return null;
  const recipients = result.recipients.filter(isObject);
  const failures = recipients.filter((r) => r.status !== 'sent');
  const total = result.sent + result.failed;
  return h('div', { class: 'rv-email' },
    tiles([
      ['Sent', result.sent, result.sent ? 'good' : null],
      ['Failed', result.failed, result.failed ? 'bad' : null],
      ['Recipients', total],
      Number.isFinite(result.total_bytes) && ['Sent size', formatBytes(result.total_bytes)],
    ]),
    pairs([['Delivered', transport(result)]]),
    result.failed === 0 ? note('Every message was sent.') : [
      h('h4', { class: 'rv-heading' }, 'Failures'),
      failures.length > 0
        && table(['Recipient', 'Reason'], failures.map((r) => [r.recipient ?? '—', reason(r)]), { className: 'rv-failures' }),
      failures.length < result.failed && note(`The result lists the first ${formatNumber(recipients.length)} of `
        + `${formatNumber(total)} recipients: ${formatNumber(failures.length)} of the ${formatNumber(result.failed)} `
        + 'failures are among them.'),
    ],
    recipients.length > 0 && h('details', { class: 'rv-fold' },
      h('summary', {}, `Every listed recipient (${formatNumber(recipients.length)}`
        + `${result.recipients_truncated ? ` of ${formatNumber(total)}` : ''})`),
      table(['Recipient', 'Status', 'Answer'],
        recipients.map((r) => [r.recipient ?? '—', String(r.status ?? '—'), answer(r)]))));
}

function transport(result) {
  if (result.transport === 'smtp') return `over SMTP to ${result.server ?? '?'} (TLS: ${result.tls ?? '?'})`;
  if (result.transport === 'maildir') return `into the Maildir ${result.maildir ?? '?'}`;
  return String(result.transport ?? '—');
}

/** "RCPT 550 no such user", or the simulated failure's text. */
function reason(r) {
  return [r.step, r.code, r.error].filter((part) => part !== undefined && part !== null && part !== '').join(' ') || '—';
}

function answer(r) {
  if (r.status !== 'sent') return reason(r);
  const size = Number.isFinite(r.bytes) ? formatBytes(r.bytes) : '';
  return [r.code, r.answer, size].filter((part) => part !== undefined && part !== null && part !== '').join(' ') || '—';
}
