// CARP advertisement wire codec (carp.md §1.3, §2.2). Parsing reads in place from the rx buffer;
// building writes the 36-byte header the kernel sends behind its own IPv4 header.
import { getU32, putU16, putU32, putU64 } from '../util/bytes';
import { inetChecksum } from '../util/checksum';
import { HmacKey } from '../crypto/hmac';
import {
  CARP_AUTHLEN, CARP_HEADER_LEN, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, PAIR_MAC_OFF, PAIR_MAGIC0, PAIR_MAGIC1,
  PAIR_TRAILER_LEN, PAIR_VERSION,
} from './constants';

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

const HMAC_MSG = memory.data(3 + 4 * 64 + 8, 16);
const DIGEST = memory.data(20, 16);
// Pair MAC input: source address, the 36-byte header with a zero checksum, the trailer's first 4 bytes.
const PAIR_MSG_LEN: u32 = 4 + CARP_HEADER_LEN + PAIR_MAC_OFF;
const PAIR_MSG = memory.data(PAIR_MSG_LEN, 16);

/**
 * Lay out the HMAC input: 02 01 vhid, the IPv4 VIPs ascending (4 bytes each, network order), the 8 counter
 * bytes as on the wire. `vips` must already be sorted ascending. Returns the message length.
 */
function hmacMessage(vhid: u8, vips: StaticArray<u32>, counterPtr: usize): u32 {
  store<u8>(HMAC_MSG, 2); store<u8>(HMAC_MSG, 1, 1); store<u8>(HMAC_MSG, vhid, 2);
  let p: usize = HMAC_MSG + 3;
  for (let i = 0; i < vips.length; i++) { putU32(p, unchecked(vips[i])); p += 4; }
  memory.copy(p, counterPtr, 8);
  return <u32>(p + 8 - HMAC_MSG);
}

/**
 * Build an advert at `out`: fields, counter, HMAC, then (with a `pair` key) the pair trailer signed for `src`,
 * and the checksum over all of it. Returns its length: 36, or 36 + PAIR_TRAILER_LEN.
 */
export function buildAdvert(out: usize, vhid: u8, advskew: u8, demote: u8, advbase: u8, counter: u64,
  key: HmacKey, vips: StaticArray<u32>, pair: HmacKey | null = null, src: u32 = 0): u32 {
  store<u8>(out, (CARP_VERSION << 4) | CARP_TYPE_ADVERTISEMENT, OFF_VERSION_TYPE);
  store<u8>(out, vhid, OFF_VHID);
  store<u8>(out, advskew, OFF_ADVSKEW);
  store<u8>(out, CARP_AUTHLEN, OFF_AUTHLEN);
  store<u8>(out, demote, OFF_DEMOTE);
  store<u8>(out, advbase, OFF_ADVBASE);
  putU16(out + OFF_CHECKSUM, 0);
  putU64(out + OFF_COUNTER, counter);
  const n = hmacMessage(vhid, vips, out + OFF_COUNTER);
  key.mac(HMAC_MSG, n, out + OFF_HMAC);
  let len = CARP_HEADER_LEN;
  if (pair != null) {
    const t = out + CARP_HEADER_LEN;
    store<u8>(t, PAIR_MAGIC0); store<u8>(t, PAIR_MAGIC1, 1); store<u8>(t, PAIR_VERSION, 2); store<u8>(t, 0, 3);
    pair.mac(pairMessage(out, src), PAIR_MSG_LEN, t + PAIR_MAC_OFF);
    len += PAIR_TRAILER_LEN;
  }
  putU16(out + OFF_CHECKSUM, inetChecksum(out, len));
  return len;
}

/** Lay out the pair MAC input for the advert at `carp` (trailer included) from `src`. */
function pairMessage(carp: usize, src: u32): usize {
  putU32(PAIR_MSG, src);
  memory.copy(PAIR_MSG + 4, carp, CARP_HEADER_LEN);
  store<u16>(PAIR_MSG + 4 + OFF_CHECKSUM, 0);
  memory.copy(PAIR_MSG + 4 + CARP_HEADER_LEN, carp + CARP_HEADER_LEN, PAIR_MAC_OFF);
  return PAIR_MSG;
}

/** True when the advert at `carp` (`len` payload bytes) carries a pair trailer of the version we speak. */
export function hasPairTrailer(carp: usize, len: u32): bool {
  if (len < CARP_HEADER_LEN + PAIR_TRAILER_LEN) return false;
  const t = carp + CARP_HEADER_LEN;
  return load<u8>(t) == PAIR_MAGIC0 && load<u8>(t, 1) == PAIR_MAGIC1 && load<u8>(t, 2) == PAIR_VERSION;
}

/** True when the trailer's MAC covers this header and trailer as sent from `src` (constant-time compare). */
export function verifyPair(carp: usize, src: u32, pair: HmacKey): bool {
  pair.mac(pairMessage(carp, src), PAIR_MSG_LEN, DIGEST);
  const m = carp + CARP_HEADER_LEN + PAIR_MAC_OFF;
  let diff: u32 = 0;
  for (let i: usize = 0; i < 20; i++) diff |= <u32>load<u8>(DIGEST + i) ^ <u32>load<u8>(m + i);
  return diff == 0;
}

/** True when the 20 HMAC bytes of the advert at `carp` match HMAC(key, 02 01 vhid VIPs counter). */
export function verifyAdvert(carp: usize, key: HmacKey, vips: StaticArray<u32>): bool {
  const n = hmacMessage(load<u8>(carp, OFF_VHID), vips, carp + OFF_COUNTER);
  key.mac(HMAC_MSG, n, DIGEST);
  // Compare every byte (no early exit), as the BSDs compare all 20.
  let diff: u32 = 0;
  for (let i: usize = 0; i < 20; i += 4) diff |= load<u32>(DIGEST + i) ^ load<u32>(carp + OFF_HMAC + i);
  return diff == 0;
}

// @ts-ignore: decorator
@inline export function advertCounterHi(carp: usize): u32 { return getU32(carp + OFF_COUNTER); }
