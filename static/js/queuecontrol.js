// The queue's pause switch in the header, and the banner that says the queue is paused; the state
// comes from GET /api/queue on every (re)connection and from `queue` frames live.

import { setAttr, setText } from './dom.js';
import { formatClock, formatTime } from './format.js';

export class QueueControl {
  /**
   * @param {HTMLButtonElement} button toggles the pause
   * @param {HTMLElement} banner shown while paused, with its own resume button
   * @param {{queue: Function, pauseQueue: Function, resumeQueue: Function}} api
   */
  constructor(button, banner, api) {
    Object.assign(this, { button, banner, api });
    this.paused = false;
    button.addEventListener('click', () => this.toggle());
    banner.querySelector('[data-resume]')?.addEventListener('click', () => this.toggle());
  }

  /** The state as the server has it now (each new connection asks: a frame may have been missed). */
  async refresh() {
    this.show(await this.api.queue());
  }

  /** `{paused, paused_at}` from an answer or a `queue` frame. */
  show(state) {
    this.paused = Boolean(state.paused);
    setText(this.button, this.paused ? 'Resume queue' : 'Pause queue');
    setAttr(this.button, 'aria-pressed', String(this.paused));
    setAttr(this.button, 'title', this.paused
      ? 'Workers take queued tasks again'
      : 'Workers stop taking queued tasks (running ones finish; new ones are accepted and wait)');
    this.banner.hidden = !this.paused;
    const at = state.paused_at;
    const today = at && new Date(at).toDateString() === new Date().toDateString();
    const since = at ? `${today ? '' : `${formatTime(at)}, `}${formatClock(at)}` : '';
    setText(this.banner.querySelector('[data-since]'), since);
  }

  async toggle() {
    this.button.disabled = true;
    try {
      this.show(await (this.paused ? this.api.resumeQueue() : this.api.pauseQueue()));
    } catch (error) {
      setText(this.banner.querySelector('[data-error]'), `Could not change the queue: ${error.detail}`);
    } finally {
      this.button.disabled = false;
    }
  }
}
