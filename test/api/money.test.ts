// SPEC §2.1 as a table: every accepted and rejected amount shape, per currency exponent,
// plus property tests that rendering and parsing are exact inverses over the whole range.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { AppError } from "../../src/http/errors.ts";
import {
  CURRENCIES,
  formatAmount,
  formatSignedAmount,
  getCurrency,
  isCurrency,
  MAX_MINOR_UNITS,
  parseAmount,
  parseLimit,
  parseSignedAmount,
} from "../../src/ledger/money.ts";

function rejection(fn: () => unknown): { field: string; code: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    const err = e as AppError;
    expect(err.status).toBe(400);
    expect(err.code).toBe("VALIDATION_ERROR");
    const f = err.fields?.[0];
    if (f === undefined) throw new Error("no field named");
    return { field: f.field, code: f.code };
  }
  throw new Error("expected a rejection");
}

describe("currency registry", () => {
  test.each<[string, string, number]>([
    ["USD", "fiat", 2],
    ["EUR", "fiat", 2],
    ["GBP", "fiat", 2],
    ["JPY", "fiat", 0],
    ["KWD", "fiat", 3],
    ["BTC", "crypto", 8],
    ["ETH", "crypto", 9],
    ["USDT", "crypto", 6],
    ["USDC", "crypto", 6],
  ])("%s is %s with exponent %d", (code, kind, exponent) => {
    expect(getCurrency(code) as unknown).toEqual({ code, kind, exponent });
    expect(isCurrency(code)).toBe(true);
  });

  test("codes are upper case, 3-5 letters", () => {
    for (const c of CURRENCIES) expect(c.code).toMatch(/^[A-Z]{3,5}$/);
  });

  test.each(["usd", "XXX", "", " USD", "US", null, 5])("%p is not a currency", (code) => {
    expect(isCurrency(code)).toBe(false);
    expect(rejection(() => getCurrency(code)).field).toBe("currency");
  });
});

describe("parseAmount accepts", () => {
  test.each([
    ["100.50", "USD", 10050n],
    ["100.5", "USD", 10050n],
    ["100", "USD", 10000n],
    ["0.01", "USD", 1n],
    ["007.10", "EUR", 710n],
    ["5", "JPY", 5n],
    ["1.234", "KWD", 1234n],
    ["0.00000001", "BTC", 1n],
    ["0.000000001", "ETH", 1n],
    ["1.000001", "USDT", 1000001n],
    ["92233720368547758.07", "USD", MAX_MINOR_UNITS],
    ["9223372036854775807", "JPY", MAX_MINOR_UNITS],
  ])("%s %s = %p minor units", (input, currency, minor) => {
    expect(parseAmount(input, currency)).toBe(minor);
  });
});

describe("parseAmount rejects, naming the field", () => {
  test.each([
    ["100.505", "USD", "too_many_decimals"],
    ["5.0", "JPY", "too_many_decimals"],
    ["1.0000", "KWD", "too_many_decimals"],
    ["0", "USD", "not_positive"],
    ["0.00", "USD", "not_positive"],
    ["-1.00", "USD", "format"],
    ["+1.00", "USD", "format"],
    ["1e5", "USD", "format"],
    ["1E2", "JPY", "format"],
    ["", "USD", "blank"],
    ["   ", "USD", "blank"],
    [" 1.00", "USD", "format"],
    ["1.00 ", "USD", "format"],
    ["1,00", "USD", "format"],
    [".5", "USD", "format"],
    ["5.", "USD", "format"],
    ["1.2.3", "USD", "format"],
    ["0x10", "USD", "format"],
    ["NaN", "USD", "format"],
    ["Infinity", "USD", "format"],
    ["١٢", "USD", "format"],
    ["1\u00001", "USD", "format"],
    ["1; DROP TABLE wallets", "USD", "format"],
    ["92233720368547758.08", "USD", "too_large"],
    ["9223372036854775808", "JPY", "too_large"],
    ["99999999999999999999999999999999999999999999", "USD", "too_large"],
  ])("%p %s → %s", (input, currency, code) => {
    expect(rejection(() => parseAmount(input, currency, "amount"))).toEqual({ field: "amount", code });
  });

  test.each([[100], [1.5], [null], [undefined], [true], [{}], [["1"]], [10n]])("non-string %p", (input) => {
    expect(rejection(() => parseAmount(input, "USD", "daily_limit"))).toEqual({
      field: "daily_limit",
      code: "type",
    });
  });

  test("unknown currency is a validation error on currency", () => {
    expect(rejection(() => parseAmount("1.00", "XYZ")).field).toBe("currency");
  });
});

