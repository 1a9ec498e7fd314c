// What the admin pages share: the admin stylesheet, paged and filterable lists, setting values,
// names for ids (users, groups, workspaces), and small formatting helpers. Loaded lazily with
// the first admin page; nothing outside js/admin/ imports it.

import { h, mount } from '../dom.js';
import * as ui from '../components.js';
import * as api from '../api.js';

// ---- the admin stylesheet (css/admin.css), added once -----------------------------------

export function loadStyles() {
  if (document.getElementById('admin-css')) return;
  const app = document.querySelector('link[rel=stylesheet][href*="/css/app.css"]');
  const href = app ? app.getAttribute('href').replace('/css/app.css', '/css/admin.css') : '/ui/dev/css/admin.css';
  document.head.append(h('link', { id: 'admin-css', rel: 'stylesheet', href }));
}

// ---- page furniture ---------------------------------------------------------------------

// The admin section's own navigation (a row of links under the title), for the sections the
// user may see.
export const SECTIONS = [
  { id: 'users', label: 'Users', path: '/admin/users', permission: 'users.view' },
  { id: 'groups', label: 'Groups', path: '/admin/groups', permission: 'groups.view' },
  { id: 'workspaces', label: 'Workspaces', path: '/admin/workspaces', permission: 'workspaces.view' },
  { id: 'zones', label: 'Zones', path: '/admin/zones', permission: 'zones.view' },
  { id: 'agents', label: 'Agents', path: '/admin/agents', permission: 'agents.view' },
  { id: 'sessions', label: 'Sessions', path: '/admin/sessions', permission: 'sessions.view' },
  { id: 'audit', label: 'Audit log', path: '/admin/audit', permission: 'audit.view' },
  { id: 'reports', label: 'Usage reports', path: '/admin/reports', permission: 'reports.view' },
];

export function sectionNav(user) {
  const here = location.pathname;
  return h('nav', { id: 'admin-nav', class: 'admin-nav', 'aria-label': 'Administration' },
    h('ul', SECTIONS.filter((s) => user.can(s.permission)).map((s) => h('li',
      h('a', { id: `admin-nav-${s.id}`, href: s.path, 'aria-current': here.startsWith(s.path) ? 'page' : undefined }, s.label)))));
}

// A page: the section navigation, the title with its actions, then the content.
export function page(ctx, title, actions, ...content) {
  loadStyles();
  return h('div', { class: 'admin' }, sectionNav(ctx.user), ui.pageHeader(title, ...(actions || [])), content);
}

export function badge(text, kind = '') {
  return h('span', { class: ['badge', kind && `badge-${kind}`] }, text);
}

export function yesNo(value) {
  return value ? 'yes' : 'no';
}

// A definition list of [label, value] pairs (values: text or nodes).
export function facts(id, pairs) {
  return h('dl', { id, class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v === '' || v === undefined || v === null ? '—' : v)]));
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '—';
}

// ---- paged, filterable lists ------------------------------------------------------------

