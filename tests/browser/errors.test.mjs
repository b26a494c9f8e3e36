// Every failure a person can meet, in words: the server full (503), too many tabs from one address (429), the
// page's origin refused (403, behind a proxy that rewrites Host), a proxy that loses the upgrade (426), the access
// key missing (401), drawing too fast (1008: strokes kept, sending slowed), the server shutting down (1001) and
// gone, each with the reconnect countdown. Servers are started with the limits that cause them. The page learns
// why an upgrade failed from a plain GET of the socket path, which this server answers with what the upgrade got.
// The board limits and the "cannot save" notice are in v2.test.mjs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  SHOTS, Server, launch, closeBrowser, openPage, eventually, waitForCount, setTool, scribble, state,
  assertNoPageErrors, waitConnected, waitForBanner, waitSamePicture, hostRewritingProxy, upgradeDroppingProxy,
} from './lib.mjs';

// The page retries on its own (with a countdown); the tests cut the wait short the way a browser coming back online does.
const nudge = (page) => page.evaluate(() => window.dispatchEvent(new Event('online')));

describe('errors a person can read', { timeout: 120_000 }, () => {
  const servers = [];
  const server = (flags, name) => { const s = new Server(flags, name); servers.push(s); return s; };

  before(launch);
  after(async () => {
    await closeBrowser();
    for (const s of servers) await s.dispose();
  });

  it('the server is full (503 from --max-clients)', async () => {
    const s = server(['--max-clients', '1'], 'errors-full');
    await s.start();
    const a = await openPage(s.url + '/', { connected: false });
    await waitConnected(a, 15_000);
    const b = await openPage(s.url + '/', { connected: false });
    const text = await waitForBanner(b, 'full');
    assert.match(text, /server is full: 1 person is connected, the most it allows \(--max-clients\)/i);
    assert.match(text, /Trying again in \d+s/);
    assert.equal(await b.getAttribute('[data-testid=status]', 'data-state'), 'reconnecting');
    await b.screenshot({ path: join(SHOTS, 'error-full.png') });
    await a.context().close();
    await eventually(async () => { await nudge(b); return (await state(b)).ready; }, 'B to get in once A left', 15_000);
    assert.equal(await b.isHidden('[data-testid=banner]'), true);
    await b.context().close();
    await s.stop();
  });

  it('too many tabs from one address (429 from --max-clients-per-ip)', async () => {
    const s = server(['--max-clients-per-ip', '1'], 'errors-per-ip');
    await s.start();
    const a = await openPage(s.url + '/');
    const b = await openPage(s.url + '/', { connected: false });
    const text = await waitForBanner(b, 'per_ip');
    assert.match(text, /Too many connections from your network address \(the server allows 1, --max-clients-per-ip\)/);
    assert.match(text, /Trying again in \d+s/);
    await a.context().close();
    await eventually(async () => { await nudge(b); return (await state(b)).ready; }, 'B to get in once A left', 15_000);
    assert.equal(await b.isHidden('[data-testid=banner]'), true);
    await b.context().close();
    await s.stop();
  });

  it("the page's origin is refused (403), with the --allow-origin hint", async () => {
    const s = server([], 'errors-origin');
    await s.start();
    const proxy = await hostRewritingProxy(s.port);
    const origin = `http://localhost:${proxy.port}`;
    try {
      const page = await openPage(origin + '/', { connected: false });
      const text = await waitForBanner(page, 'origin');
      assert.match(text, new RegExp(`--allow-origin ${origin.replace(/[.]/g, '\\.')}`), text);
      assert.match(text, /proxy/i);
      assert.match(text, /The server says: Origin .* does not match Host/, 'the server\'s own reason is shown too');
      await page.screenshot({ path: join(SHOTS, 'error-origin.png') });
      await s.restart(['--allow-origin', origin]);
      await eventually(async () => { await nudge(page); return (await state(page)).ready; }, 'the page to connect once its origin is allowed', 15_000);
      await page.context().close();
    } finally {
      proxy.close();
      await s.stop();
    }
  });

  it('a proxy that drops the upgrade (426 to the socket): says to pass Upgrade and Connection on', async () => {
    const s = server([], 'errors-upgrade');
    await s.start();
    const proxy = await upgradeDroppingProxy(s.port);
    try {
      const page = await openPage(`http://127.0.0.1:${proxy.port}/`, { connected: false });
      const text = await waitForBanner(page, 'upgrade', 15_000);
      assert.match(text, /reachable, but the live connection/);
      assert.match(text, /pass the Upgrade and Connection headers/);
      assert.match(text, /Trying again in \d+s/);
      await page.screenshot({ path: join(SHOTS, 'error-upgrade.png') });
      await page.context().close();
    } finally {
      proxy.close();
      await s.stop();
    }
  });

  it('the access key is missing (401)', async () => {
    const s = server(['--access-key', 'first-key-123456'], 'errors-key');
    await s.start();
    const page = await openPage(`${s.url}/?key=first-key-123456`);
    assert.equal(new URL(page.url()).search, '', 'the key left the address bar');
    await s.restart(['--access-key', 'other-key-654321']);
    const text = await waitForBanner(page, 'key', 15_000);
    assert.match(text, /access key/i);
    await page.screenshot({ path: join(SHOTS, 'error-key.png') });
    await page.context().close();
    await s.stop();
  });

  it('drawing too fast for the rate limit (1008): says so, keeps every stroke, sends more slowly', async (t) => {
    const s = server(['--rate-limit', '150', '--rate-burst', '300'], 'errors-rate');
    await s.start();
    const a = await openPage(s.url + '/'), b = await openPage(s.url + '/');
    await Promise.all([waitForCount(a, 2), waitForCount(b, 2)]);
    await setTool(a, { color: '#9c36b5', width: 4 });
    const drawing = scribble(a, { n: 1400, perTick: 10 });
    const text = await waitForBanner(a, 'rate', 15_000);
    assert.match(text, /faster than this server accepts/i);
    assert.match(text, /Nothing you drew is lost/i);
    await a.screenshot({ path: join(SHOTS, 'error-rate.png') });
    await drawing;
    await eventually(async () => (await state(a)).outbox === 0 && (await state(a)).ready, 'A to send everything', 45_000);
    await waitSamePicture(a, b, 'B to show everything A drew');
    const { pace } = await state(a);
    assert.ok(pace.rate <= 150, `the page slowed down to the server's pace (${pace.rate}/s)`);
    t.diagnostic(`closed for rate ${await s.metric('smolcanvas_rate_limited_closed_total')} time(s); page now sends ${pace.rate}/s`);
    await Promise.all([a.context().close(), b.context().close()]);
    await s.stop();
  });

  it('the server shutting down (1001), then gone, with the countdown; back when it is', async () => {
    const s = server([], 'errors-gone');
    await s.start();
    const page = await openPage(s.url + '/');
    await s.stop();
    const first = await waitForBanner(page, 'shutdown');
    assert.match(first, /shutting down|restarting/i);
    assert.match(first, /Trying again in \d+s/);
    const gone = await waitForBanner(page, 'gone', 15_000);
    assert.match(gone, /Cannot reach the server/i);
    assert.match(gone, /Trying again in \d+s/);
    await page.screenshot({ path: join(SHOTS, 'error-gone.png') });
    await s.start();
    await eventually(async () => { await nudge(page); return (await state(page)).ready; }, 'the page to come back', 15_000);
    assert.equal(await page.isHidden('[data-testid=banner]'), true);
    await page.context().close();
    await s.stop();
  });

  it('raises no script errors', () => assertNoPageErrors());
});
