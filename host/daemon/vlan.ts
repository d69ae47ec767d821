// 802.1Q sub-interfaces for networks declared with `vlan:` (interfaces.<name>.vlan). The daemon owns its NICs
// (as for the node addresses): at start it creates <device>.<vlan> on the parent NIC if it is missing and brings
// both up. Done with iproute2 once at start, not per packet, so a spawned `ip` is fine here. The virtual board's
// kernel has no 802.1Q module: there a VLAN network fails the start with DG_ERR_VLAN naming the field.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { allNets, netDevice } from '../config/schema.js';
import type { Logger } from '../log.js';

export class VlanError extends Error {
  readonly code = 'DG_ERR_VLAN';
  constructor(readonly field: string, reason: string) { super(`${field}: ${reason}`); this.name = 'VlanError'; }
}

/** Create every configured VLAN sub-interface that does not exist yet (its parent NIC must exist). */
export function ensureVlans(c: Config, log: Logger): void {
  for (const name of allNets(c)) {
    const ifc = c.interfaces[name];
    if (!ifc.vlan) continue;
    const dev = netDevice(ifc);
    if (existsSync(`/sys/class/net/${dev}`)) continue;
    try {
      execFileSync('ip', ['link', 'set', ifc.device, 'up'], { stdio: 'pipe', timeout: 10_000 });
      execFileSync('ip', ['link', 'add', 'link', ifc.device, 'name', dev, 'type', 'vlan', 'id', String(ifc.vlan)], { stdio: 'pipe', timeout: 10_000 });
    } catch (e) {
      const why = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
      throw new VlanError(`interfaces.${name}.vlan`, `cannot create ${dev} on ${ifc.device}: ${why} (is the 8021q module available, and does ${ifc.device} exist?)`);
    }
    log.info('vlan sub-interface created', { network: name, device: dev, parent: ifc.device, vlan: ifc.vlan });
  }
}
