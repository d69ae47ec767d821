// Who the peer is, without clocks (docs/statesync.md "Sessions"). Pure: randomness and the monotonic time
// are inputs, so tests can start counters near their limits and restart a peer with any wall clock.
//
// Each process picks a random 64-bit session id. Ids are only compared for equality: "newer" has no meaning.
// A session the receiver does not know may be the peer's new incarnation or a replay of an old one's datagrams,
// which are authentic (same key). It becomes the peer only after it has echoed a fresh random challenge: a
// HELLO from the unknown session is answered by a HELLO with F_CHALLENGE and a nonce made for that session; its
// HELLO that echoes the nonce (and names our session) proves it runs now. Nonces are single-use and expire.
// Within the confirmed session, packet numbers are 64-bit and strictly increasing (a replay has an old one).
import { randomBytes } from 'node:crypto';

/** Outstanding challenges kept at once (the peer's new session, plus a few replays of old ones). */
const CHALLENGES_MAX = 8;
/** A challenge not answered within this long is forgotten (a late echo then needs a new one). */
export const CHALLENGE_TTL_MS = 5000;
/** Answers to unknown sessions, at most this many per second (a flood of replayed HELLOs costs that much). */
const CHALLENGES_PER_S = 100;
/** Largest packet number: the sender starts a new session rather than reuse a number. */
export const PN_MAX = 0xffff_ffff_ffff_ffffn;

export const random64 = (): bigint => {
  for (;;) { const v = randomBytes(8).readBigUInt64BE(0); if (v !== 0n) return v; }
};

/** RFC 1982 serial-number arithmetic on 32-bit sequence numbers: a < b (for |a - b| < 2^31). */
export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;

/**
 * Test hook: DUOGATE_STATESYNC_LINK_START="<first seq>:<first pn>" starts the link's counters near their limits
 * (both nodes need the same seq). Unset or empty: the defaults. Anything else is refused, not guessed.
 */
export function linkStartFromEnv(v: string | undefined): { initialSeq?: number; initialPn?: bigint } {
  if (!v) return {};
  const m = /^(\d+):(\d+)$/.exec(v);
  if (!m || Number(m[1]) > 0xffff_ffff || BigInt(m[2]) < 1n || BigInt(m[2]) > PN_MAX) {
    throw new Error(`DUOGATE_STATESYNC_LINK_START="${v}": expected "<seq 0..4294967295>:<pn 1..2^64-1>"; unset it to use the defaults`);
  }
  return { initialSeq: Number(m[1]), initialPn: BigInt(m[2]) };
}

export interface SessionOptions {
  /** Source of ids and nonces (random64 by default). */
  rand?: () => bigint;
  /** First packet number sent (1 by default). */
  initialPn?: bigint;
}

/** What the receiver does with an authenticated datagram, decided from its session fields. */
export type Verdict =
  /** From the confirmed peer session, fresh packet number: process it. */
  | { kind: 'ok' }
  /** An unknown session echoed our challenge: it is the peer now (restart or first contact). */
  | { kind: 'confirmed'; first: boolean }
  /** An unknown session said HELLO: answer with this challenge (a HELLO with F_CHALLENGE, nonce, echo). */
  | { kind: 'challenge'; to: bigint; nonce: bigint; echo: bigint }
  | { kind: 'drop'; why: 'replay' | 'unknown_session' | 'challenge_limit' };

export class Sessions {
  /** Our incarnation. Changes only when the packet numbers run out (never in practice) or on restart. */
  session: bigint;
  /** The confirmed peer incarnation (0n = none yet). */
  peer = 0n;
  /** The peer has confirmed us: it sent an ACK or DATA naming our session (those go only to a confirmed peer). */
  peerKnowsUs = false;
  private pn: bigint;
  private peerPn = 0n;
  private readonly rand: () => bigint;
  private challenges = new Map<bigint, { nonce: bigint; at: number }>();
  private budget = CHALLENGES_PER_S;
  private budgetAt = 0;

  constructor(o: SessionOptions = {}) {
    this.rand = o.rand ?? random64;
    this.session = this.rand();
    this.pn = o.initialPn ?? 1n;
  }

  peekPn(): bigint { return this.pn; }

  /** The packet number for the next datagram. At PN_MAX, a new session starts (the peer treats it as a restart). */
  nextPn(): bigint {
    if (this.pn >= PN_MAX) this.renew();
    return this.pn++;
  }

  /** Start a new incarnation: the peer confirms it like a restart (and serves it a bulk if it asks). */
  renew(): void { this.session = this.rand(); this.pn = 1n; this.peerKnowsUs = false; }

  /**
   * Classify an authenticated datagram. `hello`: its type is HELLO; `nonce`/`echo` come from a HELLO's payload
   * (0n otherwise); `challenge`: it carries F_CHALLENGE; `now` is monotonic ms (only ages challenges).
   */
  receive(h: { session: bigint; peerSession: bigint; pn: bigint }, hello: { nonce: bigint; echo: bigint; challenge: boolean } | null, now: number): Verdict {
    if (this.peer !== 0n && h.session === this.peer) {
      if (h.pn <= this.peerPn) return { kind: 'drop', why: 'replay' };
      this.peerPn = h.pn;
      if (h.peerSession === this.session && !hello) this.peerKnowsUs = true;
      return { kind: 'ok' };
    }
    // Unknown session: only a HELLO can start one; anything else is a replay or meant for a dead incarnation.
    // 0 is never a session (it means "not yet" in the peer session field).
    if (!hello || h.session === 0n) return { kind: 'drop', why: 'unknown_session' };
    const c = this.challenges.get(h.session);
    if (c && now - c.at <= CHALLENGE_TTL_MS && hello.echo === c.nonce && h.peerSession === this.session) {
      const first = this.peer === 0n;
      this.peer = h.session;
      this.peerPn = h.pn;
      this.peerKnowsUs = false;
      // Single use: an echo captured now is worthless later, and so is any other pending challenge.
      this.challenges.clear();
      return { kind: 'confirmed', first };
    }
    if (!this.spend(now)) return { kind: 'drop', why: 'challenge_limit' };
    let nonce = c && now - c.at <= CHALLENGE_TTL_MS ? c.nonce : 0n;
    if (!nonce) {
      nonce = this.rand();
      for (const [k, v] of this.challenges) if (now - v.at > CHALLENGE_TTL_MS) this.challenges.delete(k);
      if (this.challenges.size >= CHALLENGES_MAX) this.challenges.delete(this.challenges.keys().next().value!);
      this.challenges.set(h.session, { nonce, at: now });
    }
    return { kind: 'challenge', to: h.session, nonce, echo: hello.nonce };
  }

  private spend(now: number): boolean {
    if (now - this.budgetAt >= 1000) { this.budget = CHALLENGES_PER_S; this.budgetAt = now; }
    if (this.budget <= 0) return false;
    this.budget--;
    return true;
  }
}
