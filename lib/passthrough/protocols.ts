// Protocol and service names as getprotobyname(3) and getservbyname(3) resolve them: from the
// system's tables (/etc/protocols, /etc/services; format in protocols(5), services(5)). Read once,
// on first use. When a table is missing (minimal containers), a built-in table of the common IANA
// assignments is used instead, so `tcp`, `udp`, `icmp` still resolve.

import { readFileSync } from 'node:fs';

/** IANA protocol numbers for when /etc/protocols is absent. */
const FALLBACK_PROTOCOLS: Readonly<Record<string, number>> = {
  ip: 0, icmp: 1, igmp: 2, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, sctp: 132, udplite: 136,
};

let protocols: Map<string, number> | undefined;
let services: Map<string, number> | undefined;

function load(path: string, parse: (fields: string[], into: Map<string, number>) => void): Map<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const out = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line !== '') parse(line.split(/\s+/), out);
  }
  return out;
}

/** The protocol number of a name or alias (case-insensitive, as glibc), a decimal number, or undefined. */
export function protocolByName(name: string): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n <= 255 ? n : undefined;
  }
  protocols ??=
    load('/etc/protocols', ([n, num, ...aliases], into) => {
      const v = Number(num);
      if (n === undefined || !Number.isInteger(v)) return;
      for (const a of [n, ...aliases]) if (!into.has(a.toLowerCase())) into.set(a.toLowerCase(), v);
    }) ?? new Map(Object.entries(FALLBACK_PROTOCOLS));
  return protocols.get(name.toLowerCase());
}

/** The protocol's primary name for messages (the first name with that number), or its number. */
export function protocolName(proto: number): string {
  protocolByName('tcp'); // loads the table
  for (const [name, n] of protocols!) if (n === proto) return name;
  return String(proto);
}

/** A port from a decimal string or a service name (for `protocol`, or any protocol when absent). */
export function portByName(text: string, protocol: number | undefined): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n <= 65535 ? n : undefined;
  }
  services ??=
    load('/etc/services', ([n, portProto, ...aliases], into) => {
      const [port, proto] = (portProto ?? '').split('/');
      const v = Number(port);
      if (n === undefined || !Number.isInteger(v)) return;
      for (const a of [n, ...aliases]) {
        if (!into.has(`${a}/${proto}`)) into.set(`${a}/${proto}`, v);
        if (!into.has(a)) into.set(a, v);
      }
    }) ?? new Map();
  const pname = protocol === 6 ? 'tcp' : protocol === 17 ? 'udp' : protocol === 132 ? 'sctp' : undefined;
  return pname !== undefined ? services.get(`${text}/${pname}`) : services.get(text);
}
