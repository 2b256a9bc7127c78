#!/usr/bin/env bash
# v13e (docs/gpu.md): the tensor-core GEMV's ring filled through a tensor map, one TMA copy per piece
# (VIVA_TENSOR_TC_TMA=1), against the cp.async ring, same binary: tests/cuda.rs both ways, interleaved timings,
# timelines with it. Inputs as run.sh. Calls c and f ran earlier forms of this script: c against the first TMA ring
# (one 64-byte bulk copy per lane, since replaced), without the cap rows; f with VIVA_TENSOR_TC_TMA=2 (the weights by
# the tensor map, the scales by cp.async; since removed) beside 1 (labels tma2 / tma1).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
echo "== correctness with the TMA ring"
VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_FIXTURES=$C/fixtures timeout 150 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests-tma.log" | grep -E "vs |agreement|test result|panicked|FAILED|error"
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:cpasync
run env VIVA_TENSOR_TC_TMA=1 $B --label tiny:tma
grep -q '"tiny:tma"' $RES || { echo "tiny:tma left no row: TMA runs skipped"; summary; exit 1; }
run env VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_TC_FLAGS=1792 $B --label tiny:tma-pre6
run env VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_TC_FIT=1 $B --label tiny:tma-fit
run env $B --label tiny:cpasync
run env VIVA_TENSOR_TC_TMA=1 $B --label tiny:tma
VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:tma-timeline --timeline 8 && gzip -f $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:cpasync
run7 env VIVA_TENSOR_TC_TMA=1 $B7 --label llama7b:tma
run7 env VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_TC_FIT=1 $B7 --label llama7b:tma-fit
run7 env $B7 --label llama7b:cpasync
run7 env VIVA_TENSOR_TC_TMA=1 $B7 --label llama7b:tma
VIVA_TENSOR_TC_TMA=1 VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:tma-timeline --timeline 8 && gzip -f $OUT/tl-7b.bin
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
