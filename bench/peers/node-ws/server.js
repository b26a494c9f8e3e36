// node-ws: the canvas protocol v1 (docs/PROTOCOL.md) on Node.js + ws, written
// as a Node developer would: one process, one event loop, a Map of clients.
// A comparison point for bench/run.sh, not a product: it relays draws and
// clears, broadcasts clientCount, routes canvas syncs from the longest
// connected client (2 s timeout, at most three peers, then "data":""), pings
// every 20 s and drops clients idle for 60 s or with 1 MiB unsent. No board,
// persistence, rate limits or page.
//
// Usage: node server.js [PORT | HOST:PORT]   (or PORT=... in the environment;
// default 127.0.0.1:8080)
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const SYNC_TIMEOUT_MS = 2000;
const SYNC_TRIES = 3;
const MAX_UNSENT = 1 << 20;
const PNG_PREFIX = 'data:image/png;base64,';

const clients = new Map(); // id -> { ws, synced, alive }; Map keeps join order
const syncs = new Map(); // newcomer id -> { peer, tried, timer }
let nextId = 1;

function send(client, text) {
  if (client.ws.bufferedAmount > MAX_UNSENT) {
    client.ws.close(1008, 'too slow');
    return;
  }
  client.ws.send(text);
}

function broadcast(text, except) {
  for (const [id, client] of clients) if (id !== except) send(client, text);
}

function broadcastCount() {
  broadcast(JSON.stringify({ type: 'clientCount', clientCount: clients.size }));
}

// Asks the next synced peer for newcomer `id`'s board, or answers "" when none is left.
function askNextPeer(id) {
  const sync = syncs.get(id);
  if (!clients.has(id) || !sync) return;
  clearTimeout(sync.timer);
  let peer = null;
  if (sync.tried.length < SYNC_TRIES) {
    for (const [pid, client] of clients) {
      if (pid !== id && client.synced && !sync.tried.includes(pid)) { peer = pid; break; }
    }
  }
  if (peer === null) {
    syncs.delete(id);
    deliverState(id, JSON.stringify({ type: 'canvasState', clientId: id, data: '' }));
    return;
  }
  sync.peer = peer;
  sync.tried.push(peer);
  sync.timer = setTimeout(() => askNextPeer(id), SYNC_TIMEOUT_MS);
  send(clients.get(peer), JSON.stringify({ type: 'canvasRequest', clientId: id }));
}

function deliverState(id, text) {
  const client = clients.get(id);
  if (!client) return;
  client.synced = true;
  send(client, text);
}

function startSync(id) {
  if (syncs.has(id)) return; // one at a time per client
  syncs.set(id, { peer: null, tried: [], timer: null });
  askNextPeer(id);
}

const isCoord = (v) => typeof v === 'number' && Number.isFinite(v) && v >= -10000 && v <= 10000;

// The normalised draw, or an error message.
function normaliseDraw(m) {
  if (typeof m.color !== 'string' || !/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(m.color)) {
    return 'color must be #rgb or #rrggbb';
  }
  if (![m.startX, m.startY, m.endX, m.endY].every(isCoord)) return 'coordinates must be numbers in [-10000, 10000]';
  const lineWidth = m.lineWidth === undefined ? 3 : m.lineWidth;
  if (typeof lineWidth !== 'number' || !(lineWidth >= 0.5 && lineWidth <= 100)) return 'lineWidth must be in [0.5, 100]';
  return {
    type: 'draw', color: m.color, startX: m.startX, startY: m.startY, endX: m.endX, endY: m.endY, lineWidth,
  };
}

function sendError(client, code, message) {
  send(client, JSON.stringify({ type: 'error', code, message }));
}

function onMessage(id, client, text) {
  let m;
  try { m = JSON.parse(text); } catch { return sendError(client, 'invalid_json', 'not JSON'); }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return sendError(client, 'invalid_json', 'not an object');
  const type = m.type === undefined ? 'draw' : m.type;
  if (type === 'draw') {
    const draw = normaliseDraw(m);
    if (typeof draw === 'string') return sendError(client, 'invalid_draw', draw);
    broadcast(JSON.stringify(draw), id);
  } else if (type === 'clear') {
    broadcast('{"type":"clear"}', id);
  } else if (type === 'canvasRequest') {
    startSync(id);
  } else if (type === 'canvasState') {
    const sync = syncs.get(String(m.clientId));
    if (!sync || sync.peer !== id) return; // not asked of this sender (or too late): dropped
    if (typeof m.data !== 'string' || !m.data.startsWith(PNG_PREFIX)) {
      return sendError(client, 'invalid_canvas_state', 'data must be a PNG data URL');
    }
    clearTimeout(sync.timer);
    syncs.delete(m.clientId);
    deliverState(m.clientId, JSON.stringify({ type: 'canvasState', clientId: m.clientId, data: m.data }));
  } else {
    sendError(client, 'unknown_type', 'unknown type');
  }
}

function onLeave(id) {
  if (!clients.delete(id)) return;
  const own = syncs.get(id);
  if (own) { clearTimeout(own.timer); syncs.delete(id); }
  for (const [target, sync] of syncs) if (sync.peer === id) askNextPeer(target);
  broadcastCount();
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: (8 << 20) + 1024 });

wss.on('connection', (ws) => {
  const id = String(nextId++);
  const client = { ws, synced: false, alive: true };
  clients.set(id, client);
  ws.on('message', (data, isBinary) => {
    client.alive = true;
    if (isBinary) return ws.close(1003, 'binary frames are not accepted');
    onMessage(id, client, data.toString());
  });
  ws.on('pong', () => { client.alive = true; });
  ws.on('close', () => onLeave(id));
  ws.on('error', () => ws.terminate());
  broadcastCount();
  startSync(id);
});

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/ws' ? 426 : 404).end();
});
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws') return socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

// Ping every 20 s; a client silent for three rounds (60 s) is dropped.
setInterval(() => {
  for (const client of clients.values()) {
    client.missed = client.alive ? 0 : (client.missed || 0) + 1;
    client.alive = false;
    if (client.missed >= 3) client.ws.terminate();
    else client.ws.ping();
  }
}, 20000).unref();

const arg = process.argv[2] || process.env.PORT || '127.0.0.1:8080';
const [host, port] = arg.includes(':') ? [arg.slice(0, arg.lastIndexOf(':')), arg.slice(arg.lastIndexOf(':') + 1)] : ['127.0.0.1', arg];
server.listen(Number(port), host, () => console.error(`node-ws listening on ${host}:${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
