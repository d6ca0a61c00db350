// The log view of the detail panel: monospace lines as text, a marker where a new attempt starts,
// and auto-scrolling only while the reader is at the bottom (scrolling up to read stops it).

import { h, setText } from './dom.js';
import { formatClock } from './format.js';

const AT_BOTTOM = 8; // px of slack: "at the bottom" survives sub-pixel scroll positions

export class LogView {
  constructor() {
    this.lines = h('div', { class: 'log-lines' });
    this.status = h('p', { class: 'log-status' });
    this.el = h('div', { class: 'log', role: 'log', tabindex: '0', 'aria-label': 'Task log' }, this.lines, this.status);
  }

  reset() {
    this.lines.replaceChildren();
    setText(this.status, 'loading…');
  }

  /** Shows `lines` (all, in order): appends `added` when they come last, else redraws. */
  show(lines, added, appended) {
    const follow = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight <= AT_BOTTOM;
    if (appended) {
      const before = lines[lines.length - added.length - 1];
      this.lines.append(...added.flatMap((line, i) => lineElements(line, i ? added[i - 1] : before)));
    } else {
      this.lines.replaceChildren(...lines.flatMap((line, i) => lineElements(line, lines[i - 1])));
    }
    setText(this.status, lines.length ? '' : 'no log lines');
    if (follow) this.el.scrollTop = this.el.scrollHeight;
  }
}

/** A line, preceded by a marker when it starts an attempt other than the first one shown. */
function lineElements(line, previous) {
  const row = h('div', { class: 'log-line', 'data-n': line.n },
    h('time', { datetime: line.at, title: line.at }, formatClock(line.at)), ' ', h('span', { class: 'log-text' }, line.line));
  if (!previous || previous.attempt === line.attempt) return [row];
  return [h('div', { class: 'log-attempt' }, `attempt ${line.attempt}`), row];
}
