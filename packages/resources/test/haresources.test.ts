import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ProblemSink } from '@tandem/core';
import { findGroup, formatGroup, groupsOf, loadHaresources, looksLikeIp, parseHaresources, parseIpSpec, RESOURCES_ERRORS } from '../src/index.ts';
import { FIXTURES } from '../../../test/fixtures/paths.ts';

const EXAMPLES = `${FIXTURES}/examples/ha.d`;

function parse(text: string, nodes?: string[]) {
  const sink = new ProblemSink('haresources');
  const res = parseHaresources(text, 'haresources', { nodes }, sink);
  const sorted = [...sink.problems].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0));
  return { res, sink, codes: sorted.map((p) => `${p.severity}:${p.code}@${p.location?.line}`) };
}

describe('haresources parser', () => {
  it('reads the seed 001 line: preferred node first, IPaddr with :: argument, scripts in order', () => {
    const res = loadHaresources(join(EXAMPLES, 'haresources'), { nodes: ['loadbalancer', 'backup'] });
    assert.equal(res.groups.length, 1);
    const g = res.groups[0]!;
    assert.equal(g.node, 'loadbalancer');
    assert.equal(g.key, 'lvs');
    assert.deepEqual(g.resources.map((r) => [r.agent, r.args]), [
      ['lvs', []], ['IPaddr', ['192.168.136.10/24/eth0']], ['ipvsadm', []], ['ldirectord', []],
    ]);
    assert.equal(formatGroup(g), 'loadbalancer lvs IPaddr::192.168.136.10/24/eth0 ipvsadm ldirectord');
  });

  it('reads the seed 000 line (DR variant)', () => {
    const res = loadHaresources(join(EXAMPLES, 'haresources-dr'));
    assert.deepEqual(res.groups[0]!.resources.map((r) => r.agent), ['IPaddr', 'ldirectord', 'httpd']);
    assert.equal(res.groups[0]!.node, 'dd6.example.com');
  });

  it('treats a bare address as IPaddr shorthand and keeps the token as the key', () => {
    const { res, sink } = parse('node1 10.214.9.50/24/eth0 hbptrace::first::x::y hbptrace::second hbptrace::third\n');
    assert.equal(sink.errorCount, 0);
    const g = res.groups[0]!;
    assert.equal(g.key, '10.214.9.50/24/eth0');
    assert.deepEqual(g.resources[0], { token: '10.214.9.50/24/eth0', agent: 'IPaddr', args: ['10.214.9.50/24/eth0'], ipShorthand: true, location: g.location });
    assert.deepEqual(g.resources[1]!.args, ['first', 'x', 'y']);
    assert.ok(looksLikeIp('192.168.1.1'));
    assert.ok(!looksLikeIp('httpd'));
  });

  it('strips comments anywhere, lowercases the node, joins continuation lines and counts lines from the first', () => {
    const text = [
      '# a comment line',
      '',
      'NODE1   IPaddr::10.0.0.1/24   \\',
      '   httpd    # trailing comment',
      'node2 mysql # comment \\',
      'node2 postfix',
    ].join('\n');
    const { res, sink } = parse(text);
    assert.equal(sink.errorCount, 0);
    assert.deepEqual(res.groups.map((g) => [g.node, g.key, g.resources.length, g.location?.line]), [
      ['node1', 'IPaddr::10.0.0.1/24', 2, 3],
      // A backslash inside a comment does not continue the line (the comment goes first).
      ['node2', 'mysql', 1, 5],
      ['node2', 'postfix', 1, 6],
    ]);
  });

  it('does not continue a line whose backslash is followed by blanks, as ResourceManager does not', () => {
    const { res, codes } = parse('node1 a \\ \nnode1 b\n');
    // The stray backslash stays a (bad) token of line 1; line 2 is a group of its own.
    assert.deepEqual(codes, ['error:E_HARES_BAD_RESOURCE@1']);
    assert.deepEqual(res.groups.map((g) => [g.key, g.location?.line]), [['b', 2]]);
  });

  it('reports every problem with file:line and a stable code', () => {
    const text = [
      'node1 IPaddr::10.0.0.300/24',       // 1 bad octet
      'nodex httpd',                        // 2 not a node
      'node2',                              // 3 no resources
      'node1 ::foo',                        // 4 no agent
      'node2 IPaddr::10.0.0.2/40/eth0',     // 5 bad prefix
      'node2 httpd',                        // 6 duplicate key (line 2 had httpd... but line 2 errored on node only)
      'node1 ip/x::y',                      // 7 agent with a slash
      'node1 last \\',                      // 8 continues into nothing
    ].join('\n');
    const { codes, sink } = parse(text, ['node1', 'node2']);
    assert.deepEqual(codes, [
      'error:E_HARES_BAD_IP@1',
      'error:E_HARES_BAD_NODE@2',
      'error:E_HARES_NO_RESOURCES@3',
      'error:E_HARES_BAD_RESOURCE@4',
      'error:E_HARES_BAD_IP@5',
      'error:E_HARES_DUPLICATE_KEY@6',
      'error:E_HARES_BAD_RESOURCE@7',
      'error:E_HARES_CONTINUATION@8',
    ]);
    const badNode = sink.problems.find((p) => p.code === 'E_HARES_BAD_NODE')!;
    assert.match(badNode.message, /"nodex" is not a node/);
    assert.match(badNode.hint ?? '', /did you mean "node1"/);
  });

  it('warns about an empty :: argument and a resource in two groups, but accepts them', () => {
    const { res, codes } = parse('node1 a::x:: shared\nnode2 b shared\n');
    assert.deepEqual(codes, ['warning:E_HARES_BAD_RESOURCE@1', 'warning:E_HARES_DUPLICATE_RESOURCE@2']);
    assert.deepEqual(res.groups[0]!.resources[0]!.args, ['x']);
    assert.equal(res.groups.length, 2);
  });

  it('throws a ConfigError listing all problems from loadHaresources', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hares-'));
    try {
      const f = join(dir, 'haresources');
      writeFileSync(f, 'node1 10.0.0.1/99\nnode1\n');
      assert.throws(() => loadHaresources(f), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.problems.length, 2);
        assert.match(e.report(), new RegExp(`${f}:1: node1: .*E_HARES_BAD_IP`));
        return true;
      });
      assert.throws(() => loadHaresources(join(dir, 'missing')), /E_CONF_READ|cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses IPaddr and IPaddr2 address specs', () => {
    assert.deepEqual(parseIpSpec('192.168.136.10/24/eth0'), { ip: '192.168.136.10', prefix: 24, nic: 'eth0' });
    assert.deepEqual(parseIpSpec('10.0.0.5/255.255.255.0/10.0.0.255'), { ip: '10.0.0.5', prefix: 24, broadcast: '10.0.0.255' });
    assert.deepEqual(parseIpSpec('10.0.0.5/24/eth1:web/10.0.0.255', 'IPaddr2'), { ip: '10.0.0.5', prefix: 24, nic: 'eth1', label: 'web', broadcast: '10.0.0.255' });
    assert.match(parseIpSpec('10.0.0.5/24/eth1:web') as string, /labels are IPaddr2/);
    assert.match(parseIpSpec('10.0.0.5/255.0.255.0') as string, /neither a prefix/);
  });

  it('finds groups by key or by member resource, and a node\'s own groups', () => {
    const { res } = parse('node1 10.0.0.1 httpd\nnode2 IPaddr::10.0.0.2 mysql\n');
    assert.equal(findGroup(res.groups, 'IPaddr::10.0.0.2')?.node, 'node2');
    assert.equal(findGroup(res.groups, 'httpd')?.key, '10.0.0.1');
    assert.deepEqual(groupsOf(res, 'NODE1').map((g) => g.key), ['10.0.0.1']);
  });

  it('documents every error code in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of Object.keys(RESOURCES_ERRORS)) assert.ok(readme.includes(code), `${code} missing from README`);
  });
});
