// k8s-rules.ts — the API server's field rules (k8s.io/apimachinery util/validation and api/validate/content), with
// their exact messages, and field.Error's wording. Wording matches Kubernetes 1.35 and later.
import net from 'node:net';

export const PORT_RANGE_MSG = 'must be between 1 and 65535, inclusive';

/** maxLenError is content.MaxLenError. */
export const maxLenError = (n: number) => `must be no more than ${n} bytes`;
const EMPTY = 'must be non-empty';

/** regexError is content.RegexError: the rule, its examples and its regex, in Go's punctuation. */
export function regexError(msg: string, re: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${re}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${re}')`;
}

const byteLength = (s: string) => Buffer.byteLength(s);

export function isValidPortNum(n: number): string[] {
  return n >= 1 && n <= 65535 ? [] : [PORT_RANGE_MSG];
}

/** isValidPortName is IANA_SVC_NAME, used for named container ports and named targetPorts. */
export function isValidPortName(port: string): string[] {
  const errs: string[] = [];
  if (byteLength(port) > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(port)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(port)) errs.push('must contain at least one letter (a-z)');
  if (port.includes('--')) errs.push('must not contain consecutive hyphens');
  if (port.length > 0 && (port.startsWith('-') || port.endsWith('-'))) errs.push('must not begin or end with a hyphen');
  return errs;
}

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const DNS1035_LABEL = '[a-z]([-a-z0-9]*[a-z0-9])?';
const matches = (re: string, v: string) => new RegExp(`^${re}$`).test(v);

