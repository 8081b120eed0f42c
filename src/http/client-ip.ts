// Who is on the other end of a request. Forwarding headers are written by whoever sends them,
// so they are believed only when the socket peer is one of our own proxies (TRUSTED_PROXIES);
// then the chain is read right to left and the first hop that is not a trusted proxy is the
// client. Anything a client writes further left is ignored, so spoofing changes nothing.

export type IpFamily = 4 | 6;
export type ParsedIp = { family: IpFamily; bytes: Uint8Array };
type Cidr = { family: IpFamily; bytes: Uint8Array; prefix: number };

/** A client cannot make us walk an unbounded header. */
export const MAX_FORWARDED_HOPS = 32;

/** Parses an IPv4 or IPv6 address (brackets, zone ids and IPv4-mapped IPv6 accepted). */
export function parseIp(input: string): ParsedIp | null {
  let s = input.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const v4 = parseIpv4(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(s);
  if (!v6) return null;
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket: treat it as IPv4 so
  // one CIDR entry covers both spellings.
  if (v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    return { family: 4, bytes: v6.slice(12) };
  }
  return { family: 6, bytes: v6 };
}

function parseIpv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith("0"))) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length > 45) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const pushAll = (list: string[], isLast: boolean): boolean => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (isLast && i === list.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (!v4) return false;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      words.push(Number.parseInt(g, 16));
    }
    return true;
  };
  const bytes = new Uint8Array(16);
  if (halves.length === 1) {
    if (!pushAll(head, true) || words.length !== 8) return null;
  } else {
    if (!pushAll(head, false)) return null;
    const headLen = words.length;
    if (!pushAll(tail, true)) return null;
    const tailWords = words.splice(headLen);
    if (headLen + tailWords.length > 7) return null;
    while (words.length < 8 - tailWords.length) words.push(0);
    words.push(...tailWords);
  }
  for (let i = 0; i < 8; i++) {
    bytes[i * 2] = words[i]! >> 8;
    bytes[i * 2 + 1] = words[i]! & 0xff;
  }
  return bytes;
}

/** Canonical text: dotted IPv4, or lowercase IPv6 with the longest zero run compressed. */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

export function parseCidr(input: string): Cidr | null {
  const [addr, bits, ...rest] = input.trim().split("/");
  if (addr === undefined || rest.length > 0) return null;
  const ip = parseIp(addr);
  if (!ip) return null;
  // An IPv4-mapped entry (::ffff:10.0.0.0/104) is stored as IPv4, so its prefix shifts too.
  const mapped = ip.family === 4 && addr.includes(":");
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (bits !== undefined) {
    if (!/^\d{1,3}$/.test(bits)) return null;
    prefix = Number(bits) - (mapped ? 96 : 0);
    if (prefix < 0 || prefix > max) return null;
  }
  return { family: ip.family, bytes: ip.bytes, prefix };
}

function inCidr(ip: ParsedIp, c: Cidr): boolean {
  if (ip.family !== c.family) return false;
  const full = Math.floor(c.prefix / 8);
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== c.bytes[i]) return false;
  const rem = c.prefix % 8;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (ip.bytes[full]! & mask) === (c.bytes[full]! & mask);
}

export type TrustMatcher = (ip: ParsedIp) => boolean;

/** Builds a matcher over a CIDR list; throws on an entry that is not an address or CIDR. */
export function createTrustMatcher(list: readonly string[]): TrustMatcher {
  const cidrs = list.map((entry) => {
    const c = parseCidr(entry);
    if (!c) throw new Error(`TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR`);
    return c;
  });
  if (cidrs.length === 0) return () => false;
  return (ip) => cidrs.some((c) => inCidr(ip, c));
}

/** Strips an optional port and quotes from one `for=` value or X-Forwarded-For entry. */
function parseHop(raw: string): ParsedIp | null {
  let s = raw.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) s = s.slice(1, -1).trim();
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    return end < 0 ? null : parseIp(s.slice(1, end));
  }
  // One colon: IPv4 with a port. More: a bare IPv6 address.
  if (s.split(":").length === 2) s = s.slice(0, s.indexOf(":"));
  return parseIp(s);
}

/** `for=` values of an RFC 7239 Forwarded header, left to right. */
function forwardedFor(header: string): string[] {
  const hops: string[] = [];
  for (const element of header.split(",")) {
    for (const pair of element.split(";")) {
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === "for") hops.push(pair.slice(eq + 1));
    }
  }
  return hops;
}

/**
 * The client address for a request. `peer` is the socket address. X-Forwarded-For is read
 * first (what nginx, cloud load balancers and ingress controllers write); the Forwarded
 * header only when X-Forwarded-For is absent. Returns null when the peer is unknown.
 */
export function resolveClientIp(
  peer: string | null | undefined,
  headers: Headers,
  isTrusted: TrustMatcher,
): ParsedIp | null {
  const peerIp = peer ? parseIp(peer) : null;
  if (!peerIp || !isTrusted(peerIp)) return peerIp;
  const xff = headers.get("x-forwarded-for");
  const fwd = xff === null ? headers.get("forwarded") : null;
  const raw = xff !== null ? xff.split(",") : fwd !== null ? forwardedFor(fwd) : [];
  const hops = raw.slice(-MAX_FORWARDED_HOPS);
  let client = peerIp;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseHop(hops[i]!);
    // A hop we cannot read (garbage, "unknown", an obfuscated name) ends the walk: the last
    // address we could vouch for stands.
    if (!hop) return client;
    client = hop;
    if (!isTrusted(hop)) return hop;
  }
  return client;
}

/**
 * The rate-limit identity of an address. IPv6 clients usually own a whole /64, so one
 * address per request would dodge the limit: they are grouped by their /64.
 */
export function ipRateKey(ip: ParsedIp | null): string {
  if (!ip) return "unknown";
  if (ip.family === 4) return formatIp(ip);
  const net = new Uint8Array(16);
  net.set(ip.bytes.slice(0, 8));
  return `${formatIp({ family: 6, bytes: net })}/64`;
}
