// boardcast.js against a scripted fake WebSocket: every frame of
// docs/protocol.md, in the exact order the test chooses, so each rule of
// the client (subscribe after the welcome, resume positions, duplicates,
// gaps, `r`, `u`, `e`, `d`, the send queue, the welcome deadline, close)
// is checked deterministically, without a server. Also the backoff
// function and URL resolution. Needs no WebSocket implementation.
// unit_http.mjs goes on with the HTTP transports (SSE, long polling,
// /latest) against a fake fetch and EventSource, and the fallback order.
//
//   node tests/js/unit.mjs

import { boardcast, check, equal, until, limit, bytes, uncaught, expectUncaught } from "./harness.mjs";

limit("unit", 30000);

// --- a fake WebSocket (the later sections use fakes.mjs's) --------------------

const sockets = [];

class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.protocol = "";
    this.binaryType = "blob";
    this.sent = [];
    this.closedWith = null;
    sockets.push(this);
  }
  send(frame) {
    if (this.closedWith) throw new Error("send on a closed fake");
    this.sent.push(frame);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
  }
  // The test's side:
  accept(protocol = "boardcast.v1") {
    this.protocol = protocol;
    this.onopen({});
  }
  recv(data) {
    this.onmessage({ data });
  }
  fail() {
    this.onerror({}); // and no close event, as Node 20's undici does
  }
  drop(code = 1006) {
    this.closedWith = { code };
    this.onclose({ code, reason: "", wasClean: false });
  }
  /** The frames sent since the last call, as text (binary as byte arrays). */
  take() {
    const out = this.sent.map((f) => (typeof f === "string" ? f : bytes(f)));
    this.sent = [];
    return out;
  }
}

/** A binary frame: an ASCII first line, then `payload` bytes. */
function binaryFrame(head, payload) {
  const h = new TextEncoder().encode(head + "\n");
  const out = new Uint8Array(h.length + payload.length);
  out.set(h);
  out.set(payload, h.length);
  return out.buffer;
}

const E1 = "00000000000000e1";
const E2 = "00000000000000e2";

function recorder(bc) {
  const log = { status: [], messages: [], errors: [], topics: [] };
  bc.on("status", (s) => log.status.push(s));
  bc.on("message", (data, meta) => log.messages.push({ data, meta }));
  bc.on("error", (e) => log.errors.push(e));
  bc.on("*", (data, meta) => log.topics.push({ data, meta }));
  return log;
}

// --- URLs -------------------------------------------------------------------

{
  const r = boardcast.resolveUrl;
  equal(r("/ws", "http://board.local:8080/dash/index.html"), "ws://board.local:8080/ws", "a path against an http page");
  equal(r("ws", "https://board.local/dash/"), "wss://board.local/dash/ws", "a relative path against an https page");
  equal(r("http://board.local:8080/ws"), "ws://board.local:8080/ws", "http becomes ws");
  equal(r("https://board.local/ws#x"), "wss://board.local/ws", "https becomes wss, no fragment");
  equal(r("ws://10.0.0.2:9000/ws?x=1"), "ws://10.0.0.2:9000/ws?x=1", "ws as it is");
  let threw = null;
  try {
    r("/ws");
  } catch (e) {
    threw = e;
  }
  check(threw instanceof TypeError && /full ws:/.test(threw.message), "a path outside a page is refused with a hint: " + threw);
  threw = null;
  try {
    r("ftp://board.local/ws");
  } catch (e) {
    threw = e;
  }
  check(threw instanceof TypeError, "an ftp URL is refused");
}

// --- backoff ------------------------------------------------------------------

{
  const top = () => 0.9999999;
  const ceilings = [];
  for (let attempt = 0; attempt < 12; attempt++) ceilings.push(boardcast.backoff(attempt, {}, top));
  equal(ceilings, [499, 999, 1999, 3999, 7999, 14999, 14999, 14999, 14999, 14999, 14999, 14999],
    "the default ceilings: 500 ms doubling, capped at 15 s");
  equal(boardcast.backoff(3, {}, () => 0), 0, "full jitter reaches 0");
  equal(boardcast.backoff(3, {}, () => 0.5), 2000, "full jitter: half the ceiling at random 0.5");
  equal(boardcast.backoff(2, { base: 100, cap: 250, factor: 3 }, top), 249, "options tune base, factor and cap");
  equal(boardcast.backoff(10000, {}, top), 14999, "a huge attempt count stays at the cap");
  // A seeded generator: every delay stays under its ceiling, and the
  // delays grow on average until the cap.
  let seed = 42;
  const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let attempt = 0; attempt < 40; attempt++) {
    const d = boardcast.backoff(attempt, {}, lcg);
    check(d >= 0 && d < Math.min(15000, 500 * 2 ** attempt), `attempt ${attempt}: ${d} ms within its ceiling`);
  }
}

