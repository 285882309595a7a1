// transport "auto" against a server that refuses WebSocket upgrades
// (tests/js_client.rs answers them 403): the client must fall back at once
// to SSE, or to long polling when the server does not serve SSE, and work
// there as it would over WebSocket; after the server cuts that link, it
// must reconnect on the same transport without trying WebSocket again.
//
// 1. Open over <expected>: the statuses say websocket, then each fallback
//    (retryIn 0, `failed` naming the one that failed), then open.
// 2. "pub fb one": received; "hello": answered "echo hello"; "say ready".
// 3. The server cuts the link; the client resumes over <expected>;
//    "pub fb two" arrives, gap-free; "say done".
//
//   node tests/js/fallback.mjs <port> <expected: sse | poll>

import { boardcast, check, equal, until, limit, port } from "./harness.mjs";

limit("fallback", 30000);
const expected = process.argv[3];
check(expected === "sse" || expected === "poll", "usage: fallback.mjs <port> <sse|poll>");

const bc = boardcast.connect(`ws://127.0.0.1:${port()}/ws`, {
  topics: ["fb"],
  backoff: { base: 20, cap: 200 },
});
const statuses = [];
const got = [];
const answers = [];
bc.on("status", (s) => statuses.push(s));
bc.on("fb", (data, meta) => got.push([data, meta.seq, meta.recovered]));
bc.on("message", (data) => answers.push(data));

await until("open", () => bc.state === "open");
const chain = expected === "sse"
  ? [["connecting", "websocket", undefined], ["connecting", "sse", "websocket"], ["open", "sse", undefined]]
  : [["connecting", "websocket", undefined], ["connecting", "sse", "websocket"], ["connecting", "poll", "sse"],
    ["open", "poll", undefined]];
equal(statuses.map((s) => [s.state, s.transport, s.failed]), chain, "the fallback, in order");
check(statuses.slice(1, -1).every((s) => s.retryIn === 0), "each fallback at once");
equal([bc.transport, bc.stats.fallbacks], [expected, chain.length - 2], "transport and fallbacks");

bc.send("pub fb one");
bc.send("hello");
await until("fb 1 and the answer", () => got.length === 1 && answers.length === 1);
equal(got, [["one", 1, true]], "a published message");
equal(answers, ["echo hello"], "a send answered");
bc.send("say ready");

// The server cuts the link here.
await until("a reconnect", () => bc.stats.reconnects === 1 && bc.state === "open");
const after = statuses.slice(chain.length);
check(after.every((s) => s.transport === expected), "no other transport tried after the cut: " +
  JSON.stringify(after.map((s) => [s.state, s.transport])));
bc.send("pub fb two");
await until("fb 2", () => got.length === 2);
equal(got[1], ["two", 2, true], "the next message, gap-free");
equal([bc.stats.gaps, bc.stats.duplicates], [0, 0], "no gap, no duplicate");
bc.send("say done");
// (The answer to "say ready" may be lost with the link the server cut
// right after it: at most once.)
await until("the answer to the last", () => answers.includes("echo say done"));
bc.close();
console.log("ok fallback " + expected + " " + JSON.stringify(bc.stats));
