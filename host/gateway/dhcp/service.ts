// DHCP as a daemon service: kea-dhcp4 in HA hot-standby, its config under state_dir/kea (keaservice.ts runs it);
// `duogate status` also shows the leases per network.
import { dhcpScopes } from './scopes.js';
import { KeaService } from './keaservice.js';
import { ensureKeaDir, keaConfig, keaPaths, keaStatus, type KeaStatus } from './kea.js';

export class DhcpService extends KeaService<KeaStatus> {
  constructor() {
    super({
      name: 'dhcp', binary: 'kea-dhcp4', label: 'Kea', subject: 'kea', tag: 'DHCP',
      files: keaPaths,
      prepare: (p) => ensureKeaDir(p as ReturnType<typeof keaPaths>),
      config: (c, o) => keaConfig(c, c.state_dir, o),
      poll: (socket, c) => keaStatus(socket, Object.fromEntries(dhcpScopes(c).map((x) => [x.net, x.id]))),
      statusExtra: (last) => ({ networks: last?.networks ?? {} }),
    });
  }
}
