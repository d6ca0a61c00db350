// A tiny element builder. Text always becomes text nodes: nothing here ever parses HTML.

/** Properties rather than attributes: their attribute only sets the initial value. */
const PROPERTIES = new Set(['value', 'checked']);

/**
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs] `class`, `dataset`, `on<event>` handlers, properties, attributes
 * @param {...(Node|string|number|null|undefined|false|Array<unknown>)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Sets text only when it differs, so unchanged cells cause no mutation (and no repaint); an element
 * holding one text node keeps it (its data changes): no node removed and inserted, to restyle and
 * lay out anew.
 */
export function setText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  const only = el.firstChild;
  if (only !== null && only === el.lastChild && only.nodeType === Node.TEXT_NODE) {
    if (only.data !== value) only.data = value;
  } else if (el.textContent !== value) el.textContent = value;
}

export function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}
