#!/usr/bin/env node
// An independent implementation of docs/signatures.md in Node 24 (OpenSSL
// 3.5: ML-DSA-87 and P-384), with no code shared with pqproxy. Used by
// tests/integration/test_sig_node.py to cross-check both implementations.
//
//   sign.mjs keygen --out PREFIX
//   sign.mjs sign-request --key PREFIX --keyid ID [--method M] [--authority A]
//            [--path P] [--query Q] [--body FILE] [--created T] [--ttl S] [--nonce N]
//            [--form x-signature|pair]
//   sign.mjs verify-request --pub PREFIX --keyid ID [--method ..] --headers FILE
//            [--body FILE] [--now T] [--dump-base FILE]
//   sign.mjs sign-response --key PREFIX --keyid ID --status N --request-signature-file F
//            [--body FILE] [--trailer]
//   sign.mjs verify-response --pub PREFIX --keyid ID --status N --headers FILE
//            --request-signature-file F [--body FILE] [--now T] [--trailer]
// Header files hold "Name: value" lines. verify-* print "OK" (exit 0) or
// "FAIL reason" (exit 1).
import crypto from 'node:crypto';
import fs from 'node:fs';

const ALG = 'ecdsa-p384-sha384+ml-dsa-87';
const MANDATORY = ['@method', '@authority', '@path', '@query', 'content-digest'];

function args(argv) {
  const o = { _: argv[0] };
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (k === 'trailer') o.trailer = true;
    else o[k] = argv[++i];
  }
  return o;
}

function readHeaders(file) {
  const h = [];
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (!line.trim()) continue;
    const i = line.indexOf(':');
    h.push([line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()]);
  }
  return h;
}

const fieldValue = (hdrs, name) => {
  const v = hdrs.filter(([n]) => n === name).map(([, v]) => v.trim());
  return v.length ? v.join(', ') : undefined;
};

const contentDigest = (body) => `sha-256=:${crypto.createHash('sha256').update(body).digest('base64')}:`;

// --- a minimal RFC 8941 dictionary parser (what this profile needs) -----------
function parseDict(s) {
  let i = 0;
  const out = new Map();
  const fail = (m) => { throw new Error(`malformed: ${m} at ${i}`); };
  const key = () => {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(s.slice(i));
    if (!m) fail('key');
    i += m[0].length;
    return m[0];
  };
  const bare = () => {
    const c = s[i];
    if (c === '"') {
      let v = '';
      for (i++; ; i++) {
        if (i >= s.length) fail('string');
        if (s[i] === '\\') { v += s[++i]; continue; }
        if (s[i] === '"') { i++; return { t: 'str', v }; }
        v += s[i];
      }
    }
    if (c === ':') {
      const e = s.indexOf(':', i + 1);
      if (e < 0) fail('bytes');
      const b64 = s.slice(i + 1, e);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4) fail('base64');
      i = e + 1;
      return { t: 'bytes', v: Buffer.from(b64, 'base64'), raw: b64 };
    }
    if (c === '?') { const v = s[i + 1] === '1'; i += 2; return { t: 'bool', v }; }
    const m = /^-?[0-9]{1,15}/.exec(s.slice(i));
    if (m) { i += m[0].length; return { t: 'int', v: Number(m[0]) }; }
    const t = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(s.slice(i));
    if (t) { i += t[0].length; return { t: 'token', v: t[0] }; }
    fail('item');
  };
  const params = () => {
    const p = [];
    while (s[i] === ';') {
      i++;
      while (s[i] === ' ') i++;
      const k = key();
      if (p.some(([n]) => n === k)) fail('duplicate parameter');
      if (s[i] === '=') { i++; p.push([k, bare()]); } else p.push([k, { t: 'bool', v: true }]);
    }
    return p;
  };
  while (s[i] === ' ') i++;
  for (;;) {
    const k = key();
    if (out.has(k)) fail('duplicate key');
    let val;
    if (s[i] === '=') {
      i++;
      if (s[i] === '(') {
        i++;
        const items = [];
        for (;;) {
          while (s[i] === ' ') i++;
          if (s[i] === ')') { i++; break; }
          items.push({ item: bare(), params: params() });
          if (s[i] !== ' ' && s[i] !== ')') fail('inner list');
        }
        val = { inner: items, params: params() };
      } else {
        val = { item: bare(), params: params() };
      }
    } else val = { item: { t: 'bool', v: true }, params: params() };
    out.set(k, val);
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i >= s.length) return out;
    if (s[i] !== ',') fail('expected ,');
    i++;
    while (s[i] === ' ' || s[i] === '\t') i++;
  }
}

const serBare = (b) => b.t === 'str' ? `"${b.v.replace(/[\\"]/g, (c) => '\\' + c)}"`
  : b.t === 'int' ? String(b.v) : b.t === 'bytes' ? `:${b.raw}:` : b.t === 'bool' ? (b.v ? '' : '=?0') : b.v;
