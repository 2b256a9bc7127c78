// Shared helpers of viva_core's CUDA kernels. The Rust side (backend/cuda/kernels.rs) prepends this
// file to every kernel file and NVRTC compiles the whole set as one program, so nothing here may
// include a system header: the bf16 / fp8 conversions are written out below.
//
// Conventions: weights are row-major [N, Kp] (Kp = K padded with zeros to a multiple of 128, so every
// row starts 16-byte aligned); activations and the residual stream are f32; "A16" (the FP8 path)
// rounds the activations to bf16 before they meet the weights; accumulation is always f32.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define NEG_INF (__int_as_float(0xff800000))

// Programmatic dependent launch (sm_90+): a kernel may start while the previous one drains. It calls
// PDL_LAUNCH early (lets the next kernel be scheduled) and PDL_WAIT before it reads anything the
// previous kernel wrote or writes anything. Both are no-ops when launched without the attribute.
#if __CUDA_ARCH__ >= 900
#define PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#define PDL_LAUNCH() asm volatile("griddepcontrol.launch_dependents;" :::)
#else
#define PDL_WAIT()
#define PDL_LAUNCH()
#endif

// In-graph timeline (bench only, `CudaModel::timeline`): thread 0 of every block stamps %globaltimer (ns) into
// a launch's marks, each a (first, last) pair over the blocks: 0 start, 1 wait released, 2 to 4 kernel phases
// (GEMV: x' staged, pieces done; attention: q staged, partial written, combine started), 5 end. Blocks below
// TL_BLOCKS also keep their own stamps (8 u64 each after the pairs: marks 0-5, 7 = %smid) for the per-block dump.
// Compiled in only with VIVA_TIMELINE (`VIVA_TENSOR_TIMELINE=1` at device start): measured 1.1% slower when
// always present. The host's TL_STRIDE (backend/cuda/mod.rs) is this layout's size.
#define TL_MARKS 12
#define TL_BLOCKS 512
__device__ __forceinline__ void tl_mark(u64* tl, int mark) {
#ifdef VIVA_TIMELINE
  if (tl && threadIdx.x == 0) {
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    asm volatile("red.global.min.u64 [%0], %1;" ::"l"(tl + 2 * mark), "l"(t) : "memory");
    asm volatile("red.global.max.u64 [%0], %1;" ::"l"(tl + 2 * mark + 1), "l"(t) : "memory");
    const u32 b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    if (b < TL_BLOCKS) {
      u64* pb = tl + TL_MARKS + 8 * b;
      pb[mark] = t;
      if (mark == 0) {
        u32 sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        pb[7] = sm;
      }
    }
  }
#endif
}

__device__ __forceinline__ float bf16_to_f32(u32 h) { return __uint_as_float((h & 0xffffu) << 16); }

// f32 -> bf16, round to nearest even (as `half::bf16::from_f32`); NaN stays NaN.
__device__ __forceinline__ u32 f32_to_bf16(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

__device__ __forceinline__ float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

__device__ __forceinline__ float f16_to_f32(u32 h) {
  float f;
  unsigned short s = (unsigned short)(h & 0xffffu);
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(s));
  return f;
}

// Four E4M3 (OCP fp8, "e4m3fn") values, the bytes of `w` lowest first, to f32, exactly.
// sm_89+ converts in hardware. Older chips move the bits into f16 (sign, 4-bit exponent, 3-bit
// mantissa shifted into place), which is the value / 256 (subnormals included): FP8_UNIT undoes that
// factor once per dot product.
#if __CUDA_ARCH__ >= 890
#define FP8_UNIT 1.0f
__device__ __forceinline__ void fp8x4_to_f32(u32 w, float* o) {
  u32 lo, hi;
  asm("{\n\t.reg .b16 l, h;\n\tmov.b32 {l, h}, %2;\n\tcvt.rn.f16x2.e4m3x2 %0, l;\n\tcvt.rn.f16x2.e4m3x2 %1, h;\n\t}"
      : "=r"(lo), "=r"(hi)
      : "r"(w));
  o[0] = f16_to_f32(lo);
  o[1] = f16_to_f32(lo >> 16);
  o[2] = f16_to_f32(hi);
  o[3] = f16_to_f32(hi >> 16);
}
#else
#define FP8_UNIT 256.0f
__device__ __forceinline__ void fp8x4_to_f32(u32 w, float* o) {
  u32 a = __byte_perm(w, 0u, 0x4140u);  // bytes [b0, 0, b1, 0]
  u32 b = __byte_perm(w, 0u, 0x4342u);  // bytes [b2, 0, b3, 0]
  a = ((a & 0x00800080u) << 8) | ((a & 0x007f007fu) << 7);
  b = ((b & 0x00800080u) << 8) | ((b & 0x007f007fu) << 7);
  o[0] = f16_to_f32(a);
  o[1] = f16_to_f32(a >> 16);
  o[2] = f16_to_f32(b);
  o[3] = f16_to_f32(b >> 16);
}
#endif

