// A gap the history cannot fill, and the backoff seen live. The server
// (tests/js_client.rs) keeps only the last 5 messages of topic "small".
//
// 1. The server publishes 1..3; the client says "say have 3".
// 2. The server refuses new upgrades, cuts the client, publishes 4..23,
//    and waits until the client has been refused 5 times: the client's
//    backoff, with random fixed at 0.999, must give 9, 19, 39, 79, 79 ms
//    (base 10 doubling, cap 80).
// 3. The server lets it in: the client resumes from 3, which is no longer
//    kept: the server replays its latest (23), which must be flagged
//    recovered: false; the client says "say have 23"; the server publishes
//    24, which must be recovered: true.
//
//   node --experimental-websocket tests/js/gap.mjs <port>

import { boardcast, check, equal, until, limit, port } from "./harness.mjs";

limit("gap", 30000);

const bc = boardcast.connect(`ws://127.0.0.1:${port()}/ws`, {
  // The WebSocket's own backoff ("auto" would fall back to SSE while the
  // upgrades are refused: tests/js/fallback.mjs).
  transport: "websocket",
  topics: ["small"],
  backoff: { base: 10, cap: 80, resetAfter: 60000 },
  random: () => 0.999,
});
const got = [];
const statuses = [];
bc.on("status", (s) => statuses.push(s));
bc.on("small", (data, meta) => got.push([data, meta.seq, meta.recovered, meta.replayed]));

await until("messages 1..3", () => got.length === 3);
equal(got, [["s1", 1, true, false], ["s2", 2, true, false], ["s3", 3, true, false]], "1..3 live");
bc.send("say have 3");

await until("a resumed message", () => got.length === 4);
equal(got[3], ["s23", 23, false, true], "the latest kept, flagged as after a gap");
equal(bc.stats.gaps, 1, "one gap counted");
bc.send("say have 23");
await until("message 24", () => got.length === 5);
equal(got[4], ["s24", 24, true, false], "live again, recovered");

// The statuses since the cut: connecting with the backoff's delays, then open.
const cut = statuses.findIndex((s) => s.state === "connecting" && s.retryIn !== undefined);
check(cut > 0, "a connecting status after the cut");
const retries = statuses.slice(cut).filter((s) => s.state === "connecting");
const delays = retries.map((s) => s.retryIn);
check(delays.length >= 6, "at least 5 refusals after the cut: " + JSON.stringify(delays));
equal(delays.slice(0, 6), [9, 19, 39, 79, 79, 79].slice(0, 6), "backoff: doubling from 10 ms, capped at 80 ms");
check(delays.every((d) => d <= 79), "every delay within the cap: " + JSON.stringify(delays));
equal(retries.map((s) => s.attempt), retries.map((_, i) => i + 1), "attempts counted up");
equal(statuses.at(-1).state, "open", "open again");
equal(bc.stats.reconnects, 1, "one reconnect that succeeded");

bc.close();
console.log("ok gap " + JSON.stringify({ delays, stats: bc.stats }));
