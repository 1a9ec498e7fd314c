// Launching and using a session.
//
// /launch/<workspace id>   POST /api/v1/sessions, then the session view; a refusal is shown
//                          with the reason and, from GET /api/v1/placement, each agent's verdict.
// /connect/<session id>    the session view: live progress from GET /sessions/<id>/watch
//                          (Server-Sent Events) until it runs, then /session/<id>/ full-window in
//                          an iframe, with the control panel (control_panel.* settings; pause,
//                          stop, delete as allow_kasm_* allow), keepalives every
//                          keepalive_interval, and a countdown when a time limit ends it.

import { h, mount } from '../dom.js';
import { workspaceName } from './dashboard.js';

export function registerSession(app) {
  app.register('/launch/:workspace', (ctx) => renderLaunch(app, ctx), { title: 'Launching', layout: 'bare' });
  app.register('/connect/:id', (ctx) => renderConnect(app, ctx), { title: 'Session', layout: 'full' });
}

function clientOptions(zone) {
  const options = {};
  try { options.client_timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* none */ }
  options.client_language = navigator.language || '';
  if (zone) options.zone_id = zone;
  return options;
}

// Requests a session of a workspace (also used by /go). Resolves the session.
export function requestSession(app, workspaceId, zone) {
  return app.api.post('/sessions', { workspace_id: workspaceId, options: clientOptions(zone) });
}

// Why nothing could place the workspace: the placement explanation, agent by agent.
export async function explainPlacement(app, workspaceId, zone) {
  const box = h('div', { id: 'launch-explain', class: 'explain', 'aria-live': 'polite' });
  try {
    const why = await app.api.get('/placement', { workspace_id: workspaceId, zone_id: zone || undefined });
    const agents = why.agents || [];
    mount(box,
      h('h2', 'Why no agent was chosen'),
      why.summary ? h('p', why.summary) : null,
      agents.length === 0 ? h('p', 'No agent is reporting in right now.') : h('ul', agents.map((a) => h('li',
        h('strong', a.agent_id), a.zone_id ? ` (zone ${a.zone_id})` : '', ': ',
        a.chosen ? 'would be chosen.' : (a.rejected_because || 'acceptable.'),
        h('span', { class: 'muted' }, ` Free: ${Number(a.free_cores || 0).toFixed(1)} cores, ${a.free_memory_mib || 0} MiB, ${a.free_gpus || 0} GPUs${a.has_image ? ', has the image' : ''}.`)))));
  } catch (err) {
    // The refusal already said why (the same sentence, usually): nothing to add.
    return null;
  }
  return box;
}

async function renderLaunch(app, ctx) {
  const { ui } = app;
  const workspaceId = ctx.params.workspace;
  const zone = ctx.query.get('zone') || '';
  const status = h('p', { id: 'launch-state', role: 'status', 'aria-live': 'polite' }, 'Requesting a session…');
  const box = h('section', { class: 'card launch-box', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Launching'),
    h('progress', { id: 'launch-progress', max: '100', 'aria-label': 'Launch progress' }),
    status);
  mount(ctx.main, box);
  try {
    const session = await requestSession(app, workspaceId, zone);
    if (ctx.signal.aborted) return undefined;
    app.navigate(`/connect/${encodeURIComponent(session.id)}`, { replace: true });
  } catch (err) {
    mount(status, 'The session could not be started.');
    box.querySelector('progress').remove();
    box.append(
      h('p', { id: 'launch-error', class: 'message message-error', role: 'alert' }, ui.errorText(err)),
      err.status === 409 || err.status === 503 ? await explainPlacement(app, workspaceId, zone) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'launch-retry', class: 'primary', onclick: () => app.navigate(location.pathname + location.search, { replace: true }) }, 'Try again'),
        h('a', { href: '/', class: 'button' }, 'Back to workspaces')));
  }
  return undefined;
}

// ---- the session view -------------------------------------------------------------------

const ENDED = new Set(['deleted', 'failed', 'lost']);

