// Boards, undo and redo, viewers, export and the v2-only messages, against this repository's server, which speaks
// smolcanvas.v2 (PROTOCOL.md, v2): a server that answers v1 only fails these tests, it does not skip them.
//
// Two editors and a viewer on board `b/test`, another page on `main`: strokes reach the right pages only; undo
// and redo by keyboard and button repaint the same pixels on every page; undo survives a reload of the drawer's
// page; the eraser; the download is a PNG whose pixels match the page; the viewer has no tools and its attempts
// change nothing; the board limits (a new board refused, a first draw refused, too many boards open) and the
// "cannot save" notice are said in words. The "cannot save" test needs root (it mounts a small tmpfs), as in CI.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SHOTS, V2, WAIT, Server, speaksV2, launch, closeBrowser, openPage, frames, eventually, waitForCount, inkAt, waitForInk,
  waitForNoInk, waitForBlank, setTool, mouseStroke, state, assertNoPageErrors, waitConnected, waitForBanner,
  pixelDigest, inkBlocks, blockDiff, hostRewritingProxy,
} from './lib.mjs';

const RED = [224, 49, 49], BLUE = [25, 113, 194], GREEN = [47, 158, 68];
const nudge = (page) => page.evaluate(() => window.dispatchEvent(new Event('online')));
const digest = (page) => page.evaluate(pixelDigest);

async function sameDigest(pages, want, what) {
  let got = [];
  await eventually(async () => {
    got = await Promise.all(pages.map(digest));
    return got.every((d) => d === (want ?? got[0]));
  }, () => `${what}: ${got.join(' ')}${want ? ` (want ${want})` : ''}`);
  return got[0];
}

