// One execution: status, inputs and outputs, the graph with each node's state, a timeline of
// node attempts, a node's details with its attempts' logs (followed while they run), the error,
// terminate and relaunch, and answers to what its gate nodes wait for. Polls while it runs.
import { api, authHeaders, enc, idPath, phaseOf, TERMINAL, durationMs, formatDuration, formatTime } from './api.js';
import { h, replace, badge, errorBox, setCrumbs } from './dom.js';
import { literalMap, toLiteral, typeName } from './values.js';
import { drawGraph } from './graph.js';
import { navigate } from './app.js';

const POLL_MS = 1500;

export function executionPage(el, id) {
  const base = `/console/projects/${enc(id.project)}`;
  setCrumbs(
    h('a', { href: `${base}/executions?domain=${enc(id.domain)}` }, `${id.project} · ${id.domain}`),
    h('span', {}, id.name),
  );
  const s = {
    id, exec: null, wf: null, wfTried: false, data: null, dataPhase: null,
    nodes: [], children: new Map(), expanded: new Set(), attempts: new Map(), seen: new Map(), dynamic: new Map(),
    signals: [], signalsKey: null,
    selected: null, nodeData: new Map(), log: null, timer: null, stopped: false, error: null,
  };
  const parts = {
    head: h('div', { class: 'exec-head' }),
    error: h('div'),
    signals: h('section', { id: 'signals' }),
    io: h('div', { class: 'io' }),
    graph: h('div', { class: 'graph-box', id: 'graph' }),
    timeline: h('div', { class: 'timeline', id: 'timeline' }),
    panel: h('aside', { class: 'node-panel', id: 'node-panel' }),
  };
  replace(el,
    parts.head, parts.error, parts.signals,
    h('section', {}, h('h2', {}, 'Graph'), parts.graph),
    h('div', { class: 'split' },
      h('section', { class: 'grow' }, h('h2', {}, 'Timeline'), parts.timeline),
      parts.panel),
    h('section', {}, parts.io));
  s.parts = parts;

  const tick = async () => {
    if (s.stopped) return;
    try {
      await refresh(s);
      s.error = null;
    } catch (err) {
      s.error = err;
    }
    if (s.stopped) return;
    render(s);
    const done = s.exec && TERMINAL.has(phaseOf(s.exec.closure)) && s.data && s.dataPhase === phaseOf(s.exec.closure);
    if (!done) s.timer = setTimeout(tick, POLL_MS);
  };
  s.rerender = () => render(s);
  s.kick = () => { clearTimeout(s.timer); tick(); };
  tick();
  return () => {
    s.stopped = true;
    clearTimeout(s.timer);
    if (s.log) s.log.stop();
  };
}

async function refresh(s) {
  const { id } = s;
  s.exec = await api(`executions/${idPath(id)}`);
  const phase = phaseOf(s.exec.closure);
  if (!s.wfTried) {
    s.wfTried = true;
    const wfId = s.exec.closure.workflow_id;
    try {
      if (wfId) s.wf = await api(`workflows/${idPath(wfId, wfId.version)}`);
    } catch {
      // A single task's execution has no registered workflow: its graph is its node.
      s.wf = null;
    }
  }
  if (s.dataPhase !== phase) {
    s.data = await api(`data/executions/${idPath(id)}`);
    s.dataPhase = phase;
  }
  s.nodes = (await api(`node_executions/${idPath(id)}?limit=10000`)).node_executions || [];
  // What gate nodes wait for (an approval, an input): answered from the page while it runs.
  s.signals = TERMINAL.has(phase) ? [] : ((await api(`signals/${idPath(id)}`)).signals || []);
  for (const parent of s.expanded) {
    const list = await api(`node_executions/${idPath(id)}?limit=10000&unique_parent_id=${enc(parent)}`);
    s.children.set(parent, list.node_executions || []);
    // A dynamic node's children are the workflow its task returned: its connections are the edges.
    const p = findNode(s, parent);
    if (p && p.metadata && p.metadata.is_dynamic && !s.dynamic.has(parent)) {
      // None recorded (a run from before the sandbox kept them): children without edges.
      const res = await api(`node_executions/${idPath(id, parent)}/dynamic_workflow`).catch(() => ({}));
      s.dynamic.set(parent, (res.compiled_workflow && res.compiled_workflow.primary) || null);
    }
  }
  // Attempts of the nodes shown, fetched again only when a node changed.
  for (const n of visibleNodes(s)) {
    const nid = n.id.node_id;
    const stamp = `${phaseOf(n.closure)}|${n.closure.updated_at}`;
    if (n.metadata && n.metadata.is_parent_node && !n.metadata.is_dynamic) continue;
    if (s.seen.get(nid) === stamp) continue;
    const list = await api(`task_executions/${idPath(id, nid)}`);
    s.attempts.set(nid, list.task_executions || []);
    s.seen.set(nid, stamp);
  }
  if (s.selected) {
    const n = findNode(s, s.selected);
    const key = n ? `${phaseOf(n.closure)}` : '';
    const have = s.nodeData.get(s.selected);
    if (n && (!have || have.phase !== key)) {
      const data = await api(`data/node_executions/${idPath(id, s.selected)}`);
      s.nodeData.set(s.selected, { phase: key, data });
    }
  }
}

