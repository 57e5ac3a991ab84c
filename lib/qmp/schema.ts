// THE table of QMP commands and events this server speaks (QEMU's QAPI schema for the same names:
// qapi/control.json, qapi/net.json; QMP wire protocol per docs/interop/qmp-spec). Argument
// validation, `query-commands`, the handler types (lib/qmp/commands.ts) and the example tests
// (test/lib/qmp/schema-examples.test.ts) all come from here.
//
// Adding a command: an entry under `commands` (wire name, `data`, `returns`, `errors`, an example)
// and a handler of the same name in commands.ts — the compiler insists on the handler and checks
// its argument and result types against the entry.
//
// Examples are exact exchanges, run against this fixture: version 7.2.0 package
// "virtio-net-model"; one NIC `vnet0` attached to netdev `hostnet0`, link up, whose rx filter is
// the one in the query-rx-filter example and whose counters are those in the
// x-query-virtio-net-stats example; COLO objects (options.colo.objects) `object0`, `comp0` and
// `m0`; a stream netdev `netdev0` (options.netdevs). Exchanges run after capabilities negotiation unless marked
// `mode: 'negotiation'`; `partial: true` means the reply's list starts with the listed entries.

import type { QmpExchange, QmpSchemaDef } from './schema-types.js';

const examples = <const T extends readonly QmpExchange[]>(x: T): T => x;

