// A task's result made readable: the built-in types' own views, and the generic view for any other
// type (or a built-in result of an unexpected shape, which a view declines by returning null).

import { h } from '../dom.js';
import { batchView } from './batch.js';
import { csvView } from './csv.js';
import { emailView } from './email.js';
import { isObject } from './figures.js';
import { genericView } from './generic.js';
import { imagesView } from './images.js';
import { summaryView } from './summary.js';
import { textView } from './text.js';

/** Each returns a node, `{node, files}` when it shows some of the task's files itself, or null. */
const VIEWS = {
  data_processing: csvView,
  email_simulation: emailView,
  image_processing: imagesView,
  text_processing: textView,
  ai_summarization: summaryView,
  batch_processing: batchView,
};

/**
 * @param {object} task
 * @param {{fetchFile: ((name: string) => Promise<string>)|null}} context
 * @returns {{node: HTMLElement, files: Set<string>}|null} null when the task has no result (yet)
 */
export function resultView(task, { fetchFile = null } = {}) {
  const result = task.result_data;
  if (result === null || result === undefined) return null;
  const view = isObject(result) ? VIEWS[task.task_type] : null;
  let made = null;
  try {
    made = view ? view(result, { task, fetchFile }) : null;
  } catch {
    made = null; // an unexpected shape a view did not foresee: the generic view shows any JSON
  }
  if (made instanceof Node) made = { node: made, files: new Set() };
  const kind = made ? task.task_type : 'generic';
  made ??= { node: genericView(withoutFileList(result)), files: new Set() };
  return { node: h('div', { class: 'result-view', 'data-view': kind }, made.node), files: made.files };
}

/** The list of files the runner adds to a result (`artifacts`) is the Files section's to show. */
function withoutFileList(result) {
  if (!isObject(result) || !Array.isArray(result.artifacts)) return result;
  const { artifacts, ...rest } = result;
  return rest;
}
