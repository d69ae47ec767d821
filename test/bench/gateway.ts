// Gateway bench: how long an atomic ruleset replace takes as the rule count grows (compile + `nft -f`), in a
// scratch namespace of its own. Figures go to docs/gateway.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfigText } from '../../host/config/load.js';
import { compile } from '../../host/gateway/firewall/compile.js';
import type { Bench } from './registry.js';

const NS = 'dgt-bench-gw';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export const gatewayBench: Bench = async (say) => {
  const base = YAML.parse(readFileSync(path.join(ROOT.replace(/\/dist$/, ''), 'board/virtual/primary.yaml'), 'utf8'));
  const dir = mkdtempSync(path.join(tmpdir(), 'dg-bench-gw-'));
  spawnSync('ip', ['netns', 'del', NS]);
  execFileSync('ip', ['netns', 'add', NS]);
  const out: Record<string, unknown> = {};
  try {
    for (const n of [10, 100, 1000, 5000]) {
      const doc = structuredClone(base);
      doc.firewall.rules.lan = Array.from({ length: n }, (_, i) => ({
        action: i % 2 ? 'pass' : 'block', protocol: 'tcp', source: 'lan net',
        destination: `10.${(i >> 8) & 255}.${i & 255}.0/24`, destination_port: 1000 + (i % 60000), description: `rule ${i}`,
      }));
      const c = parseConfigText(YAML.stringify(doc), 'bench.yaml');
      compile(c); // warm-up (JIT), then timed
      const t0 = performance.now();
      const { text } = compile(c);
      const compileMs = performance.now() - t0;
      const file = path.join(dir, `r${n}.nft`);
      writeFileSync(file, text);
      const runs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const t1 = performance.now();
        execFileSync('ip', ['netns', 'exec', NS, 'nft', '-f', file]);
        runs.push(performance.now() - t1);
      }
      runs.sort((a, b) => a - b);
      const r = { rules: n, compile_ms: +compileMs.toFixed(1), apply_ms_median: +runs[1]!.toFixed(1), apply_ms_min: +runs[0]!.toFixed(1) };
      say(`${n} rules: compile ${r.compile_ms} ms, nft -f (replace, median of 3) ${r.apply_ms_median} ms`);
      out[`apply_${n}_rules_ms`] = r.apply_ms_median;
    }
  } finally {
    spawnSync('ip', ['netns', 'del', NS]);
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
};
