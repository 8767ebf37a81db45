import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { bindRequest, children } from '../src/checks/ldap.ts';
import { check, type Daemon, freePort, silentServer, spec, startDaemon, waitForPort } from './checks-support.ts';

// service=ldap and ldaps against OpenLDAP's slapd (Debian package) with a private slapd.conf and
// an mdb database loaded with slapadd, listening on 127.0.0.1 only.
describe('checks: service=ldap and ldaps against slapd', function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;
  let sport: number;
  let slapd: Daemon | undefined;
  const MONITOR = 'cn=monitor,ou=people,dc=example,dc=test';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-slapd-'));
    mkdirSync(join(dir, 'db'));
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=ldap.example.test', '-days', '2']);
    writeFileSync(
      join(dir, 'slapd.conf'),
      `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile ${dir}/cert.pem
TLSCertificateKeyFile ${dir}/key.pem
database mdb
maxsize 10485760
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw secret
directory ${dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
`,
    );
    writeFileSync(
      join(dir, 'data.ldif'),
      `dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ${MONITOR}
objectClass: inetOrgPerson
cn: monitor
sn: monitor
userPassword: monpass
`,
    );
    await execa('slapadd', ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'data.ldif')]);
    port = await freePort();
    sport = await freePort();
    slapd = startDaemon('/usr/sbin/slapd', ['-d', '0', '-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${sport}/`]);
    await waitForPort('127.0.0.1', port, 20_000, slapd);
    await waitForPort('127.0.0.1', sport, 20_000, slapd);
  });
  after(async () => {
    await slapd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ldap = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'ldap', port, request: '/dc=example,dc=test', receive: 'dc=example', ...over });

  it('anonymous bind, base search of the request, exactly one entry whose DN matches receive: up', async () => {
    const v = await check(ldap());
    assert.deepEqual([v.up, v.reason], [true, 'entry dc=example,dc=test']);
  });

  it('ldaps: the same over TLS (certificate not verified)', async () => {
    const v = await check(ldap({ service: 'ldaps', port: sport }));
    assert.equal(v.up, true, v.reason);
  });

  it('a simple bind with login/passwd: right password up, wrong password down', async () => {
    const ok = await check(ldap({ login: MONITOR, passwd: 'monpass', request: '/ou=people,dc=example,dc=test', receive: '' }));
    assert.equal(ok.up, true, ok.reason);
    const bad = await check(ldap({ login: MONITOR, passwd: 'nope' }));
    assert.equal(bad.up, false);
    assert.match(bad.reason, /bind as cn=monitor.* failed: result 49/);
  });

  it('a DN that does not match receive, or a base that does not exist, is down', async () => {
    const wrong = await check(ldap({ receive: 'o=other' }));
    assert.equal(wrong.up, false);
    assert.match(wrong.reason, /did not match/);
    const missing = await check(ldap({ request: '/ou=nothere,dc=example,dc=test', receive: '' }));
    assert.equal(missing.up, false);
    assert.match(missing.reason, /result 32/);
  });

  it('a refused port and a server that never answers are down', async () => {
    const refused = await check(ldap({ port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(ldap({ port: silent.port, negotiateTimeoutMs: 400, checkTimeoutMs: 400 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
    } finally {
      await silent.close();
    }
  });

  it('BER: a bind request is a SEQUENCE of id, [APPLICATION 0] with version 3, DN and simple password', () => {
    const msg = bindRequest(1, 'cn=x', 'pw');
    assert.equal(msg[0], 0x30);
    const [id, op] = children(msg.subarray(2));
    assert.deepEqual([id!.tag, id!.content[0]], [0x02, 1]);
    const [ver, dn, pw] = children(op!.content);
    assert.deepEqual([op!.tag, ver!.content[0], dn!.content.toString(), pw!.tag, pw!.content.toString()], [0x60, 3, 'cn=x', 0x80, 'pw']);
  });
});
