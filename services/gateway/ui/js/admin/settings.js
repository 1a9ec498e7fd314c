// The group settings editor: every catalogued setting (GET /api/v1/setting-definitions) with an
// input that fits its type, the group's value if it sets one, Save and Unset. The server
// validates (PUT /groups/<id>/settings/<name>): a refused value shows the server's message,
// naming the setting, next to that setting's input.
//
// Ids: #settings-editor, #settings-filter, #settings-only-set; per setting <name>:
//   #setting-<name> (the input), #setting-<name>-error, #setting-<name>-save,
//   #setting-<name>-unset, #setting-<name>-state; the row is [data-setting="<name>"].

import { h, mount, ui, api, valueText, fieldMessage, workspaces, workspaceLabel } from './common.js';

// Settings only an administrator may change (policy refuses them to anyone else).
const ADMIN_ONLY = new Set(['administrator', 'run_config', 'volume_mapping']);

const JSON_HELP = {
  usage_limit: 'JSON: {"type": "per_user" or "per_group", "interval": "daily", "weekly", "monthly" or "total", "hours": 1.5}',
  volume_mapping: 'JSON: {"/host/path": {"bind": "/in/container", "mode": "rw" or "ro"}}; combined across all member groups',
  run_config: 'JSON object of docker run parameters (administrators only)',
};

function inputFor(def, id, text, images) {
  const describedBy = `${id}-help ${id}-error`;
  if (def.type === 'bool') {
    return h('select', { id, name: def.name, 'aria-describedby': describedBy },
      ['true', 'false'].map((v) => h('option', { value: v, selected: v === text }, v)));
  }
  if (def.type === 'enum') {
    const values = def.allowed_values.includes(text) || text === '' ? def.allowed_values : [text, ...def.allowed_values];
    return h('select', { id, name: def.name, 'aria-describedby': describedBy },
      values.map((v) => h('option', { value: v, selected: v === text }, v)));
  }
  if (def.type === 'image' && images) {
    const known = images.some((w) => w.id === text);
    return h('select', { id, name: def.name, 'aria-describedby': describedBy },
      h('option', { value: '', selected: text === '' }, '(none)'),
      !known && text ? h('option', { value: text, selected: true }, text) : null,
      images.map((w) => h('option', { value: w.id, selected: w.id === text }, `${workspaceLabel(w)} (${w.name})`)));
  }
  if (['json', 'usage_limit', 'volume_mapping'].includes(def.type)) {
    return h('textarea', { id, name: def.name, class: 'mono', rows: 4, spellcheck: 'false', 'aria-describedby': describedBy, value: text });
  }
  const numeric = def.type === 'int' || def.type === 'float';
  // Text, not type=number: whatever is typed reaches the server, whose message says what is wrong.
  return h('input', {
    id, name: def.name, type: def.type === 'url' ? 'url' : 'text', value: text,
    inputmode: numeric ? (def.type === 'int' ? 'numeric' : 'decimal') : undefined,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': describedBy,
  });
}

function help(def) {
  const bits = [def.description];
  const unit = def.unit ? ` ${def.unit}` : '';
  bits.push(`Type: ${def.type}${unit ? ` (${def.unit})` : ''}.`);
  bits.push(def.default_value ? `Default: ${valueText(def.default_value) || '""'}${unit}.` : 'Default: not set.');
  if (def.resolution && def.resolution !== 'lowest priority number wins' && !def.description.includes(def.resolution)) bits.push(`Resolution: ${def.resolution}.`);
  const json = JSON_HELP[def.name] || JSON_HELP[def.type];
  if (json && !def.description.includes('{')) bits.push(json);
  if (def.aliases && def.aliases.length) bits.push(`Also known as ${def.aliases.join(', ')}.`);
  return bits.join(' ');
}

