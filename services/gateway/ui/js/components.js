// Building blocks every page uses: labelled fields, forms that report errors as sentences,
// tables, toasts (aria-live), a confirm dialog, and formatting.

import { h, uid, mount } from './dom.js';

// ---- feedback ---------------------------------------------------------------------------

// A short message in the corner, read out by screen readers. kind: 'ok' | 'error' | 'info'.
export function toast(message, kind = 'info', ms = 5000) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'toast' },
    h('span', message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  region.append(item);
  if (ms) setTimeout(() => item.remove(), kind === 'error' ? ms * 2 : ms);
}

// An inline message box (aria-live) that a form or page updates: box.show(text, kind), box.clear().
export function messageBox(id) {
  const el = h('div', { id, class: 'message', role: 'status', 'aria-live': 'polite', hidden: true });
  el.show = (text, kind = 'error') => {
    el.className = `message message-${kind}`;
    el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    mount(el, text);
    el.hidden = !text;
  };
  el.clear = () => { el.hidden = true; el.replaceChildren(); };
  return el;
}

// A modal confirmation. Resolves true when confirmed.
export function confirmDialog(message, { confirm = 'Confirm', cancel = 'Cancel', danger = false } = {}) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-text', id: 'confirm-dialog' },
      h('p', { id: 'dialog-text' }, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'confirm-cancel', onclick: () => dialog.close('cancel') }, cancel),
        h('button', { type: 'button', id: 'confirm-ok', class: danger ? 'danger' : 'primary', onclick: () => dialog.close('ok') }, confirm)));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(dialog.returnValue === 'ok'); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---- forms ------------------------------------------------------------------------------

// A labelled input. opts: id, label, type, value, required, autocomplete, help, placeholder,
// attrs (extra input attributes). Returns the wrapper; .input is the control.
export function field(opts) {
  const id = opts.id || uid('field');
  const helpId = opts.help ? `${id}-help` : undefined;
  const tag = opts.type === 'textarea' ? 'textarea' : 'input';
  const input = h(tag, {
    id, name: opts.name || id,
    type: tag === 'input' ? (opts.type || 'text') : undefined,
    value: opts.value ?? '',
    required: opts.required, autocomplete: opts.autocomplete, placeholder: opts.placeholder,
    'aria-describedby': helpId, ...(opts.attrs || {}),
  });
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, opts.label),
    input,
    opts.help ? h('small', { id: helpId, class: 'help' }, opts.help) : null);
  wrap.input = input;
  return wrap;
}

export function checkbox(opts) {
  const id = opts.id || uid('check');
  const input = h('input', { id, type: 'checkbox', checked: !!opts.checked, name: opts.name || id, ...(opts.attrs || {}) });
  const wrap = h('div', { class: 'field check' }, input, h('label', { for: id }, opts.label),
    opts.help ? h('small', { class: 'help' }, opts.help) : null);
  wrap.input = input;
  return wrap;
}

// options: [{value, label}]
export function select(opts) {
  const id = opts.id || uid('select');
  const input = h('select', { id, name: opts.name || id },
    opts.options.map((o) => h('option', { value: o.value, selected: o.value === opts.value }, o.label)));
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), input,
    opts.help ? h('small', { class: 'help' }, opts.help) : null);
  wrap.input = input;
  return wrap;
}

// Runs `action` when the form is submitted: disables the submit button meanwhile, shows the
// error sentence in `box` (a messageBox), marks the field the server named as invalid.
// `action` may return a success message for the box.
export function onSubmit(form, box, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = Array.from(form.querySelectorAll('button[type=submit]'));
    buttons.forEach((b) => { b.disabled = true; b.setAttribute('aria-busy', 'true'); });
    form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    if (box) box.clear();
    try {
      const done = await action(new FormData(form));
      if (done && box) box.show(done, 'ok');
    } catch (err) {
      if (box) box.show(errorText(err), 'error');
      else toast(errorText(err), 'error');
      markField(form, err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; b.removeAttribute('aria-busy'); });
    }
  });
}

function markField(form, err) {
  if (!err || !err.field) return;
  const name = String(err.field).split('.').pop();
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
}

// display_ui_errors: sentences also name the error's code and HTTP status.
let detailed = false;
export function setDetailedErrors(on) { detailed = !!on; }

// The sentence for any thrown value: never a stack trace.
export function errorText(err) {
  if (!err) return 'Something went wrong.';
  if (err.name === 'ApiError') {
    return detailed && (err.code || err.status) ? `${err.message} (${[err.code, err.status ? `HTTP ${err.status}` : ''].filter(Boolean).join(', ')})` : err.message;
  }
  if (err.name === 'AbortError') return 'Cancelled.';
  console.error(err);
  return 'Something went wrong in the page. Reload it and try again.';
}

// Runs an action from a button, with busy state and a toast for the outcome.
export async function act(button, action, success) {
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
  try {
    const result = await action();
    if (success) toast(typeof success === 'function' ? success(result) : success, 'ok');
    return result;
  } catch (err) {
    toast(errorText(err), 'error');
    return undefined;
  } finally {
    if (button && button.isConnected) { button.disabled = false; button.removeAttribute('aria-busy'); }
  }
}

// ---- tables -----------------------------------------------------------------------------

// columns: [{key, label, render?(row) -> node|string, class?}]; rows: objects.
// opts: id, caption, empty (text when no rows), rowKey (row -> value of data-row).
export function table({ id, caption, columns, rows, empty = 'Nothing to show.', rowKey }) {
  if (!rows || rows.length === 0) {
    return h('p', { id, class: 'empty' }, empty);
  }
  return h('div', { class: 'table-wrap' },
    h('table', { id },
      caption ? h('caption', caption) : null,
      h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', rows.map((row) => h('tr', { dataset: rowKey ? { row: rowKey(row) } : undefined },
        columns.map((c) => h('td', { class: c.class, 'data-label': c.label },
          c.render ? c.render(row) : String(row[c.key] ?? ''))))))));
}

// ---- page furniture -----------------------------------------------------------------------

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' }, h('h1', { id: 'page-title', tabindex: '-1' }, title),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

export function spinner(label = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spin', 'aria-hidden': 'true' }), label);
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', title) : null, children);
}

// ---- formatting -------------------------------------------------------------------------

export function formatDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}

export function formatDuration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const h_ = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h_) return `${h_} h ${String(m).padStart(2, '0')} min`;
  if (m) return `${m} min ${String(s).padStart(2, '0')} s`;
  return `${s} s`;
}

export function formatHours(seconds) {
  return `${(Math.max(0, seconds) / 3600).toFixed(2)} h`;
}

// "OBSERVED_STATE_RUNNING" -> "running"
export function stateName(value) {
  return String(value || '').replace(/^[A-Z]+_STATE_/, '').toLowerCase() || 'unknown';
}
