// lib/packet: Ethernet / VLAN / IPv4 / IPv6 / TCP / UDP parsing, checksums, flow keys.
export * from './parse.js';
export * from './checksum.js';
export * from './address.js';
export * from './flow-table.js';
export * from './build.js';
export * from './tcp-options.js';
