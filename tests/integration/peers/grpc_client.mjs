// One gRPC call with @grpc/grpc-js and @grpc/proto-loader (tests/npm) on
// Node 24, for tests/integration/test_grpc_demo.py. Cleartext h2c with prior
// knowledge, as gRPC servers are reached behind a sidecar.
//
//   NODE_PATH=<tests/npm node_modules> node grpc_client.mjs '{"target": "127.0.0.1:8500", ...}'
//
// Options (JSON): target (host:port), protoDir (holding grpc_predict_v2.proto
// and streamtest.proto), service (full name, default
// inference.GRPCInferenceService), method, request (the message as JSON,
// proto field names; bytes as base64), metadata ({name: value}), deadline_ms
// (sent as grpc-timeout), ca (a PEM file: TLS verified against it, ALPN h2,
// server name `servername`, default localhost; without it cleartext h2c),
// and for streams:
//   requests: the messages a client-streaming or bidi call sends, or
//   repeat: send `request` that many times, its "id" (when present) or its
//           "seq" set to the index, so order can be checked;
//   keep: how many stream messages to print in full (default 20);
//   pause_ms: server streaming and bidi: stop reading for that long after
//           the first message (backpressure).
//
// Prints one JSON line on stdout and exits 0 when the call completed with
// status OK:
//   {"ok": true, "code": 0, "headers", "trailers", "response"} (unary and
//   client streaming) or {"ok": true, ..., "count", "bytes", "responses"}
//   (server streaming and bidi; bytes: serialized size of all messages)
// or, with any other status (exit 3):
//   {"ok": false, "code", "status" (e.g. "NOT_FOUND"), "details", "headers", "trailers"}
//   (and "count", the messages received first, on server streaming and bidi)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

// NODE_PATH is honoured by require, not by import: load the packages through it.
const require = createRequire(path.join(process.cwd(), 'noop.js'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const opt = JSON.parse(process.argv[2] ?? '{}');
const out = (obj, rc) => { process.stdout.write(JSON.stringify(obj) + '\n'); process.exit(rc); };

const def = protoLoader.loadSync(['grpc_predict_v2.proto', 'streamtest.proto'], {
    includeDirs: [opt.protoDir], keepCase: true, longs: String, enums: String, bytes: String,
    defaults: false, oneofs: true,
});
const serviceName = opt.service ?? 'inference.GRPCInferenceService';
const service = def[serviceName];
if (!service) out({ ok: false, error: `unknown service ${serviceName}` }, 2);
const m = service[opt.method];
if (!m) out({ ok: false, error: `${serviceName} has no method ${opt.method}` }, 2);

const creds = opt.ca ? grpc.credentials.createSsl(fs.readFileSync(opt.ca))
    : grpc.credentials.createInsecure();
const client = new grpc.Client(opt.target, creds, opt.ca
    ? { 'grpc.ssl_target_name_override': opt.servername ?? 'localhost',
        'grpc.default_authority': opt.servername ?? 'localhost' } : {});
const md = new grpc.Metadata();
for (const [k, v] of Object.entries(opt.metadata ?? {})) md.set(k, v);
const callOpts = opt.deadline_ms ? { deadline: Date.now() + opt.deadline_ms } : {};
const ser = (o) => m.requestSerialize(o);
const de = (b) => m.responseDeserialize(b);
const keep = opt.keep ?? 20;
const metaObj = (meta) => (meta ? meta.getMap() : {});

let headers = {};
const requests = () => {
    if (opt.requests) return opt.requests;
    return Array.from({ length: opt.repeat ?? 1 }, (_, i) => {
        const r = { ...opt.request };
        if ('id' in r) r.id = String(i); else if ('seq' in r) r.seq = String(i);
        return r;
    });
};
const fail = (err, extra = {}) => out({
    ok: false, code: err.code, status: grpc.status[err.code], details: err.details,
    headers, trailers: metaObj(err.metadata), ...extra,
}, 3);

const path_ = m.path;
if (!m.requestStream && !m.responseStream) {
    const call = client.makeUnaryRequest(path_, ser, de, opt.request ?? {}, md, callOpts, (err, resp) => {
        if (err) fail(err);
        else finish({ response: resp });
    });
    watch(call);
} else if (m.requestStream && !m.responseStream) {
    const call = client.makeClientStreamRequest(path_, ser, de, md, callOpts, (err, resp) => {
        if (err) fail(err);
        else finish({ response: resp });
    });
    watch(call);
    sendAll(call);
} else {
    const call = m.requestStream
        ? client.makeBidiStreamRequest(path_, ser, de, md, callOpts)
        : client.makeServerStreamRequest(path_, ser, de, opt.request ?? {}, md, callOpts);
    watch(call);
    const kept = [];
    let count = 0, bytes = 0, inOrder = true;
    call.on('data', (msg) => {
        // pause_ms: stop reading after the first message for that long
        // (the proxy must hold the stream back, not buffer it)
        if (count === 0 && opt.pause_ms) {
            call.pause();
            setTimeout(() => call.resume(), opt.pause_ms);
        }
        // proto3 leaves a zero seq out of the message: absent means 0.
        if (String(msg.id ?? msg.seq ?? '0') !== String(count)) inOrder = false;
        count++;
        bytes += m.responseSerialize(msg).length;
        if (kept.length < keep) kept.push(msg);
    });
    call.on('error', (err) => fail(err, { count }));
    call.on('status', (st) => {
        if (st.code === grpc.status.OK) finish({ count, bytes, inOrder, responses: kept }, st.metadata);
    });
    if (m.requestStream) sendAll(call);
}

let trailersSeen = {};
function watch(call) {
    call.on('metadata', (meta) => { headers = metaObj(meta); });
    call.on('status', (st) => { trailersSeen = metaObj(st.metadata); });
}

// Writes every request, waiting for 'drain' when the stream's buffer is full
// (grpc-js's backpressure), then half-closes.
async function sendAll(call) {
    for (const r of requests()) {
        if (!call.write(r)) await new Promise((res) => call.once('drain', res));
    }
    call.end();
}

function finish(fields, trailers) {
    // Unary callbacks run before the 'status' event: let it arrive first.
    setImmediate(() => out({ ok: true, code: 0, headers, trailers: trailers ? metaObj(trailers) : trailersSeen,
        ...fields }, 0));
}
