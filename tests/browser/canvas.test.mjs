// The board end to end, as people use it: the real server binary plus headless Chromium. Pages draw, see each
// other, join late, clear, draw with touch on a phone, come back after a restart; makes docs/screenshot.png.
// Runs against a v1 server (today's) and a v2 one (the page then speaks smolcanvas.v2 on the same board `main`).
//
// Run: bash tests/browser/run.sh (builds the server). SMOLCANVAS_BIN overrides the binary.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN, CHROMIUM, SHOTS, README_SHOT, W, H, WAIT, V2, Server, launch, closeBrowser, openPage, frames, eventually,
  waitForCount, inkAt, waitForInk, waitForBlank, inkBlocks, blockDiff, setTool, toClient, mouseStroke, scribble,
  state, assertNoPageErrors, waitConnected,
} from './lib.mjs';

async function clearBoard(page) {
  page.once('dialog', (d) => d.accept());
  await page.click('[data-testid=clear]');
}

const RED = [224, 49, 49];
const BLUE = [25, 113, 194];
const LINE = [[200, 200], [1000, 500]];
const MID = [600, 350];

describe('smolcanvas in the browser', { timeout: 90_000 }, () => {
  const server = new Server([], 'canvas');
  let base, a, b, c;

  before(async () => {
    assert.ok(existsSync(BIN), `server binary missing: ${BIN} (run cargo build)`);
    assert.ok(existsSync(CHROMIUM), `chromium missing: ${CHROMIUM}`);
    await server.start();
    base = server.url + '/';
    await launch();
  });

  after(async () => {
    await closeBrowser();
    await server.dispose();
  });

  it('serves the page and two pages see each other', async (t) => {
    const res = await fetch(base);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('cache-control') || '', /no-(cache|store)/, 'the page is never served stale');
    const html = await res.text();
    const etag = res.headers.get('etag');
    assert.ok(etag, 'the page has an ETag');
    const again = await fetch(base, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, 'a page the browser has is not sent again');
    assert.equal((await fetch(`${server.url}/b/other`)).headers.get('etag'), etag, 'one page for every board, one ETag');
    assert.match(html, /<canvas[^>]*data-testid="board"/);
    assert.doesNotMatch(html, /(src|href)=["']https?:\/\//, 'no external resources');

    a = await openPage(base);
    b = await openPage(base, { viewport: { width: 900, height: 640 } });
    await Promise.all([waitForCount(a, 2), waitForCount(b, 2)]);
    for (const page of [a, b]) {
      const box = await page.locator('[data-testid=board]').boundingBox();
      assert.ok(Math.abs(box.width / box.height - W / H) < 0.01, `board keeps 16:9, got ${box.width}x${box.height}`);
    }
    await waitForBlank(b);
    assert.equal(await a.textContent('[data-testid=board-name]'), 'main');
    const timing = await a.evaluate(() => ({
      paint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
      connected: performance.getEntriesByName('smolcanvas:connected')[0]?.startTime,
    }));
    t.diagnostic(`page ${Buffer.byteLength(html)} bytes; first contentful paint ${Math.round(timing.paint)} ms, connected ${Math.round(timing.connected)} ms after navigation`);
  });

  it('a mouse drag on A shows up on B at the same place', async () => {
    await setTool(a, { color: '#e03131', width: 12 });
    await mouseStroke(a, LINE, 20);
    assert.ok(await inkAt(a, ...MID, { rgb: RED }), 'A paints its own stroke');
    await waitForInk(b, ...MID, { rgb: RED });
    await waitForInk(b, ...LINE[0], { rgb: RED });
    await waitForInk(b, ...LINE[1], { rgb: RED });
    assert.equal(await inkAt(b, 100, 650, { r: 10 }), false, 'B stays white away from the stroke');
    // What the person sees is the model: the visible canvas has the ink where the model has it.
    const visible = await b.evaluate(([x, y]) => {
      const cv = document.querySelector('[data-testid=board]');
      const px = cv.getContext('2d').getImageData(Math.round(x * cv.width / 1280), Math.round(y * cv.height / 720), 1, 1).data;
      return [...px];
    }, MID);
    assert.ok(Math.abs(visible[0] - RED[0]) + Math.abs(visible[1] - RED[1]) + Math.abs(visible[2] - RED[2]) < 60, `visible pixel ${visible}`);
  });

  it('a late joiner C receives the drawing through the sync', async () => {
    c = await openPage(base);
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3), waitForCount(c, 3)]);
    await waitForInk(c, ...MID, { rgb: RED });
    await waitForInk(c, ...LINE[0], { rgb: RED });
    assert.equal(await inkAt(c, 100, 650, { r: 10 }), false, 'C stays white away from the stroke');
    const state = frames.get(c).received.find((m) => m.type === 'canvasState');
    assert.ok(state, 'C got a canvasState');
    await Promise.all(['a', 'b', 'c'].map((n, i) => [a, b, c][i].screenshot({ path: join(SHOTS, `${n}.png`) })));
  });

  it('the clear button asks first, then clears everyone', async () => {
    let question = '';
    a.once('dialog', (d) => { question = d.message(); d.dismiss(); });
    await a.click('[data-testid=clear]');
    assert.ok(await inkAt(a, ...MID, { rgb: RED }), 'dismissing the confirm keeps the drawing');
    const v2 = (await state(a)).protocol === V2;
    assert.match(question, v2 ? /undo/i : /cannot undo/i, `the confirmation says whether a clear can be undone: ${question}`);
    await clearBoard(a);
    await Promise.all([waitForBlank(a), waitForBlank(b), waitForBlank(c)]);
  });

  it('strokes drawn while a newcomer syncs are not lost, and a fast mouse never trips the rate limit', async (t) => {
    await setTool(b, { color: '#1f2430', width: 6 });
    const drawing = scribble(b, { n: 4000, perTick: 4 });
    await waitForInk(b, 316, 80, { r: 22 });
    const d = await openPage(base);
    await drawing;
    await waitForCount(d, 4);
    await eventually(async () => (await state(b)).outbox === 0, 'B to send everything it drew', 30_000);
    const want = await b.evaluate(inkBlocks);
    assert.ok(want.filter((n) => n >= 8).length > 100, 'B drew a long stroke');
    let diff = -1;
    await eventually(async () => (diff = blockDiff(want, await d.evaluate(inkBlocks))) === 0,
      () => `D to match B (${diff} blocks differ)`, 20_000);
    assert.equal(await server.metric('smolcanvas_rate_limited_closed_total'), 0, 'the page paced itself under the default rate limit');
    t.diagnostic(`${frames.get(b).sent.filter((m) => m.type === 'draw').length} segments sent by B`);
    await d.context().close();
    await clearBoard(b);
    await Promise.all([waitForBlank(a), waitForBlank(b), waitForBlank(c), waitForCount(a, 3)]);
  });

  it('fits a phone screen and draws with touch', async () => {
    const phone = await openPage(base, { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 3 });
    await waitForCount(phone, 4);
    await phone.tap('.swatch[data-color="#1971c2"]');
    assert.equal(await phone.inputValue('[data-testid=color]'), '#1971c2', 'tapping a swatch picks its colour');
    assert.equal(await phone.getAttribute('.swatch[data-color="#1971c2"]', 'aria-label'), 'blue');
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
    assert.ok(await inkAt(phone, 500, 550, { r: 4, rgb: BLUE }), 'the touch stroke is painted on the phone');
    await waitForInk(b, 500, 550, { rgb: BLUE });
    await waitForInk(b, 800, 475, { rgb: BLUE });
    assert.equal(await phone.evaluate(() => scrollX + scrollY), 0, 'drawing did not scroll the page');
    await phone.screenshot({ path: join(SHOTS, 'phone.png') });
    await phone.context().close();
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3)]);
  });

  it('says the server went away, counts down, and reconnects with the board after a restart', async () => {
    assert.equal(await server.stop(), 0, 'the server exits 0 on SIGTERM');
    for (const p of [a, b, c]) await p.waitForSelector('[data-testid=status][data-state=reconnecting]', { timeout: WAIT });
    const text = await b.textContent('[data-testid=banner]');
    assert.match(text, /shutting down|restarting|cannot reach|lost/i, text);
    assert.match(text, /Trying again in \d+s/, text);
    await b.evaluate(() => { document.querySelector('[data-testid=board]').getContext('2d').fillRect(0, 0, 5000, 5000); });
    await server.start();
    await Promise.all([a, b, c].map((p) => waitConnected(p, 15_000)));
    await Promise.all([waitForCount(a, 3), waitForCount(b, 3), waitForCount(c, 3)]);
    await waitForInk(b, 500, 550, { rgb: BLUE });
    assert.equal(await b.isHidden('[data-testid=banner]'), true, 'the banner goes once connected');
  });

  it('makes the README screenshot', async () => {
    await clearBoard(a);
    await Promise.all([waitForBlank(a), waitForBlank(b)]);
    await Promise.all([a.context().close(), c.context().close()]);
    const page = await openPage(base, { viewport: { width: 1280, height: 800 } });
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
      await mouseStroke(page, s.points, 12);
    }
    await setTool(page, { color: '#1971c2', width: 8 });
    await eventually(async () => (await state(page)).outbox === 0, 'the drawing to be sent', 30_000);
    await waitForInk(b, 860, 570, { rgb: [139, 90, 43] });
    await waitConnected(page);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: README_SHOT });
    await page.screenshot({ path: join(SHOTS, 'readme.png') });
  });

  it('raises no script errors in any page', () => {
    assertNoPageErrors();
  });
});
