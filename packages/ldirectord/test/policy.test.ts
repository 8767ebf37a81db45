import assert from 'node:assert/strict';
import { MemoryBackend, diffTables, reconcile, serviceId, type IpvsTable } from '@tandem/ipvs';
import { Policy, parseConfig, type Decision, type LdConfig, type Verdict } from '@tandem/ldirectord';

const env = { hostname: 'director', exists: () => true, writable: () => true };
function cfg(text: string): LdConfig {
  const r = parseConfig(text, 'policy.cf', env);
  assert.ok(r.config, r.problems.map((p) => p.message).join('; '));
  return r.config;
}
const UP: Verdict = { up: true, reason: 'HTTP 200 OK', durationMs: 1 };
const DOWN: Verdict = { up: false, reason: 'connection refused', durationMs: 1 };

/** The table as compact lines: `tcp 127.0.0.100:80 wrr` / `  127.0.0.11:80 gate w1`. */
function lines(t: IpvsTable): string[] {
  return t.services.flatMap((s) => [
    `${serviceId(s)} ${s.scheduler}${s.persistence ? ` p${s.persistence.timeoutS}` : ''}`,
    ...[...s.reals].sort((a, b) => (a.address + a.port < b.address + b.port ? -1 : 1)).map((r) => `  ${r.address}:${r.port} ${r.forwarding} w${r.weight}`),
  ]);
}

/** A policy driven against an in-memory table, as the daemon drives it. */
class Harness {
  readonly backend: MemoryBackend;
  policy: Policy;
  decisions: Decision[] = [];
  constructor(text: string, initial?: IpvsTable) {
    this.backend = new MemoryBackend(initial);
    this.policy = new Policy(cfg(text));
  }
  async start(): Promise<Decision[]> {
    const d = this.policy.start(await this.backend.read());
    await this.sync();
    this.decisions.push(...d);
    return d;
  }
  async sync(): Promise<void> {
    const desired = this.policy.desired(await this.backend.read());
    await reconcile(this.backend, desired, (k) => this.policy.owns(k));
    this.policy.applied(desired);
  }
  async verdict(addr: string, v: Verdict): Promise<Decision[]> {
    const id = this.policy.realIds().find((x) => x.endsWith(`/${addr}`));
    assert.ok(id, `no real ${addr}`);
    const d = this.policy.verdict(id, v);
    this.decisions.push(...d);
    await this.sync();
    return d;
  }
  async table(): Promise<string[]> {
    return lines(await this.backend.read());
  }
}

const BASIC = (opts: string) => `checkinterval=1
${opts}
virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate
\treal=127.0.0.12:80 gate 2
\treal=127.0.0.13:80 gate 3
\tfallback=127.0.0.200:80 gate
\tservice=http
`;

