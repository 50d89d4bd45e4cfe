// node_host.js -- Node.js host for tests/hosts.rs.
//
//     node node_host.js ADDON N CERT_DIR
//
// Loads the N-API addon (tests/hosts/node_addon.c), which runs uvcurl on
// Node's own loop, and fetches N URLs from a Node `http` server in this very
// process (50 at a time, every body compared byte for byte), plus 5 from an
// `https` server (certificate from CERT_DIR, made by the test with openssl).
// Then closes the multi and both servers; the process must end by itself.
// Prints "ok ..." last when everything held.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

const addon = require(path.resolve(process.argv[2]));
const N = Number(process.argv[3] || 1000);
const certDir = process.argv[4];
const HTTPS = 5;

function bodyOf(i) {
  const len = (i * 7919) % 20000 + 1;
  const b = Buffer.alloc(len);
  for (let k = 0; k < len; k++) b[k] = 97 + ((i + k * 13) % 26);
  return b;
}
function handler(req, res) {
  const i = Number(req.url.slice(1)) || 0;
  const b = bodyOf(i);
  res.writeHead(200, { 'content-length': b.length });
  res.end(b);
}

const watchdog = setTimeout(() => { console.error('node_host: watchdog fired'); process.exit(2); }, 60000);
const server = http.createServer(handler);
const secure = https.createServer({
  key: fs.readFileSync(path.join(certDir, 'key.pem')),
  cert: fs.readFileSync(path.join(certDir, 'cert.pem')),
}, handler);

let ok = 0, failures = 0, next = 0, finished = 0, httpsOk = 0, ticks = 0;
const ticker = setInterval(() => { ticks++; }, 2);

function fail(msg) { failures++; console.error('node_host: ' + msg); }

function startNext(port) {
  if (next >= N) return;
  const i = next++;
  addon.request(`http://127.0.0.1:${port}/${i}`, null, (err, status, body) => {
    finished++;
    if (err) fail(`request ${i}: ${err}`);
    else if (status !== 200 || !body.equals(bodyOf(i))) fail(`request ${i}: status ${status} len ${body.length}`);
    else ok++;
    startNext(port);
    if (finished === N) startHttps();
  });
}

function startHttps() {
  const port = secure.address().port;
  let left = HTTPS;
  for (let k = 0; k < HTTPS; k++) {
    const i = 100000 + k;
    addon.request(`https://127.0.0.1:${port}/${i}`, path.join(certDir, 'cert.pem'), (err, status, body) => {
      if (err) fail(`https ${i}: ${err}`);
      else if (status !== 200 || !body.equals(bodyOf(i))) fail(`https ${i}: status ${status}`);
      else httpsOk++;
      if (--left === 0) finish();
    });
  }
}

function finish() {
  addon.close(() => {
    clearInterval(ticker);
    clearTimeout(watchdog);
    server.close();
    secure.close();
    const nodeUv = process.versions.uv.split('.').map(Number);
    const hostUv = (nodeUv[0] << 16) | (nodeUv[1] << 8) | nodeUv[2];
    const uvcurlUv = addon.libuvVersion();
    const mapped = new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
      .map((l) => l.split(/\s+/)[5] || '').filter((p) => /\/libuv\.so/.test(p)));
    console.log(`transfers ${N} ok ${ok} failures ${failures} https ${httpsOk} ticks ${ticks} ` +
      `host_uv ${hostUv.toString(16)} uvcurl_uv ${uvcurlUv.toString(16)} ` +
      `libuv_so_mapped ${[...mapped].join(',') || 'none'}`);
    if (ok === N && failures === 0 && httpsOk === HTTPS && ticks > 0 && hostUv === uvcurlUv) console.log('ok');
    else process.exitCode = 1;
  });
}

server.listen(0, '127.0.0.1', () => {
  secure.listen(0, '127.0.0.1', () => {
    const port = server.address().port;
    for (let k = 0; k < 50; k++) startNext(port);
  });
});
