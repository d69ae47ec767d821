// CARP constants, split as wireguard-go does: what the protocol fixes, and what this implementation chose.

// ---- Specification constants (carp.md §1, §4, §5) ----
export const CARP_PROTO: u8 = 112;
export const CARP_TTL: u8 = 255;
export const CARP_VERSION: u8 = 2;
export const CARP_TYPE_ADVERTISEMENT: u8 = 1;
export const CARP_AUTHLEN: u8 = 7; // counter + HMAC in 32-bit words
export const CARP_HEADER_LEN: u32 = 36;
export const CARP_GROUP: u32 = 0xe0000012; // 224.0.0.18 (IPv6: ff02::12, carp/ipv6.ts)
export const CARP_MAXSKEW: u32 = 240; // FreeBSD clamps the advertised (demoted) skew here
export const CARP_PASSWORD_MAX: u32 = 19; // BSD strlcpy into a 20-byte buffer
export const BOW_OUT_ADVBASE: u8 = 255; // OpenBSD's "bow out": advbase 255, advskew 255
export const BOW_OUT_ADVSKEW: u8 = 255;
export const MASTER_DOWN_MULTIPLIER: u32 = 3;

// ---- Implementation constants ----
export const MAX_VHIDS: i32 = 64;
export const MAX_VIPS_PER_VHID: i32 = 16;
/** Extra gratuitous ARPs after this many adverts as new MASTER ("for some L3 switches", carp.md §4.3). */
export const ANNOUNCE_AGAIN_AFTER: u32 = 2;
/** Demotion added per active reason, FreeBSD's factor (carp.md §5.2). */
export const DEMOTE_FACTOR: u32 = 240;

// States (per vhid).
export const INIT: u8 = 0;
export const BACKUP: u8 = 1;
export const MASTER: u8 = 2;

// Demotion reasons (bit numbers). The host raises and clears them; each adds DEMOTE_FACTOR.
export const DEMOTE_LINK_DOWN: u32 = 0;
export const DEMOTE_MAINTENANCE: u32 = 1;
export const DEMOTE_BULK_SYNC: u32 = 2;
export const DEMOTE_SEND_ERRORS: u32 = 3;
export const DEMOTE_USER: u32 = 4;
// Raised by the core itself when a MASTER yields after a stall (Vhid.yieldAfterStall); the host owns it from the
// transition on and clears it once the features that must catch up (state sync's bulk) have raised their own.
export const DEMOTE_STALLED: u32 = 5;
// Raised by the host from the core's start until every feature has started: a node must not preempt before the
// features that raise their own demotion (state sync's bulk) are up, or it takes the VIPs, is demoted a moment
// later and hands them back (pfSense raises net.inet.carp.demotion during boot for the same reason).
export const DEMOTE_STARTING: u32 = 6;

// Why a state changed: carried in STATE actions so logs and telemetry can say it in words.
export const WHY_START: u8 = 1;
export const WHY_MASTER_DOWN: u8 = 2; // BACKUP heard nothing for the master-down interval
export const WHY_PREEMPT: u8 = 3; // BACKUP took over from a worse master
export const WHY_BETTER_MASTER: u8 = 4; // MASTER heard a better (or tie-winning) advert
export const WHY_BOW_OUT: u8 = 5; // the master bowed out or advertises too slowly to keep the role
export const WHY_LINK_DOWN: u8 = 6;
export const WHY_LINK_UP: u8 = 7;
export const WHY_SHUTDOWN: u8 = 8;
export const WHY_DEMOTED_PEER: u8 = 9; // the master's demote count is higher than ours
export const WHY_REMOVED: u8 = 10; // the vhid left the config (live reconfiguration)
export const WHY_STALLED: u8 = 11; // this node went silent (frozen, starved) and the peer took over meanwhile

