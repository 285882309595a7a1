// Resume under fire: the server (tests/js_client.rs) publishes `count`
// messages "tick <seq>" to topic "ticks" at about 100 a second and cuts
// this client's connection `cuts` times meanwhile. The client must
// reconnect by itself and resume from its last position each time, so
// that it delivers exactly ticks 1..count, in order, each once, none
// flagged as following a gap.
//
//   node --experimental-websocket tests/js/resume.mjs <port> <count> <cuts> [transport]
//
// transport: "auto" (the default), "websocket", "sse" or "poll"; every
// reconnect must stay on it.

import { boardcast, check, equal, limit, port } from "./harness.mjs";

limit("resume", 30000);
const count = Number(process.argv[3]);
const cuts = Number(process.argv[4]);
const transport = process.argv[5] || "auto";
const using = transport === "auto" ? "websocket" : transport;
check(count > 0 && cuts > 0, "usage: resume.mjs <port> <count> <cuts>");

const bc = boardcast.connect(`ws://127.0.0.1:${port()}/ws`, {
  topics: ["ticks"],
  backoff: { base: 20, cap: 200 },
  transport,
});
const seqs = [];
const notRecovered = [];
let drops = 0;
bc.on("status", (s) => {
  if (s.state === "connecting" && s.retryIn !== undefined) drops++;
  if (s.state === "open" && s.transport !== using) check(false, `open over ${s.transport}, not ${using}`);
});
bc.on("ticks", (data, meta) => {
  if (data !== "tick " + meta.seq) check(false, `payload ${JSON.stringify(data)} at seq ${meta.seq}`);
  if (!meta.recovered) notRecovered.push(meta.seq);
  seqs.push(meta.seq);
  if (meta.seq < count) return;
  // The last one: check the whole sequence.
  const wrong = seqs.findIndex((s, i) => s !== i + 1);
  check(wrong < 0, `ticks out of order or missing at index ${wrong}: ` +
    JSON.stringify(seqs.slice(Math.max(0, wrong - 3), wrong + 3)));
  equal(seqs.length, count, "every tick once");
  equal(notRecovered, [], "no tick flagged as following a gap");
  equal([bc.stats.gaps, bc.stats.duplicates], [0, 0], "stats: no gap, no duplicate");
  check(bc.stats.reconnects >= cuts, `reconnects ${bc.stats.reconnects} < cuts ${cuts}`);
  check(drops >= cuts, `connecting statuses after a drop: ${drops} < cuts ${cuts}`);
  bc.close();
  console.log("ok resume " + using + " " + JSON.stringify(Object.assign({ drops }, bc.stats)));
});
