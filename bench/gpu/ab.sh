#!/usr/bin/env bash
# A/B call for the v4 changes (docs/gpu.md): correctness (tests/cuda.rs, bf16 exactness on the TinyLlama
# shape with old vs new attention), then decode variants. Same inputs as run.sh (.carry/ built here).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 240 $C/cuda-tests --test-threads=1 --nocapture 2>&1 | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|agreement|test result|panicked|FAILED"
[ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b 2>&1 | tail -1
B="$C/viva-bench $CK --backend cuda --json $RES"
run() { echo "-- $*"; timeout 150 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
echo "== bf16 vs cpu f32 on the TinyLlama shape (300-token prefill, 16 decode steps): old vs new attention"
VIVA_TENSOR_ATTN=old run $B --weights bf16 --label chk:bf16-oldattn --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
run $B --weights bf16 --label chk:bf16-gqa --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
echo "== decode variants (fp8 b16 unless named)"
V="--prefill-len 0 --api-steps 0"
VIVA_TENSOR_ATTN=old VIVA_TENSOR_GEMV_PF=0 run $B --weights fp8 --label v3-baseline $V
VIVA_TENSOR_GEMV_PF=0 run $B --weights fp8 --label gqa $V
VIVA_TENSOR_ATTN=old run $B --weights fp8 --label pf $V
run $B --weights fp8 --label gqa+pf $V
run $B --weights fp8 --label gqa+pf-again $V
VIVA_TENSOR_GEMV_PF=264 run $B --weights fp8 --label gqa+pf264 $V
VIVA_TENSOR_GEMV_ITERS=1 run $B --weights fp8 --label gqa+pf-it1 $V
VIVA_TENSOR_GEMV_ITERS=4 run $B --weights fp8 --label gqa+pf-it4 $V
VIVA_TENSOR_GEMV_RW=8 run $B --weights fp8 --label gqa+pf-rw8 $V
for b in 32 64 128; do run $B --weights fp8 --fp8-block $b --label gqa+pf-b$b $V; done
run $B --weights bf16 --label bf16-gqa+pf $V
run $B --weights fp8 --label gqa+pf-profile --profile
for f in stories260k bytelevel-tiny; do for b in 16 32 64; do
  run $C/viva-bench $C/fixtures/$f --backend cuda --weights fp8 --fp8-block $b --label $f:fp8/b$b --prompt-len 16 --new 64 --prefill-len 128 --agree 32 --json $RES
done; done
echo "== torch-graph bf16 (same call)"
timeout 120 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -2
summary
