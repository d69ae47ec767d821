// When this node's Kea must not serve. With the sync link down while the peer is alive on the LAN, Kea's HA
// heartbeats (over the sync link) fail, both Kea servers would go PARTNER-DOWN and hand out leases from one pool
// without telling each other. Only the LAN MASTER's Kea may serve then; the other node's Kea is held stopped
// until the sync link is back. Fed the peer's sync_link_down alarm and the LAN vhids' transitions; says when
// Kea must stop or start again.
import type { AlarmEvent, FeatureHost, Transition } from '../../feature.js';

export type HoldChange = 'hold' | 'release' | null;

export class KeaHold {
  syncDown = false;
  lanMaster = false;
  /** Kea is held stopped now. */
  held = false;

  /**
   * The state as the host shows it now. A dhcp started while the daemon runs (its section synced to a node
   * already LAN MASTER, or with the sync link already down) never saw the transition or alarm that set it.
   */
  static from(d: Pick<FeatureHost, 'config' | 'vhidStatus' | 'activeAlarms'>): KeaHold {
    const h = new KeaHold();
    const lan = new Set(d.config.carp.vips.filter((v) => v.interface === 'lan').map((v) => v.vhid));
    h.lanMaster = d.vhidStatus().some((v) => lan.has(v.vhid) && v.state === 'MASTER');
    h.syncDown = d.activeAlarms().some((a) => a.name === 'sync_link_down');
    h.held = h.syncDown && !h.lanMaster;
    return h;
  }

  alarm(ev: AlarmEvent): HoldChange {
    if (ev.name !== 'sync_link_down' || ev.active === this.syncDown) return null;
    this.syncDown = ev.active;
    return this.settle();
  }

  transition(t: Transition): HoldChange {
    if (t.interface !== 'lan') return null;
    this.lanMaster = t.to === 'MASTER';
    return this.settle();
  }

  private settle(): HoldChange {
    const hold = this.syncDown && !this.lanMaster;
    if (hold === this.held) return null;
    this.held = hold;
    return hold ? 'hold' : 'release';
  }
}
