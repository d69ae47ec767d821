// CARP advertisement wire codec (carp.md §1.3, §2.2). Parsing reads in place from the rx buffer;
// building writes the 36-byte header the kernel sends behind its own IPv4 or IPv6 header (the same bytes for both).
import { getU32, putU16, putU32, putU64 } from '../util/bytes';
import { inetChecksum } from '../util/checksum';
import { HmacKey } from '../crypto/hmac';
import {
  CARP_AUTHLEN, CARP_HEADER_LEN, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, MAX_VIPS_PER_VHID, PAIR_MAC_OFF, PAIR_MAGIC0,
  PAIR_MAGIC1, PAIR_TRAILER_LEN, PAIR_VERSION,
} from './constants';
import { isScopeEmbedded } from './ipv6';

// Field offsets inside the 36-byte header.
export const OFF_VERSION_TYPE: u32 = 0;
export const OFF_VHID: u32 = 1;
export const OFF_ADVSKEW: u32 = 2;
export const OFF_AUTHLEN: u32 = 3;
export const OFF_DEMOTE: u32 = 4;
export const OFF_ADVBASE: u32 = 5;
export const OFF_CHECKSUM: u32 = 6;
export const OFF_COUNTER: u32 = 8;
export const OFF_HMAC: u32 = 16;

const HMAC_MSG = memory.data(3 + 4 * MAX_VIPS_PER_VHID + 16 * MAX_VIPS_PER_VHID + 8, 16);
const DIGEST = memory.data(20, 16);
// Pair MAC input: source address (4 bytes for IPv4, 16 for IPv6), the 36-byte header with a zero checksum, the
// trailer's first 4 bytes.
const PAIR_MSG = memory.data(16 + CARP_HEADER_LEN + PAIR_MAC_OFF, 16);
/** An IPv4 source in network order, for the pair MAC (buildAdvert and verifyPair take a pointer and a length). */
export const SRC4 = memory.data(4, 4);

/** No IPv6 VIPs: the HMAC input of a vhid without them (and the type the empty list needs). */
export const NO_VIPS6 = new StaticArray<u8>(0);

/**
 * Lay out the HMAC input as the BSDs hash it: 02 01 vhid, the IPv4 VIPs ascending (4 bytes each, network order),
 * the IPv6 VIPs ascending (16 bytes each, link-local ones with bytes 2-3, the KAME scope id, zero), the 8 counter
 * bytes as on the wire. Both lists must already be sorted (and the IPv6 one cleared of scope ids).
 * `skipLinkLocal` leaves the link-local VIPs out: OpenBSD's second accepted form (HMAC_NOV6LL), for a peer whose
 * carp interface has its own link-local address. Returns the message length.
 */
function hmacMessage(vhid: u8, vips: StaticArray<u32>, vips6: StaticArray<u8>, skipLinkLocal: bool, counterPtr: usize): u32 {
  store<u8>(HMAC_MSG, 2); store<u8>(HMAC_MSG, 1, 1); store<u8>(HMAC_MSG, vhid, 2);
  let p: usize = HMAC_MSG + 3;
  for (let i = 0; i < vips.length; i++) { putU32(p, unchecked(vips[i])); p += 4; }
  const a6 = changetype<usize>(vips6);
  for (let i = 0; i < vips6.length; i += 16) {
    if (skipLinkLocal && isScopeEmbedded(a6 + <usize>i)) continue;
    memory.copy(p, a6 + <usize>i, 16); p += 16;
  }
  memory.copy(p, counterPtr, 8);
  return <u32>(p + 8 - HMAC_MSG);
}

/** True when some IPv6 VIP is link-local (so the advert may also verify in OpenBSD's form without them). */
export function hasLinkLocal(vips6: StaticArray<u8>): bool {
  const a6 = changetype<usize>(vips6);
  for (let i = 0; i < vips6.length; i += 16) if (isScopeEmbedded(a6 + <usize>i)) return true;
  return false;
}

/**
 * Build an advert at `out`: fields, counter, HMAC, then (with a `pair` key) the pair trailer signed for the
 * source address at `src` (`srcLen` 4 or 16 bytes), and the checksum over all of it. Returns its length: 36, or
 * 36 + PAIR_TRAILER_LEN.
 */
export function buildAdvert(out: usize, vhid: u8, advskew: u8, demote: u8, advbase: u8, counter: u64,
  key: HmacKey, vips: StaticArray<u32>, vips6: StaticArray<u8>, pair: HmacKey | null, src: usize, srcLen: u32): u32 {
  store<u8>(out, (CARP_VERSION << 4) | CARP_TYPE_ADVERTISEMENT, OFF_VERSION_TYPE);
  store<u8>(out, vhid, OFF_VHID);
  store<u8>(out, advskew, OFF_ADVSKEW);
  store<u8>(out, CARP_AUTHLEN, OFF_AUTHLEN);
  store<u8>(out, demote, OFF_DEMOTE);
  store<u8>(out, advbase, OFF_ADVBASE);
  putU16(out + OFF_CHECKSUM, 0);
  putU64(out + OFF_COUNTER, counter);
  const n = hmacMessage(vhid, vips, vips6, false, out + OFF_COUNTER);
  key.mac(HMAC_MSG, n, out + OFF_HMAC);
  return sealAdvert(out, pair, src, srcLen);
}

