import assert from 'node:assert/strict';
import { StoredTable, applyOps, diffTables, normalizeTable, serviceId, sortedTable, type IpvsOp, type IpvsTable, type ServiceKey } from '@tandem/ipvs';
import { Policy, parseConfig, type Decision, type LdConfig, type Verdict } from '@tandem/ldirectord';
import { seededRandom } from '@tandem/core/random';

// The daemon's reconciles between heal passes diff only the entries the policy says changed
// (Policy.takeChanges → StoredTable.diffEntries) and update the confirmed table in place. These
// runs drive that path with random verdicts, maintenance, heal passes over a table changed behind
// the daemon's back and refused batches, next to a second policy driven the way the daemon did
// before (the whole desired table diffed each time), and require after every step: the same
// operations in the same order as the whole diff, the same decisions, and a confirmed table equal
// to the table the backend holds.

const env = { hostname: 'director', exists: () => true, writable: () => true };
function cfg(text: string): LdConfig {
  const r = parseConfig(text, 'incremental.cf', env);
  assert.ok(r.config, r.problems.map((p) => p.message).join('; '));
  return r.config;
}

const CONFIG = (readd: string) => `checkinterval=1
readdquiescent=${readd}
virtual=127.0.0.100:80
\treal=127.0.0.11:80 gate
\treal=127.0.0.12:8080 gate 2
\treal=127.0.0.13:80 gate 3
\tfallback=127.0.0.200:80 gate
\tquiescent=yes
\tfailurecount=2
\tservice=http
virtual=127.0.0.101:80
\treal=127.0.0.21:8080 masq
\treal=127.0.0.22:8081 masq 4
\treal=127.0.0.23:8082 masq
\tfallback=127.0.0.201:80 masq
\tquiescent=no
\tservice=http
virtual=5
\treal=127.0.0.31:80 masq
\treal=127.0.0.32:80 masq 2
\tquiescent=yes
\tservice=http
virtual=[2001:DB8::10]:443
\treal=[2001:db8::0011]:443 gate
\treal=[2001:db8::12]:443 gate 5
\tfallback=[2001:db8::20]:443 gate
\tquiescent=no
\tservice=http
virtual=127.0.0.102:80
\treal=127.0.0.41:80 gate
\treal=127.0.0.42:80 gate
\tchecktype=on
\tquiescent=yes
`;

/** Someone else's service in the table: never owned, never touched. */
const FOREIGN: IpvsTable = { services: [{ protocol: 'tcp', address: '127.0.0.250', port: 80, scheduler: 'rr', reals: [{ address: '127.0.0.251', port: 80, forwarding: 'gate', weight: 1 }] }] };

/** As the daemon's afterApply: the desired services, and those of `actual` neither desired nor owned. */
function afterApply(actual: IpvsTable, desired: IpvsTable, owns: (k: ServiceKey) => boolean): IpvsTable {
  const ids = new Set(desired.services.map((s) => serviceId(s)));
  return { services: [...desired.services, ...actual.services.filter((s) => !ids.has(serviceId(s)) && !owns(s))] };
}

function same(a: IpvsTable, b: IpvsTable): void {
  assert.deepEqual(sortedTable(normalizeTable(a)), sortedTable(normalizeTable(b)));
}

/** Changes to the table made behind the daemon's back, as a heal pass finds them. */
function tamper(t: IpvsTable, pick: <T>(xs: readonly T[]) => T): IpvsTable {
  const services = t.services.filter((s) => s.reals.length > 0);
  if (services.length === 0) return t;
  const s = pick(services);
  const r = pick(s.reals);
  const key = { protocol: s.protocol, address: s.address, port: s.port, fwmark: s.fwmark, family: s.family };
  const ops: IpvsOp[] = [
    pick<IpvsOp>([
      { op: 'delete-real', key, address: r.address, port: r.port },
      { op: 'edit-real', key, real: { ...r, weight: r.weight === 0 ? 7 : 0 } },
      { op: 'edit-real', key, real: { ...r, weight: r.weight + 1 } },
      { op: 'delete-service', key },
    ]),
  ];
  const stray = ops[0]!.op !== 'delete-service' && s.protocol !== 'fwm' && !s.address.includes(':') && !s.reals.some((x) => x.address === '127.0.0.99');
  if (stray) ops.push({ op: 'add-real', key, real: { address: '127.0.0.99', port: s.port, forwarding: 'gate', weight: 1 } });
  return applyOps(t, ops);
}

