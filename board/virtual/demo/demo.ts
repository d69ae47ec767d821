// `npm run demo` (as root): the virtual board tells the failover story; with `-- --json` the last line is one
// JSON object with the figures. `-- --keep` leaves the board running afterwards for poking around.
import { runScenario } from './scenario.js';
import { plugins } from './plugins.js';

const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');
if (process.getuid?.() !== 0) { console.error('duogate demo: run as root (it creates network namespaces)'); process.exit(2); }

const t0 = Date.now();
try {
  const r = await runScenario({ say: (l) => console.log(l), plugins, keep });
  console.log('\n== result ==');
  for (const [k, v] of Object.entries(r)) if (k !== 'states') console.log(`  ${k.padEnd(28)} ${JSON.stringify(v)}`);
  console.log(`  (demo took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (keep) console.log('board left running: ip netns list; `npm run demo` again rebuilds it');
  if (json) console.log(JSON.stringify(r));
} catch (e) {
  console.error(`duogate demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
}
