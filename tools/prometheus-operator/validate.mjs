// `make deploy-check`: validate Prometheus Operator resources against the operator's own
// schemas, as the kubernetes-models package compiles them. Reads a JSON array of resources
// on standard input; prints one line per problem; exits 1 if there is any.
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import * as v1alpha1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1";

const kinds = {
  "monitoring.coreos.com/v1": v1,
  "monitoring.coreos.com/v1alpha1": v1alpha1,
};
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const resources = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let problems = 0;
for (const resource of resources) {
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const Kind = kinds[resource.apiVersion]?.[resource.kind];
  if (Kind === undefined) {
    problems += 1;
    console.log(`${name}: no schema for ${resource.apiVersion} ${resource.kind}`);
    continue;
  }
  try {
    new Kind(resource).validate();
  } catch (error) {
    problems += 1;
    console.log(`${name}: ${error.message}`);
  }
}
console.log(`${resources.length} resource(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
