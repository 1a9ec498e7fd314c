// Explanations: a user's effective policy (/admin/users/<id>/policy: each setting's value, the
// group that supplied it and the groups it overrode) and a session's lifetime
// (/admin/sessions/<id>: why it is alive, the rule that ends it, when and what happens then).
// Ids: #policy-groups, #policy-table ([data-row="<setting name>"]), #policy-filter,
// #session-facts, #session-explain, #session-reasons, #session-ending-rule, #session-ends-at,
// #session-action, #session-force-delete.

import { h, ui, api, page, facts, localList, valueShort, userLink, workspaces, workspaceLabel, badge, shortId } from './common.js';
import { stateBadge, forceDelete } from './sessions.js';

const enc = encodeURIComponent;

export async function policy(ctx) {
  const id = ctx.params.id;
  const [user, explained] = await Promise.all([
    api.get(`/users/${enc(id)}`, undefined, { signal: ctx.signal }).catch(() => ({ id, username: shortId(id) })),
    api.get(`/users/${enc(id)}/policy/explain`, undefined, { signal: ctx.signal }),
  ]);
  const groupLink = (g) => h('a', { href: `/admin/groups/${enc(g.group_id)}` }, `${g.name} (${g.priority})`);
  const table = localList({
    id: 'policy-table',
    placeholder: 'Filter settings',
    pageSize: 100,
    match: (s, t) => s.name.toLowerCase().includes(t),
    table: {
      rowKey: (s) => s.name,
      columns: [
        { key: 'name', label: 'Setting', render: (s) => h('code', s.name) },
        { key: 'value', label: 'Effective value', render: (s) => h('span', { class: 'cell-wrap' }, valueShort(s.value)) },
        { key: 'from', label: 'Supplied by', render: (s) => s.is_default || !(s.supplied_by || []).length ? badge(s.value ? 'default' : 'not set')
          : (s.supplied_by || []).flatMap((g, i) => [i ? ', ' : '', groupLink(g)]) },
        { key: 'overridden', label: 'Overridden', render: (s) => (s.overridden || []).length
          ? h('ul', { class: 'explain-list' }, s.overridden.map((o) => h('li', groupLink(o.group), `: ${valueShort(o.value)}`))) : '' },
      ],
    },
  });
  table.set(explained.settings || []);
  table.filter.id = 'policy-filter';
  return page(ctx, `Effective policy of ${user.username}`, [h('a', { class: 'button', href: `/admin/users/${enc(id)}` }, 'Back to the user')],
    h('section', { class: 'card' }, h('h2', 'Groups, strongest first'),
      h('ol', { id: 'policy-groups' }, (explained.groups || []).map((g) => h('li', groupLink(g)))),
      h('p', { class: 'muted' }, 'Each setting comes from the first group in this order that sets it, else the default. volume_mapping combines every group\'s value.')),
    h('section', { class: 'card' }, h('h2', 'Settings'), table.el));
}

export async function session(ctx) {
  const id = ctx.params.id;
  const [ex, images] = await Promise.all([
    api.get(`/sessions/${enc(id)}/explain`, undefined, { signal: ctx.signal }),
    workspaces().catch(() => []),
  ]);
  const s = ex.session || {};
  const w = images.find((x) => x.id === s.workspace_id);
  const ended = !ex.ending_rule;
  const actions = [];
  if (ctx.user.can('sessions.delete') && ui.stateName(s.observed_state) !== 'deleted') {
    actions.push(h('button', { type: 'button', id: 'session-force-delete', class: 'danger', onclick: (e) => forceDelete(e.currentTarget, s, () => ctx.app.navigate(location.pathname)) }, 'Force delete'));
  }
  actions.push(h('a', { class: 'button', href: '/admin/sessions' }, 'All sessions'));
  return page(ctx, `Session ${shortId(s.id)}`, actions,
    h('section', { class: 'card', id: 'session-explain' }, h('h2', 'Lifetime'),
      facts('session-lifetime', [
        ['Ending rule', h('span', { id: 'session-ending-rule' }, ended ? 'none (the session has ended)' : ex.ending_rule)],
        ['Ends at', h('span', { id: 'session-ends-at' }, ex.ends_at ? `${ui.formatDate(ex.ends_at)} (in ${ui.formatDuration((Date.parse(ex.ends_at) - Date.now()) / 1000)})` : '—')],
        ['Then', h('span', { id: 'session-action' }, ex.action || '—')],
      ]),
      h('ul', { id: 'session-reasons', class: 'explain-list' }, (ex.reasons || []).map((r) => h('li', r)))),
    h('section', { class: 'card' }, h('h2', 'Session'),
      facts('session-facts', [
        ['Id', h('code', s.id)], ['User', userLink(s.user_id)],
        ['Workspace', w ? h('a', { href: `/admin/workspaces/${enc(w.id)}` }, workspaceLabel(w)) : h('code', s.image || s.workspace_id)],
        ['Image', h('code', s.image)], ['State', [stateBadge(s.observed_state), ` (desired: ${ui.stateName(s.desired_state)}, progress ${s.progress}%)`]],
        ['Message', s.message], ['Generation', String(s.generation)], ['Agent', s.agent_id], ['Zone', s.zone_id],
        ['Address', s.host ? `${s.host}:${s.port}` : ''], ['URL', s.url],
        ['Created', ui.formatDate(s.created_at)], ['Started', ui.formatDate(s.started_at)],
        ['Last keepalive', ui.formatDate(s.last_keepalive_at)], ['Expires', ui.formatDate(s.expires_at)], ['Updated', ui.formatDate(s.updated_at)],
      ])));
}
