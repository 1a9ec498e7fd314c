// Groups: the list (/admin/groups) and one group (/admin/groups/<id>): properties and priority,
// members, permissions, workspaces, SSO group mappings, file mappings and the settings editor.

import {
  h, mount, ui, api, page, pagedList, filterForm, facts, badge, userLink, workspaces, workspaceLabel,
} from './common.js';
import * as filemaps from './filemaps.js';
import * as settings from './settings.js';

const enc = encodeURIComponent;

export function list(ctx) {
  const user = ctx.user;
  let filters = {};
  const groups = pagedList({
    id: 'groups-table',
    signal: ctx.signal,
    load: async (q, signal) => {
      const res = await api.get('/groups', { ...q, name_contains: filters.name_contains }, { signal });
      return { rows: res.groups || [], next: res.page && res.page.next_page_token };
    },
    table: {
      caption: 'Groups, strongest (lowest priority number) first',
      rowKey: (g) => g.id,
      empty: 'No groups match.',
      columns: [
        { key: 'name', label: 'Name', render: (g) => h('a', { href: `/admin/groups/${enc(g.id)}`, dataset: { group: g.name } }, g.name) },
        { key: 'priority', label: 'Priority' },
        { key: 'member_count', label: 'Members' },
        { key: 'is_system', label: 'System', render: (g) => g.is_system ? badge('system') : '' },
        { key: 'description', label: 'Description' },
      ],
    },
  });
  const filter = filterForm('groups-filter', [
    ui.field({ id: 'groups-filter-name', name: 'name_contains', label: 'Name contains' }),
  ], (v) => { filters = v; groups.reload(); });

  let create = null;
  if (user.can('groups.create')) {
    const box = ui.messageBox('group-create-message');
    create = h('form', { id: 'group-create-form', class: 'card subform' },
      h('h2', 'New group'),
      h('div', { class: 'grid-3' },
        ui.field({ id: 'group-create-name', name: 'name', label: 'Name', required: true }),
        ui.field({ id: 'group-create-priority', name: 'priority', label: 'Priority (1 strongest … 1000000)', type: 'number', value: '100', attrs: { min: 1, max: 1000000 } }),
        ui.field({ id: 'group-create-description', name: 'description', label: 'Description' })),
      box,
      h('button', { type: 'submit', id: 'group-create-submit', class: 'primary' }, 'Create group'));
    ui.onSubmit(create, box, async (fd) => {
      const g = await api.post('/groups', { name: fd.get('name'), description: fd.get('description'), priority: Number(fd.get('priority')) || 0 });
      ui.toast(`Group ${g.name} created.`, 'ok');
      ctx.app.navigate(`/admin/groups/${enc(g.id)}`);
    });
  }
  groups.reload();
  return page(ctx, 'Groups', [], filter, groups.el, create);
}

