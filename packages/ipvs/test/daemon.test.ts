import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '@tandem/core';
import { IpvsDaemon, type TableCommand, socketClient } from '@tandem/ipvs';
import { EXAMPLES, stubDataplane } from './helpers.ts';

const V = { protocol: 'tcp' as const, address: '10.0.0.1', port: 80 };
const add: TableCommand = { op: 'add-service', service: { ...V, scheduler: 'rr', reals: [] } };
const real = (n: number): TableCommand => ({ op: 'add-real', key: V, real: { address: `10.0.0.${n}`, port: 80, forwarding: 'masq', weight: 1 } });

describe('IpvsDaemon (in process)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ipvsd-unit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('applies atomic batches whole or not at all, sequential ones command by command', async () => {
    const updates: number[] = [];
    const dp = { ...stubDataplane(), update: async (t: { services: unknown[] }) => void updates.push(t.services.length) };
    const d = await IpvsDaemon.create({ dataplane: dp });
    try {
      const atomic = await d.exec([add, real(2), add, real(3)], 'atomic');
      assert.equal(atomic.applied, false);
      assert.deepEqual(atomic.results.map((r) => (r.ok ? 'ok' : r.code)), ['ok', 'ok', 'E_IPVS_SERVICE_EXISTS', 'E_IPVS_SKIPPED']);
      assert.equal(d.table.services.length, 0);
      const seq = await d.exec([add, real(2), add, real(3), { op: 'zero', key: { ...V, port: 81 } }], 'sequential');
      assert.deepEqual(seq.results.map((r) => (r.ok ? 'ok' : r.message)), ['ok', 'ok', 'Service already exists', 'ok', 'No such service']);
      assert.equal(d.table.services[0]!.reals.length, 2);
      // One data-plane update per batch that changed the table (the first at start).
      assert.deepEqual(updates, [0, 1]);
      await d.exec([{ op: 'zero' }, { op: 'zero', key: V }], 'atomic');
      assert.deepEqual(dp.zeroed, ['all', V]);
    } finally {
      await d.close();
    }
  });

  it('keeps the table in its state file and refuses a damaged one with a clear error', async () => {
    const state = join(dir, 'table.json');
    const d1 = await IpvsDaemon.create({ dataplane: stubDataplane(), stateFile: state });
    await d1.exec([add, real(2), { op: 'set-timeouts', timeouts: [100, 0, 20] }]);
    await d1.close();
    assert.equal(statSync(state).mode & 0o777, 0o600);
    const d2 = await IpvsDaemon.create({ dataplane: stubDataplane(), stateFile: state });
    assert.deepEqual(d2.table.services.map((s) => s.reals.length), [1]);
    assert.deepEqual(d2.timeouts, [100, 120, 20]);
    await d2.close();
    writeFileSync(state, '{"version":1,"table":{"services":[{"protocol":"tcp","address":"10.0.0.1","port":80,"scheduler":"nope","reals":[]}]}}');
    await assert.rejects(IpvsDaemon.create({ dataplane: stubDataplane(), stateFile: state }), (e: Error & { code: string }) => e.code === 'E_IPVS_STATE' && /table\.json is not valid: Scheduler or persistence engine not found/.test(e.message));
  });

  it('restores an ipvsadm-save file over the table, and answers on its socket (0600)', async () => {
    const d = await IpvsDaemon.create({ dataplane: stubDataplane() });
    const sock = join(dir, 'd.sock');
    const server = await d.listen(sock);
    try {
      await d.exec([add]);
      await d.restoreFile(join(EXAMPLES, 'sysconfig-ipvsadm'));
      assert.deepEqual(d.table.services.map((s) => `${s.address}:${s.port} ${s.reals.length}`), ['192.168.136.10:80 5']);
      assert.equal(statSync(sock).mode & 0o777, 0o600);
      const c = socketClient(sock);
      assert.deepEqual(await c.read(), d.table);
      const r = await c.exec([{ op: 'delete-service', key: { protocol: 'tcp', address: '192.168.136.10', port: 80 } }], 'atomic');
      assert.deepEqual(r, { results: [{ ok: true }], applied: true });
      assert.deepEqual(await controlRequest(sock, { cmd: 'frobnicate' }), { ok: false, error: 'unknown command frobnicate', code: 'E_CONTROL_PROTOCOL' });
      const bad = join(dir, 'bad.rules');
      writeFileSync(bad, readFileSync(join(EXAMPLES, 'sysconfig-ipvsadm'), 'utf8') + '-a -t 192.168.136.10:80 -r 192.168.136.11:80 -i\n');
      await assert.rejects(d.restoreFile(bad), /bad\.rules: rule 7 refused: Destination already exists/);
      // 10,000 reals in one batch is one request (about 1.5 MB of JSON), applied whole.
      const big: TableCommand[] = [add];
      for (let i = 0; i < 10_000; i++) big.push({ op: 'add-real', key: V, real: { address: `10.1.${i >> 8}.${i & 255}`, port: 80, forwarding: 'masq', weight: 1 } });
      const r10k = await c.exec(big, 'atomic');
      assert.equal(r10k.results.filter((x) => x.ok).length, 10_001);
      assert.equal((await c.read()).services[0]!.reals.length, 10_000);
      await c.exec([{ op: 'clear' }], 'atomic');
      assert.deepEqual(d.table, { services: [] });
    } finally {
      await server.close();
      await d.close();
    }
  });
});
