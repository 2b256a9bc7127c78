#!/usr/bin/env bash
# generate/3 through the BEAM with this commit's NIF against another commit's (.carry/libviva_tensor_nif-base.so),
# interleaved, twice, after viva-bench against .carry/viva-bench-base the same way (viva-bench also writes the test
# tokenizer the random checkpoint lacks). TinyLlama shape, fp8 default.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck disable=SC1091
source $C/beam/beam-runtime use $C/beam
[ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b 2>&1 | tail -1
for i in 1 2; do
  run $C/viva-bench $CK --backend cuda --json $RES --weights fp8 --label tiny:new --prefill-len 0 --api-steps 0
  run $C/viva-bench-base $CK --backend cuda --json $RES --weights fp8 --label tiny:base --prefill-len 0 --api-steps 0
done
for i in 1 2; do
  for v in new base; do
    so=$C/libviva_tensor_nif.so; [ $v = base ] && so=$C/libviva_tensor_nif-base.so
    echo "-- beam $v"; VIVA_TENSOR_NIF=$PWD/$so timeout 120 erl -noshell -pa $C/ebin -run viva_gpu_beam main $CK fp8 2>&1
  done
done | tee "$OUT/beam-ab.log"
summary