export async function detail(ctx) {
  const user = ctx.user;
  const id = ctx.params.id;
  const group = await api.get(`/groups/${enc(id)}`, undefined, { signal: ctx.signal });
  const canModify = user.can('groups.modify');

  // ---- properties
  const box = ui.messageBox('group-message');
  const props = h('form', { id: 'group-form', class: 'card' },
    h('h2', 'Properties'),
    facts('group-facts', [['Id', h('code', group.id)], ['System group', group.is_system ? 'yes (cannot be deleted)' : 'no'],
      ['Members', String(group.member_count)], ['Created', ui.formatDate(group.created_at)], ['Updated', ui.formatDate(group.updated_at)]]),
    h('div', { class: 'grid-3' },
      ui.field({ id: 'group-name', name: 'name', label: 'Name', value: group.name, required: true }),
      ui.field({ id: 'group-priority', name: 'priority', label: 'Priority (lower number wins)', type: 'number', value: String(group.priority), attrs: { min: 1, max: 1000000 } }),
      ui.field({ id: 'group-description', name: 'description', label: 'Description', value: group.description })),
    box,
    canModify ? h('button', { type: 'submit', id: 'group-save', class: 'primary' }, 'Save') : null);
  if (!canModify) props.querySelectorAll('input').forEach((i) => { i.disabled = true; });
  ui.onSubmit(props, box, async (fd) => {
    const saved = await api.patch(`/groups/${enc(id)}`, { name: fd.get('name'), description: fd.get('description'), priority: Number(fd.get('priority')) });
    document.getElementById('page-title').textContent = `Group ${saved.name}`;
    return 'Saved.';
  });

  const actions = [];
  if (user.can('groups.delete') && !group.is_system) {
    actions.push(h('button', { type: 'button', id: 'group-delete', class: 'danger', onclick: async (e) => {
      if (!await ui.confirmDialog(`Delete the group ${group.name}, with its memberships, settings, permissions and mappings?`, { danger: true, confirm: 'Delete group' })) return;
      const done = await ui.act(e.currentTarget, () => api.del(`/groups/${enc(id)}`), 'Group deleted.');
      if (done) ctx.app.navigate('/admin/groups');
    } }, 'Delete group'));
  }

  const sections = [props, members(ctx, group, canModify), permissions(ctx, group, canModify)];
  if (user.can('workspaces.view')) sections.push(groupWorkspaces(ctx, group));
  if (user.can('sso.view')) sections.push(sso(ctx, group));
  if (user.can('file_mappings.view')) sections.push(filemaps.card(ctx, { group_id: id }));
  if (user.can('settings.view')) {
    sections.push(await settings.editor(ctx, id).catch((err) => h('section', { id: 'settings-editor', class: 'card' },
      h('h2', 'Group settings'), h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)))));
  }
  const jump = h('nav', { class: 'jump', 'aria-label': 'On this page' }, h('ul',
    sections.map((s) => s.id && s.querySelector('h2') ? h('li', h('a', { href: `#${s.id}` }, s.querySelector('h2').textContent)) : null)));
  jump.addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    e.preventDefault();
    const target = document.getElementById(a.getAttribute('href').slice(1));
    if (target) { target.scrollIntoView(); const t = target.querySelector('h2'); if (t) { t.tabIndex = -1; t.focus(); } }
  });
  return page(ctx, `Group ${group.name}`, actions, jump, sections);
}

// ---- members

function members(ctx, group, canModify) {
  const id = group.id;
  const table = pagedList({
    id: 'group-members',
    signal: ctx.signal,
    load: async (q, signal) => {
      const res = await api.get(`/groups/${enc(id)}/members`, q, { signal });
      return { rows: res.members || [], next: res.page && res.page.next_page_token };
    },
    table: {
      rowKey: (m) => m.user_id,
      empty: 'No members.',
      columns: [
        { key: 'user', label: 'User', render: (m) => userLink(m.user_id) },
        { key: 'source', label: 'Source', render: (m) => m.source || 'manual' },
        { key: 'added_at', label: 'Added', render: (m) => ui.formatDate(m.added_at) },
        { key: 'actions', label: 'Actions', render: (m) => canModify && m.source !== 'system' ? h('button', {
          type: 'button', class: 'small', dataset: { action: 'remove' }, onclick: async (e) => {
            if (!await ui.confirmDialog(`Remove this user from ${group.name}?`, { confirm: 'Remove' })) return;
            if (await ui.act(e.currentTarget, () => api.del(`/groups/${enc(id)}/members/${enc(m.user_id)}`), 'Member removed.')) table.reload();
          } }, 'Remove') : '' },
      ],
    },
  });
  let add = null;
  if (canModify) {
    const box = ui.messageBox('group-member-message');
    add = h('form', { id: 'group-member-form', class: 'inline-form' },
      ui.field({ id: 'group-member-username', name: 'username', label: 'Add a user by username', required: true, autocomplete: 'off' }),
      h('button', { type: 'submit', id: 'group-member-add', class: 'primary' }, 'Add member'), box);
    ui.onSubmit(add, box, async (fd) => {
      const name = String(fd.get('username')).trim();
      const found = await api.get('/users', { username_contains: name, 'page.page_size': 50 });
      const users = found.users || [];
      const match = users.find((u) => u.username.toLowerCase() === name.toLowerCase()) || (users.length === 1 ? users[0] : null);
      if (!match) {
        throw new api.ApiError(404, 'not_found', users.length ? `Several users match "${name}": type the whole username.` : `No user is called "${name}".`, 'username');
      }
      await api.put(`/groups/${enc(id)}/members/${enc(match.id)}`);
      add.reset();
      table.reload();
      return `${match.username} added.`;
    });
  }
  table.reload();
  return h('section', { id: 'group-members-card', class: 'card' }, h('h2', 'Members'), table.el, add);
}

