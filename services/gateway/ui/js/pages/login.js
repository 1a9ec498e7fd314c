// Signing in: password, then a TOTP code when the user is enrolled, a forced password change,
// or 2FA enrolment (QR code) when require_2fa applies. POST /api/v1/login answers a status:
//   LOGIN_STATUS_SUCCESS                    signed in (cookies set)
//   LOGIN_STATUS_TOTP_REQUIRED              ask for the code, log in again with totp_code
//   LOGIN_STATUS_PASSWORD_CHANGE_REQUIRED   a restricted login: POST /me/password
//   LOGIN_STATUS_TOTP_ENROLLMENT_REQUIRED   a restricted login: /me/2fa/enroll, /me/2fa/confirm

import { h, mount } from '../dom.js';
import { enrolment } from './totp.js';

export function registerLogin(app) {
  app.register('/login', (ctx) => renderLogin(app, ctx), { public: true, layout: 'bare', title: 'Sign in' });
}

function brand() {
  return h('div', { class: 'login-brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Atrium');
}

async function renderLogin(app, ctx) {
  const { ui, api } = app;
  const next = ctx.query.get('next') || '';
  const reason = ctx.query.get('reason') || '';
  // Already signed in (a reload of /login, or a restricted login in progress)?
  if (!app.user.me && Date.now() - app.user.checkedAt > 3000) await app.loadUser().catch(() => false);
  if (app.user.signedIn && !reason) return app.landing(next);
  if (app.user.me && app.user.me.scope === 'password_change') return passwordStep(app, ctx, '', next);
  if (app.user.me && app.user.me.scope === 'totp_enrollment') return enrolStep(app, ctx, next);

  const box = ui.messageBox('login-error');
  const username = ui.field({ id: 'login-username', name: 'username', label: 'Username', autocomplete: 'username', required: true, attrs: { autocapitalize: 'none', spellcheck: 'false' } });
  const password = ui.field({ id: 'login-password', name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', required: true });
  const totp = ui.field({ id: 'login-totp', name: 'totp_code', label: 'Two-factor code', autocomplete: 'one-time-code', help: 'The 6-digit code from your authenticator app.', attrs: { inputmode: 'numeric', pattern: '[0-9 ]{6,8}', maxlength: '8' } });
  totp.hidden = true;
  const form = h('form', { id: 'login-form', class: 'card login', novalidate: false, 'aria-labelledby': 'page-title' },
    brand(),
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Sign in'),
    box, username, password, totp,
    h('button', { type: 'submit', id: 'login-submit', class: 'primary' }, 'Sign in'));
  if (reason) box.show(reason, reason.startsWith('You signed out') ? 'info' : 'info');

  ui.onSubmit(form, box, async () => {
    const body = { username: username.input.value.trim(), password: password.input.value };
    if (!totp.hidden) {
      const code = totp.input.value.replace(/\s+/g, '');
      if (!code) {
        totp.input.focus();
        throw Object.assign(new Error('Enter the code from your authenticator app.'), { name: 'ApiError', field: 'totp_code' });
      }
      body.totp_code = code;
    }
    const answer = await api.post('/login', body, { noRetry: true });
    api.noteLogin(answer);
    switch (answer.status) {
      case 'LOGIN_STATUS_TOTP_REQUIRED':
        if (!totp.hidden && body.totp_code) throw Object.assign(new Error('That code is not valid. Try the current one.'), { name: 'ApiError' });
        totp.hidden = false;
        totp.input.required = true;
        totp.input.focus();
        return 'Enter the code from your authenticator app.';
      case 'LOGIN_STATUS_PASSWORD_CHANGE_REQUIRED':
        await app.loadUser();
        passwordStep(app, ctx, body.password, next);
        return '';
      case 'LOGIN_STATUS_TOTP_ENROLLMENT_REQUIRED':
        await app.loadUser();
        enrolStep(app, ctx, next);
        return '';
      case 'LOGIN_STATUS_SUCCESS':
        await signedIn(app, next);
        return '';
      default:
        throw Object.assign(new Error('The server gave an answer this page does not understand.'), { name: 'ApiError' });
    }
  });
  mount(ctx.main, form);
  username.input.focus();
  return undefined;
}

async function signedIn(app, next) {
  await app.loadUser();
  app.ui.toast(`Welcome, ${app.user.me.username}.`, 'ok', 3000);
  await app.landing(next);
}

// The forced password change: a restricted login whose token opens only POST /me/password.
function passwordStep(app, ctx, oldPassword, next) {
  const { ui, api } = app;
  const box = ui.messageBox('pwchange-error');
  const old = ui.field({ id: 'pwchange-old', name: 'old_password', label: 'Current password', type: 'password', autocomplete: 'current-password', required: true, value: oldPassword });
  if (oldPassword) old.hidden = true;
  const pw = ui.field({ id: 'pwchange-new', name: 'new_password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true });
  const again = ui.field({ id: 'pwchange-confirm', name: 'confirm', label: 'New password again', type: 'password', autocomplete: 'new-password', required: true });
  const form = h('form', { id: 'pwchange-form', class: 'card login' },
    brand(),
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Choose a new password'),
    h('p', { class: 'muted' }, 'Your administrator asks you to change your password before you continue.'),
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: (app.user.me && app.user.me.username) || '', hidden: true, readonly: true, 'aria-hidden': 'true', tabindex: '-1' }),
    box, old, pw, again,
    h('button', { type: 'submit', id: 'pwchange-submit', class: 'primary' }, 'Change password and continue'),
    h('button', { type: 'button', class: 'link', onclick: () => app.signOut() }, 'Cancel and sign out'));
  ui.onSubmit(form, box, async () => {
    if (pw.input.value !== again.input.value) {
      again.input.setAttribute('aria-invalid', 'true');
      throw Object.assign(new Error('The two new passwords are not the same.'), { name: 'ApiError' });
    }
    const answer = await api.post('/me/password', { old_password: old.input.value, new_password: pw.input.value }, { noRetry: true });
    api.noteLogin(answer);
    if (answer.status === 'LOGIN_STATUS_TOTP_ENROLLMENT_REQUIRED') {
      await app.loadUser();
      enrolStep(app, ctx, next);
      return '';
    }
    if (answer.status === 'LOGIN_STATUS_TOTP_REQUIRED') {
      app.clearUser();
      app.navigate(`/login?reason=${encodeURIComponent('Password changed. Sign in with your new password and your code.')}`, { replace: true });
      return '';
    }
    ui.toast('Your password is changed.', 'ok');
    await signedIn(app, next);
    return '';
  });
  mount(ctx.main, form);
  (oldPassword ? pw : old).input.focus();
}

// 2FA enrolment required by require_2fa: a restricted login that opens only enroll/confirm.
function enrolStep(app, ctx, next) {
  const card = h('section', { class: 'card login', 'aria-labelledby': 'page-title' },
    brand(),
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Set up two-factor authentication'),
    h('p', { class: 'muted' }, 'Your account needs a second factor. Scan the code with an authenticator app, then enter the code it shows.'));
  mount(ctx.main, card);
  card.append(enrolment(app, {
    onDone: async (answer) => {
      app.api.noteLogin(answer);
      app.ui.toast('Two-factor authentication is set up.', 'ok');
      await signedIn(app, next);
    },
  }));
  card.append(h('button', { type: 'button', class: 'link', onclick: () => app.signOut() }, 'Cancel and sign out'));
}
