#!/usr/bin/env bash
# v13d (docs/gpu.md): closing check of the session's commit: tests/cuda.rs, the tensor-map probe
# (viva-bench --tmap-probe), default timings on both shapes and one run of the 64-byte bulk-copy ring. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
echo "== tensor map probe"; $C/viva-bench --tmap-probe
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:default
run env VIVA_TENSOR_TC_TMA=1 $B --label tiny:tma64
run env $B --label tiny:default
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
summary
