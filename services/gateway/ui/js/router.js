// A history router. Paths are the gateway's SPA paths (services/gateway/src/ui.rs SPA_PATHS:
// /login /go /workspaces /launch /connect /profile /admin, and /), each of which the gateway
// answers with the shell, so reloads and deep links work.
//
//   register('/admin/users/:id', render, { permission: 'users.view', title: 'User', layout: 'app' })
//
// render(ctx) draws into ctx.main (already emptied). ctx has:
//   params   {id: '…'} from the pattern          query   URLSearchParams of the URL
//   signal   aborted when the user leaves the page (pass it to api calls, watches, timers)
//   onLeave(fn)  runs fn when the user leaves the page
//   user     the signed-in user (see app.js: me, settings, policy, can(permission), setting(name))
// render may be async; a thrown error is shown as a sentence, never as a stack trace.
//
// options: permission (a permission name, or a function(user) -> bool), public (no sign-in
// needed), title (the document title), layout ('app' with the navigation bar, 'bare' for
// login, 'full' for the session view).

const routes = [];
let context = null;
let current = null;

function compile(pattern) {
  const keys = [];
  const source = pattern
    .replace(/\/+$/, '')
    .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
    .replace(/:([A-Za-z_][A-Za-z0-9_]*)(\*)?/g, (_, key, star) => {
      keys.push(key);
      return star ? '(.+)' : '([^/]+)';
    });
  return { regex: new RegExp(`^${source || ''}/?$`), keys };
}

export function register(path, render, options = {}) {
  routes.push({ path, render, options, ...compile(path) });
}

export function match(pathname) {
  for (const route of routes) {
    const m = route.regex.exec(pathname);
    if (m) {
      const params = {};
      route.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return { route, params };
    }
  }
  return null;
}

// Goes to an app path ('/profile', '/connect/<id>?x=1').
export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  return render();
}

// Whether a URL is one of the app's (so a click on it is handled without a reload).
export function isAppPath(pathname) {
  return !!match(pathname);
}

// Draws the page for the current URL. Called on start, on navigate and on back/forward.
export async function render() {
  if (!context) return;
  if (current) {
    current.abort.abort();
    for (const fn of current.leave) {
      try { fn(); } catch (e) { console.error(e); }
    }
    current = null;
  }
  const found = match(location.pathname);
  const page = { abort: new AbortController(), leave: [] };
  current = page;
  await context.draw(found, {
    params: found ? found.params : {},
    query: new URLSearchParams(location.search),
    signal: page.abort.signal,
    onLeave: (fn) => page.leave.push(fn),
  });
}

// Starts routing. draw(found, ctx) is the shell's (app.js): it checks sign-in and permission,
// lays out the page and calls found.route.render(ctx).
export function start(draw) {
  context = { draw };
  window.addEventListener('popstate', () => { render(); });
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
      || event.shiftKey || event.altKey) return;
    const a = event.target.closest && event.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !isAppPath(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  return render();
}
