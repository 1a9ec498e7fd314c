// Agents (/admin/agents): every agent alive by heartbeat, its state, capacity, what is
// allocated, its sessions; drain (POST /agents/<id>/drain).
// Ids: #agents-table ([data-row="<agent id>"] rows with [data-action=drain]), #agents-refresh,
// #agents-zone, #drain-deadline (in the drain dialog's form).

import { h, ui, api, page, localList, badge } from './common.js';

const enc = encodeURIComponent;

function meter(used, total, unit) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  return h('span', { class: 'nowrap' },
    h('meter', { class: 'meter', min: 0, max: total || 1, value: used, 'aria-label': `${used} of ${total} ${unit}` }),
    `${Number(used).toFixed(unit === 'cores' ? 1 : 0)} / ${Number(total).toFixed(unit === 'cores' ? 1 : 0)} ${unit} (${pct.toFixed(0)}%)`);
}

function age(at) {
  const t = Date.parse(at);
  if (Number.isNaN(t)) return '—';
  return `${ui.formatDuration((Date.now() - t) / 1000)} ago`;
}

export async function list(ctx) {
  const canDrain = ctx.user.can('agents.modify');
  const canSessions = ctx.user.can('sessions.view');
  const zone = h('input', { id: 'agents-zone', type: 'search', placeholder: 'Zone (id or name)', 'aria-label': 'Only agents of zone' });
  const summary = h('p', { id: 'agents-summary', class: 'muted', role: 'status' });
  const table = localList({
    id: 'agents-table',
    placeholder: 'Filter by id, zone, state or image',
    match: (a, t) => [a.agent_id, a.zone, a.state, a.address, ...(a.images || [])].some((x) => String(x || '').toLowerCase().includes(t)),
    table: {
      rowKey: (a) => a.agent_id,
      empty: 'No agent is alive: no session can be placed.',
      columns: [
        { key: 'agent_id', label: 'Agent', render: (a) => [h('strong', a.agent_id), h('br'), h('small', { class: 'muted' }, a.address)] },
        { key: 'zone', label: 'Zone' },
        { key: 'state', label: 'State', render: (a) => [badge(a.state, a.state === 'active' ? 'ok' : a.state === 'draining' ? 'warn' : 'danger'), a.reason ? h('small', { class: 'muted' }, ` ${a.reason}`) : null] },
        { key: 'cores', label: 'Cores', render: (a) => meter((a.allocated || {}).cores || 0, (a.capacity || {}).cores || 0, 'cores') },
        { key: 'memory', label: 'Memory', render: (a) => meter((a.allocated || {}).memory_mib || 0, (a.capacity || {}).memory_mib || 0, 'MiB') },
        { key: 'gpus', label: 'GPUs', render: (a) => `${(a.allocated || {}).gpus || 0} / ${(a.capacity || {}).gpus || 0}` },
        { key: 'sessions', label: 'Sessions', render: (a) => canSessions ? h('a', { href: `/admin/sessions?agent_id=${enc(a.agent_id)}` }, String(a.session_count)) : String(a.session_count) },
        { key: 'images', label: 'Images', render: (a) => h('details', h('summary', `${(a.images || []).length}`), h('ul', (a.images || []).map((i) => h('li', h('code', i))))) },
        { key: 'version', label: 'Version', render: (a) => [a.version, h('br'), h('small', { class: 'muted' }, `heartbeat ${age(a.updated_at)}`)] },
        { key: 'actions', label: 'Actions', render: (a) => canDrain && a.state !== 'draining' ? h('button', { type: 'button', class: 'small danger', dataset: { action: 'drain' }, onclick: () => drain(a) }, 'Drain') : '' },
      ],
    },
  });
  async function load() {
    const res = await api.get('/agents', { zone: zone.value.trim() || undefined }, { signal: ctx.signal });
    const agents = res.agents || [];
    table.set(agents);
    const sum = (k, f) => agents.reduce((n, a) => n + Number(((a[k] || {})[f]) || 0), 0);
    summary.textContent = `${agents.length} agent${agents.length === 1 ? '' : 's'} · ${sum('allocated', 'cores').toFixed(1)} of ${sum('capacity', 'cores').toFixed(1)} cores and `
      + `${sum('allocated', 'memory_mib')} of ${sum('capacity', 'memory_mib')} MiB allocated · ${agents.reduce((n, a) => n + (a.session_count || 0), 0)} sessions`;
  }
  async function drain(a) {
    const deadline = h('input', { id: 'drain-deadline', type: 'number', min: 0, placeholder: 'agent default', 'aria-label': 'Deadline in seconds (empty: the agent\'s default)' });
    const dialog = h('dialog', { class: 'dialog', id: 'drain-dialog', 'aria-labelledby': 'drain-title' },
      h('form', { method: 'dialog' },
        h('p', { id: 'drain-title' }, `Drain ${a.agent_id}? No new sessions are placed on it; it stops when its ${a.session_count} session(s) are gone or at the deadline.`),
        h('div', { class: 'field' }, h('label', { for: 'drain-deadline' }, 'Deadline in seconds (empty: the agent\'s default)'), deadline),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', value: 'cancel', id: 'drain-cancel' }, 'Cancel'),
          h('button', { type: 'submit', value: 'ok', id: 'drain-ok', class: 'danger' }, 'Drain'))));
    document.body.append(dialog);
    const ok = await new Promise((resolve) => {
      dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'ok'); dialog.remove(); });
      dialog.showModal();
    });
    if (!ok) return;
    const body = deadline.value.trim() === '' ? {} : { deadline_secs: Number(deadline.value) };
    await ui.act(null, async () => { await api.post(`/agents/${enc(a.agent_id)}/drain`, body); await load(); }, `Draining ${a.agent_id}.`);
  }
  await load();
  const refresh = h('button', { type: 'button', id: 'agents-refresh', onclick: (e) => ui.act(e.currentTarget, load, 'Refreshed.') }, 'Refresh');
  const zoneForm = h('form', { class: 'inline-form', id: 'agents-zone-form', role: 'search' }, h('div', { class: 'field' }, h('label', { for: 'agents-zone' }, 'Zone'), zone),
    h('button', { type: 'submit', id: 'agents-zone-apply' }, 'Show'));
  zoneForm.addEventListener('submit', (e) => { e.preventDefault(); ui.act(null, load); });
  const timer = setInterval(() => { load().catch(() => {}); }, 15000);
  ctx.onLeave(() => clearInterval(timer));
  return page(ctx, 'Agents', [refresh], zoneForm, summary, table.el);
}