function visibleNodes(s) {
  const out = [];
  const walk = (list, depth) => {
    for (const n of list) {
      out.push(Object.assign(n, { depth }));
      const nid = n.id.node_id;
      if (s.expanded.has(nid)) walk(s.children.get(nid) || [], depth + 1);
    }
  };
  walk(s.nodes, 0);
  return out;
}

function findNode(s, nodeId) {
  return visibleNodes(s).find((n) => n.id.node_id === nodeId);
}

function template(s) {
  const primary = s.wf && s.wf.closure && s.wf.closure.compiled_workflow && s.wf.closure.compiled_workflow.primary;
  return primary || null;
}

function kindOf(tn) {
  if (!tn) return 'task';
  if (tn.task_node) return 'task';
  if (tn.workflow_node) return tn.workflow_node.sub_workflow_ref ? 'subworkflow' : 'launchplan';
  if (tn.branch_node) return 'branch';
  if (tn.gate_node) return 'gate';
  if (tn.array_node) return 'array';
  return 'node';
}

function labelOf(tn, fallback) {
  // flytekit names a map task's array node map_<task>_<hash>-arraynode.
  if (tn && tn.metadata && tn.metadata.name) return tn.metadata.name.split('.').pop().replace(/_[0-9a-f]{32}-arraynode$/, '');
  if (tn && tn.task_node && tn.task_node.reference_id) return tn.task_node.reference_id.name.split('.').pop();
  return fallback;
}

/** The spec nodes of a subworkflow a workflow node runs, by spec id, and its connections. */
function subworkflowOf(s, tn) {
  const ref = tn && tn.workflow_node && tn.workflow_node.sub_workflow_ref;
  const subs = (s.wf && s.wf.closure.compiled_workflow.sub_workflows) || [];
  const sub = ref && subs.find((w) => w.template.id.name === ref.name && w.template.id.version === ref.version);
  return sub || null;
}

/** The nodes a branch's cases or an array node's element name (their children's specs). */
function innerSpecs(tn) {
  if (!tn) return [];
  if (tn.branch_node && tn.branch_node.if_else) {
    const ie = tn.branch_node.if_else;
    return [ie.case, ...(ie.other || [])].filter(Boolean).map((c) => c.then_node).concat(ie.else_node ? [ie.else_node] : []).filter(Boolean);
  }
  if (tn.array_node && tn.array_node.node) return [tn.array_node.node];
  return [];
}

