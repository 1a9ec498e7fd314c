// Users: the list (/admin/users, paged and filtered), a new user (/admin/users/new) and one user
// (/admin/users/<id>): every property, lock/unlock, disable/enable, force password reset, set a
// password, reset 2FA, log out everywhere, delete, group membership and file mappings.

import { h, mount, ui, api, page, pagedList, filterForm, facts, badge, groups as allGroups } from './common.js';
import * as filemaps from './filemaps.js';

const enc = encodeURIComponent;

const REALMS = [
  { value: 'REALM_LOCAL', label: 'Local' },
  { value: 'REALM_LDAP', label: 'LDAP' },
  { value: 'REALM_SAML', label: 'SAML' },
  { value: 'REALM_OIDC', label: 'OpenID Connect' },
];

// Editable text properties (seeds/002), in form order.
const PROPS = [
  ['username', 'Username'], ['first_name', 'First name'], ['last_name', 'Last name'], ['email', 'Email'],
  ['phone', 'Phone'], ['organization', 'Organization'], ['city', 'City'], ['state', 'State'],
  ['country', 'Country'], ['custom_attribute_1', 'Custom attribute 1'], ['custom_attribute_2', 'Custom attribute 2'],
  ['custom_attribute_3', 'Custom attribute 3'],
];

function realmName(r) {
  const f = REALMS.find((x) => x.value === r);
  return f ? f.label : 'Local';
}

function flags(u) {
  return [
    u.locked && badge('locked', 'danger'),
    u.disabled && badge('disabled', 'danger'),
    u.force_password_reset && badge('password reset', 'warn'),
    u.two_factor_enrolled && badge('2FA', 'ok'),
    u.is_admin && badge('admin'),
  ];
}

export function list(ctx) {
  let filters = {};
  const users = pagedList({
    id: 'users-table',
    signal: ctx.signal,
    load: async (q, signal) => {
      const query = { ...q, username_contains: filters.username_contains, email_contains: filters.email_contains };
      if (filters.realm) query.realm = filters.realm;
      if (filters.locked) query.locked = filters.locked;
      if (filters.disabled) query.disabled = filters.disabled;
      const res = await api.get('/users', query, { signal });
      return { rows: res.users || [], next: res.page && res.page.next_page_token };
    },
    table: {
      rowKey: (u) => u.id,
      empty: 'No users match.',
      columns: [
        { key: 'username', label: 'Username', render: (u) => h('a', { href: `/admin/users/${enc(u.id)}`, dataset: { username: u.username } }, u.username) },
        { key: 'name', label: 'Name', render: (u) => [u.first_name, u.last_name].filter(Boolean).join(' ') },
        { key: 'email', label: 'Email' },
        { key: 'realm', label: 'Realm', render: (u) => realmName(u.realm) },
        { key: 'state', label: 'State', render: flags },
        { key: 'last', label: 'Last session', render: (u) => ui.formatDate(u.last_session_at) },
        { key: 'explain', label: 'Policy', render: (u) => ctx.user.can('settings.view')
          ? h('a', { href: `/admin/users/${enc(u.id)}/policy`, dataset: { action: 'explain' } }, 'Explain') : '' },
      ],
    },
  });
  const tri = (id, name, label) => ui.select({ id, name, label, value: '', options: [{ value: '', label: 'Any' }, { value: 'true', label: 'Yes' }, { value: 'false', label: 'No' }] });
  const filter = filterForm('users-filter', [
    ui.field({ id: 'users-filter-username', name: 'username_contains', label: 'Username contains' }),
    ui.field({ id: 'users-filter-email', name: 'email_contains', label: 'Email contains' }),
    ui.select({ id: 'users-filter-realm', name: 'realm', label: 'Realm', value: '', options: [{ value: '', label: 'Any' }, ...REALMS] }),
    tri('users-filter-locked', 'locked', 'Locked'),
    tri('users-filter-disabled', 'disabled', 'Disabled'),
  ], (v) => { filters = v; users.reload(); });
  const add = ctx.user.can('users.create') ? h('a', { href: '/admin/users/new', id: 'user-new', class: 'button primary' }, 'Add user') : null;
  users.reload();
  return page(ctx, 'Users', [add], filter, users.el);
}

