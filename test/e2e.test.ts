/**
 * Seed 001 end to end, for real: the lab (test/lab/lab.ts) builds the cluster in network namespaces
 * and these tests drive it as an operator would, checking what the client sees.
 */
import assert from 'node:assert/strict';
import { controlRequest } from '@tandem/core';
import { SeedLab, DIRECTORS, REALS, VIP, canMakeNamespaces } from './lab/lab.ts';
import { waitFor } from './lab/ports.ts';

interface ProbeResult { t: number; ok: boolean; by?: string; err?: string }
interface ListReply { ok: boolean; table?: { services: { address: string; port: number; reals: { address: string; port: number; weight: number }[] }[] } }


describe('e2e: seed 001 cluster in network namespaces', function () {
  this.timeout(180_000);
  let lab: SeedLab;

  /** n requests from the client, intervalMs apart, each on a fresh TCP connection. */
  async function burst(n: number, intervalMs = 20): Promise<ProbeResult[]> {
    const p = lab.probe({ intervalMs, seconds: 60 });
    const out: ProbeResult[] = [];
    let buf = '';
    p.proc.stdout?.setEncoding('utf8');
    p.proc.stdout?.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, nl)) as ProbeResult);
        buf = buf.slice(nl + 1);
      }
    });
    await waitFor(`${n} probe answers`, async () => out.length >= n, 30_000, 50);
    await lab.topo.kill(p);
    return out.slice(0, n);
  }

  async function table(host: string) {
    const r = (await controlRequest(lab.ipvsdSocket(host), { cmd: 'list' }, 2000)) as ListReply;
    return r.table?.services.find((s) => s.address === VIP && s.port === 80);
  }

  async function activeHost(): Promise<string> {
    const holders = await lab.vipHolders();
    assert.equal(holders.length, 1, `exactly one director holds the VIP (holders: ${holders.join(', ') || 'none'})`);
    return DIRECTORS.find((d) => d.node === holders[0])!.host;
  }

  const byReal = (rs: ProbeResult[]) => {
    const m = new Map<string, number>();
    for (const r of rs) if (r.ok) m.set(r.by!, (m.get(r.by!) ?? 0) + 1);
    return m;
  };

  before(async function () {
    if (!(await canMakeNamespaces())) {
      throw new Error('the end-to-end tests need root and network namespaces (run as root)');
    }
    lab = new SeedLab();
    await lab.build();
    await waitFor('loadbalancer to hold the VIP', async () => (await lab.vipHolders()).join() === 'loadbalancer', 30_000);
    await waitFor('the three reals in the table with weight 1', async () => {
      const s = await table('lb1');
      return s && REALS.every((r) => s.reals.find((x) => x.address === r.address)?.weight === 1);
    }, 30_000);
  });

  after(async () => {
    await lab?.close();
  });

  it('spreads the client requests over the real servers', async () => {
    const rs = await burst(60);
    assert.ok(rs.every((r) => r.ok), `all answered: ${JSON.stringify(rs.filter((r) => !r.ok).slice(0, 3))}`);
    const m = byReal(rs);
    for (const r of REALS) assert.ok((m.get(r.name) ?? 0) >= 10, `${r.name} answered ${m.get(r.name) ?? 0} of 60`);
  });

  it('quiesces a real server whose web server dies (weight 0) and the client sees no error after detection', async () => {
    await lab.killReal('rs2');
    await waitFor('rs2 at weight 0', async () => (await table('lb1'))?.reals.find((x) => x.address === '192.168.136.12')?.weight === 0);
    const rs = await burst(30);
    assert.ok(rs.every((r) => r.ok), 'every request answered');
    assert.equal(byReal(rs).get('rs2') ?? 0, 0);
    await lab.startReal('rs2');
    await waitFor('rs2 back at weight 1', async () => (await table('lb1'))?.reals.find((x) => x.address === '192.168.136.12')?.weight === 1);
  });

  it('sends the client to the fallback when every real server is down, and back when one returns', async () => {
    for (const r of REALS) await lab.killReal(r.host);
    await waitFor('the fallback in the table', async () => (await table('lb1'))?.reals.some((x) => x.address === '127.0.0.1'));
    const rs = await burst(20);
    assert.ok(rs.every((r) => r.ok && r.by === 'fallback@loadbalancer'), JSON.stringify(rs.slice(0, 3)));
    for (const r of REALS) await lab.startReal(r.host);
    await waitFor('fallback removed and reals back', async () => {
      const s = await table('lb1');
      return s && !s.reals.some((x) => x.address === '127.0.0.1') && REALS.every((r) => s.reals.find((x) => x.address === r.address)?.weight === 1);
    });
  });

  it('keeps the VIP where it is when only the mcast link is cut (the serial link carries heartbeats)', async () => {
    await lab.cutMcast('lb1', true);
    try {
      const deadline = Date.now() + 4000; // four deadtimes
      for (let i = 0; i < 100 && Date.now() < deadline; i++) {
        assert.deepEqual(await lab.vipHolders(), ['loadbalancer']);
        await new Promise((r) => setTimeout(r, 200));
      }
      const st = await lab.tool('lb2', 'cl_status', ['nodestatus', 'loadbalancer']);
      assert.match(String(st.stdout), /active/);
    } finally {
      await lab.cutMcast('lb1', false);
    }
  });

  it('hb_standby moves everything to the backup, hb_takeover brings it back', async () => {
    const r = await lab.tool('lb1', 'hb_standby', []);
    assert.equal(r.exitCode, 0, String(r.stderr));
    await waitFor('backup to hold the VIP alone', async () => (await lab.vipHolders()).join() === 'backup');
    await waitFor('the reals in the backup table', async () => (await table('lb2'))?.reals.filter((x) => x.weight > 0).length === 3);
    const rs = await burst(20);
    assert.ok(rs.every((x) => x.ok), 'answered through the backup');
    // As heartbeat does, a takeover asked while the other side is still in transition is ignored:
    // wait, as an operator watching cl_status would, until the standby has completed.
    await waitFor('the standby to complete (backup holds the groups, loadbalancer none, nothing in transition)', async () =>
      ['all', 'foreign'].includes(String((await lab.tool('lb2', 'cl_status', ['rscstatus'])).stdout).trim()) &&
      String((await lab.tool('lb1', 'cl_status', ['rscstatus'])).stdout).trim() === 'none');
    const t = await lab.tool('lb1', 'hb_takeover', []);
    assert.equal(t.exitCode, 0, String(t.stderr));
    await waitFor('loadbalancer to hold the VIP alone again', async () => (await lab.vipHolders()).join() === 'loadbalancer');
  });

  it('fails over to the backup when the active director dies, with no failed request once it has taken over', async () => {
    await lab.killDirector('lb1');
    await waitFor('backup to hold the VIP', async () => (await lab.vipHolders()).join() === 'backup', 15_000, 50);
    await waitFor('the backup table with the reals', async () => (await table('lb2'))?.reals.filter((x) => x.weight > 0).length === 3);
    const rs = await burst(40);
    assert.ok(rs.every((x) => x.ok), JSON.stringify(rs.filter((x) => !x.ok).slice(0, 3)));
    assert.equal(await activeHost(), 'lb2');
  });

  it('gives the groups back to the returning primary (auto_failback on), never with the VIP on both', async () => {
    await lab.restoreDirector('lb1');
    await waitFor('loadbalancer to hold the VIP again', async () => (await lab.vipHolders()).join() === 'loadbalancer', 30_000, 50);
    for (let i = 0; i < 10; i++) {
      assert.ok((await lab.vipHolders()).length <= 1, 'never both');
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor('loadbalancer table with the reals', async () => (await table('lb1'))?.reals.filter((x) => x.weight > 0).length === 3);
    const rs = await burst(30);
    assert.ok(rs.every((x) => x.ok));
  });
});
