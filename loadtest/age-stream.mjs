// age-encryption (npm, the version pinned in tests/npm) sealing or opening a
// file as a stream, file to file, then fsync, as `pqproxy seal`/`open` do:
//   node age-stream.mjs encrypt RECIPIENT IN OUT | decrypt IDENTITY IN OUT
// NODE_PATH names the node_modules that holds age-encryption.
import { createReadStream, createWriteStream, openSync, fsyncSync, closeSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";

const require = createRequire(import.meta.url);
const age = await import(require.resolve(join(process.env.NODE_PATH, "age-encryption")));
const [cmd, key, input, output] = process.argv.slice(2);
const src = Readable.toWeb(createReadStream(input, { highWaterMark: 1 << 20 }));
let res;
if (cmd === "encrypt") {
    const e = new age.Encrypter();
    e.addRecipient(key);
    res = await e.encrypt(src);
} else if (cmd === "decrypt") {
    const d = new age.Decrypter();
    d.addIdentity(key);
    res = await d.decrypt(src);
} else {
    throw new Error(`unknown command ${cmd}`);
}
const out = createWriteStream(output);
const closed = new Promise((ok, fail) => { out.on("close", ok); out.on("error", fail); });
await res.pipeTo(Writable.toWeb(out));
await closed;
const fd = openSync(output, "r+");
fsyncSync(fd);
closeSync(fd);