// --- the protocol, frame by frame ----------------------------------------------

let threw = null;
{
  const real = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    boardcast.connect("ws://127.0.0.1:1/ws", { transport: "websocket" });
  } catch (e) {
    threw = e;
  }
  if (real) globalThis.WebSocket = real;
  check(threw && /experimental-websocket/.test(threw.message), "no WebSocket: a clear error, " + threw);
}
threw = null;
try {
  boardcast.connect("ws://127.0.0.1:1/ws", { WebSocket: FakeWebSocket, topics: ["bad topic"] });
} catch (e) {
  threw = e;
}
check(threw instanceof TypeError, "an invalid topic name is refused");

{
  const bc = boardcast.connect("ws://board.local/ws", {
    WebSocket: FakeWebSocket,
    topics: ["a", "b"],
    random: () => 0, // reconnect at once
    maxQueue: 2,
  });
  const log = recorder(bc);
  equal(bc.state, "connecting", "connecting at first");
  equal(sockets.length, 0, "no socket before the caller's listeners are in");
  await until("the first socket", () => sockets.length === 1);
  const ws = sockets[0];
  equal(ws.protocols, ["boardcast.v1"], "boardcast.v1 offered");
  equal(ws.binaryType, "arraybuffer", "binary as ArrayBuffer");
  equal(log.status.map((s) => [s.state, s.transport]), [["connecting", "websocket"]], "status connecting, over websocket");
  equal(bc.transport, "websocket", "auto starts with websocket");

  ws.accept();
  equal(ws.take(), [], "nothing sent before the welcome");
  ws.recv("w " + E1);
  equal(ws.take(), ["s a", "s b"], "a subscribe per topic after the welcome");
  equal(bc.state, "open", "open after the welcome");
  equal(log.status.at(-1).state, "open", "status open");
  equal(log.status.at(-1).epoch, E1, "status carries the epoch");

  // A fresh subscription: r 0 is no gap; the latest kept is replayed.
  const a = [];
  bc.on("a", (data, meta) => a.push([data, meta.seq, meta.recovered, meta.replayed, meta.topic, meta.epoch, meta.binary]));
  ws.recv("r a 0 5");
  ws.recv("m a 5\nfive");
  ws.recv("m a 6\nsix\nlines");
  ws.recv("m a 6\nsix again");
  ws.recv("m a 4\nold");
  ws.recv("m a 9\nnine");
  ws.recv("m a 10\nten");
  equal(a, [
    ["five", 5, true, true, "a", E1, false],
    ["six\nlines", 6, true, false, "a", E1, false],
    ["nine", 9, false, false, "a", E1, false],
    ["ten", 10, true, false, "a", E1, false],
  ], "topic a: fresh, live, duplicates dropped, a jump is a gap");
  equal([bc.stats.messages, bc.stats.duplicates, bc.stats.gaps], [4, 2, 1], "counters after topic a");
  equal(bc.position("a"), { epoch: E1, seq: 10 }, "position of a");

  // Binary messages of a topic, and messages for this client alone.
  const b = [];
  bc.on("b", (data, meta) => b.push([bytes(data), meta.binary, data instanceof ArrayBuffer]));
  ws.recv("r b 0 0");
  ws.recv(binaryFrame("m b 1", [0, 10, 255]));
  ws.recv(binaryFrame("m b 2", []));
  equal(b, [[[0, 10, 255], true, true], [[], true, true]], "binary messages: ArrayBuffer of the payload, newline included");
  ws.recv("d\nhello\nyou");
  ws.recv(binaryFrame("d", [1, 2]));
  equal(log.messages.map((m) => [typeof m.data === "string" ? m.data : bytes(m.data), m.meta.binary]),
    [["hello\nyou", false], [[1, 2], true]], "d frames reach 'message', text and binary");
  equal(log.topics.length, 6, "'*' sees every topic message");

  // Frames to ignore, and refusals.
  ws.recv("h");
  ws.recv("z future verb");
  ws.recv(binaryFrame("q", [1]));
  ws.recv(new Uint8Array([109, 32, 98]).buffer); // "m b" with no newline
  ws.recv("m nosuchtopic 1\nx");
  ws.recv("e too many subscriptions");
  equal(log.errors, [{ type: "refused", reason: "too many subscriptions" }], "e frames reach 'error'");
  equal(bc.stats.messages, 6, "unknown verbs and unsubscribed topics deliver nothing");

  // Sends, subscribe and unsubscribe while open.
  check(bc.send("cmd 1"), "send while open");
  const raw = new Uint8Array([5, 6, 7]);
  check(bc.send(raw), "send binary while open");
  equal(ws.take(), ["d\ncmd 1", [5, 6, 7]], "text as a d frame, binary as is");
  let sendThrew = null;
  try {
    bc.send({ not: "data" });
  } catch (e) {
    sendThrew = e;
  }
  check(sendThrew instanceof TypeError, "send refuses an object");
  check(bc.subscribe("c"), "subscribe c");
  check(!bc.subscribe("c"), "subscribe c twice is a no-op");
  check(bc.unsubscribe("a"), "unsubscribe a");
  check(!bc.unsubscribe("zz"), "unsubscribe of an unknown topic");
  equal(ws.take(), ["s c", "x a"], "s and x sent at once");
  ws.recv("m a 11\nin flight");
  check(bc.subscribe("a"), "subscribe a again before u");
  equal(ws.take(), ["s a"], "a fresh subscribe: the position was forgotten");
  ws.recv("m a 12\nstill in flight");
  ws.recv("u a");
  ws.recv("r a 0 12");
  ws.recv("m a 12\ntwelve");
  equal(a.slice(4).map((x) => [x[0], x[2]]), [["twelve", true]], "in-flight messages before u dropped, then fresh");
  equal(bc.topics, ["b", "c", "a"], "topics in subscription order");

  // The link drops: connecting, sends queued (bounded), reconnect, resume.
  ws.recv("r c 0 0");
  ws.recv("m c 1\nc1");
  ws.drop();
  equal(bc.state, "connecting", "connecting after a drop");
  const st = log.status.at(-1);
  equal([st.state, st.attempt, st.retryIn, st.code], ["connecting", 1, 0, 1006], "status after a drop");
  check(bc.send("q1") && bc.send(new Uint16Array([258])), "two sends queued");
  check(!bc.send("q3"), "the third is dropped (maxQueue 2)");
  equal(bc.stats.dropped, 1, "stats.dropped");
  equal(log.errors.at(-1).type, "queue-full", "an error event for the dropped send");
  await until("the second socket", () => sockets.length === 2);
  const ws2 = sockets[1];
  ws2.accept();
  equal(ws2.take(), [], "nothing before the welcome, even queued sends");
  ws2.recv("w " + E1);
  equal(ws2.take(), [`s b ${E1} 2`, `s c ${E1} 1`, `s a ${E1} 12`, "d\nq1", [2, 1]],
    "resume every topic from its position, then the queued sends in order");
  equal([bc.stats.connects, bc.stats.reconnects], [2, 1], "connects and reconnects");

  ws2.recv("r b 1 4");
  ws2.recv(binaryFrame("m b 3", [3]));
  ws2.recv(binaryFrame("m b 4", [4]));
  ws2.recv(binaryFrame("m b 5", [5]));
  ws2.recv("r c 0 9"); // c's history is gone: a gap
  ws2.recv("m c 9\nc9");
  ws2.recv("m c 10\nc10");
  ws2.recv("r a 0 12"); // not recovered, but nothing was missed
  ws2.recv("m a 13\na13");
  const tail = log.topics.slice(-6).map((x) => [x.meta.topic, x.meta.seq, x.meta.recovered, x.meta.replayed]);
  equal(tail, [["b", 3, true, true], ["b", 4, true, true], ["b", 5, true, false],
    ["c", 9, false, true], ["c", 10, true, false], ["a", 13, true, false]], "resumed: replay, gap, no false gap");

  // A new epoch (the board restarted): the old positions are sent, the
  // server answers r 0, and the first message is flagged.
  ws2.drop(1001);
  await until("the third socket", () => sockets.length === 3);
  const ws3 = sockets[2];
  ws3.accept();
  ws3.recv("w " + E2);
  equal(ws3.take(), [`s b ${E1} 5`, `s c ${E1} 10`, `s a ${E1} 13`], "positions of the old epoch sent as they are");
  ws3.recv("r b 0 1");
  ws3.recv(binaryFrame("m b 1", [1]));
  ws3.recv(binaryFrame("m b 2", [2]));
  equal(log.topics.slice(-2).map((x) => [x.meta.seq, x.meta.epoch, x.meta.recovered]),
    [[1, E2, false], [2, E2, true]], "seq 1 of a new epoch is no duplicate, and is a gap");
  equal(bc.position("b"), { epoch: E2, seq: 2 }, "position in the new epoch");
  check(bc.stats.gaps === 3, "gaps: the jump, c's lost history, the new epoch: " + bc.stats.gaps);

  // A listener that throws does not stop the others, nor the client.
  expectUncaught((e) => e && e.message === "listener bug");
  const after = [];
  bc.on("b", () => {
    throw new Error("listener bug");
  });
  bc.on("b", (data, meta) => after.push(meta.seq));
  ws3.recv(binaryFrame("m b 3", [3]));
  equal(after, [3], "the next listener still ran");
  await until("the listener's error reported as uncaught", () => uncaught.length === 1);

  // close(): closed for good.
  bc.close();
  equal(bc.state, "closed", "closed");
  equal(log.status.at(-1).state, "closed", "status closed");
  equal(ws3.closedWith, { code: 1000, reason: "" }, "the socket closed with 1000");
  check(!bc.send("late"), "send after close returns false");
  ws3.recv("m b 4\nlate"); // a late frame on the old socket
  check(!after.includes(4), "nothing delivered after close");
  bc.close();
  equal(log.status.filter((s) => s.state === "closed").length, 1, "close twice: one status");
}

