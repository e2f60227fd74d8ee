// Projects, a project's executions (filterable, live), its workflows, tasks and launch plans, and
// one of them with its versions and typed interface.
import { api, enc, idPath, phaseOf, durationMs, formatDuration, formatTime } from './api.js';
import { h, replace, badge, errorBox, setCrumbs, table } from './dom.js';
import { typeName, defaultText } from './values.js';
import { launchForm } from './launch.js';

const KINDS = {
  workflows: { title: 'Workflows', ids: 'workflow_ids', api: 'workflows', noun: 'workflow' },
  tasks: { title: 'Tasks', ids: 'task_ids', api: 'tasks', noun: 'task' },
  launchPlans: { title: 'Launch plans', ids: 'launch_plan_ids', api: 'launch_plans', noun: 'launch plan' },
};
const PHASES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT'];
const POLL_MS = 2000;
/** Executions per page, unless the URL says (`?limit=N`). */
const PAGE = 100;

export function projectsPage(el) {
  setCrumbs(h('span', {}, 'Projects'));
  replace(el, h('h1', {}, 'Projects'), h('p', { class: 'muted' }, 'Loading…'));
  api('projects').then((res) => {
    const projects = res.projects || [];
    replace(el, h('h1', {}, 'Projects'), h('ul', { class: 'cards' }, projects.map((p) => h('li', {},
      h('a', { href: `/console/projects/${enc(p.id)}/executions?domain=development`, class: 'card' },
        h('strong', {}, p.name || p.id),
        h('span', { class: 'muted' }, (p.domains || []).map((d) => d.name).join(' · ')))))));
  }).catch((err) => replace(el, h('h1', {}, 'Projects'), errorBox(err)));
}

export function projectPage(el, project, domain, tab, q) {
  const base = `/console/projects/${enc(project)}`;
  setCrumbs(h('a', { href: '/console' }, 'Projects'), h('span', {}, `${project} · ${domain}`));
  const domains = h('select', {
    id: 'domain', 'aria-label': 'domain',
    onchange: (ev) => { window.history.pushState(null, '', `${base}/${tab}?domain=${enc(ev.target.value)}`); window.dispatchEvent(new PopStateEvent('popstate')); },
  }, ['development', 'staging', 'production'].map((d) => h('option', { value: d, selected: d === domain }, d)));
  const tabs = h('nav', { class: 'tabs' }, [['executions', 'Executions'], ...Object.entries(KINDS).map(([k, v]) => [k, v.title])]
    .map(([k, title]) => h('a', { href: `${base}/${k}?domain=${enc(domain)}`, class: k === tab ? 'active' : '' }, title)));
  const body = h('div');
  replace(el, h('div', { class: 'title-row' }, h('h1', {}, project), domains), tabs, body);
  if (tab === 'executions') return executionsList(body, project, domain, q);
  entityList(body, project, domain, tab);
  return null;
}

/** The executions, newest first, refreshed while shown; the filters live in the URL (`phase`,
 *  `name`, and the page size `limit`), so a filtered list can be linked to and survives a reload. */
