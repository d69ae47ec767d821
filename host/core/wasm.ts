// Finding, compiling and instantiating the core module. Raw WebAssembly only: the ABI is numbers (pointer +
// length into fixed regions, codes and layouts as exported globals), so no generated bindings or loader are
// needed (README "Why no @assemblyscript/loader").
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

export class CoreError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = 'CoreError'; }
}

/** Finds dist/wasm/<name> from host/core (tsx) and from dist/host/core (compiled). */
export function wasmPath(name = 'core.wasm'): string {
  for (const rel of ['../../dist/wasm', '../../wasm', '../../../dist/wasm']) {
    const p = path.resolve(here, rel, name);
    try { readFileSync(p, { flag: 'r' }).length; return p; } catch { /* try the next */ }
  }
  throw new CoreError('DG_ERR_CORE_MISSING', `core module ${name} not found next to ${here}: run "npm run build:core"`);
}

// Compiled once per file: instances are cheap, compiling is not.
const modules = new Map<string, WebAssembly.Module>();

/**
 * A fresh instance of the core (its own linear memory). `what` names the user in a trap's message. A trap
 * inside the core is a bug: it surfaces as DG_ERR_CORE_TRAP and the host drops the instance (style.md 7).
 */
export function instantiateCore(opts: { debug?: boolean; what?: string } = {}): WebAssembly.Exports {
  const file = wasmPath(opts.debug ? 'core.debug.wasm' : 'core.wasm');
  let mod = modules.get(file);
  if (!mod) { mod = new WebAssembly.Module(readFileSync(file)); modules.set(file, mod); }
  const what = opts.what ?? 'core';
  const inst = new WebAssembly.Instance(mod, {
    env: {
      abort: (_m: number, _f: number, line: number, col: number) => {
        throw new CoreError('DG_ERR_CORE_TRAP', `${what} aborted at ${line}:${col}`);
      },
    },
  });
  return inst.exports;
}
