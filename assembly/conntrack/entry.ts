// The compact conntrack entry: one 64-byte record, used both as a slot of the state table and as the
// parser's scratch entry (ENT). Addresses and ports are kept as raw network bytes (opaque u32/u16
// loads), so copying between ctnetlink, the table and the wire never swaps bytes twice.
//
//   0 u8  live      0 free, 1 live, 2 dead (a delete waits in the send queue)
//   1 u8  proto     IPPROTO_*
//   2 u16 zone      host order
//   4 u32 osrc      original tuple, raw bytes         \
//   8 u32 odst                                         | key = bytes 1..15
//  12 u16 osport    TCP/UDP port; ICMP: id            |
//  14 u16 odport    TCP/UDP port; ICMP: type, code    /
//  16 u32 rsrc      reply tuple as the kernel reports it (NAT applied)
//  20 u32 rdst
//  24 u16 rsport
//  26 u16 rdport
//  28 u32 status    IPS_* (host order)
//  32 u32 timeout   seconds remaining when last observed
//  36 u32 mark
//  40 u8  tcp state, 41 wscale orig, 42 wscale reply, 43 flags orig, 44 flags reply
//  45 u8  present   parser only: PRESENT_* bits
//  46 u8  qflags    Q_* bits
//  47 u8  retries   kernel fix-ups tried for this record
//  48 u32 gen       dump generation that last saw it
//  52 u32 next      queue / free-list link (record index + 1, 0 = none)
//  56 u32 seenAt    clock (ms, wrapping) of the last observation: ages `timeout` when sent
//  60 u32 hash      cached key hash (index maintenance without re-hashing)
export const REC: u32 = 64;
export const O_LIVE: u32 = 0; export const O_PROTO: u32 = 1; export const O_ZONE: u32 = 2;
export const O_OSRC: u32 = 4; export const O_ODST: u32 = 8; export const O_OSPORT: u32 = 12; export const O_ODPORT: u32 = 14;
export const O_RSRC: u32 = 16; export const O_RDST: u32 = 20; export const O_RSPORT: u32 = 24; export const O_RDPORT: u32 = 26;
export const O_STATUS: u32 = 28; export const O_TIMEOUT: u32 = 32; export const O_MARK: u32 = 36;
export const O_TCPSTATE: u32 = 40; export const O_WSO: u32 = 41; export const O_WSR: u32 = 42; export const O_FLO: u32 = 43; export const O_FLR: u32 = 44;
export const O_PRESENT: u32 = 45; export const O_QFLAGS: u32 = 46; export const O_RETRIES: u32 = 47;
export const O_GEN: u32 = 48; export const O_NEXT: u32 = 52; export const O_SEEN: u32 = 56; export const O_HASH: u32 = 60;

export const LIVE_FREE: u8 = 0;
export const LIVE_OK: u8 = 1;
export const LIVE_DEAD: u8 = 2;

export const PRESENT_TCP: u8 = 1;
export const PRESENT_MARK: u8 = 2;
export const PRESENT_TIMEOUT: u8 = 4;
export const PRESENT_ORIG: u8 = 8;
export const PRESENT_REPLY: u8 = 16;
export const PRESENT_STATUS: u8 = 32;

export const Q_QUEUED: u8 = 1;

// An IPv6 record (statesync/table6.ts) is an IPv4-shaped record followed by the four 16-byte addresses, so
// every field from the ports on sits where it does for IPv4 and the engine's code for them is shared. In the
// first 64 bytes, the IPv4 address words hold a fold (XOR of the four words) of the IPv6 address: the key hash
// and a first comparison use them; keyEq6 then compares the full original addresses.
//
//  64 osrc[16]  80 odst[16]    (key = bytes 1..15 and 64..95)
//  96 rsrc[16] 112 rdst[16]
export const REC6: u32 = 128;
export const O6_OSRC: u32 = 64; export const O6_ODST: u32 = 80; export const O6_RSRC: u32 = 96; export const O6_RDST: u32 = 112;

/** The parser's scratch entry (one record, room for an IPv6 one). */
export const ENT: usize = memory.data(REC6, 16);

/** XOR fold of the 16-byte address at `a` into one word. */
// @ts-ignore: decorator
@inline export function fold6(a: usize): u32 { return load<u32>(a) ^ load<u32>(a, 4) ^ load<u32>(a, 8) ^ load<u32>(a, 12); }

// @ts-ignore: decorator
@inline export function eq16(a: usize, b: usize): bool { return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8); }

/** IPv6 records: the IPv4-shaped key (folds included) and the full original addresses. */
export function keyEq6(a: usize, b: usize): bool {
  return keyEq(a, b) && eq16(a + O6_OSRC, b + O6_OSRC) && eq16(a + O6_ODST, b + O6_ODST);
}

/** contentDiffers for IPv6 records: the full reply addresses too. */
export function contentDiffers6(a: usize, b: usize): bool {
  return contentDiffers(a, b) || !eq16(a + O6_RSRC, b + O6_RSRC) || !eq16(a + O6_RDST, b + O6_RDST);
}

// @ts-ignore: decorator
@inline export function keyEq(a: usize, b: usize): bool {
  return ((load<u32>(a) ^ load<u32>(b)) & 0xffffff00) == 0 && load<u64>(a, 4) == load<u64>(b, 4) && load<u32>(a, 12) == load<u32>(b, 12);
}

/** Hash of the key bytes 1..15 (proto, zone, orig tuple): murmur3-style mixing of four words. */
export function keyHash(p: usize): u32 {
  let h: u32 = 0x9747b28c;
  h = mix(h, load<u32>(p) & 0xffffff00);
  h = mix(h, load<u32>(p, 4));
  h = mix(h, load<u32>(p, 8));
  h = mix(h, load<u32>(p, 12));
  h ^= h >>> 16; h *= 0x85ebca6b; h ^= h >>> 13; h *= 0xc2b2ae35; h ^= h >>> 16;
  return h;
}

// @ts-ignore: decorator
@inline function mix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51; k = rotl<u32>(k, 15); k *= 0x1b873593;
  h ^= k; h = rotl<u32>(h, 13); return h * 5 + 0xe6546b64;
}

/** True when the replicated contents (reply tuple, status, mark, TCP fields) differ; timeout is not compared. */
export function contentDiffers(a: usize, b: usize): bool {
  return load<u64>(a, 16) != load<u64>(b, 16) || load<u32>(a, 24) != load<u32>(b, 24) ||
    load<u32>(a, 28) != load<u32>(b, 28) || load<u32>(a, 36) != load<u32>(b, 36) ||
    (load<u64>(a, 40) & 0xffffffffff) != (load<u64>(b, 40) & 0xffffffffff);
}
