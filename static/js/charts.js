// The charts panel: GET /api/metrics/series for the chosen window (last hour or day), drawn on
// canvases by our own code (chartdraw.js). Fetched again after task changes (the hour at most every
// 2 s, the day every 60 s) and as the time axis moves on (every 15 s, the day every 60 s), never while
// the tab is hidden; redrawn when the panel's width or the colour scheme changes.
// Each canvas says what it shows in its aria-label; a tooltip gives the bucket under the pointer.

import { MARGIN, highlight, palette, plotArea, prepare, runtimeArea, runtimeBars, seriesLine, stackedBars, timeFrame, ROW } from './chartdraw.js';
import { barFactor, bucketAt, clockLabel, coarsen, formatSeconds, maxOf, queueSummary, queueTip, runtimeSummary, runtimeText, stepLabel, throughputSummary, waitSummary } from './chartmath.js';
import { setAttr, setText } from './dom.js';

// ms: task changes refetch at most every `change`, and without any, every `idle`. A day's bars sum
// several minutes each (and its series is 1,440 of them): fetched no more than once a minute.
const EVERY = { hour: { change: 2000, idle: 15000 }, day: { change: 60000, idle: 60000 } };
const HEIGHTS = { throughput: 210, queue: 170, wait: 170 };
const plain = (v) => String(v);

export class ChartsPanel {
  constructor(root, { api, now = () => Date.now() }) {
    Object.assign(this, { root, api, now });
    this.window = 'hour';
    this.series = null;
    this.bars = null; // the throughput as drawn (minutes merged on a narrow chart)
    this.fetchedAt = -Infinity;
    this.timer = null;
    this.stale = false; // tasks changed since the last fetch
    this.token = 0;
    this.pointer = { chart: null, x: 0, y: 0 };
    this.plots = {};
    this.figures = Object.fromEntries([...root.querySelectorAll('[data-chart]')].map((fig) => [fig.dataset.chart, {
      canvas: fig.querySelector('canvas'), tip: fig.querySelector('.chart-tip'), caption: fig.querySelector('[data-caption]'),
    }]));
    this.error = root.querySelector('#charts-error');
    this.current = root.querySelector('#charts-now');
    this.buttons = [...root.querySelectorAll('[data-window]')];
  }

