// The launch form: a launch plan's (or a task's) inputs, typed, defaults filled in; it starts an
// execution and opens its page.
import { api, enc } from './api.js';
import { h, replace, errorBox } from './dom.js';
import { typeName, defaultText, isSimple, toLiteral } from './values.js';
import { navigate } from './app.js';

/** `target`: a LaunchPlan, or `{ task }` for a single task's execution. */
export function launchForm(id, target) {
  let params;
  let launchId;
  if (target.task) {
    const t = target.task;
    const vars = (t.closure.compiled_task.template.interface.inputs || {}).variables || {};
    params = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, { var: v, required: true }]));
    launchId = { ...t.id, resource_type: 'TASK' };
  } else {
    const c = target.closure || {};
    params = ((c.expected_inputs || target.spec.default_inputs) || {}).parameters || {};
    launchId = { ...target.id, resource_type: 'LAUNCH_PLAN' };
  }
  // A proto map has no order: what must be given first, then by name.
  const required = (p) => Boolean(p.required) || !('default' in p);
  const fields = Object.entries(params)
    .sort(([a, p], [b, q]) => Number(required(q)) - Number(required(p)) || a.localeCompare(b))
    .map(([name, p]) => field(name, p));
  const status = h('div', { class: 'form-status' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'launch-submit' }, 'Launch');
  const form = h('form', {
    class: 'launch-form', id: 'launch-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const literals = {};
      let bad = false;
      for (const f of fields) {
        f.error.textContent = '';
        try {
          const lit = f.read();
          if (lit) literals[f.name] = lit;
        } catch (err) {
          f.error.textContent = err.message;
          bad = true;
        }
      }
      if (bad) return;
      submit.disabled = true;
      replace(status, 'Starting…');
      try {
        const res = await api('executions', {
          method: 'POST',
          body: {
            project: id.project, domain: id.domain,
            spec: { launch_plan: launchId, metadata: { mode: 'MANUAL' } },
            inputs: { literals },
          },
        });
        const e = res.id;
        navigate(`/console/projects/${enc(e.project)}/domains/${enc(e.domain)}/executions/${enc(e.name)}`);
      } catch (err) {
        submit.disabled = false;
        replace(status, errorBox(err));
      }
    },
  },
  h('h2', {}, `Launch ${launchId.name}`, h('span', { class: 'muted' }, ` ${launchId.version}`)),
  fields.length ? fields.map((f) => f.el) : h('p', { class: 'muted' }, 'No inputs.'),
  h('div', { class: 'form-actions' }, submit), status);
  return form;
}

function field(name, p) {
  const t = (p.var && p.var.type) || {};
  const required = Boolean(p.required) || !('default' in p);
  const initial = defaultText(p.default);
  const inputId = `input-${name}`;
  let input;
  if (t.simple === 'BOOLEAN') {
    input = h('select', { id: inputId, name }, ['true', 'false'].map((v) => h('option', { value: v, selected: v === (initial || 'false') }, v)));
  } else if (t.enum_type) {
    input = h('select', { id: inputId, name }, (t.enum_type.values || []).map((v) => h('option', { value: v, selected: v === initial }, v)));
  } else if (isSimple(t)) {
    input = h('input', {
      id: inputId, name, value: initial,
      // Text, not type=number: a number field rounds 64-bit integers past 2^53.
      type: 'text',
      inputmode: t.simple === 'INTEGER' ? 'numeric' : t.simple === 'FLOAT' ? 'decimal' : null,
      placeholder: t.blob || t.structured_dataset_type ? 'a URI the sandbox can read, such as file:///path' : '',
    });
  } else {
    input = h('textarea', { id: inputId, name, rows: 3, placeholder: 'JSON' }, initial);
  }
  const error = h('span', { class: 'field-error', role: 'alert' });
  const el = h('div', { class: 'field' },
    h('label', { for: inputId }, h('code', {}, name), h('span', { class: 'type' }, ` ${typeName(t)}`), required ? h('span', { class: 'req' }, ' required') : null),
    // flytekit describes an input by its name when the docstring does not.
    p.var && p.var.description && p.var.description !== name ? h('div', { class: 'muted' }, p.var.description) : null,
    input, error);
  const read = () => {
    const text = input.value;
    if (text === '' && t.simple !== 'STRING') {
      // Left empty: the launch plan's default applies (the sandbox fills it in).
      if (!required) return null;
      if (!(t.union_type && (t.union_type.variants || []).some((v) => v.simple === 'NONE'))) throw new Error('a value is required');
    }
    if (text === initial && !required) return null;
    return toLiteral(t, text);
  };
  return { name, el, error, read };
}
