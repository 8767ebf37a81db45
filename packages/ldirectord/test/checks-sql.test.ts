import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cachingSha2Password, nativePassword } from '../src/checks/mysql.ts';
import { md5Password } from '../src/checks/pgsql.ts';
import { check, type Daemon, freePort, silentServer, spec, startDaemon, userIds, waitForPort } from './checks-support.ts';

// service=mysql against MariaDB and service=pgsql against PostgreSQL (Debian packages), each a
// test-owned instance: its own data directory under a temporary directory, its own socket, a
// loopback TCP port, stopped by PID at the end.

describe('checks: service=mysql against MariaDB', function () {
  this.timeout(120_000);
  let dir: string;
  let port: number;
  let mariadbd: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-mariadb-'));
    const { uid, gid } = userIds('mysql');
    mkdirSync(join(dir, 'data'));
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'data'), uid, gid);
    await execa('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db']);
    port = await freePort();
    mariadbd = startDaemon('mariadbd', [
      '--no-defaults', `--datadir=${join(dir, 'data')}`, `--socket=${join(dir, 'sock')}`, `--port=${port}`, '--bind-address=127.0.0.1',
      '--user=mysql', `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin', '--innodb-buffer-pool-size=16M',
    ]);
    await waitForPort('127.0.0.1', port, 60_000, mariadbd);
    await execa('mariadb', ['-S', join(dir, 'sock'), '-u', 'root', '-e',
      "CREATE USER 'mon'@'%' IDENTIFIED BY 'monpass'; CREATE DATABASE app; CREATE TABLE app.t (x INT); INSERT INTO app.t VALUES (1),(2); GRANT SELECT ON app.* TO 'mon'@'%';"]);
  });
  after(async () => {
    await mariadbd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const my = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'mysql', port, login: 'mon', passwd: 'monpass', database: 'app', request: '/SELECT x FROM t', ...over });

  it('logs in (mysql_native_password), runs the request, at least one row: up', async () => {
    const v = await check(my());
    assert.equal(v.up, true, v.reason);
    assert.match(v.reason, /^2 row\(s\) from .*MariaDB/);
  });

  it('a query with no rows, a failing query and a wrong password are down', async () => {
    const none = await check(my({ request: '/SELECT x FROM t WHERE x > 5' }));
    assert.deepEqual([none.up, none.reason], [false, 'query returned 0 rows']);
    const bad = await check(my({ request: '/SELECT * FROM nothere' }));
    assert.equal(bad.up, false);
    assert.match(bad.reason, /query failed: error 1146/);
    const pw = await check(my({ passwd: 'wrong' }));
    assert.equal(pw.up, false);
    assert.match(pw.reason, /error 1045: Access denied/);
  });

  it('login and request are required, as in ldirectord', async () => {
    assert.match((await check(my({ login: '' }))).reason, /needs login/);
    assert.match((await check(my({ request: '' }))).reason, /needs request/);
  });

  it('a refused port and a silent server are down (tandem applies negotiatetimeout; ldirectord has none for SQL)', async () => {
    const refused = await check(my({ port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(my({ port: silent.port, negotiateTimeoutMs: 400 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
    } finally {
      await silent.close();
    }
  });

  it('scrambles: mysql_native_password and caching_sha2_password are empty for an empty password', () => {
    const scramble = Buffer.alloc(20, 7);
    assert.equal(nativePassword('', scramble).length, 0);
    assert.equal(nativePassword('x', scramble).length, 20);
    assert.equal(cachingSha2Password('x', scramble).length, 32);
  });
});

describe('checks: service=pgsql against PostgreSQL', function () {
  this.timeout(120_000);
  let dir: string;
  let port: number;
  let postgres: Daemon | undefined;
  const bin = '/usr/lib/postgresql/15/bin';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-pg-'));
    chmodSync(dir, 0o755);
    const ids = userIds('postgres');
    for (const d of ['data', 'sock']) {
      mkdirSync(join(dir, d));
      chownSync(join(dir, d), ids.uid, ids.gid);
    }
    await execa(join(bin, 'initdb'), ['-D', join(dir, 'data'), '--auth-local=trust', '--auth-host=scram-sha-256', '-U', 'postgres'], { ...ids });
    writeFileSync(
      join(dir, 'hba'),
      'local all all trust\nhost all trustuser 127.0.0.1/32 trust\nhost all md5user 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n',
    );
    port = await freePort();
    postgres = startDaemon(join(bin, 'postgres'), [
      '-D', join(dir, 'data'), '-p', String(port), '-k', join(dir, 'sock'), '-c', 'listen_addresses=127.0.0.1',
      '-c', `hba_file=${join(dir, 'hba')}`, '-c', 'fsync=off', '-c', 'shared_buffers=16MB',
    ], { user: 'postgres', stopSignal: 'SIGINT' });
    await waitForPort('127.0.0.1', port, 60_000, postgres);
    const psql = (sql: string) => execa('psql', ['-h', join(dir, 'sock'), '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    await psql("CREATE USER scramuser PASSWORD 'scrampass'");
    await psql("SET password_encryption = 'md5'; CREATE USER md5user PASSWORD 'md5pass'");
    await psql('CREATE USER trustuser');
    await psql('CREATE DATABASE app OWNER scramuser');
  });
  after(async () => {
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const pg = (over: Parameters<typeof spec>[0] = {}) => spec({ service: 'pgsql', port, login: 'scramuser', passwd: 'scrampass', database: 'app', request: '/SELECT 1', ...over });

  it('SCRAM-SHA-256 login, the request returns a row: up', async () => {
    const v = await check(pg());
    assert.deepEqual([v.up, v.reason], [true, '1 row(s)']);
  });

  it('md5 and trust authentication work too; the database defaults to the login name', async () => {
    const md5 = await check(pg({ login: 'md5user', passwd: 'md5pass', database: 'postgres' }));
    assert.equal(md5.up, true, md5.reason);
    const trust = await check(pg({ login: 'trustuser', passwd: '', database: 'postgres', request: '/SELECT generate_series(1, 3)' }));
    assert.deepEqual([trust.up, trust.reason], [true, '3 row(s)']);
    const nodb = await check(pg({ login: 'trustuser', passwd: '', database: '' }));
    assert.equal(nodb.up, false);
    assert.match(nodb.reason, /database "trustuser" does not exist/);
  });

  it('no rows, a failing query and a wrong password are down', async () => {
    const none = await check(pg({ request: '/SELECT 1 WHERE false' }));
    assert.deepEqual([none.up, none.reason], [false, 'query returned 0 rows']);
    const bad = await check(pg({ request: '/SELECT * FROM nothere' }));
    assert.equal(bad.up, false);
    assert.match(bad.reason, /query failed: ERROR 42P01/);
    const pw = await check(pg({ passwd: 'wrong' }));
    assert.equal(pw.up, false);
    assert.match(pw.reason, /password authentication failed/);
  });

  it('a refused port and a silent server are down', async () => {
    const refused = await check(pg({ port: await freePort() }));
    assert.deepEqual([refused.up, refused.reason], [false, 'connection refused']);
    const silent = await silentServer();
    try {
      const t = await check(pg({ port: silent.port, negotiateTimeoutMs: 400 }));
      assert.deepEqual([t.up, t.reason], [false, 'timeout after 400 ms']);
    } finally {
      await silent.close();
    }
  });

  it('md5 password hashing as libpq computes it', () => {
    // md5(md5(password + user) + salt), hex, with the "md5" prefix
    assert.match(md5Password('u', 'p', Buffer.from([1, 2, 3, 4])), /^md5[0-9a-f]{32}$/);
  });
});
