// Workspaces: the list (/admin/workspaces), a new one (/admin/workspaces/new) and one workspace
// (/admin/workspaces/<id>): every field; run_config, exec hooks, volume mappings and the
// persistent profile path for administrators (the policy service withholds them from others);
// its file mappings.

import { h, mount, ui, api, page, localList, badge, zones as allZones, workspaceLabel, fieldMessage } from './common.js';
import * as filemaps from './filemaps.js';

const enc = encodeURIComponent;
const HOOKS = [['first_launch', 'First launch'], ['go', 'Go'], ['assign', 'Assign']];

export async function list(ctx) {
  const includeDisabled = h('input', { id: 'workspaces-include-disabled', type: 'checkbox', checked: true, onchange: load });
  const table = localList({
    id: 'workspaces-table',
    placeholder: 'Filter by name, image or category',
    match: (w, t) => [w.friendly_name, w.name, w.description, ...(w.categories || [])].some((x) => String(x || '').toLowerCase().includes(t)),
    table: {
      rowKey: (w) => w.id,
      empty: 'No workspaces.',
      columns: [
        { key: 'friendly_name', label: 'Workspace', render: (w) => h('a', { href: `/admin/workspaces/${enc(w.id)}`, dataset: { workspace: w.name } }, workspaceLabel(w)) },
        { key: 'name', label: 'Image', render: (w) => h('code', w.name) },
        { key: 'state', label: 'State', render: (w) => [w.enabled ? badge('enabled', 'ok') : badge('disabled', 'danger'), w.hidden ? badge('hidden') : null] },
        { key: 'resources', label: 'Resources', render: (w) => `${w.cores} cores · ${w.memory_mib} MiB${w.gpu_count ? ` · ${w.gpu_count} GPU` : ''}` },
        { key: 'categories', label: 'Categories', render: (w) => (w.categories || []).join(', ') },
      ],
    },
  });
  async function load() {
    try {
      const rows = [];
      let token = '';
      do {
        const res = await api.get('/workspaces', { include_disabled: includeDisabled.checked || undefined, 'page.page_size': 1000, 'page.page_token': token || undefined }, { signal: ctx.signal });
        rows.push(...(res.workspaces || []));
        token = (res.page && res.page.next_page_token) || '';
      } while (token);
      table.set(rows);
    } catch (err) {
      if (err.name !== 'AbortError') ui.toast(ui.errorText(err), 'error');
    }
  }
  await load();
  const add = ctx.user.can('workspaces.create') ? h('a', { href: '/admin/workspaces/new', id: 'workspace-new', class: 'button primary' }, 'Add workspace') : null;
  return page(ctx, 'Workspaces', [add],
    h('div', { class: 'field check' }, includeDisabled, h('label', { for: 'workspaces-include-disabled' }, 'Include disabled workspaces')),
    table.el);
}

export function create(ctx) {
  return form(ctx, null);
}

export async function detail(ctx) {
  const w = await api.get(`/workspaces/${enc(ctx.params.id)}`, undefined, { signal: ctx.signal });
  return form(ctx, w);
}