function run(seed: number, readd: 'yes' | 'no', steps: number): { trusted: number; ops: number } {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const config = cfg(CONFIG(readd));
  const inc = new Policy(config); // the daemon's path now
  const ref = new Policy(config); // the whole diff, as before
  const owns = (k: ServiceKey) => inc.owns(k);
  const ids = inc.realIds();
  let table: IpvsTable = FOREIGN;
  let confirmed: StoredTable | undefined;
  /** The table was changed behind the daemon's back since the last heal pass: `confirmed` is stale. */
  let tampered = false;
  let trusted = 0;
  let opCount = 0;
  const context = (step: number, what: string) => `seed ${seed} readdquiescent=${readd} step ${step}: ${what}`;

  const full = (step: number): void => {
    inc.dropChanges();
    const desired = inc.desired(table);
    const ops = diffTables(table, desired, owns);
    const refDesired = ref.desired(table);
    assert.deepEqual(diffTables(table, refDesired, owns), ops, context(step, 'whole diff'));
    const before = table;
    table = applyOps(table, ops);
    inc.appliedOps(ops);
    ref.applied(refDesired);
    confirmed = ops.length === 0 ? new StoredTable(before) : new StoredTable(afterApply(before, desired, owns));
    tampered = false;
    opCount += ops.length;
  };

  const start = inc.start(table);
  assert.deepEqual(ref.start(table), start);
  full(0);
  for (let step = 1; step <= steps; step++) {
    const x = random();
    if (x < 0.55) {
      // A few verdicts for one real in a row: up and down again before a reconcile happens too.
      const id = pick(ids);
      for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
        const v: Verdict = random() < 0.6 ? { up: true, reason: 'ok', durationMs: 1 } : { up: false, reason: 'refused', durationMs: 1 };
        const a: Decision[] = inc.verdict(id, v, step);
        assert.deepEqual(a, ref.verdict(id, v, step), context(step, `verdict ${id} ${v.up}`));
      }
    } else if (x < 0.62) {
      const id = pick(ids);
      const on = random() < 0.5;
      assert.deepEqual(inc.maintenance(id, on, step), ref.maintenance(id, on, step), context(step, `maintenance ${id} ${on}`));
    } else if (x < 0.9) {
      if (!confirmed) {
        full(step);
        continue;
      }
      // The trusted path, checked against the whole diff of the same confirmed table.
      const base = confirmed.table();
      if (!tampered) same(base, table);
      const refDesired = ref.desired(base);
      const expected = diffTables(base, refDesired, owns);
      const ops = confirmed.diffEntries(inc.takeChanges());
      assert.ok(ops, context(step, 'diffEntries gave up on a table that holds every owned service'));
      assert.deepEqual(ops, expected, context(step, 'incremental ops'));
      trusted++;
      opCount += ops.length;
      let next: IpvsTable;
      try {
        next = applyOps(table, ops);
      } catch {
        // The table changed behind our back refuses the batch: the next reconcile reads it.
        assert.ok(tampered, context(step, 'a batch built against the true table was refused'));
        confirmed = undefined;
        continue;
      }
      table = next;
      confirmed.apply(ops);
      inc.appliedOps(ops);
      ref.applied(refDesired);
      if (!tampered) {
        same(confirmed.table(), table);
        assert.deepEqual(diffTables(table, ref.desired(table), owns), [], context(step, 'converged'));
      }
    } else if (x < 0.93) {
      // Someone changes the table; the daemon finds out at the next heal pass.
      table = tamper(table, pick);
      tampered = true;
    } else if (x < 0.97) {
      full(step);
    } else {
      // A refused batch: the changes are gone with it, the next reconcile reads the table.
      inc.takeChanges();
      confirmed = undefined;
    }
  }
  return { trusted, ops: opCount };
}

describe('ldirectord policy: reconciles between heal passes cost what changed', () => {
  for (const readd of ['yes', 'no'] as const) {
    it(`readdquiescent=${readd}: incremental operations equal the whole diff after every random step`, () => {
      let trusted = 0;
      let ops = 0;
      for (let seed = 1; seed <= 60; seed++) {
        const r = run(seed, readd, 400);
        trusted += r.trusted;
        ops += r.ops;
      }
      // The runs must actually have gone through the incremental path with work to do.
      assert.ok(trusted > 1000, `only ${trusted} incremental reconciles`);
      assert.ok(ops > 1000, `only ${ops} operations`);
    });
  }

  it('diffEntries gives up (undefined) when a service is missing, so the daemon diffs the whole table', () => {
    const config = cfg(CONFIG('yes'));
    const p = new Policy(config);
    p.start({ services: [] });
    const desired = p.desired({ services: [] });
    const t = applyOps({ services: [] }, diffTables({ services: [] }, desired));
    const confirmed = new StoredTable(applyOps(t, [{ op: 'delete-service', key: { protocol: 'tcp', address: '127.0.0.100', port: 80 } }]));
    p.verdict(config.virtuals[0]!.reals[0]!.id, { up: true, reason: 'ok', durationMs: 1 });
    assert.equal(confirmed.diffEntries(p.takeChanges()), undefined);
  });
});
