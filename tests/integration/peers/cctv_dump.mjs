// Writes every C2SP CCTV age test vector of the npm package cctv-age (pinned
// in tests/npm) into DIR, one file per vector named as in the package:
//   node cctv_dump.mjs NODE_MODULES DIR
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, dir] = process.argv.slice(2);
const vectors = await import(pathToFileURL(join(modules, "cctv-age", "index.js")).href);
let n = 0;
for (const [name, bytes] of Object.entries(vectors)) {
    if (!(bytes instanceof Uint8Array)) continue;
    writeFileSync(join(dir, name), bytes);
    n++;
}
console.log(n);