// ---- permissions

function permissions(ctx, group, canModify) {
  const body = h('div', ui.spinner());
  (async () => {
    try {
      const [defs, held] = await Promise.all([
        api.get('/permission-definitions', undefined, { signal: ctx.signal }).then((r) => r.permissions || []),
        api.get(`/groups/${enc(group.id)}/permissions`, undefined, { signal: ctx.signal }).then((r) => new Set(r.permissions || [])),
      ]);
      mount(body, h('fieldset', { id: 'group-permissions', class: 'checks-grid' },
        h('legend', { class: 'sr-only' }, 'Permissions'),
        defs.map((p) => {
          const box = ui.checkbox({ id: `permission-${p.name}`, label: p.name, checked: held.has(p.name), help: p.description });
          box.input.disabled = !canModify;
          box.input.dataset.permission = p.name;
          box.input.addEventListener('change', async () => {
            const on = box.input.checked;
            box.input.disabled = true;
            try {
              if (on) await api.put(`/groups/${enc(group.id)}/permissions/${enc(p.name)}`);
              else await api.del(`/groups/${enc(group.id)}/permissions/${enc(p.name)}`);
              ui.toast(`${on ? 'Granted' : 'Revoked'} ${p.name}.`, 'ok');
            } catch (err) {
              box.input.checked = !on;
              ui.toast(ui.errorText(err), 'error');
            } finally {
              box.input.disabled = false;
            }
          });
          return box;
        })));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  })();
  return h('section', { id: 'group-permissions-card', class: 'card' }, h('h2', 'Permissions'),
    h('p', { class: 'muted' }, 'Members hold every permission granted here. The administrator setting grants them all.'), body);
}

// ---- workspaces

function groupWorkspaces(ctx, group) {
  const canModify = ctx.user.can('workspaces.modify');
  const body = h('div', ui.spinner());
  (async () => {
    try {
      const list = await workspaces(true);
      mount(body, ui.table({
        id: 'group-workspaces',
        rowKey: (w) => w.id,
        empty: 'There are no workspaces yet.',
        columns: [
          { key: 'name', label: 'Workspace', render: (w) => h('a', { href: `/admin/workspaces/${enc(w.id)}` }, workspaceLabel(w)) },
          { key: 'image', label: 'Image', render: (w) => h('code', w.name) },
          { key: 'enabled', label: 'Enabled', render: (w) => w.enabled ? 'yes' : 'no' },
          { key: 'actions', label: 'Actions', render: (w) => canModify ? h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'small', dataset: { action: 'assign' }, onclick: (e) => ui.act(e.currentTarget,
              () => api.put(`/groups/${enc(group.id)}/workspaces/${enc(w.id)}`),
              (r) => r.changed ? `${workspaceLabel(w)} assigned to ${group.name}.` : `${workspaceLabel(w)} was already assigned.`) }, 'Assign'),
            h('button', { type: 'button', class: 'small', dataset: { action: 'unassign' }, onclick: (e) => ui.act(e.currentTarget,
              () => api.del(`/groups/${enc(group.id)}/workspaces/${enc(w.id)}`),
              (r) => r.changed ? `${workspaceLabel(w)} unassigned from ${group.name}.` : `${workspaceLabel(w)} was not assigned.`) }, 'Unassign')) : '' },
        ],
        rows: list,
      }));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  })();
  return h('section', { id: 'group-workspaces-card', class: 'card' }, h('h2', 'Workspaces'),
    h('p', { class: 'muted' }, 'Members may launch the workspaces assigned to any of their groups. ',
      '/api/v1 has no route that lists a group\'s assignments, so this list shows every workspace; ',
      'Assign and Unassign say whether anything changed.'),
    body);
}

