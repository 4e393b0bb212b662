// The independent age implementation (npm age-encryption) for test_age.py.
//   node age.mjs keygen pq|x25519          -> "IDENTITY\nRECIPIENT\n"
//   node age.mjs encrypt RECIPIENT IN OUT
//   node age.mjs decrypt IDENTITY IN OUT   (exit 1 with the library's error)
//   node age.mjs armor-encrypt RECIPIENT IN OUT / armor-decrypt IDENTITY IN OUT
//                                          (the same through age-encryption's armor)
// NODE_PATH names the node_modules scripts/deps.sh --test-tools installed.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const age = await import(require.resolve(join(process.env.NODE_PATH, "age-encryption")));
const [cmd, a, b, c] = process.argv.slice(2);
try {
  if (cmd === "keygen") {
    const id = a === "pq" ? await age.generateHybridIdentity() : await age.generateX25519Identity();
    process.stdout.write(`${id}\n${await age.identityToRecipient(id)}\n`);
  } else if (cmd === "encrypt") {
    const e = new age.Encrypter();
    e.addRecipient(a);
    writeFileSync(c, await e.encrypt(readFileSync(b)));
  } else if (cmd === "decrypt") {
    const d = new age.Decrypter();
    d.addIdentity(a);
    writeFileSync(c, await d.decrypt(readFileSync(b)));
  } else if (cmd === "armor-encrypt") {
    const e = new age.Encrypter();
    e.addRecipient(a);
    writeFileSync(c, age.armor.encode(await e.encrypt(readFileSync(b))));
  } else if (cmd === "armor-decrypt") {
    const d = new age.Decrypter();
    d.addIdentity(a);
    writeFileSync(c, await d.decrypt(age.armor.decode(readFileSync(b, "utf8"))));
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
} catch (e) {
  process.stderr.write(`age-encryption: ${e.message}\n`);
  process.exit(1);
}
