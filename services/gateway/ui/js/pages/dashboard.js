// The dashboard: the workspaces the user may launch (GET /me/workspaces) with a search box and
// category filters, their live sessions (GET /sessions) with open / resume / pause / stop /
// delete as their settings allow, and their usage when a usage_limit applies
// (GET /me/usage/check, history from GET /me/usage).

import { h, mount } from '../dom.js';

export function registerDashboard(app) {
  const render = (ctx) => renderDashboard(app, ctx);
  app.register('/', render, { title: 'Workspaces' });
  app.register('/workspaces', render, { title: 'Workspaces' });
}

const LIVE = new Set(['requested', 'starting', 'running', 'pausing', 'paused', 'stopping', 'stopped', 'deleting', 'lost']);
const MOVING = new Set(['requested', 'starting', 'pausing', 'stopping', 'deleting']);

// A workspace's display name.
export function workspaceName(w) {
  return (w && (w.friendly_name || w.name)) || 'Workspace';
}

async function renderDashboard(app, ctx) {
  const { ui, api, user } = app;
  // dashboard_redirect: standard users go to the configured site instead.
  const redirect = String(user.setting('dashboard_redirect', '') || '').trim();
  if (redirect && app.isStandardUser() && /^https?:\/\//i.test(redirect)) {
    mount(ctx.main, h('p', { id: 'dashboard-redirect', role: 'status' }, `Taking you to ${redirect}…`));
    location.replace(redirect);
    return undefined;
  }
  const [workspaces, sessions, usage] = await Promise.all([
    api.get('/me/workspaces', undefined, { signal: ctx.signal }),
    api.get('/sessions', undefined, { signal: ctx.signal }),
    // billing-usage wants the user's id even on the /me route.
    api.get('/me/usage/check', { user_id: user.me.user_id }, { signal: ctx.signal }).catch(() => null),
  ]);
  const list = (workspaces.workspaces || []).filter((w) => w.enabled !== false && !w.hidden);
  const byId = new Map(list.map((w) => [w.id, w]));
  const sessionBox = h('section', { class: 'card', 'aria-labelledby': 'sessions-title' });
  const usageBox = h('div');
  const state = { sessions: (sessions.sessions || []), watches: new Map() };
  ctx.onLeave(() => { for (const stop of state.watches.values()) stop(); });

  const reloadSessions = async () => {
    try {
      const fresh = await api.get('/sessions', undefined, { signal: ctx.signal });
      state.sessions = fresh.sessions || [];
      drawSessions();
    } catch (err) {
      if (err.name !== 'AbortError') ui.toast(ui.errorText(err), 'error');
    }
  };

  // Sessions on their way somewhere are followed live (their watch stream) until they settle.
  const follow = (s) => {
    if (state.watches.has(s.id)) return;
    const stop = api.watch(`/sessions/${encodeURIComponent(s.id)}/watch`, (update) => {
      const i = state.sessions.findIndex((x) => x.id === update.id);
      if (i >= 0) state.sessions[i] = update; else state.sessions.push(update);
      const st = ui.stateName(update.observed_state);
      if (!MOVING.has(st)) { stop(); state.watches.delete(s.id); }
      drawSessions();
    }, () => { stop(); state.watches.delete(s.id); });
    state.watches.set(s.id, stop);
  };

  const drawSessions = () => {
    const live = state.sessions.filter((s) => LIVE.has(ui.stateName(s.observed_state)));
    live.filter((s) => MOVING.has(ui.stateName(s.observed_state))).forEach(follow);
    mount(sessionBox,
      h('h2', { id: 'sessions-title' }, 'Your sessions'),
      live.length === 0
        ? h('p', { id: 'sessions-empty', class: 'empty' }, 'You have no running sessions. Launch a workspace below.')
        : h('div', { class: 'table-wrap' }, h('table', { id: 'session-list', class: 'stack' },
          h('thead', h('tr', ['Workspace', 'State', 'Started', 'Ends', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', live.map((s) => sessionRow(app, s, byId.get(s.workspace_id), reloadSessions))))));
  };

  drawSessions();
  drawUsage(app, usageBox, usage);

  // Workspaces: search and categories.
  const categories = [...new Set(list.flatMap((w) => w.categories || []))].sort();
  let chosen = '';
  const search = ui.field({ id: 'workspace-search', label: 'Search workspaces', type: 'search', placeholder: 'Name, description or category', attrs: { autocomplete: 'off' } });
  const grid = h('ul', { id: 'workspace-list', class: 'workspaces', 'aria-label': 'Workspaces you can launch' });
  const count = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite', id: 'workspace-count' });
  const chips = h('div', { id: 'workspace-categories', class: 'chips', role: 'group', 'aria-label': 'Categories' });
  const drawChips = () => mount(chips, ['', ...categories].map((c) => h('button', {
    type: 'button', class: 'chip', 'aria-pressed': String(chosen === c), dataset: { category: c || 'all' },
    onclick: () => { chosen = c; drawChips(); drawGrid(); },
  }, c || 'All')));
  const zoneSelect = await zonePicker(app, ctx);
  const drawGrid = () => {
    const q = search.input.value.trim().toLowerCase();
    const shown = list.filter((w) => (!chosen || (w.categories || []).includes(chosen))
      && (!q || [w.friendly_name, w.name, w.description, ...(w.categories || [])].join(' ').toLowerCase().includes(q)));
    mount(grid, shown.map((w) => workspaceCard(app, w, zoneSelect)));
    mount(count, list.length === 0 ? '' : `${shown.length} of ${list.length} workspaces`);
    if (list.length === 0) {
      mount(grid, h('li', { id: 'workspaces-empty', class: 'empty' }, 'No workspace is available to you yet. Ask your administrator to assign one to your group.'));
    } else if (shown.length === 0) {
      mount(grid, h('li', { id: 'workspaces-empty', class: 'empty' }, 'No workspace matches your search.'));
    }
  };
  search.input.addEventListener('input', drawGrid);
  drawChips();
  drawGrid();

  return h('div', { class: 'dashboard' },
    ui.pageHeader('Workspaces'),
    usageBox,
    sessionBox,
    h('section', { 'aria-labelledby': 'launch-title' },
      h('h2', { id: 'launch-title' }, 'Launch a workspace'),
      h('div', { class: 'toolbar' }, search, zoneSelect || null),
      categories.length ? chips : null,
      count,
      grid));
}

// allow_zone_selection: a zone picker (Auto = the default behaviour).
async function zonePicker(app, ctx) {
  if (!app.user.setting('allow_zone_selection', false)) return null;
  let zones = [];
  try {
    zones = (await app.api.get('/zones', undefined, { signal: ctx.signal })).zones || [];
  } catch (e) {
    return null;
  }
  if (zones.length === 0) return null;
  return app.ui.select({
    id: 'launch-zone', label: 'Zone',
    options: [{ value: '', label: 'Auto' }, ...zones.map((z) => ({ value: z.id, label: z.name }))],
    help: 'A chosen zone is never widened to others.',
  });
}

function workspaceCard(app, w, zoneSelect) {
  const name = workspaceName(w);
  const launch = () => {
    const zone = zoneSelect && zoneSelect.input.value;
    app.navigate(`/launch/${encodeURIComponent(w.id)}${zone ? `?zone=${encodeURIComponent(zone)}` : ''}`);
  };
  const thumb = w.thumbnail_url && /^(\/|data:image\/)/.test(w.thumbnail_url)
    ? h('img', { src: w.thumbnail_url, alt: '', loading: 'lazy' })
    : h('span', { class: 'initial', 'aria-hidden': 'true' }, name.charAt(0).toUpperCase());
  return h('li', { class: 'workspace', dataset: { workspace: w.name, workspaceId: w.id } },
    h('div', { class: 'thumb' }, thumb),
    h('div', { class: 'body' },
      h('h3', name),
      w.description ? h('p', w.description) : null,
      (w.categories || []).length ? h('div', { class: 'tags' }, w.categories.map((c) => h('span', { class: 'tag' }, c))) : null),
    h('button', { type: 'button', class: 'primary launch', dataset: { action: 'launch' }, 'aria-label': `Launch ${name}`, onclick: launch }, 'Launch'));
}

function sessionRow(app, s, workspace, reload) {
  const { ui, api, user } = app;
  const st = ui.stateName(s.observed_state);
  const desired = ui.stateName(s.desired_state);
  const id = encodeURIComponent(s.id);
  const name = workspace ? workspaceName(workspace) : (s.image || 'Session');
  const buttons = [];
  const button = (action, label, handler, cls) => buttons.push(h('button', {
    type: 'button', class: ['small', cls], dataset: { action }, 'aria-label': `${label} ${name}`,
    onclick: (e) => handler(e.currentTarget),
  }, label));
  if (st === 'running' || st === 'starting' || st === 'requested') {
    button('open', 'Open', () => app.navigate(`/connect/${id}`), 'primary');
  }
  if ((st === 'paused' || st === 'stopped') && desired !== 'deleted') {
    button('resume', 'Resume', (b) => ui.act(b, async () => {
      await api.post(`/sessions/${id}/resume`);
      app.navigate(`/connect/${id}`);
    }), 'primary');
  }
  if (st === 'running' && user.setting('allow_kasm_pause', false)) {
    button('pause', 'Pause', (b) => ui.act(b, () => api.post(`/sessions/${id}/pause`), 'Pausing the session…').then(reload));
  }
  if (st === 'running' && user.setting('allow_kasm_stop', false)) {
    button('stop', 'Stop', (b) => ui.act(b, () => api.post(`/sessions/${id}/stop`), 'Stopping the session…').then(reload));
  }
  if (st !== 'deleting' && user.setting('allow_kasm_delete', true)) {
    button('delete', 'Delete', async (b) => {
      if (!await ui.confirmDialog(`Delete your ${name} session? Everything in it is lost.`, { confirm: 'Delete', danger: true })) return;
      await ui.act(b, () => api.del(`/sessions/${id}`), 'Deleting the session…');
      reload();
    }, 'danger');
  }
  return h('tr', { dataset: { session: s.id, state: st } },
    h('td', { 'data-label': 'Workspace' }, name),
    h('td', { 'data-label': 'State' }, h('span', { class: ['state', `state-${st}`] }, st),
      s.message && st !== 'running' ? h('div', { class: 'help' }, s.message) : null),
    h('td', { 'data-label': 'Started' }, ui.formatDate(s.started_at || s.created_at)),
    h('td', { 'data-label': 'Ends' }, ui.formatDate(s.expires_at)),
    h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' }, buttons)));
}

function drawUsage(app, box, usage) {
  const { ui, api } = app;
  if (!usage || !usage.limited) { mount(box); return; }
  const total = (usage.used_seconds || 0) + (usage.remaining_seconds || 0);
  const history = h('div', { id: 'usage-detail' });
  const details = h('details', h('summary', 'Details by day'), history);
  details.addEventListener('toggle', async () => {
    if (!details.open || history.dataset.loaded) return;
    history.dataset.loaded = '1';
    mount(history, ui.spinner());
    try {
      const summary = await api.get('/me/usage', { user_id: app.user.me.user_id, days: 14 });
      mount(history, ui.table({
        caption: `Your time per day (${summary.timezone || 'UTC'})`,
        columns: [{ key: 'date', label: 'Day' }, { key: 'seconds', label: 'Time', render: (r) => ui.formatHours(r.seconds) }],
        rows: (summary.history || []).slice().reverse(),
      }));
    } catch (err) {
      mount(history, h('p', { class: 'message message-error' }, ui.errorText(err)));
    }
  });
  mount(box, h('section', { id: 'usage', class: 'card', 'aria-labelledby': 'usage-title' },
    h('h2', { id: 'usage-title' }, 'Session time'),
    h('p', usage.summary || ''),
    h('progress', { class: 'usage-bar', max: String(total || 1), value: String(usage.used_seconds || 0), 'aria-label': 'Time used' }),
    h('p', 'Used: ', h('strong', { id: 'usage-used' }, ui.formatHours(usage.used_seconds || 0)),
      ' · Remaining: ', h('strong', { id: 'usage-remaining' }, ui.formatHours(usage.remaining_seconds || 0)),
      usage.window_end ? ` · Renews ${ui.formatDate(usage.window_end)}` : ''),
    usage.allowed ? null : h('p', { class: 'message message-error', role: 'alert' }, 'Your session time is used up: new sessions cannot start until it renews.'),
    details));
}
