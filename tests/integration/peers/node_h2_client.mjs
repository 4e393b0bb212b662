// Requests over one HTTP/2 connection with Node's own http2 client and TLS
// stack (Node 24: OpenSSL 3.5), for tests/integration/test_h2.py.
//
//   node node_h2_client.mjs '{"port": 8443, "ca": "ca.crt", "requests": [...]}'
//
// Options (JSON): port, ca (PEM file), servername (default localhost),
// ecdhCurve (default: OpenSSL's own list), alpn (default ["h2"]),
// requests: [{method, path, headers, body_len, cancel_after_ms}], all started at once on
// the connection (concurrent streams). body_len: a request body of that
// many bytes, byte i being i % 251, written in 64 KiB pieces as the stream
// takes them. cancel_after_ms: RST_STREAM CANCEL after that long.
// no_length: no content-length with body_len. stall_after: with body_len, write only that many body bytes, then
// nothing (the stream stays open on the client's side). wait_close_ms:
// after the response ends, wait that long for the stream to close (the
// server's RST_STREAM); streams still open at the end are cancelled.
// save_body: a file the whole response body is written to (to verify a
// signed response). trailers: {name: value} sent after the body (with
// body_len) in trailing HEADERS (Node's waitForTrailers / sendTrailers). headers may set ':authority' (default: the session's).
//
// Prints one JSON line and exits 0 when the connection was made:
//   {"ok": true, "alpn", "protocol", "ephemeral",
//    "goaways": [{code, last}] (GOAWAY frames received),
//    "responses": [{"status", "headers", "body_len", "body_sha256",
//                   "body" (first 4 KiB as text), "error", "trailers",
//                   "t_head_ms", "t_end_ms" (since the request started),
//                   "closed_after_end" (with wait_close_ms), "rst_code"}]}
// or {"ok": false, "code", "message"} (exit 3).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';

const opt = JSON.parse(process.argv[2] ?? '{}');
const out = (obj, rc) => { process.stdout.write(JSON.stringify(obj) + '\n'); process.exit(rc); };
const PATTERN = Buffer.from(Array.from({ length: 65536 + 251 }, (_, i) => i % 251));

const tlsOpts = {
    ca: fs.readFileSync(opt.ca),
    servername: opt.servername ?? 'localhost',
    ALPNProtocols: opt.alpn ?? ['h2'],
    minVersion: 'TLSv1.3',
};
if (opt.ecdhCurve) tlsOpts.ecdhCurve = opt.ecdhCurve;

const session = http2.connect(`https://localhost:${opt.port}`, tlsOpts);
session.on('error', (e) => out({ ok: false, code: e.code, message: e.message }, 3));
const goaways = [];
session.on('goaway', (code, last) => goaways.push({ code, last }));
setTimeout(() => out({ ok: false, code: 'TIMEOUT', message: 'no answer in time' }, 3),
           opt.timeout_ms ?? 30000).unref();

function writeBody(stream, n, stall) {
    let off = 0;
    if (stall !== undefined) {
        stream.write(PATTERN.subarray(0, stall));
        return;
    }
    const more = () => {
        while (off < n) {
            const len = Math.min(65536, n - off);
            const start = off % 251;
            const piece = PATTERN.subarray(start, start + len);
            off += len;
            if (!stream.write(piece)) { stream.once('drain', more); return; }
        }
        stream.end();
    };
    more();
}

function one(r) {
    return new Promise((resolveOnce) => {
        let settled = false;    // the result is final once given: a later close changes nothing
        const resolve = (v) => { if (!settled) { settled = true; resolveOnce(v); } };
        const headers = { ':method': r.method ?? 'GET', ':path': r.path ?? '/echo', ...(r.headers ?? {}) };
        if (r.body_len !== undefined && !r.no_length) headers['content-length'] = String(r.body_len);
        if (headers[':method'] === 'CONNECT') {     // RFC 9113 8.5: :authority only
            delete headers[':path'];
            headers[':authority'] = r.authority ?? 'example.com:443';
        }
        const endStream = r.body_len === undefined;
        const stream = session.request(headers, { endStream, waitForTrailers: !!r.trailers });
        if (r.trailers) stream.on('wantTrailers', () => stream.sendTrailers(r.trailers));
        const hash = crypto.createHash('sha256');
        const res = { status: 0, headers: {}, body_len: 0, body: '' };
        const t0 = Date.now();
        const kept = r.save_body ? [] : null;
        streams.push(stream);
        stream.on('response', (h) => {
            res.t_head_ms = Date.now() - t0;
            res.status = h[':status'];
            for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) res.headers[k] = v;
        });
        stream.on('data', (d) => {
            hash.update(d);
            if (kept) kept.push(d);
            if (String(res.headers['content-type']).includes('json') && res.body.length < 4096) res.body += d.toString('latin1').slice(0, 4096 - res.body.length);
            res.body_len += d.length;
        });
        stream.on('trailers', (t) => { res.trailers = t; });
        const done = () => {
            res.t_end_ms = Date.now() - t0;
            res.body_sha256 = hash.digest('hex');
            if (kept) fs.writeFileSync(r.save_body, Buffer.concat(kept));
            if (!r.wait_close_ms || stream.closed) { resolve(res); return; }
            const t = setTimeout(() => {
                if (!settled) res.closed_after_end = false;
                resolve(res);
            }, r.wait_close_ms);
            stream.once('close', () => {
                clearTimeout(t);
                if (settled) return;
                res.closed_after_end = true;
                res.rst_code = stream.rstCode;
                resolve(res);
            });
        };
        stream.on('end', done);
        stream.on('error', (e) => { res.error = e.code ?? e.message; resolve(res); });
        stream.on('close', () => {
            if (stream.cancelledAtEnd) return;     // ours, after the result was given
            res.rst_code = stream.rstCode;
            if (stream.rstCode && !res.error) res.error = `rst ${stream.rstCode}`;
            if (!res.body_sha256) { res.body_sha256 = hash.digest('hex'); resolve(res); }
        });
        if (!endStream) writeBody(stream, r.body_len, r.stall_after);
        if (r.cancel_after_ms) setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), r.cancel_after_ms);
    });
}

const streams = [];
session.on('connect', async () => {
    const s = session.socket;
    const info = { ok: true, alpn: s.alpnProtocol, protocol: s.getProtocol(),
                   ephemeral: s.getEphemeralKeyInfo() };
    info.responses = await Promise.all((opt.requests ?? [{}]).map(one));
    info.goaways = goaways;
    for (const st of streams) {
        if (st.closed) continue;
        st.cancelledAtEnd = true;
        st.close(http2.constants.NGHTTP2_CANCEL);
    }
    if (session.closed || session.destroyed) out(info, 0);     // ended by the server's GOAWAY
    session.close(() => out(info, 0));
});
