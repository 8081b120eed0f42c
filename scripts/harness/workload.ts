// The seeded workload: wallets to create and fund, then a list of money operations that is a
// pure function of (seed, wallet count, op count). Same seed → same requests, same keys, same
// bodies; outcomes may differ (they depend on timing), which the checker accounts for by
// holding the database to what the service acknowledged, not to a precomputed result.
import { formatAmount } from "../../src/ledger/money.ts";
import { createRng, type Rng } from "./rng.ts";

/** Currencies used, with a scale so BTC amounts are not all dust. */
export const WORKLOAD_CURRENCIES = [
  { code: "USD", scale: 1n },
  { code: "EUR", scale: 1n },
  { code: "JPY", scale: 1n },
  { code: "BTC", scale: 100n },
] as const;
/** Each wallet starts with this many (scaled) minor units; ops move 1..MAX_OP_UNITS. */
export const FUNDING_UNITS = 2_000_000n;
export const MAX_OP_UNITS = 5_000;
/** A few wallets per currency receive a large share of the traffic in skewed phases. */
export const HOT_WALLETS_PER_CURRENCY = 2;
/** Uniform and skewed traffic alternate in blocks of this many ops. */
export const PHASE_BLOCK_OPS = 500;
export const SKEWED_HOT_SHARE = 0.8;
/** Share of debits/transfers/holds asking for more than any wallet holds: stored rejections. */
export const OVERDRAW_SHARE = 0.03;

export type WalletSpec = { index: number; userIndex: number; currency: string; scale: bigint };

export type HoldFollowUp =
  | { action: "complete" }
  | { action: "partial"; capture: bigint }
  | { action: "cancel" }
  /** created with the shortest expiry: the service's sweeper cancels it (HOLD_SWEEP_SECONDS) */
  | { action: "expire" }
  | { action: "leave" };

/** SPEC §2.4: the shortest hold expiry a client may ask for. */
export const SHORTEST_HOLD_EXPIRY_SECONDS = 60;

export type Op =
  | { i: number; kind: "credit"; w: number; amount: bigint }
  | { i: number; kind: "debit"; w: number; amount: bigint; byOwner: boolean }
  | { i: number; kind: "transfer"; w: number; to: number; amount: bigint; byOwner: boolean }
  | { i: number; kind: "hold"; w: number; amount: bigint; followUp: HoldFollowUp; byOwner: boolean };

export type Workload = {
  seed: number;
  users: number;
  wallets: WalletSpec[];
  /** wallet indices per currency (first HOT_WALLETS_PER_CURRENCY are hot) */
  byCurrency: Map<string, number[]>;
  opAt: (i: number) => Op;
  keyOf: (i: number, part?: string) => string;
};

/**
 * `users` users, each with one wallet per currency in WORKLOAD_CURRENCIES. Ops are generated
 * lazily from a per-op PRNG (seed ⊕ index), so any op can be regenerated alone for a replay.
 */
export function createWorkload(seed: number, users: number): Workload {
  const wallets: WalletSpec[] = [];
  const byCurrency = new Map<string, number[]>();
  for (let u = 0; u < users; u++) {
    for (const c of WORKLOAD_CURRENCIES) {
      const index = wallets.length;
      wallets.push({ index, userIndex: u, currency: c.code, scale: c.scale });
      const list = byCurrency.get(c.code) ?? [];
      list.push(index);
      byCurrency.set(c.code, list);
    }
  }
  const currencies = WORKLOAD_CURRENCIES.map((c) => c.code);
  const pickWallet = (rng: Rng, currency: string, skewed: boolean, avoid?: number): number => {
    const list = byCurrency.get(currency)!;
    for (;;) {
      const hot = skewed && rng.chance(SKEWED_HOT_SHARE);
      const w = hot ? list[rng.int(0, Math.min(HOT_WALLETS_PER_CURRENCY, list.length) - 1)]! : rng.pick(list);
      if (w !== avoid) return w;
    }
  };
  const opAt = (i: number): Op => {
    const rng = createRng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const skewed = Math.floor(i / PHASE_BLOCK_OPS) % 2 === 1;
    const currency = rng.pick(currencies);
    const scale = WORKLOAD_CURRENCIES.find((c) => c.code === currency)!.scale;
    const w = pickWallet(rng, currency, skewed);
    const roll = rng.next();
    const overdraw = roll >= 0.2 && rng.chance(OVERDRAW_SHARE);
    const amount = overdraw ? FUNDING_UNITS * scale * 1000n : BigInt(rng.int(1, MAX_OP_UNITS)) * scale;
    if (roll < 0.2) return { i, kind: "credit", w, amount };
    // Half of what an owner may do is sent with the owner's own token (its own idempotency
    // scope and ownership checks), the rest by the admin.
    const byOwner = (i & 1) === 0;
    if (roll < 0.4) return { i, kind: "debit", w, amount, byOwner };
    if (roll < 0.8) {
      return { i, kind: "transfer", w, to: pickWallet(rng, currency, skewed, w), amount, byOwner };
    }
    const f = rng.next();
    const followUp: HoldFollowUp =
      f < 0.4
        ? { action: "complete" }
        : f < 0.6 && amount > 1n
          ? { action: "partial", capture: BigInt(rng.int(1, Number(amount) - 1)) }
          : f < 0.9
            ? { action: "cancel" }
            : f < 0.95
              ? { action: "expire" }
              : { action: "leave" };
    return { i, kind: "hold", w, amount, followUp, byOwner };
  };
  return { seed, users, wallets, byCurrency, opAt, keyOf: (i, part = "") => `s${seed}-op${i}${part}` };
}

export const amountString = (minor: bigint, currency: string) => formatAmount(minor, currency);
