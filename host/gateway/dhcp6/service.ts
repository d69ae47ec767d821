// DHCPv6 as a daemon service: kea-dhcp6 in HA hot-standby beside the DHCPv4 Kea, its config under
// state_dir/kea6, run by the same rules (../dhcp/keaservice.ts).
import { KeaService } from '../dhcp/keaservice.js';
import { ensureKea6Dir, kea6Config, kea6Paths, kea6Status, type Kea6Status } from './kea6.js';

export class Dhcp6Service extends KeaService<Kea6Status> {
  constructor() {
    super({
      name: 'dhcp6', binary: 'kea-dhcp6', label: 'kea-dhcp6', subject: 'kea-dhcp6', tag: 'DHCP6',
      files: kea6Paths,
      prepare: (p, stateDir) => ensureKea6Dir(p as ReturnType<typeof kea6Paths>, stateDir),
      config: (c, o) => kea6Config(c, c.state_dir, o),
      poll: (socket) => kea6Status(socket),
    });
  }
}
