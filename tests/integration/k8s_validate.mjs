// Validates Kubernetes objects against the API's OpenAPI schemas, offline:
// kubernetes-models (tests/npm) ships those schemas compiled to validators,
// one module per apiVersion/kind.
//
//   node k8s_validate.mjs NODE_MODULES_DIR < objects.json
//
// stdin: a JSON array of objects. Prints "Kind/name: ok" or
// "Kind/name: <error>" per object; exits 1 when any is invalid or has no
// schema (an unknown kind or apiVersion is an error, not a pass).
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules] = process.argv.slice(2);
if (!modules) {
    console.error("usage: node k8s_validate.mjs NODE_MODULES_DIR < objects.json");
    process.exit(2);
}
const objects = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const obj of objects) {
    const what = `${obj.kind}/${obj.metadata?.name}`;
    // "apps/v1" -> apps/v1/Deployment.js; core "v1" -> v1/Pod.js
    const file = join(modules, "kubernetes-models", ...String(obj.apiVersion).split("/"), `${obj.kind}.js`);
    if (!/^[A-Za-z0-9.\/-]+$/.test(obj.apiVersion) || !/^[A-Za-z]+$/.test(obj.kind) || !existsSync(file)) {
        console.log(`${what}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
        bad++;
        continue;
    }
    const mod = await import(pathToFileURL(file).href);
    try {
        new mod[obj.kind](obj).validate();
        console.log(`${what}: ok`);
    } catch (e) {
        console.log(`${what}: ${e.message.replace(/\n/g, "; ")}`);
        bad++;
    }
}
process.exit(bad ? 1 : 0);