const serParams = (p) => p.map(([k, v]) => v.t === 'bool' && v.v ? `;${k}` : `;${k}=${serBare(v)}`).join('');
const serComp = (c) => `"${c.name}"${c.req ? ';req' : ''}${c.tr ? ';tr' : ''}`;

// --- signature base (RFC 9421 section 2.5, docs section 4) ---------------------
function componentValue(c, msg) {
  const src = c.req ? msg.req : msg;
  if (!src) throw new Error(`malformed: no request for ${c.name};req`);
  if (c.name.startsWith('@')) {
    const t = src.target ?? '';
    const q = t.indexOf('?');
    switch (c.name) {
      case '@method': return src.method;
      case '@authority': return src.authority.toLowerCase().replace(/:443$/, '');
      case '@scheme': return 'https';
      case '@path': return (q < 0 ? t : t.slice(0, q)) || '/';
      case '@query': return q < 0 ? '?' : '?' + t.slice(q + 1);
      case '@request-target': return t;
      case '@status': return String(src.status);
      default: throw new Error(`malformed: unknown component ${c.name}`);
    }
  }
  const v = fieldValue(c.tr ? src.trailers : src.headers, c.name);
  if (v === undefined) throw new Error(`malformed: covered field ${c.name} absent`);
  return v;
}

function signatureBase(comps, params, msg) {
  const lines = comps.map((c) => `${serComp(c)}: ${componentValue(c, msg)}`);
  lines.push(`"@signature-params": (${comps.map(serComp).join(' ')})${serParams(params)}`);
  return Buffer.from(lines.join('\n'));
}

// --- keys ---------------------------------------------------------------------------
const loadPriv = (f) => crypto.createPrivateKey(fs.readFileSync(f));
const loadPub = (f) => crypto.createPublicKey(fs.readFileSync(f));

function checkKeys(ec, ml) {
  if (ec.asymmetricKeyType !== 'ec' || ec.asymmetricKeyDetails.namedCurve !== 'secp384r1')
    throw new Error('ECDSA key is not P-384');
  if (ml.asymmetricKeyType !== 'ml-dsa-87') throw new Error('not an ML-DSA-87 key');
}

function signBoth(prefix, base) {
  const ec = loadPriv(`${prefix}.ecdsa.key`), ml = loadPriv(`${prefix}.mldsa.key`);
  checkKeys(ec, ml);
  return {
    sig: crypto.sign('sha384', base, { key: ec, dsaEncoding: 'ieee-p1363' }),
    pq: crypto.sign(null, base, ml),
  };
}

function makeHeader(comps, keyid, created, ttl, nonce, base, prefix, form) {
  const params = [['created', { t: 'int', v: created }], ['expires', { t: 'int', v: created + ttl }],
    ['nonce', { t: 'str', v: nonce }], ['keyid', { t: 'str', v: keyid }], ['alg', { t: 'str', v: ALG }]];
  const b = base(params);
  const { sig, pq } = signBoth(prefix, b);
  const input = `sig1=(${comps.map(serComp).join(' ')})${serParams(params)}`;
  if (form === 'pair')
    return [['Signature-Input', input],
      ['Signature', `sig1=:${sig.toString('base64')}:, sig1-pq=:${pq.toString('base64')}:`]];
  return [['X-Signature', `${input};sig=:${sig.toString('base64')}:;pq=:${pq.toString('base64')}:`]];
}

// Verification per docs section 7 (no replay cache: one-shot).
function verify(msg, pubPrefix, keyid, now, opts) {
  const hdrs = opts.trailer ? msg.trailers : msg.headers;
  const raw = fieldValue(hdrs, 'x-signature');
  if (raw === undefined) return 'missing';
  let d;
  try { d = parseDict(raw); } catch (e) { return e.message; }
  if (d.size !== 1) return 'malformed: one signature expected';
  const [, m] = [...d][0];
  if (!m.inner) return 'malformed: not an inner list';
  const comps = m.inner.map(({ item, params }) => ({
    name: item.v, req: params.some(([k]) => k === 'req'), tr: params.some(([k]) => k === 'tr') }));
  const P = Object.fromEntries(m.params.map(([k, v]) => [k, v]));
  for (const k of ['created', 'expires', 'nonce', 'keyid', 'alg', 'sig', 'pq'])
    if (!P[k]) return `malformed: missing ${k}`;
  if (P.alg.v !== ALG) return 'malformed: alg';
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(P.nonce.v)) return 'malformed: nonce';
  if (P.keyid.v !== keyid) return 'unknown_keyid';
  for (const need of opts.mandatory)
    if (!comps.some((c) => `"${c.name}"${c.req ? ';req' : ''}${c.tr ? ';tr' : ''}` === need))
      return `malformed: ${need} not covered`;
  if (P.expires.v <= P.created.v || P.expires.v - P.created.v > 300) return 'malformed: window';
  if (now < P.created.v - 30) return 'not_yet_valid';
  if (now >= P.expires.v + 30) return 'expired';
  let base;
  try {
    base = signatureBase(comps, m.params.filter(([k]) => k !== 'sig' && k !== 'pq'), msg);
  } catch (e) { return e.message; }
  const ec = loadPub(`${pubPrefix}.ecdsa.pub`), ml = loadPub(`${pubPrefix}.mldsa.pub`);
  checkKeys(ec, ml);
  if (opts.dumpBase) fs.writeFileSync(opts.dumpBase, base);
  if (P.sig.v.length !== 96 || !crypto.verify('sha384', base, { key: ec, dsaEncoding: 'ieee-p1363' }, P.sig.v))
    return 'ecdsa_invalid';
  if (P.pq.v.length !== 4627 || !crypto.verify(null, base, ml, P.pq.v)) return 'mldsa_invalid';
  const cd = fieldValue(hdrs, 'content-digest');
  if (cd !== contentDigest(msg.body)) {
    const dd = parseDict(cd ?? 'x');
    const want = crypto.createHash('sha256').update(msg.body).digest();
    if (!dd.get('sha-256') || !dd.get('sha-256').item.v.equals(want)) return 'digest_mismatch';
  }
  return 'OK';
}

