// `duogate firewall show|compile|apply`: read the ruleset in force; print what the config compiles to;
// apply the config's ruleset in this namespace without the daemon (recovery, tests).
import type { Config } from '../../config/schema.js';
import { compile } from './compile.js';
import { applyRuleset, listRuleset } from './apply.js';
import { ruleCounters } from './show.js';
import { rulesetFile } from './service.js';

export const FIREWALL_USAGE = 'usage: duogate firewall show [--json] | compile | apply [--config FILE]';

export async function firewallCommand(sub: string | undefined, readConfig: () => Config, json: boolean): Promise<number> {
  switch (sub ?? 'show') {
    case 'show':
      if (json) console.log(JSON.stringify(ruleCounters(), null, 2));
      else process.stdout.write(await listRuleset());
      return 0;
    case 'compile':
      process.stdout.write(compile(readConfig()).text);
      return 0;
    case 'apply': {
      const c = readConfig();
      const info = await applyRuleset(compile(c), rulesetFile(c.state_dir));
      console.log(`ruleset applied in ${info.applyMs} ms (${info.file})`);
      return 0;
    }
    default:
      process.stderr.write(`duogate: unknown firewall command "${sub}"\n${FIREWALL_USAGE}\n`);
      return 2;
  }
}
