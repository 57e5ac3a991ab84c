// Capturing the test frames (ethertype 0x88b5, a local experimental type) a TAP test sends out
// of an interface inside a throwaway namespace: AF_PACKET through python3, started and ready
// before the test sends.

import { spawn } from 'node:child_process';
import type { Netns } from './netns.js';

/** Captures frames of ethertype 0x88b5 arriving on `ifname` inside `ns` (AF_PACKET via python3); resolves with their hex once `count` arrived or after `ms` of silence. */
export async function captureTestFrames(ns: Netns, ifname: string, count: number, ms = 3000): Promise<{ done: Promise<string[]> }> {
  const script = [
    'import socket,sys,select',
    's=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))',
    's.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1<<24)',
    's.bind((sys.argv[1],0))',
    'print("ready",flush=True)',
    'n=0',
    'while n<int(sys.argv[2]):',
    '  r,_,_=select.select([s],[],[],float(sys.argv[3]))',
    '  if not r: break',
    '  d,a=s.recvfrom(70000)',
    '  if a[2]!=4 and d[12:14]==bytes([0x88,0xb5]):',
    '    print(d.hex(),flush=True); n+=1',
  ].join('\n');
  const p = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-c', script, ifname, String(count), String(ms / 1000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    p.on('close', (code) => reject(new Error(`capture exited (${code}) before it was ready: ${err}`)));
  });
  const done = new Promise<string[]>((resolve, reject) => {
    p.on('close', (code) => (code === 0 ? resolve(out.split('\n').slice(1).filter((l) => l.length > 0)) : reject(new Error(`capture failed (${code}): ${err}`))));
  });
  await ready;
  return { done };
}
