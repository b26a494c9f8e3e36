// go-gorilla: the canvas protocol v1 (docs/PROTOCOL.md) on Go +
// gorilla/websocket, in the style of gorilla's chat example: one hub
// goroutine owns the routing state; every connection has a read goroutine
// and a write goroutine joined by a buffered send channel. A comparison point
// for bench/run.sh, not a product: it relays draws and clears, broadcasts
// clientCount, routes canvas syncs from the longest connected client (2 s
// timeout, at most three peers, then "data":""), pings every 20 s, drops
// clients idle for 60 s or whose send channel is full. No board,
// persistence, rate limits or page.
//
// Usage: go-gorilla [PORT | HOST:PORT]   (or PORT=... in the environment;
// default 127.0.0.1:8080)
package main

import (
	"encoding/json"
	"log"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	pingEvery   = 20 * time.Second
	idleTimeout = 60 * time.Second
	writeWait   = 10 * time.Second
	syncTimeout = 2 * time.Second
	syncTries   = 3
	sendQueue   = 256
	maxMessage  = 8<<20 + 1024
	pngPrefix   = "data:image/png;base64,"
)

var colorRe = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

type client struct {
	id        string
	conn      *websocket.Conn
	send      chan []byte
	closeCode int // set by the hub before it closes send
	synced    bool
}

// pending is a newcomer's canvas sync in progress.
type pending struct {
	peer  *client
	tried []*client
	timer *time.Timer
}

// event is anything the hub handles; exactly one field besides c is set, or none for a leave.
type event struct {
	c        *client
	join     bool
	relay    []byte // a normalised draw or clear for everyone but c
	reply    []byte // an error for c alone
	request  bool   // c asks to be synced again
	state    *inMsg // a canvasState from c
	timedOut string // a sync whose asked peer (c) did not answer in time
}

type inMsg struct {
	Type      *string  `json:"type"`
	Color     string   `json:"color"`
	StartX    *float64 `json:"startX"`
	StartY    *float64 `json:"startY"`
	EndX      *float64 `json:"endX"`
	EndY      *float64 `json:"endY"`
	LineWidth *float64 `json:"lineWidth"`
	ClientID  string   `json:"clientId"`
	Data      *string  `json:"data"`
}

// outMsg is every server message but draws, with "type" first.
type outMsg struct {
	Type        string  `json:"type"`
	ClientCount *int    `json:"clientCount,omitempty"`
	ClientID    string  `json:"clientId,omitempty"`
	Data        *string `json:"data,omitempty"`
	Code        string  `json:"code,omitempty"`
	Message     string  `json:"message,omitempty"`
}

func encode(m outMsg) []byte {
	frame, _ := json.Marshal(m)
	return frame
}

type hub struct {
	events  chan event
	clients []*client // join order
	syncs   map[string]*pending
}

func (h *hub) run() {
	for ev := range h.events {
		switch {
		case ev.join:
			h.clients = append(h.clients, ev.c)
			h.broadcastCount()
			h.startSync(ev.c)
		case ev.relay != nil:
			h.broadcast(ev.relay, ev.c)
		case ev.reply != nil:
			h.send(ev.c, ev.reply)
		case ev.request:
			h.startSync(ev.c)
		case ev.state != nil:
			h.forwardState(ev.c, ev.state)
		case ev.timedOut != "":
			if s := h.syncs[ev.timedOut]; s != nil && s.peer == ev.c {
				h.askNext(ev.timedOut)
			}
		default:
			h.drop(ev.c, websocket.CloseNormalClosure)
		}
	}
}

func (h *hub) find(id string) *client {
	for _, c := range h.clients {
		if c.id == id {
			return c
		}
	}
	return nil
}

// send queues a frame for c; a client whose queue is full is dropped as too slow.
func (h *hub) send(c *client, frame []byte) {
	select {
	case c.send <- frame:
	default:
		h.drop(c, websocket.ClosePolicyViolation)
	}
}

func (h *hub) broadcast(frame []byte, except *client) {
	for _, c := range append([]*client(nil), h.clients...) {
		if c != except {
			h.send(c, frame)
		}
	}
}

func (h *hub) broadcastCount() {
	n := len(h.clients)
	h.broadcast(encode(outMsg{Type: "clientCount", ClientCount: &n}), nil)
}

// drop removes c (once), ends its writer with code and moves on any sync it was asked for.
func (h *hub) drop(c *client, code int) {
	i := 0
	for i < len(h.clients) && h.clients[i] != c {
		i++
	}
	if i == len(h.clients) {
		return
	}
	h.clients = append(h.clients[:i], h.clients[i+1:]...)
	c.closeCode = code
	close(c.send)
	if s := h.syncs[c.id]; s != nil {
		s.stop()
		delete(h.syncs, c.id)
	}
	for id, s := range h.syncs {
		if s.peer == c {
			h.askNext(id)
		}
	}
	h.broadcastCount()
}

func (h *hub) startSync(c *client) {
	if h.syncs[c.id] != nil {
		return
	}
	h.syncs[c.id] = &pending{}
	h.askNext(c.id)
}

