// Cluster mode (--redis) in the browser: two smolcanvas servers built with the `redis` feature, both pointed at one
// real redis-server that this test starts on a free port in a temporary directory (appendonly yes, appendfsync
// always, no RDB snapshots) and kills at the end. Page 1 on server A and page 2 on server B open the same board
// /b/NAME: a mouse stroke on either page shows up on the other's canvas, undo on page 1 removes its stroke on
// page 2, both pages count 2 clients (the count of the whole cluster), and the strokes are in the board's Redis
// stream (docs of the interface: the key smolcanvas:board:NAME:ops).
//
// Run: bash tests/browser/run.sh cluster.test.mjs (builds target/debug/smolcanvas-redis with --features redis).
// SMOLCANVAS_REDIS_BIN overrides that binary, REDIS_SERVER the redis-server binary (default: the one on PATH).
// Without either the test is skipped, unless SMOLCANVAS_REQUIRE_REDIS is set: then it fails.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ROOT, SHOTS, WAIT, Server, launch, closeBrowser, openPage, eventually, waitForCount, inkAt, waitForInk,
  waitForNoInk, setTool, mouseStroke, state, pixelDigest, assertNoPageErrors, waitForBanner,
} from './lib.mjs';

const SERVER_BIN = process.env.SMOLCANVAS_REDIS_BIN || join(ROOT, 'target/debug/smolcanvas-redis');
const REDIS_SERVER = process.env.REDIS_SERVER || onPath('redis-server');
const REQUIRED = Boolean(process.env.SMOLCANVAS_REQUIRE_REDIS);
const missing = [
  existsSync(SERVER_BIN) ? null : `a smolcanvas built with --features redis (${SERVER_BIN})`,
  REDIS_SERVER && existsSync(REDIS_SERVER) ? null : `redis-server (${REDIS_SERVER || 'not on PATH'})`,
].filter(Boolean);

const BOARD = 'cluster';
const RED = [224, 49, 49], BLUE = [25, 113, 194];
const RED_LINE = [[200, 200], [1000, 200]], RED_MID = [600, 200];
const BLUE_LINE = [[200, 500], [1000, 500]], BLUE_MID = [600, 500];
const GREEN = [47, 158, 68];
const GREEN_LINE = [[200, 350], [1000, 350]], GREEN_MID = [600, 350];

