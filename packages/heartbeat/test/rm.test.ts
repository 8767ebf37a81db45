/**
 * The resource manager's state machine in a deterministic two-node simulation (src/rm/sim.ts):
 * the conversation is checked message by message against what two real heartbeat 3.0.6 nodes said
 * (reference/heartbeat-wire/*-sequence.txt), and every scenario checks that no group ever ran on
 * both nodes at once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { RmSim } from '../src/rm/sim.ts';
import type { AutoFailbackMode } from '../src/rm/machine.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const WIRE = `${FIXTURES}/reference/heartbeat-wire`;
const G1 = 'IPaddr::10.214.9.50/24/eth0';
const RESOURCE_TYPES = ['starting', 'resource', 'ask_resources', 'hb_takeover', 'ip-request', 'ip-request-resp', 'shutdone'];

/** A recording's resource conversation, per sending node, as `t=... k=v` strings. */
function recorded(file: string): Record<string, string[]> {
  const out: Record<string, string[]> = { node1: [], node2: [] };
  for (const line of readFileSync(`${WIRE}/${file}`, 'utf8').split('\n')) {
    const m = /^#\d+ \S+ 10\.214\.9\.(11|12):\d+->\S+ (.*)$/.exec(line);
    if (!m) continue;
    const text = m[2]!.trim();
    if (/t=(reqnodes|repnodes)/.test(text)) continue;
    out[m[1] === '11' ? 'node1' : 'node2']!.push(text);
  }
  return out;
}

function sent(sim: RmSim, node: string, fromIndex = 0): string[] {
  return sim.wire.slice(fromIndex)
    .filter((w) => w.from === node && RESOURCE_TYPES.includes(w.fields.get('t') ?? ''))
    .map((w) => [...w.fields].map(([k, v]) => `${k}=${v}`).join(' '));
}

function pair(mode: AutoFailbackMode, groups = [{ key: G1, node: 'node1' }], extra: { ipfail?: boolean } = {}) {
  const sim = new RmSim({ latencyMs: 1, jobMs: 50 });
  const common = {
    nodes: ['node1', 'node2'], groups, autoFailback: mode,
    pingNodes: extra.ipfail ? ['group1'] : [],
    ipfail: extra.ipfail ? { keepaliveMs: 1000, recheckMs: 10_000 } : undefined,
  };
  sim.add({ name: 'node1', ...common });
  sim.add({ name: 'node2', ...common });
  return sim;
}

/** Both nodes start together as in the captures: node2 first; node1 comes up on hearing it. */
function startBoth(sim: RmSim): void {
  sim.input('node1', (m, now) => m.nodeUp('node2', now), 0);
  sim.input('node2', (m, now) => m.nodeUp('node1', now), 0);
  sim.commUp('node2', 0);
  sim.commUp('node1', 1);
  sim.run(15_000);
}