// A list fed page by page from the API.
//   load(pageQuery, signal) -> { rows, next } where pageQuery = {'page.page_size', 'page.page_token'}
//   table: ui.table options without rows.
// Returns { el, reload() }: reload() starts again at the first page (call it after changing
// filters). Previous/next buttons walk the pages; #<id>-pager, #<id>-prev, #<id>-next,
// #<id>-status.
export function pagedList({ id, load, table, pageSize = 50, signal }) {
  const tokens = [''];
  let index = 0;
  let next = '';
  const body = h('div', { id: `${id}-body` });
  const status = h('span', { id: `${id}-status`, class: 'muted', role: 'status' });
  const prev = h('button', { type: 'button', id: `${id}-prev`, class: 'small', onclick: () => go(index - 1) }, '← Previous');
  const nextBtn = h('button', { type: 'button', id: `${id}-next`, class: 'small', onclick: () => go(index + 1) }, 'Next →');
  const size = h('select', { id: `${id}-size`, 'aria-label': 'Rows per page', onchange: () => { pageSize = Number(size.value); reload(); } },
    [25, 50, 100, 200].map((n) => h('option', { value: String(n), selected: n === pageSize }, `${n} per page`)));
  const pager = h('div', { id: `${id}-pager`, class: 'pager' }, prev, status, nextBtn, size);
  let seq = 0;

  async function go(to) {
    if (to < 0 || (to > index && !next)) return;
    if (to > index) tokens[to] = next;
    const mine = ++seq;
    prev.disabled = true; nextBtn.disabled = true;
    mount(body, ui.spinner());
    try {
      const out = await load({ 'page.page_size': pageSize, 'page.page_token': tokens[to] || undefined }, signal);
      if (mine !== seq) return;
      index = to;
      next = out.next || '';
      mount(body, ui.table({ id, ...table, rows: out.rows }));
      status.textContent = out.rows.length
        ? `Page ${index + 1} · ${out.rows.length} row${out.rows.length === 1 ? '' : 's'}${next ? '' : ' (last page)'}`
        : `Page ${index + 1}`;
    } catch (err) {
      if (mine !== seq || (err && err.name === 'AbortError')) return;
      mount(body, h('p', { id: `${id}-error`, class: 'message message-error', role: 'alert' }, ui.errorText(err)));
      status.textContent = '';
    } finally {
      if (mine === seq) {
        prev.disabled = index === 0;
        nextBtn.disabled = !next;
      }
    }
  }
  function reload() { tokens.length = 1; index = 0; next = ''; return go(0); }
  return { el: h('div', { class: 'paged' }, body, pager), reload };
}

// A list held whole in the page (the API answers it unpaged), filtered by `match(row, text)`
// and shown page by page. Returns { el, set(rows), filter }.
export function localList({ id, table, match, pageSize = 50, placeholder = 'Filter' }) {
  let rows = [];
  let index = 0;
  const body = h('div', { id: `${id}-body` });
  const status = h('span', { id: `${id}-status`, class: 'muted', role: 'status' });
  const filter = h('input', { id: `${id}-filter`, type: 'search', placeholder, 'aria-label': placeholder, oninput: () => { index = 0; draw(); } });
  const prev = h('button', { type: 'button', id: `${id}-prev`, class: 'small', onclick: () => { index -= 1; draw(); } }, '← Previous');
  const nextBtn = h('button', { type: 'button', id: `${id}-next`, class: 'small', onclick: () => { index += 1; draw(); } }, 'Next →');
  function draw() {
    const text = filter.value.trim().toLowerCase();
    const shown = text ? rows.filter((r) => match(r, text)) : rows;
    const pages = Math.max(1, Math.ceil(shown.length / pageSize));
    index = Math.min(Math.max(0, index), pages - 1);
    mount(body, ui.table({ id, ...table, rows: shown.slice(index * pageSize, (index + 1) * pageSize) }));
    status.textContent = `${shown.length} of ${rows.length} · page ${index + 1} of ${pages}`;
    prev.disabled = index === 0;
    nextBtn.disabled = index >= pages - 1;
  }
  return {
    el: h('div', { class: 'paged' }, h('div', { class: 'toolbar' }, h('div', { class: 'field' }, filter)), body,
      h('div', { class: 'pager' }, prev, status, nextBtn)),
    set(list) { rows = list || []; draw(); },
    filter,
  };
}

// A filter form: fields, then Apply and Reset. onApply(values) runs on submit and on reset.
export function filterForm(id, fields, onApply) {
  const form = h('form', { id, class: 'toolbar filters', role: 'search' }, fields,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: `${id}-apply`, class: 'primary' }, 'Apply'),
      h('button', { type: 'reset', id: `${id}-reset` }, 'Reset')));
  form.addEventListener('submit', (e) => { e.preventDefault(); onApply(values(form)); });
  form.addEventListener('reset', () => setTimeout(() => onApply(values(form)), 0));
  return form;
}

function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else out[el.name] = el.value.trim();
  }
  return out;
}

// ---- names for ids ----------------------------------------------------------------------

const names = { users: new Map(), groups: null, workspaces: null, zones: null };

// A user's name for an id (cached). Unknown or unreadable: the short id.
export async function userName(id) {
  if (!id) return '—';
  if (!names.users.has(id)) {
    names.users.set(id, api.get(`/users/${encodeURIComponent(id)}`).then((u) => u.username).catch(() => shortId(id)));
  }
  return names.users.get(id);
}