// --- a server that does not speak boardcast.v1; the welcome deadline ---------

{
  const before = sockets.length;
  const bc = boardcast.connect("ws://board.local/ws", {
    WebSocket: FakeWebSocket,
    transport: "websocket", // "auto" would fall back to SSE (see below)
    random: () => 0,
    openTimeout: 30,
  });
  const log = recorder(bc);
  await until("a socket", () => sockets.length === before + 1);
  sockets[before].accept(""); // no subprotocol chosen
  equal(log.errors.map((e) => e.type), ["protocol"], "a server without boardcast.v1: an error");
  check(sockets[before].closedWith, "and the socket is closed");
  await until("a second try", () => sockets.length === before + 2);
  sockets[before + 1].accept(); // accepted, but never welcomes
  await until("the welcome deadline drops it", () => sockets.length === before + 3);
  check(sockets[before + 1].closedWith, "the silent socket was closed");
  equal(log.status.slice(-1)[0].reason, "no welcome within 30 ms", "status names the deadline");
  equal(log.status.slice(-1)[0].attempt, 2, "two failed attempts");
  sockets[before + 2].fail(); // an error event and no close event
  await until("a retry after an error alone", () => sockets.length === before + 4);
  check(sockets[before + 2].closedWith, "the failed socket was closed");
  equal([log.status.at(-1).attempt, log.status.at(-1).code], [3, 1006], "counted as a failed attempt");
  sockets[before + 3].fail();
  sockets[before + 3].drop(); // a close after the error changes nothing
  equal(log.status.filter((s) => s.attempt === 4).length, 1, "one loss per socket");
  bc.close();
}

