// Zones (/admin/zones): name, whether to search other zones when full, and the load strategy.
// Ids: #zones-table ([data-row="<zone id>"] rows, each a form with #zone-<id>-name,
// #zone-<id>-alternate, #zone-<id>-strategy, [data-action=save|delete]), #zone-create-form,
// #zone-create-name, #zone-create-alternate, #zone-create-strategy, #zone-create-submit.

import { h, ui, api, page, localList } from './common.js';

const enc = encodeURIComponent;
const STRATEGIES = [{ value: 'least_loaded', label: 'Least loaded (spread)' }, { value: 'most_loaded', label: 'Most loaded (pack)' }];

export async function list(ctx) {
  const canModify = ctx.user.can('zones.modify');
  const strategy = (id, value) => h('select', { id, name: 'load_strategy', 'aria-label': 'Load strategy', disabled: !canModify },
    STRATEGIES.map((s) => h('option', { value: s.value, selected: s.value === (value || 'least_loaded') }, s.label)));
  const table = localList({
    id: 'zones-table',
    placeholder: 'Filter zones by name',
    match: (z, t) => z.name.toLowerCase().includes(t),
    table: {
      rowKey: (z) => z.id,
      empty: 'No zones yet: every agent\'s sessions go to the zone it reports.',
      columns: [
        { key: 'name', label: 'Name', render: (z) => h('input', { id: `zone-${z.id}-name`, value: z.name, 'aria-label': 'Zone name', disabled: !canModify }) },
        { key: 'alt', label: 'Search other zones', render: (z) => h('input', { id: `zone-${z.id}-alternate`, type: 'checkbox', checked: z.search_alternate_zones, 'aria-label': `Search other zones when ${z.name} is full`, disabled: !canModify }) },
        { key: 'strategy', label: 'Load strategy', render: (z) => strategy(`zone-${z.id}-strategy`, z.load_strategy) },
        { key: 'id', label: 'Id', render: (z) => h('code', z.id) },
        { key: 'actions', label: 'Actions', render: (z) => canModify ? h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'small primary', dataset: { action: 'save' }, onclick: (e) => ui.act(e.currentTarget, async () => {
            await api.put(`/zones/${enc(z.id)}`, {
              name: document.getElementById(`zone-${z.id}-name`).value.trim(),
              search_alternate_zones: document.getElementById(`zone-${z.id}-alternate`).checked,
              load_strategy: document.getElementById(`zone-${z.id}-strategy`).value,
            });
            await load();
          }, 'Zone saved.') }, 'Save'),
          h('button', { type: 'button', class: 'small danger', dataset: { action: 'delete' }, onclick: async (e) => {
            if (!await ui.confirmDialog(`Delete the zone ${z.name}?`, { danger: true, confirm: 'Delete zone' })) return;
            if (await ui.act(e.currentTarget, () => api.del(`/zones/${enc(z.id)}`), 'Zone deleted.')) load();
          } }, 'Delete')) : '' },
      ],
    },
  });
  async function load() {
    const res = await api.get('/zones', undefined, { signal: ctx.signal });
    table.set(res.zones || []);
  }
  await load();
  let create = null;
  if (canModify) {
    const box = ui.messageBox('zone-create-message');
    create = h('form', { id: 'zone-create-form', class: 'card inline-form' },
      ui.field({ id: 'zone-create-name', name: 'name', label: 'New zone name', required: true }),
      h('div', { class: 'field' }, h('label', { for: 'zone-create-strategy' }, 'Load strategy'), strategy('zone-create-strategy', 'least_loaded')),
      ui.checkbox({ id: 'zone-create-alternate', name: 'search_alternate_zones', label: 'Search other zones when full', checked: true }),
      h('button', { type: 'submit', id: 'zone-create-submit', class: 'primary' }, 'Add zone'), box);
    ui.onSubmit(create, box, async (fd) => {
      await api.post('/zones', { name: String(fd.get('name')).trim(), load_strategy: fd.get('load_strategy'), search_alternate_zones: fd.get('search_alternate_zones') === 'on' });
      create.reset();
      await load();
      return 'Zone added.';
    });
  }
  return page(ctx, 'Zones', [], h('p', { class: 'muted' }, 'A session goes to its user\'s zone first; another zone only when the zone searches alternates and the user did not pick it.'),
    table.el, create);
}
