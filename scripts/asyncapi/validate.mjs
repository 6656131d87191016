// Validate AsyncAPI documents two ways and print one JSON line per document:
//   1. the official parser (@asyncapi/parser): its diagnostics, severity 0 = error;
//   2. the spec's own JSON schema (@asyncapi/specs, the one the parser ships), with ajv.
// Usage: node validate.mjs FILE...   (NODE_PATH or a node_modules beside/above decides where
// the packages come from; scripts/setup.sh installs them into .tools/npm).
// Exit 0 when every document has no error in either check, 1 otherwise, 2 on bad usage.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const root = process.env.ALMANET_NPM_ROOT;
if (!root) {
  console.error("validate.mjs: set ALMANET_NPM_ROOT to the folder holding node_modules (.tools/npm)");
  process.exit(2);
}
const require = createRequire(path.resolve(root, "node_modules", "index.js"));
const { Parser } = require("@asyncapi/parser");
const specs = require("@asyncapi/specs");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}

const parser = new Parser();
let failed = false;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const diagnostics = await parser.validate(text);
  const errors = diagnostics.filter((d) => d.severity === 0);
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = null; // YAML: the parser has read it; the schema check needs JSON
  }
  const schemaErrors = [];
  if (doc !== null) {
    const version = doc.asyncapi;
    const schema = specs.schemas[version];
    if (!schema) {
      schemaErrors.push({ message: `no JSON schema for asyncapi ${version}` });
    } else {
      const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true, meta: false, validateSchema: false });
      addFormats(ajv);
      const validate = ajv.compile(schema);
      if (!validate(doc)) {
        for (const e of validate.errors) schemaErrors.push({ path: e.instancePath, message: e.message });
      }
    }
  }
  if (errors.length || schemaErrors.length) failed = true;
  console.log(
    JSON.stringify({
      file,
      errors: errors.map((d) => ({ code: d.code, message: d.message, path: d.path })),
      warnings: diagnostics.filter((d) => d.severity === 1).length,
      schema_checked: doc !== null,
      schema_errors: schemaErrors,
    }),
  );
}
process.exit(failed ? 1 : 0);