async function renderConnect(app, ctx) {
  const { ui, api, user } = app;
  const id = ctx.params.id;
  const path = `/sessions/${encodeURIComponent(id)}`;
  const first = await api.get(path, undefined, { signal: ctx.signal });
  const workspaces = await api.get('/me/workspaces', undefined, { signal: ctx.signal }).catch(() => ({ workspaces: [] }));
  const workspace = (workspaces.workspaces || []).find((w) => w.id === first.workspace_id);
  const name = workspace ? workspaceName(workspace) : (first.image || 'Session');
  document.title = `${name} · Atrium`;

  const view = {
    session: first, frame: null, timers: [], explained: null, tipShown: false, warned: false,
  };
  const root = h('div', { class: 'session-view' });
  const overlay = h('div', { class: 'session-overlay' });
  const panel = controlPanel(app, id, name, workspace, view);
  root.append(overlay, panel.el);
  mount(ctx.main, root);

  const stopTimers = () => { view.timers.forEach((t) => clearInterval(t)); view.timers = []; };
  ctx.onLeave(() => {
    stopTimers();
    if (view.stopWatch) view.stopWatch();
    panel.dispose();
  });

  // Progress, the reason for a failure, or the frame once running.
  const update = async (s) => {
    view.session = s;
    const st = ui.stateName(s.observed_state);
    panel.update(s);
    if (st === 'running') {
      overlay.hidden = true;
      if (!view.frame) openFrame(app, ctx, view, root, id, panel);
      if (!view.timers.length) startTimers(app, ctx, view, id, panel);
      return;
    }
    stopTimers();
    if (view.frame) { view.frame.remove(); view.frame = null; }
    overlay.hidden = false;
    if (ENDED.has(st)) {
      if (view.stopWatch) { view.stopWatch(); view.stopWatch = null; }
      mount(overlay, await endedCard(app, s, st, workspace));
      return;
    }
    mount(overlay, progressCard(app, s, st, id, view));
  };

  await update(first);
  if (!ENDED.has(ui.stateName(first.observed_state))) {
    view.stopWatch = api.watch(`${path}/watch`, (s) => { update(s); }, (message) => ui.toast(message, 'error'));
  }
  return undefined;
}

