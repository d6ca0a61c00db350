// Drawing on <canvas>: axes with labels, stacked bars over time buckets, lines with gaps, and
// horizontal bar pairs. Colours come from the page's CSS variables (so dark mode applies), sizes
// from the element (in CSS pixels, scaled for the screen's pixel ratio).

import { bucketBand, clockLabel, linear, niceTicks, runtimeExtent, segments, timeTicks } from './chartmath.js';

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif';
export const MARGIN = { left: 46, right: 12, top: 10, bottom: 22 };

/** The colours the charts use, read from the CSS variables of `el`. */
export function palette(el) {
  const css = getComputedStyle(el);
  const v = (name) => css.getPropertyValue(name).trim();
  return {
    text: v('--text'), muted: v('--muted'), grid: v('--border'), surface: v('--surface'), hover: v('--surface-2'),
    success: v('--success'), failed: v('--failed'), p50: v('--accent'), p95: v('--retrying'), depth: v('--cancelled'),
  };
}

/** A 2D context sized to the canvas's CSS box, in CSS pixels; and that box's size. */
export function prepare(canvas, height) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.floor(canvas.parentElement.clientWidth));
  canvas.style.height = `${height}px`; // its width is the box's (CSS): a canvas must not hold its box open
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width, height };
}

/** The plot area inside the margins. */
export function plotArea(width, height, margin = MARGIN) {
  return { left: margin.left, top: margin.top, width: width - margin.left - margin.right,
    height: height - margin.top - margin.bottom };
}

/** A time plot's frame: the y grid with its labels, the time axis under it; returns the y scale. */
export function timeFrame(ctx, plot, series, yMax, yFormat, colors, { integer = false, offset = 0 } = {}) {
  const { ticks, max } = niceTicks(0, yMax, 5, { integer });
  const y = linear([0, max], [plot.top + plot.height, plot.top]);
  ctx.lineWidth = 1;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  for (const tick of ticks) {
    const py = Math.round(y(tick)) + 0.5;
    ctx.strokeStyle = colors.grid;
    line(ctx, plot.left, py, plot.left + plot.width, py);
    ctx.fillStyle = colors.muted;
    ctx.fillText(yFormat(tick), plot.left - 6, py);
  }
  const [start, end] = timeSpan(series);
  const x = linear([start, end], [plot.left, plot.left + plot.width]);
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const most = Math.max(2, Math.floor(plot.width / 70));
  for (const t of timeTicks(start, end, most, offset)) {
    const px = Math.round(x(t)) + 0.5;
    ctx.strokeStyle = colors.grid;
    line(ctx, px, plot.top + plot.height, px, plot.top + plot.height + 4);
    ctx.fillStyle = colors.muted;
    centred(ctx, clockLabel(t, offset), px, plot.top + plot.height + 6, plot.left + plot.width + MARGIN.right);
  }
  return y;
}

/** From the first bucket's start to the last one's end. */
export function timeSpan(series) {
  const { buckets, step } = series;
  return [buckets[0], buckets[buckets.length - 1] + step];
}

/** Bars per bucket, stacked from the axis up in the order given: [{values, color}, …]. */
export function stackedBars(ctx, plot, y, stacks, count) {
  for (let i = 0; i < count; i += 1) {
    const { x, w } = bucketBand(i, count, plot.left, plot.width);
    const gap = w > 4 ? Math.min(2, w * 0.2) : 0;
    let base = 0;
    for (const { values, color } of stacks) {
      const v = values[i] || 0;
      if (!v) continue;
      const top = y(base + v);
      ctx.fillStyle = color;
      ctx.fillRect(x + gap / 2, top, Math.max(1, w - gap), y(base) - top);
      base += v;
    }
  }
}