describe('resource manager: the conversation, against heartbeat 3.0.6 recordings', () => {
  it('start-up: starting, resource none, RQSTDELAY, then the owner takes its group (ucast-sha1 capture)', () => {
    const sim = pair('on');
    startBoth(sim);
    const rec = recorded('ucast-sha1-sequence.txt');
    const startEnd = rec.node1.findIndex((l) => l.includes('info=req_our_resources()')) + 1;
    assert.deepEqual(sent(sim, 'node1'), rec.node1.slice(0, startEnd));
    assert.deepEqual(sent(sim, 'node2'), rec.node2.slice(0, rec.node2.findIndex((l) => l.includes('info=req_our_resources()')) + 1));
    assert.deepEqual(sim.holders(G1), ['node1']);
    // RQSTDELAY: nothing was acquired during the first 10 s.
    const firstStable = sim.wire.find((w) => w.fields.get('isstable') === '1')!;
    assert.ok(firstStable.at >= 10_000, `first stable resource message at ${firstStable.at}`);
    assert.equal(sim.node('node1').machine.rscstatus(), 'local');
    // A node with no groups of its own says local, as the real one does.
    assert.equal(sim.node('node2').machine.rscstatus(), 'local');
    assert.deepEqual(sim.violations, []);
  });

  it('hb_standby, hb_takeover and a graceful stop say exactly what the real nodes said', () => {
    const sim = pair('on');
    startBoth(sim);
    const rec = recorded('ucast-sha1-sequence.txt');
    const tail = (node: 'node1' | 'node2') => rec[node].slice(rec[node].findIndex((l) => l.includes('info=req_our_resources()')) + 1);
    const mark = sim.wire.length;

    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.run(25_000);
    assert.deepEqual(sim.holders(G1), ['node2']);
    const afterStandby = sim.wire.length;
    sim.input('node1', (m, now) => m.takeoverRequest('all', now), 30_000);
    sim.run(35_000);
    assert.deepEqual(sim.holders(G1), ['node1']);
    const afterTakeover = sim.wire.length;
    sim.input('node2', (m, now) => m.shutdown(now), 40_000);
    sim.run(45_000);
    assert.deepEqual(sim.holders(G1), ['node1']);

    const n1 = tail('node1');
    const n2 = tail('node2');
    // hb_standby on node1 (#65..#79)
    assert.deepEqual(sent({ wire: sim.wire.slice(0, afterStandby) } as RmSim, 'node1', mark), n1.slice(0, 5));
    assert.deepEqual(sent({ wire: sim.wire.slice(0, afterStandby) } as RmSim, 'node2', mark), n2.slice(0, 4));
    // hb_takeover on node1 (#83..#100)
    assert.deepEqual(sent({ wire: sim.wire.slice(0, afterTakeover) } as RmSim, 'node1', afterStandby), n1.slice(5, 10));
    assert.deepEqual(sent({ wire: sim.wire.slice(0, afterTakeover) } as RmSim, 'node2', afterStandby), n2.slice(4, 9));
    // graceful stop of node2 (#105..#108): node1 takes over at once, without waiting for a deadtime
    assert.deepEqual(sent(sim, 'node2', afterTakeover), n2.slice(9));
    assert.deepEqual(sent(sim, 'node1', afterTakeover), n1.slice(10));
    assert.ok(sim.wire.at(-1)!.at < 40_000 + 1000);
    assert.equal(sim.node('node1').machine.rscstatus(), 'all');
    assert.deepEqual(sim.violations, []);
  });

  it('reproduces the start-up of every capture (crc, md5, mcast, bcast, netstring) under that run\'s timing', () => {
    // Who came up first, whether the other was already up to hear that first "starting", and whose
    // timer was noticed late (heartbeat polls every 250 ms) decide the interleaving; for each capture
    // one of these timings must give exactly the recorded messages, node by node, in order.
    const reproduced: string[] = [];
    for (const f of ['ucast-sha1', 'ucast-crc', 'ucast-md5', 'mcast-sha1', 'bcast-sha1', 'ucast-sha1-msgfmt-netstring']) {
      const rec = recorded(`${f}-sequence.txt`);
      // ucast-sha1 goes on with hb_standby: the start-up is everything before it.
      const want = (n: 'node1' | 'node2') => {
        const cut = rec[n].findIndex((l) => /t=(ask_resources|hb_takeover)/.test(l));
        return cut < 0 ? rec[n] : rec[n].slice(0, cut);
      };
      const found: string[] = [];
      for (const first of ['node1', 'node2'] as const) {
        for (const secondUpEarly of [true, false]) {
          for (const slow of ['none', 'node1 timer', 'node2 timer', 'node1 inbound', 'node2 inbound', 'node1 both', 'node2 both']) {
            const sim = new RmSim({ latencyMs: 1, jobMs: 50 });
            for (const name of ['node1', 'node2']) {
              sim.add({
                name, nodes: ['node1', 'node2'], groups: [{ key: G1, node: 'node1' }], autoFailback: 'on',
                tickDelayMs: slow === `${name} timer` ? 200 : slow === `${name} both` ? 300 : 0,
                inboundDelayMs: slow === `${name} inbound` || slow === `${name} both` ? 200 : 0,
              });
            }
            const second = first === 'node1' ? 'node2' : 'node1';
            sim.input('node1', (m, now) => m.nodeUp('node2', now), 0);
            sim.input('node2', (m, now) => m.nodeUp('node1', now), 0);
            sim.commUp(first, 0);
            sim.commUp(second, secondUpEarly ? 1 : 5);
            sim.run(15_000);
            assert.deepEqual(sim.holders(G1), ['node1']);
            const match = JSON.stringify(sent(sim, 'node1')) === JSON.stringify(want('node1')) && JSON.stringify(sent(sim, 'node2')) === JSON.stringify(want('node2'));
            if (match) found.push(`${first} first, ${second} ${secondUpEarly ? 'up' : 'not up'} at its starting, ${slow} slow`);
          }
        }
      }
      assert.ok(found.length > 0, `no timing reproduces ${f}`);
      reproduced.push(`${f}: ${found[0]}`);
    }
  });
});

