import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '@tandem/core';
import {
  EmbeddedBackend,
  IpvsDaemon,
  IpvsadmBackend,
  type IpvsOp,
  type IpvsTable,
  MemoryBackend,
  createBackend,
  diffTables,
  kernelIpvsAvailable,
  parseListing,
  reconcile,
} from '@tandem/ipvs';
import { EXAMPLES, ROOT, stubDataplane } from './helpers.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const RUNS = join(FIXTURES, 'reference', 'ldirectord-runs', 'sequences');
const V = { protocol: 'tcp' as const, address: '127.0.0.100', port: 80 };

describe('ipvsadm backend: parsing recorded ipvsadm -L -n output', () => {
  it('reads the listing of seed 003', () => {
    assert.deepEqual(parseListing(readFileSync(join(EXAMPLES, 'ipvsadm-Ln.txt'), 'utf8')), {
      services: [
        {
          protocol: 'tcp',
          address: '172.25.0.10',
          port: 80,
          scheduler: 'wrr',
          reals: [
            { address: '192.168.122.10', port: 80, forwarding: 'masq', weight: 5 },
            { address: '192.168.122.20', port: 80, forwarding: 'masq', weight: 10 },
          ],
        },
      ],
    });
  });

  it('reads the tables recorded under the real ldirectord (trailing blanks, weight 0, empty table)', () => {
    const t = parseListing(readFileSync(join(RUNS, 'cleanstop_no.table'), 'utf8'));
    assert.deepEqual(
      t.services[0]!.reals.map((r) => `${r.address}:${r.port} ${r.forwarding} ${r.weight}`),
      ['127.0.0.11:80 gate 1', '127.0.0.12:80 gate 2', '127.0.0.13:80 gate 0'],
    );
    assert.deepEqual(parseListing(readFileSync(join(RUNS, 'portmap.table'), 'utf8')), { services: [] });
    const pre = parseListing(readFileSync(join(RUNS, 'preexisting.table'), 'utf8'));
    assert.deepEqual(pre.services.map((s) => `${s.protocol} ${s.address}:${s.port} ${s.scheduler}`), ['tcp 127.0.0.101:80 wlc']);
  });

  it('reads every service-line form: flags, persistence with mask, ops, fwmark and IPv6', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.0.0.1:80 wrr persistent 600 mask 255.255.255.0',
      '  -> 10.0.0.2:80                  Tunnel  3      12         345       ',
      'UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops',
      'FWM  7 mh (mh-port) persistent 360',
      '  -> 10.0.0.4:0                   Masq    1      0          0         ',
      'FWM  9 IPv6 rr',
      'TCP  [2001:db8::1]:443 lc persistent 30 mask 64',
      '  -> [2001:db8::2]:8443            Masq    2      0          0         ',
      '',
    ].join('\n');
    const t = parseListing(text);
    assert.deepEqual(t.services[0]!.persistence, { timeoutS: 600, netmask: '255.255.255.0' });
    assert.deepEqual(t.services[1]!.schedFlags, ['sh-fallback', 'sh-port']);
    assert.equal(t.services[1]!.ops, true);
    assert.equal(t.services[2]!.fwmark, 7);
    assert.equal(t.services[3]!.family, 'inet6');
    assert.deepEqual(t.services[4]!.reals, [{ address: '2001:db8::2', port: 8443, forwarding: 'masq', weight: 2 }]);
    assert.throws(() => parseListing('TCP  10.0.0.1:80 wrr\n  -> garbage\n'), /line 2/);
  });

  it('applies a batch as one ipvsadm -R run and reports a failure with exit code and output', async () => {
    const calls: { args: readonly string[]; input?: string | undefined }[] = [];
    const result = (over: Partial<RunResult>): RunResult => ({ command: '/sbin/ipvsadm', args: [], exitCode: 0, signal: undefined, stdout: '', stderr: '', timedOut: false, spawnError: undefined, durationMs: 1, ok: true, ...over });
    let answer: Partial<RunResult> = {};
    const b = new IpvsadmBackend({
      path: '/sbin/ipvsadm',
      runner: async (_cmd, args, opts) => {
        calls.push({ args, input: opts?.input });
        return result({ args, ...answer });
      },
    });
    const ops: IpvsOp[] = [
      { op: 'add-service', service: { ...V, scheduler: 'wrr', persistence: { timeoutS: 300 }, reals: [] } },
      { op: 'add-real', key: V, real: { address: '127.0.0.11', port: 80, forwarding: 'gate', weight: 1 } },
      { op: 'edit-real', key: V, real: { address: '127.0.0.12', port: 80, forwarding: 'gate', weight: 0, upperThreshold: 9, lowerThreshold: 3 } },
      { op: 'delete-real', key: V, address: '127.0.0.13', port: 80 },
      { op: 'delete-service', key: { protocol: 'fwm', address: '', port: 0, fwmark: 7, family: 'inet6' } },
    ];
    await b.apply(ops);
    assert.deepEqual(calls, [
      {
        args: ['-R'],
        input: '-A -t 127.0.0.100:80 -s wrr -p 300\n-a -t 127.0.0.100:80 -r 127.0.0.11:80 -g -w 1\n-e -t 127.0.0.100:80 -r 127.0.0.12:80 -g -w 0 -x 9 -y 3\n-d -t 127.0.0.100:80 -r 127.0.0.13:80\n-D -f 7 -6\n',
      },
    ]);
    // ipvsadm -R goes on after a refused line and can still exit 0: the message alone is a failure.
    answer = { stderr: 'Destination already exists\n' };
    await assert.rejects(b.apply(ops), (e: Error & { code: string; details: { exitCode: number } }) => e.code === 'E_IPVS_COMMAND' && /Destination already exists/.test(e.message) && e.details.exitCode === 0);
    answer = { exitCode: 2, ok: false, stderr: 'illegal weight specified\n' };
    await assert.rejects(b.apply(ops), /exit 2: illegal weight specified/);
  });

  it('tells whether the kernel has IPVS, whatever ipvsadm binaries are installed', () => {
    assert.equal(kernelIpvsAvailable('/proc/self/status'), true);
    assert.equal(kernelIpvsAvailable('/proc/net/no_such_file'), false);
  });

  it('createBackend knows ipvsadm, embedded and memory and refuses other names', () => {
    assert.equal(createBackend('memory').name, 'memory');
    assert.equal(createBackend('embedded', { embedded: { socket: '/nonexistent.sock' } }).name, 'embedded');
    assert.equal(createBackend('ipvsadm', { ipvsadm: { path: '/bin/true' } }).name, 'ipvsadm');
    assert.throws(() => createBackend('nft'), (e: Error & { code: string }) => e.code === 'E_IPVS_BACKEND');
  });
});

