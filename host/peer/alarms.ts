// Pair-health alarms, decided from what this node sees (its CARP state, the peer's CARP adverts on the LAN)
// and what the peer says over the heartbeat. Pure: time is an argument, so the rules are unit-tested without
// sockets (test/unit/telemetry-peer.test.ts).
import type { CarpState } from './codec.js';

/** After a start, silence alarms wait this long (or a dead interval, if longer). */
export const STARTUP_GRACE_MS = 5000;

export type AlarmName = 'split_brain' | 'sync_link_down' | 'peer_lost';

export interface Alarm {
  name: AlarmName;
  /** Unique per alarm instance: 'split_brain:1' (per vhid), 'sync_link_down', 'peer_lost'. */
  key: string;
  vhid?: number;
  message: string;
  /** Wall-clock ISO time it was raised. */
  since: string;
}

export interface OwnVhid {
  vhid: number;
  state: CarpState | string;
  /** One advert interval in ms: advbase + advskew/256 seconds. */
  advertMs: number;
  addresses: string[];
  /** Seconds since this node last heard a (peer) master's advert for this vhid; null if never. */
  masterHeardAgoS: number | null;
}

export interface Observation {
  /** Monotonic ms. */
  now: number;
  own: OwnVhid[];
  /** Monotonic ms of the last valid heartbeat per path (null: never). */
  lastSync: number | null;
  lastLan: number | null;
  /** The peer's last reported CARP state per vhid (from the freshest heartbeat on any path). */
  peerStates: Map<number, CarpState>;
  peerName: string;
  /** A path is silent after this long without a valid heartbeat. */
  deadMs: number;
  /** Monotonic ms the service started (alarms about silence wait STARTUP_GRACE_MS after it). */
  startedAt: number;
}

export interface AlarmChange { alarm: Alarm; active: boolean }

export class AlarmTracker {
  private active = new Map<string, Alarm>();
  private bothMasterSince = new Map<number, number>();
  /** Monotonic ms since when the peer has been continuously seen on the LAN (null: not now). */
  private lanVisibleSince: number | null = null;

  list(): Alarm[] { return [...this.active.values()]; }

  /** Forget every alarm (nobody watches any more); returns the ones that were active, to report them cleared. */
  clear(): Alarm[] {
    const was = this.list();
    this.active.clear(); this.bothMasterSince.clear(); this.lanVisibleSince = null;
    return was;
  }

  /** Re-evaluate every rule; returns the alarms raised and cleared by this observation. */
  update(o: Observation): AlarmChange[] {
    const want = new Map<string, Omit<Alarm, 'since'>>();
    const fresh = (t: number | null) => t !== null && o.now - t <= o.deadMs;
    const peerFresh = fresh(o.lastSync) || fresh(o.lastLan);
    // Both nodes often boot together: give the peer a few seconds before calling it lost or half-connected.
    const settled = o.now - o.startedAt > Math.max(o.deadMs, STARTUP_GRACE_MS);

    // Split brain: both MASTER for one vhid for longer than one advert interval (a normal preemption
    // overlaps by less than that: the old master steps down on the first advert it hears).
    for (const v of o.own) {
      if (v.state === 'MASTER' && peerFresh && o.peerStates.get(v.vhid) === 'MASTER') {
        const since = this.bothMasterSince.get(v.vhid) ?? o.now;
        this.bothMasterSince.set(v.vhid, since);
        if (o.now - since > v.advertMs) {
          want.set(`split_brain:${v.vhid}`, {
            name: 'split_brain', key: `split_brain:${v.vhid}`, vhid: v.vhid,
            message: `split brain: this node and ${o.peerName} are both MASTER for vhid ${v.vhid} (${v.addresses.join(', ')}); `
              + 'they do not hear each other\'s CARP adverts on that segment: check its switch/VLAN between the nodes',
          });
        }
      } else this.bothMasterSince.delete(v.vhid);
    }

    // "Seen on the LAN": a LAN heartbeat, or (on a BACKUP) the peer master's CARP adverts, recent enough.
    // Adverts come every advert interval; half of one more is the slack. 3 intervals (the master-down time)
    // still count for "alive" in peer_lost below.
    const heardAt = o.own.filter((v) => v.masterHeardAgoS !== null).map((v) => ({ at: o.now - v.masterHeardAgoS! * 1000, ms: v.advertMs }));
    const advertsFresh = heardAt.some((h) => o.now - h.at <= 3 * h.ms + 100);
    const lanFresh = fresh(o.lastLan) || heardAt.some((h) => o.now - h.at <= 1.5 * h.ms + 200);
    const lanSeen = Math.max(o.lastLan ?? -Infinity, ...heardAt.map((h) => h.at));
    if (!lanFresh) this.lanVisibleSince = null;
    else this.lanVisibleSince ??= o.now;
    // Sync link down: the sync path silent for a dead interval while the peer kept talking on the LAN for a dead
    // interval after the last sync heartbeat, and has been visible there for one. A power cut stops both paths
    // together (no alarm, peer_lost follows); a peer that boots is heard on the LAN a moment before its first
    // heartbeat (no alarm either).
    const syncLast = o.lastSync ?? o.startedAt;
    if (settled && o.now - syncLast > o.deadMs && lanFresh && lanSeen - syncLast > o.deadMs
      && this.lanVisibleSince !== null && o.now - this.lanVisibleSince > o.deadMs) {
      want.set('sync_link_down', {
        name: 'sync_link_down', key: 'sync_link_down',
        message: `sync link down: ${o.peerName} is alive on the LAN${fresh(o.lastLan) ? ' (heartbeat)' : ' (CARP adverts)'} but silent on the sync link: `
          + 'check the sync cable and interfaces.sync on both nodes; state and config sync are not running',
      });
    }
    if (settled && !peerFresh && !advertsFresh) {
      const heard = [o.lastSync, o.lastLan].filter((t): t is number => t !== null);
      const last = heard.length ? `silent for ${Math.round((o.now - Math.max(...heard)) / 1000)} s` : 'never heard';
      want.set('peer_lost', {
        name: 'peer_lost', key: 'peer_lost',
        message: `peer lost: ${o.peerName} is ${last} `
          + 'on the sync link and the LAN, and sends no CARP adverts: this node is on its own (no redundancy)',
      });
    }

    const changes: AlarmChange[] = [];
    for (const [k, a] of this.active) {
      if (!want.has(k)) { this.active.delete(k); changes.push({ alarm: a, active: false }); }
    }
    for (const [k, a] of want) {
      if (this.active.has(k)) continue;
      const alarm = { ...a, since: new Date().toISOString() };
      this.active.set(k, alarm);
      changes.push({ alarm, active: true });
    }
    return changes;
  }
}