  /** The window toggle, the tooltips, and redrawing on resize and on a colour-scheme change. */
  bind() {
    for (const button of this.buttons) button.addEventListener('click', () => this.setWindow(button.dataset.window));
    for (const [name, { canvas }] of Object.entries(this.figures)) {
      canvas.addEventListener('pointermove', (event) => this.point(name, event.offsetX, event.offsetY));
      canvas.addEventListener('pointerleave', () => this.point(null));
    }
    let width = 0;
    new ResizeObserver(() => {
      if (this.root.clientWidth === width) return;
      width = this.root.clientWidth;
      this.draw();
    }).observe(this.root);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
    // Changes that came while the tab was hidden are fetched once it is shown again.
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && this.stale) this.refreshSoon();
    });
  }

  setWindow(window) {
    this.window = window;
    for (const button of this.buttons) setAttr(button, 'aria-pressed', String(button.dataset.window === window));
    this.refresh().catch(() => {});
  }

  /** A task started or ended (progress does not move any chart): fetch again, throttled. */
  onMessage(message) {
    if (message.type === 'task' && message.change !== 'progress') this.refreshSoon();
  }

  refreshSoon() {
    this.stale = true;
    if (this.timer || document.hidden) return;
    const wait = Math.max(0, this.fetchedAt + EVERY[this.window].change - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!document.hidden) this.refresh().catch(() => {});
    }, wait);
  }

  /** Every second: the slow refetch, for the moving time axis (not while the tab is hidden). */
  tick() {
    if (!document.hidden && this.now() - this.fetchedAt >= EVERY[this.window].idle) this.refresh().catch(() => {});
  }

  /** A round of the REST fallback while the socket is down: changes may have been missed, so as after one. */
  poll() {
    this.refreshSoon();
  }

  async refresh() {
    const token = ++this.token;
    this.fetchedAt = this.now();
    this.stale = false;
    clearTimeout(this.timer); // this fetch is the one a pending change waited for
    this.timer = null;
    try {
      const series = await this.api.series(this.window);
      if (token !== this.token) return; // a later fetch (another window) is the one to show
      this.series = series;
      this.error.hidden = true;
      this.draw();
    } catch (error) {
      // An unreachable server is the connection indicator's to show; answers are shown here.
      if (token === this.token && error.status !== 0) {
        this.error.hidden = false;
        setText(this.error, `Charts unavailable: ${error.detail}`);
      }
      throw error;
    }
  }

  draw() {
    const series = this.series;
    if (!series || !this.root.clientWidth) return;
    const colors = palette(this.root);
    const offset = -new Date(series.now * 1000).getTimezoneOffset() * 60; // the viewer's clock
    setText(this.current, `${series.queue_depth_now} waiting now · ${series.workers_live} ` +
      `worker${series.workers_live === 1 ? '' : 's'} live`);
    // A day's minutes are more than a chart's pixels: its bars then count several minutes each.
    const wide = plotArea(this.figures.throughput.canvas.parentElement.clientWidth, HEIGHTS.throughput).width;
    const bars = this.bars = coarsen(series, barFactor(series.buckets.length, wide), offset);
    setText(this.figures.throughput.caption, `Tasks per ${stepLabel(bars.step)}`);
    this.timePlot('throughput', bars, colors, throughputSummary(bars, offset), (ctx, plot) => {
      const totals = bars.succeeded.map((n, i) => n + bars.failed[i]);
      const y = timeFrame(ctx, plot, bars, maxOf(totals), plain, colors, { integer: true, offset });
      stackedBars(ctx, plot, y, [{ values: bars.succeeded, color: colors.success },
        { values: bars.failed, color: colors.failed }], bars.buckets.length);
    });
    // Each minute's maximum (a burst shows at its height however fast it drained), its mean dashed.
    this.timePlot('queue', series, colors, queueSummary(series, offset), (ctx, plot) => {
      const y = timeFrame(ctx, plot, series, maxOf(series.queue_depth), plain, colors, { integer: true, offset });
      seriesLine(ctx, plot, y, series.queue_depth, colors.depth, { fill: true });
      seriesLine(ctx, plot, y, series.queue_depth_mean ?? [], colors.text, { dash: [4, 3] });
    });
    this.timePlot('wait', series, colors, waitSummary(series), (ctx, plot) => {
      const y = timeFrame(ctx, plot, series, maxOf(series.wait_p50, series.wait_p95), formatSeconds, colors, { offset });
      seriesLine(ctx, plot, y, series.wait_p95, colors.p95);
      seriesLine(ctx, plot, y, series.wait_p50, colors.p50);
    });
    this.drawRuntime(series, colors);
    this.showTip();
  }

  /** One chart over the time buckets: its canvas sized, the hovered bucket marked, `paint` the rest. */
  timePlot(name, series, colors, label, paint) {
    const { canvas } = this.figures[name];
    const { ctx, width, height } = prepare(canvas, HEIGHTS[name]);
    const plot = plotArea(width, height);
    this.plots[name] = plot;
    const count = series.buckets.length;
    if (count && this.pointer.chart === name) {
      highlight(ctx, plot, bucketAt(this.pointer.x, count, plot.left, plot.width), count, colors.hover);
    }
    if (count) paint(ctx, plot);
    canvas.setAttribute('aria-label', label);
  }

  drawRuntime(series, colors) {
    const figure = this.figures.runtime;
    const rows = series.run_time;
    const plot = runtimeArea(Math.max(1, figure.canvas.parentElement.clientWidth), rows.length);
    const { ctx } = prepare(figure.canvas, plot.top + plot.height + MARGIN.bottom);
    this.plots.runtime = plot;
    const hovered = this.pointer.chart === 'runtime' ? this.runtimeRow(this.pointer.y) : -1;
    if (rows.length) runtimeBars(ctx, plot, rows, formatSeconds, colors, hovered);
    else {
      ctx.fillStyle = colors.muted;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('No task finished in this window', plot.left / 2 + (plot.left + plot.width) / 2, plot.top + plot.height / 2);
    }
    figure.canvas.setAttribute('aria-label', runtimeSummary(series));
  }

  runtimeRow(y) {
    const plot = this.plots.runtime;
    const row = Math.floor((y - plot.top) / ROW);
    return row >= 0 && row < this.series.run_time.length ? row : -1;
  }

  point(chart, x = 0, y = 0) {
    const moved = chart !== this.pointer.chart || this.bucket(chart, x, y) !== this.bucket(chart, this.pointer.x, this.pointer.y);
    if (this.pointer.chart && this.pointer.chart !== chart) this.figures[this.pointer.chart].tip.hidden = true;
    this.pointer = { chart, x, y };
    if (moved) this.draw();
    else this.showTip();
  }

  /** Which bucket (or run-time row) the pointer is on. */
  bucket(chart, x, y) {
    const plot = this.plots[chart];
    if (!chart || !plot || !this.series) return -1;
    if (chart === 'runtime') return this.runtimeRow(y);
    return bucketAt(x, (chart === 'throughput' ? this.bars : this.series).buckets.length, plot.left, plot.width);
  }

  showTip() {
    const { chart, x, y } = this.pointer;
    if (!chart || !this.series) return;
    const { tip, canvas } = this.figures[chart];
    const text = this.tipText(chart, this.bucket(chart, x, y));
    tip.hidden = !text;
    if (!text) return;
    setText(tip, text);
    const left = Math.min(Math.max(0, x + 14), canvas.clientWidth - tip.offsetWidth);
    tip.style.transform = `translate(${Math.max(0, left)}px, ${Math.max(0, y - tip.offsetHeight - 8)}px)`;
  }

  tipText(chart, index) {
    const s = this.series;
    if (index < 0) return '';
    if (chart === 'runtime') {
      const r = s.run_time[index];
      return `${r.task_type}: ${runtimeText(r)} over ${r.count} run${r.count === 1 ? '' : 's'}`;
    }
    const t = (chart === 'throughput' ? this.bars : s).buckets[index];
    const at = clockLabel(t, -new Date(t * 1000).getTimezoneOffset() * 60);
    if (chart === 'throughput') {
      const [ok, failed] = [this.bars.succeeded[index], this.bars.failed[index]];
      return `${at} · ${ok} task${ok === 1 ? '' : 's'} succeeded · ${failed} task${failed === 1 ? '' : 's'} failed`;
    }
    if (chart === 'queue') return `${at} · ${queueTip(s, index)}`;
    if (s.wait_p50[index] === null) return `${at} · no task started`;
    return `${at} · wait p50 ${formatSeconds(s.wait_p50[index])} · p95 ${formatSeconds(s.wait_p95[index])}`;
  }
}
