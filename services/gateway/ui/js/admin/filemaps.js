// File mappings of one scope (a user, a group or a workspace): list, add, edit, delete.
// GET/POST /file-mappings, PUT/DELETE /file-mappings/<id>.
//
// Ids: #file-mappings, #file-mappings-table ([data-row="<mapping id>"] rows with
// [data-action=edit|delete]), #file-mapping-form, #file-mapping-name, #file-mapping-destination,
// #file-mapping-content, #file-mapping-base64, #file-mapping-executable, #file-mapping-readable,
// #file-mapping-writable, #file-mapping-enabled, #file-mapping-description, #file-mapping-save,
// #file-mapping-cancel, #file-mapping-message.

import { h, mount, ui, api, yesNo } from './common.js';

// scope: { user_id } | { group_id } | { workspace_id }
export function card(ctx, scope) {
  const canModify = ctx.user.can('file_mappings.modify');
  const body = h('div', { id: 'file-mappings-body' }, ui.spinner());
  const box = ui.messageBox('file-mapping-message');
  let editing = null;

  const f = {
    name: ui.field({ id: 'file-mapping-name', name: 'name', label: 'Name', required: true }),
    description: ui.field({ id: 'file-mapping-description', name: 'description', label: 'Description' }),
    destination: ui.field({ id: 'file-mapping-destination', name: 'destination', label: 'Destination (absolute path in the container)', required: true, placeholder: '/etc/example.conf' }),
    content: ui.field({ id: 'file-mapping-content', name: 'content', label: 'Content', type: 'textarea', attrs: { class: 'mono', spellcheck: 'false' } }),
    base64: ui.checkbox({ id: 'file-mapping-base64', name: 'content_is_base64', label: 'Content is base64' }),
    executable: ui.checkbox({ id: 'file-mapping-executable', name: 'executable', label: 'Executable' }),
    readable: ui.checkbox({ id: 'file-mapping-readable', name: 'readable', label: 'Readable', checked: true }),
    writable: ui.checkbox({ id: 'file-mapping-writable', name: 'writable', label: 'Writable' }),
    enabled: ui.checkbox({ id: 'file-mapping-enabled', name: 'enabled', label: 'Enabled', checked: true }),
  };
  const legend = h('legend', 'Add a file mapping');
  const cancel = h('button', { type: 'button', id: 'file-mapping-cancel', hidden: true, onclick: () => fill(null) }, 'Cancel edit');
  const form = h('form', { id: 'file-mapping-form', class: 'subform' },
    h('fieldset', legend, f.name, f.description, f.destination, f.content,
      h('div', { class: 'checks' }, f.base64, f.executable, f.readable, f.writable, f.enabled),
      box,
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'file-mapping-save', class: 'primary' }, 'Save mapping'), cancel)));

  function fill(m) {
    editing = m;
    legend.textContent = m ? `Edit ${m.name}` : 'Add a file mapping';
    f.name.input.value = m ? m.name : '';
    f.description.input.value = m ? m.description : '';
    f.destination.input.value = m ? m.destination : '';
    f.content.input.value = m ? m.content : '';
    f.base64.input.checked = m ? m.content_is_base64 : false;
    f.executable.input.checked = m ? m.executable : false;
    f.readable.input.checked = m ? m.readable : true;
    f.writable.input.checked = m ? m.writable : false;
    f.enabled.input.checked = m ? m.enabled : true;
    cancel.hidden = !m;
    box.clear();
    if (m) f.name.input.focus();
  }

  async function load() {
    try {
      const res = await api.get('/file-mappings', scope, { signal: ctx.signal });
      const rows = res.file_mappings || [];
      mount(body, ui.table({
        id: 'file-mappings-table', caption: undefined, rowKey: (m) => m.id, empty: 'No file mappings.',
        columns: [
          { key: 'name', label: 'Name' },
          { key: 'destination', label: 'Destination', render: (m) => h('code', m.destination) },
          { key: 'mode', label: 'Mode', render: (m) => [m.readable && 'r', m.writable && 'w', m.executable && 'x'].filter(Boolean).join('') || '—' },
          { key: 'size', label: 'Size', render: (m) => `${m.content.length} chars${m.content_is_base64 ? ' (base64)' : ''}` },
          { key: 'enabled', label: 'Enabled', render: (m) => yesNo(m.enabled) },
          { key: 'actions', label: 'Actions', render: (m) => canModify ? h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'small', dataset: { action: 'edit' }, onclick: () => fill(m) }, 'Edit'),
            h('button', { type: 'button', class: 'small danger', dataset: { action: 'delete' }, onclick: async (e) => {
              if (!await ui.confirmDialog(`Delete the file mapping ${m.name}?`, { danger: true, confirm: 'Delete' })) return;
              await ui.act(e.currentTarget, () => api.del(`/file-mappings/${encodeURIComponent(m.id)}`), 'File mapping deleted.');
              if (editing && editing.id === m.id) fill(null);
              load();
            } }, 'Delete')) : '' },
        ],
        rows,
      }));
    } catch (err) {
      mount(body, h('p', { class: 'message message-error', role: 'alert' }, ui.errorText(err)));
    }
  }

  ui.onSubmit(form, box, async () => {
    const mapping = {
      ...scope,
      name: f.name.input.value.trim(),
      description: f.description.input.value,
      destination: f.destination.input.value.trim(),
      content: f.content.input.value,
      content_is_base64: f.base64.input.checked,
      executable: f.executable.input.checked,
      readable: f.readable.input.checked,
      writable: f.writable.input.checked,
      enabled: f.enabled.input.checked,
    };
    if (editing) await api.put(`/file-mappings/${encodeURIComponent(editing.id)}`, mapping);
    else await api.post('/file-mappings', mapping);
    const msg = editing ? 'File mapping saved.' : 'File mapping added.';
    fill(null);
    ui.toast(msg, 'ok');
    await load();
    return msg;
  });

  load();
  return h('section', { id: 'file-mappings', class: 'card' }, h('h2', 'File mappings'),
    h('p', { class: 'muted' }, 'Files placed into container sessions. For the same destination, user mappings and the strongest group\'s win.'),
    body, canModify ? form : null);
}
