// Flyte values for people: literals as readable values, literal types as Python-like type names,
// and typed form input back into literals (protobuf JSON, as /api/v1 takes them).
import { h } from './dom.js';

const SIMPLE = {
  NONE: 'None', INTEGER: 'int', FLOAT: 'float', STRING: 'str', BOOLEAN: 'bool',
  DATETIME: 'datetime', DURATION: 'timedelta', BINARY: 'bytes', ERROR: 'error', STRUCT: 'dict',
};

/** A literal type as its Python annotation. */
export function typeName(t) {
  if (!t) return '?';
  if ('simple' in t) {
    if (t.simple === 'STRUCT' && t.metadata && t.metadata.title) return t.metadata.title;
    return SIMPLE[t.simple] || t.simple;
  }
  if (t.collection_type) return `List[${typeName(t.collection_type)}]`;
  if (t.map_value_type) return `Dict[str, ${typeName(t.map_value_type)}]`;
  if (t.blob) return t.blob.dimensionality === 'MULTIPART' ? 'FlyteDirectory' : 'FlyteFile';
  if (t.structured_dataset_type) return 'StructuredDataset';
  if (t.enum_type) return `Enum(${(t.enum_type.values || []).join(', ')})`;
  if (t.union_type) {
    const variants = t.union_type.variants || [];
    const rest = variants.filter((v) => v.simple !== 'NONE');
    if (rest.length === 1 && rest.length < variants.length) return `Optional[${typeName(rest[0])}]`;
    return `Union[${variants.map(typeName).join(', ')}]`;
  }
  if (t.schema) return 'FlyteSchema';
  return 'object';
}

/** A literal as a plain JavaScript value (files as their URI, msgpack decoded). */
export function literalValue(l) {
  if (!l) return null;
  if (l.scalar) return scalarValue(l.scalar);
  if (l.collection) return (l.collection.literals || []).map(literalValue);
  if (l.map) {
    const out = {};
    for (const [k, v] of Object.entries(l.map.literals || {})) out[k] = literalValue(v);
    return out;
  }
  if (l.offloaded_metadata) return `(offloaded: ${l.offloaded_metadata.uri})`;
  return null;
}

function scalarValue(s) {
  if (s.primitive) {
    const p = s.primitive;
    if ('integer' in p) return Number(p.integer);
    if ('float_value' in p) return p.float_value;
    if ('string_value' in p) return p.string_value;
    if ('boolean' in p) return p.boolean;
    if ('datetime' in p) return p.datetime;
    if ('duration' in p) return p.duration;
    return null;
  }
  if ('none_type' in s) return null;
  if (s.blob) return s.blob.uri;
  if (s.structured_dataset) return s.structured_dataset.uri;
  if (s.binary) {
    if (s.binary.tag === 'msgpack') {
      try {
        return msgpack(base64Bytes(s.binary.value || ''));
      } catch {
        return '(msgpack that cannot be read)';
      }
    }
    return `(${base64Bytes(s.binary.value || '').length} bytes)`;
  }
  if ('generic' in s) return s.generic;
  if (s.union) return literalValue(s.union.value);
  if (s.error) return `error: ${s.error.message}`;
  if (s.schema) return s.schema.uri;
  return null;
}

