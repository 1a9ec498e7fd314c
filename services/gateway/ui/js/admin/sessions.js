// All sessions (/admin/sessions): everyone's, filtered by user, workspace, agent and state,
// paged; explain (/admin/sessions/<id>) and force delete.
// Ids: #sessions-filter (#sessions-filter-user, -workspace, -agent, -state, -ended),
// #sessions-table ([data-row="<session id>"] rows with [data-action=explain|force-delete]).

import { h, ui, api, page, pagedList, filterForm, badge, userLink, workspaces, workspaceLabel, shortId, findUser } from './common.js';

const enc = encodeURIComponent;
export const STATES = ['requested', 'starting', 'running', 'pausing', 'paused', 'stopping', 'stopped', 'deleting', 'deleted', 'failed', 'lost'];

export function stateBadge(s) {
  const name = ui.stateName(s);
  return h('span', { class: ['state', `state-${name}`] }, name);
}

export async function forceDelete(button, s, after) {
  if (!await ui.confirmDialog(`Force-delete session ${shortId(s.id)}? It is marked deleted at once, whatever the agent says; its container is removed when the agent can be reached.`,
    { danger: true, confirm: 'Force delete' })) return;
  if (await ui.act(button, () => api.post(`/sessions/${enc(s.id)}/force-delete`), 'Session force-deleted.') && after) after();
}

export async function list(ctx) {
  const q = ctx.query;
  const images = await workspaces().catch(() => []);
  const byId = new Map(images.map((w) => [w.id, w]));
  let filters = { user_id: q.get('user_id') || '', workspace_id: q.get('workspace_id') || '', agent_id: q.get('agent_id') || '', observed_state: q.get('state') || '', include_ended: q.get('ended') === '1' };
  const canDelete = ctx.user.can('sessions.delete');
  const table = pagedList({
    id: 'sessions-table',
    signal: ctx.signal,
    load: async (pq, signal) => {
      const query = { ...pq, all_users: true, user_id: filters.user_id, workspace_id: filters.workspace_id, agent_id: filters.agent_id,
        observed_state: filters.observed_state ? `OBSERVED_STATE_${filters.observed_state.toUpperCase()}` : undefined,
        include_ended: filters.include_ended || undefined };
      const res = await api.get('/sessions', query, { signal });
      return { rows: res.sessions || [], next: res.page && res.page.next_page_token };
    },
    table: {
      rowKey: (s) => s.id,
      empty: 'No sessions match.',
      columns: [
        { key: 'id', label: 'Session', render: (s) => h('a', { href: `/admin/sessions/${enc(s.id)}`, title: s.id, dataset: { action: 'explain' } }, shortId(s.id)) },
        { key: 'user', label: 'User', render: (s) => userLink(s.user_id) },
        { key: 'workspace', label: 'Workspace', render: (s) => byId.has(s.workspace_id) ? workspaceLabel(byId.get(s.workspace_id)) : h('code', s.image || s.workspace_id) },
        { key: 'state', label: 'State', render: (s) => [stateBadge(s.observed_state), ' ', h('small', { class: 'muted' }, `wants ${ui.stateName(s.desired_state)}`)] },
        { key: 'agent', label: 'Agent', render: (s) => s.agent_id || '—' },
        { key: 'created', label: 'Created', render: (s) => ui.formatDate(s.created_at) },
        { key: 'expires', label: 'Ends', render: (s) => ui.formatDate(s.expires_at) },
        { key: 'actions', label: 'Actions', render: (s) => h('div', { class: 'actions' },
          h('a', { class: 'button small', href: `/admin/sessions/${enc(s.id)}` }, 'Explain'),
          canDelete && ui.stateName(s.observed_state) !== 'deleted' ? h('button', { type: 'button', class: 'small danger', dataset: { action: 'force-delete' },
            onclick: (e) => forceDelete(e.currentTarget, s, () => table.reload()) }, 'Force delete') : null) },
      ],
    },
  });
  const form = filterForm('sessions-filter', [
    ui.field({ id: 'sessions-filter-user', name: 'user', label: 'User (username or id)', value: filters.user_id }),
    ui.select({ id: 'sessions-filter-workspace', name: 'workspace_id', label: 'Workspace', value: filters.workspace_id,
      options: [{ value: '', label: 'Any' }, ...images.map((w) => ({ value: w.id, label: workspaceLabel(w) }))] }),
    ui.field({ id: 'sessions-filter-agent', name: 'agent_id', label: 'Agent', value: filters.agent_id }),
    ui.select({ id: 'sessions-filter-state', name: 'observed_state', label: 'State', value: filters.observed_state,
      options: [{ value: '', label: 'Any' }, ...STATES.map((s) => ({ value: s, label: s }))] }),
    ui.checkbox({ id: 'sessions-filter-ended', name: 'include_ended', label: 'Include ended', checked: filters.include_ended }),
  ], async (v) => {
    let userId;
    try { userId = await findUser(v.user); } catch (err) { ui.toast(ui.errorText(err), 'error'); return; }
    filters = { user_id: userId, workspace_id: v.workspace_id, agent_id: v.agent_id, observed_state: v.observed_state, include_ended: v.include_ended };
    table.reload();
  });
  table.reload();
  return page(ctx, 'Sessions', [], form, table.el);
}

export { badge };