// The editor for group `groupId`. canModify: settings.modify (else read-only).
export async function editor(ctx, groupId) {
  const user = ctx.user;
  const canModify = user.can('settings.modify');
  const [defs, current, images] = await Promise.all([
    api.get('/setting-definitions', undefined, { signal: ctx.signal }).then((r) => r.settings || []),
    api.get(`/groups/${encodeURIComponent(groupId)}/settings`, undefined, { signal: ctx.signal }).then((r) => r.settings || []),
    user.can('workspaces.view') ? workspaces().catch(() => null) : Promise.resolve(null),
  ]);
  const set = new Map(current.map((s) => [s.name, s]));
  const rows = new Map();

  const filter = h('input', { id: 'settings-filter', type: 'search', placeholder: 'Filter settings by name or description', 'aria-label': 'Filter settings', oninput: applyFilter });
  const onlySet = h('input', { id: 'settings-only-set', type: 'checkbox', onchange: applyFilter });
  const count = h('span', { id: 'settings-count', class: 'muted', role: 'status' });

  function applyFilter() {
    const text = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const [name, row] of rows) {
      const def = row.def;
      const visible = (!onlySet.checked || set.has(name))
        && (!text || name.toLowerCase().includes(text) || def.description.toLowerCase().includes(text));
      row.el.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = `${shown} of ${rows.size} settings shown · ${set.size} set in this group`;
  }

  function drawState(name) {
    const row = rows.get(name);
    const s = set.get(name);
    row.el.classList.toggle('is-set', !!s);
    mount(row.state, s
      ? h('span', { class: 'badge badge-ok' }, 'set here')
      : h('span', { class: 'badge' }, row.def.default_value ? `default: ${valueText(row.def.default_value).split('\n').join(' ') || '""'}` : 'not set'));
    if (row.unset) row.unset.hidden = !s;
  }

  function showError(name, text) {
    const row = rows.get(name);
    row.error.textContent = text;
    row.error.hidden = !text;
    if (text) row.input.setAttribute('aria-invalid', 'true');
    else row.input.removeAttribute('aria-invalid');
  }

  async function save(name) {
    const row = rows.get(name);
    const def = row.def;
    const text = row.input.value;
    showError(name, '');
    if (text.trim() === '' && !['string', 'url', 'image', 'policy'].includes(def.type)) {
      showError(name, `${name}: enter a value, or use Unset to go back to the default.`);
      row.input.focus();
      return;
    }
    const body = def.type === 'bool' ? { value: { bool_value: text === 'true' } } : { raw_value: text };
    row.save.disabled = true; row.save.setAttribute('aria-busy', 'true');
    try {
      const saved = await api.put(`/groups/${encodeURIComponent(groupId)}/settings/${encodeURIComponent(name)}`, body);
      set.set(name, saved);
      row.input.value = valueText(saved.value);
      drawState(name);
      applyFilter();
      ui.toast(`Saved ${name}.`, 'ok');
    } catch (err) {
      showError(name, fieldMessage(err, name));
      row.input.focus();
    } finally {
      row.save.disabled = false; row.save.removeAttribute('aria-busy');
    }
  }

  async function unset(name) {
    const row = rows.get(name);
    showError(name, '');
    if (!await ui.confirmDialog(`Unset ${name} in this group? Members then get it from another group or the default.`)) return;
    row.unset.disabled = true;
    try {
      await api.del(`/groups/${encodeURIComponent(groupId)}/settings/${encodeURIComponent(name)}`);
      set.delete(name);
      row.input.value = valueText(row.def.default_value);
      drawState(name);
      applyFilter();
      ui.toast(`Unset ${name}.`, 'ok');
    } catch (err) {
      showError(name, fieldMessage(err, name));
    } finally {
      row.unset.disabled = false;
    }
  }

  const list = h('ul', { id: 'settings-list', class: 'settings-list' });
  for (const def of defs) {
    const name = def.name;
    const id = `setting-${name}`;
    const s = set.get(name);
    const text = s ? valueText(s.value) : valueText(def.default_value);
    const input = inputFor(def, id, text, images);
    const locked = !canModify || (ADMIN_ONLY.has(name) && !user.isAdmin);
    if (locked) input.disabled = true;
    const error = h('p', { id: `${id}-error`, class: 'setting-error', role: 'alert', hidden: true });
    const state = h('span', { id: `${id}-state` });
    const saveBtn = locked ? null : h('button', { type: 'submit', id: `${id}-save`, class: 'small primary' }, 'Save');
    const unsetBtn = locked ? null : h('button', { type: 'button', id: `${id}-unset`, class: 'small', onclick: () => unset(name) }, 'Unset');
    const form = h('form', { class: 'setting-form', novalidate: true },
      h('div', { class: 'setting-head' }, h('label', { for: id, class: 'setting-name' }, name), state),
      h('small', { id: `${id}-help`, class: 'help' }, help(def),
        ADMIN_ONLY.has(name) && !user.isAdmin ? ' Only administrators may change it.' : ''),
      h('div', { class: 'setting-input' }, input, saveBtn, unsetBtn),
      error);
    form.addEventListener('submit', (e) => { e.preventDefault(); if (saveBtn) save(name); });
    // Ctrl+Enter saves from a JSON box (Enter is a new line there).
    if (input.tagName === 'TEXTAREA') {
      input.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && saveBtn) { e.preventDefault(); save(name); } });
    }
    const el = h('li', { class: 'setting', dataset: { setting: name, type: def.type } }, form);
    rows.set(name, { def, el, input, error, state, save: saveBtn, unset: unsetBtn });
    list.append(el);
    drawState(name);
  }
  applyFilter();
  return h('section', { id: 'settings-editor', class: 'card' },
    h('h2', 'Group settings'),
    h('p', { class: 'muted' }, 'A member\'s effective value comes from the member group with the lowest priority number that sets it; otherwise the default. ',
      canModify ? 'Save sets the value in this group; Unset removes it.' : 'You may look but not change them (settings.modify).'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field' }, filter),
      h('div', { class: 'field check' }, onlySet, h('label', { for: 'settings-only-set' }, 'Only settings this group sets'))),
    count,
    list);
}
