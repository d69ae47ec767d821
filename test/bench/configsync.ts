// Config sync latency on the virtual board with real daemons: a config with 1,000 firewall rules and 100
// aliases, one rule changed per round with `duogate config apply` on the primary; time until the secondary's
// daemon reports the revision applied, and until the changed rule is in its nftables ruleset. Plus the
// codec's share: body size and encode/decode time of that config. Needs root (network namespaces).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { poll, sleep } from '../../board/virtual/firmware.js';
import { parseConfigText } from '../../host/config/load.js';
import { outgoingSections } from '../../host/configsync/sections.js';
import { decodeCall, encodeCall, type XmlRpcValue } from '../../host/configsync/xmlrpc.js';
import { SyncPair, nodeYaml } from '../e2e/configsync-helpers.js';
import type { Bench } from './registry.js';

const RULES = 1000;
const ALIASES = 100;
const ROUNDS = 7;

function firewall(changed: number, port: number): string {
  const aliases = Object.fromEntries(Array.from({ length: ALIASES }, (_, a) => [`hosts_${a}`, {
    type: 'host', entries: Array.from({ length: 10 }, (_, k) => `198.51.${a}.${k + 1}`), description: `bench alias ${a}`,
  }]));
  const rule = (i: number) => ({
    action: 'pass', protocol: 'tcp', source: 'lan net', destination: `hosts_${i % ALIASES}`,
    destination_port: i === changed ? port : 20000 + i, description: `bench rule ${i}`,
  });
  const lan = Array.from({ length: RULES / 2 }, (_, i) => rule(i));
  const wan = Array.from({ length: RULES / 2 }, (_, i) => rule(RULES / 2 + i));
  return `firewall: ${JSON.stringify({ aliases, rules: { lan, wan, sync: [] } })}`;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

export const configsyncBench: Bench = async (say) => {
  if (process.getuid?.() !== 0) { say('skipped: needs root (virtual board)'); return { skipped: 'needs root' }; }
  const sync = '  sections: [vips, firewall]\n  retry_min_ms: 100\n  retry_max_ms: 1000';
  const board = new VirtualBoard({ prefix: 'dgb-cs' });
  const pair = new SyncPair(board);
  try {
    await board.up();
    rmSync(pair.dir, { recursive: true, force: true });
    mkdirSync(pair.dir, { recursive: true });
    const primaryYaml = (round: number) => nodeYaml('primary', pair.dir, { sync, extra: firewall(round % RULES, 30000 + round) });
    pair.write('primary', primaryYaml(0));
    pair.write('secondary', nodeYaml('secondary', pair.dir, { sync, extra: 'firewall: {}' }));

    // The codec's share, in this process.
    const cfg = parseConfigText(primaryYaml(0));
    const sections = outgoingSections(cfg, ['vips', 'firewall']) as XmlRpcValue;
    let t0 = performance.now();
    const body = encodeCall('duogate.restore_config_section', [sections, { schema: 1 }]);
    const encodeMs = performance.now() - t0;
    t0 = performance.now();
    decodeCall(body);
    const decodeMs = performance.now() - t0;
    say(`config: ${RULES} rules, ${ALIASES} aliases; XML-RPC body ${(body.length / 1024).toFixed(0)} KiB, encode ${encodeMs.toFixed(1)} ms, decode ${decodeMs.toFixed(1)} ms`);

    await Promise.all([pair.start('primary', 20_000), pair.start('secondary', 20_000)]);
    const inSync = () => poll(async () => (await pair.tryStatus('primary'))?.configsync?.peer?.state === 'in_sync', 20_000, 20);
    if (!await inSync()) throw new Error('the pair did not get in sync at start');

    const revMs: number[] = []; const nftMs: number[] = []; const cliMs: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const f = path.join(pair.dir, `bench-${round}.yaml`);
      execFileSync('tee', [f], { input: primaryYaml(round), stdio: ['pipe', 'ignore', 'inherit'] });
      const port = String(30000 + round);
      const start = performance.now();
      const res = await board.execAsync('primary', process.execPath, [path.resolve('dist/host/cli.js'), 'config', 'apply', f, '--json', '--config', pair.configFile('primary'), '--socket', pair.socket('primary')], { timeoutMs: 30_000 });
      cliMs.push(performance.now() - start);
      const seq = JSON.parse(res.stdout).seq;
      let rev: number | null = null; let nft: number | null = null;
      for (let i = 0; i < 2000 && (rev === null || nft === null) && performance.now() - start < 20_000; i++) {
        if (rev === null && (await pair.tryStatus('secondary'))?.configsync?.received?.primary_seq >= seq) rev = performance.now() - start;
        // The firewall reloads after the daemon applied the revision, so the ruleset is read only from then on.
        if (nft === null && rev !== null && (await board.execAsync('secondary', 'nft', ['list', 'ruleset'], { timeoutMs: 5000 })).stdout.includes(`dport ${port}`)) nft = performance.now() - start;
        await sleep(5);
      }
      if (rev === null) throw new Error(`round ${round}: the secondary did not apply revision ${seq} within 20 s`);
      revMs.push(rev);
      if (nft !== null) nftMs.push(nft);
      say(`round ${round}: apply CLI ${cliMs.at(-1)!.toFixed(0)} ms, revision applied on the secondary ${rev.toFixed(0)} ms, rule in its nftables ${nft === null ? 'not seen' : `${nft.toFixed(0)} ms`}`);
    }
    const out = {
      rules: RULES, aliases: ALIASES, rounds: ROUNDS, body_kib: Math.round(body.length / 1024),
      encode_ms: +encodeMs.toFixed(1), decode_ms: +decodeMs.toFixed(1),
      apply_cli_ms_median: Math.round(median(cliMs)),
      sync_revision_ms_median: Math.round(median(revMs)), sync_revision_ms_max: Math.round(Math.max(...revMs)),
      sync_nft_ms_median: nftMs.length ? Math.round(median(nftMs)) : null, sync_nft_ms_max: nftMs.length ? Math.round(Math.max(...nftMs)) : null,
    };
    say(`median: revision applied on the secondary ${out.sync_revision_ms_median} ms, rule live in nftables ${out.sync_nft_ms_median ?? 'n/a'} ms (from the start of \`duogate config apply\`)`);
    return out;
  } finally {
    await board.down();
  }
};
