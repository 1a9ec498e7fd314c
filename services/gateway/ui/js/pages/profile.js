// The profile: the user settings of seeds/002 (PATCH /me/settings), the password
// (POST /me/password), two-factor enrolment (/me/2fa/enroll, /me/2fa/confirm) and the SSH key
// (GET/PUT /me/ssh-key, POST /me/ssh-key/generate).

import { h, mount } from '../dom.js';
import { enrolment } from './totp.js';
import { workspaceName } from './dashboard.js';

export function registerProfile(app) {
  app.register('/profile', (ctx) => renderProfile(app, ctx), { title: 'Profile' });
}

const THEMES = [
  { value: 'THEME_AUTO', label: 'Auto (follow my computer)' },
  { value: 'THEME_LIGHT', label: 'Light' },
  { value: 'THEME_DARK', label: 'Dark' },
];

async function renderProfile(app, ctx) {
  const { ui, api } = app;
  const [settings, workspaces, ssh] = await Promise.all([
    api.get('/me/settings', undefined, { signal: ctx.signal }),
    api.get('/me/workspaces', undefined, { signal: ctx.signal }).catch(() => ({ workspaces: [] })),
    api.get('/me/ssh-key', undefined, { signal: ctx.signal }).catch(() => null),
  ]);
  return h('div', { class: 'profile' },
    ui.pageHeader(`Profile · ${app.user.me.username}`),
    h('div', { class: 'grid-2' },
      settingsCard(app, settings, workspaces.workspaces || []),
      h('div', passwordCard(app), totpCard(app), sshCard(app, ssh))));
}

function settingsCard(app, settings, workspaces) {
  const { ui, api } = app;
  const box = ui.messageBox('settings-message');
  const auto = ui.checkbox({ id: 'settings-auto-launch', label: 'Auto launch session', checked: settings.auto_launch_session, help: 'Open your default workspace as soon as you sign in.' });
  const options = [{ value: '', label: 'None (use my group\'s default)' }, ...workspaces.map((w) => ({ value: w.id, label: workspaceName(w) }))];
  if (settings.default_workspace_image && !workspaces.some((w) => w.id === settings.default_workspace_image)) {
    options.push({ value: settings.default_workspace_image, label: 'A workspace no longer available to you' });
  }
  const image = ui.select({ id: 'settings-default-workspace', label: 'Default workspace', options, value: settings.default_workspace_image || '', help: 'Used by /go, Auto launch session and the group default.' });
  const theme = ui.select({ id: 'settings-theme', label: 'Theme', options: THEMES, value: settings.theme && settings.theme !== 'THEME_UNSPECIFIED' ? settings.theme : 'THEME_AUTO' });
  const tips = ui.checkbox({ id: 'settings-show-tips', label: 'Show tips during session', checked: settings.show_tips_during_session, help: 'A tip on how to find the control panel when a session opens.' });
  const toggle = ui.checkbox({ id: 'settings-toggle-panel', label: 'Toggle control panel with Ctrl twice', checked: settings.toggle_control_panel });
  const sounds = ui.checkbox({ id: 'settings-chat-sounds', label: 'Chat sound effects', checked: settings.chat_sound_effects, help: 'Sounds for chat in shared sessions.' });
  theme.input.addEventListener('change', () => app.applyTheme(theme.input.value));
  const form = h('form', { id: 'settings-form', class: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'Settings'),
    auto, image, theme, tips, toggle, sounds, box,
    h('button', { type: 'submit', id: 'settings-save', class: 'primary' }, 'Save settings'));
  ui.onSubmit(form, box, async () => {
    const saved = await api.patch('/me/settings', {
      auto_launch_session: auto.input.checked,
      default_workspace_image: image.input.value,
      theme: theme.input.value,
      show_tips_during_session: tips.input.checked,
      toggle_control_panel: toggle.input.checked,
      chat_sound_effects: sounds.input.checked,
    });
    app.user.settings = saved;
    app.applyTheme(saved.theme);
    return 'Your settings are saved.';
  });
  return form;
}