describe('resource manager: takeover and failback', () => {
  for (const mode of ['on', 'off', 'legacy'] as const) {
    it(`auto_failback ${mode}: the peer takes over a crashed node's group; on return the group ${mode === 'off' ? 'stays' : 'comes back, released before acquired'}`, () => {
      const sim = pair(mode);
      startBoth(sim);
      assert.deepEqual(sim.holders(G1), ['node1']);
      sim.crash('node1', 5000);
      sim.run(16_000);
      sim.run(sim.now + 5100);
      assert.deepEqual(sim.holders(G1), ['node2'], 'taken over after deadtime');
      assert.ok(sim.node('node2').logs.some((l) => /Resources being acquired from node1/.test(l.msg)));
      sim.restart('node1', sim.now + 1000);
      sim.run(sim.now + 30_000);
      assert.deepEqual(sim.holders(G1), mode === 'off' ? ['node2'] : ['node1']);
      assert.deepEqual(sim.violations, []);
      if (mode === 'on') {
        // Auto failback is the standby handshake for the foreign set, started by the holder.
        assert.ok(sim.transcript(['ask_resources']).some((l) => l === 'node2: t=ask_resources rsc_hold=foreign info=me'));
      }
      if (mode === 'legacy') {
        assert.ok(sim.transcript(['ip-request']).some((l) => l === `node1: t=ip-request ipaddr=${G1}`));
        assert.ok(sim.transcript(['ip-request-resp']).some((l) => l === `node2: t=ip-request-resp dest=node1 ipaddr=${G1} weown=yes ok=OK`));
      }
    });

    it(`auto_failback ${mode}, the other order: node1 alone takes everything after initdead; node2's group ${mode === 'off' ? 'stays with node1' : 'goes to node2'} when it starts`, () => {
      const sim = pair(mode, [{ key: G1, node: 'node1' }, { key: 'httpd', node: 'node2' }]);
      // node2 is not there: initdead passes, node1 declares it dead and takes both groups.
      sim.input('node1', (m, now) => m.nodeDead('node2', now), 12_000);
      sim.commUp('node1', 12_000);
      sim.node('node2').alive = false;
      sim.run(30_000);
      assert.deepEqual(sim.holders(G1), ['node1']);
      assert.deepEqual(sim.holders('httpd'), ['node1']);
      sim.restart('node2', 31_000);
      sim.run(60_000);
      assert.deepEqual(sim.holders(G1), ['node1']);
      assert.deepEqual(sim.holders('httpd'), mode === 'off' ? ['node1'] : ['node2']);
      assert.deepEqual(sim.violations, []);
    });
  }

  it('a peer declared dead at initdead that shows up during the takeover: the takeover still completes (rscstatus leaves transition)', () => {
    const sim = pair('on');
    // As in the lab: node1's initdead runs out before node2 is heard, node1 declares node2 dead while
    // it is itself still in 'init', and node2 starts a moment later.
    sim.node('node2').alive = false;
    sim.input('node1', (m, now) => m.nodeDead('node2', now), 12_000);
    sim.restart('node2', 12_050);
    sim.commUp('node1', 12_100);
    sim.run(60_000);
    assert.deepEqual(sim.holders(G1), ['node1']);
    assert.notEqual(sim.node('node1').machine.rscstatus(), 'transition');
    assert.notEqual(sim.node('node2').machine.rscstatus(), 'transition');
    assert.deepEqual(sim.violations, []);
  });

  it('crash of node2 and its return, with two groups (auto_failback on)', () => {
    const sim = pair('on', [{ key: G1, node: 'node1' }, { key: 'httpd', node: 'node2' }]);
    startBoth(sim);
    assert.deepEqual([sim.holders(G1), sim.holders('httpd')], [['node1'], ['node2']]);
    sim.crash('node2', 5000);
    sim.run(sim.now + 6000);
    assert.deepEqual(sim.holders('httpd'), ['node1']);
    assert.equal(sim.node('node1').machine.rscstatus(), 'all');
    sim.restart('node2', sim.now + 100);
    sim.run(sim.now + 30_000);
    assert.deepEqual([sim.holders(G1), sim.holders('httpd')], [['node1'], ['node2']]);
    assert.deepEqual(sim.violations, []);
    assert.equal(sim.node('node1').machine.rscstatus(), 'local');
    assert.equal(sim.node('node2').machine.rscstatus(), 'local');
  });
});