function requestMsg(o, headers) {
  const target = (o.path ?? '/') + (o.query !== undefined ? '?' + o.query.replace(/^\?/, '') : '');
  return { method: o.method ?? 'POST', authority: o.authority ?? 'localhost', target, headers,
    body: o.body ? fs.readFileSync(o.body) : Buffer.alloc(0) };
}

const reqSig = (o) => fs.readFileSync(o['request-signature-file'], 'utf8').trim();

const o = args(process.argv.slice(2));
const now = o.now ? Number(o.now) : Math.floor(Date.now() / 1000);
switch (o._) {
  case 'keygen': {
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const ml = crypto.generateKeyPairSync('ml-dsa-87');
    for (const [suffix, key, type] of [['ecdsa.key', ec.privateKey, 'pkcs8'], ['ecdsa.pub', ec.publicKey, 'spki'],
      ['mldsa.key', ml.privateKey, 'pkcs8'], ['mldsa.pub', ml.publicKey, 'spki']])
      fs.writeFileSync(`${o.out}.${suffix}`, key.export({ type, format: 'pem' }),
        { mode: suffix.endsWith('key') ? 0o600 : 0o644 });
    break;
  }
  case 'sign-request': {
    const msg = requestMsg(o, []);
    const cd = contentDigest(msg.body);
    msg.headers.push(['content-digest', cd]);
    const comps = MANDATORY.map((name) => ({ name }));
    const out = makeHeader(comps, o.keyid, o.created ? Number(o.created) : now, Number(o.ttl ?? 300),
      o.nonce ?? crypto.randomBytes(18).toString('base64url'),
      (params) => signatureBase(comps, params, msg), o.key, o.form);
    console.log(`Content-Digest: ${cd}`);
    for (const [n, v] of out) console.log(`${n}: ${v}`);
    break;
  }
  case 'verify-request': {
    const msg = requestMsg(o, readHeaders(o.headers));
    const r = verify(msg, o.pub, o.keyid, now, { mandatory: MANDATORY.map((n) => `"${n}"`),
      dumpBase: o['dump-base'] });
    console.log(r === 'OK' ? 'OK' : `FAIL ${r}`);
    process.exit(r === 'OK' ? 0 : 1);
    break;
  }
  case 'sign-response': {
    const body = o.body ? fs.readFileSync(o.body) : Buffer.alloc(0);
    const cd = contentDigest(body);
    const field = [['content-digest', cd]];
    const msg = { status: Number(o.status), headers: o.trailer ? [] : field, trailers: o.trailer ? field : [],
      req: { headers: [['x-signature', reqSig(o)]] } };
    const comps = [{ name: '@status' }, { name: 'content-digest', tr: !!o.trailer }, { name: 'x-signature', req: true }];
    const out = makeHeader(comps, o.keyid, now, 300, crypto.randomBytes(18).toString('base64url'),
      (params) => signatureBase(comps, params, msg), o.key);
    console.log(`Content-Digest: ${cd}`);
    for (const [n, v] of out) console.log(`${n}: ${v}`);
    break;
  }
  case 'verify-response': {
    const h = readHeaders(o.headers);
    const msg = { status: Number(o.status), headers: o.trailer ? [] : h, trailers: o.trailer ? h : [],
      body: o.body ? fs.readFileSync(o.body) : Buffer.alloc(0), req: { headers: [['x-signature', reqSig(o)]] } };
    const r = verify(msg, o.pub, o.keyid, now, { trailer: o.trailer, dumpBase: o['dump-base'],
      mandatory: ['"@status"', o.trailer ? '"content-digest";tr' : '"content-digest"', '"x-signature";req'] });
    console.log(r === 'OK' ? 'OK' : `FAIL ${r}`);
    process.exit(r === 'OK' ? 0 : 1);
    break;
  }
  default:
    console.error('usage: see the top of sign.mjs');
    process.exit(2);
}
