// An h2load stand-in on Node.js 24 (OpenSSL 3.5: X25519MLKEM768) for
// loadtest/h2.sh's hybrid rows: Debian's h2load is on OpenSSL 3.0.
//
//   node h2node.mjs -c CONNS -m STREAMS (-D SECONDS | -n REQUESTS) --groups LIST --log-file=PATH URL
//
// GET URL over HTTP/2 with STREAMS requests in flight on each of CONNS
// connections for SECONDS (or REQUESTS in all); h2load's -t and --npn-list
// are accepted and ignored (one thread, h2 only); prints h2load's "finished in", "requests:" and
// "Application protocol:" lines (what h2.sh parses) plus the group offered,
// and writes h2load's --log-file format (start us, status, duration us).
import http2 from "node:http2";
import fs from "node:fs";

const a = { c: 8, m: 32, D: 0, n: 0, groups: "X25519MLKEM768", log: "" };
const argv = process.argv.slice(2);
let url = "";
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  if (k === "-c") a.c = Number(argv[++i]);
  else if (k === "-m") a.m = Number(argv[++i]);
  else if (k === "-D") a.D = Number(argv[++i]);
  else if (k === "-n") a.n = Number(argv[++i]);
  else if (k === "-t") i++;
  else if (k === "--groups") a.groups = argv[++i];
  else if (k.startsWith("--log-file=")) a.log = k.slice(11);
  else if (k.startsWith("--npn-list=")) continue;
  else url = k;
}
if (!url || !(a.c > 0 && a.m > 0 && (a.D > 0) !== (a.n > 0))) {
  console.error("usage: h2node.mjs -c N -m N (-D S | -n N) [--groups LIST] [--log-file=PATH] URL");
  process.exit(2);
}
const u = new URL(url);
if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
  console.error("h2node: loopback only");
  process.exit(2);
}

const rows = [];
let ok = 0, failed = 0, started = 0, alpn = "", t0 = 0, end = 0;
const now = () => Number(process.hrtime.bigint() / 1000n);

function one(session, done) {
  if ((a.D && now() >= end) || (a.n && started >= a.n) || session.closed || session.destroyed) return done();
  started++;
  const start = now();
  const wall = Date.now() * 1000;
  const req = session.request({ ":path": u.pathname + u.search });
  let status = -1;
  req.on("response", (h) => { status = h[":status"]; });
  req.on("data", () => {});
  req.on("end", () => {
    const d = now() - start;
    if (status > 0) ok++; else failed++;      // h2load: a complete response succeeded, whatever its status
    rows.push(`${wall}\t${status}\t${d}`);
    one(session, done);
  });
  req.on("error", () => { failed++; rows.push(`${wall}\t-1\t${now() - start}`); one(session, done); });
  req.end();
}

function conn() {
  return new Promise((resolve) => {
    const s = http2.connect(u.origin, { rejectUnauthorized: false, ecdhCurve: a.groups, minVersion: "TLSv1.3",
                                        ALPNProtocols: ["h2"], peerMaxConcurrentStreams: a.m });
    s.on("error", () => { failed++; });
    s.once("connect", () => {
      alpn = s.alpnProtocol || alpn;
      let left = a.m;
      for (let i = 0; i < a.m; i++) one(s, () => { if (--left === 0) { s.close(); resolve(); } });
    });
    s.once("close", resolve);
  });
}

t0 = now();
end = t0 + a.D * 1e6;     // -n: no deadline (h2.sh's timeout bounds it)
await Promise.all(Array.from({ length: a.c }, conn));
const secs = (now() - t0) / 1e6;
if (a.log) fs.writeFileSync(a.log, rows.join("\n") + (rows.length ? "\n" : ""));
console.log(`finished in ${secs.toFixed(2)}s, ${(ok / secs).toFixed(2)} req/s`);
console.log(`requests: ${ok + failed} total, ${ok + failed} started, ${ok + failed} done, ${ok} succeeded, ${failed} failed, 0 errored, 0 timeout`);
console.log(`Application protocol: ${alpn}`);
console.log(`Groups offered: ${a.groups} (Node ${process.version}, OpenSSL ${process.versions.openssl})`);
