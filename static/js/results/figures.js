// Pure helpers of the readable result views: numbers and words as they read, text cut to a bound,
// where a summary's sentences sit in its document, a batch's items in the order worth reading.

/** A key as words: `reading_time_seconds` → "Reading time seconds". */
export function humanize(key) {
  const words = String(key).replaceAll('_', ' ').trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : String(key);
}

/**
 * A number as it reads: integers grouped in full, fractions to a few decimals (the raw JSON keeps
 * every digit), very large or very small ones in exponent notation.
 */
export function formatNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs >= 1e15 || abs < 1e-6)) return n.toExponential(3).replace(/\.?0+e/, 'e');
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  if (abs < 1) return n.toLocaleString('en-US', { maximumSignificantDigits: 4 });
  return n.toLocaleString('en-US', { maximumFractionDigits: abs >= 1000 ? 1 : 3 });
}

/** A share as a percentage: 0.4121 → "41.2 %". */
export function formatShare(share) {
  return Number.isFinite(share) ? `${formatNumber(Math.round(share * 1000) / 10)} %` : '—';
}

/** Seconds as they read: "16.8 s", "2 min 05 s". */
export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${formatNumber(Math.round(seconds * 10) / 10)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
}

/** The first `limit` characters of `text` and how many more there are (a surrogate pair is not split). */
export function cut(text, limit) {
  const value = String(text);
  if (value.length <= limit) return { shown: value, more: 0 };
  const end = /[\uD800-\uDBFF]/.test(value[limit - 1]) ? limit - 1 : limit;
  return { shown: value.slice(0, end), more: value.length - end };
}

export const plural = (n, one, many = `${one}s`) => `${formatNumber(n)} ${n === 1 ? one : many}`;

/**
 * Where each of a summary's sentences starts and ends in its document, as character offsets: they are
 * verbatim pieces of it in document order, so each is looked for after the previous one. A sentence
 * not found (a document that is not the one summarised) has no position.
 * @returns {Array<{start: number, end: number}|null>}
 */
export function sentencePositions(document, sentences) {
  if (typeof document !== 'string') return sentences.map(() => null);
  let from = 0;
  return sentences.map((sentence) => {
    if (typeof sentence !== 'string' || !sentence) return null;
    let start = document.indexOf(sentence, from);
    if (start < 0) start = document.indexOf(sentence);
    if (start < 0) return null;
    from = start + sentence.length;
    return { start, end: from };
  });
}

/** A batch's outcomes, the failed ones first, each group in item order. */
export function failedFirst(items) {
  return [...items].sort((a, b) => Number(Boolean(a?.ok)) - Number(Boolean(b?.ok)) || (a?.index ?? 0) - (b?.index ?? 0));
}

/** Whether `value` is a plain JSON object (not an array, not null). */
export const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The position of `value` between `low` and `high`, in percent of that span (0 when it has none). */
export function percentAlong(value, low, high) {
  if (!(high > low) || !Number.isFinite(value)) return 0;
  return Math.min(100, Math.max(0, ((value - low) / (high - low)) * 100));
}
