# Sourced by the device scripts in this folder: inputs carried in $CARRY (default .carry), outputs under $OUT,
# the device's CUDA libraries on the loader path, multicast kept off (KINDS.md), a fresh results.jsonl.
set -u
C=${CARRY:-.carry}
OUT=${OUT:-/tmp/viva-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
RES="$OUT/results.jsonl"; : > "$RES"
CK=/tmp/tinyllama
