// Usage reports (/admin/reports): hours, sessions and costs by user, group, workspace or zone
// over a period, paged; the whole report as CSV, built in the page from the JSON (a Blob).
// Ids: #report-form (#report-by, #report-from, #report-to, #report-run), #report-table
// ([data-row="<key>"]), #report-total, #report-csv.

import { h, mount, ui, api, page, pagedList, groups, workspaces, zones, workspaceLabel, userName, hours, csv, download } from './common.js';

const BY = [
  { value: 'REPORT_BY_USER', label: 'User' },
  { value: 'REPORT_BY_GROUP', label: 'Group' },
  { value: 'REPORT_BY_WORKSPACE', label: 'Workspace' },
  { value: 'REPORT_BY_ZONE', label: 'Zone' },
];

function costs(list) {
  return (list || []).map((c) => `${Number(c.amount).toFixed(2)} ${c.currency}`).join(' + ');
}

function dateInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export async function render(ctx) {
  const now = new Date();
  let params = { by: 'REPORT_BY_USER', from: dateInput(new Date(now.getFullYear(), now.getMonth(), 1)), to: '' };
  const labels = new Map();
  async function label(by, key) {
    if (!key) return by === 'REPORT_BY_ZONE' ? '(no zone)' : '—';
    if (by === 'REPORT_BY_USER') return userName(key);
    if (!labels.has(by)) {
      const load = by === 'REPORT_BY_GROUP' ? groups().then((l) => l.map((g) => [g.id, g.name]))
        : by === 'REPORT_BY_WORKSPACE' ? workspaces().then((l) => l.map((w) => [w.id, workspaceLabel(w)]))
          : zones().then((l) => l.map((z) => [z.id, z.name]));
      labels.set(by, load.then((pairs) => new Map(pairs)).catch(() => new Map()));
    }
    return (await labels.get(by)).get(key) || key;
  }
  const query = () => ({
    by: params.by,
    from: params.from ? new Date(`${params.from}T00:00:00`).toISOString() : undefined,
    to: params.to ? new Date(`${params.to}T00:00:00`).toISOString() : undefined,
  });
  const total = h('p', { id: 'report-total', role: 'status' });
  const table = pagedList({
    id: 'report-table',
    signal: ctx.signal,
    load: async (q, signal) => {
      const res = await api.get('/usage-report', { ...q, ...query() }, { signal });
      const t = res.total || {};
      mount(total, h('strong', 'Total: '), `${hours(t.seconds)} h over ${t.sessions || 0} session(s)`,
        costs(t.costs) ? ` · ${costs(t.costs)}` : '', t.unpriced_seconds ? ` · ${hours(t.unpriced_seconds)} h unpriced` : '',
        ` · ${ui.formatDate(res.from)} to ${ui.formatDate(res.to)}`);
      const by = params.by;
      const rows = await Promise.all((res.rows || []).map(async (r) => ({ ...r, name: r.label || await label(by, r.key) })));
      return { rows, next: res.page && res.page.next_page_token };
    },
    table: {
      rowKey: (r) => r.key,
      empty: 'No usage in this period.',
      columns: [
        { key: 'name', label: 'Name', render: (r) => r.name },
        { key: 'hours', label: 'Hours', render: (r) => hours(r.seconds) },
        { key: 'sessions', label: 'Sessions' },
        { key: 'costs', label: 'Cost', render: (r) => costs(r.costs) || '—' },
        { key: 'unpriced', label: 'Unpriced hours', render: (r) => hours(r.unpriced_seconds) },
        { key: 'key', label: 'Id', render: (r) => h('code', r.key) },
      ],
    },
  });

  async function downloadCsv() {
    const rows = [];
    let token = '';
    let answer;
    do {
      answer = await api.get('/usage-report', { ...query(), 'page.page_size': 1000, 'page.page_token': token || undefined });
      rows.push(...(answer.rows || []));
      token = (answer.page && answer.page.next_page_token) || '';
    } while (token);
    const by = params.by;
    const kind = BY.find((b) => b.value === by).label.toLowerCase();
    const out = [[kind, 'id', 'hours', 'seconds', 'sessions', 'cost', 'unpriced_hours']];
    for (const r of rows) {
      out.push([r.label || await label(by, r.key), r.key, hours(r.seconds), Number(r.seconds || 0).toFixed(0), r.sessions || 0, costs(r.costs), hours(r.unpriced_seconds)]);
    }
    const t = answer.total || {};
    out.push(['total', '', hours(t.seconds), Number(t.seconds || 0).toFixed(0), t.sessions || 0, costs(t.costs), hours(t.unpriced_seconds)]);
    download(`atrium-usage-by-${kind}-${params.from || 'start'}-to-${params.to || dateInput(new Date())}.csv`, csv(out));
    return rows.length;
  }

  const form = h('form', { id: 'report-form', class: 'toolbar filters' },
    ui.select({ id: 'report-by', name: 'by', label: 'By', value: params.by, options: BY }),
    ui.field({ id: 'report-from', name: 'from', label: 'From (inclusive)', type: 'date', value: params.from }),
    ui.field({ id: 'report-to', name: 'to', label: 'To (exclusive; empty: now)', type: 'date', value: params.to }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'report-run', class: 'primary' }, 'Show report')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    params = { by: fd.get('by'), from: fd.get('from'), to: fd.get('to') };
    table.reload();
  });
  const csvButton = h('button', { type: 'button', id: 'report-csv', onclick: (e) => ui.act(e.currentTarget, downloadCsv, (n) => `CSV of ${n} row(s) downloaded.`) }, 'Download CSV');
  table.reload();
  return page(ctx, 'Usage reports', [csvButton], form, total, table.el,
    h('p', { class: 'muted' }, 'Time counts from a session\'s creation to its deletion, paused and stopped time included. By group, a session counts once for each group its user was in. Costs come from the workspaces\' hourly rates (set on a workspace\'s page).'));
}
