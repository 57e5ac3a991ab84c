// The `virtio-net` command: `run` (the main job on the embedded default), `guest` (a real Linux
// guest in v86), `web` (the same guest in v86 in a browser page), `relay` and `ipvs` (IPVS over
// generic netlink, lib/cli/ipvs.ts). `main()` returns the exit
// code; it never calls process.exit itself.

import { UsageError } from './args.js';

const USAGE = `usage: virtio-net <command> [flags]

commands:
  run     a virtio-net device driven by a built-in scripted guest, with a simulated host peer
          and a QMP socket (the default job of \`npm start\`)
            --duration SECONDS   how long to run (default 5; Ctrl-C ends it early, with the summary)
            --scenario NAME      linux (default), traffic, filter
            --netdev SPEC        memory (default), tap[,ifname=NAME][,io=inline|uring],
                                 macvtap,ifname=NAME[,sync=on|off], dgram,…, vde,sock=DIR, stream,…,
                                 passt, websocket,url=ws://HOST:PORT (tap io=uring: frames through
                                 io_uring batches instead of one system call each; inline is the default)
            --ip ADDR/LEN        the scripted guest's IPv4 address (default 10.0.2.15/24); it answers
                                 ARP and ping on it, and IPv6 NS / ping on its link-local address
            --peer ADDR          the host it resolves and pings, on its subnet (default 10.0.2.2)
            --qmp PATH           QMP socket path (default: a fresh path in the temp directory)
            --json               print one JSON object with the results instead of the table
            --chardev SPEC       socket,id=ID,host=H,port=N[,server=on][,wait=off] or socket,id=ID,path=P
                                 (repeatable; QEMU's -chardev socket, also its bare server / nowait)
            --object SPEC        TYPE,id=ID,… with QEMU's property names (repeatable): filter-mirror,
                                 filter-redirector, filter-rewriter, filter-dump, colo-compare, iothread;
                                 filters join --netdev …,id=ID (default hostnet0) in the order given
            --tcp-echo PORT      the scripted guest answers TCP on PORT ('echo: <data>')
            --tcp-diverge TEXT   …but requests holding TEXT get 'DIVERGED: <data>' (a COLO test aid)
  guest   boot a real Linux guest in v86 with the device attached (Debian i686 kernel and busybox,
          fetched and cached on first use); a serial console on the terminal (Ctrl-] quits)
            --script FILE        run each line of FILE as a guest shell command, in order, then exit
            --json               with --script: one JSON line per step {step, exitCode, output, rxFilter}
            --compat qemu        report the rx filter as QEMU does
            --netdev SPEC        memory (default: simulated host peer 10.0.2.2), tap,...[,io=inline|uring],
                                 macvtap,...
            --qmp PATH           serve QMP on PATH
            --legacy             the legacy (transitional) virtio-pci interface
            --legacy-only        a legacy-only device (no modern interface, QEMU's disable-modern=on):
                                 every driver (Linux, iPXE) takes its legacy path
            --mac MAC, --step-timeout SECONDS
            --save FILE          write the machine's state (v86's image, device state included) to
                                 FILE on SIGUSR1 (the guest keeps running) and after --script
            --restore FILE       continue the machine saved in FILE instead of booting (same
                                 --legacy / --legacy-only / --mac as when saved); then the
                                 console or --script
  web     serve, on 127.0.0.1 only, a page that boots the guest in v86 in the browser with this
          device (serial console, live rx filter, counters; #status reads "guest network: ok")
            --port N             TCP port (default 8086; 0: any free port)
  relay   a v86-style WebSocket relay (one binary message per Ethernet frame) joining its clients
          (v86's relay_url, --netdev websocket,url=…) and one backend in a learning switch
            --listen HOST:PORT   where to listen (loopback only unless --allow-remote)
            --to SPEC            the backend, in the --netdev spelling (tap,ifname=…, stream,…,
                                 dgram,…, vde,…, passt, memory: a simulated host 10.0.2.2)
            --allow-remote       listen on a non-loopback address (no authentication!)
            --duration SECONDS   stop after this long (default: Ctrl-C)
            --json               print one JSON object with the counters at the end
  ipvs    IPVS (the kernel's load balancer) over generic netlink, ipvsadm-style: -L/-Ln [--stats]
          [--timeout] [--daemon], -A/-E/-D SERVICE, -a/-e/-d SERVICE -r ADDR[:PORT], -C, -Z,
          --set TCP TCPFIN UDP, --start-daemon/--stop-daemon (\`virtio-net ipvs --help\`)
  help    this text
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'ipvs' && (rest.includes('--help') || rest.includes('-h'))) {
    const { IPVS_USAGE } = await import('./ipvs.js');
    process.stdout.write(IPVS_USAGE);
    return 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'run': {
        const { runCommand } = await import('./run.js');
        return await runCommand(rest);
      }
      case 'guest': {
        const { runGuest } = await import('./guest.js');
        return await runGuest([...rest]);
      }
      case 'web': {
        const { runWeb } = await import('./web.js');
        return await runWeb(rest);
      }
      case 'relay': {
        const { relayCommand } = await import('./relay.js');
        return await relayCommand(rest);
      }
      case 'ipvs': {
        const { ipvsCommand } = await import('./ipvs.js');
        return await ipvsCommand(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`virtio-net: unknown command ${JSON.stringify(command)}; commands: run, guest, web, relay, ipvs, help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    process.stderr.write(`virtio-net: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
