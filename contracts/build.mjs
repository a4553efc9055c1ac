#!/usr/bin/env node
// Compile src/*.sol with the pinned solc (npm package) into build/<Contract>.json: ABI, bytecode, compiler.
// `node build.mjs` writes the artifacts; `node build.mjs --check` fails if the committed ones differ from a fresh
// build (CI runs it through tests/unit/test_contract_artifacts.py). Python users load build/ and need no Node.
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const here = dirname(fileURLToPath(import.meta.url));
const sourceDir = join(here, "src");
const buildDir = join(here, "build");
// "paris": no PUSH0, so the bytecode runs on permissioned chains that have not enabled Shanghai (see docs/chain.md).
const EVM_VERSION = "paris";

function findImport(path) {
  const candidate = join(here, "node_modules", path);
  return existsSync(candidate) ? { contents: readFileSync(candidate, "utf8") } : { error: `not found: ${path}` };
}

function compile() {
  const sources = {};
  for (const name of readdirSync(sourceDir).filter((f) => f.endsWith(".sol")).sort()) {
    sources[`src/${name}`] = { content: readFileSync(join(sourceDir, name), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length) process.exit(1);
  const artifacts = {};
  for (const [file, contracts] of Object.entries(output.contracts)) {
    if (!file.startsWith("src/")) continue;
    for (const [name, c] of Object.entries(contracts)) {
      artifacts[name] = {
        contractName: name,
        sourceName: file,
        compiler: { name: "solc", version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
    }
  }
  return artifacts;
}

const artifacts = compile();
const check = process.argv.includes("--check");
let stale = 0;
for (const [name, artifact] of Object.entries(artifacts)) {
  const path = join(buildDir, `${name}.json`);
  const text = JSON.stringify(artifact, null, 2) + "\n";
  if (check) {
    if (!existsSync(path) || readFileSync(path, "utf8") !== text) {
      console.error(`build/${name}.json differs from a fresh build of ${artifact.sourceName}`);
      stale += 1;
    }
  } else {
    writeFileSync(path, text);
    console.log(`wrote build/${name}.json (${(artifact.deployedBytecode.length - 2) / 2} bytes deployed)`);
  }
}
if (check) {
  const expected = new Set(Object.keys(artifacts).map((n) => `${n}.json`));
  for (const file of readdirSync(buildDir).filter((f) => f.endsWith(".json"))) {
    if (!expected.has(file)) {
      console.error(`build/${file} has no source in src/`);
      stale += 1;
    }
  }
  if (stale) process.exit(1);
  console.log(`build/ matches a fresh build (${Object.keys(artifacts).length} contracts, solc ${solc.version()})`);
}