function onPath(name) {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function freePort() {
  const probe = net.createServer();
  return new Promise((done, fail) => {
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

// One redis-server of this test's own, stopped (SIGTERM, then SIGKILL) and its directory removed by `dispose()`.
class Redis {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'smolcanvas-redis-'));
    this.port = await freePort();
    await this.run();
  }

  // Kills redis-server (SIGKILL: no goodbye to its clients) and waits for it to be gone.
  async kill() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  // Starts redis-server on this Redis's port and directory (again, after `kill()`: its append-only file is read back).
  async run() {
    this.proc = spawn(REDIS_SERVER, [
      '--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--daemonize', 'no', '--logfile', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = (chunk) => appendFileSync(join(SHOTS, 'cluster-redis.log'), chunk);
    this.proc.stdout.on('data', log);
    this.proc.stderr.on('data', log);
    const exited = new Promise((r) => this.proc.once('exit', (code, signal) => r(code ?? signal)));
    this.exited = exited;
    await eventually(async () => {
      if (this.proc.exitCode !== null) throw new Error(`redis-server exited (${this.proc.exitCode}), see ${SHOTS}/cluster-redis.log`);
      return (await this.command('PING').catch(() => null)) === 'PONG';
    }, `redis-server to answer PING on port ${this.port}`, 10_000);
  }

  get url() { return `redis://127.0.0.1:${this.port}/`; }

  // One command over RESP; the reply's first line without its type byte (a status, an integer or an error).
  command(...args) {
    const req = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
    return new Promise((done, fail) => {
      const sock = net.connect(this.port, '127.0.0.1', () => sock.write(req));
      let reply = '';
      const timer = setTimeout(() => { sock.destroy(); fail(new Error(`no reply to ${args[0]}`)); }, 3000);
      sock.setEncoding('utf8');
      sock.on('data', (d) => {
        reply += d;
        const end = reply.indexOf('\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        sock.destroy();
        if (reply[0] === '-') fail(new Error(`redis: ${reply.slice(1, end)}`));
        else done(reply.slice(1, end));
      });
      sock.on('error', (err) => { clearTimeout(timer); fail(err); });
    });
  }

  async dispose() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

const skip = missing.length && !REQUIRED ? `needs ${missing.join(' and ')}` : false;

describe('cluster mode: two servers, one Redis, one board', { skip, timeout: 90_000 }, () => {
  const redis = new Redis();
  let a, b, page1, page2;

  before(async () => {
    assert.deepEqual(missing, [], 'SMOLCANVAS_REQUIRE_REDIS is set and something the cluster test needs is missing');
    await redis.start();
    a = new Server(['--redis', redis.url], 'cluster-a', null, SERVER_BIN);
    b = new Server(['--redis', redis.url], 'cluster-b', null, SERVER_BIN);
    await Promise.all([a.start(), b.start()]);
    await launch();
  });

  after(async () => {
    await closeBrowser();
    await Promise.all([a?.dispose(), b?.dispose()]);
    await redis.dispose();
  });

  it('page 1 on server A and page 2 on server B count each other', async () => {
    page1 = await openPage(`${a.url}/b/${BOARD}`);
    page2 = await openPage(`${b.url}/b/${BOARD}`, { viewport: { width: 900, height: 640 } });
    assert.equal((await state(page1)).board, BOARD);
    assert.equal((await state(page2)).board, BOARD);
    await Promise.all([waitForCount(page1, 2), waitForCount(page2, 2)]);
  });

  it('a stroke drawn with the mouse on page 1 appears on page 2', async () => {
    await setTool(page1, { color: '#e03131', width: 12 });
    await mouseStroke(page1, RED_LINE, 20);
    assert.ok(await inkAt(page1, ...RED_MID, { rgb: RED }), 'page 1 paints its own stroke');
    for (const [x, y] of [RED_MID, ...RED_LINE]) await waitForInk(page2, x, y, { rgb: RED });
    assert.equal(await inkAt(page2, ...BLUE_MID, { r: 10 }), false, 'page 2 stays white away from the stroke');
  });

  it('and one drawn on page 2 appears on page 1', async () => {
    await setTool(page2, { color: '#1971c2', width: 12 });
    await mouseStroke(page2, BLUE_LINE, 20);
    assert.ok(await inkAt(page2, ...BLUE_MID, { rgb: BLUE }), 'page 2 paints its own stroke');
    for (const [x, y] of [BLUE_MID, ...BLUE_LINE]) await waitForInk(page1, x, y, { rgb: BLUE });
    assert.ok(await inkAt(page1, ...RED_MID, { rgb: RED }), 'page 1 keeps its own stroke');
  });

  it("the strokes are in the board's Redis stream", async () => {
    let len = 0;
    await eventually(async () => (len = Number(await redis.command('XLEN', `smolcanvas:board:${BOARD}:ops`))) >= 2,
      () => `smolcanvas:board:${BOARD}:ops to hold both strokes (XLEN ${len})`);
  });

  it('undo on page 1 removes its stroke on page 2, and both pages show the same pixels', async () => {
    assert.ok(await inkAt(page2, ...RED_MID, { rgb: RED }), 'page 2 shows page 1’s stroke before the undo');
    await page1.click('[data-testid=undo]');
    await waitForNoInk(page2, ...RED_MID, { r: 8 });
    await waitForNoInk(page1, ...RED_MID, { r: 8 });
    for (const page of [page1, page2]) {
      assert.ok(await inkAt(page, ...BLUE_MID, { rgb: BLUE }), 'the undo took page 1’s stroke only');
    }
    let digests = [];
    await eventually(async () => {
      digests = await Promise.all([page1, page2].map((p) => p.evaluate(pixelDigest)));
      return digests[0] === digests[1];
    }, () => `the two pages to show the same pixels (${digests.join(' ')})`, WAIT);
    await Promise.all([page1, page2].map((p, i) => p.screenshot({ path: join(SHOTS, `cluster-${i + 1}.png`) })));
  });

  it('both pages still count 2', async () => {
    await Promise.all([waitForCount(page1, 2), waitForCount(page2, 2)]);
  });

  it('while Redis is down both pages say so; what page 1 draws meanwhile reaches page 2 once it is back', async () => {
    await redis.kill();
    for (const page of [page1, page2]) {
      const text = await waitForBanner(page, 'not_shared', 15_000);
      assert.match(text, /cannot reach the other servers/i);
    }
    await page1.screenshot({ path: join(SHOTS, 'cluster-not-shared.png') });
    await setTool(page1, { color: '#2f9e44', width: 12 });
    await mouseStroke(page1, GREEN_LINE, 20);
    assert.ok(await inkAt(page1, ...GREEN_MID, { rgb: GREEN }), 'page 1 keeps drawing');
    assert.equal(await inkAt(page2, ...GREEN_MID, { r: 10 }), false, 'page 2 cannot see it while Redis is down');
    await redis.run();
    for (const page of [page1, page2]) {
      await page.waitForSelector('[data-testid=banner]', { state: 'hidden', timeout: 20_000 });
    }
    await waitForInk(page2, ...GREEN_MID, { rgb: GREEN });
    assert.ok(await inkAt(page1, ...GREEN_MID, { rgb: GREEN }), 'page 1 still shows its stroke after the resync');
    let digests = [];
    await eventually(async () => {
      digests = await Promise.all([page1, page2].map((p) => p.evaluate(pixelDigest)));
      return digests[0] === digests[1];
    }, () => `the two pages to show the same pixels after Redis came back (${digests.join(' ')})`, WAIT);
  });

  it('raises no script errors in any page', () => {
    assertNoPageErrors();
  });
});
