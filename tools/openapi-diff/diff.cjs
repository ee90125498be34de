// `node diff.cjs OLD NEW`: what Atlassian's openapi-diff classifies between two OpenAPI 3
// documents, as one JSON object on stdout ({"breakingDifferences": [...],
// "nonBreakingDifferences": [...], "unclassifiedDifferences": [...]}). A document the library
// cannot read or validate: {"error": "..."} and exit status 2. scripts/spec_watch.py runs it.
"use strict";
const fs = require("node:fs");
const openapiDiff = require("openapi-diff");

function spec(path) {
  return { content: fs.readFileSync(path, "utf8"), location: path, format: "openapi3" };
}

openapiDiff
  .diffSpecs({ sourceSpec: spec(process.argv[2]), destinationSpec: spec(process.argv[3]) })
  .then((outcome) => {
    process.stdout.write(
      JSON.stringify({
        breakingDifferences: outcome.breakingDifferences || [],
        nonBreakingDifferences: outcome.nonBreakingDifferences,
        unclassifiedDifferences: outcome.unclassifiedDifferences,
      }) + "\n",
    );
  })
  .catch((error) => {
    process.stdout.write(JSON.stringify({ error: String(error.message || error).split("\n")[0] }) + "\n");
    process.exitCode = 2;
  });
