// Exact money. Amounts travel as decimal strings in MAJOR units ("100.50") and live as bigint
// MINOR units (10050n). Parsing and rendering are pure string/bigint work: a float never
// touches an amount, so "0.1 + 0.2" problems cannot exist here.
import { invalidField } from "../http/errors.ts";

export type CurrencyKind = "fiat" | "crypto";
export type Currency = Readonly<{ code: string; kind: CurrencyKind; exponent: number }>;

/**
 * The currency registry (SPEC §2.1). ETH at gwei precision (9) is deliberate: 2^63−1 wei
 * would cap a wallet at ~9.2 ETH, gwei keeps amounts within bigint.
 */
export const CURRENCIES = Object.freeze([
  { code: "USD", kind: "fiat", exponent: 2 },
  { code: "EUR", kind: "fiat", exponent: 2 },
  { code: "GBP", kind: "fiat", exponent: 2 },
  { code: "JPY", kind: "fiat", exponent: 0 },
  { code: "KWD", kind: "fiat", exponent: 3 },
  { code: "BTC", kind: "crypto", exponent: 8 },
  { code: "ETH", kind: "crypto", exponent: 9 },
  { code: "USDT", kind: "crypto", exponent: 6 },
  { code: "USDC", kind: "crypto", exponent: 6 },
] as const satisfies readonly Currency[]);

export type CurrencyCode = (typeof CURRENCIES)[number]["code"];
export const CURRENCY_CODES: readonly CurrencyCode[] = CURRENCIES.map((c) => c.code);

const BY_CODE = new Map<string, Currency>(CURRENCIES.map((c) => [c.code, c]));

/** Largest amount in minor units: the PostgreSQL bigint maximum. */
export const MAX_MINOR_UNITS = 2n ** 63n - 1n;
/** Longest amount string looked at; anything longer cannot fit a bigint anyway. */
const MAX_AMOUNT_CHARS = 40;

export function isCurrency(code: unknown): code is CurrencyCode {
  return typeof code === "string" && BY_CODE.has(code);
}

/** The currency, or a 400 VALIDATION_ERROR on `field` (default `currency`). */
export function getCurrency(code: unknown, field = "currency"): Currency {
  if (typeof code !== "string") throw invalidField(field, "must be a currency code string", "type");
  const c = BY_CODE.get(code);
  if (c === undefined) {
    throw invalidField(
      field,
      `unsupported currency; supported: ${CURRENCY_CODES.join(", ")}`,
      "unsupported_currency",
    );
  }
  return c;
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses a positive decimal amount string in major units into minor units.
 * Rejects (400, naming `field`): non-strings, blanks or surrounding whitespace, signs,
 * exponent notation, more decimals than the currency allows, zero, and values above 2^63−1
 * minor units. An unknown currency is a validation error on `currency`.
 */
export function parseAmount(input: unknown, currency: string, field = "amount"): bigint {
  const minor = parseDecimal(input, currency, field);
  if (minor === 0n) throw invalidField(field, "must be greater than zero", "not_positive");
  return minor;
}

/**
 * Parses a limit (SPEC §2.3): an amount string, zero allowed (no outgoing money at all),
 * or null meaning "no limit". `undefined` is returned as undefined (field left unchanged).
 */
export function parseLimit(input: unknown, currency: string, field: string): bigint | null | undefined {
  if (input === undefined) return undefined;
  if (input === null) return null;
  return parseDecimal(input, currency, field);
}

function parseDecimal(input: unknown, currency: string, field: string): bigint {
  const { exponent } = getCurrency(currency);
  if (typeof input !== "string") {
    throw invalidField(field, 'must be a decimal string such as "100.50"', "type");
  }
  if (input.trim() === "") throw invalidField(field, "must not be blank", "blank");
  if (input !== input.trim()) throw invalidField(field, "must not contain surrounding whitespace", "format");
  if (input.length > MAX_AMOUNT_CHARS) throw invalidField(field, "is too large", "too_large");
  if (/^[+-]/.test(input)) {
    throw invalidField(
      field,
      input.startsWith("-") ? "must not be negative" : "must not carry a sign",
      "format",
    );
  }
  if (/[eE]/.test(input)) throw invalidField(field, "exponent notation is not accepted", "format");
  const m = DECIMAL.exec(input);
  if (m === null) throw invalidField(field, 'must be a decimal string such as "100.50"', "format");
  const whole = m[1] ?? "0";
  const frac = m[2] ?? "";
  if (frac.length > exponent) {
    throw invalidField(
      field,
      exponent === 0
        ? `${currency} takes no decimals`
        : `${currency} takes at most ${exponent} decimal${exponent === 1 ? "" : "s"}`,
      "too_many_decimals",
    );
  }
  const minor = BigInt(whole + frac.padEnd(exponent, "0"));
  if (minor > MAX_MINOR_UNITS) throw invalidField(field, "is too large", "too_large");
  return minor;
}

/** Renders non-negative minor units with exactly the currency's digits ("100.50", "5" for JPY). */
export function formatAmount(minor: bigint, currency: string): string {
  if (minor < 0n) throw new RangeError("formatAmount: negative amount; use formatSignedAmount");
  const { exponent } = getCurrency(currency);
  if (exponent === 0) return minor.toString();
  const digits = minor.toString().padStart(exponent + 1, "0");
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/** Renders signed minor units (ledger entries): "-1.50", "2.00". */
export function formatSignedAmount(minor: bigint, currency: string): string {
  return minor < 0n ? `-${formatAmount(-minor, currency)}` : formatAmount(minor, currency);
}

/** Parses what formatSignedAmount renders (tests, statements). Not for request input. */
export function parseSignedAmount(input: string, currency: string, field = "amount"): bigint {
  if (input.startsWith("-")) return -parseDecimal(input.slice(1), currency, field);
  return parseDecimal(input, currency, field);
}

/** A limit or null, rendered for responses. */
export function formatLimit(minor: bigint | null, currency: string): string | null {
  return minor === null ? null : formatAmount(minor, currency);
}
