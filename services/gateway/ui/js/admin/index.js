// The administrator's pages. app.js imports this module and calls registerAdmin(app) once, at
// start, after the user's own pages are registered. This file and everything under js/admin/
// belong to the admin pages; nothing else in the UI imports them.
//
// THE CONTRACT
//
// `app` (see app.js) gives you:
//   app.register(path, render, options)   add a page. Use paths under /admin (the gateway
//       serves the shell for /admin and /admin/…, so reloads and deep links work).
//       Patterns: '/admin/users/:id'.
//       options: { permission: 'users.view' | (user) => bool, title: 'Users', layout: 'app' }
//       The shell checks sign-in and the permission before render runs (a user without it sees
//       #forbidden); the services check again on every call, so the UI check is only courtesy.
//   render(ctx): draw into ctx.main (emptied, a spinner shown until you return), or return a
//       Node and the shell mounts it. ctx.params (from the pattern), ctx.query (URLSearchParams),
//       ctx.signal (aborted when the user leaves: pass it to api calls), ctx.onLeave(fn),
//       ctx.user. A thrown ApiError is shown as its sentence (#page-error); never a stack trace.
//       Give the page one <h1 id="page-title" tabindex="-1"> (ui.pageHeader does): the shell
//       focuses it after drawing, for keyboard and screen-reader users.
//   app.addNav({ id: 'nav-admin', label: 'Admin', path: '/admin', permission }) adds a link to
//       the top bar (shown only to users for whom permission holds).
//   app.user.can('groups.modify')  permission check (administrators hold every permission);
//       app.user.isAdmin; app.user.me (GET /api/v1/me); app.user.setting(name, fallback).
//   app.navigate('/admin/users/123')  go to a page (plain <a href="/admin/…"> links also work
//       without a reload).
//
// Calling /api/v1 (app.api, js/api.js): get(path, query), post(path, body), put, patch, del.
//   Paths are relative to /api/v1: app.api.get('/users', { 'page.page_size': 50 }).
//   The CSRF header and login renewal are handled; a failure rejects with an ApiError whose
//   .message is a sentence for people (.status, .code, .field also set).
//
// Building pages (app.h is js/dom.js's h; app.ui is js/components.js):
//   h('button', { id: 'user-save', class: 'primary', onclick: fn }, 'Save')  no HTML strings,
//       no inline style (the CSP forbids it: use classes from css/app.css).
//   ui.pageHeader('Users', button…)           the page title and its actions
//   ui.table({ id, caption, columns: [{ key, label, render(row) }], rows, rowKey, empty })
//   ui.field({ id, label, type, value, required, help }) / ui.checkbox / ui.select: labelled
//       controls (label for=); .input is the control
//   ui.messageBox(id) + ui.onSubmit(form, box, async (formData) => 'Saved.'): a form that shows
//       the server's error sentence (aria-live) and marks the field it names
//   ui.act(button, async () => …, 'Deleted.'): a button action with busy state and a toast
//   ui.toast(text, 'ok' | 'error' | 'info'); await ui.confirmDialog(text, { danger: true })
//   ui.card(title, …), ui.formatDate, ui.formatDuration, ui.stateName
//
// Keep the first page load under 100 KB transferred (a test adds up every asset): load big
// admin pages lazily, e.g. register(path, async (ctx) => (await import('./users.js')).render(ctx)).
// Give important elements stable ids or data-testid and list them in docs/ui.md.

// The pages (each module is fetched the first time one of its pages is drawn; only this file is
// part of the first load):
//   /admin                      the section list                       (any admin permission)
//   /admin/users, /admin/users/new, /admin/users/:id                    users.view (users.js)
//   /admin/users/:id/policy     a user's effective policy, explained   settings.view (explain.js)
//   /admin/groups, /admin/groups/:id (settings editor in settings.js)   groups.view (groups.js)
//   /admin/workspaces, /admin/workspaces/new, /admin/workspaces/:id     workspaces.view
//   /admin/zones  zones.view · /admin/agents  agents.view · /admin/sessions  sessions.view
//   /admin/sessions/:id         a session's lifetime, explained        sessions.view (explain.js)
//   /admin/audit  audit.view · /admin/reports  reports.view
// Ids for tests are listed in docs/ui.md ("Admin pages").

const ADMIN_PERMISSIONS = ['users.view', 'groups.view', 'workspaces.view', 'zones.view', 'agents.view',
  'sessions.view', 'audit.view', 'reports.view'];

export function registerAdmin(app) {
  const anyAdmin = (u) => u.isAdmin || ADMIN_PERMISSIONS.some((p) => u.can(p));
  const lazy = (load, fn) => async (ctx) => (await load())[fn](ctx, app);
  const pages = {
    home: () => import('./home.js'),
    users: () => import('./users.js'),
    groups: () => import('./groups.js'),
    workspaces: () => import('./workspaces.js'),
    zones: () => import('./zones.js'),
    agents: () => import('./agents.js'),
    sessions: () => import('./sessions.js'),
    explain: () => import('./explain.js'),
    audit: () => import('./audit.js'),
    reports: () => import('./reports.js'),
  };
  const route = (path, page, fn, title, permission) => app.register(path, lazy(pages[page], fn), { title, permission });

  app.addNav({ id: 'nav-admin', label: 'Admin', path: '/admin', permission: anyAdmin });
  route('/admin', 'home', 'render', 'Administration', anyAdmin);
  route('/admin/users', 'users', 'list', 'Users', 'users.view');
  route('/admin/users/new', 'users', 'create', 'New user', 'users.create');
  route('/admin/users/:id/policy', 'explain', 'policy', 'Effective policy', 'settings.view');
  route('/admin/users/:id', 'users', 'detail', 'User', 'users.view');
  route('/admin/groups', 'groups', 'list', 'Groups', 'groups.view');
  route('/admin/groups/:id', 'groups', 'detail', 'Group', 'groups.view');
  route('/admin/workspaces', 'workspaces', 'list', 'Workspaces', 'workspaces.view');
  route('/admin/workspaces/new', 'workspaces', 'create', 'New workspace', 'workspaces.create');
  route('/admin/workspaces/:id', 'workspaces', 'detail', 'Workspace', 'workspaces.view');
  route('/admin/zones', 'zones', 'list', 'Zones', 'zones.view');
  route('/admin/agents', 'agents', 'list', 'Agents', 'agents.view');
  route('/admin/sessions', 'sessions', 'list', 'Sessions', 'sessions.view');
  route('/admin/sessions/:id', 'explain', 'session', 'Session', 'sessions.view');
  route('/admin/audit', 'audit', 'list', 'Audit log', 'audit.view');
  route('/admin/reports', 'reports', 'render', 'Usage reports', 'reports.view');
}
