// The gateway's services, in start order: the firewall first (the others' traffic depends on it).
import type { Daemon } from '../daemon/daemon.js';
import type { ControlServer } from '../control/server.js';
import type { Service } from '../daemon/service.js';
import { FirewallService } from './firewall/service.js';
import { DhcpService } from './dhcp/service.js';
import { DnsService } from './dns/service.js';

export function gatewayServices(d: Daemon, _control: ControlServer): Service[] {
  const c = d.config;
  const out: Service[] = [];
  // The firewall runs whenever a firewall or nat section is present (an empty `firewall: {}` gives the defaults).
  if (c.firewall !== undefined || c.nat !== undefined) out.push(new FirewallService());
  if (c.dhcp !== undefined) out.push(new DhcpService());
  if (c.dns !== undefined) out.push(new DnsService());
  return out;
}
