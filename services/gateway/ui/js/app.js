// Atrium's browser UI: the shell. It signs the user in, loads who they are (GET /api/v1/me,
// their settings and effective policy), draws the navigation and hands each path to its page.
// Everything goes through /api/v1 (api.js); nothing else is called.
//
// Stable ids and test attributes (for end-to-end tests; also in docs/ui.md):
//
//   Shell        #app-header #app-nav #nav-workspaces #nav-profile #nav-admin #nav-user
//                #nav-logout #main #page-title #toasts [data-testid=toast] #forbidden
//                #not-found #page-error
//   Login        #login-form #login-username #login-password #login-totp (shown when a code is
//                needed) #login-submit #login-error
//                forced password change: #pwchange-form #pwchange-new #pwchange-confirm
//                #pwchange-submit #pwchange-error
//                2FA enrolment: #enroll-form #enroll-qr #enroll-uri #enroll-secret #enroll-code
//                #enroll-submit #enroll-error
//   Dashboard    #workspace-search #workspace-categories #workspace-list
//                [data-workspace="<workspace name>"] (a card; also data-workspace-id) with a
//                launch button [data-action=launch]; #workspaces-empty
//                #session-list [data-session="<session id>"] (data-state="running"…) with
//                buttons [data-action=open|resume|pause|stop|delete]; #sessions-empty
//                #usage (when a usage_limit applies) #usage-used #usage-remaining
//   Launch/      #launch-progress (a <progress>) #launch-state #launch-message #launch-error
//   session      #launch-explain (why: reasons and each agent's verdict) #launch-retry
//                #session-frame (the iframe of /session/<id>/) #control-panel
//                #panel-toggle #panel-fullscreen #panel-workspaces #panel-pause #panel-stop
//                #panel-resume #panel-delete #panel-logout #panel-quality
//                #panel-keyboard #panel-pointer-lock (with a noVNC client in the frame)
//                #session-countdown (with session_time_limit) #session-status #session-tip
//   Go           #go-status #go-error
//   Profile      #settings-form #settings-auto-launch #settings-default-workspace
//                #settings-theme #settings-show-tips #settings-toggle-panel
//                #settings-chat-sounds #settings-save #settings-message
//                #password-form #password-old #password-new #password-confirm
//                #password-submit #password-message
//                #totp-status #totp-enroll (button) #enroll-qr #enroll-uri #enroll-secret
//                #enroll-code #enroll-submit #enroll-error
//                #ssh-public #ssh-fingerprint #ssh-generate #ssh-private (after generating)
//                #ssh-download #ssh-form #ssh-key-input #ssh-save #ssh-message
//                #usage-detail
//
// Admin pages: js/admin/index.js exports registerAdmin(app); see the contract there.

import * as api from './api.js';
import { h, mount } from './dom.js';
import * as ui from './components.js';
import * as router from './router.js';
import { registerAdmin } from './admin/index.js';
import { registerLogin } from './pages/login.js';
import { registerDashboard } from './pages/dashboard.js';
import { registerSession } from './pages/session.js';
import { registerProfile } from './pages/profile.js';
import { registerGo } from './pages/go.js';

// ---- the signed-in user -----------------------------------------------------------------

// Filled by loadUser(). Pages read it through ctx.user.
export const user = {
  checkedAt: 0,      // when loadUser last asked
  me: null,          // GET /api/v1/me: {user_id, username, scope, is_admin, permissions}
  settings: null,    // GET /api/v1/me/settings (seeds/002 user settings)
  policy: new Map(), // GET /api/v1/me/policy: setting name -> value (undefined = not set)
  get signedIn() { return !!this.me && this.me.scope === 'full'; },
  get isAdmin() { return !!this.me && !!this.me.is_admin; },
  // Whether the user holds a permission (administrators hold all).
  can(permission) {
    if (!this.me) return false;
    if (this.me.is_admin) return true;
    return (this.me.permissions || []).includes(permission);
  },
  // The effective value of a group setting (reference/group-settings.md), or `fallback` when
  // not set. Values are plain JS values (bool, number, string; json settings parsed).
  setting(name, fallback) {
    return this.policy.has(name) && this.policy.get(name) !== undefined ? this.policy.get(name) : fallback;
  },
};

function settingValue(value) {
  if (!value) return undefined;
  if ('bool_value' in value) return value.bool_value;
  if ('int_value' in value) return Number(value.int_value);
  if ('float_value' in value) return Number(value.float_value);
  if ('string_value' in value) return value.string_value;
  if ('json_value' in value) {
    try { return JSON.parse(value.json_value); } catch (e) { return value.json_value; }
  }
  return undefined;
}

