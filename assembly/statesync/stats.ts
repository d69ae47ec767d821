// State sync counters, one u32 each; the host reads the block as a Uint32Array (names in host/statesync/core.ts).
export const S_NL_MSGS: u32 = 0;        // ctnetlink messages read (events, dump entries, errors)
export const S_OWN_ECHO: u32 = 1;       // events caused by our own injections (nlmsg_pid = our port id), ignored
export const S_FILTERED: u32 = 2;       // entries on the ignore list (the gateway's own or sync-link traffic)
export const S_UNSUPPORTED: u32 = 3;    // another family or protocol, an ICMP type without reply, or IPv6 with NAT
export const S_MALFORMED: u32 = 4;      // ctnetlink messages that failed to parse
export const S_TABLE_FULL: u32 = 5;     // entries dropped because the table was full
export const S_QUEUED: u32 = 6;         // states queued for sending (a state queued twice counts once)
export const S_TX_UPSERTS: u32 = 7;     // state items sent
export const S_TX_DELETES: u32 = 8;     // delete items sent
export const S_RX_UPSERTS: u32 = 9;     // state items received from the peer
export const S_RX_DELETES: u32 = 10;    // delete items received
export const S_RX_BAD_ITEMS: u32 = 11;  // received items that failed validation (dropped)
export const S_K_CREATES: u32 = 12;     // create requests sent to the local kernel
export const S_K_UPDATES: u32 = 13;
export const S_K_DELETES: u32 = 14;
export const S_K_ERRORS: u32 = 15;      // kernel rejections not fixed up
export const S_K_EEXIST_FIXED: u32 = 16;// create hit an existing entry: deleted and re-created
export const S_K_ENOENT_FIXED: u32 = 17;// update hit a missing entry: created
export const S_DUMP_ENTRIES: u32 = 18;  // entries read by dumps
export const S_SWEPT: u32 = 19;         // entries gone from the kernel found by a re-dump (diff)
export const S_EVENTS: u32 = 20;        // kernel events applied to the table
export const S_LAST_ERRNO: u32 = 21;    // last unfixed kernel errno
// Received states refused by the policy (statesync/policy.ts), one counter per reason:
export const S_RX_TO_SELF: u32 = 22;    // to or from either node's own addresses, or ending at a VIP without DNAT
export const S_RX_ZONE: u32 = 23;       // a conntrack zone not configured
export const S_RX_MARK: u32 = 24;       // a mark our ruleset does not use
export const S_RX_SNAT: u32 = 25;       // source NAT to an address the pair does not own
export const S_RX_DNAT: u32 = 26;       // destination NAT outside the internal networks
export const S_RX_TIMEOUT_CLAMPED: u32 = 27; // taken, timeout cut to the kernel's bound for its state
export const S_V6_HELD: u32 = 28;       // IPv6 states not sent: the peer did not announce CAP_V6 (an older release)
export const S_COUNT: u32 = 29;

export const SSTATS = memory.data(S_COUNT * 4, 16);

// @ts-ignore: decorator
@inline export function bump(i: u32): void { const p = SSTATS + (<usize>i << 2); store<u32>(p, load<u32>(p) + 1); }
// @ts-ignore: decorator
@inline export function setStat(i: u32, v: u32): void { store<u32>(SSTATS + (<usize>i << 2), v); }
export function clearSStats(): void { memory.fill(SSTATS, 0, S_COUNT * 4); }
