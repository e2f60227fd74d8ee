// The workflow graph: nodes and edges laid out by dagre (layered, left to right), drawn as SVG.
// Expanded nodes (subworkflows, branches, array nodes, dynamic nodes) are clusters around
// their children.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

/**
 * nodes: [{ id, label, kind, phase, parent?, expandable?, expanded? }]; edges: [{ from, to }].
 * onSelect(id) when a node is clicked; onToggle(id) when an expandable node's marker is.
 */
export function drawGraph(nodes, edges, { selected, onSelect, onToggle }) {
  const g = new dagre.graphlib.Graph({ compound: true });
  g.setGraph({ rankdir: 'LR', nodesep: 20, ranksep: 50, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(nodes.map((n) => n.id));
  const clusters = new Set(nodes.filter((n) => n.expanded).map((n) => n.id));
  for (const n of nodes) {
    const width = n.kind === 'start' || n.kind === 'end' ? 56 : Math.max(110, 8 * n.label.length + (n.expandable ? 56 : 32));
    g.setNode(n.id, clusters.has(n.id) ? { label: n.label, clusterLabelPos: 'top', paddingTop: 24 } : { width, height: 40 });
  }
  for (const n of nodes) if (n.parent && ids.has(n.parent)) g.setParent(n.id, n.parent);
  // dagre cannot route edges to a cluster: an edge into an expanded node goes to its children
  // that nothing inside precedes, an edge out of it from those that nothing inside follows.
  const kids = new Map();
  for (const n of nodes) if (n.parent && clusters.has(n.parent)) kids.set(n.parent, [...(kids.get(n.parent) || []), n.id]);
  const inner = (c) => edges.filter((e) => (kids.get(c) || []).includes(e.from) && (kids.get(c) || []).includes(e.to));
  const ends = (id, side) => {
    if (!clusters.has(id)) return [id];
    const members = kids.get(id) || [];
    if (!members.length) return [];
    const within = inner(id);
    const free = members.filter((m) => !within.some((e) => (side === 'in' ? e.to : e.from) === m));
    return free.flatMap((m) => ends(m, side));
  };
  for (const e of edges) {
    if (!ids.has(e.from) || !ids.has(e.to)) continue;
    for (const from of ends(e.from, 'out')) for (const to of ends(e.to, 'in')) g.setEdge(from, to);
  }
  dagre.layout(g);
  const { width, height } = g.graph();
  const root = svg('svg', {
    class: 'graph', viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    width: Math.ceil(width), height: Math.ceil(height), role: 'img', 'aria-label': 'workflow graph',
  });
  root.append(svg('defs', {}, svg('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  // Clusters first, so their children draw on top.
  for (const id of clusters) {
    const n = byId.get(id);
    const box = g.node(id);
    const group = svg('g', {
      class: `cluster phase-${(n.phase || 'undefined').toLowerCase()}`, 'data-node-id': id, 'data-phase': n.phase || '',
    });
    group.append(svg('rect', { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }));
    const title = svg('text', { x: box.x - box.width / 2 + 10, y: box.y - box.height / 2 + 16 });
    title.textContent = `▾ ${n.label}`;
    group.append(title);
    group.addEventListener('click', (ev) => { ev.stopPropagation(); onToggle(id); });
    root.append(group);
  }
  for (const e of g.edges()) {
    const pts = g.edge(e).points;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' ');
    root.append(svg('path', { d, class: 'edge', 'marker-end': 'url(#arrow)' }));
  }
  for (const n of nodes) {
    if (clusters.has(n.id)) continue;
    const box = g.node(n.id);
    const phase = (n.phase || 'undefined').toLowerCase();
    const group = svg('g', {
      class: `node kind-${n.kind} phase-${phase}${n.id === selected ? ' selected' : ''}`,
      'data-node-id': n.id, 'data-kind': n.kind, 'data-phase': n.phase || '', tabindex: 0,
    });
    const x = box.x - box.width / 2;
    const y = box.y - box.height / 2;
    const round = n.kind === 'start' || n.kind === 'end' ? 20 : 6;
    group.append(svg('rect', { x, y, width: box.width, height: box.height, rx: round }));
    const label = svg('text', { x: box.x, y: box.y + 4, 'text-anchor': 'middle' });
    label.textContent = n.label;
    group.append(label);
    if (n.expandable) {
      const toggle = svg('g', { class: 'toggle', 'data-toggle': n.id });
      toggle.append(svg('rect', { x: x + 2, y: y + 2, width: 18, height: box.height - 4, rx: 4 }));
      const mark = svg('text', { x: x + 11, y: box.y + 4, 'text-anchor': 'middle' });
      mark.textContent = '▸';
      toggle.append(mark);
      toggle.addEventListener('click', (ev) => { ev.stopPropagation(); onToggle(n.id); });
      group.append(toggle);
    }
    const title = svg('title');
    title.textContent = `${n.label} (${n.kind})${n.phase ? `: ${n.phase}` : ''}${n.expandable ? ' (▸ expands it)' : ''}`;
    group.append(title);
    if (n.kind !== 'start' && n.kind !== 'end') {
      group.addEventListener('click', (ev) => {
        ev.stopPropagation();
        onSelect(n.id);
      });
      group.addEventListener('dblclick', () => n.expandable && onToggle(n.id));
      group.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onSelect(n.id); });
    }
    root.append(group);
  }
  return root;
}