// Loads (or reloads) the user. Resolves false when nobody is signed in.
export async function loadUser() {
  user.checkedAt = Date.now();
  let me;
  try {
    me = await api.get('/me');
  } catch (err) {
    if (err.status === 401 || err.status === 403) { clearUser(); return false; }
    throw err;
  }
  user.me = me;
  if (me.scope !== 'full') return true;
  const [settings, policy, granted] = await Promise.all([
    api.get('/me/settings').catch(() => null),
    api.get('/me/policy').catch(() => null),
    // WhoAmI lists an API key's permissions; a user's come from their groups (policy).
    me.user_id ? api.get(`/users/${encodeURIComponent(me.user_id)}/permissions`).catch(() => null) : null,
  ]);
  if (granted) me.permissions = Array.from(new Set([...(me.permissions || []), ...(granted.permissions || [])]));
  user.settings = settings;
  user.policy = new Map();
  for (const s of (policy && policy.settings) || []) user.policy.set(s.name, settingValue(s.value));
  applyTheme();
  ui.setDetailedErrors(user.setting('display_ui_errors', false));
  drawHeader();
  idle.start();
  return true;
}

export function clearUser() {
  user.me = null;
  user.settings = null;
  user.policy = new Map();
  idle.stop();
  drawHeader();
}

// light / dark / auto (the OS's choice, through the CSS media query).
export function applyTheme(theme = user.settings && user.settings.theme) {
  const root = document.documentElement;
  if (theme === 'THEME_LIGHT') root.dataset.theme = 'light';
  else if (theme === 'THEME_DARK') root.dataset.theme = 'dark';
  else delete root.dataset.theme;
}

// Signs out (POST /api/v1/logout) and shows the login page with `reason`.
export async function signOut(reason) {
  try { await api.post('/logout', undefined, { noRetry: true }); } catch (e) { /* already out */ }
  api.clearLoginExpiry();
  clearUser();
  const q = reason ? `?reason=${encodeURIComponent(reason)}` : '';
  router.navigate(`/login${q}`, { replace: true });
}

// Where a user lands after signing in: `next` if given, the default workspace when
// auto-launch applies, the dashboard_redirect site for standard users, else the dashboard.
export function landing(next) {
  if (next && next.startsWith('/') && !next.startsWith('//')) return router.navigate(next, { replace: true });
  const auto = (user.settings && user.settings.auto_launch_session) || user.setting('auto_login_to_kasm', false);
  if (auto) return router.navigate('/go', { replace: true });
  return router.navigate('/', { replace: true });
}

// A "standard user" (seeds/001 dashboard_redirect): no administrator rights, no permissions.
export function isStandardUser() {
  return !!user.me && !user.me.is_admin && (user.me.permissions || []).length === 0;
}

// ---- idle disconnect --------------------------------------------------------------------

// Logs the user out after idle_disconnect minutes without input (keyboard, pointer, wheel,
// touch) in this page or in the session frame (the session page reports its frame's input
// with noteActivity()).
const idle = (() => {
  let last = Date.now();
  let timer = 0;
  const note = () => { last = Date.now(); };
  const events = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'];
  return {
    note,
    start() {
      clearInterval(timer);
      note();
      events.forEach((e) => document.addEventListener(e, note, { passive: true, capture: true }));
      timer = setInterval(() => {
        const minutes = Number(user.setting('idle_disconnect', 20));
        if (!user.signedIn || !(minutes > 0)) return;
        if (Date.now() - last > minutes * 60 * 1000) {
          clearInterval(timer);
          signOut(`You were signed out after ${minutes} minutes without activity.`);
        }
      }, 15 * 1000);
    },
    stop() {
      clearInterval(timer);
      events.forEach((e) => document.removeEventListener(e, note, { capture: true }));
    },
  };
})();

export const noteActivity = () => idle.note();

// ---- navigation -------------------------------------------------------------------------

const navItems = [
  { id: 'nav-workspaces', label: 'Workspaces', path: '/' },
  { id: 'nav-profile', label: 'Profile', path: '/profile' },
];

// Adds an entry to the navigation bar (admin pages): {id, label, path, permission}.
// permission: a permission name or a function(user) -> bool; absent: everyone.
export function addNav(item) {
  navItems.push(item);
  drawHeader();
}

