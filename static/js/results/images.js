// The readable result of `image_processing` (app/tasks/builtin/image_processing.py): the operation,
// then each output as a thumbnail (artifacts.js: full size on click, fetched with the token when one
// is in use) with its pixel size, mode, format, bytes and the source it was made from.

import { artifactItems, artifactsOf } from '../artifacts.js';
import { h } from '../dom.js';
import { formatNumber, isObject } from './figures.js';
import { note, pairs } from './parts.js';

const MAX_SHOWN = 100;

/**
 * @param {object} result
 * @param {{task: object, fetchFile: ((name: string) => Promise<string>)|null}} context
 * @returns {{node: Node, files: Set<string>}|null} the view, and the files it shows (not listed again)
 */
export function imagesView(result, { task, fetchFile }) {
  if (!Array.isArray(result.images)) return null;
  const images = result.images.filter(isObject);
  const files = new Map(artifactsOf(task).map((file) => [file.name, file]));
  const shown = images.slice(0, MAX_SHOWN);
  const node = h('div', { class: 'rv-images' },
    pairs([
      ['Operation', String(result.operation ?? '—')],
      ['Format', String(result.format ?? '—')],
      ['Source', result.source === 'upload' ? 'uploaded images' : 'generated images'],
      ['Images', images.length],
    ]),
    h('ul', { class: 'files rv-gallery' }, shown.map((image) => item(image, files.get(image.file), task.id, fetchFile))),
    images.length > shown.length && note(`… ${formatNumber(images.length - shown.length)} more images (see Raw JSON)`));
  return { node, files: new Set(shown.map((image) => image.file).filter((name) => files.has(name))) };
}

function item(image, file, taskId, fetchFile) {
  const li = file ? artifactItems(taskId, [file], fetchFile)[0] : h('li', { class: 'thumb' },
    h('span', { class: 'file-name' }, String(image.file ?? '?')), h('span', { class: 'file-meta' }, 'file no longer stored'));
  const mode = [image.mode, image.format].filter(Boolean).join(' ');
  li.append(
    h('span', { class: 'file-meta rv-dims', 'data-size': `${image.width}x${image.height}` },
      `${formatNumber(image.width)} × ${formatNumber(image.height)} px${mode ? ` · ${mode}` : ''}`),
    h('span', { class: 'file-meta rv-origin', title: `${image.source ?? '?'}, ${(image.source_size ?? []).join(' × ')} px` },
      origin(image)));
  return li;
}

/** An upload's name (its size on hover), or a generated image's size. */
function origin(image) {
  const size = Array.isArray(image.source_size) ? image.source_size.map(formatNumber).join(' × ') : '?';
  return image.source === 'generated' ? `source ${size}` : `from ${image.source ?? '?'}`;
}
