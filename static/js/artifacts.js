// The files a task produced (`result_data.artifacts`): images as thumbnails that open the full file,
// anything else as a download link with its size. Names go in as text and, encoded, in the URL.
// With an API token an <img> or a link cannot authenticate: the files are then fetched (with the
// token) as blobs when they scroll into view, and shown from object URLs.

import { artifactUrl } from './api.js';
import { h } from './dom.js';
import { formatBytes } from './format.js';

/**
 * @typedef {{name: string, size: number, content_type: string}} Artifact
 * @typedef {(name: string) => Promise<string>} FetchFile an object URL of the file, fetched with the token
 * @param {string} taskId
 * @param {Artifact[]} files
 * @param {FetchFile|null} [fetchFile] only when the server wants a token
 */
export function artifactItems(taskId, files, fetchFile = null) {
  return files.map((file) => {
    const url = artifactUrl(taskId, file.name);
    const meta = h('span', { class: 'file-meta' }, formatBytes(file.size));
    if (String(file.content_type).startsWith('image/')) {
      const img = h('img', { src: fetchFile ? null : url, alt: file.name, loading: 'lazy', decoding: 'async' });
      const link = h('a', { href: url, target: '_blank', rel: 'noopener', title: `${file.name}: open full size` }, img);
      if (fetchFile) {
        whenVisible(img, () => fetchFile(file.name).then((objectUrl) => {
          img.src = objectUrl;
          link.href = objectUrl;
        }, () => img.setAttribute('data-state', 'error')));
      }
      return h('li', { class: 'thumb' }, link, h('span', { class: 'file-name' }, file.name), meta);
    }
    const link = h('a', { href: url, download: file.name }, file.name);
    if (fetchFile) link.addEventListener('click', (event) => download(event, fetchFile, file.name));
    return h('li', { class: 'download' }, link, meta);
  });
}

/** The artifacts listed in a task's result, or none: older results and other tasks have no list. */
export function artifactsOf(task) {
  const files = task.result_data?.artifacts;
  return Array.isArray(files) ? files : [];
}

/** Calls `fn` once `el` comes near the viewport, as loading="lazy" would load it. */
function whenVisible(el, fn) {
  const observer = new IntersectionObserver((entries) => {
    if (!entries.some((entry) => entry.isIntersecting)) return;
    observer.disconnect();
    fn();
  }, { rootMargin: '200px' });
  observer.observe(el);
}

async function download(event, fetchFile, name) {
  event.preventDefault();
  const objectUrl = await fetchFile(name).catch(() => null);
  if (objectUrl) h('a', { href: objectUrl, download: name }).click();
}
