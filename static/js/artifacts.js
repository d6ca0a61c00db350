// The files a task produced (`result_data.artifacts`): images as thumbnails that open the full file,
// anything else as a download link with its size. Names go in as text and, encoded, in the URL.

import { h } from './dom.js';
import { formatBytes } from './format.js';

/**
 * @typedef {{name: string, size: number, content_type: string}} Artifact
 * @param {string} taskId
 * @param {Artifact[]} files
 */
export function artifactItems(taskId, files) {
  return files.map((file) => {
    const url = `/api/tasks/${encodeURIComponent(taskId)}/artifacts/${encodeURIComponent(file.name)}`;
    const meta = h('span', { class: 'file-meta' }, formatBytes(file.size));
    if (String(file.content_type).startsWith('image/')) {
      return h('li', { class: 'thumb' },
        h('a', { href: url, target: '_blank', rel: 'noopener', title: `${file.name}: open full size` },
          h('img', { src: url, alt: file.name, loading: 'lazy', decoding: 'async' })),
        h('span', { class: 'file-name' }, file.name), meta);
    }
    return h('li', { class: 'download' }, h('a', { href: url, download: file.name }, file.name), meta);
  });
}

/** The artifacts listed in a task's result, or none: older results and other tasks have no list. */
export function artifactsOf(task) {
  const files = task.result_data?.artifacts;
  return Array.isArray(files) ? files : [];
}