// A link to a user's page whose text becomes the username once known.
export function userLink(id) {
  if (!id) return '—';
  const a = h('a', { href: `/admin/users/${encodeURIComponent(id)}`, title: id }, shortId(id));
  userName(id).then((n) => { a.textContent = n; });
  return a;
}

// The user id for `text`: an id is taken as it is; a username is looked up (exact, any case).
// Rejects with an ApiError naming `field` when nobody has that name.
export async function findUser(text, field = 'user') {
  const t = String(text || '').trim();
  if (!t || /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(t)) return t;
  const found = await api.get('/users', { username_contains: t, 'page.page_size': 100 });
  const match = (found.users || []).find((u) => u.username.toLowerCase() === t.toLowerCase());
  if (!match) throw new api.ApiError(404, 'not_found', `No user is called "${t}".`, field);
  return match.id;
}

// Every page of a list route, up to `max` rows.
export async function all(path, key, query = {}, max = 5000) {
  const out = [];
  let token = '';
  do {
    const res = await api.get(path, { ...query, 'page.page_size': 1000, 'page.page_token': token || undefined });
    out.push(...(res[key] || []));
    token = (res.page && res.page.next_page_token) || '';
  } while (token && out.length < max);
  return out;
}

export function groups(fresh = false) {
  if (!names.groups || fresh) names.groups = all('/groups', 'groups').catch((e) => { names.groups = null; throw e; });
  return names.groups;
}

export function workspaces(fresh = false) {
  if (!names.workspaces || fresh) {
    names.workspaces = all('/workspaces', 'workspaces', { include_disabled: true }).catch((e) => { names.workspaces = null; throw e; });
  }
  return names.workspaces;
}

export function zones(fresh = false) {
  if (!names.zones || fresh) names.zones = api.get('/zones').then((r) => r.zones || []).catch((e) => { names.zones = null; throw e; });
  return names.zones;
}

export function workspaceLabel(w) {
  return w ? (w.friendly_name || w.name) : '—';
}

// ---- setting values ---------------------------------------------------------------------

// A SettingValue ({bool_value} | {int_value} | …) as text for people and for inputs.
export function valueText(value) {
  if (!value) return '';
  if ('bool_value' in value) return value.bool_value ? 'true' : 'false';
  if ('int_value' in value) return String(value.int_value);
  if ('float_value' in value) return String(value.float_value);
  if ('string_value' in value) return value.string_value;
  if ('json_value' in value) {
    try { return JSON.stringify(JSON.parse(value.json_value), null, 2); } catch (e) { return value.json_value; }
  }
  return '';
}

// One line, for tables.
export function valueShort(value) {
  if (!value) return 'not set';
  if ('json_value' in value) return value.json_value;
  const t = valueText(value);
  return t === '' ? '""' : t;
}

// "Keepalive expiration" the way api.js names a field, so its prefix can be taken off again.
function fieldLabel(field) {
  const last = String(field).split('.').pop().replace(/\[\d+\]$/, '').replace(/_/g, ' ');
  return last.charAt(0).toUpperCase() + last.slice(1);
}

// The server's own message for a refused field: "<field>: <reason>" with the field's real
// name (api.js turns it into a label for people; settings are known by their names).
export function fieldMessage(err, name) {
  if (!err || err.name !== 'ApiError') return ui.errorText(err);
  const field = err.field || name;
  let reason = err.message || '';
  if (err.field) {
    const label = `${fieldLabel(err.field)}: `;
    if (reason.startsWith(label)) reason = reason.slice(label.length);
  }
  if (!err.field && !name) return ui.errorText(err);
  return `${field}: ${reason}`;
}

// ---- files ------------------------------------------------------------------------------

// Offers `text` as a download named `filename` (a Blob and an object URL; no inline code).
export function download(filename, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}

// RFC 4180 CSV from an array of arrays.
export function csv(rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    // A leading =, +, - or @ would be a formula in a spreadsheet: quote it with a tick.
    const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

// ---- time -------------------------------------------------------------------------------

// <input type=datetime-local> value -> RFC 3339 (UTC), or undefined.
export function isoFromLocal(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function hours(seconds) {
  return (Number(seconds || 0) / 3600).toFixed(2);
}

export { h, mount, ui, api };
