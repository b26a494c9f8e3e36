// End-to-end browser test of smolcanvas: the real server binary plus headless
// Chromium (playwright-core, system /usr/bin/chromium). Pages draw, sync, join
// late, clear, and run on a phone-sized touch viewport; screenshots go to
// target/browser/ and docs/screenshot.png.
//
// Run: tests/browser/run.sh (or `node --test` in tests/browser after `cargo build`).
// SMOLCANVAS_BIN overrides the server binary (default target/debug/smolcanvas).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.SMOLCANVAS_BIN || join(ROOT, 'target/debug/smolcanvas');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target/browser');
const README_SHOT = join(ROOT, 'docs/screenshot.png');
const W = 1280, H = 720;
const WAIT = 10_000;
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let server, serverLog = '', dataDir, port, baseUrl, browser;
const pageErrors = [];
const frames = new Map();

function startServer(listen = '127.0.0.1:0') {
  const proc = spawn(BIN, ['--listen', listen, '--data-dir', dataDir, '--log-level', 'info'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server = proc;
  let seen = '';
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not report its port within 15 s:\n${seen}`)), 15_000);
    const early = (code) => { clearTimeout(timer); reject(new Error(`server exited early (${code}):\n${seen}`)); };
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('exit', early);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      seen += chunk;
      serverLog += chunk;
      const m = seen.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); proc.off('exit', early); resolvePort(Number(m[1])); }
    });
  });
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return null;
  const exited = new Promise((r) => server.once('exit', (code, signal) => r(code ?? signal)));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
  const status = await exited;
  clearTimeout(timer);
  return status;
}

function recordFrames(page) {
  const log = { sent: [], received: [] };
  const parse = (payload) => { try { return JSON.parse(payload); } catch { return { unparsed: String(payload) }; } };
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => log.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => log.received.push(parse(f.payload)));
  });
  frames.set(page, log);
}

async function eventually(check, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err));
  page.on('console', (msg) => { if (msg.type() === 'error') console.log(`[page console] ${msg.text()}`); });
  recordFrames(page);
  await page.goto(baseUrl);
  await page.waitForSelector('[data-testid=status][data-state=connected]', { timeout: WAIT });
  return page;
}

function waitForCount(page, n) {
  return page.waitForFunction(
    (want) => document.querySelector('[data-testid=count]').textContent.trim() === String(want),
    n, { timeout: WAIT, polling: 50 });
}

// True when some pixel within `r` logical pixels of (x, y) is not white,
// optionally requiring it to be close to `rgb`. Runs inside the page.
function hasInk({ x, y, r, rgb }) {
  const ctx = document.querySelector('[data-testid=board]').getContext('2d');
  const { data } = ctx.getImageData(Math.round(x - r), Math.round(y - r), 2 * r + 1, 2 * r + 1);
  for (let i = 0; i < data.length; i += 4) {
    const [R, G, B] = [data[i], data[i + 1], data[i + 2]];
    if (R > 245 && G > 245 && B > 245) continue;
    if (!rgb || Math.abs(R - rgb[0]) + Math.abs(G - rgb[1]) + Math.abs(B - rgb[2]) < 90) return true;
  }
  return false;
}

function inkAt(page, x, y, { r = 3, rgb = null } = {}) {
  return page.evaluate(hasInk, { x, y, r, rgb });
}

function waitForInk(page, x, y, { r = 3, rgb = null } = {}) {
  return page.waitForFunction(hasInk, { x, y, r, rgb }, { timeout: WAIT, polling: 50 });
}

function waitForBlank(page) {
  return page.waitForFunction(() => {
    const ctx = document.querySelector('[data-testid=board]').getContext('2d');
    const { data } = ctx.getImageData(0, 0, 1280, 720);
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250 || data[i + 3] < 250) return false;
    }
    return true;
  }, null, { timeout: WAIT, polling: 100 });
}

async function setTool(page, { color, width }) {
  await page.evaluate(({ color, width }) => {
    const set = (sel, value) => {
      const el = document.querySelector(sel);
      el.value = value;
      el.dispatchEvent(new Event('input', { bubbles: true }));
    };
    if (color) set('[data-testid=color]', color);
    if (width) set('[data-testid=width]', String(width));
  }, { color, width });
}

async function toClient(page, points) {
  const box = await page.locator('[data-testid=board]').boundingBox();
  return points.map(([x, y]) => [box.x + x * box.width / W, box.y + y * box.height / H]);
}

// Drags the mouse through logical board points, one step per `stepLength` logical pixels.
async function mouseStroke(page, points, stepLength = 40) {
  const client = await toClient(page, points);
  await page.mouse.move(...client[0]);
  await page.mouse.down();
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i];
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / stepLength));
    await page.mouse.move(...client[i], { steps });
  }
  await page.mouse.up();
}

// Ink per 16x16 block of the board (pixels darker than mid-grey). Runs inside the page.
function inkBlocks() {
  const { data } = document.querySelector('[data-testid=board]').getContext('2d').getImageData(0, 0, 1280, 720);
  const blocks = new Array(80 * 45).fill(0);
  for (let y = 0; y < 720; y++) {
    for (let x = 0; x < 1280; x++) {
      const i = (y * 1280 + x) * 4;
      if (Math.min(data[i], data[i + 1], data[i + 2]) < 128) blocks[(y >> 4) * 80 + (x >> 4)]++;
    }
  }
  return blocks;
}

// Blocks where one board has clear ink and the other none at all.
function blockDiff(want, got) {
  return want.filter((n, i) => (n >= 8 && got[i] === 0) || (got[i] >= 8 && n === 0)).length;
}

async function clearBoard(page) {
  page.once('dialog', (d) => d.accept());
  await page.click('[data-testid=clear]');
}

const RED = [224, 49, 49];
const LINE = [[200, 200], [1000, 500]];
const MID = [600, 350];

describe('smolcanvas in the browser', { timeout: 60_000 }, () => {
  let a, b, c;

  before(async () => {
    assert.ok(existsSync(BIN), `server binary missing: ${BIN} (run cargo build)`);
    assert.ok(existsSync(CHROMIUM), `chromium missing: ${CHROMIUM}`);
    mkdirSync(SHOTS, { recursive: true });
    mkdirSync(dirname(README_SHOT), { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'smolcanvas-browser-'));
    port = await startServer();
    baseUrl = `http://127.0.0.1:${port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await stopServer();
    writeFileSync(join(SHOTS, 'server.log'), serverLog);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the page and two pages see each other', async () => {
    const res = await fetch(baseUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(await res.text(), /<canvas[^>]*width="1280" height="720"/);

    a = await openPage();
    b = await openPage({ viewport: { width: 900, height: 640 } });
    await Promise.all([waitForCount(a, 2), waitForCount(b, 2)]);
    for (const page of [a, b]) {
      const box = await page.locator('[data-testid=board]').boundingBox();
      assert.ok(Math.abs(box.width / box.height - W / H) < 0.01, `board keeps 16:9, got ${box.width}x${box.height}`);
    }
    await waitForBlank(b);
    assert.equal(await a.evaluate(() => document.querySelector('[data-testid=width]').value), '3');
  });

  it('a mouse drag on A shows up on B at the same logical place', async () => {
    await setTool(a, { color: '#e03131', width: 12 });
    await mouseStroke(a, LINE, 20);
    assert.ok(await inkAt(a, ...MID, { rgb: RED }), 'A paints its own stroke');
    await waitForInk(b, ...MID, { rgb: RED });
    await waitForInk(b, ...LINE[0], { rgb: RED });
    await waitForInk(b, ...LINE[1], { rgb: RED });
    assert.equal(await inkAt(b, 100, 650, { r: 10 }), false, 'B stays white away from the stroke');
  });

  it('a late joiner C receives the drawing through the canvas sync', async () => {
    c = await openPage();
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3), waitForCount(c, 3)]);
    await waitForInk(c, ...MID, { rgb: RED });
    await waitForInk(c, ...LINE[0], { rgb: RED });
    assert.equal(await inkAt(c, 100, 650, { r: 10 }), false, 'C stays white away from the stroke');

    const request = frames.get(a).received.findLast((m) => m.type === 'canvasRequest' && m.clientId !== 'server');
    assert.ok(request, 'the server asked A, the longest connected, for the canvas');
    await eventually(() => frames.get(a).sent.some((m) => m.type === 'canvasState' && m.clientId === request.clientId),
      'A to answer the canvasRequest');
    const state = frames.get(c).received.find((m) => m.type === 'canvasState');
    assert.equal(state.clientId, request.clientId, 'C got the snapshot that was asked for it');
    assert.match(state.data, /^data:image\/png;base64,/);
    await Promise.all([
      a.screenshot({ path: join(SHOTS, 'a.png') }),
      b.screenshot({ path: join(SHOTS, 'b.png') }),
      c.screenshot({ path: join(SHOTS, 'c.png') }),
    ]);
  });

  it('the clear button asks first, then clears everyone', async () => {
    a.once('dialog', (d) => d.dismiss());
    await a.click('[data-testid=clear]');
    assert.ok(await inkAt(a, ...MID, { rgb: RED }), 'dismissing the confirm keeps the drawing');

    await clearBoard(a);
    await Promise.all([waitForBlank(a), waitForBlank(b), waitForBlank(c)]);
  });

  it('strokes drawn while a newcomer syncs are not lost', async (t) => {
    await setTool(b, { color: '#1f2430', width: 6 });
    const box = await b.locator('[data-testid=board]').boundingBox();
    await b.mouse.move(box.x + box.width * 100 / W, box.y + box.height * 80 / H);
    await b.mouse.down();
    const scribble = b.evaluate(() => new Promise((done) => {
      const board = document.querySelector('[data-testid=board]');
      const r = board.getBoundingClientRect();
      let i = 0;
      const timer = setInterval(() => {
        for (let k = 0; k < 2; k++, i++) {
          const row = Math.floor(i / 150) % 12, f = (i % 150) / 150;
          const x = 100 + 1080 * (row % 2 ? 1 - f : f), y = 80 + row * 50 + 20 * Math.sin(i / 5);
          board.dispatchEvent(new PointerEvent('pointermove', {
            bubbles: true, pointerId: 1, pointerType: 'mouse', isPrimary: true, buttons: 1,
            clientX: r.left + x * r.width / 1280, clientY: r.top + y * r.height / 720,
          }));
        }
        if (window.stopScribble ? --window.stopScribble <= 0 : i >= 4000) { clearInterval(timer); done(i); }
      }, 1);
    }));
    await waitForInk(b, 316, 80, { r: 22 });
    const d = await openPage();
    await b.evaluate(() => { window.stopScribble = 30; });
    const moves = await scribble;
    await b.mouse.up();
    await waitForCount(d, 4);
    const received = frames.get(d).received;
    const early = received.slice(0, received.findIndex((m) => m.type === 'canvasState')).filter((m) => m.type === 'draw').length;
    t.diagnostic(`${moves} segments drawn on B, ${early} reached D before its canvasState (buffered)`);
    const want = await b.evaluate(inkBlocks);
    assert.ok(want.filter((n) => n >= 8).length > 100, 'B drew a long stroke');
    let diff = -1;
    await eventually(async () => (diff = blockDiff(want, await d.evaluate(inkBlocks))) === 0,
      () => `D to match B (${diff} blocks differ)`);
    await d.context().close();
    await clearBoard(b);
    await Promise.all([waitForBlank(a), waitForBlank(b), waitForBlank(c), waitForCount(a, 3)]);
  });

  it('fits a phone screen and draws with touch', async () => {
    const phone = await openPage({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
    await waitForCount(phone, 4);
    const layout = await phone.evaluate(() => {
      const r = document.querySelector('[data-testid=board]').getBoundingClientRect();
      const tools = document.querySelector('[data-testid=clear]').getBoundingClientRect();
      return {
        scrollWidth: document.documentElement.scrollWidth, scrollHeight: document.documentElement.scrollHeight,
        innerWidth, innerHeight, left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height,
        toolsBottom: tools.bottom, touchAction: getComputedStyle(document.querySelector('[data-testid=board]')).touchAction,
      };
    });
    assert.ok(layout.scrollWidth <= layout.innerWidth, `no horizontal scroll (${layout.scrollWidth} > ${layout.innerWidth})`);
    assert.ok(layout.scrollHeight <= layout.innerHeight, `no vertical scroll (${layout.scrollHeight} > ${layout.innerHeight})`);
    assert.ok(layout.left >= 0 && layout.right <= layout.innerWidth, `board inside the viewport: ${JSON.stringify(layout)}`);
    assert.ok(layout.width >= layout.innerWidth * 0.9, `board uses the width: ${layout.width}`);
    assert.ok(Math.abs(layout.width / layout.height - W / H) < 0.02, 'board keeps 16:9 on the phone');
    assert.ok(layout.toolsBottom <= layout.innerHeight, 'toolbar is on screen');
    assert.equal(layout.touchAction, 'none');

    await phone.tap('.swatch[data-color="#1971c2"]');
    assert.equal(await phone.inputValue('[data-testid=color]'), '#1971c2', 'tapping a swatch picks its colour');
    await setTool(phone, { width: 20 });
    const cdp = await phone.context().newCDPSession(phone);
    const path = await toClient(phone, [[300, 600], [500, 550], [700, 500], [900, 450]]);
    const touch = (type, [x, y]) => cdp.send('Input.dispatchTouchEvent', {
      type, touchPoints: type === 'touchEnd' ? [] : [{ x, y, id: 1, radiusX: 2, radiusY: 2, force: 1 }],
    });
    await touch('touchStart', path[0]);
    for (let i = 1; i < path.length; i++) {
      const [x0, y0] = path[i - 1], [x1, y1] = path[i];
      for (let s = 1; s <= 5; s++) await touch('touchMove', [x0 + (x1 - x0) * s / 5, y0 + (y1 - y0) * s / 5]);
    }
    await touch('touchEnd', path.at(-1));

    const BLUE = [25, 113, 194];
    assert.ok(await inkAt(phone, 500, 550, { r: 4, rgb: BLUE }), 'the touch stroke is painted on the phone');
    await waitForInk(b, 500, 550, { rgb: BLUE });
    await waitForInk(b, 800, 475, { rgb: BLUE });
    assert.equal(await phone.evaluate(() => scrollX + scrollY), 0, 'drawing did not scroll the page');
    await phone.screenshot({ path: join(SHOTS, 'phone.png') });
    await phone.context().close();
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3)]);
  });

  it('reconnects after a server restart and gets the board back', async () => {
    const BLUE = [25, 113, 194];
    assert.equal(await stopServer(), 0, 'the server exits 0 on SIGTERM');
    await Promise.all([a, b, c].map((p) => p.waitForSelector('[data-testid=status][data-state=reconnecting]', { timeout: WAIT })));
    await b.evaluate(() => {
      const ctx = document.querySelector('[data-testid=board]').getContext('2d');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, 1280, 720);
    });
    assert.equal(await inkAt(b, 500, 550), false);

    await startServer(`127.0.0.1:${port}`);
    await Promise.all([a, b, c].map((p) => p.waitForSelector('[data-testid=status][data-state=connected]', { timeout: 15_000 })));
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3), waitForCount(c, 3)]);
    await waitForInk(b, 500, 550, { rgb: BLUE });
  });

  it('makes the README screenshot', async () => {
    await clearBoard(a);
    await Promise.all([waitForBlank(a), waitForBlank(b)]);
    await Promise.all([a.context().close(), c.context().close()]);
    const page = await openPage({ viewport: { width: 1280, height: 800 } });
    await Promise.all([waitForCount(page, 2), waitForCount(b, 2)]);

    const strokes = [];
    const circle = (cx, cy, r, from = 0, to = 2 * Math.PI, n = 28) =>
      Array.from({ length: n + 1 }, (_, i) => {
        const t = from + (to - from) * i / n;
        return [cx + r * Math.cos(t), cy + r * Math.sin(t)];
      });
    strokes.push({ color: '#2f9e44', width: 10, points: [[60, 620], [300, 600], [560, 628], [820, 598], [1220, 620]] });
    strokes.push({ color: '#1971c2', width: 8, points: [[300, 610], [300, 400], [560, 400], [560, 612]] });
    strokes.push({ color: '#e03131', width: 8, points: [[270, 420], [430, 290], [590, 420]] });
    strokes.push({ color: '#f08c00', width: 6, points: [[400, 612], [400, 510], [460, 510], [460, 612]] });
    strokes.push({ color: '#1971c2', width: 4, points: [[330, 440], [380, 440], [380, 480], [330, 480], [330, 440]] });
    strokes.push({ color: '#fcc419', width: 10, points: circle(1040, 150, 60) });
    for (let i = 0; i < 8; i++) {
      const t = i * Math.PI / 4;
      strokes.push({ color: '#fcc419', width: 6, points: [[1040 + 80 * Math.cos(t), 150 + 80 * Math.sin(t)], [1040 + 115 * Math.cos(t), 150 + 115 * Math.sin(t)]] });
    }
    const cloud = [[150, 190], ...circle(175, 160, 32, Math.PI / 2, 1.6 * Math.PI, 8), ...circle(235, 130, 45, 1.1 * Math.PI, 2 * Math.PI, 10),
      ...circle(300, 160, 32, 1.4 * Math.PI, 2.5 * Math.PI, 8), [150, 192]];
    strokes.push({ color: '#74c0fc', width: 8, points: cloud });
    strokes.push({ color: '#9c36b5', width: 9, points: [[560, 90], [560, 220]] });
    strokes.push({ color: '#9c36b5', width: 9, points: [[560, 182], ...circle(589, 182, 29, Math.PI, 2 * Math.PI, 12), [618, 220]] });
    strokes.push({ color: '#9c36b5', width: 9, points: [[660, 155], [660, 220]] });
    strokes.push({ color: '#9c36b5', width: 12, points: [[660, 118], [660, 118]] });
    strokes.push({ color: '#9c36b5', width: 9, points: [[706, 90], [704, 180]] });
    strokes.push({ color: '#9c36b5', width: 12, points: [[704, 214], [704, 214]] });
    strokes.push({ color: '#1f2430', width: 4, points: [[780, 280], [805, 258], [830, 280], [855, 258], [880, 280]] });
    strokes.push({ color: '#1f2430', width: 4, points: [[680, 320], [700, 302], [720, 320], [740, 302], [760, 320]] });
    strokes.push({ color: '#2f9e44', width: 14, points: circle(860, 470, 60, 0, 2 * Math.PI, 24) });
    strokes.push({ color: '#8b5a2b', width: 14, points: [[860, 530], [860, 612]] });

    for (const s of strokes) {
      await setTool(page, { color: s.color, width: s.width });
      await mouseStroke(page, s.points);
    }
    await setTool(page, { color: '#1971c2', width: 8 });
    await waitForInk(b, 860, 570, { rgb: [139, 90, 43] });
    await page.waitForSelector('[data-testid=status][data-state=connected]');
    await page.mouse.move(5, 5);
    await page.screenshot({ path: README_SHOT });
  });

  it('raises no script errors in any page', () => {
    assert.deepEqual(pageErrors.map(String), []);
  });
});
