import { describe, expect, test } from "bun:test";
import {
  createTrustMatcher,
  formatIp,
  ipRateKey,
  parseCidr,
  parseIp,
  resolveClientIp,
} from "../../src/http/client-ip.ts";

const fmt = (s: string) => {
  const ip = parseIp(s);
  return ip ? formatIp(ip) : null;
};

describe("parseIp / formatIp", () => {
  test.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::FFFF:10.1.2.3", "10.1.2.3"],
    ["::1", "::1"],
    ["[2001:db8::1]", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["fe80::1%eth0", "fe80::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::", "::"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ])("%s → %s", (input, want) => {
    expect(fmt(input)).toBe(want);
  });

  test.each([
    "",
    "256.0.0.1",
    "1.2.3",
    "01.2.3.4",
    "1.2.3.4.5",
    "unknown",
    "_hidden",
    "2001:db8::1::2",
    "1:2:3:4:5:6:7:8:9",
    "12345::",
    "1.2.3.4; DROP TABLE",
    "g::1",
  ])("rejects %p", (input) => {
    expect(parseIp(input)).toBeNull();
  });
});

describe("CIDR matching", () => {
  const cases: [string[], string, boolean][] = [
    [["10.0.0.0/8"], "10.200.3.4", true],
    [["10.0.0.0/8"], "11.0.0.1", false],
    [["10.0.0.0/8"], "::ffff:10.9.9.9", true],
    [["192.168.1.0/25"], "192.168.1.127", true],
    [["192.168.1.0/25"], "192.168.1.128", false],
    [["127.0.0.1"], "127.0.0.1", true],
    [["127.0.0.1"], "127.0.0.2", false],
    [["0.0.0.0/0"], "8.8.8.8", true],
    [["0.0.0.0/0"], "::1", false],
    [["2001:db8::/32"], "2001:db8:ffff::1", true],
    [["2001:db8::/32"], "2001:db9::1", false],
    [["::1"], "::1", true],
    [["::1/128"], "127.0.0.1", false],
    [["fd00::/8", "172.16.0.0/12"], "172.31.255.255", true],
    [["fd00::/8", "172.16.0.0/12"], "172.32.0.0", false],
    [["::ffff:10.0.0.0/104"], "10.1.1.1", true],
    [[], "127.0.0.1", false],
  ];
  test.each(cases)("%p contains %s → %p", (list, ip, want) => {
    expect(createTrustMatcher(list)(parseIp(ip)!)).toBe(want);
  });

  test.each(["10.0.0.0/33", "::/129", "nope", "10.0.0.0/8/8", "10.0.0.0/x"])("rejects %p", (c) => {
    expect(parseCidr(c)).toBeNull();
    expect(() => createTrustMatcher([c])).toThrow("TRUSTED_PROXIES");
  });
});

describe("resolveClientIp", () => {
  const trustLocal = createTrustMatcher(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
  const noTrust = createTrustMatcher([]);
  const resolve = (peer: string | null, headers: Record<string, string>, trust = trustLocal) => {
    const ip = resolveClientIp(peer, new Headers(headers), trust);
    return ip ? formatIp(ip) : null;
  };

  test("untrusted peer: forwarding headers are ignored (spoofing changes nothing)", () => {
    expect(resolve("203.0.113.9", { "x-forwarded-for": "1.1.1.1" })).toBe("203.0.113.9");
    expect(resolve("203.0.113.9", { forwarded: "for=1.1.1.1" })).toBe("203.0.113.9");
    expect(resolve("127.0.0.1", { "x-forwarded-for": "1.1.1.1" }, noTrust)).toBe("127.0.0.1");
  });

  test("trusted peer: right-most untrusted hop of X-Forwarded-For", () => {
    expect(resolve("127.0.0.1", { "x-forwarded-for": "198.51.100.7" })).toBe("198.51.100.7");
    // The client prepended a fake address; our proxies appended the real one on the right.
    expect(resolve("127.0.0.1", { "x-forwarded-for": "1.1.1.1, 198.51.100.7, 10.0.0.5" })).toBe(
      "198.51.100.7",
    );
    expect(resolve("::ffff:127.0.0.1", { "x-forwarded-for": "198.51.100.7" })).toBe("198.51.100.7");
  });

  test("trusted peer: garbage right of the client stops the walk at the last known address", () => {
    expect(resolve("10.0.0.1", { "x-forwarded-for": "198.51.100.7, not-an-ip" })).toBe("10.0.0.1");
    expect(resolve("10.0.0.1", { "x-forwarded-for": "" })).toBe("10.0.0.1");
  });

  test("all hops trusted: the left-most one", () => {
    expect(resolve("10.0.0.1", { "x-forwarded-for": "10.0.0.3, 10.0.0.2" })).toBe("10.0.0.3");
  });

  test("Forwarded header (RFC 7239) with ports, quotes and IPv6", () => {
    expect(resolve("10.0.0.1", { forwarded: 'for="[2001:db8::7]:4711";proto=https' })).toBe("2001:db8::7");
    expect(resolve("10.0.0.1", { forwarded: "for=192.0.2.60:8080, for=10.0.0.2" })).toBe("192.0.2.60");
    expect(resolve("10.0.0.1", { forwarded: "for=unknown" })).toBe("10.0.0.1");
    expect(resolve("10.0.0.1", { forwarded: "by=10.0.0.9;for=192.0.2.61" })).toBe("192.0.2.61");
  });

  test("X-Forwarded-For wins over Forwarded (a client cannot add a Forwarded a proxy passes through)", () => {
    expect(resolve("10.0.0.1", { "x-forwarded-for": "192.0.2.1", forwarded: "for=192.0.2.2" })).toBe(
      "192.0.2.1",
    );
  });

  test("unknown peer stays unknown", () => {
    expect(resolve(null, { "x-forwarded-for": "1.1.1.1" })).toBeNull();
  });

  test("a huge header is cut to the last hops", () => {
    const many = Array.from({ length: 10_000 }, () => "10.0.0.9").join(",");
    expect(resolve("10.0.0.1", { "x-forwarded-for": `8.8.8.8, ${many}` })).toBe("10.0.0.9");
  });
});

describe("ipRateKey", () => {
  test("IPv4 per address, IPv6 per /64, unknown as one bucket", () => {
    expect(ipRateKey(parseIp("192.0.2.1"))).toBe("192.0.2.1");
    expect(ipRateKey(parseIp("2001:db8:1:2:aaaa::1"))).toBe("2001:db8:1:2::/64");
    expect(ipRateKey(parseIp("2001:db8:1:2:bbbb::9"))).toBe("2001:db8:1:2::/64");
    expect(ipRateKey(null)).toBe("unknown");
  });
});
