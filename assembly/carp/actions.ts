// The core's output queue (quinn's poll_* contract): every decision becomes a fixed-size record the host
// drains with pollAction() after each handle*/mutator call. Records live in static memory; nothing is
// allocated per action.
import { ACT_NONE, STAT_QUEUE_OVERFLOW } from './constants';
import { bumpStat } from './stats';

export const RECORD_SIZE: u32 = 128;
const CAPACITY: u32 = 256;
// Record layout (u32 little-endian words unless noted):
export const A_TYPE: u32 = 0;
export const A_VHID: u32 = 4;
export const A_LINK: u32 = 8;
export const A_ARG0: u32 = 12;
export const A_ARG1: u32 = 16;
export const A_ARG2: u32 = 20;
export const A_LEN: u32 = 24; // payload length
export const A_PAYLOAD: u32 = 28; // up to 100 bytes (a CARP header and its pair trailer)

const RING = memory.data(RECORD_SIZE * CAPACITY, 16);
/** The record most recently returned by pollAction(); the host reads it from here. */
export const CURRENT = memory.data(RECORD_SIZE, 16);
let head: u32 = 0;
let tail: u32 = 0;

/** Reserve the next record and return its address (payload may be filled by the caller). */
export function push(type: u32, vhid: u32, link: u32, a0: u32, a1: u32, a2: u32): usize {
  if (tail - head >= CAPACITY) {
    // The host drains after every call, so this means a host bug; drop the oldest rather than trap.
    head++;
    bumpStat(STAT_QUEUE_OVERFLOW);
  }
  const r = RING + <usize>((tail % CAPACITY) * RECORD_SIZE);
  tail++;
  store<u32>(r, type, A_TYPE); store<u32>(r, vhid, A_VHID); store<u32>(r, link, A_LINK);
  store<u32>(r, a0, A_ARG0); store<u32>(r, a1, A_ARG1); store<u32>(r, a2, A_ARG2);
  store<u32>(r, 0, A_LEN);
  return r;
}

export function pop(): u32 {
  if (head == tail) return ACT_NONE;
  const r = RING + <usize>((head % CAPACITY) * RECORD_SIZE);
  head++;
  memory.copy(CURRENT, r, RECORD_SIZE);
  return load<u32>(CURRENT, A_TYPE);
}

export function clearQueue(): void { head = 0; tail = 0; }