describe("limits", () => {
  test("null means no limit, undefined means unchanged, zero is allowed", () => {
    expect(parseLimit(null, "USD", "daily_limit")).toBeNull();
    expect(parseLimit(undefined, "USD", "daily_limit")).toBeUndefined();
    expect(parseLimit("0", "USD", "daily_limit")).toBe(0n);
    expect(parseLimit("10.00", "USD", "daily_limit")).toBe(1000n);
    expect(rejection(() => parseLimit("-1", "USD", "monthly_limit")).field).toBe("monthly_limit");
    expect(rejection(() => parseLimit(5, "USD", "monthly_limit")).field).toBe("monthly_limit");
  });
});

describe("rendering", () => {
  test.each([
    [10050n, "USD", "100.50"],
    [1n, "USD", "0.01"],
    [0n, "USD", "0.00"],
    [5n, "JPY", "5"],
    [0n, "JPY", "0"],
    [1n, "KWD", "0.001"],
    [1n, "BTC", "0.00000001"],
    [123456789012n, "ETH", "123.456789012"],
    [MAX_MINOR_UNITS, "USD", "92233720368547758.07"],
  ])("%p %s → %s", (minor, currency, text) => {
    expect(formatAmount(minor, currency)).toBe(text);
  });

  test.each([
    [-150n, "USD", "-1.50"],
    [200n, "USD", "2.00"],
    [-5n, "JPY", "-5"],
    [-1n, "BTC", "-0.00000001"],
  ])("signed %p %s → %s", (minor, currency, text) => {
    expect(formatSignedAmount(minor, currency)).toBe(text);
  });

  test("formatAmount refuses negative amounts", () => {
    expect(() => formatAmount(-1n, "USD")).toThrow(RangeError);
  });
});

describe("properties", () => {
  const positive = fc.bigInt({ min: 1n, max: MAX_MINOR_UNITS });
  const currency = fc.constantFrom(...CURRENCIES.map((c) => c.code));

  test("parse(render(x)) = x for every positive amount in every currency", () => {
    fc.assert(
      fc.property(positive, currency, (x, c) => {
        const text = formatAmount(x, c);
        const exponent = getCurrency(c).exponent;
        // exactly `exponent` digits after the point
        expect(text.split(".")[1]?.length ?? 0).toBe(exponent);
        return parseAmount(text, c) === x;
      }),
      { numRuns: 3000 },
    );
  });

  test("signed render round-trips for every non-zero amount", () => {
    const signed = fc.oneof(
      positive,
      positive.map((x) => -x),
    );
    fc.assert(
      fc.property(signed, currency, (x, c) => parseSignedAmount(formatSignedAmount(x, c), c) === x),
      { numRuns: 3000 },
    );
  });

  test("anything with more decimals than the exponent is rejected", () => {
    fc.assert(
      fc.property(positive, currency, fc.integer({ min: 1, max: 9 }), (x, c, d) => {
        const text = `${formatAmount(x, c)}${getCurrency(c).exponent === 0 ? "." : ""}${String(d)}`;
        expect(() => parseAmount(text, c)).toThrow(AppError);
      }),
      { numRuns: 500 },
    );
  });
});
