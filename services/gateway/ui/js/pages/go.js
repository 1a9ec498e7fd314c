// /go: launch by link (Kasm's convention), after signing in if needed.
//   /go?kasm_id=<session id>                  open that session
//   /go?workspace_id=<id> (or image_id=, or workspace=<id or image name>)
//                                             resume the user's live session of that workspace,
//                                             else start one
//   /go                                       the default workspace (the user's own
//                                             default_workspace_image, else the group's
//                                             default_image): POST /api/v1/sessions/go

import { h, mount } from '../dom.js';
import { requestSession, explainPlacement } from './session.js';

export function registerGo(app) {
  app.register('/go', (ctx) => renderGo(app, ctx), { title: 'Launching', layout: 'bare' });
}

const RESUMABLE = new Set(['requested', 'starting', 'running', 'pausing', 'paused', 'stopping', 'stopped']);

async function renderGo(app, ctx) {
  const { ui, api } = app;
  const q = ctx.query;
  const status = h('p', { id: 'go-status', role: 'status', 'aria-live': 'polite' }, 'Finding your workspace…');
  const box = h('section', { class: 'card launch-box', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Launching'),
    h('progress', { id: 'launch-progress', max: '100', 'aria-label': 'Launch progress' }),
    status);
  mount(ctx.main, box);
  const open = (session) => app.navigate(`/connect/${encodeURIComponent(session.id)}`, { replace: true });
  let workspaceId = q.get('workspace_id') || q.get('image_id') || q.get('workspace') || '';
  try {
    const kasm = q.get('kasm_id') || q.get('session_id');
    if (kasm) return open({ id: kasm });
    if (workspaceId) {
      workspaceId = await resolveWorkspace(app, workspaceId, ctx);
      const live = await api.get('/sessions', { workspace_id: workspaceId }, { signal: ctx.signal });
      const existing = (live.sessions || []).find((s) => RESUMABLE.has(ui.stateName(s.observed_state))
        && ui.stateName(s.desired_state) !== 'deleted');
      if (existing) {
        const st = ui.stateName(existing.observed_state);
        if (st === 'paused' || st === 'stopped') {
          mount(status, 'Resuming your session…');
          await api.post(`/sessions/${encodeURIComponent(existing.id)}/resume`);
        }
        return open(existing);
      }
      mount(status, 'Requesting a session…');
      return open(await requestSession(app, workspaceId, q.get('zone') || ''));
    }
    mount(status, 'Opening your default workspace…');
    return open(await api.post('/sessions/go', {}));
  } catch (err) {
    if (err.name === 'AbortError') return undefined;
    box.querySelector('progress').remove();
    mount(status, 'The workspace could not be opened.');
    box.append(
      h('p', { id: 'go-error', class: 'message message-error', role: 'alert' }, ui.errorText(err)),
      workspaceId && (err.status === 409 || err.status === 503) ? await explainPlacement(app, workspaceId, q.get('zone') || '') : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'launch-retry', class: 'primary', onclick: () => app.navigate(location.pathname + location.search, { replace: true }) }, 'Try again'),
        h('a', { href: '/', class: 'button' }, 'Back to workspaces')));
  }
  return undefined;
}

// An id, or a workspace's image name / friendly name among those the user may launch.
async function resolveWorkspace(app, key, ctx) {
  const list = (await app.api.get('/me/workspaces', undefined, { signal: ctx.signal })).workspaces || [];
  const compact = (s) => String(s || '').replace(/-/g, '').toLowerCase();
  const found = list.find((w) => compact(w.id) === compact(key))
    || list.find((w) => w.name === key)
    || list.find((w) => (w.friendly_name || '').toLowerCase() === key.toLowerCase());
  if (!found) {
    throw Object.assign(new Error(`No workspace "${key}" is available to you.`), { name: 'ApiError', status: 404 });
  }
  return found.id;
}
