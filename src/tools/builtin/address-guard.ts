/**
 * Which IP addresses `web_fetch` may connect to: only public unicast ones, so that a model cannot
 * use the farm to reach its loopback services, the private network or the cloud metadata
 * endpoint (169.254.169.254).
 *
 * Invariants:
 * - `classifyAddress` takes an IP literal (v4 or v6, brackets and zone ids tolerated) and names
 *   the first special-purpose range it falls in, or "public"; anything that does not parse is
 *   "invalid", which callers refuse like any other non-public class;
 * - IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
 *   NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are classified by the IPv4 address they carry,
 *   because that is where the packets end up;
 * - the guard is applied to resolved addresses at connect time (see web-fetch.ts), never to
 *   host names, so DNS answers cannot smuggle a private address past it.
 */
import { isIP } from "node:net";

export type AddressClass =
  | "public"
  | "loopback"
  | "unspecified"
  | "private"
  | "link-local"
  | "shared"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "invalid";

/** How each class reads in a refusal ("127.0.0.1 is a loopback address"). */
const CLASS_PHRASES: Readonly<Record<Exclude<AddressClass, "public">, string>> = {
  loopback: "a loopback address",
  unspecified: "an unspecified address",
  private: "a private address",
  "link-local": "a link-local address",
  shared: "a shared (carrier-grade NAT) address",
  multicast: "a multicast address",
  broadcast: "a broadcast address",
  reserved: "a reserved (non-routable) address",
  invalid: "not a valid IP address",
};

type RuleSpec = readonly [prefix: string, bits: number, cls: AddressClass];

interface Rule {
  prefix: bigint;
  bits: number;
  cls: AddressClass;
}

/** First match wins; more specific ranges come before the ones that contain them. */
const IPV4_RULE_SPECS: readonly RuleSpec[] = [
  ["255.255.255.255", 32, "broadcast"],
  ["0.0.0.0", 32, "unspecified"],
  ["0.0.0.0", 8, "reserved"], // "this network"
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"], // IETF protocol assignments
  ["192.0.2.0", 24, "reserved"], // documentation
  ["192.88.99.0", 24, "reserved"], // deprecated 6to4 relay anycast
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "reserved"], // benchmarking
  ["198.51.100.0", 24, "reserved"], // documentation
  ["203.0.113.0", 24, "reserved"], // documentation
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

const IPV6_RULE_SPECS: readonly RuleSpec[] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["100::", 64, "reserved"], // discard-only
  ["2001:db8::", 32, "reserved"], // documentation
  ["fc00::", 7, "private"], // unique local
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "private"], // deprecated site-local
  ["ff00::", 8, "multicast"],
];

const IPV4_BITS = 32n;
const IPV6_BITS = 128n;
const GROUP_BITS = 16n;
const IPV6_GROUPS = 8;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

/** The 128-bit value of an IPv6 literal (`::` and a trailing dotted quad allowed). */
function parseIPv6(text: string): bigint | undefined {
  let hex = text;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    // "::ffff:1.2.3.4" → "::ffff:102:304": the dotted quad is just the last two groups.
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    hex = `${text.slice(0, lastColon + 1)}${(v4 >> GROUP_BITS).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = hex.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = toGroups(halves[0] as string);
  const tail = halves.length === 2 ? toGroups(halves[1] as string) : [];
  const written = head.length + tail.length;
  if (halves.length === 1 ? written !== IPV6_GROUPS : written >= IPV6_GROUPS) return undefined;
  let value = 0n;
  for (const group of [...head, ...Array<string>(IPV6_GROUPS - written).fill("0"), ...tail]) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << GROUP_BITS) | BigInt(`0x${group}`);
  }
  return value;
}

function compile(specs: readonly RuleSpec[], parse: (text: string) => bigint | undefined): Rule[] {
  return specs.map(([prefix, bits, cls]) => ({ prefix: parse(prefix) as bigint, bits, cls }));
}

const IPV4_RULES = compile(IPV4_RULE_SPECS, parseIPv4);
const IPV6_RULES = compile(IPV6_RULE_SPECS, parseIPv6);

function classifyIn(value: bigint, width: bigint, rules: readonly Rule[]): AddressClass {
  for (const { prefix, bits, cls } of rules) {
    const shift = width - BigInt(bits);
    if (value >> shift === prefix >> shift) return cls;
  }
  return "public";
}

/** The IPv4 address an IPv6 address carries to the IPv4 internet, if it is such a form. */
function embeddedIPv4(value: bigint): bigint | undefined {
  const low32 = value & 0xffffffffn;
  const high96 = value >> IPV4_BITS;
  if (high96 === 0xffffn) return low32; // ::ffff:a.b.c.d (mapped)
  if (high96 === 0n && value > 1n) return low32; // ::a.b.c.d (compatible, deprecated)
  if (high96 === 0x64ff9b0000000000000000n) return low32; // 64:ff9b::/96 (NAT64)
  if (value >> (IPV6_BITS - GROUP_BITS) === 0x2002n) return (value >> 80n) & 0xffffffffn; // 6to4
  return undefined;
}

/** The special-purpose range `ip` falls in, or "public". */
export function classifyAddress(ip: string): AddressClass {
  let text = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  const version = isIP(text);
  if (version === 4) return classifyIn(parseIPv4(text) as bigint, IPV4_BITS, IPV4_RULES);
  if (version !== 6) return "invalid";
  const value = parseIPv6(text);
  if (value === undefined) return "invalid";
  const v4 = embeddedIPv4(value);
  if (v4 !== undefined) return classifyIn(v4, IPV4_BITS, IPV4_RULES);
  return classifyIn(value, IPV6_BITS, IPV6_RULES);
}

/**
 * Why `ip` is no place for `web_fetch` to connect to, as a phrase ("a loopback address"), or
 * undefined for a public address.
 */
export function nonPublicReason(ip: string): string | undefined {
  const cls = classifyAddress(ip);
  return cls === "public" ? undefined : CLASS_PHRASES[cls];
}