describe('ldirectord policy: quiescent, fallback, failurecount', () => {
  it('start-up: no real gets traffic before its first check, the fallback is in until one is up (no flap)', async () => {
    const h = new Harness(BASIC('quiescent=no'));
    const d = await h.start();
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.200:80 gate w1']);
    assert.deepEqual(d.map((x) => x.kind), ['virtual-added', 'fallback-added']);
    await h.verdict('127.0.0.11:80', UP);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1']);
    await h.verdict('127.0.0.12:80', UP);
    await h.verdict('127.0.0.13:80', UP);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w3']);
  });

  const quiescentCases: { q: string; down: string[]; messages: string[] }[] = [
    { q: 'quiescent=no', down: ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.13:80 gate w3'], messages: ['Deleted real server: 127.0.0.12:80 (127.0.0.100:80) (connection refused)', 'Resetting soft failure count: 127.0.0.12:80 (tcp:127.0.0.100:80)', 'Added real server: 127.0.0.12:80 (127.0.0.100:80) (Weight set to 2)'] },
    { q: 'quiescent=yes', down: ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w0', '  127.0.0.13:80 gate w3'], messages: ['Quiescent real server: 127.0.0.12:80 (127.0.0.100:80) (Weight set to 0) (connection refused)', 'Resetting soft failure count: 127.0.0.12:80 (tcp:127.0.0.100:80)', 'Restored real server: 127.0.0.12:80 (127.0.0.100:80) (Weight set to 2)'] },
  ];
  for (const c of quiescentCases) {
    it(`${c.q}: a failed real is ${c.q.endsWith('yes') ? 'set to weight 0' : 'removed'} and comes back with its configured weight`, async () => {
      const h = new Harness(BASIC(c.q));
      await h.start();
      for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
      const d1 = await h.verdict('127.0.0.12:80', DOWN);
      assert.deepEqual(await h.table(), c.down);
      const d2 = await h.verdict('127.0.0.12:80', UP);
      assert.deepEqual([...d1, ...d2].map((x) => x.message), c.messages);
      assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w2', '  127.0.0.13:80 gate w3']);
    });
  }

  it('the fallback is added when the last real goes down and removed when the first comes back; never quiesced', async () => {
    const h = new Harness(BASIC('quiescent=yes\nfallbackcommand="/bin/fb"'));
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
    const downs: Decision[] = [];
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) downs.push(...(await h.verdict(r, DOWN)));
    assert.deepEqual(downs.map((d) => d.kind), ['real-quiesced', 'real-quiesced', 'real-quiesced', 'fallback-added', 'fallbackcommand']);
    assert.equal(downs.at(-1)!.command, '"/bin/fb" start 127.0.0.100:80 tcp');
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w0', '  127.0.0.12:80 gate w0', '  127.0.0.13:80 gate w0', '  127.0.0.200:80 gate w1']);
    const up = await h.verdict('127.0.0.13:80', UP);
    // As recorded: the failure count stays at failurecount while down, so a recovery logs its reset.
    assert.deepEqual(up.map((d) => d.kind), ['failure-reset', 'real-restored', 'fallback-deleted', 'fallbackcommand']);
    assert.equal(up.at(-1)!.command, '"/bin/fb" stop 127.0.0.100:80 tcp');
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w0', '  127.0.0.12:80 gate w0', '  127.0.0.13:80 gate w3']);
    const more = await h.verdict('127.0.0.11:80', UP);
    assert.deepEqual(more.map((d) => d.kind), ['failure-reset', 'real-restored'], 'fallbackcommand runs once per change, not per real');
  });

  it('a global fallback serves every virtual without its own, on each virtual\'s port', async () => {
    const h = new Harness('fallback=127.0.0.200\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\nvirtual=127.0.0.100:81\n\treal=127.0.0.11:81 gate\n\tfallback=127.0.0.201:8081 masq\n');
    await h.start();
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.200:80 gate w1', 'tcp 127.0.0.100:81 wrr', '  127.0.0.201:8081 masq w1']);
  });

  it('failurecount=3: two failures are soft (no table change), the third takes the real down; a success resets', async () => {
    const h = new Harness(BASIC('failurecount=3'));
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
    const before = await h.table();
    const d1 = await h.verdict('127.0.0.12:80', DOWN);
    const d2 = await h.verdict('127.0.0.12:80', DOWN);
    assert.deepEqual([...d1, ...d2].map((d) => d.message), [
      'Soft failure real server: 127.0.0.12:80 (tcp:127.0.0.100:80) failure 1/3 (connection refused)',
      'Soft failure real server: 127.0.0.12:80 (tcp:127.0.0.100:80) failure 2/3 (connection refused)',
    ]);
    assert.deepEqual(await h.table(), before);
    const reset = await h.verdict('127.0.0.12:80', UP);
    assert.deepEqual(reset.map((d) => d.message), ['Resetting soft failure count: 127.0.0.12:80 (tcp:127.0.0.100:80)']);
    await h.verdict('127.0.0.12:80', DOWN);
    await h.verdict('127.0.0.12:80', DOWN);
    assert.deepEqual(await h.table(), before, 'the count restarted after the success');
    const d3 = await h.verdict('127.0.0.12:80', DOWN);
    assert.deepEqual(d3.map((d) => d.kind), ['real-deleted']);
    assert.ok(!(await h.table()).includes('  127.0.0.12:80 gate w2'));
  });

  it('a real that is down is not counted again (no decisions while it stays down)', async () => {
    const h = new Harness(BASIC(''));
    await h.start();
    assert.deepEqual(await h.verdict('127.0.0.11:80', DOWN), []);
    assert.deepEqual(await h.verdict('127.0.0.11:80', DOWN), []);
  });
});

describe('ldirectord policy: readdquiescent, checktype on/off, port mapping, maintenance', () => {
  it('readdquiescent=yes re-adds a down real that an operator removed, at weight 0', async () => {
    const h = new Harness(BASIC('quiescent=yes\nreaddquiescent=yes'));
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
    const [svc] = (await h.backend.read()).services;
    await h.backend.apply([{ op: 'delete-real', key: svc!, address: '127.0.0.12', port: 80 }]);
    const d = h.policy.verdict(h.policy.realIds()[1]!, DOWN);
    await h.sync();
    assert.equal(d[0]!.kind, 'real-quiesced');
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w0'));
  });

  it('readdquiescent=no leaves a down real out once someone removed it', async () => {
    const h = new Harness(BASIC('quiescent=yes\nreaddquiescent=no'));
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
    await h.verdict('127.0.0.12:80', DOWN);
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w0'));
    const [svc] = (await h.backend.read()).services;
    await h.backend.apply([{ op: 'delete-real', key: svc!, address: '127.0.0.12', port: 80 }]);
    await h.sync();
    assert.ok(!(await h.table()).some((l) => l.includes('127.0.0.12')), 'not re-added while down');
    await h.verdict('127.0.0.12:80', UP);
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w2'), 'added again when it is up');
  });

  it('checktype=on: reals are up from the start; checktype=off: never up, the fallback stays', async () => {
    const on = new Harness('virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 4\n\tfallback=127.0.0.200:80\n\tchecktype=on\n');
    await on.start();
    assert.deepEqual(await on.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w4']);
    const off = new Harness('virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate 4\n\tfallback=127.0.0.200:80\n\tchecktype=off\n');
    await off.start();
    await off.verdict('127.0.0.11:80', UP);
    assert.deepEqual(await off.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.200:80 gate w1']);
  });

  it('ldirectord bug §8-5 fixed: a gate real on another port than its virtual is restored after a quiesce', async () => {
    const h = new Harness('quiescent=yes\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:8080 gate\n\treal=127.0.0.12:8080 masq\n\tservice=http\n');
    await h.start();
    await h.verdict('127.0.0.11:8080', UP);
    await h.verdict('127.0.0.12:8080', UP);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:8080 masq w1']);
    await h.verdict('127.0.0.11:8080', DOWN);
    assert.ok((await h.table()).includes('  127.0.0.11:80 gate w0'));
    const d = await h.verdict('127.0.0.11:8080', UP);
    assert.deepEqual(d.map((x) => x.kind), ['failure-reset', 'real-restored']);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:8080 masq w1'], 'ldirectord 4.12 leaves it at weight 0 forever');
    assert.equal(h.backend.refused.length, 0, 'no command was refused by the table');
  });

  it('quiescing keeps the thresholds (ldirectord resets them to 0 while quiesced, §8-13)', async () => {
    const h = new Harness('quiescent=yes\nvirtual=127.0.0.100:80\n\treal=127.0.0.11:80 masq 3 l:2 u:10\n\tservice=http\n');
    await h.start();
    await h.verdict('127.0.0.11:80', UP);
    await h.verdict('127.0.0.11:80', DOWN);
    const r = (await h.backend.read()).services[0]!.reals[0]!;
    assert.deepEqual([r.weight, r.lowerThreshold, r.upperThreshold], [0, 2, 10]);
  });

  it('maintenance forces a real down at once (ignoring failurecount) and it returns with its next good check', async () => {
    const h = new Harness(BASIC('quiescent=yes\nfailurecount=5'));
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80', '127.0.0.13:80']) await h.verdict(r, UP);
    const id = h.policy.realIds()[1]!;
    const d = h.policy.maintenance(id, true);
    await h.sync();
    assert.deepEqual(d.map((x) => x.kind), ['maintenance-on', 'real-quiesced']);
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w0'));
    assert.deepEqual(h.policy.verdict(id, UP), [], 'checks are ignored while in maintenance');
    h.policy.maintenance(id, false);
    await h.sync();
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w0'), 'still down until checked');
    await h.verdict('127.0.0.12:80', UP);
    assert.ok((await h.table()).includes('  127.0.0.12:80 gate w2'));
  });
});

describe('ldirectord policy: start-up over an existing table, reload, stop', () => {
  const pre: IpvsTable = {
    services: [
      { protocol: 'tcp', address: '127.0.0.100', port: 80, scheduler: 'rr', persistence: { timeoutS: 60 }, reals: [
        { address: '127.0.0.11', port: 80, forwarding: 'gate', weight: 7 },
        { address: '127.0.0.99', port: 80, forwarding: 'gate', weight: 1 },
      ] },
      { protocol: 'tcp', address: '127.0.0.101', port: 80, scheduler: 'wlc', reals: [{ address: '127.0.0.98', port: 80, forwarding: 'masq', weight: 1 }] },
    ],
  };

  it('a real already in the table with a weight is up; unknown reals are purged; other virtuals are untouched (recorded preexisting scenario)', async () => {
    const h = new Harness(BASIC('quiescent=no'), pre);
    const d = await h.start();
    assert.deepEqual(d.map((x) => x.message), [
      'Changed virtual server: 127.0.0.100:80',
      'Restored real server: 127.0.0.11:80 (127.0.0.100:80) (Weight set to 1)',
      'Purged real server (start): 127.0.0.99:80 (127.0.0.100:80)',
    ]);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', 'tcp 127.0.0.101:80 wlc', '  127.0.0.98:80 masq w1']);
  });

  it('reload: same config decides nothing; a weight change restores; dropped virtuals are purged; state is carried over', async () => {
    const h = new Harness(BASIC('quiescent=yes') + 'virtual=127.0.0.101:80\n\treal=127.0.0.11:80 masq\n\tchecktype=on\n');
    await h.start();
    for (const r of ['127.0.0.11:80', '127.0.0.12:80']) await h.verdict(r, UP);
    await h.verdict('127.0.0.13:80', DOWN);
    const same = new Policy(cfg(BASIC('quiescent=yes') + 'virtual=127.0.0.101:80\n\treal=127.0.0.11:80 masq\n\tchecktype=on\n'), h.policy);
    assert.deepEqual(same.start(await h.backend.read(), h.policy.config.virtuals.map((v) => v.id)), []);
    const next = new Policy(cfg(BASIC('quiescent=yes').replace('127.0.0.12:80 gate 2', '127.0.0.12:80 gate 5')), h.policy);
    const d = next.start(await h.backend.read(), h.policy.config.virtuals.map((v) => v.id));
    assert.deepEqual(d.map((x) => x.message), ['Restored real server: 127.0.0.12:80 (127.0.0.100:80) (Weight set to 5)', 'Purged virtual server (start): 127.0.0.101:80']);
    const actual = await h.backend.read();
    const oldIds = new Set(h.policy.config.virtuals.map((v) => v.id));
    await h.backend.apply(diffTables(actual, next.desired(actual), (k) => next.owns(k) || oldIds.has(serviceId(k))));
    assert.deepEqual(lines(await h.backend.read()), ['tcp 127.0.0.100:80 wrr', '  127.0.0.11:80 gate w1', '  127.0.0.12:80 gate w5', '  127.0.0.13:80 gate w0']);
    assert.equal(next.real(next.realIds()[2]!)!.state.up, false, 'the down real stays down across the reload');
  });

  it('stop: cleanstop=yes removes the virtual, cleanstop=no (per virtual) leaves it', async () => {
    const h = new Harness('virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=on\nvirtual=127.0.0.100:81\n\treal=127.0.0.11:81 gate\n\tchecktype=on\n\tcleanstop=no\n');
    await h.start();
    const { ops, decisions } = h.policy.stop(await h.backend.read());
    assert.deepEqual(decisions.map((d) => d.message), ['Purged real server (stop): 127.0.0.11:80 (127.0.0.100:80)', 'Purged virtual server (stop): 127.0.0.100:80']);
    await h.backend.apply(ops);
    assert.deepEqual(await h.table(), ['tcp 127.0.0.100:81 wrr', '  127.0.0.11:81 gate w1']);
  });

  it('status names each virtual and real with up/down, weight and the last verdict reason', async () => {
    const h = new Harness(BASIC('quiescent=yes'));
    await h.start();
    h.policy.verdict(h.policy.realIds()[0]!, UP, 1234);
    h.policy.verdict(h.policy.realIds()[1]!, DOWN, 1235);
    const [v] = h.policy.status();
    assert.equal(v!.id, 'tcp 127.0.0.100:80');
    assert.equal(v!.realsUp, 1);
    assert.equal(v!.fallbackActive, false);
    assert.deepEqual(v!.reals.map((r) => [r.address, r.up, r.weight, r.pending, r.lastVerdict?.reason]), [
      ['127.0.0.11', true, 1, false, 'HTTP 200 OK'],
      ['127.0.0.12', false, 0, false, 'connection refused'],
      ['127.0.0.13', false, 0, true, undefined],
    ]);
  });
});
