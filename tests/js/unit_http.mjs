// The HTTP transports of boardcast.js (docs/transports.md) against a fake
// fetch and EventSource (fakes.mjs), answer by answer: endpoints, cursors
// and the event-stream parser; SSE over fetch and over EventSource, long
// polling and /latest, each parsed into the same protocol logic, sending
// with POST /send and resuming from a cursor of every topic; and the
// fallback order of transport "auto". Run by unit.mjs (`run`), no server.

import { boardcast, check, equal, until, bytes } from "./harness.mjs";
import { FakeFetch, FakeEventSource, FakeWebSocket } from "./fakes.mjs";

const S1 = "5e0c0000000000000000000000000001";
const S2 = "5e0c0000000000000000000000000002";
const S3 = "5e0c0000000000000000000000000003";

const isPost = (r) => r.method === "POST";
const isGet = (path) => (r) => r.method === "GET" && new URL(r.url).pathname === path;
const welcome = (session, epoch) => `event: welcome\ndata: {"session":"${session}","epoch":"${epoch}"}\n\n`;
const subscribed = (topic, recovered, last) =>
  `event: subscribed\ndata: {"topic":"${topic}","recovered":${recovered},"last":${last}}\n\n`;
const posted = (r) => [r.url, r.headers["content-type"], FakeFetch.body(r)];