// ---- SSO group mappings

function sso(ctx, group) {
  const canModify = ctx.user.can('sso.modify');
  const body = h('div', ui.spinner());
  async function load() {
    try {
      const res = await api.get('/sso-mappings', { group_id: group.id }, { signal: ctx.signal });
      mount(body, ui.table({
        id: 'sso-mappings',
        rowKey: (m) => m.id,
        empty: 'No SSO group mappings.',
        columns: [
          { key: 'provider_id', label: 'Provider', render: (m) => `${m.provider_id} (${m.provider_type})` },
          { key: 'assign_all_users', label: 'All users', render: (m) => m.assign_all_users ? 'yes' : 'no' },
          { key: 'group_attributes', label: 'Group attributes', render: (m) => (m.group_attributes || []).join(', ') || '—' },
          { key: 'actions', label: 'Actions', render: (m) => canModify ? h('button', { type: 'button', class: 'small danger', dataset: { action: 'delete' }, onclick: async (e) => {
            if (!await ui.confirmDialog('Delete this SSO group mapping?', { danger: true, confirm: 'Delete' })) return;
            if (await ui.act(e.currentTarget, () => api.del(`/sso-mappings/${enc(m.id)}`), 'SSO mapping deleted.')) load();
          } }, 'Delete') : '' },
        ],
        rows: res.mappings || [],
      }));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  }
  let form = null;
  if (canModify) {
    const box = ui.messageBox('sso-mapping-message');
    form = h('form', { id: 'sso-mapping-form', class: 'subform' },
      h('fieldset', h('legend', 'Add an SSO group mapping'),
        h('div', { class: 'grid-3' },
          ui.field({ id: 'sso-mapping-provider', name: 'provider_id', label: 'Provider id', required: true }),
          ui.select({ id: 'sso-mapping-type', name: 'provider_type', label: 'Provider type', value: 'oidc',
            options: [{ value: 'ldap', label: 'LDAP' }, { value: 'saml', label: 'SAML' }, { value: 'oidc', label: 'OpenID Connect' }] }),
          ui.field({ id: 'sso-mapping-attributes', name: 'group_attributes', label: 'Group attributes (one per line)', type: 'textarea' })),
        ui.checkbox({ id: 'sso-mapping-all', name: 'assign_all_users', label: 'Assign all users of this provider' }),
        box,
        h('button', { type: 'submit', id: 'sso-mapping-add', class: 'primary' }, 'Add mapping')));
    ui.onSubmit(form, box, async (fd) => {
      await api.post('/sso-mappings', {
        group_id: group.id,
        provider_id: String(fd.get('provider_id')).trim(),
        provider_type: fd.get('provider_type'),
        assign_all_users: fd.get('assign_all_users') === 'on',
        group_attributes: String(fd.get('group_attributes') || '').split('\n').map((s) => s.trim()).filter(Boolean),
      });
      form.reset();
      await load();
      return 'Mapping added.';
    });
  }
  load();
  return h('section', { id: 'sso-mappings-card', class: 'card' }, h('h2', 'SSO group mappings'),
    h('p', { class: 'muted' }, 'At each SSO login, users of the provider join this group (all of them, or those with one of the attributes) and leave it when they no longer match.'),
    body, form);
}