// --- on() and onTopic() for a topic named like an event -------------------------

{
  const before = sockets.length;
  const bc = boardcast.connect("ws://board.local/ws", { WebSocket: FakeWebSocket, topics: ["status"] });
  const statuses = [];
  const topic = [];
  const off = bc.on("status", (s) => statuses.push(s.state));
  bc.onTopic("status", (data) => topic.push(data));
  await until("a socket", () => sockets.length === before + 1);
  const ws = sockets[before];
  ws.accept();
  ws.recv("w " + E1);
  ws.recv("r status 0 1");
  ws.recv("m status 1\nall good");
  equal(topic, ["all good"], "onTopic reaches a topic named status");
  equal(statuses, ["connecting", "open"], "on('status') stays the event");
  off();
  bc.close();
  equal(statuses, ["connecting", "open"], "the returned function removed the listener");
}

// --- liveness: the heartbeat, stale, a dead link; past= ---------------------------

{
  const before = sockets.length;
  const bc = boardcast.connect("ws://board.local/ws", {
    WebSocket: FakeWebSocket,
    topics: ["a"],
    past: 120,
    random: () => 0, // reconnect at once
  });
  const log = recorder(bc);
  await until("a socket", () => sockets.length === before + 1);
  const ws = sockets[before];
  ws.accept();
  ws.recv("w " + E1 + " 100");
  equal(ws.take(), ["s a past=120"], "a fresh subscribe asks for the past");
  equal(bc.heartbeat, 100, "the welcome names the heartbeat");
  equal(bc.stale, false, "not stale at first");
  // Silence past 1.5 heartbeats: stale, said once in a status.
  const said = await until("stale", () => log.status.find((s) => s.stale === true));
  check(said.silentFor >= 150, "stale after 150 ms of silence, said after " + said.silentFor);
  equal(bc.state, "open", "stale is not closed");
  ws.recv("h");
  equal(bc.stale, false, "a heartbeat ends it");
  equal(log.status.at(-1).stale, false, "and says so");
  ws.recv("r a 0 3");
  ws.recv("m a 3\nthree");
  // Silence past 4 heartbeats: the link is dead; a new one resumes.
  await until("a reconnect", () => sockets.length === before + 2, 5000);
  check(ws.closedWith !== null, "the dead socket was closed");
  equal(log.status.find((s) => s.state === "connecting" && s.reason).reason.indexOf("nothing heard"), 0,
    "the status says why");
  const again = sockets[before + 1];
  again.accept();
  again.recv("w " + E1 + " 100");
  equal(again.take(), ["s a " + E1 + " 3 past=120"], "it resumes, with the past as the fallback");
  bc.close();
}

await import("./unit_http.mjs").then((m) => m.run({ recorder, E1, E2 }));

console.log("ok unit");