export function create(ctx) {
  const box = ui.messageBox('user-create-message');
  const form = h('form', { id: 'user-create-form', class: 'card' },
    h('div', { class: 'grid-3' },
      ui.field({ id: 'user-create-username', name: 'username', label: 'Username', required: true, autocomplete: 'off' }),
      ui.field({ id: 'user-create-password', name: 'password', label: 'Password (local users)', type: 'password', autocomplete: 'new-password' }),
      ui.select({ id: 'user-create-realm', name: 'realm', label: 'Realm', value: 'REALM_LOCAL', options: REALMS }),
      PROPS.filter(([k]) => k !== 'username').map(([k, label]) => ui.field({ id: `user-create-${k.replace(/_/g, '-')}`, name: k, label }))),
    ui.field({ id: 'user-create-notes', name: 'notes', label: 'Notes', type: 'textarea' }),
    h('div', { class: 'checks' },
      ui.checkbox({ id: 'user-create-force-reset', name: 'force_password_reset', label: 'Force password change at first login' }),
      ui.checkbox({ id: 'user-create-locked', name: 'locked', label: 'Locked' }),
      ui.checkbox({ id: 'user-create-disabled', name: 'disabled', label: 'Disabled' })),
    box,
    h('button', { type: 'submit', id: 'user-create-submit', class: 'primary' }, 'Create user'));
  ui.onSubmit(form, box, async (fd) => {
    const body = {};
    for (const [k, v] of fd.entries()) body[k] = typeof v === 'string' ? v : '';
    for (const k of ['force_password_reset', 'locked', 'disabled']) body[k] = fd.get(k) === 'on';
    body.username = body.username.trim();
    const u = await api.post('/users', body);
    ui.toast(`User ${u.username} created.`, 'ok');
    ctx.app.navigate(`/admin/users/${enc(u.id)}`);
  });
  return page(ctx, 'New user', [h('a', { href: '/admin/users', class: 'button' }, 'Back to users')], form);
}

