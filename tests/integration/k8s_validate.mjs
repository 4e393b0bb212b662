// Validates Kubernetes objects against the API's OpenAPI schemas, offline:
// kubernetes-models (tests/npm) ships those schemas compiled to validators,
// one module per apiVersion/kind. The schemas, like the API server by
// default, let unknown fields pass; as `kubectl apply --validate=strict`
// would, this also refuses them, using the property lists of the package's
// type declarations (generated from the same schemas).
//
//   node k8s_validate.mjs NODE_MODULES_DIR < objects.json
//
// stdin: a JSON array of objects. Prints "Kind/name: ok" or
// "Kind/name: <error>" per object; exits 1 when any is invalid or has no
// schema (an unknown kind or apiVersion is an error, not a pass).
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// Type alias (IIoK8sApiCoreV1Container) -> { property: type text } for every
// interface the declarations export.
function typeIndex(dirs) {
    const index = new Map();
    const walk = (d) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
            const p = join(d, e.name);
            if (e.isDirectory() && e.name !== "node_modules") walk(p);
            else if (e.name.endsWith(".d.ts")) parseDecl(readFileSync(p, "utf8"), index);
        }
    };
    dirs.filter(existsSync).forEach(walk);
    return index;
}

function parseDecl(text, index) {
    const alias = /export type \{ (I\w+) as (IIoK8s\w+)/.exec(text);
    if (!alias) return;
    const body = new RegExp(`export interface ${alias[1]}(?: extends \\w+)? \\{\n([\\s\\S]*?)\n\\}`).exec(text);
    if (!body) return;
    const props = {};
    for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props[m[1]] = m[2];
    index.set(alias[2], props);
}

// Unknown fields of value (of type alias) and, recursively, of the fields
// whose type is one declared object or an array of them.
function unknownFields(value, alias, path, index, out) {
    const props = index.get(alias);
    if (!props || value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
        const t = props[k];
        if (t === undefined) { out.push(`${path}/${k}: unknown field`); continue; }
        const one = /^(IIoK8s\w+);$/.exec(t), many = /^Array<(IIoK8s\w+)>;$/.exec(t);
        if (one) unknownFields(v, one[1], `${path}/${k}`, index, out);
        if (many && Array.isArray(v)) v.forEach((x, i) => unknownFields(x, many[1], `${path}/${k}/${i}`, index, out));
    }
}

const [modules] = process.argv.slice(2);
if (!modules) {
    console.error("usage: node k8s_validate.mjs NODE_MODULES_DIR < objects.json");
    process.exit(2);
}
const objects = JSON.parse(readFileSync(0, "utf8"));
const index = typeIndex([join(modules, "kubernetes-models"), join(modules, "@kubernetes-models", "apimachinery")]);
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
        const unknown = [];
        const alias = /export type \{ I\w+ as (IIoK8s\w+)/.exec(readFileSync(file.replace(/\.js$/, ".d.ts"), "utf8"));
        if (!alias || !index.has(alias[1])) throw new Error(`no type declaration for ${obj.kind}`);
        unknownFields(obj, alias[1], "data", index, unknown);
        if (unknown.length) throw new Error(unknown.join("; "));
        console.log(`${what}: ok`);
    } catch (e) {
        console.log(`${what}: ${e.message.replace(/\n/g, "; ")}`);
        bad++;
    }
}
process.exit(bad ? 1 : 0);