function buildGraph(s) {
  const prim = template(s);
  const specNodes = new Map(((prim && prim.template.nodes) || []).map((n) => [n.id, n]));
  const execById = new Map(s.nodes.map((n) => [n.id.node_id, n]));
  const nodes = [];
  const edges = [];
  if (prim) {
    nodes.push({ id: 'start-node', label: 'start', kind: 'start' });
    nodes.push({ id: 'end-node', label: 'end', kind: 'end' });
    for (const [id, tn] of specNodes) {
      if (id === 'start-node' || id === 'end-node') continue;
      const ex = execById.get(id);
      nodes.push(graphNode(s, id, tn, ex, null));
    }
    for (const [from, { ids = [] }] of Object.entries(prim.connections.downstream || {})) {
      for (const to of ids) edges.push({ from, to });
    }
  } else {
    for (const ex of s.nodes) nodes.push(graphNode(s, ex.id.node_id, null, ex, null));
  }
  // Expanded nodes' children, inside their parent.
  const addChildren = (parentId, parentSpec) => {
    const kids = s.children.get(parentId) || [];
    const sub = subworkflowOf(s, parentSpec) || s.dynamic.get(parentId) || null;
    const subSpecs = new Map([...((sub && sub.template.nodes) || []), ...innerSpecs(parentSpec)].map((n) => [n.id, n]));
    const bySpec = new Map();
    for (const ex of kids) {
      const nid = ex.id.node_id;
      const spec = subSpecs.get(ex.metadata && ex.metadata.spec_node_id) || null;
      bySpec.set(ex.metadata && ex.metadata.spec_node_id, nid);
      const node = graphNode(s, nid, spec, ex, parentId);
      // A map task's elements are its array node's sub-node, once per index.
      if (parentSpec && parentSpec.array_node) node.label = `${labelOf(spec, node.label)} [${nid.split('-n').pop()}]`;
      nodes.push(node);
      if (s.expanded.has(nid)) addChildren(nid, spec);
    }
    if (sub) {
      for (const [from, { ids = [] }] of Object.entries(sub.connections.downstream || {})) {
        for (const to of ids) if (bySpec.has(from) && bySpec.has(to)) edges.push({ from: bySpec.get(from), to: bySpec.get(to) });
      }
    }
  };
  for (const parentId of s.expanded) {
    if (!nodes.some((n) => n.id === parentId && !n.parent)) continue;
    addChildren(parentId, specNodes.get(parentId));
  }
  return { nodes, edges };
}

function graphNode(s, id, tn, ex, parent) {
  const isParent = Boolean(ex && ex.metadata && ex.metadata.is_parent_node);
  return {
    id,
    label: labelOf(tn, (ex && ex.metadata && ex.metadata.spec_node_id) || id),
    kind: kindOf(tn),
    phase: ex ? phaseOf(ex.closure) : null,
    parent,
    expandable: isParent,
    expanded: isParent && s.expanded.has(id),
  };
}

