#!/usr/bin/env bash
# v7 call (docs/gpu.md): prefill GEMMs through cuBLAS (bf16, f32 accumulation; FP8 weights dequantized to a bf16
# scratch first) vs the hand-written mma.sync GEMMs, interleaved in one process (viva-bench --prefill-ab), plus
# correctness of the new path (tests/cuda.rs with every prefill on cuBLAS) and decode unchanged. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
ls /usr/local/cuda/lib64/ | grep -E "^lib(cublas|cublasLt|nvrtc)\.so" | tr '\n' ' '; echo
( python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1 ) &
CKPID=$!
echo "== torch bf16 matmul ceiling (M=512 prefill shapes and 8192^3)"
python3 - <<'PY' 2>&1 | tee "$OUT/ceiling.txt"
import torch
for (m, n, k) in [(512, 11264, 2048), (512, 2560, 2048), (512, 2048, 5632), (8192, 8192, 8192)]:
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16); b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    for _ in range(5): a @ b.T
    s, e = torch.cuda.Event(True), torch.cuda.Event(True); ts = []
    for _ in range(20):
        s.record(); a @ b.T; e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort(); t = ts[10] / 1e3
    print(f"torch bf16 {m}x{n}x{k}: {t*1e6:.1f} us -> {2*m*n*k/t/1e12:.0f} TFLOP/s")
PY
echo "== correctness: tests/cuda.rs with every prefill on cuBLAS (VIVA_TENSOR_PREFILL_BLAS_MIN=2)"
VIVA_TENSOR_PREFILL_BLAS_MIN=2 VIVA_TENSOR_FIXTURES=$C/fixtures timeout 200 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests-cublas.log" | grep -E "SKIPPED|agreement|test result|panicked|FAILED|free device|cuBLAS"
wait $CKPID; tail -1 "$OUT/ckpt.log"
B="$C/viva-bench $CK --backend cuda --json $RES"
run() { echo "-- $*"; timeout 150 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
echo "== fp8 b64: decode + prefill A/B (mma vs cublas, interleaved) + profile (default = cublas)"
run $B --weights fp8 --label v7-fp8 --api-steps 0 --prefill-ab --profile
echo "== fp8 b64, old path (VIVA_TENSOR_PREFILL=mma): decode + prefill + profile"
VIVA_TENSOR_PREFILL=mma run $B --weights fp8 --label v6-fp8-mma --api-steps 0 --profile
echo "== bf16: decode + prefill A/B"
run $B --weights bf16 --label v7-bf16 --api-steps 0 --prefill-ab
echo "== bf16 vs cpu f32, TinyLlama shape, 300-token prefill (cublas) + 16 steps"
run $B --weights bf16 --label chk:bf16-vs-cpu-cublas --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
echo "== fp8 vs cpu f32, 300-token prefill (cublas)"
run $B --weights fp8 --label chk:fp8-vs-cpu-cublas --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
echo "== prefill lengths 64 / 128 (fp8, A/B)"
for L in 64 128; do run $B --weights fp8 --label v7-fp8-p$L --new 8 --api-steps 0 --prefill-len $L --prefill-ab; done
echo "== fp8 vs cpu f32, mma"; VIVA_TENSOR_PREFILL=mma run $B --weights fp8 --label chk:fp8-vs-cpu-mma --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
echo "== summary"
grep -hE "prefill-ab|agreement|decode .* tok/s" "$OUT/bench.log" | sed 's/  */ /g'
