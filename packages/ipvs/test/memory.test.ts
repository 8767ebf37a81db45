import { strict as assert } from 'node:assert';
import { MemoryBackend, diffTables, reconcile, type IpvsOp, type IpvsTable } from '@tandem/ipvs';

const V = { protocol: 'tcp' as const, address: '127.0.0.100', port: 80 };
const svc = (over: object = {}) => ({ ...V, scheduler: 'wrr', reals: [], ...over });
const real = (last: number, over: object = {}) => ({ address: `127.0.0.${last}`, port: 80, forwarding: 'gate' as const, weight: 1, ...over });

async function refusal(b: MemoryBackend, ops: IpvsOp[]): Promise<{ code: string; message: string; opIndex: unknown }> {
  try {
    await b.apply(ops);
  } catch (e) {
    const err = e as { code: string; message: string; details?: { opIndex?: unknown } };
    return { code: err.code, message: err.message, opIndex: err.details?.opIndex };
  }
  assert.fail('the batch was accepted');
}

describe('MemoryBackend (kernel validation)', () => {
  it('adds, edits and deletes services and reals, and reads them back sorted', async () => {
    const b = new MemoryBackend();
    await b.apply([
      { op: 'add-service', service: svc() },
      { op: 'add-real', key: V, real: real(12, { weight: 2 }) },
      { op: 'add-real', key: V, real: real(11) },
      { op: 'add-service', service: { protocol: 'udp', address: '127.0.0.100', port: 53, scheduler: 'rr', reals: [] } },
      { op: 'add-service', service: { protocol: 'fwm', address: '', port: 0, fwmark: 7, scheduler: 'sh', schedFlags: ['sh-port'], reals: [] } },
    ]);
    await b.apply([{ op: 'edit-real', key: V, real: real(12, { weight: 0 }) }, { op: 'edit-service', service: svc({ scheduler: 'rr', persistence: { timeoutS: 300 } }) }]);
    const t = await b.read();
    assert.deepEqual(t.services.map((s) => `${s.protocol} ${s.address}:${s.port} ${s.scheduler}`), ['tcp 127.0.0.100:80 rr', 'udp 127.0.0.100:53 rr', 'fwm :0 sh']);
    assert.deepEqual(t.services[0]!.reals.map((r) => `${r.address} w${r.weight}`), ['127.0.0.11 w1', '127.0.0.12 w0']);
    assert.deepEqual(t.services[0]!.persistence, { timeoutS: 300 });
    await b.apply([{ op: 'delete-real', key: V, address: '127.0.0.11', port: 80 }, { op: 'delete-service', key: { protocol: 'udp', address: '127.0.0.100', port: 53 } }]);
    assert.equal((await b.read()).services.length, 2);
    assert.equal(b.batches.length, 3);
  });

  it('refuses what the kernel refuses, with ipvsadm messages, and keeps the table on a failed batch', async () => {
    const b = new MemoryBackend({ services: [{ ...svc(), reals: [real(11)] }] });
    const before = await b.read();
    assert.deepEqual(await refusal(b, [{ op: 'add-service', service: svc() }]), { code: 'E_IPVS_SERVICE_EXISTS', message: 'Service already exists', opIndex: 0 });
    assert.deepEqual(await refusal(b, [{ op: 'add-real', key: V, real: real(12) }, { op: 'add-real', key: V, real: real(11) }]), { code: 'E_IPVS_DEST_EXISTS', message: 'Destination already exists', opIndex: 1 });
    assert.equal((await refusal(b, [{ op: 'edit-service', service: svc({ port: 81 }) }])).message, 'No such service');
    assert.equal((await refusal(b, [{ op: 'delete-service', key: { ...V, port: 81 } }])).message, 'No such service');
    assert.equal((await refusal(b, [{ op: 'add-real', key: { ...V, port: 81 }, real: real(11) }])).message, 'Service not defined');
    assert.equal((await refusal(b, [{ op: 'edit-real', key: V, real: real(13) }])).message, 'No such destination');
    assert.equal((await refusal(b, [{ op: 'delete-real', key: V, address: '127.0.0.13', port: 80 }])).message, 'No such destination');
    assert.equal((await refusal(b, [{ op: 'add-service', service: svc({ port: 81, scheduler: 'bogus' }) }])).message, 'Scheduler or persistence engine not found');
    assert.equal((await refusal(b, [{ op: 'add-real', key: V, real: real(14, { lowerThreshold: 5 }) }])).message, 'Numerical result out of range');
    assert.equal((await refusal(b, [{ op: 'add-real', key: V, real: { ...real(14), address: '::1' } }])).message, 'Operation not supported with specified address family');
    assert.deepEqual(await b.read(), before);
    assert.equal(b.refused.length, 10);
  });

  it('undoes every kind of change of a batch refused at its last operation (the table is kept indexed, not copied)', async () => {
    const U = { protocol: 'udp' as const, address: '127.0.0.100', port: 53 };
    const b = new MemoryBackend({ services: [{ ...svc(), reals: [real(11), real(12, { weight: 2 })] }, { ...U, scheduler: 'rr', reals: [real(21, { port: 53 })] }] });
    const before = await b.read();
    const refused = await refusal(b, [
      { op: 'add-real', key: V, real: real(13) },
      { op: 'edit-real', key: V, real: real(11, { weight: 5 }) },
      { op: 'delete-real', key: V, address: '127.0.0.12', port: 80 },
      { op: 'edit-service', service: svc({ scheduler: 'rr' }) },
      { op: 'delete-service', key: U },
      { op: 'add-service', service: { ...svc({ port: 443 }), reals: [real(31)] } },
      { op: 'add-real', key: V, real: real(11) },
    ]);
    assert.deepEqual(refused, { code: 'E_IPVS_DEST_EXISTS', message: 'Destination already exists', opIndex: 6 });
    assert.deepEqual(await b.read(), before);
    // The same batch without its bad operation is applied whole.
    await b.apply([
      { op: 'add-real', key: V, real: real(13) },
      { op: 'edit-real', key: V, real: real(11, { weight: 5 }) },
      { op: 'delete-real', key: V, address: '127.0.0.12', port: 80 },
      { op: 'edit-service', service: svc({ scheduler: 'rr' }) },
      { op: 'delete-service', key: U },
      { op: 'add-service', service: { ...svc({ port: 443 }), reals: [real(31)] } },
    ]);
    const t = await b.read();
    assert.deepEqual(t.services.map((s) => `${s.protocol} ${s.port} ${s.scheduler} ${s.reals.map((r) => `${r.address}/${r.port}/w${r.weight}`).join(',')}`), [
      'tcp 80 rr 127.0.0.11/80/w5,127.0.0.13/80/w1',
      'tcp 443 wrr 127.0.0.31/443/w1',
    ]);
  });

  it('stores gate and ipip reals on the service port, as ipvsadm does; masq keeps its port', async () => {
    const b = new MemoryBackend();
    await b.apply([
      { op: 'add-service', service: svc() },
      { op: 'add-real', key: V, real: real(11, { port: 8080 }) },
      { op: 'add-real', key: V, real: real(12, { port: 8080, forwarding: 'masq' }) },
    ]);
    assert.deepEqual((await b.read()).services[0]!.reals.map((r) => r.port), [80, 8080]);
  });

  it('converges with diffTables when the desired table names a mapped port (ldirectord bug 5 does not happen)', async () => {
    const b = new MemoryBackend();
    const desired: IpvsTable = { services: [{ ...svc(), reals: [real(11, { port: 8080 })] }] };
    const owns = () => true;
    assert.ok((await reconcile(b, desired, owns)).length > 0);
    const quiesced: IpvsTable = { services: [{ ...svc(), reals: [real(11, { port: 8080, weight: 0 })] }] };
    assert.deepEqual(await reconcile(b, quiesced, owns), [{ op: 'edit-real', key: V, real: real(11, { weight: 0 }) }]);
    assert.equal((await reconcile(b, desired, owns)).length, 1);
    assert.deepEqual(diffTables(await b.read(), desired, owns), []);
  });
});
