#!/usr/bin/env bash
# Compile the Gleam build output together with the Erlang sources and run the
# Gleam tests under `erl`, without a `gleam` binary.
#
#   node tools/gleam/build.mjs OUTDIR     # Gleam -> OUTDIR/erl/*.erl
#   tools/gleam/test.sh OUTDIR            # erlc -> OUTDIR/ebin, run viva_tensor_test:main()
#
# Run from anywhere; the tests run with the repository root as working
# directory (fixtures: $VIVA_TENSOR_FIXTURES or ../shared/fixtures).
# VIVA_TENSOR_BACKEND=beam runs them without the NIF. Exit status: 0 when all
# tests pass, non-zero on a compile error or a failed test.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: tools/gleam/test.sh OUTDIR   (after: node tools/gleam/build.mjs OUTDIR)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

if ! compgen -G "$out/erl/*.erl" > /dev/null; then
  echo "no Gleam output in $out/erl: run 'node tools/gleam/build.mjs $1' first" >&2
  exit 2
fi

ebin="$out/ebin"
rm -rf "$ebin"
mkdir -p "$ebin"

shopt -s nullglob
erl_sources=("$out"/erl/*.erl "$root"/src/*.erl "$root"/test/*.erl)
# Absolute paths, compiled from inside ebin: erlc shortens a source path that
# merely starts with the working directory's path as a string
# (/repo + /repo-out/x.erl -> "-out/x.erl"), so the cwd must not prefix any.
(cd "$ebin" && erlc -o . -I "$root/include" -I "$root/src" -I "$out/erl" "${erl_sources[@]}")

cd "$root"

erl -noshell -pa "$ebin" -eval '
    try viva_tensor_test:main() of
        _ -> erlang:halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "viva_tensor_test:main() crashed: ~p:~tp~n~tp~n",
                      [Class, Reason, Stack]),
            erlang:halt(2)
    end.'
