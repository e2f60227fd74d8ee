// The console's router: flyteconsole's URL scheme under /console, one page at a time.
import { h, replace, errorBox, setCrumbs } from './dom.js';
import { projectsPage, projectPage, entityPage } from './entities.js';
import { executionPage } from './execution.js';
import { finishSignIn } from './api.js';

const app = document.getElementById('app');
let cleanup = null;

const routes = [
  [/^\/console\/signin\/?$/, () => (el, q) => {
    finishSignIn(q).then((back) => {
      history.replaceState(null, '', back);
      render();
    }).catch((err) => replace(el, h('h1', {}, 'Signing in'), errorBox(err), h('a', { href: '/console' }, 'Try again')));
  }],
  [/^\/console\/?$/, () => projectsPage],
  [/^\/console\/projects\/?$/, () => projectsPage],
  [/^\/console\/projects\/([^/]+)\/?$/, ([p]) => redirect(`/console/projects/${p}/executions?domain=development`)],
  [/^\/console\/projects\/([^/]+)\/(executions|workflows|tasks|launchPlans)\/?$/,
    ([project, tab]) => (el, q) => projectPage(el, dec(project), q.get('domain') || 'development', tab, q)],
  [/^\/console\/projects\/([^/]+)\/domains\/([^/]+)\/executions\/([^/]+)\/?$/,
    ([p, d, n]) => (el) => executionPage(el, { project: dec(p), domain: dec(d), name: dec(n) })],
  [/^\/console\/projects\/([^/]+)\/domains\/([^/]+)\/(workflows|tasks|launchPlans)\/([^/]+)\/?$/,
    ([p, d, kind, n]) => (el, q) => entityPage(el, kind, { project: dec(p), domain: dec(d), name: dec(n) }, q.get('version'), q.has('launch'))],
  // flyteconsole's version pages: /workflow/NAME/version/V (singular kind).
  [/^\/console\/projects\/([^/]+)\/domains\/([^/]+)\/(workflow|task|launch_plan)\/([^/]+)\/version\/([^/]+)\/?$/,
    ([p, d, kind, n, v]) => (el) => entityPage(el, { workflow: 'workflows', task: 'tasks', launch_plan: 'launchPlans' }[kind],
      { project: dec(p), domain: dec(d), name: dec(n) }, dec(v), false)],
];

function dec(s) {
  return decodeURIComponent(s);
}

function redirect(to) {
  return () => {
    history.replaceState(null, '', to);
    render();
    return null;
  };
}

export function navigate(to) {
  history.pushState(null, '', to);
  render();
}

function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const { pathname, search } = window.location;
  for (const [re, page] of routes) {
    const m = pathname.match(re);
    if (!m) continue;
    const view = page(m.slice(1));
    const el = h('div', { class: 'page' });
    replace(app, el);
    try {
      const done = view(el, new URLSearchParams(search));
      if (typeof done === 'function') cleanup = done;
    } catch (err) {
      replace(el, errorBox(err));
    }
    return;
  }
  setCrumbs();
  replace(app, h('div', { class: 'page' }, h('h1', {}, 'Not found'),
    h('p', {}, 'The console has no page at ', h('code', {}, pathname), '. ',
      h('a', { href: '/console' }, 'All projects'))));
}

// Links inside the console change the page without reloading it.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  const url = new URL(a.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith('/console') || a.target) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);
render();
