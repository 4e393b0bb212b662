// One HTTPS request with Node's own TLS stack (Node 24: OpenSSL 3.5), for
// tests/integration/test_interop_node.py.
//
//   node node_client.mjs '{"port": 8443, "ca": "ca.crt", ...}'
//
// Options (JSON): port, ca (PEM file), host (default 127.0.0.1), servername
// (default localhost), path (default /echo), method (default GET), body
// (string), ecdhCurve (colon-separated groups; default: OpenSSL's own list),
// sigalgs (colon-separated signature schemes, in preference order),
// ciphers (Node's cipher string: OpenSSL names for TLS 1.2, TLS_* names for
// TLS 1.3), minVersion / maxVersion ("TLSv1.2", "TLSv1.3"; default: at
// least TLS 1.3), cert / key (client certificate PEM files, for mTLS),
// headers (more request headers, {name: value}), trace (true: OpenSSL's
// handshake trace on stderr), timeout_ms.
//
// Prints one JSON line on stdout and exits 0 when a response arrived:
//   {"ok": true, "status", "body", "protocol", "cipher", "ephemeral",
//    "authorized", "peer_cert": {"key_type", "subject", "issuer"}}
// or, when the handshake or request failed (exit 3):
//   {"ok": false, "code", "message", "ssl_alert"}
import fs from 'node:fs';
import https from 'node:https';

const opt = JSON.parse(process.argv[2] ?? '{}');
const out = (obj, rc) => { process.stdout.write(JSON.stringify(obj) + '\n'); process.exit(rc); };

const reqOpts = {
    host: opt.host ?? '127.0.0.1',
    servername: opt.servername ?? 'localhost',
    port: opt.port,
    path: opt.path ?? '/echo',
    method: opt.method ?? 'GET',
    headers: { Host: `localhost:${opt.port}` },
    ca: fs.readFileSync(opt.ca),
    agent: false,                 // a fresh connection (and handshake) per run
    minVersion: opt.minVersion ?? 'TLSv1.3',
    timeout: opt.timeout_ms ?? 10000,
};
if (opt.ecdhCurve) reqOpts.ecdhCurve = opt.ecdhCurve;
if (opt.sigalgs) reqOpts.sigalgs = opt.sigalgs;
if (opt.ciphers) reqOpts.ciphers = opt.ciphers;
if (opt.maxVersion) reqOpts.maxVersion = opt.maxVersion;
if (opt.cert) { reqOpts.cert = fs.readFileSync(opt.cert); reqOpts.key = fs.readFileSync(opt.key); }
Object.assign(reqOpts.headers, opt.headers ?? {});
if (opt.body !== undefined) reqOpts.headers['Content-Type'] = 'application/json';

const req = https.request(reqOpts, (res) => {
    const s = res.socket;
    const cert = s.getPeerX509Certificate();
    const info = {
        ok: true,
        status: res.statusCode,
        protocol: s.getProtocol(),
        cipher: s.getCipher()?.standardName,
        // OpenSSL reports the peer's ephemeral key for classical groups
        // ({type: 'ECDH', name: 'X25519'}); for a hybrid KEM group it has no
        // such key and Node returns no name.
        ephemeral: s.getEphemeralKeyInfo(),
        authorized: s.authorized,
        peer_cert: cert && {
            key_type: cert.publicKey.asymmetricKeyType,
            subject: cert.subject,
            issuer: cert.issuer,
        },
    };
    const chunks = [];
    res.on('data', (d) => chunks.push(d));
    res.on('end', () => out({ ...info, body: Buffer.concat(chunks).toString('utf8') }, 0));
    res.on('error', (e) => out({ ok: false, code: e.code, message: e.message }, 3));
});
if (opt.trace) req.on('socket', (s) => s.enableTrace());
req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
req.on('error', (e) => {
    const m = /SSL alert number (\d+)/.exec(e.message);
    out({ ok: false, code: e.code, message: e.message, ssl_alert: m ? Number(m[1]) : null }, 3);
});
req.end(opt.body);
