// A task's log lines merged by their number `n`. History and live lines may interleave and repeat
// (every resubscribe resends the history): each line is kept once, in order of n.

/** @typedef {{n: number, at: string, attempt: number, line: string}} LogLine */

export class LogLines {
  constructor() {
    /** @type {LogLine[]} */
    this.lines = [];
    this.seen = new Set();
  }

  /** The highest n held (0 for none): where a REST poll continues. */
  get last() {
    return this.lines.length ? this.lines[this.lines.length - 1].n : 0;
  }

  /**
   * Adds the lines not held yet.
   * @param {LogLine[]} incoming
   * @returns {{added: LogLine[], appended: boolean}} the new lines in order, and whether they all
   *   follow every line held before (a view then appends them instead of redrawing)
   */
  merge(incoming) {
    const last = this.last;
    const added = [];
    for (const line of incoming) {
      if (this.seen.has(line.n)) continue;
      this.seen.add(line.n);
      added.push(line);
    }
    added.sort((a, b) => a.n - b.n);
    const appended = added.length === 0 || added[0].n > last;
    if (appended) this.lines.push(...added);
    else this.lines = [...this.lines, ...added].sort((a, b) => a.n - b.n);
    return { added, appended };
  }
}