function render(s) {
  const { parts, exec } = s;
  if (!exec) {
    replace(parts.head, s.error ? errorBox(s.error) : h('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  const c = exec.closure;
  const phase = phaseOf(c);
  const lp = exec.spec.launch_plan;
  const running = !TERMINAL.has(phase);
  const lpLink = lp && (lp.resource_type === 'TASK'
    ? h('a', { href: `/console/projects/${enc(lp.project)}/domains/${enc(lp.domain)}/tasks/${enc(lp.name)}` }, lp.name)
    : h('a', { href: `/console/projects/${enc(lp.project)}/domains/${enc(lp.domain)}/launchPlans/${enc(lp.name)}` }, lp.name));
  const md = exec.spec.metadata || {};
  replace(parts.head,
    h('div', { class: 'title-row' },
      h('h1', {}, exec.id.name), badge(phase),
      h('span', { class: 'spacer' }),
      running ? h('button', { class: 'danger', id: 'terminate', onclick: () => terminate(s) }, 'Terminate') : null,
      h('button', { id: 'relaunch', onclick: () => relaunch(s) }, 'Relaunch')),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Launch plan'), h('dd', {}, lpLink || '', lp ? h('span', { class: 'muted' }, ` ${lp.version}`) : ''),
      h('dt', {}, 'Created'), h('dd', {}, formatTime(c.created_at)),
      h('dt', {}, 'Duration'), h('dd', {}, formatDuration(durationMs(c.duration))
        || (c.started_at && running ? `${formatDuration(Date.now() - ts(c.started_at))} so far` : '')),
      md.mode && md.mode !== 'MANUAL' ? [h('dt', {}, 'Mode'), h('dd', {}, md.mode,
        md.reference_execution ? [' of ', h('a', { href: `/console/projects/${enc(md.reference_execution.project)}/domains/${enc(md.reference_execution.domain)}/executions/${enc(md.reference_execution.name)}` }, md.reference_execution.name)] : '')] : null),
    s.error ? errorBox(s.error) : null);
  const err = c.error;
  replace(parts.error, err ? h('div', { class: 'exec-error', id: 'execution-error' },
    h('h2', {}, 'Error', err.code ? h('span', { class: 'muted' }, ` ${err.code}`) : ''),
    h('pre', { class: 'traceback' }, err.message || '')) : null,
  c.abort_metadata ? h('p', { class: 'muted' }, `Terminated: ${c.abort_metadata.cause || ''}`) : null);
  renderSignals(s);
  renderIo(s);
  const { nodes, edges } = buildGraph(s);
  s.labels = new Map(nodes.map((n) => [n.id, n.label]));
  replace(parts.graph, drawGraph(nodes, edges, {
    selected: s.selected,
    onSelect: (nid) => select(s, nid),
    onToggle: (nid) => toggle(s, nid),
  }));
  renderTimeline(s);
  renderPanel(s);
}

/** The signals still unanswered, each with its answer: Approve/Reject for an approval (a bool),
 *  a typed field for an input. Drawn again only when the set changes, so typing is not lost. */
function renderSignals(s) {
  const pending = s.signals.filter((x) => !x.value);
  const key = pending.map((x) => x.id.signal_id).join('\n');
  if (key === s.signalsKey) return;
  s.signalsKey = key;
  if (!pending.length) {
    replace(s.parts.signals);
    return;
  }
  replace(s.parts.signals, h('h2', {}, 'Waiting for'), pending.map((sig) => signalForm(s, sig)));
}

function signalForm(s, sig) {
  const sid = sig.id.signal_id;
  const t = sig.type || {};
  const problem = h('span', { class: 'field-error' });
  const send = async (literal) => {
    try {
      await api('signals', { method: 'POST', body: { id: { execution_id: s.id, signal_id: sid }, value: literal } });
      s.kick();
    } catch (err) {
      problem.textContent = err.message;
    }
  };
  const label = h('span', {}, h('strong', {}, sid), h('span', { class: 'muted' }, `: ${typeName(t)}`));
  if (t.simple === 'BOOLEAN') {
    return h('div', { class: 'signal', 'data-signal': sid }, label,
      h('button', { class: 'primary', id: `signal-${sid}-approve`, onclick: () => send({ scalar: { primitive: { boolean: true } } }) }, 'Approve'),
      h('button', { class: 'danger', id: `signal-${sid}-reject`, onclick: () => send({ scalar: { primitive: { boolean: false } } }) }, 'Reject'),
      problem);
  }
  const input = h('input', { id: `signal-${sid}-input`, 'aria-label': sid });
  return h('form', {
    class: 'signal', 'data-signal': sid,
    onsubmit: (ev) => {
      ev.preventDefault();
      problem.textContent = '';
      let literal;
      try {
        literal = toLiteral(t, input.value);
      } catch (err) {
        problem.textContent = err.message;
        return;
      }
      send(literal);
    },
  }, label, input, h('button', { class: 'primary', id: `signal-${sid}-send`, type: 'submit' }, 'Send'), problem);
}

function renderIo(s) {
  const d = s.data || {};
  const prim = template(s);
  const iface = prim && prim.template.interface;
  const outputs = d.full_outputs
    ? literalMap(d.full_outputs, iface && iface.outputs && iface.outputs.variables)
    : d.outputs && d.outputs.url
      ? h('p', { class: 'muted' }, `Too large to show here (${d.outputs.bytes} bytes): `, h('code', {}, d.outputs.url))
      : h('p', { class: 'muted' }, TERMINAL.has(phaseOf(s.exec.closure)) ? 'none' : 'not yet');
  replace(s.parts.io,
    h('div', { class: 'io-col', id: 'inputs' }, h('h2', {}, 'Inputs'),
      literalMap(d.full_inputs, iface && iface.inputs && iface.inputs.variables)),
    h('div', { class: 'io-col', id: 'outputs' }, h('h2', {}, 'Outputs'), outputs));
}

function ts(x) {
  return x ? new Date(x).getTime() : null;
}

function renderTimeline(s) {
  const rows = visibleNodes(s);
  const prim = template(s);
  const specNodes = new Map(((prim && prim.template.nodes) || []).map((n) => [n.id, n]));
  const now = Date.now();
  const start = ts(s.exec.closure.started_at) || ts(s.exec.closure.created_at) || now;
  let end = start + 1000;
  const spans = new Map();
  for (const n of rows) {
    const attempts = s.attempts.get(n.id.node_id) || [];
    const list = (attempts.length ? attempts.map((a) => a.closure) : [n.closure]).map((c) => {
      const b = ts(c.started_at);
      const d = durationMs(c.duration);
      const e = b == null ? null : d != null ? b + d : TERMINAL.has(phaseOf(c)) ? b : now;
      if (e != null) end = Math.max(end, e);
      return { b, e, phase: phaseOf(c) };
    });
    spans.set(n.id.node_id, list);
  }
  const total = end - start;
  const body = rows.map((n) => {
    const nid = n.id.node_id;
    const bars = spans.get(nid).filter((sp) => sp.b != null).map((sp, i) => h('span', {
      class: `bar phase-${sp.phase.toLowerCase()}`,
      title: `attempt ${i}: ${sp.phase}, ${formatDuration(sp.e - sp.b)}`,
      style: `left:${(100 * (sp.b - start)) / total}%;width:${Math.max(0.5, (100 * (sp.e - sp.b)) / total)}%`,
    }));
    return h('tr', { class: nid === s.selected ? 'selected' : '', 'data-node-id': nid, onclick: () => select(s, nid) },
      h('td', { class: 'node-name', style: `padding-left:${0.5 + n.depth * 1.2}rem` },
        n.metadata && n.metadata.is_parent_node
          ? h('button', { class: 'link', onclick: (ev) => { ev.stopPropagation(); toggle(s, nid); } }, s.expanded.has(nid) ? '▾ ' : '▸ ')
          : null,
        (s.labels && s.labels.get(nid)) || labelOf(specNodes.get(nid), nid), h('span', { class: 'muted' }, ` ${nid}`)),
      h('td', {}, badge(phaseOf(n.closure))),
      h('td', { class: 'num' }, formatDuration(durationMs(n.closure.duration))),
      h('td', { class: 'lane' }, bars));
  });
  replace(s.parts.timeline, rows.length
    ? h('table', { class: 'nodes' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Phase'), h('th', {}, 'Duration'),
        h('th', { class: 'lane' }, `0 – ${formatDuration(total)}`))),
      h('tbody', {}, body))
    : h('p', { class: 'muted' }, 'No node has started yet.'));
}

function renderPanel(s) {
  const { panel } = s.parts;
  if (!s.selected) {
    replace(panel, h('p', { class: 'muted' }, 'Select a node in the graph or the timeline to see its attempts and logs.'));
    return;
  }
  const n = findNode(s, s.selected);
  if (!n) {
    replace(panel, h('p', { class: 'muted' }, `Node ${s.selected} has not started yet.`));
    return;
  }
  const nid = n.id.node_id;
  const attempts = s.attempts.get(nid) || [];
  const data = s.nodeData.get(nid);
  const err = n.closure.error;
  const wfMeta = n.closure.workflow_node_metadata;
  const cache = n.closure.task_node_metadata && n.closure.task_node_metadata.cache_status;
  replace(panel,
    h('div', { class: 'title-row' }, h('h2', {}, nid), badge(phaseOf(n.closure)),
      h('span', { class: 'spacer' }), h('button', { class: 'link', onclick: () => select(s, null) }, 'close')),
    cache ? h('p', { class: 'muted' }, `cache: ${cache.replace('CACHE_', '').toLowerCase()}`) : null,
    wfMeta && wfMeta.execution_id ? h('p', {}, 'Child execution: ', h('a', {
      href: `/console/projects/${enc(wfMeta.execution_id.project)}/domains/${enc(wfMeta.execution_id.domain)}/executions/${enc(wfMeta.execution_id.name)}`,
    }, wfMeta.execution_id.name)) : null,
    err ? h('pre', { class: 'traceback' }, err.message || '') : null,
    attempts.length ? h('h3', {}, 'Attempts') : null,
    h('ul', { class: 'attempts' }, attempts.map((a) => {
      const num = a.id.retry_attempt || 0;
      const logs = a.closure.logs || [];
      return h('li', {},
        h('span', {}, `Attempt ${num} `), badge(phaseOf(a.closure)),
        h('span', { class: 'muted' }, ` ${formatDuration(durationMs(a.closure.duration))} `),
        logs.map((l) => h('button', {
          class: 'log-button', 'data-attempt': num,
          onclick: () => openLog(s, nid, num, l.uri),
        }, `View log`)));
    })),
    s.log && s.log.node === nid ? s.log.el : null,
    data ? [h('h3', {}, 'Inputs'), literalMap(data.data.full_inputs), h('h3', {}, 'Outputs'), literalMap(data.data.full_outputs)] : null);
}

function select(s, nid) {
  s.selected = nid;
  if (s.log && s.log.node !== nid) {
    s.log.stop();
    s.log = null;
  }
  s.kick();
}

function toggle(s, nid) {
  if (s.expanded.has(nid)) s.expanded.delete(nid);
  else s.expanded.add(nid);
  s.kick();
}

/** Follows a log: what was written since the last read (`?from=`), until the attempt ends. */
function openLog(s, nid, attempt, uri) {
  if (s.log) s.log.stop();
  // The link names the sandbox's address; the page may have reached it by another name.
  const path = new URL(uri, window.location.href).pathname;
  const pre = h('pre', { class: 'log', id: 'log', 'data-node-id': nid, 'data-attempt': attempt });
  const el = h('div', { class: 'log-box' }, h('h3', {}, `Log of attempt ${attempt}`), pre);
  const decoder = new TextDecoder();
  const log = { node: nid, el, offset: 0, timer: null, stopped: false };
  log.stop = () => { log.stopped = true; clearTimeout(log.timer); };
  const poll = async () => {
    if (log.stopped) return;
    try {
      const res = await fetch(`${path}?from=${log.offset}`, { cache: 'no-store', headers: authHeaders() });
      if (res.ok) {
        const bytes = new Uint8Array(await res.arrayBuffer());
        log.offset += bytes.length;
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(decoder.decode(bytes, { stream: true }));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      } else if (!log.offset) {
        pre.textContent = 'No log yet.';
      }
    } catch (err) {
      pre.append(`\n(${err.message})`);
    }
    const a = (s.attempts.get(nid) || []).find((x) => (x.id.retry_attempt || 0) === attempt);
    const done = a && TERMINAL.has(phaseOf(a.closure));
    if (!done || !log.finalRead) {
      if (done) log.finalRead = true;
      log.timer = setTimeout(poll, 1000);
    }
  };
  s.log = log;
  poll();
  s.rerender();
}

async function terminate(s) {
  try {
    await api(`executions/${idPath(s.id)}`, { method: 'DELETE', body: { cause: 'terminated in the console' } });
  } catch (err) {
    s.error = err;
  }
  s.kick();
}

async function relaunch(s) {
  try {
    const res = await api('executions/relaunch', { method: 'POST', body: { id: s.id } });
    const id = res.id;
    navigate(`/console/projects/${enc(id.project)}/domains/${enc(id.domain)}/executions/${enc(id.name)}`);
  } catch (err) {
    s.error = err;
    s.rerender();
  }
}