describe('boards, undo and redo, viewers, export (v2)', { timeout: 120_000 }, () => {
  const server = new Server([], 'v2');
  let e1, e2, viewer, other, base, viewUrl;

  before(async () => {
    await server.start();
    base = server.url;
    assert.ok(await speaksV2(server.port, '/b/test/ws'), `the server (${process.env.SMOLCANVAS_BIN || 'target/debug/smolcanvas'}) must answer ${V2}`);
    await launch();
  });

  after(async () => {
    await closeBrowser();
    await server.dispose();
  });

  it('opens board test for two editors, a viewer through its view link, and main elsewhere', async () => {
    e1 = await openPage(`${base}/b/test`, { acceptDownloads: true });
    e2 = await openPage(`${base}/b/test`, { viewport: { width: 900, height: 640 } });
    const s = await state(e1);
    assert.equal(s.protocol, V2);
    assert.equal(s.board, 'test');
    assert.equal(await e1.textContent('[data-testid=board-name]'), 'test');
    assert.match(s.viewPath, /^\/v\/[A-Za-z0-9_-]{16,}$/);
    viewUrl = base + s.viewPath;
    viewer = await openPage(viewUrl);
    other = await openPage(`${base}/`);
    await Promise.all([waitForCount(e1, 3), waitForCount(e2, 3), waitForCount(viewer, 3), waitForCount(other, 1)]);
    assert.equal((await state(viewer)).viewer, true);
    assert.equal(await viewer.isVisible('[data-testid=viewonly]'), true, 'a clear "view only" mark');
    for (const id of ['pen', 'eraser', 'undo', 'redo', 'clear', 'color', 'width', 'share', 'new-board']) {
      assert.equal(await viewer.isVisible(`[data-testid=${id}]`), false, `the viewer has no ${id}`);
    }
    assert.equal(await viewer.isVisible('[data-testid=download]'), true, 'the viewer can download');
    assert.equal(await viewer.textContent('[data-testid=board-name]'), '', 'the viewer learns nothing of the name');
  });

  it('strokes reach the pages of their board only', async () => {
    await setTool(e1, { color: '#e03131', width: 12 });
    await mouseStroke(e1, [[200, 200], [1000, 500]], 20);
    for (const p of [e2, viewer]) await waitForInk(p, 600, 350, { rgb: RED });
    await setTool(other, { color: '#2f9e44', width: 12 });
    await mouseStroke(other, [[200, 600], [1000, 600]], 20);
    for (const p of [e1, e2, viewer]) assert.equal(await inkAt(p, 600, 600), false, 'main stays on main');
    assert.equal(await inkAt(other, 600, 350), false, 'test stays on test');
    assert.equal(frames.get(other).received.filter((m) => m.type === 'draw').length, 0, 'main received no draw of test');
    assert.ok(frames.get(e2).received.filter((m) => m.type === 'draw').every((m) => typeof m.stroke === 'string'), 'draws carry stroke keys');
  });

  it('undo and redo, by keyboard and by button, repaint the same pixels on every page', async () => {
    const pages = [e1, e2, viewer];
    const one = await sameDigest(pages, null, 'the three pages to agree after the first stroke');
    await setTool(e1, { color: '#1971c2', width: 10 });
    await mouseStroke(e1, [[300, 600], [640, 150], [980, 600]], 15);
    await waitForInk(e2, 640, 160, { rgb: BLUE, r: 6 });
    const two = await sameDigest(pages, null, 'the three pages to agree after the second stroke');
    assert.notEqual(one, two);
    await e1.keyboard.press('Control+z');
    await sameDigest(pages, one, 'Ctrl+Z to remove the stroke everywhere');
    await e1.click('[data-testid=redo]');
    await sameDigest(pages, two, 'the redo button to bring it back everywhere');
    await e1.click('[data-testid=undo]');
    await sameDigest(pages, one, 'the undo button to remove it everywhere');
    await e1.keyboard.press('Control+Shift+Z');
    await sameDigest(pages, two, 'Ctrl+Shift+Z to bring it back everywhere');
    await e1.keyboard.press('Control+z');
    await sameDigest(pages, one, 'Ctrl+Z again');
    await e1.keyboard.press('Control+y');
    await sameDigest(pages, two, 'Ctrl+Y to redo');
    // e2's undo touches only e2's strokes: it has none, so nothing changes.
    await e2.keyboard.press('Control+z');
    await e1.keyboard.press('Control+z');
    await sameDigest(pages, one, "another editor's undo does not take e1's strokes");
    await e1.keyboard.press('Control+y');
    await sameDigest(pages, two, 'redo after all');
    await e1.screenshot({ path: join(SHOTS, 'v2-undo-redo.png') });
  });

  it('undo survives a reload of the drawer’s page', async () => {
    await setTool(e1, { color: '#2f9e44', width: 14 });
    await mouseStroke(e1, [[100, 100], [400, 120]], 15);
    await waitForInk(e2, 250, 110, { rgb: GREEN });
    await e1.reload();
    await waitConnected(e1);
    await waitForInk(e1, 250, 110, { rgb: GREEN });
    await e1.keyboard.press('Control+z');
    for (const p of [e1, e2, viewer]) await waitForNoInk(p, 250, 110, { r: 4 });
    assert.ok(await inkAt(e2, 640, 160, { rgb: BLUE, r: 6 }), 'only the newest stroke went');
  });

  it('the eraser paints white on the board for everyone', async () => {
    await e2.click('[data-testid=eraser]');
    await setTool(e2, { width: 40 });
    await mouseStroke(e2, [[600, 280], [600, 420]], 10);
    for (const p of [e1, viewer]) await waitForNoInk(p, 600, 350, { r: 10 });
    await sameDigest([e1, e2, viewer], null, 'the pages to agree after erasing');
  });

  it('downloads board.png named after the board, with the pixels of the page', async () => {
    const [download] = await Promise.all([e1.waitForEvent('download'), e1.click('[data-testid=download]')]);
    assert.equal(download.suggestedFilename(), 'test.png');
    const path = join(SHOTS, 'v2-download.png');
    await download.saveAs(path);
    const bytes = readFileSync(path);
    assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG');
    const res = await fetch(`${base}/b/test/board.png`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') || '', /filename="test\.png"/);
    const theirs = await e1.evaluate(async (b64) => {
      const img = new Image();
      img.src = 'data:image/png;base64,' + b64;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = 1280;
      c.height = 720;
      c.getContext('2d').drawImage(img, 0, 0);
      const { data } = c.getContext('2d').getImageData(0, 0, 1280, 720);
      const blocks = new Array(80 * 45).fill(0);
      for (let y = 0; y < 720; y++) for (let x = 0; x < 1280; x++) {
        const i = (y * 1280 + x) * 4;
        if (Math.min(data[i], data[i + 1], data[i + 2]) < 128) blocks[(y >> 4) * 80 + (x >> 4)]++;
      }
      return { blocks, w: img.naturalWidth, h: img.naturalHeight };
    }, bytes.toString('base64'));
    assert.deepEqual([theirs.w, theirs.h], [1280, 720]);
    const mine = await e1.evaluate(inkBlocks);
    assert.equal(blockDiff(mine, theirs.blocks), 0, 'the PNG shows what the page shows');
  });

  it('the viewer has no tools and its attempts change nothing', async () => {
    const before = await digest(e1);
    const box = await viewer.locator('[data-testid=board]').boundingBox();
    await viewer.mouse.move(box.x + 50, box.y + 50);
    await viewer.mouse.down();
    await viewer.mouse.move(box.x + box.width - 50, box.y + box.height - 50, { steps: 10 });
    await viewer.mouse.up();
    await viewer.keyboard.press('Control+z');
    await viewer.keyboard.press('e');
    assert.equal(frames.get(viewer).sent.filter((m) => ['draw', 'undo', 'redo', 'clear'].includes(m.type)).length, 0, 'the viewer sends nothing');
    // Even a message forced through the socket is refused by the server.
    await mouseStroke(e1, [[1200, 50], [1210, 60]], 5);
    await e1.keyboard.press('Control+z');
    await sameDigest([e1, e2, viewer], before, 'nothing changed');
  });

  it('share copies the view-only link, with a confirmation; New board opens an empty board', async () => {
    await e1.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await e1.click('[data-testid=share]');
    // The toast comes after the clipboard write (async): until then the download's toast may still show.
    const toast = await e1.waitForFunction(() => {
      const el = document.querySelector('[data-testid=toast]');
      return !el.hidden && /View-only link copied/.test(el.textContent) && el.textContent;
    }, null, { timeout: WAIT, polling: 50 }).then((h) => h.jsonValue());
    assert.match(toast, new RegExp(`View-only link copied: ${viewUrl.replace(/[.]/g, '\\.')}`));
    assert.equal(await e1.evaluate(() => navigator.clipboard.readText()), viewUrl);
    await Promise.all([e1.waitForURL(/\/b\/[A-Za-z0-9_-]{10}$/), e1.click('[data-testid=new-board]')]);
    await waitConnected(e1);
    await waitForBlank(e1);
    assert.notEqual((await state(e1)).board, 'test');
  });

  it('says when the board limit is reached: a new board refused (503), a first draw past the limit refused', async () => {
    const s = new Server(['--max-boards', '1'], 'v2-limit');
    await s.start();
    try {
      // Open before any board exists: loaded, so its socket is taken, but nothing drawn yet.
      const early = await openPage(`${s.url}/b/early`);
      const a = await openPage(`${s.url}/b/first`);
      await mouseStroke(a, [[100, 100], [200, 200]], 20);
      await eventually(async () => (await s.metric('smolcanvas_boards_stored')) === 1, 'board first to exist');
      const rejected = 'smolcanvas_upgrades_rejected_total{reason="app_limit"}';
      const before = (await s.metric(rejected)) ?? 0;
      // A new board: the upgrade gets 503; the page asks the socket path why and names the limit.
      const b = await openPage(`${s.url}/b/second`, { connected: false });
      const text = await waitForBanner(b, 'board_limit');
      assert.match(text, /reached its limit of boards \(1, set by --max-boards\)/);
      assert.match(text, /Trying again in \d+s/);
      assert.equal((await state(b)).ready, false);
      await b.screenshot({ path: join(SHOTS, 'error-board-limit.png') });
      assert.ok((await s.metric(rejected)) > before, `the refused upgrade is counted under ${rejected}`);
      const plain = await fetch(`${s.url}/b/second/ws`);
      assert.equal(plain.status, 503);
      assert.match(await plain.text(), /--max-boards/);
      // A board that was open before the limit was reached: its first draw is refused in the socket.
      await mouseStroke(early, [[100, 100], [200, 200]], 20);
      const refused = await waitForBanner(early, 'board_limit');
      assert.match(refused, /limit of boards, so nothing drawn on this new board is kept/);
      assert.ok(frames.get(early).received.some((m) => m.type === 'error' && m.code === 'board_limit'));
      // An existing board still opens.
      await waitConnected(await openPage(`${s.url}/b/first`, { connected: false }));
    } finally {
      await s.dispose();
    }
  });

  // The probe checks the origin the page names before the board limits, as the upgrade does: behind a
  // Host-rewriting proxy on a server at its board limit, the page names the origin, not the limit.
  it('names the refused origin first, even on a new board past the limit (as the upgrade does)', async () => {
    const s = new Server(['--max-boards', '1'], 'v2-limit-origin');
    await s.start();
    const proxy = await hostRewritingProxy(s.port);
    try {
      const a = await openPage(`${s.url}/b/first`);
      await mouseStroke(a, [[100, 100], [200, 200]], 20);
      await eventually(async () => (await s.metric('smolcanvas_boards_stored')) === 1, 'board first to exist');
      const origin = `http://localhost:${proxy.port}`;
      const plain = await fetch(`${origin}/b/second/ws`, { headers: { 'X-Smolcanvas-Origin': origin } });
      assert.equal(plain.status, 403, `the probe answers what the upgrade gets (403), not: ${plain.status} ${await plain.text()}`);
      const b = await openPage(`${origin}/b/second`, { connected: false });
      await waitForBanner(b, 'origin');
    } finally {
      proxy.close();
      await s.dispose();
    }
  });

  it('says when too many boards are open (503 from --max-loaded-boards), and gets in once one closes', async () => {
    const s = new Server(['--max-loaded-boards', '1', '--board-unload-secs', '1'], 'v2-loaded');
    await s.start();
    try {
      const a = await openPage(`${s.url}/b/one`);
      const b = await openPage(`${s.url}/b/two`, { connected: false });
      const text = await waitForBanner(b, 'boards_open');
      assert.match(text, /1 board open at once \(--max-loaded-boards\)/);
      await a.context().close();
      await eventually(async () => { await nudge(b); return (await state(b)).ready; }, 'b to get in once board one is unloaded', 15_000);
      assert.equal(await b.isHidden('[data-testid=banner]'), true);
    } finally {
      await s.dispose();
    }
  });

  it('says when the board cannot be saved (notice), and when it can again', async (t) => {
    const dir = join(tmpdir(), `smolcanvas-full-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    if (process.getuid?.() !== 0) {
      rmSync(dir, { recursive: true, force: true });
      return t.skip('needs root to mount a small tmpfs (CI runs as root)');
    }
    // As root (CI) the mount must work: a failure here fails the test instead of skipping it.
    try { execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir], { stdio: 'pipe' }); } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const s = new Server(['--flush-interval', '0.2'], 'v2-disk', dir);
    try {
      await s.start();
      const a = await openPage(`${s.url}/b/disk`);
      await mouseStroke(a, [[100, 100], [300, 200]], 20);
      try { writeFileSync(join(dir, 'filler'), Buffer.alloc(1024 * 1024)); } catch {}
      await setTool(a, { width: 30 });
      for (let i = 0; i < 5; i++) await mouseStroke(a, [[100, 300 + i * 60], [1200, 300 + i * 60]], 8);
      const text = await waitForBanner(a, 'not_saving', 15_000);
      assert.match(text, /cannot save/i);
      await a.screenshot({ path: join(SHOTS, 'error-not-saving.png') });
      rmSync(join(dir, 'filler'), { force: true });
      await a.waitForSelector('[data-testid=banner]', { state: 'hidden', timeout: 15_000 });
    } finally {
      await s.stop();
      try { execFileSync('umount', [dir], { stdio: 'ignore' }); } catch {}
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('raises no script errors', () => assertNoPageErrors());
});