export async function detail(ctx) {
  const me = ctx.user;
  const id = ctx.params.id;
  let user = await api.get(`/users/${enc(id)}`, undefined, { signal: ctx.signal });
  const canModify = me.can('users.modify');

  // ---- state and actions
  const stateEl = h('div', { id: 'user-status', class: 'actions-row', 'aria-live': 'polite' });
  const actionsEl = h('div', { id: 'user-actions', class: 'actions' });
  const patch = async (body, done) => {
    user = await api.patch(`/users/${enc(id)}`, body);
    draw();
    return done;
  };
  const button = (bid, label, fn, kind) => h('button', { type: 'button', id: bid, class: kind, onclick: (e) => ui.act(e.currentTarget, fn[0], fn[1]) }, label);
  function draw() {
    mount(stateEl, flags(user).filter(Boolean).length ? flags(user) : badge('active', 'ok'),
      user.failed_login_count ? h('span', { class: 'muted' }, `${user.failed_login_count} failed sign-in${user.failed_login_count === 1 ? '' : 's'}`) : null);
    if (!canModify) { mount(actionsEl); return; }
    mount(actionsEl,
      user.locked
        ? button('user-unlock', 'Unlock', [() => patch({ locked: false }), 'Unlocked (failed sign-ins cleared).'])
        : button('user-lock', 'Lock', [() => patch({ locked: true }), 'Locked.']),
      user.disabled
        ? button('user-enable', 'Enable', [() => patch({ disabled: false }), 'Enabled.'])
        : button('user-disable', 'Disable', [() => patch({ disabled: true }), 'Disabled: the user cannot sign in.'], 'danger'),
      user.force_password_reset
        ? button('user-force-reset', 'Cancel forced password change', [() => patch({ force_password_reset: false }), 'No password change will be asked.'])
        : button('user-force-reset', 'Force password change', [() => patch({ force_password_reset: true }), 'The user must change their password at next sign-in.']),
      h('button', { type: 'button', id: 'user-reset-2fa', disabled: !user.two_factor_enrolled, title: user.two_factor_enrolled ? undefined : 'Not enrolled', onclick: async (e) => {
        if (!await ui.confirmDialog(`Reset ${user.username}'s two-factor enrolment? They enrol again at their next sign-in.`, { confirm: 'Reset 2FA' })) return;
        await ui.act(e.currentTarget, async () => { user = await api.post(`/users/${enc(id)}/reset-2fa`); draw(); }, 'Two-factor enrolment reset.');
      } }, 'Reset 2FA'),
      me.can('users.auth_session') || me.isAdmin ? h('button', { type: 'button', id: 'user-logout', onclick: async (e) => {
        if (!await ui.confirmDialog(`End every sign-in of ${user.username}?`, { confirm: 'Sign out everywhere' })) return;
        await ui.act(e.currentTarget, () => api.post(`/users/${enc(id)}/logout`), (r) => `Ended ${r.ended || 0} sign-in session(s).`);
      } }, 'Sign out everywhere') : null);
  }
  draw();

  // ---- properties
  const box = ui.messageBox('user-message');
  const props = h('form', { id: 'user-form', class: 'card' },
    h('h2', 'Properties'),
    facts('user-facts', [
      ['Id', h('code', user.id)], ['Created', ui.formatDate(user.created_at)], ['Updated', ui.formatDate(user.updated_at)],
      ['Password set', ui.formatDate(user.password_set_at)], ['Last session', ui.formatDate(user.last_session_at)],
      ['Two-factor', user.two_factor_enrolled ? 'enrolled' : 'not enrolled'], ['Failed sign-ins', String(user.failed_login_count)],
      ['Bootstrap administrator', user.is_admin ? 'yes' : 'no'],
    ]),
    h('div', { class: 'grid-3' },
      PROPS.map(([k, label]) => ui.field({ id: `user-${k.replace(/_/g, '-')}`, name: k, label, value: user[k] || '' })),
      ui.select({ id: 'user-realm', name: 'realm', label: 'Realm', value: user.realm || 'REALM_LOCAL', options: REALMS })),
    ui.field({ id: 'user-notes', name: 'notes', label: 'Notes', type: 'textarea', value: user.notes || '' }),
    box,
    canModify ? h('button', { type: 'submit', id: 'user-save', class: 'primary' }, 'Save properties') : null);
  if (!canModify) props.querySelectorAll('input, select, textarea').forEach((i) => { i.disabled = true; });
  ui.onSubmit(props, box, async (fd) => {
    const body = {};
    for (const [k] of PROPS) if ((fd.get(k) ?? '') !== (user[k] || '')) body[k] = fd.get(k);
    if (fd.get('notes') !== (user.notes || '')) body.notes = fd.get('notes');
    if (fd.get('realm') !== user.realm) body.realm = fd.get('realm');
    if (!Object.keys(body).length) return 'Nothing changed.';
    await patch(body);
    document.getElementById('page-title').textContent = `User ${user.username}`;
    return 'Saved.';
  });

  // ---- password
  let password = null;
  if (canModify) {
    const pbox = ui.messageBox('user-password-message');
    password = h('form', { id: 'user-password-form', class: 'card' }, h('h2', 'Set password'),
      ui.field({ id: 'user-password', name: 'new_password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true }),
      ui.checkbox({ id: 'user-password-force', name: 'force_password_reset', label: 'Ask for a new password at next sign-in', checked: true }),
      pbox,
      h('button', { type: 'submit', id: 'user-password-submit', class: 'primary' }, 'Set password'));
    ui.onSubmit(password, pbox, async (fd) => {
      user = await api.post(`/users/${enc(id)}/password`, { new_password: fd.get('new_password'), force_password_reset: fd.get('force_password_reset') === 'on' });
      password.reset();
      draw();
      return 'Password set.';
    });
  }

  const sections = [props, password, membership(ctx, user), userSettings(ctx, user, canModify)];
  if (me.can('reports.view')) sections.push(usage(ctx, user));
  if (me.can('file_mappings.view')) sections.push(filemaps.card(ctx, { user_id: id }));

  const links = h('div', { class: 'actions' },
    me.can('settings.view') ? h('a', { href: `/admin/users/${enc(id)}/policy`, id: 'user-explain', class: 'button' }, 'Explain effective policy') : null,
    me.can('sessions.view') ? h('a', { href: `/admin/sessions?user_id=${enc(id)}`, id: 'user-sessions', class: 'button' }, 'Sessions') : null,
    me.can('users.delete') ? h('button', { type: 'button', id: 'user-delete', class: 'danger', onclick: async (e) => {
      if (!await ui.confirmDialog(`Delete the user ${user.username}? This cannot be undone.`, { danger: true, confirm: 'Delete user' })) return;
      if (await ui.act(e.currentTarget, () => api.del(`/users/${enc(id)}`), 'User deleted.') !== undefined) ctx.app.navigate('/admin/users');
    } }, 'Delete user') : null);

  return page(ctx, `User ${user.username}`, [links], h('section', { class: 'card' }, h('h2', 'Account'), stateEl, actionsEl), sections);
}

// ---- groups the user belongs to

function membership(ctx, user) {
  const canModify = ctx.user.can('groups.modify');
  const body = h('div', ui.spinner());
  const select = h('select', { id: 'user-group-add-select', name: 'group_id', 'aria-label': 'Group to add the user to' });
  const box = ui.messageBox('user-group-message');
  const form = canModify ? h('form', { id: 'user-group-form', class: 'inline-form' },
    h('div', { class: 'field' }, h('label', { for: 'user-group-add-select' }, 'Add to group'), select),
    h('button', { type: 'submit', id: 'user-group-add', class: 'primary' }, 'Add'), box) : null;
  async function load() {
    try {
      const [mine, every] = await Promise.all([
        api.get(`/users/${enc(user.id)}/groups`, { 'page.page_size': 1000 }, { signal: ctx.signal }).then((r) => r.groups || []),
        canModify ? allGroups(true).catch(() => []) : Promise.resolve([]),
      ]);
      const held = new Set(mine.map((g) => g.id));
      mount(select, every.filter((g) => !held.has(g.id)).map((g) => h('option', { value: g.id }, `${g.name} (priority ${g.priority})`)));
      if (form) form.hidden = !select.options.length;
      mount(body, ui.table({
        id: 'user-groups',
        rowKey: (g) => g.id,
        empty: 'In no group.',
        columns: [
          { key: 'name', label: 'Group', render: (g) => h('a', { href: `/admin/groups/${enc(g.id)}` }, g.name) },
          { key: 'priority', label: 'Priority' },
          { key: 'system', label: '', render: (g) => g.is_system ? badge('system') : '' },
          { key: 'actions', label: 'Actions', render: (g) => canModify && g.name !== 'All Users' ? h('button', { type: 'button', class: 'small', dataset: { action: 'remove' }, onclick: async (e) => {
            if (!await ui.confirmDialog(`Remove ${user.username} from ${g.name}?`, { confirm: 'Remove' })) return;
            if (await ui.act(e.currentTarget, () => api.del(`/groups/${enc(g.id)}/members/${enc(user.id)}`), `Removed from ${g.name}.`)) load();
          } }, 'Remove') : '' },
        ],
        rows: mine,
      }));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  }
  if (form) {
    ui.onSubmit(form, box, async () => {
      const g = select.selectedOptions[0];
      await api.put(`/groups/${enc(select.value)}/members/${enc(user.id)}`);
      const msg = `Added to ${g ? g.textContent : 'the group'}.`;
      await load();
      return msg;
    });
  }
  load();
  return h('section', { id: 'user-groups-card', class: 'card' }, h('h2', 'Groups'),
    h('p', { class: 'muted' }, 'Settings come from the strongest group (lowest priority number) that sets them.'), body, form);
}

// ---- the user's own settings (seeds/002) and SSH key

const THEMES = [
  { value: 'THEME_AUTO', label: 'Auto (the device\'s)' }, { value: 'THEME_LIGHT', label: 'Light' }, { value: 'THEME_DARK', label: 'Dark' },
];

function userSettings(ctx, user, canModify) {
  const body = h('div', ui.spinner());
  (async () => {
    try {
      const [st, key, images] = await Promise.all([
        api.get(`/users/${enc(user.id)}/settings`, undefined, { signal: ctx.signal }),
        api.get(`/users/${enc(user.id)}/ssh-key`, undefined, { signal: ctx.signal }).catch(() => null),
        api.get(`/users/${enc(user.id)}/workspaces`, undefined, { signal: ctx.signal }).then((r) => r.workspaces || []).catch(() => []),
      ]);
      const box = ui.messageBox('user-settings-message');
      const check = (id, name, label) => ui.checkbox({ id: `user-settings-${id}`, name, label, checked: !!st[name] });
      const form = h('form', { id: 'user-settings-form' },
        h('div', { class: 'checks' },
          check('auto-launch', 'auto_launch_session', 'Auto launch session'),
          check('show-tips', 'show_tips_during_session', 'Show tips during session'),
          check('toggle-panel', 'toggle_control_panel', 'Toggle control panel with Ctrl twice'),
          check('chat-sounds', 'chat_sound_effects', 'Chat sound effects')),
        h('div', { class: 'grid-3' },
          ui.select({ id: 'user-settings-default-workspace', name: 'default_workspace_image', label: 'Default workspace', value: st.default_workspace_image || '',
            options: [{ value: '', label: '(the group\'s default_image)' }, ...images.map((w) => ({ value: w.id, label: w.friendly_name || w.name })),
              ...(st.default_workspace_image && !images.some((w) => w.id === st.default_workspace_image) ? [{ value: st.default_workspace_image, label: st.default_workspace_image }] : [])] }),
          ui.select({ id: 'user-settings-theme', name: 'theme', label: 'Theme', value: st.theme === 'THEME_UNSPECIFIED' ? 'THEME_AUTO' : st.theme, options: THEMES })),
        box,
        canModify ? h('button', { type: 'submit', id: 'user-settings-save', class: 'primary' }, 'Save settings') : null);
      if (!canModify) form.querySelectorAll('input, select').forEach((i) => { i.disabled = true; });
      ui.onSubmit(form, box, async (fd) => {
        await api.patch(`/users/${enc(user.id)}/settings`, {
          auto_launch_session: fd.get('auto_launch_session') === 'on',
          show_tips_during_session: fd.get('show_tips_during_session') === 'on',
          toggle_control_panel: fd.get('toggle_control_panel') === 'on',
          chat_sound_effects: fd.get('chat_sound_effects') === 'on',
          default_workspace_image: fd.get('default_workspace_image'),
          theme: fd.get('theme'),
        });
        return 'Settings saved.';
      });
      mount(body, form,
        h('h3', 'SSH key'),
        key && key.public_key
          ? facts('user-ssh', [['Public key', h('code', { class: 'cell-wrap' }, key.public_key)], ['Fingerprint', h('code', key.fingerprint)], ['Updated', ui.formatDate(key.updated_at)]])
          : h('p', { id: 'user-ssh', class: 'muted' }, 'No SSH key.'));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  })();
  return h('section', { id: 'user-settings-card', class: 'card' }, h('h2', 'User settings'),
    h('p', { class: 'muted' }, 'The user\'s own choices (also on their profile page). The default workspace here beats the group\'s default_image.'), body);
}

// ---- usage (GET /usage/<id>): the usage_limit window and time by day

function usage(ctx, user) {
  const body = h('div', ui.spinner());
  (async () => {
    try {
      const u = await api.get(`/usage/${enc(user.id)}`, { user_id: user.id, days: 30 }, { signal: ctx.signal });
      const c = u.current || {};
      const total = (u.history || []).reduce((n, d) => n + Number(d.seconds || 0), 0);
      mount(body,
        h('p', { id: 'user-usage-summary' }, c.limited ? c.summary : 'No usage_limit applies.',
          c.limited && !c.allowed ? [' ', badge('allowance spent', 'danger')] : null),
        h('p', { class: 'muted' }, `${(total / 3600).toFixed(2)} h in the last ${(u.history || []).length} days (${u.timezone || 'UTC'}); ${c.open_sessions || 0} session(s) charging now.`));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  })();
  return h('section', { id: 'user-usage', class: 'card' }, h('h2', 'Usage'), body);
}
