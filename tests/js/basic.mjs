// boardcast.js against a real boardcast server (started by
// tests/js_client.rs): text and binary messages of topics with their meta,
// subscribe and unsubscribe at runtime, sends echoed by the server's
// handler, and status events.
//
// The server's handler understands these texts (sent with `bc.send`):
//   "pub <topic> <text>"      publish a text message to <topic>
//   "pubbin <topic> <hex>"    publish a binary message to <topic>
//   anything else             answered "echo <text>" to this client alone
// and echoes binary messages as they are. Commands and subscriptions go
// over the one connection (or, over SSE and long polling, one POST /send
// after another), so the server sees them in the order sent.
//
//   node --experimental-websocket tests/js/basic.mjs <port> [transport]
//
// transport: "auto" (the default, which must end up on WebSocket here),
// "websocket", "sse" or "poll".

import { boardcast, check, equal, until, limit, bytes, port } from "./harness.mjs";

limit("basic", 30000);
const transport = process.argv[3] || "auto";
const using = transport === "auto" ? "websocket" : transport;

// Loaded as an ES module import too: the same object, also on globalThis.
const imported = await import("../../src/boardcast.js");
check(imported.default === boardcast, "import gives module.exports");
check(globalThis.boardcast === boardcast, "globalThis.boardcast is set");

const bc = boardcast.connect(`http://127.0.0.1:${port()}/ws`, { topics: ["news", "bin"], transport });
equal(bc.url, `ws://127.0.0.1:${port()}/ws`, "an http URL becomes ws");

const statuses = [];
const got = { news: [], bin: [], late: [], message: [], errors: [] };
bc.on("status", (s) => statuses.push(s));
bc.on("news", (data, meta) => got.news.push({ data, meta }));
bc.on("bin", (data, meta) => got.bin.push({ data, meta }));
bc.on("late", (data, meta) => got.late.push({ data, meta }));
bc.on("message", (data, meta) => got.message.push({ data, meta }));
bc.on("error", (e) => got.errors.push(e));

await until("open", () => bc.state === "open");
equal(statuses.map((s) => [s.state, s.transport]), [["connecting", using], ["open", using]], "statuses");
equal(bc.transport, using, "bc.transport");
const epoch = statuses[1].epoch;
check(/^[0-9a-f]{16}$/.test(epoch), "the epoch is 16 hex digits: " + epoch);
equal(bc.epoch, epoch, "bc.epoch");

// Published text and binary messages, with their meta.
bc.send("pub news hello, world\nsecond line");
bc.send("pubbin bin 00ff0a41");
await until("a news and a bin message", () => got.news.length === 1 && got.bin.length === 1);
equal(got.news[0].data, "hello, world\nsecond line", "text payload");
equal(got.news[0].meta, { topic: "news", seq: 1, epoch, binary: false, recovered: true, replayed: false }, "text meta");
check(got.bin[0].data instanceof ArrayBuffer, "a binary message is an ArrayBuffer");
equal(bytes(got.bin[0].data), [0, 255, 10, 65], "binary payload, newline byte included");
equal(got.bin[0].meta, { topic: "bin", seq: 1, epoch, binary: true, recovered: true, replayed: false }, "binary meta");

bc.send("pub news again");
await until("news 2", () => got.news.length === 2);
equal([got.news[1].data, got.news[1].meta.seq], ["again", 2], "the next seq");

// Sends: text and binary, answered by the handler to this client alone.
check(bc.send("hi there"), "send text");
check(bc.send(new Uint8Array([1, 2, 3, 10, 0])), "send binary");
await until("two answers", () => got.message.length === 2);
equal(got.message[0].data, "echo hi there", "text answered as a d frame");
equal(got.message[0].meta.binary, false, "text answer meta");
equal(bytes(got.message[1].data), [1, 2, 3, 10, 0], "binary echoed as is");
equal(got.message[1].meta.binary, true, "binary answer meta");

// Subscribe at runtime: the latest kept message first, then live ones.
bc.send("pub late early bird");
bc.send("say sync-1");
await until("the answer after the early publish", () => got.message.length === 3);
equal(got.late.length, 0, "nothing of a topic before subscribing");
check(bc.subscribe("late"), "subscribe late");
bc.send("pub late live one");
await until("two late messages", () => got.late.length === 2);
equal(got.late.map((m) => [m.data, m.meta.seq, m.meta.replayed, m.meta.recovered]),
  [["early bird", 1, true, true], ["live one", 2, false, true]], "latest kept, then live");

// Unsubscribe at runtime: nothing more of the topic, the others go on.
check(bc.unsubscribe("news"), "unsubscribe news");
bc.send("pub news gone");
bc.send("pub bin 01");
await until("bin 2", () => got.bin.length === 2);
bc.send("say sync-2");
await until("a round trip after it", () => got.message.length === 4);
equal(got.news.length, 2, "no news after unsubscribing");
equal(bc.topics, ["bin", "late"], "topics");
equal(got.errors, [], "no error event");
equal([bc.stats.messages, bc.stats.gaps, bc.stats.duplicates, bc.stats.connects, bc.stats.reconnects],
  [6, 0, 0, 1, 0], "stats");

bc.close();
equal(statuses.at(-1).state, "closed", "closed");
console.log("ok basic " + using + " " + JSON.stringify(bc.stats));
