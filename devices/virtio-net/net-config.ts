// The network device's configuration space (VIRTIO 1.2 §5.1.4) as a declarative field table:
//
//   offset  field                 width  exists with   access
//   0       mac                   6      MAC           ro (legacy: rw, see below)
//   6       status                2      STATUS        ro
//   8       max_virtqueue_pairs   2      MQ            ro
//   10      mtu                   2      MTU           ro
//   12      speed                 4      SPEED_DUPLEX  ro   (VIRTIO 1.3; Mb/s, 0xffffffff unknown)
//   16      duplex                1      SPEED_DUPLEX  ro   (1 full, 0 half, 0xff unknown)
//
// `duplex`: VIRTIO 1.3 §5.1.4 says 0x01 full, 0x00 half, its device requirement (§5.1.4.1) the
// opposite; Linux (DUPLEX_FULL = 1) and QEMU use 1 for full, and so does this device.
//   17      rss_max_key_size      1      RSS, HASH_REPORT  ro (rss-config.ts)
//   18      rss_max_indirection_table_length 2 RSS     ro
//   20      supported_hash_types  4      RSS, HASH_REPORT  ro (rss-hash.ts)
//
// §5.1.4.2: a modern driver MUST NOT write `mac`; a legacy driver without CTRL_MAC_ADDR sets the
// address that way (QEMU honours it), so the field is writable and the device decides per write.

import type { ConfigField } from '../virtio/config-space.js';
import { NetFeature, featureMask } from './constants.js';
import { RSS_MAX_KEY_SIZE, RSS_MAX_TABLE_LENGTH } from './rss-config.js';
import { SUPPORTED_HASH_TYPES } from './rss-hash.js';

export interface NetConfigSources {
  /** The current main MAC (ADDR_SET changes it; config reads see the new value at once). */
  readonly mac: { readonly mainMac: Uint8Array };
  /** VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE. */
  status(): number;
  readonly maxQueuePairs: number;
  readonly mtu: number | undefined;
  /** RSS or HASH_REPORT is offered: the rss_* fields and supported_hash_types exist. */
  readonly hashOffered: boolean;
  /** Config `speed` and `duplex` as the guest reads them now (speed-duplex.ts). */
  speed(): number;
  duplex(): number;
  /** A driver wrote all six bytes of `mac`. */
  legacyMacWrite(bytes: Uint8Array): void;
}

export function netConfigFields(src: NetConfigSources): ConfigField[] {
  const fields: ConfigField[] = [
    {
      name: 'mac',
      offset: 0,
      width: 6,
      feature: featureMask(NetFeature.MAC),
      access: 'rw',
      read: () => src.mac.mainMac,
      write: (v) => {
        if (v instanceof Uint8Array) src.legacyMacWrite(v);
      },
    },
    { name: 'status', offset: 6, width: 2, feature: featureMask(NetFeature.STATUS), access: 'ro', read: () => src.status() },
    // §5.1.4: exists with MQ or RSS (N is max_virtqueue_pairs once either is negotiated).
    { name: 'max_virtqueue_pairs', offset: 8, width: 2, feature: featureMask(NetFeature.MQ, NetFeature.RSS), access: 'ro', read: () => src.maxQueuePairs },
  ];
  if (src.mtu !== undefined) {
    const mtu = src.mtu;
    fields.push({ name: 'mtu', offset: 10, width: 2, feature: featureMask(NetFeature.MTU), access: 'ro', read: () => mtu });
  }
  fields.push(
    { name: 'speed', offset: 12, width: 4, feature: featureMask(NetFeature.SPEED_DUPLEX), access: 'ro', read: () => src.speed() },
    { name: 'duplex', offset: 16, width: 1, feature: featureMask(NetFeature.SPEED_DUPLEX), access: 'ro', read: () => src.duplex() },
  );
  // The RSS fields only when RSS or HASH_REPORT is offered (they are opt-in): the config space of
  // a device without them keeps its size.
  if (src.hashOffered) {
    fields.push(
      { name: 'rss_max_key_size', offset: 17, width: 1, feature: featureMask(NetFeature.RSS, NetFeature.HASH_REPORT), access: 'ro', read: () => RSS_MAX_KEY_SIZE },
      { name: 'rss_max_indirection_table_length', offset: 18, width: 2, feature: featureMask(NetFeature.RSS), access: 'ro', read: () => RSS_MAX_TABLE_LENGTH },
      { name: 'supported_hash_types', offset: 20, width: 4, feature: featureMask(NetFeature.RSS, NetFeature.HASH_REPORT), access: 'ro', read: () => SUPPORTED_HASH_TYPES },
    );
  }
  return fields;
}