/**
 * Copy the advert header at `from` (fields, counter, HMAC: the same in every family) to `out`, then add the
 * trailer for this family's source and the checksum. A dual-stack vhid's second advert costs no HMAC.
 */
export function copyAdvert(out: usize, from: usize, pair: HmacKey | null, src: usize, srcLen: u32): u32 {
  memory.copy(out, from, CARP_HEADER_LEN);
  putU16(out + OFF_CHECKSUM, 0);
  return sealAdvert(out, pair, src, srcLen);
}

function sealAdvert(out: usize, pair: HmacKey | null, src: usize, srcLen: u32): u32 {
  let len = CARP_HEADER_LEN;
  if (pair != null) {
    const t = out + CARP_HEADER_LEN;
    store<u8>(t, PAIR_MAGIC0); store<u8>(t, PAIR_MAGIC1, 1); store<u8>(t, PAIR_VERSION, 2); store<u8>(t, 0, 3);
    pair.mac(PAIR_MSG, pairMessage(out, src, srcLen), t + PAIR_MAC_OFF);
    len += PAIR_TRAILER_LEN;
  }
  putU16(out + OFF_CHECKSUM, inetChecksum(out, len));
  return len;
}

/** Lay out the pair MAC input for the advert at `carp` (trailer included) from `src` in PAIR_MSG; returns its length. */
function pairMessage(carp: usize, src: usize, srcLen: u32): u32 {
  memory.copy(PAIR_MSG, src, srcLen);
  const h = PAIR_MSG + srcLen;
  memory.copy(h, carp, CARP_HEADER_LEN);
  store<u16>(h + OFF_CHECKSUM, 0);
  memory.copy(h + CARP_HEADER_LEN, carp + CARP_HEADER_LEN, PAIR_MAC_OFF);
  return srcLen + CARP_HEADER_LEN + PAIR_MAC_OFF;
}

/** True when the advert at `carp` (`len` payload bytes) carries a pair trailer of the version we speak. */
export function hasPairTrailer(carp: usize, len: u32): bool {
  if (len < CARP_HEADER_LEN + PAIR_TRAILER_LEN) return false;
  const t = carp + CARP_HEADER_LEN;
  return load<u8>(t) == PAIR_MAGIC0 && load<u8>(t, 1) == PAIR_MAGIC1 && load<u8>(t, 2) == PAIR_VERSION;
}

/** True when the trailer's MAC covers this header and trailer as sent from `src` (4 or 16 bytes; constant-time compare). */
export function verifyPair(carp: usize, src: usize, srcLen: u32, pair: HmacKey): bool {
  pair.mac(PAIR_MSG, pairMessage(carp, src, srcLen), DIGEST);
  const m = carp + CARP_HEADER_LEN + PAIR_MAC_OFF;
  let diff: u32 = 0;
  for (let i: usize = 0; i < 20; i++) diff |= <u32>load<u8>(DIGEST + i) ^ <u32>load<u8>(m + i);
  return diff == 0;
}

/**
 * True when the 20 HMAC bytes of the advert at `carp` match HMAC(key, 02 01 vhid VIPs counter), or, when
 * `linkLocal` (some IPv6 VIP is link-local), the same without the link-local VIPs, as OpenBSD also accepts.
 */
export function verifyAdvert(carp: usize, key: HmacKey, vips: StaticArray<u32>, vips6: StaticArray<u8>, linkLocal: bool): bool {
  if (hmacMatches(carp, key, vips, vips6, false)) return true;
  return linkLocal && hmacMatches(carp, key, vips, vips6, true);
}

function hmacMatches(carp: usize, key: HmacKey, vips: StaticArray<u32>, vips6: StaticArray<u8>, skipLinkLocal: bool): bool {
  const n = hmacMessage(load<u8>(carp, OFF_VHID), vips, vips6, skipLinkLocal, carp + OFF_COUNTER);
  key.mac(HMAC_MSG, n, DIGEST);
  // Compare every byte (no early exit), as the BSDs compare all 20.
  let diff: u32 = 0;
  for (let i: usize = 0; i < 20; i += 4) diff |= load<u32>(DIGEST + i) ^ load<u32>(carp + OFF_HMAC + i);
  return diff == 0;
}

// @ts-ignore: decorator
@inline export function advertCounterHi(carp: usize): u32 { return getU32(carp + OFF_COUNTER); }