export async function run({ recorder, E1, E2 }) {
  const meta = (x) => [x.meta.topic, x.meta.seq, typeof x.data === "string" ? x.data : bytes(x.data),
    x.meta.recovered, x.meta.replayed, x.meta.binary];
  const states = (log) => log.status.map((s) => [s.state, s.transport]);

  // --- endpoints, cursors, the event-stream parser ----------------------------

  {
    const ep = boardcast.endpoints("ws://board.local:8080/ws");
    equal(ep, {
      websocket: "ws://board.local:8080/ws",
      sse: "http://board.local:8080/sse",
      poll: "http://board.local:8080/poll",
      send: "http://board.local:8080/send",
      latest: "http://board.local:8080/latest",
    }, "endpoints: the last path segment replaced, ws: as http:");
    const o = boardcast.endpoints("wss://board.local/app/ws?token=x", {
      latest: "/other/latest",
      sse: "wss://elsewhere/events",
    });
    equal([o.poll, o.send, o.latest, o.sse],
      ["https://board.local/app/poll?token=x", "https://board.local/app/send?token=x",
        "https://board.local/other/latest", "https://elsewhere/events"],
      "wss: as https:, the query kept, overrides resolved against the WebSocket URL");
    equal(boardcast.endpoints("ws://h/").sse, "http://h/sse", "an empty last segment");
    const bc = boardcast.connect("ws://board.local/x/ws", { transport: "poll", fetch: () => new Promise(() => {}) });
    equal(bc.endpoints.poll, "http://board.local/x/poll", "a client's endpoints");
    bc.close();
  }

  {
    const c = `${E1}~temperature~47~sensors/cpu~12`;
    equal(boardcast.cursor(E1, [["temperature", 47], ["sensors/cpu", 12]]), c, "a cursor");
    equal(boardcast.cursor(E1, []), E1, "a bare epoch");
    equal(boardcast.parseCursor(c), { epoch: E1, positions: [["temperature", 47], ["sensors/cpu", 12]] }, "parsed");
    equal(boardcast.parseCursor(E1), { epoch: E1, positions: [] }, "a bare epoch parsed");
    for (const bad of ["", "xyz", E1 + "~a", E1 + "~a~x", E1 + "~bad topic~1", E1.toUpperCase() + "~a~1",
      E1 + "~a~-1", E1 + "~~1", E1 + "~a~1~", "0".repeat(15) + "~a~1"]) {
      equal(boardcast.parseCursor(bad), null, "not a cursor: " + JSON.stringify(bad));
    }
  }

  {
    const stream =
      "retry: 2000\n\n" +
      'event: welcome\ndata: {"a":1}\n\n' +
      ": heartbeat\n" +
      "id: X~t~1\ndata: line one\ndata:line two\ndata\n\n" +
      "event: binary\r\nid: X~t~2\r\ndata: AAEC\r\n\r\n" +
      "data: cr\rdata: only\r\r" +
      "event: nodata\nid: X~t~3\n\n" +
      "data: after\n\n" +
      "id: bad\0id\ndata: nul\n\n" +
      "retry: 12x\nfoo: bar\ndata:  two spaces\n\n" +
      "data: unfinished\n";
    const expected = [
      ["welcome", '{"a":1}', ""],
      ["message", "line one\nline two\n", "X~t~1"],
      ["binary", "AAEC", "X~t~2"],
      ["message", "cr\nonly", "X~t~2"],
      ["message", "after", "X~t~3"],
      ["message", "nul", "X~t~3"],
      ["message", " two spaces", "X~t~3"],
    ];
    const parse = (chunks) => {
      const out = { events: [], retries: [], comments: [] };
      const feed = boardcast.eventStream((t, d, id) => out.events.push([t, d, id]),
        (ms) => out.retries.push(ms), (c) => out.comments.push(c));
      for (const chunk of chunks) feed(chunk);
      return out;
    };
    const whole = parse([stream]);
    equal(whole.events, expected, "events: data joined by \\n, CRLF/LF/CR, ids kept, no data no event, NUL ids ignored");
    equal(whole.retries, [2000], "retry, only digits");
    equal(whole.comments, [" heartbeat"], "comments");
    for (let cut = 1; cut < stream.length; cut++) {
      const two = parse([stream.slice(0, cut), stream.slice(cut)]);
      if (JSON.stringify(two.events) !== JSON.stringify(expected)) {
        equal(two.events, expected, "cut at " + cut + " " + JSON.stringify(stream.slice(cut - 2, cut + 2)));
      }
    }
    equal(parse(stream.split("")).events, expected, "one character at a time");
  }

  // --- SSE over fetch (Node) ------------------------------------------------------

  {
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      transport: "sse", fetch: ff.fetch, EventSource: false, topics: ["a", "b"], random: () => 0,
    });
    const log = recorder(bc);
    equal(bc.transport, "sse", "forced sse");
    const r1 = await ff.next("GET /sse", isGet("/sse"));
    equal(r1.url, "http://board.local/sse?topics=a,b", "the topics in the URL, no cursor at first");
    equal(r1.headers.accept, "text/event-stream", "Accept");
    const s1 = r1.stream();
    s1.push("retry: 2000\n\n" + welcome(S1, E1));
    await until("open over SSE", () => bc.state === "open");
    equal(states(log), [["connecting", "sse"], ["open", "sse"]], "statuses over sse");
    equal(bc.epoch, E1, "the welcome's epoch");

    const body =
      subscribed("a", false, 5) +
      `id: ${E1}~a~5\ndata: five\n\n` +
      `id: ${E1}~a~6\ndata: six\ndata: lines\n\n` +
      subscribed("b", false, 0) +
      `id: ${E1}~b~1\nevent: binary\ndata: AAr/\n\n` +
      `id: ${E1}~a~7\nevent: text64\ndata: ${btoa("cr\r\nlf")}\n\n` +
      ": heartbeat\n\n" +
      "event: direct\ndata: hello\ndata: you\n\n" +
      `event: direct64\ndata: ${btoa("x\ry")}\n\n` +
      "event: direct-binary\ndata: AQI=\n\n" +
      "event: refused\ndata: too many subscriptions\n\n" +
      "event: future\ndata: whatever\n\n" +
      `id: ${E1}~a~8\ndata: caf`;
    for (let i = 0; i < body.length; i += 7) s1.push(body.slice(i, i + 7));
    // "é" cut between its two UTF-8 bytes.
    s1.push(new Uint8Array([0xc3]));
    s1.push(new Uint8Array([0xa9, 10, 10]));
    await until("the SSE events", () => log.topics.length === 5 && log.messages.length === 3 && log.errors.length === 1);
    equal(log.topics.map(meta), [
      ["a", 5, "five", true, true, false],
      ["a", 6, "six\nlines", true, false, false],
      ["b", 1, [0, 10, 255], true, false, true],
      ["a", 7, "cr\r\nlf", true, false, false],
      ["a", 8, "café", true, false, false],
    ], "published messages: text, multi-line, binary (base64), text64, UTF-8 across chunks");
    equal(log.messages.map((m) => [typeof m.data === "string" ? m.data : bytes(m.data), m.meta.binary]),
      [["hello\nyou", false], ["x\ry", false], [[1, 2], true]], "direct, direct64, direct-binary");
    equal(log.errors, [{ type: "refused", reason: "too many subscriptions" }], "refused");
    equal(ff.requests.filter(isPost).length, 0, "the URL's topics are not subscribed again");

    // Sends go with POST /send?session=ID, one at a time, in order.
    check(bc.send("cmd") && bc.send(new Uint8Array([5, 6])), "two sends");
    const p1 = await ff.next("POST 1", isPost);
    equal(posted(p1), [`http://board.local/send?session=${S1}`, "text/plain", "d\ncmd"], "a text send");
    // Both sends were made before: a second POST now would be concurrent.
    await Promise.resolve();
    equal(ff.requests.filter(isPost).length, 1, "no second POST while the first is unanswered");
    p1.status(204);
    const p2 = await ff.next("POST 2", isPost);
    equal(posted(p2).slice(1), ["application/octet-stream", [5, 6]], "a binary send");
    p2.status(429);
    const p2b = await ff.next("POST 2 again after a 429", isPost);
    equal(posted(p2b).slice(1), ["application/octet-stream", [5, 6]], "retried after 429");
    p2b.status(204);
    check(bc.subscribe("c") && bc.unsubscribe("b"), "subscribe c, unsubscribe b");
    const p3 = await ff.next("POST s", isPost);
    equal(FakeFetch.body(p3), "s c", "a later subscribe: POST");
    p3.status(204);
    const p4 = await ff.next("POST x", isPost);
    equal(FakeFetch.body(p4), "x b", "an unsubscribe: POST");
    p4.status(204);
    s1.push(`id: ${E1}~b~2\nevent: binary\ndata: AA==\n\n` + "event: unsubscribed\ndata: b\n\n" + subscribed("c", false, 0));
    bc.send("too big");
    const p5 = await ff.next("POST 3", isPost);
    p5.status(413);
    await until("an error for the refused POST", () => log.errors.length === 2);
    equal(log.errors[1].type, "send", "a POST answered 413: an error event");
    check(/413/.test(log.errors[1].reason), "naming the status: " + log.errors[1].reason);
    equal(bc.state, "open", "and the link stays open");
    check(!log.topics.some((t) => t.meta.topic === "b" && t.meta.seq === 2), "b in flight after x: dropped");

    // The stream ends: a new one, with a cursor of every position.
    s1.end();
    const r2 = await ff.next("GET /sse again", isGet("/sse"));
    equal(r2.url, `http://board.local/sse?topics=a,c&lastEventID=${E1}~a~8`, "resumed with the cursor");
    equal(log.status.at(-1).code, 1006, "the stream's end is a lost link");
    const s2 = r2.stream();
    s2.push(welcome(S2, E1) + subscribed("a", true, 10) +
      `id: ${E1}~a~8\ndata: dup\n\nid: ${E1}~a~9\ndata: nine\n\nid: ${E1}~a~10\ndata: ten\n\n` + subscribed("c", false, 0));
    await until("the replay", () => log.topics.length === 7);
    equal(log.topics.slice(5).map(meta), [["a", 9, "nine", true, true, false], ["a", 10, "ten", true, true, false]],
      "replayed after the cursor");
    equal(bc.stats.duplicates, 1, "the duplicate dropped");
    equal([bc.stats.connects, bc.stats.reconnects], [2, 1], "a reconnect");
    bc.send("after");
    const p6 = await ff.next("POST on the new session", isPost);
    equal(p6.url, `http://board.local/send?session=${S2}`, "the new session's id");
    p6.status(404);
    const r3 = await ff.next("GET /sse after the session was gone", isGet("/sse"));
    check(r2.aborted, "the old stream aborted");
    equal(log.status.at(-1).code, 404, "a POST answered 404: a lost link");
    equal(r3.url, `http://board.local/sse?topics=a,c&lastEventID=${E1}~a~10`, "resumed again");
    const attempt = log.status.at(-1).attempt; // drops within resetAfter count up
    r3.status(503);
    await until("a backoff status", () => log.status.at(-1).code === 503);
    equal([log.status.at(-1).transport, log.status.at(-1).attempt], ["sse", attempt + 1], "forced sse: retried, counted");
    const r4 = await ff.next("GET /sse after 503", isGet("/sse"));
    r4.html();
    await until("a failed attempt on an HTML page", () => log.status.at(-1).attempt === attempt + 2);
    check(/text\/html/.test(log.status.at(-1).reason), "named: " + log.status.at(-1).reason);
    const r5 = await ff.next("GET /sse once more", isGet("/sse"));
    bc.close();
    check(r5.aborted, "close aborts the request");
  }

  // --- SSE over EventSource (browsers) ---------------------------------------------

  {
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      transport: "sse", fetch: ff.fetch, EventSource: FakeEventSource, topics: ["a", "b"], random: () => 0,
    });
    const log = recorder(bc);
    const es1 = await until("an EventSource", () => FakeEventSource.all[0]);
    equal(es1.url, "http://board.local/sse?topics=a,b", "its URL");
    es1.event("welcome", JSON.stringify({ session: S1, epoch: E1 }));
    es1.event("subscribed", JSON.stringify({ topic: "a", recovered: false, last: 3 }));
    es1.event("message", "three", `${E1}~a~3`);
    es1.event("subscribed", JSON.stringify({ topic: "b", recovered: false, last: 1 }));
    es1.event("binary", "AQI=", `${E1}~b~1`);
    equal(log.topics.map(meta), [["a", 3, "three", true, true, false], ["b", 1, [1, 2], true, true, true]], "events");
    // Its error: closed here, and a new one with every topic's position
    // (EventSource's own reconnect would send Last-Event-ID of b alone).
    es1.error();
    check(es1.closed, "the EventSource is closed on error");
    const es2 = await until("a new EventSource", () => FakeEventSource.all[1]);
    equal(es2.url, `http://board.local/sse?topics=a,b&lastEventID=${E1}~a~3~b~1`, "a cursor of both topics");
    es2.event("welcome", JSON.stringify({ session: S2, epoch: E1, heartbeat: 60000 }));
    equal(bc.heartbeat, 60000, "the heartbeat from the SSE welcome");
    bc.lastHeard = 0;
    es2.event("h", "");
    check(Date.now() - bc.lastHeard < 60000, "an h event is heard");
    bc.send("hi");
    const p = await ff.next("a POST", isPost);
    equal(posted(p), [`http://board.local/send?session=${S2}`, "text/plain", "d\nhi"], "sends with fetch");
    p.status(204);
    es2.event("message", "x", "not a cursor");
    equal(log.errors.at(-1).type, "protocol", "a message without a position: a protocol error");
    check(es2.closed, "and the link dropped");
    const es3 = await until("a third EventSource", () => FakeEventSource.all[2]);
    bc.close();
    check(es3.closed, "close closes it");
  }

  // --- long polling ---------------------------------------------------------------

  {
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      transport: "poll", fetch: ff.fetch, topics: ["a", "b"], random: () => 0,
    });
    const log = recorder(bc);
    const g1 = await ff.next("the first poll", isGet("/poll"));
    equal(g1.url, "http://board.local/poll?topics=a,b", "topics, no session, no cursor");
    equal(g1.headers.accept, "application/json", "Accept");
    g1.json({
      session: S1, epoch: E1, heartbeat: 5000, cursor: `${E1}~a~2~b~1`, events: [
        { type: "r", topic: "a", recovered: false, last: 2 },
        { type: "m", topic: "a", seq: 2, data: "two\nlines" },
        { type: "r", topic: "b", recovered: false, last: 1 },
        { type: "m", topic: "b", seq: 1, data: "AAr/", binary: true },
        { type: "d", data: "hi" },
        { type: "d", data: "AQI=", binary: true },
        { type: "e", reason: "bad topic name" },
        { type: "w", epoch: E2 },
        { type: "later", x: 1 },
      ],
    });
    await until("open over long polling", () => bc.state === "open");
    equal(states(log), [["connecting", "poll"], ["open", "poll"]], "statuses");
    equal(bc.epoch, E1, "the answer's epoch (a w event changes nothing)");
    equal(bc.heartbeat, 5000, "the longest hold, from the answer");
    equal(log.topics.map(meta), [["a", 2, "two\nlines", true, true, false], ["b", 1, [0, 10, 255], true, true, true]], "m events");
    equal(log.messages.map((m) => [typeof m.data === "string" ? m.data : bytes(m.data), m.meta.binary]),
      [["hi", false], [[1, 2], true]], "d events");
    equal(log.errors, [{ type: "refused", reason: "bad topic name" }], "e events");
    const g2 = await ff.next("the second poll", isGet("/poll"));
    equal(g2.url, `http://board.local/poll?session=${S1}&after=${E1}~a~2~b~1`, "the session and the answer's cursor");
    check(bc.subscribe("c") && bc.send("go"), "subscribe and send while a poll is held");
    const p1 = await ff.next("POST s", isPost);
    equal(posted(p1), [`http://board.local/send?session=${S1}`, "text/plain", "s c"], "a later subscribe: POST");
    p1.status(204);
    const p2 = await ff.next("POST d", isPost);
    equal(FakeFetch.body(p2), "d\ngo", "then the send");
    p2.status(204);
    g2.json({
      session: S1, epoch: E1, cursor: `${E1}~a~3~b~1~c~1`, events: [
        { type: "m", topic: "a", seq: 3, data: "three" },
        { type: "r", topic: "c", recovered: false, last: 1 },
        { type: "m", topic: "c", seq: 1, data: "c1" },
        { type: "u", topic: "zz" },
      ],
    });
    const g3 = await ff.next("the third poll", isGet("/poll"));
    equal(g3.url, `http://board.local/poll?session=${S1}&after=${E1}~a~3~b~1~c~1`, "the next cursor");
    g3.json({ session: S1, epoch: E1, cursor: `${E1}~a~3~b~1~c~1`, events: [] });
    const g4 = await ff.next("a poll after an empty answer", isGet("/poll"));
    equal(g4.url, g3.url, "an empty answer (poll_timeout): the same cursor again");
    equal(bc.stats.messages, 4, "a3 and c1 delivered");
    // The session is gone: a new one, resumed from the client's positions.
    g4.status(404);
    const g5 = await ff.next("a poll for a new session", isGet("/poll"));
    equal(g5.url, `http://board.local/poll?topics=a,b,c&after=${E1}~a~3~b~1~c~1`, "topics and the client's cursor");
    equal([log.status.at(-1).state, log.status.at(-1).code], ["connecting", 404], "404: connecting");
    g5.json({
      session: S2, epoch: E1, cursor: `${E1}~a~4~b~1~c~1`, events: [
        { type: "r", topic: "a", recovered: true, last: 4 },
        { type: "m", topic: "a", seq: 3, data: "dup" },
        { type: "m", topic: "a", seq: 4, data: "four" },
      ],
    });
    await until("a4", () => bc.stats.messages === 5);
    equal(meta(log.topics.at(-1)), ["a", 4, "four", true, true, false], "resumed, replayed");
    equal([bc.stats.duplicates, bc.stats.reconnects], [1, 1], "a duplicate dropped, a reconnect");
    const g6a = await ff.next("a poll of the new session", isGet("/poll"));
    check(g6a.url.includes(`session=${S2}`), "the new session: " + g6a.url);
    // A poll that fails on the way is sent again, once, as it was.
    const statusesBefore = log.status.length;
    g6a.fail(new TypeError("fetch failed"));
    const g6b = await ff.next("the same poll again", isGet("/poll"));
    equal(g6b.url, g6a.url, "the same session and cursor");
    equal(log.status.length, statusesBefore, "no status: the link is still up");
    g6b.json({ session: S2, epoch: E1, cursor: `${E1}~a~4~b~1~c~1`, events: [{ type: "d", data: "kept" }] });
    await until("the session's message", () => log.messages.at(-1).data === "kept");
    const g6c = await ff.next("the next poll", isGet("/poll"));
    g6c.fail(new TypeError("fetch failed")); // a success in between: retried again
    const g6d = await ff.next("the next poll again", isGet("/poll"));
    equal(g6d.url, g6c.url, "retried after a success in between");
    g6d.fail(new TypeError("fetch failed"));
    const g6e = await ff.next("a new session after two failures in a row", isGet("/poll"));
    check(g6e.url.startsWith("http://board.local/poll?topics="), "two failures in a row: a lost link, " + g6e.url);
    equal(log.status.at(-1).state, "connecting", "connecting meanwhile");
    g6e.json({ session: S3, epoch: E1, cursor: `${E1}~a~4~b~1~c~1`, events: [] });
    await until("open again", () => log.status.at(-1).state === "open");
    const g6 = await ff.next("a poll of the third session", isGet("/poll"));
    check(g6.url.includes(`session=${S3}`), "the third session: " + g6.url);
    g6.html(); // a proxy's page where JSON was expected
    const g7 = await ff.next("a fresh poll after the HTML page", isGet("/poll"));
    check(g7.url.startsWith("http://board.local/poll?topics=a,b,c&after="), "a new session: " + g7.url);
    equal(log.status.at(-1).state, "connecting", "the HTML answer was a lost link");
    g7.json({ session: S1, epoch: E1, cursor: `${E1}~a~4~b~1~c~1`, events: [] });
    const g8 = await ff.next("a poll of the fourth session", isGet("/poll"));
    bc.close();
    check(g8.aborted, "close aborts the held poll");
    const bye = await ff.next("the session's end", isPost);
    equal(posted(bye), [`http://board.local/send?session=${S1}`, "text/plain", "c"],
      "close ends the session on the server (not after session_timeout)");
    bye.status(204);
  }

  // --- GET /latest at an interval -----------------------------------------------------

  {
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      transport: "latest", fetch: ff.fetch, topics: ["a", "b"], interval: 5, random: () => 0,
    });
    const log = recorder(bc);
    let threw = null;
    try {
      bc.send("x");
    } catch (e) {
      threw = e;
    }
    check(threw && /only reads/.test(threw.message), "send refused: " + threw);
    const l1 = await ff.next("GET /latest", isGet("/latest"));
    equal(l1.url, "http://board.local/latest?topics=a,b", "the topics");
    check(!("if-none-match" in l1.headers), "no tag at first");
    l1.json({ a: { epoch: E1, seq: 4, data: "four" }, b: { epoch: E1, seq: 1, data: "AQI=", binary: true } }, 200, { etag: '"t1"' });
    await until("open", () => bc.state === "open");
    equal(states(log), [["connecting", "latest"], ["open", "latest"]], "statuses");
    equal(bc.epoch, E1, "the epoch of the entries");
    equal(log.topics.map(meta), [["a", 4, "four", true, true, false], ["b", 1, [1, 2], true, true, true]], "the latest of each");
    const l2 = await ff.next("GET /latest 2", isGet("/latest"));
    equal(l2.headers["if-none-match"], '"t1"', "If-None-Match");
    l2.status(304);
    const l3 = await ff.next("GET /latest 3", isGet("/latest"));
    equal(l3.headers["if-none-match"], '"t1"', "the tag kept after a 304");
    l3.json({ a: { epoch: E1, seq: 4, data: "four" }, b: { epoch: E1, seq: 1, data: "AQI=", binary: true } }, 200, { etag: '"t2"' });
    const l4 = await ff.next("GET /latest 4", isGet("/latest"));
    equal([log.topics.length, bc.stats.duplicates], [2, 0], "the same entries again: nothing, no duplicate");
    equal(l4.headers["if-none-match"], '"t2"', "the new tag");
    l4.json({ a: { epoch: E1, seq: 7, data: "seven" }, b: { epoch: E1, seq: 1, data: "AQI=", binary: true } });
    const l5 = await ff.next("GET /latest 5", isGet("/latest"));
    l5.json({ a: { epoch: E1, seq: 8, data: "eight" } });
    await until("a8", () => log.topics.length === 4);
    equal(log.topics.slice(2).map(meta), [["a", 7, "seven", false, false, false], ["a", 8, "eight", true, false, false]],
      "messages between polls are lost: a gap flagged");
    bc.subscribe("c");
    const l6 = await ff.next("GET /latest with c", (r) => isGet("/latest")(r) && r.url.includes("c"));
    equal(l6.url, "http://board.local/latest?topics=a,b,c", "the new topic");
    check(!("if-none-match" in l6.headers), "no tag for another set of topics");
    l6.status(500);
    await until("a lost link", () => log.status.at(-1).code === 500);
    const l7 = await ff.next("GET /latest after the error", isGet("/latest"));
    l7.json({ a: { epoch: E2, seq: 1, data: "new epoch" }, c: { epoch: E2, seq: 3, data: "c3" } });
    await until("reopened", () => log.topics.length === 6);
    equal(log.topics.slice(4).map((x) => [...meta(x), x.meta.epoch]),
      [["a", 1, "new epoch", false, true, false, E2], ["c", 3, "c3", true, true, false, E2]],
      "a new epoch: a gap for a, a fresh c");
    equal(bc.stats.connects, 2, "two connects");
    bc.close();
  }

  // --- the URL's length ------------------------------------------------------------

  {
    const ff = new FakeFetch();
    const topics = Array.from({ length: 100 }, (_, i) => "t".repeat(57) + String(i).padStart(3, "0"));
    const bc = boardcast.connect("ws://board.local/ws", { transport: "poll", fetch: ff.fetch, topics });
    const g = await ff.next("the first poll", isGet("/poll"));
    const inUrl = new URL(g.url).searchParams.get("topics").split(",");
    check(g.url.length < 4200, "a URL of at most ~4000 characters: " + g.url.length);
    check(inUrl.length > 50 && inUrl.length < 100, "some topics in the URL: " + inUrl.length);
    equal(inUrl, topics.slice(0, inUrl.length), "the first ones");
    g.json({ session: S1, epoch: E1, cursor: E1, events: [] });
    const rest = [];
    while (rest.length < 100 - inUrl.length) {
      const p = await ff.next("POST s", isPost);
      rest.push(FakeFetch.body(p));
      p.status(204);
    }
    equal(rest, topics.slice(inUrl.length).map((t) => "s " + t), "the others subscribed with POST /send");
    bc.close();
  }

  // --- fallback: "auto" -------------------------------------------------------------

  {
    // The upgrade fails, SSE answers 403, long polling works.
    FakeWebSocket.all = [];
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      WebSocket: FakeWebSocket, fetch: ff.fetch, EventSource: false, topics: ["a"], random: () => 0,
    });
    const log = recorder(bc);
    equal([bc.options.transport, bc.transport], ["auto", "websocket"], "auto is the default, WebSocket first");
    const ws = await until("a WebSocket", () => FakeWebSocket.all[0]);
    ws.fail();
    const sse = await ff.next("the SSE try", isGet("/sse"));
    equal(sse.url, "http://board.local/sse?topics=a", "SSE next");
    sse.status(403);
    const poll = await ff.next("the poll try", isGet("/poll"));
    equal(poll.url, "http://board.local/poll?topics=a", "long polling last");
    poll.json({ session: S1, epoch: E1, cursor: `${E1}~a~1`, events: [
      { type: "r", topic: "a", recovered: false, last: 1 }, { type: "m", topic: "a", seq: 1, data: "one" }] });
    await until("open", () => bc.state === "open");
    equal(log.status.map((s) => [s.state, s.transport, s.failed, s.retryIn, s.code]), [
      ["connecting", "websocket", undefined, undefined, undefined],
      ["connecting", "sse", "websocket", 0, 1006],
      ["connecting", "poll", "sse", 0, 403],
      ["open", "poll", undefined, undefined, undefined],
    ], "statuses: websocket, then sse at once, then poll at once, open on poll");
    equal([bc.transport, bc.stats.fallbacks, bc.stats.connects], ["poll", 2, 1], "transport and counters");
    // The session is lost: the reconnect stays with long polling.
    const g2 = await ff.next("a poll", isGet("/poll"));
    g2.status(404);
    const g3 = await ff.next("a new session", isGet("/poll"));
    equal(g3.url, `http://board.local/poll?topics=a&after=${E1}~a~1`, "resumed over long polling");
    equal([FakeWebSocket.all.length, ff.requests.filter(isGet("/sse")).length], [1, 1],
      "no WebSocket nor SSE tried again before retryWebSocketAfter");
    bc.close();
  }

  {
    // A proxy answers the SSE with its own HTML page; later, once
    // retryWebSocketAfter (0 here) has passed, a reconnect tries WebSocket
    // first again, and it works: the client moves back to it.
    FakeWebSocket.all = [];
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      WebSocket: FakeWebSocket, fetch: ff.fetch, EventSource: false, topics: ["a"], random: () => 0,
      retryWebSocketAfter: 0,
    });
    const log = recorder(bc);
    (await until("a WebSocket", () => FakeWebSocket.all[0])).fail();
    (await ff.next("the SSE try", isGet("/sse"))).html();
    const poll = await ff.next("the poll try", isGet("/poll"));
    poll.json({ session: S1, epoch: E1, cursor: `${E1}~a~5`, events: [
      { type: "r", topic: "a", recovered: false, last: 5 }, { type: "m", topic: "a", seq: 5, data: "five" }] });
    await until("open on poll", () => bc.state === "open" && bc.transport === "poll");
    check(/text\/html/.test(log.status[2].reason), "the SSE failure named: " + log.status[2].reason);
    (await ff.next("a poll", isGet("/poll"))).status(404);
    const ws2 = await until("WebSocket again", () => FakeWebSocket.all[1]);
    ws2.accept();
    ws2.recv("w " + E1);
    equal(ws2.take(), [`s a ${E1} 5`], "resumed over WebSocket from the position of long polling");
    equal([bc.state, bc.transport], ["open", "websocket"], "back on WebSocket");
    ws2.recv("r a 1 6");
    ws2.recv("m a 6\nsix");
    equal(meta(log.topics.at(-1)), ["a", 6, "six", true, true, false], "no gap across transports");
    bc.close();
  }

  {
    // An SSE stream that never welcomes (a buffering proxy): the open
    // deadline hands over to long polling.
    FakeWebSocket.all = [];
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      WebSocket: FakeWebSocket, fetch: ff.fetch, EventSource: false, random: () => 0, openTimeout: 40,
    });
    const log = recorder(bc);
    (await until("a WebSocket", () => FakeWebSocket.all[0])).fail();
    const sse = await ff.next("the SSE try", isGet("/sse"));
    equal(sse.url, "http://board.local/sse", "no topics: no parameter");
    sse.stream().push(": nothing useful\n\n");
    const poll = await ff.next("the poll try after the deadline", isGet("/poll"));
    check(sse.aborted, "the silent stream aborted");
    equal(log.status.at(-1).reason, "no welcome within 40 ms", "the deadline named");
    poll.json({ session: S1, epoch: E1, cursor: E1, events: [] });
    await until("open", () => bc.state === "open");
    equal(bc.transport, "poll", "on long polling");
    bc.close();
  }

  {
    // Everything fails: back off, and the next round starts with
    // WebSocket again.
    FakeWebSocket.all = [];
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", {
      WebSocket: FakeWebSocket, fetch: ff.fetch, EventSource: false, random: () => 0,
    });
    const log = recorder(bc);
    (await until("a WebSocket", () => FakeWebSocket.all[0])).fail();
    (await ff.next("SSE", isGet("/sse"))).status(502);
    (await ff.next("poll", isGet("/poll"))).status(502);
    const ws2 = await until("WebSocket again", () => FakeWebSocket.all[1]);
    equal(log.status.map((s) => [s.transport, s.attempt]),
      [["websocket", 0], ["sse", 0], ["poll", 0], ["websocket", 1]], "a round of three, then a backoff");
    ws2.accept();
    ws2.recv("w " + E1);
    equal([bc.state, bc.transport], ["open", "websocket"], "WebSocket works now");
    bc.close();
  }

  {
    // No WebSocket at all (Node 20 without the flag): auto starts with SSE.
    const real = globalThis.WebSocket;
    delete globalThis.WebSocket;
    const ff = new FakeFetch();
    const bc = boardcast.connect("ws://board.local/ws", { fetch: ff.fetch, EventSource: false });
    equal(bc.transport, "sse", "SSE first without a WebSocket");
    await ff.next("SSE", isGet("/sse"));
    bc.close();
    const realFetch = globalThis.fetch;
    delete globalThis.fetch;
    let threw = null;
    try {
      boardcast.connect("ws://board.local/ws");
    } catch (e) {
      threw = e;
    }
    check(threw && /nothing to connect with/.test(threw.message), "neither: a clear error, " + threw);
    threw = null;
    try {
      boardcast.connect("ws://board.local/ws", { transport: "poll" });
    } catch (e) {
      threw = e;
    }
    check(threw && /no fetch/.test(threw.message), "poll without fetch: a clear error, " + threw);
    globalThis.fetch = realFetch;
    if (real) globalThis.WebSocket = real;
    threw = null;
    try {
      boardcast.connect("ws://board.local/ws", { transport: "carrier-pigeon" });
    } catch (e) {
      threw = e;
    }
    check(threw instanceof TypeError, "an unknown transport is refused");
  }
}
