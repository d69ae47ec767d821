// XML-RPC (http://xmlrpc.com/spec.md) methodCall / methodResponse / fault, on fast-xml-parser. Interoperates
// with Python's xmlrpc.client (allow_none=True for <nil/>) and PHP's XML_RPC2 as pfSense uses it. Decoding
// never trusts its input: anything but well-formed XML-RPC becomes an XmlRpcFault with a code from the
// "specification for fault code interoperability" (-32700 parse error, -32600 invalid request, ...).
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export type XmlRpcValue = string | number | boolean | null | XmlRpcValue[] | { [k: string]: XmlRpcValue } | Buffer | Date;

/** Fault codes. The negative ones are the interoperability spec's; the positive ones are duogate's. */
export const Fault = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  AUTH_FAILED: 1,
  AUTH_RATE_LIMITED: 2,
  VERSION_MISMATCH: 10,
  INVALID_CONFIG: 11,
  APPLY_FAILED: 12,
  NOT_SECONDARY: 13,
  BODY_TOO_LARGE: 14,
} as const;

export class XmlRpcFault extends Error {
  constructor(readonly faultCode: number, readonly faultString: string) {
    super(`XML-RPC fault ${faultCode}: ${faultString}`);
    this.name = 'XmlRpcFault';
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function encodeValue(v: XmlRpcValue | undefined): string {
  if (v === null || v === undefined) return '<value><nil/></value>';
  if (typeof v === 'string') return `<value><string>${esc(v)}</string></value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`XML-RPC cannot carry ${v}`);
    return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? `<value><int>${v}</int></value>` : `<value><double>${v}</double></value>`;
  }
  if (Buffer.isBuffer(v)) return `<value><base64>${v.toString('base64')}</base64></value>`;
  if (v instanceof Date) return `<value><dateTime.iso8601>${v.toISOString().replace(/\.\d{3}Z$/, '').replace(/-/g, '')}</dateTime.iso8601></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeValue).join('')}</data></array></value>`;
  const members = Object.entries(v).filter(([, x]) => x !== undefined)
    .map(([k, x]) => `<member><name>${esc(k)}</name>${encodeValue(x)}</member>`);
  return `<value><struct>${members.join('')}</struct></value>`;
}

const HEAD = '<?xml version="1.0"?>\n';
export function encodeCall(method: string, params: XmlRpcValue[]): string {
  return `${HEAD}<methodCall><methodName>${esc(method)}</methodName><params>${params.map((p) => `<param>${encodeValue(p)}</param>`).join('')}</params></methodCall>\n`;
}
export function encodeResponse(v: XmlRpcValue): string {
  return `${HEAD}<methodResponse><params><param>${encodeValue(v)}</param></params></methodResponse>\n`;
}
export function encodeFault(code: number, message: string): string {
  return `${HEAD}<methodResponse><fault>${encodeValue({ faultCode: code, faultString: message })}</fault></methodResponse>\n`;
}

// ---- decoding ----

type Node = Record<string, unknown>;
const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: true });
const bad = (why: string) => new XmlRpcFault(Fault.PARSE_ERROR, `malformed XML-RPC: ${why}`);
const invalid = (why: string) => new XmlRpcFault(Fault.INVALID_REQUEST, `invalid XML-RPC: ${why}`);

function tagOf(n: Node): string { return Object.keys(n).find((k) => k !== ':@') ?? ''; }
/** Child elements, ignoring whitespace between them; any other text where elements belong is an error. */
function elements(children: unknown, where: string): Node[] {
  const out: Node[] = [];
  for (const c of (children as Node[]) ?? []) {
    const tag = tagOf(c);
    if (tag === '#text') { if (String(c['#text']).trim() !== '') throw invalid(`unexpected text in <${where}>`); continue; }
    if (tag === '?xml' || tag === '#comment') continue;
    out.push(c);
  }
  return out;
}
function text(children: unknown): string {
  return ((children as Node[]) ?? []).map((c) => {
    const tag = tagOf(c);
    if (tag !== '#text') throw invalid(`unexpected element <${tag}> inside a scalar`);
    return String(c['#text']);
  }).join('');
}
function only(children: unknown, tag: string, where: string): Node {
  const els = elements(children, where);
  if (els.length !== 1 || tagOf(els[0]) !== tag) throw invalid(`<${where}> must hold exactly one <${tag}>`);
  return els[0];
}

// Config sections nest a few levels; fast-xml-parser itself stops at 100 nested tags (3 per level).
const MAX_DEPTH = 24;
export function decodeValue(valueNode: Node, depth = 0): XmlRpcValue {
  if (depth > MAX_DEPTH) throw invalid(`values nested deeper than ${MAX_DEPTH}`);
  const kids = (valueNode.value as Node[]) ?? [];
  if (kids.every((k) => tagOf(k) === '#text')) return text(kids); // <value>bare text</value> is a string
  const els = elements(kids, 'value');
  if (els.length !== 1) throw invalid('<value> must hold one type element');
  const el = els[0];
  const tag = tagOf(el);
  const inner = el[tag];
  switch (tag) {
    case 'string': return text(inner);
    case 'int': case 'i4': case 'i8': {
      const s = text(inner).trim();
      if (!/^[+-]?\d{1,19}$/.test(s)) throw invalid(`<${tag}>${s}</${tag}> is not an integer`);
      return Number(s);
    }
    case 'double': {
      const s = text(inner).trim();
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) throw invalid(`<double>${s}</double> is not a number`);
      return n;
    }
    case 'boolean': {
      const s = text(inner).trim();
      if (s !== '0' && s !== '1') throw invalid(`<boolean>${s}</boolean> must be 0 or 1`);
      return s === '1';
    }
    case 'nil': return null;
    case 'base64': return Buffer.from(text(inner).replace(/\s+/g, ''), 'base64');
    case 'dateTime.iso8601': {
      const s = text(inner).trim();
      const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(s);
      if (!m) throw invalid(`<dateTime.iso8601>${s}</dateTime.iso8601> is not a date`);
      return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
    }
    case 'array': {
      const data = only(inner, 'data', 'array');
      return elements(data.data, 'data').map((v) => {
        if (tagOf(v) !== 'value') throw invalid('<data> may hold only <value> elements');
        return decodeValue(v, depth + 1);
      });
    }
    case 'struct': {
      const out: Record<string, XmlRpcValue> = Object.create(null);
      for (const m of elements(inner, 'struct')) {
        if (tagOf(m) !== 'member') throw invalid('<struct> may hold only <member> elements');
        const parts = elements(m.member, 'member');
        const name = parts.find((p) => tagOf(p) === 'name');
        const value = parts.find((p) => tagOf(p) === 'value');
        if (!name || !value || parts.length !== 2) throw invalid('<member> needs one <name> and one <value>');
        const key = text(name.name);
        if (key === '__proto__') throw invalid('member name __proto__ is not allowed');
        out[key] = decodeValue(value, depth + 1);
      }
      return { ...out };
    }
    default: throw invalid(`unknown value type <${tag}>`);
  }
}

function parseDoc(xml: string, root: string): Node {
  // No DTDs: XML-RPC never needs one, and entity declarations are the classic expansion bomb.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw bad('DOCTYPE/ENTITY declarations are not accepted');
  const v = XMLValidator.validate(xml);
  if (v !== true) throw bad(`${v.err.msg} (line ${v.err.line}, column ${v.err.col})`);
  let doc: Node[];
  try { doc = parser.parse(xml) as Node[]; } catch (e) { throw bad((e as Error).message); }
  const top = elements(doc, 'document');
  if (top.length !== 1 || tagOf(top[0]) !== root) throw invalid(`the document element must be <${root}>`);
  return top[0];
}

export function decodeCall(xml: string): { method: string; params: XmlRpcValue[] } {
  const call = parseDoc(xml, 'methodCall');
  const parts = elements(call.methodCall, 'methodCall');
  const nameEl = parts.find((p) => tagOf(p) === 'methodName');
  if (!nameEl) throw invalid('<methodCall> has no <methodName>');
  const method = text(nameEl.methodName).trim();
  if (!/^[A-Za-z0-9_.:/]{1,128}$/.test(method)) throw invalid(`method name "${method.slice(0, 40)}" has characters outside A-Z a-z 0-9 _ . : /`);
  const paramsEl = parts.find((p) => tagOf(p) === 'params');
  const params = paramsEl ? elements(paramsEl.params, 'params').map((p) => {
    if (tagOf(p) !== 'param') throw invalid('<params> may hold only <param> elements');
    return decodeValue(only(p.param, 'value', 'param'));
  }) : [];
  return { method, params };
}

/** The value of a methodResponse; a fault response throws XmlRpcFault. */
export function decodeResponse(xml: string): XmlRpcValue {
  const resp = parseDoc(xml, 'methodResponse');
  const el = only(resp.methodResponse, tagOf(elements(resp.methodResponse, 'methodResponse')[0] ?? {}) || 'params', 'methodResponse');
  if (tagOf(el) === 'fault') {
    const f = decodeValue(only(el.fault, 'value', 'fault')) as Record<string, XmlRpcValue>;
    if (typeof f?.faultCode !== 'number' || typeof f?.faultString !== 'string') throw invalid('a <fault> needs faultCode and faultString');
    throw new XmlRpcFault(f.faultCode, f.faultString);
  }
  if (tagOf(el) !== 'params') throw invalid('<methodResponse> must hold <params> or <fault>');
  return decodeValue(only(only(el.params, 'param', 'params').param, 'value', 'param'));
}
