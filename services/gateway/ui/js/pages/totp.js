// TOTP enrolment, shared by the login (require_2fa) and the profile page:
// POST /api/v1/me/2fa/enroll answers {secret, otpauth_uri}; the page shows the URI as a QR code
// (vendored qrcode-generator, MIT, loaded only here) and as text, then
// POST /api/v1/me/2fa/confirm {code} answers a login (new cookies).

import { h, mount } from '../dom.js';

// Draws a QR code of `text` as an SVG (no inline style, no data URL).
export async function qrSvg(text) {
  const { default: qrcode } = await import('../../vendor/qrcode.js');
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  let d = '';
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) {
      if (qr.isDark(r, c)) d += `M${c + quiet},${r + quiet}h1v1h-1z`;
    }
  }
  const size = n + quiet * 2;
  return h('svg', { viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': 'QR code for your authenticator app', 'shape-rendering': 'crispEdges' },
    h('rect', { width: size, height: size, fill: '#fff' }),
    h('path', { d, fill: '#000' }));
}

// The enrolment widget. opts.onDone(loginAnswer) after a confirmed code.
export function enrolment(app, opts = {}) {
  const { ui, api } = app;
  const box = ui.messageBox('enroll-error');
  const qrBox = h('div', { id: 'enroll-qr', class: 'qr', 'aria-live': 'polite' }, ui.spinner('Preparing your key…'));
  const uri = h('code', { id: 'enroll-uri', class: 'secret' });
  const secret = h('code', { id: 'enroll-secret', class: 'secret' });
  const code = ui.field({ id: 'enroll-code', name: 'code', label: 'Code from the app', autocomplete: 'one-time-code', required: true, attrs: { inputmode: 'numeric', pattern: '[0-9 ]{6,8}', maxlength: '8' } });
  const form = h('form', { id: 'enroll-form' },
    qrBox,
    h('details', { open: true }, h('summary', 'Cannot scan? Enter the key by hand'),
      h('p', 'Key: ', secret), h('p', 'Or this link: ', uri)),
    box, code,
    h('button', { type: 'submit', id: 'enroll-submit', class: 'primary' }, 'Confirm'));
  (async () => {
    try {
      const answer = await api.post('/me/2fa/enroll', {});
      mount(uri, answer.otpauth_uri || '');
      mount(secret, (answer.secret || '').replace(/(.{4})/g, '$1 ').trim());
      try {
        mount(qrBox, await qrSvg(answer.otpauth_uri));
      } catch (e) {
        mount(qrBox, h('p', { class: 'muted' }, 'The QR code could not be drawn: enter the key by hand.'));
      }
    } catch (err) {
      mount(qrBox);
      qrBox.hidden = true;
      box.show(ui.errorText(err), 'error');
    }
  })();
  ui.onSubmit(form, box, async () => {
    const answer = await api.post('/me/2fa/confirm', { code: code.input.value.replace(/\s+/g, '') }, { noRetry: true });
    if (opts.onDone) await opts.onDone(answer);
    return '';
  });
  return form;
}
