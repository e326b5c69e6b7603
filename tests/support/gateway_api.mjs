// Gateway API objects checked against the upstream CRDs' OpenAPI schemas, as compiled by
// @kubernetes-models/gateway-api. Reads a JSON array of objects on stdin and prints a JSON
// array of problems, one string each: "Kind/name: path: message".
// The node_modules folder that holds the package is the first argument.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const models = join(process.argv[2], "@kubernetes-models", "gateway-api");

const objects = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
for (const obj of objects) {
  const [group, version] = String(obj.apiVersion).split("/");
  const where = `${obj.kind}/${obj.metadata?.name}`;
  const module = join(models, group, version ?? "", `${obj.kind}.js`);
  if (!/^[a-z0-9.-]+$/.test(group) || !/^[A-Za-z0-9]+$/.test(`${version}${obj.kind}`) || !existsSync(module)) {
    problems.push(`${where}: Gateway API serves no ${obj.kind} in ${obj.apiVersion}`);
    continue;
  }
  const Model = (await import(pathToFileURL(module)))[obj.kind];
  try {
    new Model(obj).validate();
  } catch (error) {
    for (const detail of error.errors ?? [{ instancePath: "", message: error.message }]) {
      const path = detail.instancePath.replace(/^\//, "").replaceAll("/", ".");
      problems.push(`${where}: ${path}: ${detail.message} (Gateway API CRD schema)`);
    }
  }
}
process.stdout.write(JSON.stringify(problems));
