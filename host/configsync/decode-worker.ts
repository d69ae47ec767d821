// Parsing large XML-RPC bodies and config YAML off the event loop. The event loop runs CARP: a 16 MiB body
// takes fast-xml-parser seconds (7.6 s measured on the virtual board) and a 5,000-rule config file takes the
// yaml package ~0.5 s, so a master that parsed them on the loop would miss adverts (and be taken over while
// alive past the master-down interval). Inputs above INLINE_MAX go to a worker thread;
// the decoded value comes back in pieces of at most PIECE_NODES values, one per turn of the event loop
// (the worker sends the next piece only when the main thread asks for it), because deserializing a large
// value in one message is itself a stall (~150 ms for 31k structs). The worker is started on first use and
// ends after IDLE_EXIT_MS without work, so an idle node keeps no extra thread or heap.
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import YAML from 'yaml';
import { YAML_OPTIONS } from '../config/load.js';
import { Fault, XmlRpcFault, decodeCall, type XmlRpcValue } from './xmlrpc.js';

/** Bodies up to this size are decoded inline (a few ms at the parser's rate). */
export const INLINE_MAX = 64 * 1024;
const PIECE_NODES = 2000;
const IDLE_EXIT_MS = 30_000;

/** A piece: the value at `path` (a container is sent empty, its members follow as later pieces). */
type Put = [path: (string | number)[], value: XmlRpcValue];
type Reply = {
  id: number; puts: Put[]; done: boolean; method?: string; fault?: [number, string]; buffers?: boolean;
  yamlError?: { message: string; linePos?: { line: number; col: number }[] };
};
type Job = { id: number; kind: 'xmlrpc' | 'yaml'; body: Uint8Array };

// ---------------------------------------------------------------- worker side

/** Number of values in v (itself included), capped at `cap` (only "is it small" matters). */
function nodes(v: XmlRpcValue, cap: number): number {
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Date) return 1;
  let n = 1;
  for (const x of Array.isArray(v) ? v : Object.values(v)) { n += nodes(x, cap - n); if (n >= cap) return n; }
  return n;
}

/** Splits v into puts, each at most PIECE_NODES values unless a single scalar is bigger. */
function* pieces(v: XmlRpcValue, path: (string | number)[]): Generator<Put> {
  if (nodes(v, PIECE_NODES + 1) <= PIECE_NODES || v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Date) { yield [path, v]; return; }
  if (Array.isArray(v)) {
    yield [path, []];
    for (let i = 0; i < v.length; i++) yield* pieces(v[i], [...path, i]);
  } else {
    yield [path, {}];
    for (const [k, x] of Object.entries(v)) yield* pieces(x, [...path, k]);
  }
}

function hasBuffers(v: XmlRpcValue): boolean {
  if (Buffer.isBuffer(v)) return true;
  if (v === null || typeof v !== 'object' || v instanceof Date) return false;
  return (Array.isArray(v) ? v : Object.values(v)).some(hasBuffers);
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  let pending: { id: number; it: Generator<Put> } | null = null;
  const sendPiece = () => {
    if (!pending) return;
    const puts: Put[] = [];
    let n = 0;
    for (;;) {
      const r = pending.it.next();
      if (r.done) { port.postMessage({ id: pending.id, puts, done: true } satisfies Reply); pending = null; return; }
      puts.push(r.value);
      n += nodes(r.value[1], PIECE_NODES);
      if (n >= PIECE_NODES) break;
    }
    port.postMessage({ id: pending.id, puts, done: false } satisfies Reply);
  };
  port.on('message', (m: Job | { id: number; next: true }) => {
    if ('next' in m) { sendPiece(); return; }
    const text = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('utf8');
    if (m.kind === 'yaml') {
      let doc: XmlRpcValue;
      try { doc = YAML.parse(text, YAML_OPTIONS) as XmlRpcValue; } catch (e) {
        const err = e as Error & { linePos?: { line: number; col: number }[] };
        port.postMessage({ id: m.id, puts: [], done: true, yamlError: { message: String(err.message), linePos: err.linePos } } satisfies Reply);
        return;
      }
      pending = { id: m.id, it: pieces(doc ?? null, []) };
      sendPiece();
      return;
    }
    let call: { method: string; params: XmlRpcValue[] };
    try { call = decodeCall(text); } catch (e) {
      const f = e instanceof XmlRpcFault ? e : new XmlRpcFault(Fault.PARSE_ERROR, String(e));
      port.postMessage({ id: m.id, puts: [], done: true, fault: [f.faultCode, f.faultString] } satisfies Reply);
      return;
    }
    pending = { id: m.id, it: pieces(call.params, []) };
    port.postMessage({ id: m.id, puts: [], done: false, method: call.method, buffers: hasBuffers(call.params) } satisfies Reply);
  });
}

