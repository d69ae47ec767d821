// `duogate config apply|history|diff|revert|sync`. Apply and revert go through the running daemon (live
// apply + push); with no daemon, apply validates, writes the file and records the revision for the next start.
// History and diff read the store directly, so they work with the daemon stopped.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import path from 'node:path';
import { parseConfigText, ConfigError } from '../config/load.js';
import { checkConfig } from '../config/check.js';
import type { Config } from '../config/schema.js';
import { request, ControlError } from '../control/client.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ConfigStore, diffConfigs } from './store.js';

/** The daemon waits up to 15 s for its services to apply a change, and as long again to put a refused one back. */
const APPLY_ANSWER_MS = 45_000;
const USAGE = 'usage: duogate config apply FILE [-m DESCRIPTION] | history | diff [A [B]] | revert REV | sync\n' +
  '       duogate config add-rule IFACE ACTION PROTO SOURCE DESTINATION [DPORT] [-m DESCRIPTION] | add-alias NAME host|network|port ENTRY...';

export interface ConfigCliContext {
  args: string[]; configFile: string; socket: () => string; readConfig: () => Config; json: boolean; message?: string;
}

export async function configCommand(x: ConfigCliContext): Promise<number> {
  const [sub, ...args] = x.args;
  const out = (v: unknown, human: () => string) => process.stdout.write(x.json ? JSON.stringify(v, null, 2) + '\n' : human());
  switch (sub) {
    case 'apply': {
      const file = args[0];
      if (!file) throw new ControlError('DG_ERR_USAGE', USAGE);
      const text = readFileSync(file, 'utf8');
      const description = x.message ?? `duogate config apply ${path.basename(file)}`;
      try {
        const r = await request(x.socket(), { cmd: 'config.apply', text, file, description }, APPLY_ANSWER_MS);
        out(r, () => r.changed
          ? `applied revision #${r.seq} ${r.hash.slice(0, 12)}: vhids added ${JSON.stringify(r.live.added)}, removed ${JSON.stringify(r.live.removed)}, unchanged ${JSON.stringify(r.live.unchanged)}; sync: ${r.sync}\n`
          : `no change: the running config is already ${r.hash.slice(0, 12)}\n`);
        if (path.resolve(file) !== path.resolve(x.configFile) && r.changed) {
          process.stderr.write(`note: the daemon rewrote the file it was started with; ${file} was not changed\n`);
        }
        return 0;
      } catch (e) {
        if (!(e instanceof ControlError) || e.code !== 'DG_ERR_NO_DAEMON') throw e;
        const next = parseConfigText(text, file);
        const errors = checkConfig(next).filter((f) => f.level === 'error');
        if (errors.length) throw new ConfigError(file, errors[0].field, errors[0].message);
        writeFileAtomic(x.configFile, text, 0o600);
        const rev = new ConfigStore(next.state_dir, (next.configsync as { history?: number } | undefined)?.history ?? 50)
          .record(next, { description, origin: 'local', text });
        out({ changed: true, seq: rev.seq, hash: rev.hash, live: null }, () => `daemon not running: recorded revision #${rev.seq} ${rev.hash.slice(0, 12)} and wrote ${x.configFile}; it takes effect at the next start\n`);
        return 0;
      }
    }
    case 'add-rule':
    case 'add-alias': {
      // Small edits of the running config file, comments kept (YAML document API), then the normal apply.
      const text = readFileSync(x.configFile, 'utf8');
      const doc = YAML.parseDocument(text);
      let what: string;
      if (sub === 'add-rule') {
        const [iface, action, protocol, source, destination, dport] = args;
        if (!destination) throw new ControlError('DG_ERR_USAGE', USAGE);
        const rule: Record<string, unknown> = { action, protocol, source, destination };
        if (dport) rule.destination_port = /^\d+$/.test(dport) ? Number(dport) : dport;
        if (x.message) rule.description = x.message;
        const at = ['firewall', 'rules', iface];
        const list = doc.getIn(at) as YAML.YAMLSeq | undefined;
        // First match wins: a quickly added rule goes on top so it takes effect (pfSense appends; move it if needed).
        if (YAML.isSeq(list)) list.items.unshift(doc.createNode(rule, { flow: true }) as never);
        else doc.setIn(at, doc.createNode([rule]));
        what = `add-rule ${iface}: ${action} ${protocol} ${source} -> ${destination}${dport ? `:${dport}` : ''}`;
      } else {
        const [name, type, ...entries] = args;
        if (!entries.length) throw new ControlError('DG_ERR_USAGE', USAGE);
        doc.setIn(['firewall', 'aliases', name], doc.createNode({ type, entries: entries.map((e) => (/^\d+$/.test(e) ? Number(e) : e)) }, { flow: true }));
        what = `add-alias ${name} (${type}): ${entries.join(' ')}`;
      }
      const r = await request(x.socket(), { cmd: 'config.apply', text: doc.toString(), file: x.configFile, description: x.message ? `${what} (${x.message})` : what }, APPLY_ANSWER_MS);
      out(r, () => r.changed ? `${what}: revision #${r.seq} ${r.hash.slice(0, 12)} applied; sync: ${r.sync}\n` : 'no change\n');
      return 0;
    }
    case 'history': {
      const c = x.readConfig();
      const list = new ConfigStore(c.state_dir).list();
      out(list, () => list.map((r) => `#${String(r.seq).padEnd(5)} ${r.hash.slice(0, 12)}  ${r.time}  ${r.origin.padEnd(7)}  ${r.description}\n`).join('') || 'no revisions yet\n');
      return 0;
    }
    case 'diff': {
      const store = new ConfigStore(x.readConfig().state_dir);
      const a = store.get(args[0] ?? '-1');
      const b = args[1] ? store.get(args[1]) : store.latest()!;
      const lines = diffConfigs(a.config, b.config);
      out({ a: { seq: a.seq, hash: a.hash }, b: { seq: b.seq, hash: b.hash }, lines },
        () => `--- #${a.seq} ${a.hash.slice(0, 12)}\n+++ #${b.seq} ${b.hash.slice(0, 12)}\n${lines.join('\n')}${lines.length ? '\n' : '(identical)\n'}`);
      return 0;
    }
    case 'revert': {
      if (!args[0]) throw new ControlError('DG_ERR_USAGE', USAGE);
      const r = await request(x.socket(), { cmd: 'config.revert', ref: args[0], description: x.message }, APPLY_ANSWER_MS);
      out(r, () => r.changed ? `reverted: new revision #${r.seq} ${r.hash.slice(0, 12)}; sync: ${r.sync}\n` : 'no change: that revision is what runs\n');
      return 0;
    }
    case 'sync': {
      const r = await request(x.socket(), { cmd: 'config.sync' });
      out(r, () => 'push queued: see "duogate status" for the result\n');
      return 0;
    }
    default:
      throw new ControlError('DG_ERR_USAGE', USAGE);
  }
}
