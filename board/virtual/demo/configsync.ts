// Config sync in the demo: a firewall rule added on the primary (`config apply`) and the time until it is
// live on the secondary (`config_sync_ms`, target <= 1000 ms). "Live" is the rule in the secondary's nftables
// ruleset when its firewall reloads on config changes; until then, the secondary's daemon reporting the new
// revision applied (`config_sync_until` says which was measured).
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { request } from '../../../host/control/client.js';
import type { DemoContext, DemoPlugin } from './plugin.js';
import { sleep } from '../wait.js';

const RULE_NOTE = 'demo: added on the primary, synced';

export function configSyncPlugin(): DemoPlugin {
  const figures: Record<string, unknown> = { config_sync_ms: null };
  return {
    name: 'configsync',
    async setup(ctx: DemoContext) {
      const ps = await ctx.status('primary');
      if (!ps.configsync) { figures.config_sync_skipped = 'no configsync section in the demo configs'; return; }
      // Wait (bounded) for the start-up push, so the measurement is one change, not the initial sync.
      for (let i = 0; i < 100 && (await ctx.status('primary')).configsync.peer?.state !== 'in_sync'; i++) await sleep(50);
      const cfg = YAML.parse(readFileSync(ctx.configFile.primary, 'utf8'));
      cfg.firewall ??= {};
      cfg.firewall.rules ??= {};
      cfg.firewall.rules.lan = [
        { action: 'block', protocol: 'tcp', source: 'lan net', destination: '203.0.113.10', destination_port: 6543, log: false, description: RULE_NOTE },
        ...(cfg.firewall.rules.lan ?? [{ action: 'pass', protocol: 'any', source: 'lan net', destination: 'any' }]),
      ];
      const t0 = performance.now();
      // write_file: false — this run only; the repo's config file stays as committed.
      const r = await request(ctx.socket.primary, { cmd: 'config.apply', text: YAML.stringify(cfg), file: 'demo', description: 'demo: block tcp/6543 to the WAN server', write_file: false }, 10_000);
      const applyMs = performance.now() - t0;
      let revisionMs: number | null = null;
      let ruleMs: number | null = null;
      for (let i = 0; i < 400 && ruleMs === null; i++) {
        const now = performance.now() - t0;
        if (revisionMs === null) {
          const rx = (await ctx.status('secondary')).configsync?.received;
          if (rx?.primary_seq >= r.seq) revisionMs = now;
        }
        const nft = ctx.board.exec('secondary', 'nft', ['list', 'ruleset'], { timeoutMs: 2000 }).stdout;
        if (nft.includes(RULE_NOTE) || nft.includes('6543')) ruleMs = performance.now() - t0;
        if (revisionMs !== null && ruleMs === null && now - revisionMs > 2000) break; // its firewall does not reload on config changes
        await sleep(5);
      }
      figures.config_sync_ms = Math.round(ruleMs ?? revisionMs ?? NaN) || null;
      figures.config_sync_until = ruleMs !== null ? 'rule in the secondary nftables ruleset' : 'revision applied by the secondary daemon';
      figures.config_sync_revision_ms = revisionMs === null ? null : Math.round(revisionMs);
      figures.config_apply_cli_ms = Math.round(applyMs);
      ctx.say(`config sync: rule added on the primary (revision #${r.seq}); ${figures.config_sync_until} after ${figures.config_sync_ms} ms`);
    },
    async beforePowerOff(ctx: DemoContext) {
      if (figures.config_sync_ms === null) return;
      // Back to the file's config before the power cut, so the restarted primary's push changes nothing on the
      // secondary during the failback. This also times a deletion propagating.
      const t0 = performance.now();
      const r = await request(ctx.socket.primary, { cmd: 'config.apply', text: readFileSync(ctx.configFile.primary, 'utf8'), file: 'demo', description: 'demo: remove the tcp/6543 rule', write_file: false }, 10_000);
      for (let i = 0; i < 400; i++) {
        if (!ctx.board.exec('secondary', 'nft', ['list', 'ruleset'], { timeoutMs: 2000 }).stdout.includes(RULE_NOTE)
          && (await ctx.status('secondary')).configsync?.received?.primary_seq >= r.seq) {
          figures.config_sync_delete_ms = Math.round(performance.now() - t0);
          break;
        }
        await sleep(5);
      }
      ctx.say(`config sync: rule removed on the primary; gone from the secondary after ${figures.config_sync_delete_ms ?? '(not within 2 s)'} ms`);
    },
    async afterFailback(ctx: DemoContext) {
      const ps = await ctx.status('primary').catch(() => null);
      if (!ps?.configsync) return;
      // The restarted primary pushes its file's config again: the peer must come back in sync by itself.
      let st = ps.configsync.peer?.state;
      for (let i = 0; i < 100 && st !== 'in_sync'; i++) { await sleep(50); st = (await ctx.status('primary')).configsync.peer?.state; }
      figures.config_sync_after_failback = st;
    },
    async finish() { return figures; },
  };
}