// askNext asks the next synced peer for newcomer id's board, or answers "" when none is left.
func (h *hub) askNext(id string) {
	s, target := h.syncs[id], h.find(id)
	if s == nil || target == nil {
		return
	}
	s.stop()
	var peer *client
	for _, c := range h.clients {
		if len(s.tried) < syncTries && c != target && c.synced && !contains(s.tried, c) {
			peer = c
			break
		}
	}
	if peer == nil {
		delete(h.syncs, id)
		h.deliverState(target, "")
		return
	}
	s.peer, s.tried = peer, append(s.tried, peer)
	s.timer = time.AfterFunc(syncTimeout, func() { h.events <- event{c: peer, timedOut: id} })
	h.send(peer, encode(outMsg{Type: "canvasRequest", ClientID: id}))
}

func (h *hub) forwardState(from *client, m *inMsg) {
	s := h.syncs[m.ClientID]
	if s == nil || s.peer != from {
		return // not asked of this sender, or too late: dropped
	}
	if !strings.HasPrefix(*m.Data, pngPrefix) {
		h.send(from, errorFrame("invalid_canvas_state", "data must be a PNG data URL"))
		return
	}
	s.stop()
	delete(h.syncs, m.ClientID)
	if target := h.find(m.ClientID); target != nil {
		h.deliverState(target, *m.Data)
	}
}

func (h *hub) deliverState(c *client, data string) {
	c.synced = true
	h.send(c, encode(outMsg{Type: "canvasState", ClientID: c.id, Data: &data}))
}

func (s *pending) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

func contains(list []*client, c *client) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

func errorFrame(code, message string) []byte {
	return encode(outMsg{Type: "error", Code: code, Message: message})
}

// parse turns one text message into the event the hub needs.
func parse(c *client, text []byte) event {
	var m inMsg
	if err := json.Unmarshal(text, &m); err != nil {
		return event{c: c, reply: errorFrame("invalid_json", "not a JSON object")}
	}
	kind := "draw"
	if m.Type != nil {
		kind = *m.Type
	}
	switch kind {
	case "draw":
		draw, problem := normalise(&m)
		if problem != "" {
			return event{c: c, reply: errorFrame("invalid_draw", problem)}
		}
		return event{c: c, relay: draw}
	case "clear":
		return event{c: c, relay: []byte(`{"type":"clear"}`)}
	case "canvasRequest":
		return event{c: c, request: true}
	case "canvasState":
		if m.Data == nil {
			return event{c: c, reply: errorFrame("invalid_canvas_state", "data is missing")}
		}
		return event{c: c, state: &m}
	}
	return event{c: c, reply: errorFrame("unknown_type", "unknown type")}
}

func normalise(m *inMsg) ([]byte, string) {
	if !colorRe.MatchString(m.Color) {
		return nil, "color must be #rgb or #rrggbb"
	}
	for _, v := range []*float64{m.StartX, m.StartY, m.EndX, m.EndY} {
		if v == nil || math.IsNaN(*v) || *v < -10000 || *v > 10000 {
			return nil, "coordinates must be numbers in [-10000, 10000]"
		}
	}
	width := 3.0
	if m.LineWidth != nil {
		width = *m.LineWidth
	}
	if !(width >= 0.5 && width <= 100) {
		return nil, "lineWidth must be in [0.5, 100]"
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []byte(`{"type":"draw","color":"` + m.Color + `","startX":` + num(*m.StartX) + `,"startY":` + num(*m.StartY) +
		`,"endX":` + num(*m.EndX) + `,"endY":` + num(*m.EndY) + `,"lineWidth":` + num(width) + `}`), ""
}

func (h *hub) readPump(c *client) {
	defer func() { h.events <- event{c: c} }()
	c.conn.SetReadLimit(maxMessage)
	alive := func() { c.conn.SetReadDeadline(time.Now().Add(idleTimeout)) }
	alive()
	c.conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		kind, text, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		alive()
		if kind == websocket.BinaryMessage {
			closeFrame := websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary frames are not accepted")
			c.conn.WriteControl(websocket.CloseMessage, closeFrame, time.Now().Add(writeWait))
			return
		}
		h.events <- parse(c, text)
	}
}

func writePump(c *client) {
	ping := time.NewTicker(pingEvery)
	defer func() { ping.Stop(); c.conn.Close() }()
	for {
		select {
		case frame, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, ""))
				return
			}
			if c.conn.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		case <-ping.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if c.conn.WriteMessage(websocket.PingMessage, nil) != nil {
				return
			}
		}
	}
}

func main() {
	addr := os.Getenv("PORT")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	} else if !strings.Contains(addr, ":") {
		addr = "127.0.0.1:" + addr
	}
	h := &hub{events: make(chan event, 1024), syncs: map[string]*pending{}}
	go h.run()
	upgrader := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	var lastID uint64
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{id: strconv.FormatUint(atomic.AddUint64(&lastID, 1), 10), conn: conn, send: make(chan []byte, sendQueue)}
		go writePump(c)
		h.events <- event{c: c, join: true}
		go h.readPump(c)
	})
	log.Printf("go-gorilla listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
