// /admin: the sections the signed-in user may open.

import { h, page, SECTIONS } from './common.js';

const ABOUT = {
  users: 'Accounts: properties, lock, disable, password, 2FA, groups.',
  groups: 'Priority, members, permissions, workspaces, SSO and file mappings, settings.',
  workspaces: 'Images users launch: resources, run_config, exec hooks, mappings.',
  zones: 'Where sessions run, and how agents are chosen.',
  agents: 'Capacity, allocation, sessions; drain.',
  sessions: 'Everyone\'s sessions: filter, explain, force delete.',
  audit: 'Every change, from identity and policy.',
  reports: 'Usage by user, group, workspace or zone; CSV download.',
};

export function render(ctx) {
  const shown = SECTIONS.filter((s) => ctx.user.can(s.permission));
  return page(ctx, 'Administration', [],
    h('ul', { id: 'admin-sections', class: 'admin-sections' }, shown.map((s) => h('li', { class: 'card' },
      h('h2', h('a', { href: s.path, id: `admin-section-${s.id}` }, s.label)),
      h('p', { class: 'muted' }, ABOUT[s.id])))));
}