export const QMP_SCHEMA = {
  types: {
    VersionTriple: { struct: { major: 'int', minor: 'int', micro: 'int' } },
    VersionInfo: { struct: { qemu: 'VersionTriple', package: 'str' } },
    QMPCapability: { enum: ['oob'] },
    CommandInfo: { struct: { name: 'str' } },
    RxState: { enum: ['normal', 'none', 'all'] },
    RxFilterInfo: {
      struct: {
        name: 'str',
        promiscuous: 'bool',
        multicast: 'RxState',
        unicast: 'RxState',
        vlan: 'RxState',
        'broadcast-allowed': 'bool',
        'multicast-overflow': 'bool',
        'unicast-overflow': 'bool',
        'main-mac': 'str',
        'vlan-table': ['int'],
        'unicast-table': ['str'],
        'multicast-table': ['str'],
      },
    },
    VirtioNetStatsInfo: { struct: { name: 'str', stats: 'any' } },
    InetSocketAddressBase: { struct: { host: 'str', port: 'str' } },
    NetClientDriver: { enum: ['stream', 'dgram', 'vde', 'passt', 'websocket'] },
    ObjectType: { enum: ['filter-mirror', 'filter-redirector', 'filter-rewriter', 'filter-dump', 'colo-compare', 'iothread'] },
    NetFilterDirection: { enum: ['all', 'rx', 'tx'] },
    NetfilterInsert: { enum: ['before', 'behind'] },
    SchemaInfo: {
      struct: {
        name: 'str',
        'meta-type': 'str',
        '*arg-type': 'str',
        '*ret-type': 'str',
        '*allow-oob': 'bool',
        '*members': ['any'],
        '*values': ['str'],
        '*element-type': 'str',
        '*json-type': 'str',
      },
    },
  },

  commands: {
    qmp_capabilities: {
      doc: 'Leaves capabilities negotiation mode and enables the given capabilities (this server offers none).',
      data: { '*enable': ['QMPCapability'] },
      negotiation: true,
      errors: [
        { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored', when: 'sent again after negotiation' },
        { class: 'GenericError', desc: 'Capability %s not available', when: 'enabling a capability the greeting did not offer' },
      ],
      examples: examples([
        { mode: 'negotiation', '->': { execute: 'qmp_capabilities' }, '<-': { return: {} } },
        {
          mode: 'negotiation',
          '->': { execute: 'qmp_capabilities', arguments: { enable: ['oob'] } },
          '<-': { error: { class: 'GenericError', desc: 'Capability oob not available' } },
        },
        {
          '->': { execute: 'qmp_capabilities', id: 1 },
          '<-': { error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' }, id: 1 },
        },
      ]),
    },

    'query-version': {
      doc: 'The version this server reports (the greeting carries the same).',
      returns: 'VersionInfo',
      examples: examples([
        {
          '->': { execute: 'query-version' },
          '<-': { return: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'virtio-net-model' } },
        },
      ]),
    },

    'query-commands': {
      doc: 'The commands available now (after negotiation: all of them, in table order).',
      returns: ['CommandInfo'],
      examples: examples([
        {
          partial: true,
          '->': { execute: 'query-commands' },
          '<-': { return: [{ name: 'qmp_capabilities' }, { name: 'query-version' }, { name: 'query-commands' }] },
        },
      ]),
    },

    'query-rx-filter': {
      doc:
        'The rx filter of the named NIC, or of every NIC. Each NIC queried is re-armed: its next ' +
        'rx-filter change emits NIC_RX_FILTER_CHANGED again.',
      data: { '*name': 'str' },
      returns: ['RxFilterInfo'],
      errors: [
        { class: 'GenericError', desc: 'invalid net client name: %s', when: 'no net client has that name' },
        { class: 'GenericError', desc: "net client(%s) isn't a NIC", when: 'the name is a netdev' },
      ],
      examples: examples([
        {
          '->': { execute: 'query-rx-filter', arguments: { name: 'vnet0' } },
          '<-': {
            return: [
              {
                name: 'vnet0',
                promiscuous: true,
                multicast: 'normal',
                unicast: 'normal',
                vlan: 'normal',
                'broadcast-allowed': false,
                'multicast-overflow': false,
                'unicast-overflow': false,
                'main-mac': '52:54:00:12:34:56',
                'vlan-table': [0, 4],
                'unicast-table': [],
                'multicast-table': ['01:00:5e:00:00:01', '33:33:00:00:00:01', '33:33:ff:4b:8f:84'],
              },
            ],
          },
        },
        {
          '->': { execute: 'query-rx-filter', arguments: { name: 'nope' } },
          '<-': { error: { class: 'GenericError', desc: 'invalid net client name: nope' } },
        },
        {
          '->': { execute: 'query-rx-filter', arguments: { name: 'hostnet0' } },
          '<-': { error: { class: 'GenericError', desc: "net client(hostnet0) isn't a NIC" } },
        },
        {
          '->': { execute: 'query-rx-filter', arguments: { name: 5 } },
          '<-': { error: { class: 'GenericError', desc: "Invalid parameter type for 'name', expected: string" } },
        },
      ]),
    },

    set_link: {
      doc:
        'Sets the link of a NIC, named by its own id or by the id of the netdev it is attached to ' +
        '(QEMU accepts both).',
      data: { name: 'str', up: 'bool' },
      errors: [{ class: 'DeviceNotFound', desc: "Device '%s' not found", when: 'no net client has that name' }],
      examples: examples([
        { '->': { execute: 'set_link', arguments: { name: 'vnet0', up: false } }, '<-': { return: {} } },
        { '->': { execute: 'set_link', arguments: { name: 'hostnet0', up: true } }, '<-': { return: {} } },
        {
          '->': { execute: 'set_link', arguments: { name: 'eth9', up: true } },
          '<-': { error: { class: 'DeviceNotFound', desc: "Device 'eth9' not found" } },
        },
        {
          '->': { execute: 'set_link', arguments: { name: 'vnet0' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'up' is missing" } },
        },
        {
          '->': { execute: 'set_link', arguments: { name: 'vnet0', up: 'yes' } },
          '<-': { error: { class: 'GenericError', desc: "Invalid parameter type for 'up', expected: boolean" } },
        },
        {
          '->': { execute: 'set_link', arguments: { name: 'vnet0', up: true, speed: 10 } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'speed' is unexpected" } },
        },
      ]),
    },

    'x-query-virtio-net-stats': {
      doc: "The device counters of the named NIC, or of every NIC (this project's command; 'x-' as it is unstable).",
      data: { '*name': 'str' },
      returns: ['VirtioNetStatsInfo'],
      errors: [
        { class: 'GenericError', desc: 'invalid net client name: %s', when: 'no net client has that name' },
        { class: 'GenericError', desc: "net client(%s) isn't a NIC", when: 'the name is a netdev' },
      ],
      examples: examples([
        {
          '->': { execute: 'x-query-virtio-net-stats', arguments: { name: 'vnet0' }, id: 'stats-1' },
          '<-': {
            return: [{ name: 'vnet0', stats: { 'tx-frames': 3, 'tx-bytes': 180, 'rx-frames': 5, 'rx-bytes': 300 } }],
            id: 'stats-1',
          },
        },
      ]),
    },

    'colo-passthrough-add': {
      doc:
        "Adds an entry to the COLO passthrough list (lib/passthrough/passthrough.ts): packets of flows it " +
        "matches are not compared by colo-compare, nor mirrored or redirected. Every member is optional " +
        "and an absent one matches anything; 'protocol' is resolved like getprotobyname(3); " +
        "'object-name' is the id of the colo-compare or filter the entry is for (absent: all), one of " +
        "the server's objects (options.colo.objects); an entry matches both directions of a flow. " +
        'The IPFlowSpec of the proposed QEMU 6.1 QAPI.',
      data: { '*protocol': 'str', '*object-name': 'str', '*source': 'InetSocketAddressBase', '*destination': 'InetSocketAddressBase' },
      errors: [
        { class: 'GenericError', desc: "object '%s' not found", when: "'object-name' names none of the server's colo objects (options.colo.objects)" },
        { class: 'GenericError', desc: 'passthrough entry already exists: %s', when: 'an equal entry is on the list' },
        { class: 'GenericError', desc: "unknown protocol '%s' (not in the system's protocol table)", when: 'getprotobyname does not know the protocol' },
        { class: 'GenericError', desc: "'source.host' must be an IP address (or '' for any), got '%s'", when: 'a host is not an IP literal (likewise destination)' },
        { class: 'GenericError', desc: "'source.port' must be a port number or service name (or '' for any), got '%s'", when: 'a port is neither (likewise destination)' },
      ],
      examples: examples([
        {
          '->': {
            execute: 'colo-passthrough-add',
            arguments: {
              protocol: 'tcp',
              'object-name': 'object0',
              source: { host: '192.168.1.1', port: '1234' },
              destination: { host: '192.168.1.2', port: '4321' },
            },
          },
          '<-': { return: {} },
        },
        { '->': { execute: 'colo-passthrough-add', arguments: { protocol: 'udp' } }, '<-': { return: {} } },
        {
          '->': { execute: 'colo-passthrough-add', arguments: { protocol: 'nosuchproto' } },
          '<-': { error: { class: 'GenericError', desc: "unknown protocol 'nosuchproto' (not in the system's protocol table)" } },
        },
        {
          '->': { execute: 'colo-passthrough-add', arguments: { source: { host: 'primary.example', port: '80' } } },
          '<-': { error: { class: 'GenericError', desc: "'source.host' must be an IP address (or '' for any), got 'primary.example'" } },
        },
        {
          '->': { execute: 'colo-passthrough-add', arguments: { source: { host: '10.0.0.1', port: 80 } } },
          '<-': { error: { class: 'GenericError', desc: "Invalid parameter type for 'source.port', expected: string" } },
        },
      ]),
    },

    'colo-passthrough-del': {
      doc: 'Deletes the passthrough entry equal to the arguments (same members and meaning as colo-passthrough-add).',
      data: { '*protocol': 'str', '*object-name': 'str', '*source': 'InetSocketAddressBase', '*destination': 'InetSocketAddressBase' },
      errors: [
        { class: 'GenericError', desc: 'passthrough entry not found: %s', when: 'no equal entry is on the list' },
        { class: 'GenericError', desc: "object '%s' not found", when: "'object-name' names none of the server's colo objects (options.colo.objects)" },
      ],
      examples: examples([
        {
          '->': {
            execute: 'colo-passthrough-del',
            arguments: {
              protocol: 'tcp',
              'object-name': 'object0',
              source: { host: '192.168.1.1', port: '1234' },
              destination: { host: '192.168.1.2', port: '4321' },
            },
          },
          '<-': {
            error: {
              class: 'GenericError',
              desc: 'passthrough entry not found: protocol=tcp object-name=object0 source=192.168.1.1:1234 destination=192.168.1.2:4321',
            },
          },
        },
      ]),
    },

    'passthrough-filter-add': {
      doc: "colo-passthrough-add under the later revision's name, where 'object-name' is required.",
      data: { '*protocol': 'str', 'object-name': 'str', '*source': 'InetSocketAddressBase', '*destination': 'InetSocketAddressBase' },
      errors: [
        { class: 'GenericError', desc: 'passthrough entry already exists: %s', when: 'an equal entry is on the list' },
        { class: 'GenericError', desc: "unknown protocol '%s' (not in the system's protocol table)", when: 'getprotobyname does not know the protocol' },
        { class: 'GenericError', desc: "object '%s' not found", when: "'object-name' names none of the server's colo objects (options.colo.objects)" },
      ],
      examples: examples([
        {
          '->': { execute: 'passthrough-filter-add', arguments: { protocol: 'tcp', 'object-name': 'comp0', destination: { host: '10.0.0.2', port: '22' } } },
          '<-': { return: {} },
        },
        {
          '->': { execute: 'passthrough-filter-add', arguments: { protocol: 'tcp' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'object-name' is missing" } },
        },
        {
          '->': { execute: 'passthrough-filter-add', arguments: { protocol: 'tcp', 'object-name': 'nosuch' } },
          '<-': { error: { class: 'GenericError', desc: "object 'nosuch' not found" } },
        },
      ]),
    },

    'passthrough-filter-del': {
      doc: "colo-passthrough-del under the later revision's name, where 'object-name' is required.",
      data: { '*protocol': 'str', 'object-name': 'str', '*source': 'InetSocketAddressBase', '*destination': 'InetSocketAddressBase' },
      errors: [
        { class: 'GenericError', desc: 'passthrough entry not found: %s', when: 'no equal entry is on the list' },
        { class: 'GenericError', desc: "object '%s' not found", when: "'object-name' names none of the server's colo objects (options.colo.objects)" },
      ],
      examples: examples([
        {
          '->': { execute: 'passthrough-filter-del', arguments: { protocol: 'icmp', 'object-name': 'm0' } },
          '<-': { error: { class: 'GenericError', desc: 'passthrough entry not found: protocol=icmp object-name=m0 source=any destination=any' } },
        },
      ]),
    },
    netdev_add: {
      doc:
        "Creates a netdev (QEMU's Netdev arguments, flat; lib/qmp/netdev-admin.ts). 'stream' (lib/netdev/stream-netdev.ts) " +
        "with 'addr' in QEMU's SocketAddress form ({ type: 'unix', path } or { type: 'inet', host, port }, port a " +
        "string), 'server' (default false) and, for a client, 'reconnect' (seconds, QEMU 8) or 'reconnect-ms' " +
        "(QEMU 9.2). 'dgram' (dgram-netdev.ts) with 'local' / 'remote' as QEMU's SocketAddress (inet or unix; a " +
        "multicast remote makes it multicast). 'vde' (vde-netdev.ts) with 'sock', the switch's directory. 'passt' " +
        "(passt-netdev.ts: starts passt and connects) with 'tcp' / 'udp', lists of passt port specs. 'websocket' " +
        "(websocket-netdev.ts, a v86 relay client) with 'url' and 'reconnect-ms' (0 = never; default 10 s). " +
        'A parameter of another type is unexpected. The netdev is open (listening, connected, bound, its helper ' +
        'running) before the answer; one that cannot open is an error. netdev_del closes it.',
      data: {
        type: 'NetClientDriver',
        id: 'str',
        '*addr': 'any',
        '*server': 'bool',
        '*reconnect': 'uint32',
        '*reconnect-ms': 'uint32',
        '*local': 'any',
        '*remote': 'any',
        '*sock': 'str',
        '*tcp': ['str'],
        '*udp': ['str'],
        '*url': 'str',
      },
      errors: [
        { class: 'GenericError', desc: "Duplicate ID '%s'", when: 'a net client already has that id' },
        { class: 'GenericError', desc: "Parameter 'id' expects an identifier", when: 'the id does not start with a letter or holds other than letters, digits, -, ., _' },
        { class: 'GenericError', desc: "Parameter 'addr' is missing", when: 'a stream netdev without addr' },
        { class: 'GenericError', desc: 'StreamNetdev %s', when: 'the socket cannot be listened on or connected to (the text says why)' },
        { class: 'GenericError', desc: "Parameter '%s' is unexpected", when: 'a parameter that belongs to another type' },
        { class: 'GenericError', desc: "Parameter 'local' is missing", when: 'a dgram netdev with neither local nor remote' },
        { class: 'GenericError', desc: "Parameter 'sock' is missing", when: 'a vde netdev without sock' },
        { class: 'GenericError', desc: "Parameter 'url' is missing", when: 'a websocket netdev without url' },
        { class: 'GenericError', desc: 'DgramNetdev %s', when: 'a bad local / remote (the text names the field and QEMU\'s rule) or a failed bind' },
        { class: 'GenericError', desc: 'VdeNetdev %s', when: 'no switch at sock, or vde_plug missing' },
        { class: 'GenericError', desc: 'PasstNetdev %s', when: 'a bad port spec, or passt not starting / listening (with its stderr)' },
        { class: 'GenericError', desc: 'WebSocketNetdev %s', when: 'the relay refused or did not answer within 10 s (without reconnect-ms)' },
      ],
      examples: examples([
        {
          '->': { execute: 'netdev_add', arguments: { type: 'stream', id: 'sn1', addr: { type: 'inet', host: '127.0.0.1', port: '0' }, server: true } },
          '<-': { return: {} },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'stream', id: 'hostnet0', addr: { type: 'inet', host: '127.0.0.1', port: '0' }, server: true } },
          '<-': { error: { class: 'GenericError', desc: "Duplicate ID 'hostnet0'" } },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'stream', id: 'sn2' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'addr' is missing" } },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'stream', id: '9x', addr: { type: 'unix', path: '/nonexistent/s' } } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'id' expects an identifier" } },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'dgram', id: 'dg1', addr: { type: 'unix', path: '/tmp/x' } } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'addr' is unexpected" } },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'vde', id: 'vde1' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'sock' is missing" } },
        },
        {
          '->': { execute: 'netdev_add', arguments: { type: 'bogus', id: 'sn3' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'type' does not accept value 'bogus'" } },
        },
      ]),
    },

    netdev_del: {
      doc: 'Closes and removes a netdev (one given to the server or added by netdev_add); a NIC attached to it stays, without a peer.',
      data: { id: 'str' },
      errors: [
        { class: 'DeviceNotFound', desc: "Device '%s' not found", when: 'no netdev has that id' },
        { class: 'GenericError', desc: "Device '%s' is not a netdev", when: 'the id is a NIC' },
      ],
      examples: examples([
        { '->': { execute: 'netdev_del', arguments: { id: 'nope' } }, '<-': { error: { class: 'DeviceNotFound', desc: "Device 'nope' not found" } } },
        { '->': { execute: 'netdev_del', arguments: { id: 'vnet0' } }, '<-': { error: { class: 'GenericError', desc: "Device 'vnet0' is not a netdev" } } },
      ]),
    },

    'object-add': {
      doc:
        "Creates an object (QEMU's ObjectOptions, flat): 'qom-type' and 'id', then the type's own properties " +
        '(lib/colo/object-table.ts, QEMU\'s names): filters take netdev, queue, status, position, insert; ' +
        'filter-mirror outdev, vnet_hdr_support; filter-redirector indev, outdev, vnet_hdr_support; filter-rewriter ' +
        'vnet_hdr_support; filter-dump file, maxlen; colo-compare primary_in, secondary_in, outdev, iothread, ' +
        'notify_dev, compare_timeout, expired_scan_cycle, max_queue_size, vnet_hdr_support; iothread (accepted, ' +
        'no threads) its poll properties. A filter joins its netdev\'s chain at once (at the tail unless position ' +
        'says otherwise). A property the type does not take is refused.',
      data: {
        'qom-type': 'ObjectType',
        id: 'str',
        '*netdev': 'str',
        '*queue': 'NetFilterDirection',
        '*status': 'str',
        '*position': 'str',
        '*insert': 'NetfilterInsert',
        '*outdev': 'str',
        '*indev': 'str',
        '*vnet_hdr_support': 'bool',
        '*file': 'str',
        '*maxlen': 'uint32',
        '*primary_in': 'str',
        '*secondary_in': 'str',
        '*iothread': 'str',
        '*notify_dev': 'str',
        '*compare_timeout': 'uint32',
        '*expired_scan_cycle': 'uint32',
        '*max_queue_size': 'uint32',
        '*poll-max-ns': 'int',
        '*poll-grow': 'int',
        '*poll-shrink': 'int',
        '*aio-max-batch': 'int',
      },
      errors: [
        { class: 'GenericError', desc: "attempt to add duplicate property '%s' to object (type 'container')", when: 'an object with that id exists' },
        { class: 'GenericError', desc: "Parameter 'id' expects an identifier", when: 'the id is not a letter followed by letters, digits, -, ., _' },
        { class: 'GenericError', desc: "Parameter '%s' is unexpected", when: 'the type does not take that property' },
        { class: 'GenericError', desc: "Parameter '%s' is missing", when: 'a required property of the type is absent' },
        { class: 'GenericError', desc: "Parameter 'netdev' expects a network backend id", when: 'no netdev has that id (or it carries no filters)' },
        { class: 'GenericError', desc: "Device '%s' not found", when: 'a chardev property names no chardev' },
        { class: 'GenericError', desc: "Device '%s' is in use", when: 'the chardev serves another object' },
        { class: 'GenericError', desc: '%s', when: 'any other refusal (the text says what and why)' },
      ],
      examples: examples([
        { '->': { execute: 'object-add', arguments: { 'qom-type': 'iothread', id: 'iothread1' } }, '<-': { return: {} } },
        {
          '->': { execute: 'object-add', arguments: { 'qom-type': 'iothread', id: 'io2', file: '/tmp/x' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'file' is unexpected" } },
        },
        {
          '->': { execute: 'object-add', arguments: { 'qom-type': 'filter-dump', id: 'd0' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'netdev' is missing" } },
        },
        {
          '->': { execute: 'object-add', arguments: { 'qom-type': 'filter-dump', id: 'd0', netdev: 'nope', file: '/tmp/d0.pcap' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'netdev' expects a network backend id" } },
        },
        {
          '->': { execute: 'object-add', arguments: { 'qom-type': 'memory-backend-ram', id: 'm9' } },
          '<-': { error: { class: 'GenericError', desc: "Parameter 'qom-type' does not accept value 'memory-backend-ram'" } },
        },
      ]),
    },

    'object-del': {
      doc:
        'Deletes an object made by object-add or --object. A filter leaves its chain between two frames; ' +
        "colo-compare first sends out the primary packets it holds; chardevs stay open (free for another object).",
      data: { id: 'str' },
      errors: [
        { class: 'GenericError', desc: "object '%s' not found", when: 'no object has that id' },
        { class: 'GenericError', desc: "object '%s' is in use by '%s', can not be deleted", when: 'an iothread a colo-compare uses' },
      ],
      examples: examples([
        { '->': { execute: 'object-del', arguments: { id: 'nope' } }, '<-': { error: { class: 'GenericError', desc: "object 'nope' not found" } } },
      ]),
    },

    'announce-self': {
      doc:
        "Makes the NICs announce themselves (QEMU's announce-self, AnnounceParameters): a NIC whose driver " +
        'negotiated GUEST_ANNOUNCE is asked to (VIRTIO_NET_S_ANNOUNCE, §5.1.6.5.4); for the others the host ' +
        "sends a gratuitous ARP from the NIC's MAC (QEMU sends RARP). 'rounds' announcements, the first at once, " +
        "then after 'initial' ms growing by 'step' up to 'max' ms; 'interfaces' limits it to those NICs (default all).",
      data: { '*initial': 'int', '*max': 'int', '*rounds': 'int', '*step': 'int', '*interfaces': ['str'], '*id': 'str' },
      errors: [{ class: 'GenericError', desc: "Parameter '%s' expects %s", when: 'a timing value is out of range (negative, or rounds above 1000)' }],
      examples: examples([
        { '->': { execute: 'announce-self', arguments: { initial: 50, max: 550, rounds: 1, step: 50 } }, '<-': { return: {} } },
        {
          '->': { execute: 'announce-self', arguments: { rounds: 'five' } },
          '<-': { error: { class: 'GenericError', desc: "Invalid parameter type for 'rounds', expected: integer" } },
        },
      ]),
    },

    'query-qmp-schema': {
      doc:
        "This server's QMP schema as QEMU's SchemaInfo list (qapi/introspect.json), generated from this table: " +
        "every command (arg-type, ret-type), event (arg-type) and the object, enum, array and builtin types they name. " +
        "Argument objects are named 'q_obj_<command>-arg' / 'q_obj_<event>-arg', the empty object 'q_empty' " +
        '(QEMU masks such names as numbers; the structure is the same).',
      returns: ['SchemaInfo'],
      examples: examples([
        {
          partial: true,
          '->': { execute: 'query-qmp-schema' },
          '<-': { return: [{ name: 'qmp_capabilities', 'meta-type': 'command', 'arg-type': 'q_obj_qmp_capabilities-arg', 'ret-type': 'q_empty', 'allow-oob': false }] },
        },
      ]),
    },
  },

  events: {
    COLO_COMPARE_CHECKPOINT_REQUEST: {
      doc:
        "A colo-compare object found the primary's and the secondary's output inconsistent (or a queue, " +
        "byte or table limit was reached, or a packet waited longer than compare_timeout) and asks for a COLO " +
        "checkpoint. QEMU has no QMP event for this: its colo-compare notifies the COLO frame in-process " +
        "(colo_compare_inconsistency_notify → colo_checkpoint_notify) or writes DO_CHECKPOINT to notify_dev; " +
        "here the manager is told. 'id' is the colo-compare's id, 'reason' one of mismatch, timeout, " +
        "queue-full, buffer-full, table-full, 'flow' the connection (e.g. 'tcp 10.0.2.15:7 <-> 10.0.2.2:40000'). " +
        'Sent once per inconsistency; the queues are flushed after it.',
      data: { id: 'str', reason: 'str', flow: 'str' },
      example: {
        event: 'COLO_COMPARE_CHECKPOINT_REQUEST',
        data: { id: 'comp0', reason: 'mismatch', flow: 'tcp 10.0.2.15:7 <-> 10.0.2.2:40000' },
        timestamp: { seconds: 1733350000, microseconds: 0 },
      },
    },
    NIC_RX_FILTER_CHANGED: {
      doc:
        "A NIC's rx filter changed. Sent at most once per NIC until management runs " +
        'query-rx-filter for it (the event re-arms on the query, not on a timer).',
      data: { name: 'str', path: 'str' },
      example: {
        event: 'NIC_RX_FILTER_CHANGED',
        data: { name: 'vnet0', path: '/machine/peripheral/vnet0/virtio-backend' },
        timestamp: { seconds: 1368697518, microseconds: 326866 },
      },
    },
    NETDEV_STREAM_CONNECTED: {
      doc:
        "A stream netdev's socket connected. 'addr' is QEMU's SocketAddress: a unix server or client reports " +
        "the socket path, a TCP server its peer, a TCP client the server ({ type: 'inet', host, port, ipv4 | ipv6 }, " +
        'port a string).',
      data: { 'netdev-id': 'str', addr: 'any' },
      example: {
        event: 'NETDEV_STREAM_CONNECTED',
        data: { 'netdev-id': 'netdev0', addr: { type: 'unix', path: '/tmp/qemu0' } },
        timestamp: { seconds: 1666269863, microseconds: 311222 },
      },
    },
    NETDEV_STREAM_DISCONNECTED: {
      doc: "A stream netdev's connection ended (the peer left, an error, or bad framing).",
      data: { 'netdev-id': 'str' },
      example: {
        event: 'NETDEV_STREAM_DISCONNECTED',
        data: { 'netdev-id': 'netdev0' },
        timestamp: { seconds: 1666269863, microseconds: 311222 },
      },
    },
  },
} as const satisfies QmpSchemaDef;

export type QmpSchema = typeof QMP_SCHEMA;
export type QmpCommandName = keyof QmpSchema['commands'];
export type QmpEventName = keyof QmpSchema['events'];
