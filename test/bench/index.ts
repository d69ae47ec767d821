// `npm run bench`: every benchmark prints its figures; with --json the last line is one JSON object with a
// key per area (carp, statesync, configsync, ...).
import { benches } from './registry.js';

const json = process.argv.includes('--json');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const out: Record<string, unknown> = {};
for (const [name, run] of Object.entries(benches)) {
  if (only && only !== name) continue;
  process.stdout.write(`\n== ${name} ==\n`);
  out[name] = await run((line) => process.stdout.write(line + '\n'));
}
if (json) process.stdout.write(JSON.stringify(out) + '\n');