function passwordCard(app) {
  const { ui, api } = app;
  const box = ui.messageBox('password-message');
  const old = ui.field({ id: 'password-old', name: 'old_password', label: 'Current password', type: 'password', autocomplete: 'current-password', required: true });
  const pw = ui.field({ id: 'password-new', name: 'new_password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true });
  const again = ui.field({ id: 'password-confirm', name: 'confirm', label: 'New password again', type: 'password', autocomplete: 'new-password', required: true });
  const form = h('form', { id: 'password-form', class: 'card', 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title' }, 'Password'),
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: app.user.me.username, hidden: true, readonly: true, 'aria-hidden': 'true', tabindex: '-1' }),
    old, pw, again, box,
    h('button', { type: 'submit', id: 'password-submit', class: 'primary' }, 'Change password'));
  ui.onSubmit(form, box, async () => {
    if (pw.input.value !== again.input.value) {
      again.input.setAttribute('aria-invalid', 'true');
      throw Object.assign(new Error('The two new passwords are not the same.'), { name: 'ApiError' });
    }
    const answer = await api.post('/me/password', { old_password: old.input.value, new_password: pw.input.value });
    api.noteLogin(answer);
    form.reset();
    return 'Your password is changed.';
  });
  return form;
}

function totpCard(app) {
  const { ui } = app;
  const card = h('section', { class: 'card', 'aria-labelledby': 'totp-title' });
  const selfEnrol = app.user.setting('allow_2fa_self_enrollment', false) || app.user.setting('require_2fa', false);
  const draw = (enrolled) => {
    const start = h('button', {
      type: 'button', id: 'totp-enroll', onclick: (e) => {
        e.currentTarget.remove();
        card.append(h('p', { class: 'muted' }, 'Scan the code with your authenticator app, then enter the code it shows.'),
          enrolment(app, { onDone: (answer) => { app.api.noteLogin(answer); ui.toast('Two-factor authentication is set up.', 'ok'); draw(true); } }));
      },
    }, 'Set up two-factor authentication');
    mount(card,
      h('h2', { id: 'totp-title' }, 'Two-factor authentication'),
      h('p', { id: 'totp-status' }, enrolled === undefined
        ? 'Use an authenticator app for a second factor at sign-in.'
        : enrolled ? 'Two-factor authentication is on. To move it to a new device, ask your administrator to reset it; you set it up again at your next sign-in.'
          : 'Two-factor authentication is off.'),
      enrolled || !selfEnrol ? null : start,
      !enrolled && !selfEnrol ? h('p', { class: 'muted' }, 'Ask your administrator to turn it on for you: you then set it up at your next sign-in.') : null);
  };
  draw(undefined);
  app.api.get(`/users/${encodeURIComponent(app.user.me.user_id)}`).then((u) => draw(!!u.two_factor_enrolled)).catch(() => {});
  return card;
}

function sshCard(app, ssh) {
  const { ui, api } = app;
  const card = h('section', { class: 'card', 'aria-labelledby': 'ssh-title' });
  const box = ui.messageBox('ssh-message');
  const draw = (key, privateKey) => {
    const input = ui.field({ id: 'ssh-key-input', name: 'public_key', label: 'Public key', type: 'textarea', help: 'An OpenSSH public key line (ssh-ed25519 AAAA…).', attrs: { class: 'mono', spellcheck: 'false' } });
    const priv = ui.field({ id: 'ssh-key-private', name: 'private_key', label: 'Private key (optional)', type: 'textarea', help: 'Needed only if sessions should get your private key (inject_ssh_keys).', attrs: { class: 'mono', spellcheck: 'false', autocomplete: 'off' } });
    const form = h('form', { id: 'ssh-form' }, input, priv, h('button', { type: 'submit', id: 'ssh-save' }, 'Save key'));
    ui.onSubmit(form, box, async () => {
      const saved = await api.put('/me/ssh-key', { public_key: input.input.value.trim(), private_key: priv.input.value.trim() });
      draw(saved);
      box.show('Your SSH key is saved.', 'ok');
      return '';
    });
    let download = null;
    if (privateKey) {
      const url = URL.createObjectURL(new Blob([privateKey.endsWith('\n') ? privateKey : `${privateKey}\n`], { type: 'application/x-pem-file' }));
      download = h('a', { id: 'ssh-download', class: 'button', href: url, download: 'atrium_id_ed25519' }, 'Download the private key');
    }
    mount(card,
      h('h2', { id: 'ssh-title' }, 'SSH key'),
      key && key.public_key
        ? h('div', h('p', 'Fingerprint: ', h('code', { id: 'ssh-fingerprint' }, key.fingerprint || '—')),
          h('pre', { id: 'ssh-public', class: 'secret' }, key.public_key))
        : h('p', { id: 'ssh-public', class: 'empty' }, 'You have no SSH key yet.'),
      privateKey ? h('div', { class: 'message message-info', role: 'status' },
        h('p', 'Your new private key is shown only this once. Keep it safe.'),
        h('textarea', { id: 'ssh-private', class: 'mono', readonly: true, 'aria-label': 'Private key', rows: '6' }, privateKey),
        download) : null,
      box,
      h('div', { class: 'actions' },
        h('button', {
          type: 'button', id: 'ssh-generate', onclick: async (e) => {
            if (key && key.public_key && !await ui.confirmDialog('Generate a new key pair? It replaces your current key.', { confirm: 'Generate' })) return;
            const made = await ui.act(e.currentTarget, () => api.post('/me/ssh-key/generate', {}), 'A new SSH key pair is ready.');
            if (made) draw(made, made.private_key);
          },
        }, 'Generate a new key pair')),
      h('details', h('summary', 'Use my own key'), form));
  };
  draw(ssh, '');
  return card;
}
