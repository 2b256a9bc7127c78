#!/usr/bin/env bash
# v14a (docs/gpu.md): session 8's first call. tests/cuda.rs on session 7's last commits (host refactors not yet
# run on a device), the reduction probe that decides the fused MLP (viva-bench --red-probe), and the TinyLlama
# default twice. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
echo "== red probe"
run $C/viva-bench --red-probe
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:default
run env $B --label tiny:default
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
