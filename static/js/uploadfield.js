// The control of an `uploads` parameter: a file input whose files are each POSTed to /api/uploads
// as soon as they are chosen and listed with size and state; the ids they got are its value.

import { h, setAttr, setText } from './dom.js';
import { formatBytes } from './format.js';

const ACCEPT = { csv: '.csv,text/csv,text/plain', image: 'image/*' };
// A browser may give a CSV file no type; the server checks the bytes against the type either way.
const FALLBACK_TYPE = { csv: 'text/csv', image: 'application/octet-stream' };
const KIND_NAMES = { csv: 'a CSV file', image: 'an image' };

/** @typedef {{file: File, id: string|null, state: string, li: HTMLElement, done: Promise<void>}} Entry */

export class UploadField {
  /**
   * @param {{kind: string, max_items: number}} p the parameter's schema
   * @param {(file: File, type: string) => Promise<{id: string, kind: string}>} upload
   */
  constructor(name, p, upload) {
    Object.assign(this, { name, kind: p.kind, single: p.max_items === 1, upload });
    /** @type {Set<Entry>} */
    this.entries = new Set();
    this.picker = h('input', { id: `param-${name}`, name, type: 'file', accept: ACCEPT[p.kind], multiple: !this.single });
    this.list = h('ul', { class: 'upload-list' });
    this.el = h('div', { class: 'upload-field' }, this.picker, this.list);
    this.picker.addEventListener('change', () => {
      const files = [...this.picker.files];
      this.picker.value = ''; // choosing the same file again is a change too
      if (this.single) for (const entry of this.entries) this.remove(entry);
      for (const file of this.single ? files.slice(0, 1) : files) this.add(file);
    });
  }

  add(file) {
    const state = h('span', { class: 'upload-state', role: 'status' });
    const remove = h('button', { type: 'button', class: 'icon-button small', 'aria-label': `Remove ${file.name}`, title: 'Remove' }, '✕');
    const li = h('li', { class: 'upload' },
      h('span', { class: 'upload-name' }, file.name), h('span', { class: 'upload-size' }, formatBytes(file.size)), state, remove);
    const entry = { file, id: null, state: '', li };
    remove.addEventListener('click', () => this.remove(entry));
    this.setState(entry, 'uploading', 'uploading…');
    entry.done = this.send(entry);
    this.entries.add(entry);
    this.list.append(li);
  }

  async send(entry) {
    try {
      const saved = await this.upload(entry.file, entry.file.type || FALLBACK_TYPE[this.kind]);
      // The server takes CSV and images alike; a file of the other kind would only be refused on submit.
      if (saved.kind !== this.kind) throw new Error(`this is ${KIND_NAMES[saved.kind]}, not ${KIND_NAMES[this.kind]}`);
      entry.id = saved.id;
      this.setState(entry, 'done', '✓');
    } catch (error) {
      this.setState(entry, 'error', error.status ? `${error.status}: ${error.detail}` : error.detail ?? error.message);
    }
  }

  setState(entry, state, text) {
    entry.state = state;
    setAttr(entry.li, 'data-state', state);
    setText(entry.li.querySelector('.upload-state'), text);
  }

  remove(entry) {
    this.entries.delete(entry); // an upload still running finishes unseen; its id is never used
    entry.li.remove();
  }

  get pending() {
    return [...this.entries].filter((entry) => entry.state === 'uploading').length;
  }

  settled() {
    return Promise.all([...this.entries].map((entry) => entry.done));
  }

  /** The upload ids; undefined (the server's default, none) without files. */
  read() {
    const entries = [...this.entries];
    const refuse = (message) => { throw Object.assign(new Error(message), { field: this.name }); };
    if (entries.some((entry) => entry.state === 'error')) refuse('remove the files that could not be uploaded');
    if (entries.some((entry) => entry.state === 'uploading')) refuse('files are still uploading');
    return entries.length ? entries.map((entry) => entry.id) : undefined;
  }
}