export function isDNS1123Label(v: string): string[] {
  const errs: string[] = [];
  if (byteLength(v) > 63) errs.push(maxLenError(63));
  if (!matches(DNS1123_LABEL, v)) {
    // A valid subdomain that is not a valid label (length was checked) has dots.
    if (matches(DNS1123_SUBDOMAIN, v)) errs.push('must not contain dots');
    else errs.push(regexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", DNS1123_LABEL, 'my-name', '123-abc'));
  }
  return errs;
}

export function isDNS1035Label(v: string): string[] {
  const errs: string[] = [];
  if (byteLength(v) > 63) errs.push(maxLenError(63));
  if (!matches(DNS1035_LABEL, v)) {
    errs.push(regexError("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", DNS1035_LABEL, 'my-name', 'abc-123'));
  }
  return errs;
}

/** isDNS1123Subdomain is the rule for names of Deployments, Pods and EndpointSlices, and for externalName. */
export function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (byteLength(v) > 253) errs.push(maxLenError(253));
  if (!matches(DNS1123_SUBDOMAIN, v)) {
    errs.push(regexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", DNS1123_SUBDOMAIN, 'example.com'));
  }
  return errs;
}

const LABEL_KEY = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_KEY_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** isQualifiedName is content.IsLabelKey: label keys, annotation keys, appProtocol, loadBalancerClass. */
export function isQualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push(`prefix part ${EMPTY}`);
    else for (const msg of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${msg}`);
  } else {
    return [`a valid label key ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push(`name part ${EMPTY}`);
  else if (byteLength(name) > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!matches(LABEL_KEY, name)) errs.push(`name part ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

/** isLabelValue is content.IsLabelValue. */
export function isLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenError(63));
  if (!matches(`(${LABEL_KEY})?`, value)) {
    errs.push(regexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", `(${LABEL_KEY})?`, 'MyValue', 'my_value', '12345'));
  }
  return errs;
}

export type IPFamily = 'IPv4' | 'IPv6';

/** parseIPv4 reads a dotted quad as Go's ParseIPSloppy does (leading zeros allowed); undefined if it is not one. */
function parseIPv4(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** ipFamily is the family of a valid IP address, as ParseIPSloppy reads it; undefined for anything else. */
export function ipFamily(s: string): IPFamily | undefined {
  if (parseIPv4(s)) return 'IPv4';
  if (net.isIPv6(s)) return 'IPv6';
  return undefined;
}

export const IP_MSG = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';

export function isValidIP(s: string): string[] {
  return ipFamily(s) ? [] : [IP_MSG];
}

/** isValidCIDR is validation.IsValidCIDR: an IPv4 or IPv6 prefix, sloppy about leading zeros. */
export function isValidCIDR(s: string): string[] {
  const slash = s.indexOf('/');
  const ok = (() => {
    if (slash < 0) return false;
    const family = ipFamily(s.slice(0, slash));
    const bits = s.slice(slash + 1);
    if (!family || !/^\d{1,3}$/.test(bits)) return false;
    return Number(bits) <= (family === 'IPv4' ? 32 : 128);
  })();
  return ok ? [] : ['must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'];
}

/** nonSpecialIP is ValidateNonSpecialIP: no unspecified, loopback, link-local or link-local multicast address. */
export function nonSpecialIP(s: string): string[] {
  const errs: string[] = [];
  const v4 = parseIPv4(s);
  const v6 = v4 ? undefined : expandIPv6(s);
  if (v4) {
    if (v4.every((o) => o === 0)) errs.push(`may not be unspecified (${s})`);
    if (v4[0] === 127) errs.push('may not be in the loopback range (127.0.0.0/8, ::1/128)');
    if (v4[0] === 169 && v4[1] === 254) errs.push('may not be in the link-local range (169.254.0.0/16, fe80::/10)');
    if (v4[0] === 224 && v4[1] === 0 && v4[2] === 0) errs.push('may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)');
  } else if (v6) {
    if (v6.every((w) => w === 0)) errs.push(`may not be unspecified (${s})`);
    if (v6.slice(0, 7).every((w) => w === 0) && v6[7] === 1) errs.push('may not be in the loopback range (127.0.0.0/8, ::1/128)');
    if ((v6[0]! & 0xffc0) === 0xfe80) errs.push('may not be in the link-local range (169.254.0.0/16, fe80::/10)');
    if ((v6[0]! & 0xff0f) === 0xff02) errs.push('may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)');
  } else errs.push('must be a valid IP address');
  return errs;
}

/** expandIPv6 gives the eight 16-bit words of an IPv6 address. */
function expandIPv6(s: string): number[] | undefined {
  if (!net.isIPv6(s)) return undefined;
  let text = s;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const o = parseIPv4(dotted[1]!)!;
    text = `${text.slice(0, -dotted[1]!.length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const words = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return words.map((w) => parseInt(w || '0', 16));
}

/**
 * goValue prints a value as field.Invalid and field.Duplicate do (%#v for compound values, %q for strings), so
 * messages read like the API server's: "80", 80, []string{"a", "b"}, map[string]string{"k":"v"}.
 */
export function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[]string{${v.map((x) => JSON.stringify(String(x))).join(', ')}}`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, x]) => `${JSON.stringify(k)}:${JSON.stringify(x)}`);
    return `map[string]string{${entries.join(', ')}}`;
  }
  return String(v);
}

/** fieldError words one field.Error as its Error() method does. `raw` values are printed as given. */
export const fieldError = {
  invalid: (field: string, value: unknown, detail: string) => `${field}: Invalid value: ${goValue(value)}: ${detail}`,
  invalidRaw: (field: string, printed: string, detail: string) => `${field}: Invalid value: ${printed}: ${detail}`,
  required: (field: string, detail = '') => `${field}: Required value${detail ? `: ${detail}` : ''}`,
  duplicate: (field: string, value: unknown) => `${field}: Duplicate value: ${goValue(value)}`,
  duplicateRaw: (field: string, printed: string) => `${field}: Duplicate value: ${printed}`,
  forbidden: (field: string, detail: string) => `${field}: Forbidden: ${detail}`,
  notSupported: (field: string, value: unknown, supported: string[]) =>
    `${field}: Unsupported value: ${goValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
  tooLong: (field: string, limit: number) => `${field}: Too long: may not be more than ${limit} bytes`,
};