describe('embedded backend (in process)', () => {
  it('applies a batch all or nothing and converges with reconcile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-emb-'));
    const daemon = await IpvsDaemon.create({ dataplane: stubDataplane(), stateFile: join(dir, 'state.json') });
    try {
      const b = new EmbeddedBackend({ daemon });
      const desired: IpvsTable = { services: [{ ...V, scheduler: 'wrr', reals: [{ address: '127.0.0.11', port: 8080, forwarding: 'gate', weight: 2 }] }] };
      await reconcile(b, desired, () => true);
      assert.deepEqual(diffTables(await b.read(), desired), []);
      const before = await b.read();
      await assert.rejects(
        b.apply([
          { op: 'add-real', key: V, real: { address: '127.0.0.12', port: 80, forwarding: 'gate', weight: 1 } },
          { op: 'add-service', service: { ...V, scheduler: 'rr', reals: [] } },
        ]),
        (e: Error & { code: string; details: { opIndex: number } }) => e.code === 'E_IPVS_SERVICE_EXISTS' && e.message === 'Service already exists' && e.details.opIndex === 1,
      );
      assert.deepEqual(await b.read(), before);
      // The same table semantics as the memory backend.
      const m = new MemoryBackend();
      await reconcile(m, desired, () => true);
      assert.deepEqual(await m.read(), await b.read());
    } finally {
      await daemon.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
