// Shared helpers of the browser tests: real smolcanvas servers (any flags), headless Chromium
// (playwright-core driving Debian's /usr/bin/chromium), frame logs and pixel checks.
// Pixels are read from the page's model at board size (window.smolcanvas.pixels(): 1280x720,
// whatever the screen), so pages of any size and devicePixelRatio compare directly.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.SMOLCANVAS_BIN || join(ROOT, 'target/debug/smolcanvas');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'target/browser');
export const README_SHOT = join(ROOT, 'docs/screenshot.png');
export const W = 1280, H = 720;
export const WAIT = 10_000;
export const V2 = 'smolcanvas.v2';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

mkdirSync(SHOTS, { recursive: true });

export const pageErrors = [];
export const frames = new Map();

// One smolcanvas process (binary `bin`, BIN by default); `restart()` keeps its port and data dir, optionally
// with other flags.
export class Server {
  constructor(flags = [], name = 'server', dataDir = null, bin = BIN) {
    this.flags = flags;
    this.name = name;
    this.bin = bin;
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), 'smolcanvas-browser-'));
    this.port = null;
    this.proc = null;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  start(flags = this.flags) {
    this.flags = flags;
    const listen = `127.0.0.1:${this.port ?? 0}`;
    const proc = spawn(this.bin, ['--listen', listen, '--data-dir', this.dataDir, '--log-level', 'info', ...flags], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    let seen = '';
    return new Promise((done, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not report its port within 15 s:\n${seen}`)), 15_000);
      const early = (code) => { clearTimeout(timer); reject(new Error(`server exited early (${code}):\n${seen}`)); };
      proc.on('error', (err) => { clearTimeout(timer); reject(err); });
      proc.on('exit', early);
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (chunk) => {
        seen += chunk;
        appendFileSync(join(SHOTS, `${this.name}.log`), chunk);
        const m = seen.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m && !this.port) this.port = Number(m[1]);
        if (m) { clearTimeout(timer); proc.off('exit', early); done(this.port); }
      });
    });
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return null;
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r(code ?? signal)));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    const status = await exited;
    clearTimeout(timer);
    return status;
  }

  async restart(flags = this.flags) {
    await this.stop();
    return this.start(flags);
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async metric(name) {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
    return line ? Number(line.split(/\s+/).pop()) : null;
  }
}

// Does this server answer the v2 subprotocol? (A raw upgrade; node 20 has no WebSocket client.)
export function speaksV2(port, path = '/ws') {
  return new Promise((done) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${V2}\r\n\r\n`);
    });
    let head = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      head += d;
      if (head.includes('\r\n\r\n')) { sock.destroy(); done(/^HTTP\/1\.1 101/.test(head) && /sec-websocket-protocol:\s*smolcanvas\.v2/i.test(head)); }
    });
    sock.on('error', () => done(false));
    setTimeout(() => { sock.destroy(); done(false); }, 3000);
  });
}

// A reverse proxy that forwards every connection to `port`, its request head changed by `rewrite` (latin1 text
// without the final blank line).
export function rewritingProxy(port, rewrite) {
  const server = net.createServer((client) => {
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const text = rewrite(head.subarray(0, end).toString('latin1'));
      const upstream = net.connect(port, '127.0.0.1', () => {
        upstream.write(Buffer.concat([Buffer.from(text, 'latin1'), head.subarray(end)]));
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    };
    client.on('data', onData);
    client.on('error', () => {});
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ port: server.address().port, close: () => server.close() })));
}

// Rewrites Host to the backend's own address: the mistake that makes the server refuse the page's Origin (403).
export function hostRewritingProxy(port) {
  return rewritingProxy(port, (head) => head.replace(/\r\nHost:[^\r]*/i, `\r\nHost: 127.0.0.1:${port}`));
}

// Drops Upgrade and Connection, as a proxy set up without WebSocket support does: the server sees plain GETs (426).
export function upgradeDroppingProxy(port) {
  return rewritingProxy(port, (head) => head.replace(/\r\n(Upgrade|Connection):[^\r]*/gi, '') + '\r\nConnection: close');
}

let browser = null;
export async function launch() {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  return browser;
}
export async function closeBrowser() {
  await browser?.close();
  browser = null;
}

function recordFrames(page) {
  const log = { sent: [], received: [], sockets: [], closes: [] };
  const parse = (payload) => { try { return JSON.parse(payload); } catch { return { unparsed: String(payload) }; } };
  page.on('websocket', (ws) => {
    log.sockets.push(ws.url());
    ws.on('framesent', (f) => log.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => log.received.push(parse(f.payload)));
    ws.on('close', () => log.closes.push(Date.now()));
  });
  frames.set(page, log);
  return log;
}

export async function eventually(check, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A page in its own browser context (own cookies and storage unless `context` is given).
export async function openPage(url, { connected = true, context = null, ...options } = {}) {
  const b = await launch();
  const ctx = context ?? await b.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => pageErrors.push(err));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/WebSocket|Failed to load resource/.test(msg.text())) console.log(`[page console] ${msg.text()}`);
  });
  recordFrames(page);
  await page.goto(url);
  if (connected) await waitConnected(page);
  return page;
}

export function waitConnected(page, timeout = WAIT) {
  return page.waitForSelector('[data-testid=status][data-state=connected]', { timeout });
}

export function waitForCount(page, n) {
  return page.waitForFunction(
    (want) => document.querySelector('[data-testid=count]').textContent.trim() === String(want),
    n, { timeout: WAIT, polling: 50 });
}

export function waitForBanner(page, kind, timeout = WAIT) {
  return page.waitForFunction((k) => {
    const b = document.querySelector('[data-testid=banner]');
    return !b.hidden && b.dataset.kind === k && b.textContent;
  }, kind, { timeout, polling: 50 }).then((h) => h.jsonValue());
}

