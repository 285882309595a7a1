// Many topics over SSE or long polling: 150 names of 60 characters, some
// 9 KB of topics and more of cursor, past the server's 8 KiB request head
// (tests/js_client.rs): the client puts what fits in ~4000 characters of
// URL and subscribes the rest with POST /send after the welcome. Then a
// message published to the first topic and one to the last both arrive,
// and after a cut every topic is subscribed again and resumes, gap-free
// (the URL then carries the cursor too). The script says "subscribed" and
// "resumed" when the test should count subscribers, and waits for a
// message on topic "go" before closing.
//
//   node tests/js/many.mjs <port> <sse | poll>

import { boardcast, check, equal, until, limit, port } from "./harness.mjs";

limit("many", 30000);
const transport = process.argv[3];
const topics = Array.from({ length: 150 }, (_, i) => "m".repeat(57) + String(i).padStart(3, "0"));
const first = topics[0];
const last = topics.at(-1);

const bc = boardcast.connect(`ws://127.0.0.1:${port()}/ws`, {
  transport,
  topics: topics.concat(["go"]),
  backoff: { base: 20, cap: 200 },
});
let go = false;
bc.on("go", () => (go = true));
const got = [];
const answers = [];
bc.on("*", (data, meta) => meta.topic !== "go" && got.push([meta.topic === first ? "first" : meta.topic === last ? "last" : meta.topic, data, meta.recovered]));
bc.on("message", (data) => answers.push(data));
await until("open", () => bc.state === "open");
bc.send(`pub ${first} one`);
bc.send(`pub ${last} one`);
await until("both", () => got.length === 2);
equal(got, [["first", "one", true], ["last", "one", true]], "the first and the last topic");
bc.send("say subscribed");
// The server checks every topic has one subscriber, then cuts the link.
await until("a reconnect", () => bc.stats.reconnects === 1 && bc.state === "open");
bc.send(`pub ${first} two`);
bc.send(`pub ${last} two`);
await until("both again", () => got.length === 4);
equal(got.slice(2), [["first", "two", true], ["last", "two", true]], "resumed, no replay of what was seen");
equal([bc.stats.gaps, bc.stats.duplicates], [0, 0], "no gap, no duplicate");
equal(boardcast.parseCursor(bc.cursor()).positions.map((p) => p[1]), [2, 2], "positions of the two topics");
bc.send("say resumed");
await until("the test's go", () => go);
bc.close();
console.log("ok many " + transport + " " + JSON.stringify(bc.stats));
