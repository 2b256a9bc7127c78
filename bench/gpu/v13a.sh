#!/usr/bin/env bash
# v13a (docs/gpu.md): ring slots fitted to a warp's pieces (the default in that call's binary; VIVA_TENSOR_TC_FIT=0
# kept the v12 ring), the shared-memory carveout hint, and L2 bulk prefetch of a warp's next pieces before the PDL wait
# (VIVA_TENSOR_TC_FLAGS / _LARGE_FLAGS bits 12-15: 2v pieces; bits 8-11: F + 1 cp.async slots before the wait).
# tests/cuda.rs first. Inputs as run.sh.
# The L2-prefetch flag bits, VIVA_TENSOR_TC_LARGE_FLAGS and VIVA_TENSOR_CARVEOUT were removed after the call; the ring cap
# is now opt-in (VIVA_TENSOR_TC_FIT=1, it was the default in that binary, so 'fit' rows are the cap).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:fit
run env VIVA_TENSOR_TC_FIT=0 $B --label tiny:nofit
run env VIVA_TENSOR_CARVEOUT=100 $B --label tiny:carve100
run env VIVA_TENSOR_TC_FLAGS=8960 $B --label tiny:pre2-l2pf4
run env VIVA_TENSOR_TC_LARGE_FLAGS=17152 $B --label tiny:large-pre2-l2pf8
run env $B --label tiny:fit
run env VIVA_TENSOR_TC_FIT=0 $B --label tiny:nofit
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:timeline --timeline 8 && gzip -f $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:fit
run7 env VIVA_TENSOR_TC_FIT=0 $B7 --label llama7b:nofit
run7 env VIVA_TENSOR_TC_LARGE_FLAGS=17152 $B7 --label llama7b:large-pre2-l2pf8
run7 env VIVA_TENSOR_TC_LARGE_FLAGS=16384 $B7 --label llama7b:large-ring-l2pf8
run7 env VIVA_TENSOR_ATTN_SLOTS=1 $B7 --label llama7b:attn-slots1
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:timeline --timeline 8 && gzip -f $OUT/tl-7b.bin
summary