function base64Bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decodes one MessagePack value (how flytekit stores dataclasses and Pydantic models). */
export function msgpack(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const text = (n) => {
    const s = new TextDecoder().decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const read = () => {
    const b = bytes[at++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return array(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return text(b & 0x1f);
    const u = (n) => { const v = n === 1 ? view.getUint8(at) : n === 2 ? view.getUint16(at) : n === 4 ? view.getUint32(at) : Number(view.getBigUint64(at)); at += n; return v; };
    const i = (n) => { const v = n === 1 ? view.getInt8(at) : n === 2 ? view.getInt16(at) : n === 4 ? view.getInt32(at) : Number(view.getBigInt64(at)); at += n; return v; };
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return `(${u(1)} bytes)`;
      case 0xc5: return `(${u(2)} bytes)`;
      case 0xc6: return `(${u(4)} bytes)`;
      case 0xca: { const v = view.getFloat32(at); at += 4; return v; }
      case 0xcb: { const v = view.getFloat64(at); at += 8; return v; }
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: return u(8);
      case 0xd0: return i(1);
      case 0xd1: return i(2);
      case 0xd2: return i(4);
      case 0xd3: return i(8);
      case 0xd9: return text(u(1));
      case 0xda: return text(u(2));
      case 0xdb: return text(u(4));
      case 0xdc: return array(u(2));
      case 0xdd: return array(u(4));
      case 0xde: return map(u(2));
      case 0xdf: return map(u(4));
      default: throw new Error(`msgpack type 0x${b.toString(16)}`);
    }
  };
  const array = (n) => Array.from({ length: n }, read);
  const map = (n) => {
    const out = {};
    for (let k = 0; k < n; k += 1) out[String(read())] = read();
    return out;
  };
  return read();
}

/** A value shown as text: strings as they are, the rest as indented JSON. */
export function show(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

/** A literal map (inputs or outputs) as a list of names and values. */
export function literalMap(map, types) {
  const entries = Object.entries((map && map.literals) || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'none');
  return h('dl', { class: 'values' }, entries.map(([k, v]) => [
    h('dt', {}, k, types && types[k] ? h('span', { class: 'type' }, `: ${typeName(types[k].type)}`) : null),
    h('dd', {}, h('pre', { class: 'value' }, show(literalValue(v)))),
  ]));
}

// --- the launch form's side: text typed by a person into a literal ---

const primitive = (p) => ({ scalar: { primitive: p } });

/** The text a form field starts with for a default literal. */
export function defaultText(l) {
  if (!l) return '';
  const v = literalValue(l);
  if (v == null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Whether a field of this type is a single-line input (the rest take JSON). */
export function isSimple(t) {
  if (!t) return false;
  if (t.union_type) {
    // Optional[X] is X's field, left empty for None.
    const rest = (t.union_type.variants || []).filter((v) => v.simple !== 'NONE');
    return rest.length === 1 && isSimple(rest[0]);
  }
  if ('simple' in t) return ['INTEGER', 'FLOAT', 'STRING', 'BOOLEAN', 'DATETIME', 'DURATION'].includes(t.simple);
  return Boolean(t.enum_type || t.blob || t.structured_dataset_type);
}

/** The literal for `text` typed into a field of type `t`; throws a message naming the problem. */
export function toLiteral(t, text) {
  if (t.union_type) {
    const variants = t.union_type.variants || [];
    if (text.trim() === '' && variants.some((v) => v.simple === 'NONE')) return { scalar: { none_type: {} } };
    const errors = [];
    for (const v of variants.filter((x) => x.simple !== 'NONE')) {
      try {
        return toLiteral(v, text);
      } catch (e) {
        errors.push(e.message);
      }
    }
    throw new Error(errors[0] || 'no type of the union fits');
  }
  if (t.enum_type) {
    const values = t.enum_type.values || [];
    if (!values.includes(text)) throw new Error(`must be one of ${values.join(', ')}`);
    return primitive({ string_value: text });
  }
  if (t.blob) return { scalar: { blob: { metadata: { type: t.blob }, uri: need(text) } } };
  if (t.structured_dataset_type) {
    return { scalar: { structured_dataset: { uri: need(text), metadata: { structured_dataset_type: t.structured_dataset_type } } } };
  }
  if ('simple' in t) return simpleLiteral(t, text);
  return fromJson(t, parseJson(text));
}

function need(text) {
  if (!text.trim()) throw new Error('a value is required');
  return text.trim();
}

function simpleLiteral(t, text) {
  switch (t.simple) {
    case 'STRING': return primitive({ string_value: text });
    case 'INTEGER': {
      if (!/^[-+]?\d+$/.test(text.trim())) throw new Error('must be a whole number');
      return primitive({ integer: text.trim().replace(/^\+/, '') });
    }
    case 'FLOAT': {
      const n = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error('must be a number');
      return primitive({ float_value: n });
    }
    case 'BOOLEAN': {
      const v = text.trim().toLowerCase();
      if (!['true', 'false'].includes(v)) throw new Error('must be true or false');
      return primitive({ boolean: v === 'true' });
    }
    case 'DATETIME': {
      const d = new Date(need(text));
      if (Number.isNaN(d.getTime())) throw new Error('must be a date and time, such as 2026-12-02T10:00:00Z');
      return primitive({ datetime: d.toISOString() });
    }
    case 'DURATION': {
      const s = Number(need(text).replace(/s$/, ''));
      if (!Number.isFinite(s)) throw new Error('must be seconds, such as 90 or 1.5s');
      return primitive({ duration: `${s}s` });
    }
    case 'NONE': return { scalar: { none_type: {} } };
    case 'STRUCT': return { scalar: { generic: parseJson(text) } };
    default: throw new Error(`values of type ${typeName(t)} cannot be typed here; use \`union run --remote\``);
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('must be JSON');
  }
}

function fromJson(t, v) {
  if (t.collection_type) {
    if (!Array.isArray(v)) throw new Error('must be a JSON list');
    return { collection: { literals: v.map((x) => fromJson(t.collection_type, x)) } };
  }
  if (t.map_value_type) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be a JSON object');
    const literals = {};
    for (const [k, x] of Object.entries(v)) literals[k] = fromJson(t.map_value_type, x);
    return { map: { literals } };
  }
  if ('simple' in t && t.simple === 'STRUCT') return { scalar: { generic: v } };
  return toLiteral(t, typeof v === 'string' ? v : JSON.stringify(v));
}