// Action types returned by pollAction().
export const ACT_NONE: u32 = 0;
export const ACT_SEND_ADVERT: u32 = 1; // send the payload to 224.0.0.18 (arg1 = FAMILY_V4) or ff02::12 (FAMILY_V6) on `link`
export const ACT_TAKE_VIPS: u32 = 2; // add the vhid's VIPs and announce them (gratuitous ARP)
export const ACT_RELEASE_VIPS: u32 = 3; // remove the vhid's VIPs
export const ACT_ANNOUNCE: u32 = 4; // gratuitous ARP for the vhid's VIPs again (still MASTER)
export const ACT_STATE: u32 = 5; // state changed: arg0 = old, arg1 = new, arg2 = why

// Drop reasons: result codes of handleCarp() and indexes into the stats block.
export const RX_OK: u32 = 0;
export const DROP_SHORT: u32 = 1; // shorter than an IPv4/IPv6 header + 36 bytes, or truncated
export const DROP_BAD_IP: u32 = 2; // not IPv4 or IPv6, bad IHL, not proto (next header) 112
export const DROP_BAD_TTL: u32 = 3; // TTL or hop limit not 255
export const DROP_BAD_CHECKSUM: u32 = 4;
export const DROP_BAD_VERSION: u32 = 5; // version != 2 or type != advertisement
export const DROP_UNKNOWN_VHID: u32 = 6;
export const DROP_OWN_PACKET: u32 = 7; // our own advert looped back
export const DROP_BAD_HMAC: u32 = 8;
export const DROP_NOT_READY: u32 = 9; // vhid in INIT (link down or not started)
export const STAT_ACCEPTED: u32 = 10;
export const STAT_SENT: u32 = 11;
export const STAT_TRANSITIONS: u32 = 12;
export const STAT_QUEUE_OVERFLOW: u32 = 13;
// Pair authentication (see PAIR_* below): drops that only a node paired with a duogate peer can make.
export const DROP_NOT_PEER: u32 = 14; // source is not the configured peer's address on this link
export const DROP_NO_PAIR_AUTH: u32 = 15; // paired vhid, but the advert carries no pair trailer (a plain CARP advert)
export const DROP_BAD_PAIR_AUTH: u32 = 16; // the pair trailer's HMAC does not cover this advert from this source
export const DROP_REPLAY: u32 = 17; // counter not above the peer's last accepted one: a replayed advert
// A dual-stack vhid's adverts go out over IPv4 and IPv6 with one counter: the second copy to arrive is verified,
// counted here and not acted on again (not a drop, and not a replay).
export const STAT_OTHER_FAMILY_COPY: u32 = 18;
export const STAT_COUNT: u32 = 24;
/** Which stats indexes are drop reasons (bit i = index i): the rest are the result OK and events. */
export const CARP_DROP_MASK: u32 = (1 << DROP_SHORT) | (1 << DROP_BAD_IP) | (1 << DROP_BAD_TTL) | (1 << DROP_BAD_CHECKSUM) |
  (1 << DROP_BAD_VERSION) | (1 << DROP_UNKNOWN_VHID) | (1 << DROP_OWN_PACKET) | (1 << DROP_BAD_HMAC) | (1 << DROP_NOT_READY) |
  (1 << DROP_NOT_PEER) | (1 << DROP_NO_PAIR_AUTH) | (1 << DROP_BAD_PAIR_AUTH) | (1 << DROP_REPLAY);

// ---- Pair authentication (docs/security.md) ----
// The CARP HMAC covers only the vhid, the VIPs and the counter: advbase, advskew, demote and the sender are
// not authenticated, and BSD CARP has no replay check. Two duogate nodes append a trailer after the standard
// 36 bytes: 'D' 'G' version reserved, then HMAC-SHA1 (20 bytes, a key derived from the pair's shared key)
// over the source address, the whole header (checksum field zero) and the trailer's first 4 bytes. Their
// counters grow strictly (epoch << 32 | sequence), so each side refuses any counter it has already passed.
// The checksum covers the whole payload, as OpenBSD and Wireshark compute it.
export const PAIR_MAGIC0: u8 = 0x44; // 'D'
export const PAIR_MAGIC1: u8 = 0x47; // 'G'
export const PAIR_VERSION: u8 = 1;
export const PAIR_TRAILER_LEN: u32 = 24;
export const PAIR_MAC_OFF: u32 = 4; // inside the trailer