/** A line through the buckets' centres, broken where a value is null; a dot for a lone value. */
export function seriesLine(ctx, plot, y, values, color, { fill = null, dash = [] } = {}) {
  const count = values.length;
  ctx.setLineDash(dash);
  const cx = (i) => { const { x, w } = bucketBand(i, count, plot.left, plot.width); return x + w / 2; };
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = 1.75;
  ctx.lineJoin = 'round';
  for (const [first, last] of segments(values)) {
    if (first === last) {
      ctx.beginPath();
      ctx.arc(cx(first), y(values[first]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    for (let i = first; i <= last; i += 1) ctx[i === first ? 'moveTo' : 'lineTo'](cx(i), y(values[i]));
    ctx.stroke();
    if (fill) {
      ctx.lineTo(cx(last), y(0));
      ctx.lineTo(cx(first), y(0));
      ctx.closePath();
      ctx.globalAlpha = 0.15;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  }
  ctx.setLineDash([]);
}

/** A faint band behind bucket `index`, where the pointer is. */
export function highlight(ctx, plot, index, count, color) {
  if (index < 0) return;
  const { x, w } = bucketBand(index, count, plot.left, plot.width);
  ctx.fillStyle = color;
  ctx.fillRect(x, plot.top, Math.max(1, w), plot.height);
}

export const ROW = 34; // px per task type in the run-time chart
const LABEL_WIDTH = 130;

/** The run-time chart's plot: labels on the left, one row per task type. */
export function runtimeArea(width, rows) {
  return plotArea(width, MARGIN.top + Math.max(1, rows) * ROW + MARGIN.bottom, { ...MARGIN, left: LABEL_WIDTH });
}

/** Per task type a p50 bar over a p95 bar and a mark at the longest run, the seconds axis under them. */
export function runtimeBars(ctx, plot, rows, format, colors, hover = -1) {
  const { ticks, max } = niceTicks(0, runtimeExtent(rows), Math.max(2, Math.floor(plot.width / 90)));
  const x = linear([0, max], [plot.left, plot.left + plot.width]);
  ctx.lineWidth = 1;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const tick of ticks) {
    const px = Math.round(x(tick)) + 0.5;
    ctx.strokeStyle = colors.grid;
    line(ctx, px, plot.top, px, plot.top + plot.height);
    ctx.fillStyle = colors.muted;
    centred(ctx, format(tick), px, plot.top + plot.height + 6, plot.left + plot.width + MARGIN.right);
  }
  rows.forEach((row, i) => {
    const top = plot.top + i * ROW;
    if (i === hover) {
      ctx.fillStyle = colors.hover;
      ctx.fillRect(0, top, plot.left + plot.width, ROW);
    }
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = colors.text;
    ctx.fillText(ellipsis(ctx, row.task_type, plot.left - 12), plot.left - 8, top + ROW / 2);
    ctx.fillStyle = colors.p50;
    ctx.fillRect(plot.left, top + 6, Math.max(1, x(row.p50) - plot.left), 10);
    ctx.fillStyle = colors.p95;
    ctx.fillRect(plot.left, top + 18, Math.max(1, x(row.p95) - plot.left), 10);
    if (row.max !== null && row.max !== undefined) {
      ctx.fillStyle = colors.text;
      ctx.fillRect(Math.round(x(row.max)) - 1, top + 4, 2, 26);
    }
    figures(ctx, plot, top, row, x, format, colors);
  });
}

/**
 * A row's figures beside the mark, or between the bars and a mark far beyond them, or inside the
 * longer bar; without the longest run where the whole text has no room; none where neither has (the
 * tooltip gives them).
 */
function figures(ctx, plot, top, row, x, format, colors) {
  const short = `${format(row.p50)} · ${format(row.p95)}`;
  const texts = row.max === null || row.max === undefined ? [short] : [`${short} · max ${format(row.max)}`, short];
  const bars = Math.max(x(row.p50), x(row.p95));
  const mark = row.max === null || row.max === undefined ? bars : Math.max(bars, x(row.max) + 1);
  const right = plot.left + plot.width;
  for (const text of texts) {
    const width = ctx.measureText(text).width;
    const at = [mark + 6, bars + 6].find((left) => left + width <= (left > mark ? right : mark - 4));
    if (at === undefined && bars - 6 - width < plot.left) continue;
    ctx.textAlign = at === undefined ? 'right' : 'left';
    ctx.fillStyle = at === undefined ? colors.surface : colors.muted;
    ctx.fillText(text, at ?? bars - 6, top + (at === undefined ? 23 : ROW / 2));
    return;
  }
}

/** Text centred on `x`, moved in where it would overflow the canvas (0 to `right`). */
function centred(ctx, text, x, y, right) {
  const half = ctx.measureText(text).width / 2;
  ctx.fillText(text, Math.min(Math.max(x, half), right - half), y);
}

function ellipsis(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function line(ctx, x0, y0, x1, y1) {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}
