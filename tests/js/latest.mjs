// transport "latest": GET /latest, read-only. A WebSocket client of the
// same script publishes (the server's handler: "pub <topic> <text>").
//
// 1. "lt" gets one message; a "latest" reader (interval 30 s: it polls at
//    open, then only when it subscribes) sees it: replayed, no gap.
// 2. Four more are published; the reader subscribes "lt2", which polls at
//    once: it sees only the last one, flagged recovered: false (the three
//    between were never seen).
// 3. A second reader polling every 20 ms sends If-None-Match and gets 304
//    while nothing changes.
// 4. send() throws on a "latest" client.
//
//   node --experimental-websocket tests/js/latest.mjs <port>

import { boardcast, check, equal, until, limit, port } from "./harness.mjs";

limit("latest", 30000);
const url = `ws://127.0.0.1:${port()}/ws`;

const writer = boardcast.connect(url, { transport: "websocket" });
const answers = [];
writer.on("message", (data) => answers.push(data));
writer.send("pub lt one");
writer.send("say sync-1");
await until("published", () => answers.length === 1);

const seen = [];
const reader = boardcast.connect(url, { transport: "latest", topics: ["lt"], interval: 30000 });
reader.on("lt", (data, meta) => seen.push([data, meta.seq, meta.recovered, meta.replayed]));
await until("lt 1", () => seen.length === 1);
equal(reader.transport, "latest", "over latest");
equal(seen, [["one", 1, true, true]], "the latest, as a fresh subscription");
let threw = null;
try {
  reader.send("x");
} catch (e) {
  threw = e;
}
check(threw && /only reads/.test(threw.message), "send refused: " + threw);

for (const n of ["two", "three", "four", "five"]) writer.send("pub lt " + n);
writer.send("say sync-2");
await until("published", () => answers.length === 2);
reader.subscribe("lt2");
await until("lt 5", () => seen.length === 2);
equal(seen[1], ["five", 5, false, false], "only the latest, after a gap");
equal(reader.stats.gaps, 1, "one gap");

const codes = [];
const counting = (u, init) => fetch(u, init).then((res) => {
  codes.push([res.status, (init.headers || {})["If-None-Match"] || null]);
  return res;
});
const poller = boardcast.connect(url, { transport: "latest", topics: ["lt"], interval: 20, fetch: counting });
await until("a 304", () => codes.some((c) => c[0] === 304));
equal(codes[0], [200, null], "the first poll: 200, no tag");
const tag = codes[1][1];
check(typeof tag === "string" && tag.length > 0, "the tag sent: " + tag);
equal(poller.stats.messages, 1, "the latest once, not at every poll");

poller.close();
reader.close();
writer.close();
console.log("ok latest " + JSON.stringify({ codes: codes.length, reader: reader.stats }));
