// Node `ws` against boardcast's echo example with permessage-deflate: the
// extension is negotiated, and messages of several sizes (text and binary,
// compressible and not) come back as sent.
//
//     node client.js ws://127.0.0.1:PORT
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2], {
  perMessageDeflate: { threshold: 0 },
  maxPayload: 1 << 20,
});
const sizes = [0, 10, 100, 1000, 65536, 200000];
const expected = [];
for (const size of sizes) {
  const text = ('{"celsius":41.2,"seq":' + size + '}').repeat(size / 20 + 1).slice(0, size);
  expected.push({ data: text, binary: false });
  expected.push({ data: crypto.randomBytes(size), binary: true });
}
const fail = (why) => { console.error('node ws: FAIL: ' + why); process.exit(1); };
setTimeout(() => fail('timed out'), 30000).unref();

ws.on('upgrade', (response) => {
  console.log(`node ws: agreed ${JSON.stringify(response.headers['sec-websocket-extensions'])}`);
});
ws.on('open', () => {
  if (!ws.extensions.includes('permessage-deflate')) fail('not negotiated: ' + ws.extensions);
  ws.send(expected[0].data);
});
let i = 0;
ws.on('message', (data, isBinary) => {
  const want = expected[i];
  const got = isBinary ? data : data.toString('utf8');
  if (isBinary !== want.binary || !(isBinary ? want.data.equals(got) : got === want.data)) {
    fail(`message ${i} differs`);
  }
  i += 1;
  if (i === expected.length) {
    console.log('node ws: OK');
    ws.close(1000);
  } else {
    ws.send(expected[i].data);
  }
});
ws.on('close', () => process.exit(i === expected.length ? 0 : 1));
ws.on('error', (e) => fail(e.message));
