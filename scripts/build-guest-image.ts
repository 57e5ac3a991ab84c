// Builds (or finds in the cache) the Linux guest image that `virtio-net guest` and test/guest/ boot
// in v86: Debian's i686 kernel, busybox-static and seabios, an initramfs with the virtio-net
// module chain, iproute2 / ethtool / iperf3 / ping with their shared libraries, and
// scripts/guest/init.
// Run: `npx tsx scripts/build-guest-image.ts [--force] [--amd64 [--ipvs]] [--kernel-6.5]` (--amd64:
// the QEMU reference guest's image: amd64 kernel and busybox, no BIOS; --ipvs: its IPVS profile
// with ip_vs, ipvsadm and nlrelay, for test/guest/qemu-ipvs.test.ts; --kernel-6.5:
// bookworm-backports' kernel, as `virtio-net guest --guest-kernel 6.5`). Prints the image
// directory last; exits 1 with the reason when the image cannot be built.
import { GuestImageError, buildGuestImage } from '../lib/cli/guest-image.js';

const force = process.argv.includes('--force');
const arch = process.argv.includes('--amd64') ? 'amd64' : 'i386';
const profile = process.argv.includes('--ipvs') ? 'ipvs' : 'base';
const kernel = process.argv.includes('--kernel-6.5') ? '6.5' : '6.1';
try {
  const img = buildGuestImage({ force, arch, profile, kernel, log: (l) => console.error(l) });
  console.error(`kernel ${img.kernelRelease}; initramfs ${img.initrdBytes} bytes; packages ${Object.entries(img.packages).map(([n, v]) => `${n}=${v}`).join(' ')}`);
  console.log(img.dir);
} catch (e) {
  if (e instanceof GuestImageError) {
    console.error(`build-guest-image: ${e.code}: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
