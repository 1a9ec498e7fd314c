// The audit log (/admin/audit): identity's trail (users, sign-ins, keys) or policy's (groups,
// settings, workspaces, mappings), newest first, filtered and paged.
// Ids: #audit-filter (#audit-source, #audit-kind, #audit-user, #audit-since, #audit-until,
// #audit-target, #audit-actor), #audit-table ([data-row="<event id>"]).

import { h, ui, api, page, pagedList, filterForm, userLink, isoFromLocal, findUser } from './common.js';

function actor(a) {
  const m = /^user:(.+)$/.exec(a || '');
  return m ? userLink(m[1]) : (a || '—');
}

function target(t) {
  const m = /^(group|workspace|user):(.+)$/.exec(t || '');
  if (!m) return t || '—';
  if (m[1] === 'user') return userLink(m[2]);
  return h('a', { href: `/admin/${m[1]}s/${encodeURIComponent(m[2])}` }, t);
}

function detail(d) {
  if (!d) return '';
  try { return JSON.stringify(JSON.parse(d)); } catch (e) { return d; }
}

export function list(ctx) {
  let filters = { source: ctx.query.get('source') || 'policy', user_id: ctx.query.get('user_id') || '' };
  const table = pagedList({
    id: 'audit-table',
    signal: ctx.signal,
    load: async (q, signal) => {
      const query = { ...q, kind: filters.kind, user_id: filters.user_id, since: isoFromLocal(filters.since), until: isoFromLocal(filters.until) };
      if (filters.source === 'policy') { query.target = filters.target; query.actor = filters.actor; }
      const res = await api.get(`/audit/${filters.source === 'identity' ? 'identity' : 'policy'}`, query, { signal });
      return { rows: res.events || [], next: res.page && res.page.next_page_token };
    },
    table: {
      rowKey: (e) => e.id,
      empty: 'No events match.',
      columns: [
        { key: 'at', label: 'When', render: (e) => ui.formatDate(e.at) },
        { key: 'kind', label: 'Event', render: (e) => h('code', e.kind) },
        { key: 'actor', label: 'By', render: (e) => actor(e.actor) },
        { key: 'user', label: 'User', render: (e) => e.user_id ? userLink(e.user_id) : '' },
        { key: 'target', label: 'Target', render: (e) => target(e.target) },
        { key: 'detail', label: 'Detail', render: (e) => h('code', { class: 'cell-wrap' }, detail(e.detail)) },
      ],
    },
  });
  const source = ui.select({ id: 'audit-source', name: 'source', label: 'Trail', value: filters.source,
    options: [{ value: 'policy', label: 'Policy: groups, settings, workspaces' }, { value: 'identity', label: 'Identity: users, sign-ins, keys' }] });
  const policyOnly = [
    ui.field({ id: 'audit-target', name: 'target', label: 'Target (e.g. group:<id>)' }),
    ui.field({ id: 'audit-actor', name: 'actor', label: 'Actor (e.g. user:<id>)' }),
  ];
  const sync = () => policyOnly.forEach((f) => { f.hidden = source.input.value !== 'policy'; });
  source.input.addEventListener('change', sync);
  sync();
  const form = filterForm('audit-filter', [
    source,
    ui.field({ id: 'audit-kind', name: 'kind', label: 'Event kind (e.g. setting.set)' }),
    ui.field({ id: 'audit-user', name: 'user_id', label: 'User (username or id)', value: filters.user_id }),
    ui.field({ id: 'audit-since', name: 'since', label: 'Since', type: 'datetime-local' }),
    ui.field({ id: 'audit-until', name: 'until', label: 'Until', type: 'datetime-local' }),
    policyOnly,
  ], async (v) => {
    sync();
    try { v.user_id = await findUser(v.user_id, 'user_id'); } catch (err) { ui.toast(ui.errorText(err), 'error'); return; }
    filters = v;
    table.reload();
  });
  table.reload();
  return page(ctx, 'Audit log', [], form, table.el);
}