function allowed(permission) {
  if (!permission) return true;
  if (typeof permission === 'function') return !!permission(user);
  return user.can(permission);
}

function drawHeader() {
  const header = document.getElementById('app-header');
  if (!header) return;
  if (!user.signedIn) { header.replaceChildren(); return; }
  const here = location.pathname;
  const links = navItems.filter((i) => allowed(i.permission)).map((i) => {
    const active = i.path === '/' ? (here === '/' || here.startsWith('/workspaces')) : here.startsWith(i.path);
    return h('li', h('a', { id: i.id, href: i.path, 'aria-current': active ? 'page' : undefined }, i.label));
  });
  mount(header,
    h('a', { class: 'brand', href: '/', 'aria-label': 'Atrium home' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Atrium'),
    h('nav', { id: 'app-nav', 'aria-label': 'Main' }, h('ul', links)),
    h('div', { class: 'who' },
      h('span', { id: 'nav-user' }, user.me.username),
      h('button', { type: 'button', id: 'nav-logout', class: 'link', onclick: () => signOut('You signed out.') }, 'Sign out')));
}

// ---- drawing a page ---------------------------------------------------------------------

async function draw(found, ctx) {
  const main = document.getElementById('main');
  const options = found ? found.route.options : {};
  if (!options.public && !user.signedIn) {
    const ok = user.me ? true : await loadUser().catch(() => false);
    if (!ok || !user.signedIn) {
      const next = location.pathname + location.search;
      router.navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
      return;
    }
  }
  const layout = options.layout || 'app';
  document.body.dataset.layout = layout;
  document.getElementById('app-header').hidden = layout !== 'app' || !user.signedIn;
  drawHeader();
  document.title = options.title ? `${options.title} · Atrium` : 'Atrium';
  ctx.main = main;
  ctx.user = user;
  ctx.app = app;
  if (!found) {
    mount(main, h('div', { id: 'not-found', class: 'card' }, h('h1', { id: 'page-title', tabindex: '-1' }, 'Page not found'),
      h('p', 'There is nothing at this address. '), h('a', { href: '/' }, 'Back to your workspaces')));
    focusTitle();
    return;
  }
  if (!allowed(options.permission)) {
    mount(main, h('div', { id: 'forbidden', class: 'card' }, h('h1', { id: 'page-title', tabindex: '-1' }, 'Not allowed'),
      h('p', 'You do not have permission to see this page.'), h('a', { href: '/' }, 'Back to your workspaces')));
    focusTitle();
    return;
  }
  mount(main, ui.spinner());
  try {
    const out = await found.route.render(ctx);
    if (ctx.signal.aborted) return;
    if (out instanceof Node) mount(main, out);
    focusTitle();
  } catch (err) {
    if (ctx.signal.aborted || (err && err.name === 'AbortError')) return;
    mount(main, h('div', { id: 'page-error', class: 'card', role: 'alert' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'This page could not be shown'),
      h('p', ui.errorText(err)),
      h('button', { type: 'button', onclick: () => router.render() }, 'Try again')));
    focusTitle();
  }
}

function focusTitle() {
  const title = document.getElementById('page-title');
  if (title && !document.activeElement?.closest?.('#main form')) title.focus({ preventScroll: true });
}

// What admin pages (and any page) get: see js/admin/index.js for the contract.
export const app = {
  api, h, mount, ui, user,
  register: router.register,
  navigate: router.navigate,
  addNav,
  signOut,
  loadUser,
  clearUser,
  landing,
  noteActivity,
  applyTheme,
  isStandardUser,
};

// ---- start ------------------------------------------------------------------------------

// Kasm-style links (/#/connect/kasm/<kasm_id>/…) open the session view.
function translateHashLink() {
  const m = /^#\/connect\/kasm\/([0-9a-fA-F-]{32,36})/.exec(location.hash);
  if (m) history.replaceState(null, '', `/connect/${m[1]}`);
}

api.onSignedOut((reason) => {
  if (!user.me) return;
  clearUser();
  const next = location.pathname + location.search;
  router.navigate(`/login?next=${encodeURIComponent(next)}&reason=${encodeURIComponent(reason || '')}`, { replace: true });
});

registerLogin(app);
registerGo(app);
registerDashboard(app);
registerSession(app);
registerProfile(app);
try {
  registerAdmin(app);
} catch (err) {
  console.error('admin pages failed to register', err);
}

translateHashLink();
router.start(draw);
