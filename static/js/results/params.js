// A task's parameters made readable: labelled with their schema titles (the identifier and the
// description on hover), uploads by their files' names (GET /api/uploads/{id}, asked once per id),
// sizes as width × height, values equal to the default marked; anything else through the generic view.

import { h, setAttr, setText } from '../dom.js';
import { formatBytes, shortId } from '../format.js';
import { labelOf } from '../form.js';
import { isObject } from './figures.js';
import { genericView } from './generic.js';
import { longText } from './parts.js';

const TEXT_SHOWN = 300;
const MAX_UPLOADS = 50;

export class ParameterView {
  /** @param {((id: string) => Promise<{filename: string, size: number}>)|null} lookup an upload's description */
  constructor(lookup) {
    this.lookup = lookup;
    this.uploads = new Map(); // id → the promise of its description (null: not stored any more)
  }

  /**
   * @param {Record<string, unknown>} parameters
   * @param {{parameters?: Record<string, object>}|undefined} type the task type from /api/task-types
   * @returns {{node: Node, named: Promise<void>}} `named` settles once every upload shown has its name (or none)
   */
  render(parameters, type) {
    this.lookups = [];
    const node = this.table(parameters, type);
    return { node, named: Promise.all(this.lookups).then(() => {}) };
  }

  table(parameters, type) {
    if (!isObject(parameters)) return genericView(parameters);
    const schema = isObject(type?.parameters) ? type.parameters : {};
    const names = [...Object.keys(schema).filter((name) => name in parameters),
      ...Object.keys(parameters).filter((name) => !(name in schema))];
    if (!names.length) return h('p', { class: 'rv-note' }, 'No parameters.');
    return h('table', { class: 'rv-table rv-pairs rv-params' }, h('tbody', {}, names.map((name) => {
      const p = schema[name] ?? {};
      const hint = p.description ? `${name}: ${p.description}` : name;
      return h('tr', { 'data-param': name },
        h('th', { scope: 'row', title: hint }, labelOf(name, p)),
        h('td', {}, this.value(parameters[name], p),
          isDefault(parameters[name], p) && h('span', { class: 'rv-default' }, ' (default)')));
    })));
  }

  value(value, p) {
    if (p.type === 'uploads') return this.files(value);
    if (p.type === 'size' && Array.isArray(value) && value.length === 2) return `${value[0]} × ${value[1]}`;
    if (value === '') return h('span', { class: 'rv-missing' }, 'empty');
    if (typeof value === 'string') return value.length > 80 ? longText(value, TEXT_SHOWN) : h('span', { class: 'rv-str' }, value);
    if (typeof value === 'number') return String(value); // as given: the user typed it
    if (typeof value === 'boolean') return value ? 'yes' : 'no';
    return genericView(value);
  }

  /** Upload ids as file names: the id first, the name once the server has said it. */
  files(value) {
    const ids = (typeof value === 'string' ? [value] : Array.isArray(value) ? value : [])
      .filter((id) => typeof id === 'string');
    if (!ids.length) return h('span', { class: 'rv-missing' }, 'none');
    const more = ids.length - MAX_UPLOADS;
    return h('ul', { class: 'rv-uploads' }, ids.slice(0, MAX_UPLOADS).map((id) => h('li', {}, this.file(id))),
      more > 0 && h('li', { class: 'rv-more' }, `… ${more} more`));
  }

  file(id) {
    const el = h('span', { class: 'rv-upload', 'data-upload': id, title: `upload ${id}` }, `${shortId(id)}…`);
    if (!this.lookup) return el;
    if (!this.uploads.has(id)) {
      // a 404 is final; any other failure (the server unreachable) is asked again next time
      this.uploads.set(id, this.lookup(id).catch((error) => (error.status === 404 ? null : this.forget(id))));
    }
    this.lookups.push(this.uploads.get(id).then((upload) => {
      if (upload === undefined) return;
      if (upload === null) {
        setAttr(el, 'data-state', 'missing');
        return setText(el, `${shortId(id)}… (no longer stored)`);
      }
      setAttr(el, 'data-state', 'named');
      setText(el, upload.filename);
      if (Number.isFinite(upload.size)) el.append(h('span', { class: 'file-meta' }, ` ${formatBytes(upload.size)}`));
    }));
    return el;
  }

  forget(id) {
    this.uploads.delete(id);
    return undefined;
  }
}

/** Whether `value` is the parameter's default (compared as JSON: a list equals an equal list). */
function isDefault(value, p) {
  if (!('default' in p)) return false;
  return JSON.stringify(value) === JSON.stringify(p.default);
}