function executionsList(el, project, domain, q) {
  const phase = h('select', { id: 'phase-filter', 'aria-label': 'phase' },
    h('option', { value: '' }, 'any phase'), PHASES.map((p) => h('option', { value: p, selected: p === q.get('phase') }, p)));
  const name = h('input', {
    id: 'name-filter', type: 'search', placeholder: 'name contains…', 'aria-label': 'name contains', value: q.get('name') || '',
  });
  const list = h('div');
  let timer = null;
  let stopped = false;
  // Answers can come back out of order while the user types: only the latest request's is shown.
  let latest = 0;
  // Pages shown: the live refresh asks for all of them at once, so none goes stale.
  let pages = 1;
  const size = Math.max(1, Math.min(1000, Number.parseInt(q.get('limit'), 10) || PAGE));
  const remember = () => {
    const url = new URLSearchParams({ domain });
    if (phase.value) url.set('phase', phase.value);
    if (name.value.trim()) url.set('name', name.value.trim());
    if (size !== PAGE) url.set('limit', size);
    window.history.replaceState(null, '', `${window.location.pathname}?${url}`);
  };
  const load = async () => {
    clearTimeout(timer);
    const mine = ++latest;
    const filters = [];
    if (phase.value) filters.push(`eq(phase,${phase.value})`);
    if (name.value.trim()) filters.push(`contains(name,${name.value.trim()})`);
    const query = `limit=${size * pages}&sort_by.key=created_at&sort_by.direction=DESCENDING${filters.length ? `&filters=${enc(filters.join('+'))}` : ''}`;
    try {
      const res = await api(`executions/${enc(project)}/${enc(domain)}?${query}`);
      if (stopped || mine !== latest) return;
      const rows = (res.executions || []).map((e) => {
        const c = e.closure || {};
        const lp = e.spec.launch_plan || {};
        return h('tr', { 'data-execution': e.id.name },
          h('td', {}, h('a', { href: `/console/projects/${enc(project)}/domains/${enc(domain)}/executions/${enc(e.id.name)}` }, e.id.name)),
          h('td', {}, lp.name || ''),
          h('td', {}, badge(phaseOf(c))),
          h('td', {}, formatTime(c.created_at)),
          h('td', { class: 'num' }, formatDuration(durationMs(c.duration))));
      });
      const more = res.token ? h('button', {
        id: 'more-executions', class: 'more', onclick: () => { pages += 1; load(); },
      }, `Show ${size} more`) : null;
      replace(list, rows.length
        ? [table(['Execution', 'Launch plan', 'Phase', 'Created', 'Duration'], rows, { class: 'list', id: 'executions' }), more]
        : h('p', { class: 'muted' }, 'No executions match. Start one from a launch plan, or with ', h('code', {}, 'union run --remote'), '.'));
    } catch (err) {
      if (stopped || mine !== latest) return;
      replace(list, errorBox(err));
    }
    if (!stopped && mine === latest) timer = setTimeout(load, POLL_MS);
  };
  const changed = () => { pages = 1; remember(); load(); };
  phase.addEventListener('change', changed);
  name.addEventListener('input', changed);
  replace(el, h('div', { class: 'filters' }, phase, name), list);
  load();
  return () => { stopped = true; clearTimeout(timer); };
}

function entityList(el, project, domain, kind) {
  const k = KINDS[kind];
  replace(el, h('p', { class: 'muted' }, 'Loading…'));
  api(`${k.ids}/${enc(project)}/${enc(domain)}?limit=1000&sort_by.key=name&sort_by.direction=ASCENDING`).then((res) => {
    const names = res.entities || [];
    replace(el, names.length
      ? h('ul', { class: 'entities', id: kind }, names.map((n) => h('li', {},
        h('a', { href: `/console/projects/${enc(project)}/domains/${enc(domain)}/${kind}/${enc(n.name)}` }, n.name))))
      : h('p', { class: 'muted' }, `No ${k.title.toLowerCase()} in ${project} · ${domain}. Register some with `, h('code', {}, 'union register'), '.'));
  }).catch((err) => replace(el, errorBox(err)));
}

/** The variables of an interface, with their types (and a launch plan's defaults). */
function variables(title, vars, params) {
  const entries = Object.entries(vars || {});
  return [h('h3', {}, title), entries.length
    ? table(['Name', 'Type', params ? 'Default' : 'Description'], entries.map(([name, v]) => {
      const p = params && params[name];
      const dflt = p ? (p.required ? h('span', { class: 'muted' }, 'required') : defaultText(p.default)) : (v.description && v.description !== name ? v.description : '');
      return h('tr', {}, h('td', {}, h('code', {}, name)), h('td', {}, h('code', {}, typeName(v.type))), h('td', {}, dflt));
    }), { class: 'list' })
    : h('p', { class: 'muted' }, 'none')];
}