describe('resource manager: standby and takeover with all|foreign|local', () => {
  const two = () => {
    const sim = pair('off', [{ key: G1, node: 'node1' }, { key: 'httpd', node: 'node2' }]);
    startBoth(sim);
    return sim;
  };
  const where = (sim: RmSim) => `${sim.holders(G1).join('+') || '-'} ${sim.holders('httpd').join('+') || '-'}`;

  it('hb_standby local gives up only this node\'s own groups; foreign gives back the peer\'s', () => {
    const sim = two();
    assert.equal(where(sim), 'node1 node2');
    sim.input('node1', (m, now) => m.standbyRequest('local', now), 20_000);
    sim.run(25_000);
    assert.equal(where(sim), 'node2 node2');
    assert.equal(sim.node('node1').machine.rscstatus(), 'none');
    assert.equal(sim.node('node2').machine.rscstatus(), 'all');
    sim.input('node2', (m, now) => m.standbyRequest('foreign', now), 30_000);
    sim.run(35_000);
    assert.equal(where(sim), 'node1 node2');
    assert.deepEqual(sim.violations, []);
  });

  it('hb_standby all, then hb_takeover local and foreign', () => {
    const sim = two();
    sim.input('node2', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.run(25_000);
    assert.equal(where(sim), 'node1 node1');
    sim.input('node2', (m, now) => m.takeoverRequest('local', now), 30_000);
    sim.run(35_000);
    assert.equal(where(sim), 'node1 node2', 'takeover local: node2 gets back its own group');
    assert.ok(sim.transcript(['ask_resources']).includes('node1: t=ask_resources rsc_hold=foreign info=me'));
    sim.input('node2', (m, now) => m.takeoverRequest('foreign', now), 40_000);
    sim.run(45_000);
    assert.equal(where(sim), 'node2 node2', 'takeover foreign: node2 takes node1\'s group');
    sim.input('node1', (m, now) => m.takeoverRequest('all', now), 50_000);
    sim.run(55_000);
    assert.equal(where(sim), 'node1 node1');
    assert.deepEqual(sim.violations, []);
  });

  it('ignores a standby while the cluster is in transition, and a second request while one runs', () => {
    const sim = two();
    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.run(25_000);
    assert.equal(where(sim), 'node2 node2');
    assert.ok(sim.node('node1').logs.some((l) => /Standby in progress- new request from node1 ignored/.test(l.msg)));
    const early = pair('on');
    early.commUp('node1', 0);
    early.input('node1', (m, now) => m.standbyRequest('all', now), 1);
    early.run(2);
    assert.ok(early.node('node1').logs.some((l) => /ignored\.  (Other side is in flux|local resources in flux)/.test(l.msg)));
    assert.equal(early.node('node1').machine.rscstatus(), 'transition');
  });

  it('legacy mode keeps heartbeat\'s rule: standby is only implemented with nice_failback', () => {
    const sim = pair('legacy');
    startBoth(sim);
    assert.deepEqual(sim.holders(G1), ['node1']);
    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.run(25_000);
    assert.deepEqual(sim.holders(G1), ['node1']);
    assert.ok(sim.node('node2').logs.some((l) => l.msg === 'Standby mode only implemented when nice_failback on'));
  });
});

describe('resource manager: failures, shutdown, ipfail', () => {
  it('a group whose start fails is rolled back, not held, and offered to the peer 30 s later', () => {
    const sim = pair('on');
    sim.node('node1').failStart.add(G1);
    startBoth(sim);
    assert.deepEqual(sim.holders(G1), []);
    const m1 = sim.node('node1').machine;
    assert.ok(!m1.held.has(G1));
    assert.ok(m1.failed.has(G1));
    assert.ok(sim.node('node1').logs.some((l) => l.level === 'error' && /failed to start and was released: simulated start failure/.test(l.msg)));
    sim.run(sim.now + 31_000);
    assert.deepEqual(sim.holders(G1), ['node2'], 'the peer took it after the standby');
    assert.deepEqual(sim.violations, []);
  });

  it('a stop that fails and still runs is never handed over: no standby done, no double VIP', () => {
    const sim = pair('on');
    startBoth(sim);
    sim.node('node1').failStop.add(G1);
    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    sim.run(40_000);
    assert.deepEqual(sim.holders(G1), ['node1'], 'still running on node1, not started on node2');
    assert.match(sim.node('node1').fatal ?? '', /resource stop failed and still running in IPaddr::10\.214\.9\.50\/24\/eth0/);
    assert.ok(!sim.transcript(['ask_resources'], 20_000).includes('node1: t=ask_resources rsc_hold=all info=done'));
    assert.deepEqual(sim.violations, []);
    // A shutdown still ends (the daemon can exit) even though the stop failed.
    sim.input('node1', (m, now) => m.shutdown(now), 40_000);
    sim.run(41_000);
    assert.equal(sim.node('node1').stopped, true);
  });

  it('a graceful stop releases first, then the daemon may send shutdone; a stop waits for running jobs', () => {
    const sim = pair('on');
    startBoth(sim);
    sim.input('node1', (m, now) => m.standbyRequest('all', now), 20_000);
    // Requested while the release job of the standby runs: delayed until it finishes.
    sim.input('node2', (m, now) => m.shutdown(now), 20_004);
    sim.run(30_000);
    assert.ok(sim.node('node2').logs.some((l) => /Shutdown delayed until current resource activity finishes/.test(l.msg)));
    assert.equal(sim.node('node2').stopped, true);
    assert.deepEqual(sim.holders(G1), ['node1']);
    assert.deepEqual(sim.violations, []);
  });

  it('ipfail: the director that loses its ping group while the peer still reaches it gives its groups up', () => {
    const sim = pair('off', [{ key: G1, node: 'node1' }], { ipfail: true });
    startBoth(sim);
    for (const n of ['node1', 'node2']) sim.input(n, (m, now) => m.pingStatus('group1', true, now), 15_000);
    sim.run(16_000);
    assert.deepEqual(sim.holders(G1), ['node1']);
    sim.input('node1', (m, now) => m.pingStatus('group1', false, now), 20_000);
    sim.run(30_000);
    assert.deepEqual(sim.holders(G1), ['node2']);
    const t = sim.transcript(['num_ping_nodes', 'you_are_dead', 'ask_resources'], 20_000);
    assert.deepEqual(t.slice(0, 3), [
      'node1: t=num_ping_nodes dest=node2 num_ping=0',
      'node2: t=you_are_dead dest=node1',
      'node1: t=ask_resources rsc_hold=all info=me',
    ]);
    assert.deepEqual(sim.violations, []);
  });

  it('ipfail: when both lose the ping group nothing moves', () => {
    const sim = pair('off', [{ key: G1, node: 'node1' }], { ipfail: true });
    startBoth(sim);
    for (const n of ['node1', 'node2']) sim.input(n, (m, now) => m.pingStatus('group1', true, now), 15_000);
    for (const n of ['node1', 'node2']) sim.input(n, (m, now) => m.pingStatus('group1', false, now), 20_000);
    sim.run(40_000);
    assert.deepEqual(sim.holders(G1), ['node1']);
    assert.ok(sim.transcript(['abort_giveup'], 20_000).length > 0);
  });
});