// Four E4M3 values (the bytes of `w`, lowest first) as two f16x2 words: lo = (b0, b1), hi = (b2, b3). sm_89+
// converts exactly in hardware; older chips get the bit move of fp8x4_to_f32 above, i.e. the values / 256
// (FP8_UNIT undoes it).
__device__ __forceinline__ void fp8x4_to_f16x2(u32 w, u32* lo, u32* hi) {
#if __CUDA_ARCH__ >= 890
  asm("{\n\t.reg .b16 l, h;\n\tmov.b32 {l, h}, %2;\n\tcvt.rn.f16x2.e4m3x2 %0, l;\n\tcvt.rn.f16x2.e4m3x2 %1, h;\n\t}"
      : "=r"(*lo), "=r"(*hi)
      : "r"(w));
#else
  const u32 a = __byte_perm(w, 0u, 0x4140u), b = __byte_perm(w, 0u, 0x4342u);
  *lo = ((a & 0x00800080u) << 8) | ((a & 0x007f007fu) << 7);
  *hi = ((b & 0x00800080u) << 8) | ((b & 0x007f007fu) << 7);
#endif
}

__device__ __forceinline__ u16 f32_to_f16_bits(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }

// mbarriers and bulk copies (sm_90+): the persistent decode kernel's ring and the tensor-core GEMV's (v13).
#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mbar_init(u64* b, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_wait(u64* b, u32 parity) {
  u32 done;
  do {
    asm volatile(
        "{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
        : "=r"(done)
        : "r"(smem_u32(b)), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void mbar_arrive(u64* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
__device__ __forceinline__ void mbar_expect(u64* b, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
// Bulk copy of `bytes` (multiple of 16, both addresses 16-byte aligned) from global to shared memory,
// completing on mbarrier b; weights are read once per step, so they are marked first to leave L2.
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, u32 bytes, u64* b, u64 policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(b)), "l"(policy)
      : "memory");
}
#endif

// d += A . B on the tensor cores (mma.sync m16n8k16, f16 inputs, f32 accumulation); a0..a3 are the A fragment's
// four registers (rows g / g + 8 at k 2q, 2q + 1, then at k 2q + 8, 2q + 9), b0, b1 the B fragment's.
__device__ __forceinline__ void mma_f16_a4(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The same with A's rows g and g + 8 equal (persist.cu puts the one activation row in every row of A).
__device__ __forceinline__ void mma_f16(float* d, u32 a0, u32 a2, u32 b0, u32 b1) {
  mma_f16_a4(d, a0, a0, a2, a2, b0, b1);
}

// 2^e as a float, for e in [-126, 127].
__device__ __forceinline__ float exp2i(int e) { return __uint_as_float((u32)(127 + e) << 23); }

// The exponent e that brings max |x'| = amax under 2^14 as x' * 2^e, so that f16 holds x''s bf16 values exactly
// (bf16's 8-bit mantissa fits f16's 11 bits); 0 for a zero or non-finite amax.
__device__ __forceinline__ int f16_shift(float amax) {
  if (!(amax > 0.f && amax < 3.0e38f)) return 0;
  return min(127, max(-126, 14 - ((int)((__float_as_uint(amax) >> 23) & 0xff) - 126)));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Warp-wide argmax of (value, index) pairs: the larger value, the lower index on ties; every lane gets it.
__device__ __forceinline__ void warp_argmax(float* v, int* i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, *v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, *i, o);
    if (ov > *v || (ov == *v && oi < *i)) {
      *v = ov;
      *i = oi;
    }
  }
}

// Block-wide sum / max; `red` is shared scratch of 32 floats. Every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  return warp_sum(lane < nw ? red[lane] : 0.f);
}

__device__ __forceinline__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  return warp_max(lane < nw ? red[lane] : NEG_INF);
}

// 16-byte read-only load that does not allocate in L1 (weights stream through once per token).
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// The end of a persistent decode step (persist.cu, tp.cu), by the consumer threads 0..255 of every block (named
// barrier 1): the block's greedy argmax (lowest index on ties, NaN never wins), one 64-bit atomicMax of (ordered value
// bits, ~index) into sync[2..3]; the last block to finish publishes step = [argmax, pos + 1], resets the key, the done
// counter (sync[4]) and sync[0] (persist.cu's barrier), and advances sync[5] (tp.cu's step epoch). bv, bi: 8 entries
// of shared memory.
#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void step_argmax_finish(float best_v, int best_i, float* bv, int* bi, u32* sync, int* step,
                                                   int pos) {
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  warp_argmax(&best_v, &best_i);
  if (lane == 0) {
    bv[warp] = best_v;
    bi[warp] = best_i;
  }
  asm volatile("bar.sync 1, 256;" ::: "memory");
  if (tid != 0) return;
  for (int w = 1; w < 8; ++w)
    if (bv[w] > best_v || (bv[w] == best_v && bi[w] < best_i)) {
      best_v = bv[w];
      best_i = bi[w];
    }
  unsigned long long* key = (unsigned long long*)(sync + 2);
  if (best_i != 0x7fffffff && !(best_v != best_v)) {
    const u32 b = __float_as_uint(best_v);
    const u32 ord = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    atomicMax(key, ((unsigned long long)ord << 32) | (unsigned long long)(0xffffffffu - (u32)best_i));
  }
  __threadfence();
  if (atomicAdd(sync + 4, 1u) == gridDim.x - 1) {
    __threadfence();
    const unsigned long long k = atomicExch(key, 0ull);
    step[0] = k == 0ull ? 0 : (int)(0xffffffffu - (u32)(k & 0xffffffffull));
    step[1] = pos + 1;
    sync[0] = 0;
    sync[4] = 0;
    sync[5] = sync[5] + 1u;
    __threadfence();
  }
}
#endif
