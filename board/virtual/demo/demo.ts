// `npm run demo` (as root): the virtual board tells the failover story; with `-- --json` the last line is one
// JSON object with the figures. `-- --keep` returns to the shell with the board and both daemons running, for
// poking around; `-- --down` tears that board down.
import { runScenario } from './scenario.js';
import { plugins } from './plugins.js';
import { VirtualBoard } from '../board.js';

const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');
// --prefix=NAME runs a board of another name (tests); --no-plugins tells the CARP story alone.
const prefix = process.argv.find((a) => a.startsWith('--prefix='))?.slice(9) || 'dg';
const noPlugins = process.argv.includes('--no-plugins');
// --mac=virtual: every VIP in virtual-MAC mode, told with a LAN client that ignores gratuitous ARP.
const macArg = process.argv.find((a) => a.startsWith('--mac='))?.slice(6) || 'real';
if (macArg !== 'real' && macArg !== 'virtual') { console.error(`duogate demo: --mac=${macArg}: use --mac=real or --mac=virtual`); process.exit(2); }
// --wan=dhcp: a single-address ISP; the WAN VIP's address is leased by the MASTER (docs/wan.md).
const wanArg = process.argv.find((a) => a.startsWith('--wan='))?.slice(6) || 'static';
if (wanArg !== 'static' && wanArg !== 'dhcp') { console.error(`duogate demo: --wan=${wanArg}: use --wan=static or --wan=dhcp`); process.exit(2); }
if (process.getuid?.() !== 0) { console.error('duogate demo: run as root (it creates network namespaces)'); process.exit(2); }
if (process.argv.includes('--down')) {
  await new VirtualBoard({ prefix }).down();
  console.log(`duogate demo: board ${prefix} torn down (processes killed, namespaces deleted)`);
  process.exit(0);
}
// Ctrl-C while the story runs: take the board down (with --keep the children live in their own sessions).
process.once('SIGINT', () => { console.error('\nduogate demo: interrupted; tearing the board down'); void new VirtualBoard({ prefix }).down().finally(() => process.exit(130)); });

const t0 = Date.now();
try {
  const r = await runScenario({ say: (l) => console.log(l), plugins: noPlugins ? [] : plugins, keep, prefix, mac: macArg, wan: wanArg });
  console.log('\n== result ==');
  for (const [k, v] of Object.entries(r)) if (k !== 'states') console.log(`  ${k.padEnd(28)} ${JSON.stringify(v)}`);
  console.log(`  (demo took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (json) console.log(JSON.stringify(r));
  if (keep) {
    console.log([
      '',
      'board left running, both daemons up (primary MASTER). Look around:',
      '  ip netns list',
      `  ip netns exec ${prefix}-primary node dist/host/cli.js status --socket /run/duogate-vboard/${prefix}/primary.sock`,
      `  ip netns exec ${prefix}-client ping 203.0.113.10`,
      `  logs: /run/duogate-vboard/${prefix}/{primary,secondary}.log`,
      `tear it down: npm run demo -- --down${prefix === 'dg' ? '' : ` --prefix=${prefix}`}   (or run the demo again: it rebuilds the board)`,
    ].join('\n'));
    // Every child runs in its own session and is released: nothing here may keep the shell waiting.
    process.exit(0);
  }
} catch (e) {
  console.error(`duogate demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
}