export function entityPage(el, kind, id, version, openLaunch) {
  const k = KINDS[kind];
  const base = `/console/projects/${enc(id.project)}`;
  setCrumbs(h('a', { href: '/console' }, 'Projects'),
    h('a', { href: `${base}/${kind}?domain=${enc(id.domain)}` }, `${id.project} · ${id.domain}`),
    h('span', {}, id.name));
  replace(el, h('h1', {}, id.name), h('p', { class: 'muted' }, 'Loading…'));
  (async () => {
    const versions = (await api(`${k.api}/${idPath(id)}?limit=50&sort_by.key=created_at&sort_by.direction=DESCENDING`))[kind === 'launchPlans' ? 'launch_plans' : kind] || [];
    if (!versions.length) throw new Error(`No ${k.noun} named ${id.name} in ${id.project} · ${id.domain}.`);
    const chosen = version ? await api(`${k.api}/${idPath(id, version)}`) : versions[0];
    const v = chosen.id.version;
    const here = `/console/projects/${enc(id.project)}/domains/${enc(id.domain)}/${kind}/${enc(id.name)}`;
    const sections = [];
    let launchTarget = null;
    if (kind === 'workflows') {
      const iface = chosen.closure.compiled_workflow.primary.template.interface || {};
      sections.push(variables('Inputs', iface.inputs && iface.inputs.variables), variables('Outputs', iface.outputs && iface.outputs.variables));
      // flytekit registers a default launch plan named and versioned as its workflow.
      launchTarget = async () => api(`launch_plans/${idPath(id, v)}`);
    } else if (kind === 'launchPlans') {
      const c = chosen.closure || {};
      const params = (c.expected_inputs && c.expected_inputs.parameters) || {};
      const vars = Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.var]));
      const wf = chosen.spec.workflow_id;
      sections.push(h('p', {}, 'Workflow: ', h('a', { href: `/console/projects/${enc(wf.project)}/domains/${enc(wf.domain)}/workflows/${enc(wf.name)}?version=${enc(wf.version)}` }, wf.name)),
        h('p', {}, 'State: ', c.state || 'INACTIVE'),
        variables('Inputs', vars, params),
        variables('Fixed inputs', Object.fromEntries(Object.keys((chosen.spec.fixed_inputs && chosen.spec.fixed_inputs.literals) || {}).map((n) => [n, {}]))));
      launchTarget = async () => chosen;
    } else {
      const t = chosen.closure.compiled_task.template;
      const iface = t.interface || {};
      sections.push(h('p', {}, 'Type: ', h('code', {}, t.type || '')),
        t.container ? h('p', {}, 'Image: ', h('code', {}, t.container.image)) : null,
        variables('Inputs', iface.inputs && iface.inputs.variables), variables('Outputs', iface.outputs && iface.outputs.variables));
      launchTarget = async () => ({ task: chosen });
    }
    const formBox = h('div', { id: 'launch' });
    const launchButton = h('button', {
      class: 'primary', id: 'launch-button',
      onclick: async () => {
        try {
          replace(formBox, launchForm(id, await launchTarget()));
        } catch (err) {
          replace(formBox, errorBox(err));
        }
      },
    }, 'Launch');
    replace(el,
      h('div', { class: 'title-row' }, h('h1', {}, id.name), h('span', { class: 'muted' }, k.noun), h('span', { class: 'spacer' }), launchButton),
      formBox,
      h('p', {}, 'Version ', h('code', { id: 'version' }, v), ' · registered ', formatTime(chosen.closure && chosen.closure.created_at)),
      sections,
      h('h3', {}, 'Versions'),
      h('ul', { class: 'versions' }, versions.map((x) => h('li', {},
        h('a', { href: `${here}?version=${enc(x.id.version)}`, class: x.id.version === v ? 'active' : '' }, x.id.version)))));
    if (openLaunch) launchButton.click();
  })().catch((err) => replace(el, h('h1', {}, id.name), errorBox(err)));
  return null;
}