function envText(env) {
  return Object.entries(env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

function parseEnv(text, field) {
  const out = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf('=');
    if (i <= 0) throw new api.ApiError(400, 'invalid_field', `"${line}" is not KEY=VALUE.`, field);
    out[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return out;
}

function volumesText(list) {
  return (list || []).map((v) => `${v.host_path}:${v.container_path}:${v.mode || 'rw'}`).join('\n');
}

function parseVolumes(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
    const [host_path, container_path, mode = 'rw'] = line.split(':');
    if (!host_path || !container_path) {
      throw new api.ApiError(400, 'invalid_field', `"${line}" is not /host/path:/container/path:rw or ro.`, 'volume_mappings');
    }
    return { host_path, container_path, mode };
  });
}

// A refusal naming a nested field ("workspace.volume_mappings[0].host_path") names the form's
// input that holds it ("volume_mappings"), so that input is marked; the message keeps the path.
function retarget(err) {
  if (!err || err.name !== 'ApiError' || !err.field) return err;
  const parts = err.field.replace(/^workspace\./, '').split('.').map((p) => p.replace(/\[\d+\]$/, ''));
  let name = parts[0];
  if (name === 'exec_config' && parts[1]) name = `hook_${parts[1]}_${parts[2] === 'environment' ? 'env' : (parts[2] || 'cmd')}`;
  return new api.ApiError(err.status, err.code, fieldMessage(err).replace(/^workspace\./, ''), name);
}

async function form(ctx, w) {
  const user = ctx.user;
  const isNew = !w;
  const canWrite = isNew ? user.can('workspaces.create') : user.can('workspaces.modify');
  const admin = user.isAdmin;
  w = w || { name: '', friendly_name: '', description: '', categories: [], enabled: true, hidden: false, cores: 1, memory_mib: 1024, gpu_count: 0,
    require_gpu: false, run_config_json: '{}', exec_config: {}, volume_mappings: [], persistent_profile_path: '', zone_id: '', thumbnail_url: '' };
  const zoneList = user.can('zones.view') ? await allZones(true).catch(() => []) : [];

  const F = (id, name, label, value, opts = {}) => ui.field({ id: `workspace-${id}`, name, label, value: value ?? '', ...opts });
  const C = (id, name, label, checked) => ui.checkbox({ id: `workspace-${id}`, name, label, checked });
  const general = h('fieldset', h('legend', 'General'),
    h('div', { class: 'grid-3' },
      F('name', 'name', 'Image (Docker reference)', w.name, { required: true, placeholder: 'kasmweb/chrome:1.16.0' }),
      F('friendly-name', 'friendly_name', 'Friendly name', w.friendly_name),
      F('categories', 'categories', 'Categories (comma separated)', (w.categories || []).join(', ')),
      F('thumbnail', 'thumbnail_url', 'Thumbnail (same-origin path or data: URL)', w.thumbnail_url),
      ui.select({ id: 'workspace-zone', name: 'zone_id', label: 'Zone', value: w.zone_id || '',
        options: [{ value: '', label: 'Any zone' }, ...zoneList.map((z) => ({ value: z.id, label: z.name })),
          ...(w.zone_id && !zoneList.some((z) => z.id === w.zone_id) ? [{ value: w.zone_id, label: w.zone_id }] : [])] }),
      F('time-limit', 'session_time_limit_secs', 'Session time limit (seconds; empty: none)', w.session_time_limit_secs ?? '', { type: 'number', attrs: { min: 0 } })),
    F('description', 'description', 'Description', w.description, { type: 'textarea' }),
    h('div', { class: 'checks' }, C('enabled', 'enabled', 'Enabled', w.enabled), C('hidden', 'hidden', 'Hidden from the dashboard', w.hidden)));
  const resources = h('fieldset', h('legend', 'Resources'),
    h('div', { class: 'grid-3' },
      F('cores', 'cores', 'CPU cores', String(w.cores), { type: 'number', attrs: { min: 0, step: 'any' } }),
      F('memory', 'memory_mib', 'Memory (MiB)', String(w.memory_mib), { type: 'number', attrs: { min: 0 } }),
      F('gpus', 'gpu_count', 'GPUs', String(w.gpu_count || 0), { type: 'number', attrs: { min: 0 } })),
    C('require-gpu', 'require_gpu', 'Require a GPU', w.require_gpu));

  let hostAccess;
  if (admin) {
    const ec = w.exec_config || {};
    hostAccess = h('fieldset', { id: 'workspace-host-access' }, h('legend', 'Host access (administrators only)'),
      w.host_access_withheld ? h('p', { class: 'message message-info' }, 'These fields were withheld from this answer; saving keeps the stored values.') : null,
      F('run-config', 'run_config_json', 'run_config (JSON object of docker run parameters)', w.run_config_json || '{}', { type: 'textarea', attrs: { class: 'mono', spellcheck: 'false' } }),
      F('volumes', 'volume_mappings', 'Volume mappings (one per line: /host/path:/container/path:rw or ro)', volumesText(w.volume_mappings), { type: 'textarea', attrs: { class: 'mono', spellcheck: 'false' } }),
      F('profile-path', 'persistent_profile_path', 'Persistent profile path (with {username} or {user_id}; empty: none)', w.persistent_profile_path),
      h('h3', 'Exec hooks'),
      h('div', { class: 'hooks' }, HOOKS.map(([key, label]) => {
        const hook = ec[key] || {};
        return h('fieldset', { id: `workspace-hook-${key}` }, h('legend', label),
          F(`hook-${key}-cmd`, `hook_${key}_cmd`, 'Command', hook.cmd, { attrs: { class: 'mono' } }),
          F(`hook-${key}-user`, `hook_${key}_user`, 'User', hook.user),
          F(`hook-${key}-workdir`, `hook_${key}_workdir`, 'Working directory', hook.workdir),
          F(`hook-${key}-env`, `hook_${key}_env`, 'Environment (KEY=VALUE per line)', envText(hook.environment), { type: 'textarea', attrs: { class: 'mono', rows: 2 } }),
          C(`hook-${key}-privileged`, `hook_${key}_privileged`, 'Privileged', hook.privileged));
      })));
  } else {
    hostAccess = h('p', { class: 'muted' }, 'run_config, exec hooks, volume mappings and the persistent profile path are shown to administrators only; saving keeps them.');
  }

  const box = ui.messageBox('workspace-message');
  const el = h('form', { id: 'workspace-form', class: 'card subform' }, general, resources, hostAccess, box,
    canWrite ? h('button', { type: 'submit', id: 'workspace-save', class: 'primary' }, isNew ? 'Create workspace' : 'Save workspace') : null);
  if (!canWrite) el.querySelectorAll('input, select, textarea').forEach((i) => { i.disabled = true; });

  ui.onSubmit(el, box, (fd) => save(fd).catch((err) => { throw retarget(err); }));
  async function save(fd) {
    const get = (k) => String(fd.get(k) ?? '');
    const out = {
      ...(isNew ? {} : { id: w.id }),
      name: get('name').trim(),
      friendly_name: get('friendly_name'),
      description: get('description'),
      categories: get('categories').split(',').map((s) => s.trim()).filter(Boolean),
      enabled: fd.get('enabled') === 'on',
      hidden: fd.get('hidden') === 'on',
      cores: Number(get('cores')) || 0,
      memory_mib: Number(get('memory_mib')) || 0,
      gpu_count: Number(get('gpu_count')) || 0,
      require_gpu: fd.get('require_gpu') === 'on',
      zone_id: get('zone_id'),
      thumbnail_url: get('thumbnail_url').trim(),
    };
    if (get('session_time_limit_secs').trim() !== '') out.session_time_limit_secs = Number(get('session_time_limit_secs'));
    if (admin) {
      out.run_config_json = get('run_config_json').trim() || '{}';
      out.volume_mappings = parseVolumes(get('volume_mappings'));
      out.persistent_profile_path = get('persistent_profile_path').trim();
      const exec = {};
      for (const [key] of HOOKS) {
        const hook = {
          cmd: get(`hook_${key}_cmd`), user: get(`hook_${key}_user`), workdir: get(`hook_${key}_workdir`),
          environment: parseEnv(get(`hook_${key}_env`), `exec_config.${key}.environment`), privileged: fd.get(`hook_${key}_privileged`) === 'on',
        };
        if (hook.cmd || hook.user || hook.workdir || hook.privileged || Object.keys(hook.environment).length) exec[key] = hook;
      }
      out.exec_config = exec;
    } else if (!isNew) {
      // Withheld fields are kept by the server when host_access_withheld comes back set.
      out.host_access_withheld = true;
    }
    if (isNew) {
      const created = await api.post('/workspaces', { workspace: out });
      ui.toast(`Workspace ${workspaceLabel(created)} created.`, 'ok');
      ctx.app.navigate(`/admin/workspaces/${enc(created.id)}`);
      return undefined;
    }
    const saved = await api.put(`/workspaces/${enc(w.id)}`, out);
    document.getElementById('page-title').textContent = `Workspace ${workspaceLabel(saved)}`;
    return 'Saved.';
  }

  const actions = [];
  if (!isNew && user.can('workspaces.delete')) {
    actions.push(h('button', { type: 'button', id: 'workspace-delete', class: 'danger', onclick: async (e) => {
      if (!await ui.confirmDialog(`Delete the workspace ${workspaceLabel(w)}?`, { danger: true, confirm: 'Delete workspace' })) return;
      if (await ui.act(e.currentTarget, () => api.del(`/workspaces/${enc(w.id)}`), 'Workspace deleted.')) ctx.app.navigate('/admin/workspaces');
    } }, 'Delete workspace'));
  }
  const facts = isNew ? null : h('p', { class: 'muted', id: 'workspace-facts' }, `Id ${w.id} · created ${ui.formatDate(w.created_at)} · updated ${ui.formatDate(w.updated_at)}`);
  const rate = !isNew && user.can('reports.view') ? rateCard(ctx, w) : null;
  const maps = !isNew && user.can('file_mappings.view') ? filemaps.card(ctx, { workspace_id: w.id }) : null;
  return page(ctx, isNew ? 'New workspace' : `Workspace ${workspaceLabel(w)}`, actions, facts, el, rate, maps);
}

// The workspace's hourly cost rate (usage reports multiply hours by it).
function rateCard(ctx, w) {
  const canModify = ctx.user.can('billing.modify');
  const body = h('div', ui.spinner());
  const box = ui.messageBox('workspace-rate-message');
  (async () => {
    let rate = null;
    try {
      const res = await api.get('/workspace-rates', undefined, { signal: ctx.signal });
      rate = (res.rates || []).find((r) => r.workspace_id === w.id) || null;
    } catch (err) {
      mount(body, h('p', { class: 'message message-error' }, ui.errorText(err)));
      return;
    }
    const form = h('form', { id: 'workspace-rate-form', class: 'inline-form' },
      ui.field({ id: 'workspace-rate', name: 'per_hour', label: 'Cost per hour', type: 'number', value: rate ? String(rate.per_hour) : '', attrs: { min: 0, step: 'any' } }),
      ui.field({ id: 'workspace-rate-currency', name: 'currency', label: 'Currency (ISO 4217)', value: rate ? rate.currency : 'EUR', attrs: { maxlength: 3 } }),
      canModify ? h('button', { type: 'submit', id: 'workspace-rate-save', class: 'primary' }, 'Set rate') : null,
      canModify && rate ? h('button', { type: 'button', id: 'workspace-rate-delete', onclick: (e) => ui.act(e.currentTarget,
        () => api.del(`/workspace-rates/${enc(w.id)}`), 'Rate removed.') }, 'Remove rate') : null,
      box);
    if (!canModify) form.querySelectorAll('input').forEach((i) => { i.disabled = true; });
    ui.onSubmit(form, box, async (fd) => {
      await api.put(`/workspace-rates/${enc(w.id)}`, { per_hour: Number(fd.get('per_hour')), currency: String(fd.get('currency')).trim().toUpperCase() });
      return 'Rate set.';
    });
    mount(body, form);
  })();
  return h('section', { id: 'workspace-rate-card', class: 'card' }, h('h2', 'Cost rate'), body);
}
