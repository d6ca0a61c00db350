// Follows the open task's log: over the socket while it is up (asked again after every reconnect,
// since a new socket follows nothing), over REST polls while it is down; lines merged by number.

import { LogLines } from './loglines.js';

export class LogFollower {
  /**
   * @param {{
   *   api: {logs: (id: string, after: number) => Promise<{lines: import('./loglines.js').LogLine[]}>},
   *   send: (message: object) => boolean, view: {reset: () => void, show: (lines: object[], added: object[], appended: boolean) => void}
   * }} deps `send` is false when there is no live socket
   */
  constructor({ api, send, view }) {
    Object.assign(this, { api, send, view });
    this.id = null;
    this.log = new LogLines();
    this.complete = false; // whether every line up to log.last is held, so a poll may continue after it
  }

  follow(id) {
    this.id = id;
    this.log = new LogLines();
    this.view.reset();
    if (!this.subscribe()) this.poll().catch(() => {}); // no socket yet: the first lines come over REST
  }

  unfollow() {
    if (this.id !== null) this.send({ type: 'logs', task_id: null });
    this.id = null;
  }

  /** Asks the live socket for the task's history and live lines; false without one. */
  subscribe() {
    if (this.id === null) return false;
    // Lines may be in flight when a socket drops: the first poll after one starts from the beginning.
    this.complete = false;
    return this.send({ type: 'logs', task_id: this.id });
  }

  /**
   * A socket `logs` frame; frames for a task no longer open are late and ignored. A page of stored
   * lines that is not the last carries `next`: the following page is asked for once this one is in.
   */
  receive(message) {
    if (message.task_id !== this.id) return;
    this.add(message.lines);
    if (message.next != null) this.send({ type: 'logs', task_id: this.id, after: message.next });
  }

  /** While the socket is down (and once when a task opens without one): the lines not held yet. */
  async poll() {
    if (this.id === null) return;
    const { log } = this;
    const answer = await this.api.logs(this.id, this.complete ? log.last : 0);
    if (log !== this.log) return; // another task (or the same one, reopened) is shown meanwhile
    this.complete = true;
    this.add(answer.lines);
  }

  add(lines) {
    const { added, appended } = this.log.merge(lines);
    this.view.show(this.log.lines, added, appended);
  }
}
