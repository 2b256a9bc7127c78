#!/usr/bin/env bash
# v13b (docs/gpu.md): where the next kernel is let launch (griddepcontrol.launch_dependents). GEMV:
# VIVA_TENSOR_TC_FLAGS bits 16-17 (0 at the start, 1 after the PDL wait, 2 once x' is staged, 3 after the pieces);
# tensor-core attention: -DTCA_LAUNCH_AT=0/1/2 through VIVA_TENSOR_NVRTC_DEFINES; with and without the ring fitted
# to a warp's pieces (VIVA_TENSOR_TC_FIT=1). Inputs as run.sh.
# The launch-point flag bits and -DTCA_LAUNCH_AT were removed after the call (docs/gpu.md v13 has the results).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:L0
run env VIVA_TENSOR_TC_FLAGS=65536 $B --label tiny:L1
run env VIVA_TENSOR_TC_FLAGS=131072 $B --label tiny:L2
run env VIVA_TENSOR_TC_FLAGS=196608 $B --label tiny:L3
run env VIVA_TENSOR_TC_FIT=1 VIVA_TENSOR_TC_FLAGS=131072 $B --label tiny:fit-L2
run env VIVA_TENSOR_TC_FIT=1 VIVA_TENSOR_TC_FLAGS=196608 $B --label tiny:fit-L3
run env VIVA_TENSOR_NVRTC_DEFINES=-DTCA_LAUNCH_AT=1 $B --label tiny:attnL1
run env VIVA_TENSOR_NVRTC_DEFINES=-DTCA_LAUNCH_AT=2 $B --label tiny:attnL2
run env $B --label tiny:L0
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:L0
run7 env VIVA_TENSOR_TC_FLAGS=131072 $B7 --label llama7b:L2
run7 env VIVA_TENSOR_TC_FLAGS=196608 $B7 --label llama7b:L3
run7 env VIVA_TENSOR_TC_FIT=1 VIVA_TENSOR_TC_FLAGS=131072 $B7 --label llama7b:fit-L2
run7 env VIVA_TENSOR_NVRTC_DEFINES=-DTCA_LAUNCH_AT=1 $B7 --label llama7b:attnL1
run7 env $B7 --label llama7b:L0
summary
