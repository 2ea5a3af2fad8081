// Validate .glb files with the Khronos glTF validator (npm gltf-validator, installed by `make`).
// Usage: node tools/validate-gltf.mjs FILE_OR_DIR...   Prints one JSON object:
// {"files": N, "errors": E, "warnings": W, "reports": [{"uri", "numErrors", "numWarnings", "messages": [...]}]}
// Exit status 0 when no file has errors, 1 otherwise, 2 on usage errors.
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const require = createRequire(import.meta.url);
const validator = require("gltf-validator");

function collect(p, out) {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(p).sort()) collect(path.join(p, name), out);
  } else if (p.endsWith(".glb") || p.endsWith(".gltf")) {
    out.push(p);
  }
}

const args = process.argv.slice(2);
if (!args.length) {
  console.error("usage: node tools/validate-gltf.mjs FILE_OR_DIR...");
  process.exit(2);
}
const files = [];
for (const a of args) collect(a, files);
const summary = { files: files.length, errors: 0, warnings: 0, reports: [] };
for (const f of files) {
  const bytes = new Uint8Array(fs.readFileSync(f));
  const report = await validator.validateBytes(bytes, {
    uri: f,
    maxIssues: 50,
    externalResourceFunction: (uri) =>
      new Promise((resolve, reject) => {
        fs.readFile(path.resolve(path.dirname(f), decodeURIComponent(uri)), (err, data) =>
          err ? reject(err.toString()) : resolve(new Uint8Array(data)));
      }),
  });
  const issues = report.issues;
  summary.errors += issues.numErrors;
  summary.warnings += issues.numWarnings;
  summary.reports.push({
    uri: f,
    numErrors: issues.numErrors,
    numWarnings: issues.numWarnings,
    numInfos: issues.numInfos,
    messages: issues.messages.filter((m) => m.severity <= 1),
  });
}
console.log(JSON.stringify(summary));
process.exit(summary.errors ? 1 : 0);