// ---------------------------------------------------------------- main thread

/** Structured cloning turns Buffers into Uint8Arrays: give base64 values their type back. */
function rebuffer(v: XmlRpcValue | Uint8Array): XmlRpcValue {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) v[i] = rebuffer(v[i]); return v; }
  const o = v as Record<string, XmlRpcValue>;
  for (const k of Object.keys(o)) o[k] = rebuffer(o[k]);
  return o;
}

export class OffLoopDecoder {
  private worker: Worker | null = null;
  private idle: NodeJS.Timeout | null = null;
  private nextId = 1;
  /** One body at a time: calls are serialized by the server anyway, and one worker keeps memory bounded. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Decode a methodCall body; large ones off the event loop. Throws XmlRpcFault as decodeCall does. */
  decode(body: Buffer): Promise<{ method: string; params: XmlRpcValue[] }> {
    if (body.length <= INLINE_MAX) {
      try { return Promise.resolve(decodeCall(body.toString('utf8'))); } catch (e) { return Promise.reject(e); }
    }
    return this.enqueue(() => this.offLoop('xmlrpc', body)) as Promise<{ method: string; params: XmlRpcValue[] }>;
  }

  /** YAML.parse with the config options; large texts off the event loop. Throws the parser's error (message, linePos). */
  parseYaml(text: string): Promise<unknown> {
    if (text.length <= INLINE_MAX) {
      try { return Promise.resolve(YAML.parse(text, YAML_OPTIONS)); } catch (e) { return Promise.reject(e); }
    }
    return this.enqueue(() => this.offLoop('yaml', Buffer.from(text, 'utf8'))).then((r) => (r as { value: unknown }).value);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private start(): Worker {
    if (this.idle) { clearTimeout(this.idle); this.idle = null; }
    if (this.worker) return this.worker;
    // From the TypeScript sources (tests under tsx) the thread registers the tsx loader first: loader hooks
    // given with --import do not reach worker threads.
    const w = import.meta.url.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); });`, { eval: true })
      : new Worker(new URL('./decode-worker.js', import.meta.url));
    w.unref();
    w.on('exit', () => { if (this.worker === w) this.worker = null; });
    this.worker = w;
    return w;
  }

  private offLoop(kind: Job['kind'], body: Buffer): Promise<{ method: string; params: XmlRpcValue[] } | { value: unknown }> {
    const w = this.start();
    const id = this.nextId++;
    // A private copy to hand over without copying again (the socket's chunks may share pooled memory).
    const copy = new Uint8Array(body.length);
    copy.set(body);
    return new Promise((resolve, reject) => {
      const root: { v: XmlRpcValue } = { v: null };
      let method = '';
      let buffers = false;
      const done = (err?: Error) => {
        w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit);
        this.idle = setTimeout(() => { this.idle = null; const old = this.worker; this.worker = null; void old?.terminate(); }, IDLE_EXIT_MS);
        this.idle.unref();
        if (err) reject(err);
        else if (kind === 'yaml') resolve({ value: root.v });
        else resolve({ method, params: (buffers ? rebuffer(root.v) : root.v) as XmlRpcValue[] });
      };
      const onMessage = (m: Reply) => {
        if (m.id !== id) return;
        if (m.fault) { done(new XmlRpcFault(m.fault[0], m.fault[1])); return; }
        if (m.yamlError) { done(Object.assign(new Error(m.yamlError.message), { linePos: m.yamlError.linePos })); return; }
        if (m.method !== undefined) { method = m.method; buffers = !!m.buffers; }
        for (const [p, v] of m.puts) {
          if (p.length === 0) { root.v = v; continue; }
          let at = root.v as Record<string | number, XmlRpcValue>;
          for (let i = 0; i < p.length - 1; i++) at = at[p[i]] as Record<string | number, XmlRpcValue>;
          at[p[p.length - 1]] = v;
        }
        if (m.done) { done(); return; }
        // The next piece only after a turn of the event loop: timers and sockets go first.
        setImmediate(() => w.postMessage({ id, next: true }));
      };
      const onError = (e: Error) => done(new XmlRpcFault(Fault.INTERNAL, `decoding failed: ${e.message}`));
      const onExit = () => done(new XmlRpcFault(Fault.INTERNAL, 'the decoding thread ended'));
      w.on('message', onMessage); w.on('error', onError); w.on('exit', onExit);
      w.postMessage({ id, kind, body: copy } satisfies Job, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    if (this.idle) { clearTimeout(this.idle); this.idle = null; }
    await this.worker?.terminate();
    this.worker = null;
  }
}
