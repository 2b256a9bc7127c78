#!/usr/bin/env bash
# v6 A/B call (docs/gpu.md): fused norm statistics (VIVA_TENSOR_NORM_FUSE=1) vs the v5 default, interleaved, plus the
# grid-barrier probe for a persistent kernel. Correctness of both paths in the same call. Inputs as run.sh (.carry/).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
( python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1 ) &
CKPID=$!
echo "== grid barrier probe"; timeout 60 $C/viva-bench --barrier-probe 2>&1 | tee "$OUT/barrier.log"
echo "== correctness: tests/cuda.rs, default path then VIVA_TENSOR_NORM_FUSE=1"
for f in 0 1; do
  VIVA_TENSOR_NORM_FUSE=$f VIVA_TENSOR_FIXTURES=$C/fixtures timeout 200 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
    | tee "$OUT/cuda-tests-fuse$f.log" | grep -E "SKIPPED|agreement|test result|panicked|FAILED" | sed "s/^/fuse=$f: /"
done
wait $CKPID; tail -1 "$OUT/ckpt.log"
B="$C/viva-bench $CK --backend cuda --json $RES"
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
echo "== bf16 vs cpu f32, TinyLlama shape (300-token prefill, 16 decode steps), fused path"
VIVA_TENSOR_NORM_FUSE=1 run $B --weights bf16 --label chk:bf16-vs-cpu-fuse --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
echo "== decode A/B (fp8 b64 default block), interleaved"
V="--prefill-len 0 --api-steps 0"
for r in 1 2; do  # (v6 call: fused stats were opt-in then; now the default)
  VIVA_TENSOR_NORM_FUSE=0 run $B --weights fp8 --label v5-default-$r $V
  VIVA_TENSOR_NORM_FUSE=1 run $B --weights fp8 --label v6-normfuse-$r $V
done
VIVA_TENSOR_NORM_FUSE=0 run $B --weights fp8 --label v5-default-agree --agree 24 --api-steps 8 --prefill-len 0
VIVA_TENSOR_NORM_FUSE=1 run $B --weights fp8 --label v6-normfuse-agree --agree 24 --api-steps 8 --prefill-len 0
VIVA_TENSOR_NORM_FUSE=0 run $B --weights bf16 --label bf16-default $V
VIVA_TENSOR_NORM_FUSE=1 run $B --weights bf16 --label bf16-normfuse $V
VIVA_TENSOR_NORM_FUSE=0 run $B --weights fp8 --label prof-default --profile --new 32 $V
VIVA_TENSOR_NORM_FUSE=1 run $B --weights fp8 --label prof-normfuse --profile --new 32 $V
for f in 0 1; do
  VIVA_TENSOR_NORM_FUSE=$f run $C/viva-bench $C/fixtures/stories260k --backend cuda --weights fp8 --label stories260k:fp8/b64-fuse$f --prompt-len 16 --new 64 --prefill-len 128 --agree 32 --json $RES
done
echo "== torch-graph bf16 (same call)"
timeout 150 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -2
summary