function progressCard(app, s, st, id, view) {
  const { ui, api, user } = app;
  const waiting = st === 'paused' || st === 'stopped';
  const resumable = waiting && ui.stateName(s.desired_state) !== 'deleted';
  const percent = Math.max(0, Math.min(100, Number(s.progress) || 0));
  return h('section', { class: 'card launch-box', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title', tabindex: '-1' }, waiting ? `Session ${st}` : 'Starting your session'),
    waiting ? null : h('progress', { id: 'launch-progress', max: '100', value: String(percent), 'aria-label': 'Launch progress', 'aria-valuetext': `${percent} percent` }),
    h('p', { id: 'launch-state', role: 'status', 'aria-live': 'polite' }, `${st}${waiting ? '' : ` · ${percent}%`}`),
    h('p', { id: 'launch-message', class: 'muted' }, s.message && s.message !== st ? s.message : ''),
    h('div', { class: 'actions' },
      resumable ? h('button', {
        type: 'button', id: 'session-resume', class: 'primary',
        onclick: (e) => ui.act(e.currentTarget, () => api.post(`/sessions/${encodeURIComponent(id)}/resume`), 'Resuming…'),
      }, 'Resume') : null,
      h('a', { href: '/', class: 'button' }, 'Back to workspaces'),
      user.setting('allow_kasm_delete', true) ? h('button', {
        type: 'button', class: 'danger', id: 'launch-cancel',
        onclick: (e) => deleteSession(app, e.currentTarget, id, view),
      }, waiting ? 'Delete session' : 'Cancel launch') : null));
}

async function endedCard(app, s, st, workspace) {
  const { ui, api } = app;
  const failed = st === 'failed' || st === 'lost';
  let reasons = null;
  if (failed) {
    try {
      const why = await api.get(`/sessions/${encodeURIComponent(s.id)}/explain`);
      reasons = (why.reasons || []).length ? h('ul', why.reasons.map((r) => h('li', r))) : null;
    } catch (e) { reasons = null; }
  }
  const noAgent = failed && !s.agent_id;
  return h('section', { class: 'card launch-box', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title', tabindex: '-1' }, failed ? 'The session failed' : 'The session has ended'),
    h('p', { id: 'launch-state', role: 'status' }, st),
    failed
      ? h('div', { id: 'launch-error', class: 'message message-error', role: 'alert' }, s.message || 'No reason was given.', reasons)
      : h('p', { id: 'launch-message', class: 'muted' }, s.message || 'It was deleted.'),
    noAgent ? await explainPlacement(app, s.workspace_id, s.zone_id) : null,
    h('div', { class: 'actions' },
      workspace ? h('button', { type: 'button', id: 'launch-retry', class: 'primary', onclick: () => app.navigate(`/launch/${encodeURIComponent(workspace.id)}`) }, failed ? 'Try again' : 'Launch again') : null,
      h('a', { href: '/', class: 'button' }, 'Back to workspaces')));
}

function openFrame(app, ctx, view, root, id, panel) {
  const frame = h('iframe', {
    id: 'session-frame', title: 'Your workspace session', src: panel.frameUrl(),
    allow: 'fullscreen; clipboard-read; clipboard-write; microphone; camera; gamepad; autoplay',
  });
  view.frame = frame;
  root.append(frame);
  // The frame is our own origin: its input counts as activity (idle_disconnect), and Ctrl twice
  // inside it toggles the panel.
  frame.addEventListener('load', () => {
    panel.frameLoaded(frame);
    try {
      const doc = frame.contentDocument;
      if (!doc) return;
      ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'].forEach((e) => doc.addEventListener(e, app.noteActivity, { passive: true, capture: true }));
      doc.addEventListener('keydown', panel.onKey, { capture: true });
    } catch (e) { /* another origin: nothing to listen to */ }
  });
  frame.focus();
  if (!view.tipShown && app.user.settings && app.user.settings.show_tips_during_session !== false) {
    view.tipShown = true;
    const toggle = app.user.settings && app.user.settings.toggle_control_panel;
    const tip = h('div', { id: 'session-tip', class: 'session-tip', role: 'status' },
      h('span', 'The control panel is behind the tab at the left edge of the screen', toggle ? ', or press Ctrl twice.' : '.'),
      h('button', { type: 'button', class: 'small', id: 'session-tip-close', onclick: () => tip.remove() }, 'Got it'));
    root.append(tip);
    const t = setTimeout(() => tip.remove(), 12000);
    ctx.onLeave(() => clearTimeout(t));
  }
}

// Keepalives every keepalive_interval seconds, and the countdown when a limit ends the session.
function startTimers(app, ctx, view, id, panel) {
  const { api, ui, user } = app;
  const interval = Math.max(10, Number(user.setting('keepalive_interval', 300)) || 300);
  const keepalive = async () => {
    try {
      const answer = await api.post(`/sessions/${encodeURIComponent(id)}/keepalive`, undefined, { signal: ctx.signal });
      await explain();
      // Not extended: say why once, unless the countdown already shows the time limit.
      const rule = view.explained && view.explained.ending_rule;
      if (!answer.extended && answer.message && !view.warnedKeepalive && rule !== 'session_time_limit') {
        view.warnedKeepalive = true;
        ui.toast(answer.message, 'info');
      }
    } catch (err) {
      if (err.name !== 'AbortError') ui.toast(`Keepalive: ${ui.errorText(err)}`, 'error');
    }
  };
  const explain = async () => {
    try {
      view.explained = await api.get(`/sessions/${encodeURIComponent(id)}/explain`, undefined, { signal: ctx.signal });
    } catch (e) { /* the countdown keeps its last answer */ }
    panel.countdown(view.explained);
  };
  keepalive();
  view.timers.push(setInterval(keepalive, interval * 1000));
  view.timers.push(setInterval(() => panel.countdown(view.explained), 1000));
}

async function deleteSession(app, button, id, view) {
  const { ui, api } = app;
  if (!await ui.confirmDialog('Delete this session? Everything in it is lost.', { confirm: 'Delete', danger: true })) return;
  const done = await ui.act(button, () => api.del(`/sessions/${encodeURIComponent(id)}`), 'The session is being deleted.');
  if (done) {
    if (view.stopWatch) { view.stopWatch(); view.stopWatch = null; }
    app.navigate('/');
  }
}

// ---- the control panel ------------------------------------------------------------------

// Streaming quality is offered when the frame shows a noVNC client (vnc.html, whose `quality`
// parameter sets the JPEG quality, 0-9): the frame is our own origin, so the page can tell.
function novncLocation(frame) {
  try {
    const loc = frame && frame.contentWindow && frame.contentWindow.location;
    return loc && /\/vnc(_lite)?\.html$/.test(loc.pathname) ? new URL(loc.href) : null;
  } catch (e) {
    return null;
  }
}

const QUALITY = [
  { value: '', label: 'Automatic' },
  { value: '2', label: 'Low (saves bandwidth)' },
  { value: '6', label: 'Medium' },
  { value: '9', label: 'High' },
];

function controlPanel(app, id, name, workspace, view) {
  const { ui, api, user } = app;
  const show = (setting) => user.setting(`control_panel.${setting}`, true) !== false;
  const body = h('div', { class: 'panel-body', id: 'control-panel-body', hidden: true });
  const toggle = h('button', { type: 'button', id: 'panel-toggle', 'aria-expanded': 'false', 'aria-controls': 'control-panel-body', 'aria-label': 'Control panel', title: 'Control panel' }, '☰');
  const el = h('aside', { id: 'control-panel', class: 'control-panel', 'aria-label': 'Session control panel' }, body, toggle);
  const status = h('span', { id: 'session-status', class: 'state' });
  const countdown = h('p', { id: 'session-countdown', role: 'timer', 'aria-live': 'off', hidden: true });
  let quality = '';

  const setOpen = (open) => {
    body.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) { const first = body.querySelector('button, select'); if (first) first.focus(); }
    else if (view.frame) view.frame.focus();
  };
  toggle.addEventListener('click', () => setOpen(body.hidden));
  el.addEventListener('keydown', (e) => { if (e.key === 'Escape') setOpen(false); });

  // Ctrl pressed twice within half a second toggles the panel (toggle_control_panel).
  let lastCtrl = 0;
  const onKey = (e) => {
    if (!(user.settings && user.settings.toggle_control_panel)) return;
    if (e.key !== 'Control' || e.repeat) { lastCtrl = 0; return; }
    const now = Date.now();
    if (now - lastCtrl < 500) { lastCtrl = 0; setOpen(body.hidden); } else lastCtrl = now;
  };
  document.addEventListener('keydown', onKey, { capture: true });

  const fullscreen = h('button', { type: 'button', id: 'panel-fullscreen', onclick: () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch(() => ui.toast('The browser refused full screen.', 'error'));
  } }, 'Full screen');
  const onFullscreen = () => mount(fullscreen, document.fullscreenElement ? 'Exit full screen' : 'Full screen');
  document.addEventListener('fullscreenchange', onFullscreen);

  const path = `/sessions/${encodeURIComponent(id)}`;
  const action = (verb, done) => (e) => ui.act(e.currentTarget, () => api.post(`${path}/${verb}`), done);
  const pause = h('button', { type: 'button', id: 'panel-pause', onclick: action('pause', 'Pausing the session…') }, 'Pause session');
  const stop = h('button', { type: 'button', id: 'panel-stop', onclick: action('stop', 'Stopping the session…') }, 'Stop session');
  const resume = h('button', { type: 'button', id: 'panel-resume', class: 'primary', onclick: action('resume', 'Resuming the session…') }, 'Resume session');
  const del = h('button', { type: 'button', id: 'panel-delete', class: 'danger', onclick: (e) => deleteSession(app, e.currentTarget, id, view) }, 'Delete session');
  const qualitySelect = ui.select({ id: 'panel-quality', label: 'Streaming quality', options: QUALITY, value: '' });
  qualitySelect.hidden = true;
  qualitySelect.input.addEventListener('change', () => {
    quality = qualitySelect.input.value;
    const url = novncLocation(view.frame);
    if (url) {
      if (quality) url.searchParams.set('quality', quality); else url.searchParams.delete('quality');
      view.frame.src = url.pathname + url.search + url.hash;
    }
    ui.toast(`Streaming quality: ${QUALITY.find((q) => q.value === quality).label}.`, 'ok', 2500);
  });

  // Advanced entries that work through a noVNC client in the frame (same origin): the on-screen
  // keyboard (noVNC's own hidden input) and pointer lock on its canvas.
  const advanced = (name) => user.setting(`control_panel.advanced_settings.${name}`, true) !== false;
  const novncDoc = () => {
    try { return novncLocation(view.frame) ? view.frame.contentDocument : null; } catch (e) { return null; }
  };
  const keyboard = h('button', { type: 'button', id: 'panel-keyboard', hidden: true, onclick: () => {
    const input = novncDoc() && novncDoc().getElementById('noVNC_keyboardinput');
    if (input) { setOpen(false); input.focus(); } else ui.toast('This workspace has no on-screen keyboard.', 'info');
  } }, 'On-screen keyboard');
  const pointerLock = h('button', { type: 'button', id: 'panel-pointer-lock', hidden: true, onclick: () => {
    const canvas = novncDoc() && novncDoc().querySelector('canvas');
    if (!canvas || !canvas.requestPointerLock) { ui.toast('The pointer cannot be locked here.', 'info'); return; }
    setOpen(false);
    Promise.resolve(canvas.requestPointerLock()).then(() => ui.toast('Pointer locked: press Escape to release it.', 'info', 3000))
      .catch(() => ui.toast('The browser refused to lock the pointer.', 'error'));
  } }, 'Lock the pointer');

  const canPause = user.setting('allow_kasm_pause', false);
  const canStop = user.setting('allow_kasm_stop', false);
  const canDelete = user.setting('allow_kasm_delete', true) && show('show_delete_session');

  mount(body,
    h('strong', name), status, countdown,
    show('show_return_to_workspaces') ? h('button', { type: 'button', id: 'panel-workspaces', onclick: () => app.navigate('/') }, 'Return to workspaces') : null,
    show('show_fullscreen') && document.fullscreenEnabled ? fullscreen : null,
    show('show_streaming_quality') ? qualitySelect : null,
    advanced('show_keyboard_controls') ? keyboard : null,
    advanced('show_pointer_lock') ? pointerLock : null,
    canPause ? pause : null,
    canStop ? stop : null,
    resume,
    canDelete ? del : null,
    show('show_logout') ? h('button', { type: 'button', id: 'panel-logout', onclick: () => app.signOut('You signed out.') }, 'Sign out') : null);

  function frameUrl() {
    return `/session/${encodeURIComponent(id)}/`;
  }

  return {
    el,
    onKey,
    frameUrl,
    // Called on every load of the frame: the quality choice appears for noVNC clients.
    frameLoaded(frame) {
      const url = novncLocation(frame);
      qualitySelect.hidden = !url;
      keyboard.hidden = !url;
      pointerLock.hidden = !url;
      if (url) qualitySelect.input.value = url.searchParams.get('quality') || '';
    },
    update(s) {
      const st = ui.stateName(s.observed_state);
      mount(status, st);
      status.className = `state state-${st}`;
      pause.hidden = st !== 'running';
      stop.hidden = st !== 'running';
      resume.hidden = !(st === 'paused' || st === 'stopped');
      del.hidden = st === 'deleting' || st === 'deleted';
    },
    // The countdown: shown when a session_time_limit (or a spent usage allowance) ends it.
    countdown(explained) {
      const rule = explained && explained.ending_rule;
      const ends = explained && explained.ends_at ? Date.parse(explained.ends_at) : NaN;
      if (!(rule === 'session_time_limit' || rule === 'usage_limit') || Number.isNaN(ends)) {
        countdown.hidden = true;
        return;
      }
      const left = Math.max(0, (ends - Date.now()) / 1000);
      countdown.hidden = false;
      const what = rule === 'usage_limit' ? 'Usage allowance' : 'Time left';
      mount(countdown, `${what}: ${ui.formatDuration(left)}`);
      countdown.classList.toggle('urgent', left < 300);
      if (left < 300 && !view.warned) {
        view.warned = true;
        ui.toast(`This session ends in ${ui.formatDuration(left)} (${explained.action || 'delete'}).`, 'info', 10000);
      }
    },
    dispose() {
      document.removeEventListener('keydown', onKey, { capture: true });
      document.removeEventListener('fullscreenchange', onFullscreen);
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    },
  };
}
