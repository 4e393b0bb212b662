// One TLS handshake with Node's own TLS stack (Node 24: OpenSSL 3.5) that
// asks for a stapled OCSP response, for tests/integration/test_tls_ocsp.py.
//
//   node node_ocsp.mjs '{"port": 8443, "ca": "ca.pem", "version": "TLSv1.3"}'
//
// Prints one JSON line: {"ok": true, "protocol", "ocsp": HEX or null}
// (null: the server stapled nothing), or {"ok": false, "message"} (exit 3).
import fs from 'node:fs';
import tls from 'node:tls';

const opt = JSON.parse(process.argv[2] ?? '{}');
const out = (obj, rc) => { process.stdout.write(JSON.stringify(obj) + '\n'); process.exit(rc); };
let ocsp = null;

const s = tls.connect({
    host: '127.0.0.1',
    port: opt.port,
    servername: opt.servername ?? 'localhost',
    ca: fs.readFileSync(opt.ca),
    requestOCSP: true,
    minVersion: opt.version ?? 'TLSv1.3',
    maxVersion: opt.version ?? 'TLSv1.3',
});
// emitted before 'secureConnect', with the response or undefined
s.on('OCSPResponse', (resp) => { ocsp = resp ? resp.toString('hex') : null; });
s.on('secureConnect', () => {
    const protocol = s.getProtocol();
    s.end();
    out({ ok: true, protocol, ocsp }, 0);
});
s.on('error', (e) => out({ ok: false, message: e.message }, 3));
setTimeout(() => out({ ok: false, message: 'timeout' }, 3), opt.timeout_ms ?? 10000);
