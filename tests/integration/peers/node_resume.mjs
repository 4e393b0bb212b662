// One TLS 1.3 connection with Node's own TLS stack (Node 24: OpenSSL 3.5)
// that offers a saved session, for tests/integration/test_ticket_keys.py.
//
//   node node_resume.mjs '{"port": 8443, "ca": "ca.crt", "session": "<hex>"|null}'
//
// Offers only X25519MLKEM768 (ecdhCurve), sends GET /echo, prints one JSON
// line: {"ok", "status", "reused", "session" (hex of the last ticket the
// server sent, or null)}; OpenSSL's handshake trace goes to stderr.
import fs from 'node:fs';
import tls from 'node:tls';

const opt = JSON.parse(process.argv[2] ?? '{}');
const out = (obj, rc) => { process.stdout.write(JSON.stringify(obj) + '\n'); process.exit(rc); };
let session = null;
const s = tls.connect({
    host: '127.0.0.1', port: opt.port, servername: 'localhost', ca: fs.readFileSync(opt.ca),
    minVersion: 'TLSv1.3', ecdhCurve: opt.ecdhCurve ?? 'X25519MLKEM768',
    session: opt.session ? Buffer.from(opt.session, 'hex') : undefined,
});
s.enableTrace();
s.on('session', (b) => { session = b; });
s.setTimeout(10000, () => out({ ok: false, message: 'timed out' }, 3));
s.on('secureConnect', () => {
    s.write(`GET /echo HTTP/1.1\r\nHost: localhost:${opt.port}\r\nConnection: close\r\n\r\n`);
});
const chunks = [];
s.on('data', (d) => chunks.push(d));
s.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const m = /^HTTP\/1\.1 (\d+)/.exec(text);
    out({ ok: !!m, status: m ? Number(m[1]) : null, reused: s.isSessionReused(),
          session: session ? session.toString('hex') : null }, 0);
});
s.on('error', (e) => out({ ok: false, code: e.code, message: e.message }, 3));
