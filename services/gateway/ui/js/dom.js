// A tiny element builder. No HTML strings anywhere: text is always text.
//
//   h('button', { id: 'x', class: 'primary', onclick: fn, 'aria-label': 'Close' }, 'Close')
//   h('input', { type: 'checkbox', checked: true, dataset: { setting: 'theme' } })
//
// Attributes: `class` (string or array), `style` is refused (the CSP forbids inline style; use
// classes), functions under `on…` become listeners, `dataset` fills data-*, booleans set or
// omit the attribute, properties that are not attributes (value, checked, selected…) are set
// as properties. Children: strings, numbers, nodes, arrays, and null/false/undefined (skipped).

const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'indeterminate', 'htmlFor']);

export function h(tag, attrs, ...children) {
  const svg = tag === 'svg' || tag === 'path' || tag === 'rect';
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      const names = Array.isArray(value) ? value.filter(Boolean) : String(value).split(/\s+/).filter(Boolean);
      el.classList.add(...names);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = v;
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'style') {
      throw new Error('inline style is not allowed (CSP): use a class');
    } else if (key === 'for') {
      el.setAttribute('for', value);
    } else if (PROPS.has(key) && !svg) {
      el[key] = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === true) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces an element's children.
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// A unique id for label/input pairs when the caller gives none.
let counter = 0;
export function uid(prefix = 'f') {
  counter += 1;
  return `${prefix}-${counter}`;
}