// True when some pixel within `r` board pixels of (x, y) is not white, optionally close to `rgb`. Runs in the page.
function hasInk({ x, y, r, rgb, negate = false }) {
  const data = window.smolcanvas.pixels();
  const found = () => {
  for (let yy = Math.round(y - r); yy <= Math.round(y + r); yy++) {
    for (let xx = Math.round(x - r); xx <= Math.round(x + r); xx++) {
      if (xx < 0 || yy < 0 || xx >= 1280 || yy >= 720) continue;
      const i = (yy * 1280 + xx) * 4;
      const [R, G, B] = [data[i], data[i + 1], data[i + 2]];
      if (R > 245 && G > 245 && B > 245) continue;
      if (!rgb || Math.abs(R - rgb[0]) + Math.abs(G - rgb[1]) + Math.abs(B - rgb[2]) < 90) return true;
    }
  }
  return false;
  };
  return found() !== negate;
}

export function inkAt(page, x, y, { r = 3, rgb = null } = {}) {
  return page.evaluate(hasInk, { x, y, r, rgb });
}

export function waitForInk(page, x, y, { r = 3, rgb = null, timeout = WAIT } = {}) {
  return page.waitForFunction(hasInk, { x, y, r, rgb }, { timeout, polling: 100 });
}

export function waitForNoInk(page, x, y, { r = 3, timeout = WAIT } = {}) {
  return page.waitForFunction(hasInk, { x, y, r, rgb: null, negate: true }, { timeout, polling: 100 });
}

export function waitForBlank(page) {
  return page.waitForFunction(() => {
    const data = window.smolcanvas.pixels();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250 || data[i + 3] < 250) return false;
    }
    return true;
  }, null, { timeout: WAIT, polling: 100 });
}

// Ink per 16x16 block of the board (pixels darker than mid-grey). Runs in the page.
export function inkBlocks() {
  const data = window.smolcanvas.pixels();
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
export function blockDiff(want, got) {
  return want.filter((n, i) => (n >= 8 && got[i] === 0) || (got[i] >= 8 && n === 0)).length;
}

export async function waitSamePicture(a, b, what = 'the two pages to show the same picture') {
  let diff = -1;
  await eventually(async () => (diff = blockDiff(await a.evaluate(inkBlocks), await b.evaluate(inkBlocks))) === 0,
    () => `${what} (${diff} blocks differ)`);
}

// A digest of the board's pixels, to compare pages exactly. Runs in the page.
export function pixelDigest() {
  const data = window.smolcanvas.pixels();
  let h = 2166136261;
  for (let i = 0; i < data.length; i++) { h ^= data[i]; h = Math.imul(h, 16777619) >>> 0; }
  return h.toString(16);
}

export async function setTool(page, { color, width }) {
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

export async function toClient(page, points) {
  const box = await page.locator('[data-testid=board]').boundingBox();
  return points.map(([x, y]) => [box.x + x * box.width / W, box.y + y * box.height / H]);
}

// Drags the mouse through board points, one step per `stepLength` board pixels.
export async function mouseStroke(page, points, stepLength = 40) {
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

// Many pointer events at once, dispatched inside the page (a very fast mouse): a zigzag of `n` moves.
export function scribble(page, { n, from = [100, 80], rows = 12, perRow = 150, rowGap = 50, perTick = 2 }) {
  return page.evaluate(({ n, from, rows, perRow, rowGap, perTick }) => new Promise((done) => {
    const board = document.querySelector('[data-testid=board]');
    const r = board.getBoundingClientRect();
    const at = (i) => {
      const row = Math.floor(i / perRow) % rows, f = (i % perRow) / perRow;
      const x = from[0] + 1080 * (row % 2 ? 1 - f : f), y = from[1] + row * rowGap + 20 * Math.sin(i / 5);
      return { clientX: r.left + x * r.width / 1280, clientY: r.top + y * r.height / 720 };
    };
    const ev = (type, i) => board.dispatchEvent(new PointerEvent(type, {
      bubbles: true, cancelable: true, pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0, buttons: type === 'pointerup' ? 0 : 1, ...at(i),
    }));
    ev('pointerdown', 0);
    let i = 1;
    const timer = setInterval(() => {
      for (let k = 0; k < perTick && i < n; k++, i++) ev('pointermove', i);
      if (i >= n) { clearInterval(timer); ev('pointerup', n - 1); done(i); }
    }, 1);
  }), { n, from, rows, perRow, rowGap, perTick });
}

export function state(page) {
  return page.evaluate(() => window.smolcanvas.state());
}

export function drawsSent(page) {
  return frames.get(page).sent.filter((m) => m.type === 'draw').length;
}

export function assertNoPageErrors() {
  assert.deepEqual(pageErrors.map(String), []);
}

// Bounding boxes of everything visible in the page's chrome, and the board's.
export function layoutBoxes(page) {
  return page.evaluate(() => {
    const box = (el) => { const r = el.getBoundingClientRect(); return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height }; };
    const board = box(document.querySelector('[data-testid=board]'));
    const controls = [...document.querySelectorAll('header .pill, header .btn, header .brand, #banner, footer button, footer input, footer .picker, footer .size')]
      .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[hidden]'))
      .map((el) => ({ what: el.id || el.dataset.testid || el.className || el.tagName, ...box(el) }))
      .filter((b) => b.width > 0 && b.height > 0);
    return {
      board, controls, innerWidth, innerHeight,
      scrollWidth: document.documentElement.scrollWidth, scrollHeight: document.documentElement.scrollHeight,
    };
  });
}

export function overlaps(a, b) {
  return a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
}
