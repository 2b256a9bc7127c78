// Decode GEMV: y = W · x' for one activation row, the weight-streaming core of a decode step.
//
//   x' = x                                      (norm_w == 0)
//   x' = norm_w * (x * rsqrt(mean(x²) + eps))   (fused HF LlamaRMSNorm of the input)
//   x' = bf16(x')                               (a16: the W8A16 path's 16-bit activations)
//
// W: [N, Kp] row-major; bf16, or E4M3 with one f32 scale per `qblock` elements of a row
// (S: [N, Kp / qblock]). A "chunk" is 16 bytes of one row (8 bf16 or 16 fp8 weights); each lane
// streams chunks of RW rows at once (RW x 16 bytes in flight, plus the next chunk's, per lane).
// Block: 256 threads = (8 / wk) row groups x wk k-splits of warps; a block covers (8 / wk) * RW rows.
// x' is staged once per block in shared memory, chunk-major by 16-byte part so that the lanes of a
// warp read consecutive 16-byte words (no bank conflicts).
//
// Epilogue (mode): 0 y[n] = acc; 1 y[n] += acc (residual add); 2 rows interleaved (gate_j, up_j):
// y[n / 2] = silu(acc[n]) * acc[n + 1]  (HF: act_fn(gate_proj(x)) * up_proj(x)).
//
// Fused norm statistics (v6, default in decode; VIVA_TENSOR_NORM_FUSE=0 turns it off): ss_out != 0 (mode 1 only): every block adds the sum
// of squares of the rows it just finished (y after the residual add) into *ss_out with one atomic per
// warp, so that the consumer GEMV (ss_in = the same slot) reads sum(x²) instead of reducing x itself.
// The slots are zeroed once per step by embed_rows (which writes slot 0 for the first layer).

#define GV_THREADS 256

// L2 prefetch of bytes [off, off + len) of `base` (weights only: constant data, so this may run before
// griddepcontrol.wait, while the previous kernel still runs). sm_90: bulk prefetch in 32 KB pieces.
__device__ __forceinline__ void l2_prefetch(const u8* base, size_t off, size_t len) {
#if __CUDA_ARCH__ >= 900
  len &= ~(size_t)15;
  for (size_t o = 0; o < len; o += 32768) {
    const u32 n = (u32)(len - o < 32768 ? len - o : 32768);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off + o), "r"(n) : "memory");
  }
#else
  for (size_t o = 0; o < len; o += 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(base + off + o));
#endif
}

// Block b < nb prefetches its 1/nb share of `total` bytes (16-byte aligned pieces).
__device__ __forceinline__ void l2_prefetch_share(const u8* base, size_t total, int b, int nb) {
  const size_t per = ((total + nb - 1) / nb + 15) & ~(size_t)15;
  const size_t off = (size_t)b * per;
  if (off < total) l2_prefetch(base, off, total - off < per ? total - off : per);
}

// 1 / RMS of x (HF LlamaRMSNorm's rsqrt(mean(x²) + eps)), block-wide: from the fused statistics slot when given
// (sum(x²) accumulated by the producer), else reduced here.
__device__ __forceinline__ float gv_norm_rs(const float* __restrict__ x, int K, float eps,
                                            const float* __restrict__ ss_in, float* red) {
  float ss;
  if (ss_in) {
    ss = __ldcg(ss_in);
  } else {
    float p = 0.f;
    for (int k = threadIdx.x; k < K; k += GV_THREADS) {
      const float v = x[k];
      p = fmaf(v, v, p);
    }
    ss = block_sum(p, red);
  }
  return 1.0f / sqrtf(ss / (float)K + eps);
}

template <bool FP8, int RW>
__device__ __forceinline__ void gemv_body(const u8* __restrict__ W, const float* __restrict__ S, int qblock, int N,
                                          int K, int Kp, const float* __restrict__ x,
                                          const float* __restrict__ norm_w, float eps, int a16,
                                          float* __restrict__ y, int mode, int wk, int pf,
                                          const float* __restrict__ ss_in, float* __restrict__ ss_out) {
  extern __shared__ float4 xs4[];
  __shared__ float red[32];
  __shared__ float part[8 * RW];
  __shared__ float fin[8 * RW];
  PDL_LAUNCH();
  constexpr int CH = FP8 ? 16 : 8;  // weights per chunk
  constexpr int PARTS = CH / 4;     // float4 words of x' per chunk
  float* xs = (float*)xs4;
  const int nch = Kp / CH;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int nwr = 8 / wk, wr = warp / wk, kq = warp % wk;
  const int rpb = nwr * RW;
  const int row0 = blockIdx.x * rpb + wr * RW;
  const size_t rowbytes = FP8 ? (size_t)Kp : (size_t)Kp * 2;
  const int nsc = FP8 ? Kp / qblock : 1;

  const u8* wp[RW];
  const float* sp[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int n = min(row0 + r, N - 1);
    wp[r] = W + (size_t)n * rowbytes;
    sp[r] = FP8 ? S + (size_t)n * nsc : nullptr;
  }

  // pf > 0: the first pf blocks (one thread each) prefetch the whole matrix (weights and scales) into
  // L2 now, so that the streaming after the wait reads L2 instead of device memory.
  if (pf > 0 && (int)blockIdx.x < pf && tid == 0) {
    const int nb = min(pf, (int)gridDim.x);
    l2_prefetch_share(W, (size_t)N * rowbytes, blockIdx.x, nb);
    if (FP8) l2_prefetch_share((const u8*)S, (size_t)N * nsc * 4, blockIdx.x, nb);
  }
  // The first chunk's weights do not depend on the previous kernel: start streaming them now.
  int c = kq * 32 + lane;
  uint4 wv[RW];
  float sv[RW];
  if (c < nch) {
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      wv[r] = ld_stream(wp[r] + (size_t)c * 16);
      sv[r] = FP8 ? __ldg(sp[r] + (c * 16) / qblock) : 1.f;
    }
  }
  PDL_WAIT();

  const float rs = norm_w ? gv_norm_rs(x, K, eps, ss_in, red) : 1.f;
  for (int k = tid; k < Kp; k += GV_THREADS) {
    float v = 0.f;
    if (k < K) {
      v = x[k];
      if (norm_w) v = norm_w[k] * (v * rs);
      if (a16) v = bf16_round(v);
    }
    const int cc = k / CH, p = (k % CH) >> 2;
    xs[((p * nch + cc) << 2) + (k & 3)] = v;
  }
  __syncthreads();

  float acc[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) acc[r] = 0.f;

  while (c < nch) {
    uint4 cw[RW];
    float cs[RW];
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      cw[r] = wv[r];
      cs[r] = sv[r];
    }
    const int cn = c + wk * 32;
    if (cn < nch) {
#pragma unroll
      for (int r = 0; r < RW; ++r) {
        wv[r] = ld_stream(wp[r] + (size_t)cn * 16);
        sv[r] = FP8 ? __ldg(sp[r] + (cn * 16) / qblock) : 1.f;
      }
    }
    float xv[CH];
#pragma unroll
    for (int p = 0; p < PARTS; ++p) {
      const float4 t = xs4[p * nch + c];
      xv[4 * p] = t.x;
      xv[4 * p + 1] = t.y;
      xv[4 * p + 2] = t.z;
      xv[4 * p + 3] = t.w;
    }
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      const u32 u[4] = {cw[r].x, cw[r].y, cw[r].z, cw[r].w};
      if (FP8) {
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float f[4];
          fp8x4_to_f32(u[j], f);
#pragma unroll
          for (int i = 0; i < 4; ++i) s = fmaf(f[i], xv[4 * j + i], s);
        }
        acc[r] = fmaf(s, cs[r], acc[r]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc[r] = fmaf(__uint_as_float(u[j] << 16), xv[2 * j], acc[r]);
          acc[r] = fmaf(__uint_as_float(u[j] & 0xffff0000u), xv[2 * j + 1], acc[r]);
        }
      }
    }
    c = cn;
  }

#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const float v = warp_sum(acc[r]);
    if (lane == 0) part[kq * rpb + wr * RW + r] = v;
  }
  __syncthreads();
  if (tid < rpb) {
    float v = 0.f;
    for (int q = 0; q < wk; ++q) v += part[q * rpb + tid];
    fin[tid] = FP8 ? v * FP8_UNIT : v;
  }
  __syncthreads();
  if (tid < rpb) {
    const int n = blockIdx.x * rpb + tid;
    if (n < N) {
      const float v = fin[tid];
      if (mode == 0) {
        y[n] = v;
      } else if (mode == 1) {
        const float nv = y[n] + v;
        y[n] = nv;
        fin[tid] = nv;
      } else if ((tid & 1) == 0) {
        y[n >> 1] = silu_mul(v, fin[tid + 1]);
      }
    }
  }
  if (ss_out && mode == 1 && tid < 64) {  // rpb <= 64: whole warps 0-1, lanes past rpb add 0
    const int n = blockIdx.x * rpb + tid;
    const float nv = (tid < rpb && n < N) ? fin[tid] : 0.f;
    const float q = warp_sum(nv * nv);
    if (lane == 0) atomicAdd(ss_out, q);
  }
}

// RW = rows per warp: 8 streams more bytes per lane but needs ~150 registers (1 block / SM);
// 4 fits 3 blocks / SM. The host picks (VIVA_TENSOR_GEMV_RW, default 4).
#define GEMV_ENTRY(name, FP8, RW, MINB)                                                                         \
  extern "C" __global__ void __launch_bounds__(GV_THREADS, MINB)                                                \
      name(const u8* W, const float* S, int qblock, int N, int K, int Kp, const float* x, const float* norm_w,  \
           float eps, int a16, float* y, int mode, int wk, int pf, const float* ss_in, float* ss_out) {        \
    gemv_body<FP8, RW>(W, S, qblock, N, K, Kp, x, norm_w, eps, a16, y, mode, wk, pf, ss_in, ss_out);           \
  }
GEMV_ENTRY(gemv_bf16_r4, false, 4, 3)
GEMV_ENTRY(gemv_bf16_r8, false, 8, 1)
GEMV_ENTRY(gemv_fp8_r4, true, 4, 3)
GEMV_ENTRY(gemv_fp8_r8, true, 8, 1)

// ------------------------------------------------------------------------------------------------------------
// v9: the FP8 decode GEMV on the tensor cores, each warp streaming through its own cp.async ring
// (docs/gpu.md, v9). Default for FP8 weights with blocks of 64 or 128; the kernels above remain for bf16,
// blocks of 16/32, and as `VIVA_TENSOR_GEMV=cuda-core`.
//
// Why: gemv_body gives each block 16 rows and each lane 2 chunks, so a block's life is ramp-up, x' staging
// (K floats from L2, once per 16 rows), one or two loads and a tail, and only the first chunk is in flight
// before griddepcontrol.wait. Here a few blocks per SM stage x' once each, their warps keep R - 1 pieces of
// 2 KB in flight, and the first pieces of every warp (TC_PREWAIT, v11) are requested before the wait. (A first
// form with 8-row tiles, weights as the B operand and x' in every A row, docs/gpu.md v9a, read x' from shared
// memory 4x as often and issued twice the mmas: 1100 tok/s against 1239 on the TinyLlama shape, best shape of
// each, same call.)
//
// Work: tiles of 16 rows (gate/up's interleaved pairs stay in one tile); block b takes tiles
// [b T / G, (b + 1) T / G) and splits their pieces (a piece = 16 rows x 128 bytes of K, tile-major) evenly
// over its 8 warps. Lane (g, q) = (lane / 4, lane % 4) copies bytes [16q, 16q + 16) and [64 + 16q, 80 + 16q)
// of rows g and g + 8 of the piece (each load instruction of a warp reads 8 rows x 64 contiguous bytes)
// and, if q == 0, the f32 block scales of rows g and g + 8: exactly the data it reads back, so the ring needs
// no barrier (cp.async.wait_group per thread). A slot is refilled one iteration after it was read.
// Math: mma.sync m16n8k16 (f16 x f16 -> f32) with A = the 16 weight rows x 16 k, converted exactly from E4M3
// (cvt.rn.f16x2.e4m3x2), and B = x' in column 0 (lanes g == 0 load it; the other columns are zero, so the
// other lanes load nothing). The 16 k of an mma are bytes 16q + 4j .. 16q + 4j + 3 of a 64-byte segment, as
// k = 2q, 2q + 1, 2q + 8, 2q + 9, applied to x' and the weights alike. A segment's four mmas accumulate in
// the tensor pipe, then its f32 block scale is applied in f32. D column 0 (lanes q == 0) holds rows g and
// g + 8; a warp adds its row sums into the block's shared accumulators (one shared atomic per row and tile it
// touched), and the epilogue (modes and fused norm statistics as gemv_body) writes the block's rows after a
// block barrier.
// x' = bf16-rounded activation (A16) times 2^e in f16 with max |x'| < 2^14, exact (see persist.cu); the
// epilogue multiplies by 2^-e.
//
// Dynamic shared memory: ring (8 warps x R x TC_SLOT) | x' (Kp f16) | row sums (tiles of the block x 16 f32).

#define TC_WARPS 8
#define TC_ROWS 16
// 16 rows x 128 bytes of weights as four 512-byte quarters (row g / g + 8 x segment 0 / 1, lane-major) + the
// scales of lanes q == 0 (16 bytes each: row g segment 0, 1, row g + 8 segment 0, 1).
#define TC_SLOT 2176

__device__ __forceinline__ void cp_async16(u32 dst, const void* src, u64 policy, bool hint) {
  if (hint) {
    asm volatile("cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
                 "l"(policy)
                 : "memory");
  } else {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
  }
}
__device__ __forceinline__ void cp_async8(u32 dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async4(u32 dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// Bench-only flags (VIVA_TENSOR_TC_FLAGS; wrong results with bits 2 and 4): 1 no L2 hints on the weight copies,
// 2 skip the math, 4 skip the weight copies (the ring is read as it is: the kernel chain without weight traffic).
#define TC_NOHINT 1
#define TC_NOMATH 2
#define TC_NOLOAD 4
// 32: x''s f16 shift from the block's max even where the host gave a static one or a producer's max (the v9-v11
// staging); 128: ignore the producer's max only.
#define TC_DYNSHIFT 32
#define TC_NOXMAX 128
// (F + 1) << 8 (experiments): F ring slots requested before griddepcontrol.wait instead of TC_PREWAIT.
#define TC_PREWAIT_SHIFT 8

// Ring slots each warp requests before griddepcontrol.wait; the rest go out once x' is staged. With all R requested
// early, x''s loads after the wait queue behind the SM's own weight copies. Measured on an H100 (docs/gpu.md v11):
// 4 of 6 slots +3.5% on the TinyLlama shape against all 6 (0 to 3 and 5 were slower), within 1% on Llama-2-7B.
// The host asks for the whole ring for matrices of 32 MB or more (v12), through the flags.
#define TC_PREWAIT 4

// Lane (g, q)'s copies of piece (tile, pc) (K bytes [128 pc, 128 pc + 128) of the tile's 16 rows) into `slot`.
__device__ __forceinline__ void tc_issue(const u8* __restrict__ W, const float* __restrict__ S, bool qb64, bool row,
                                         int N, int Kp, int tile, int pc, u32 slot, int lane, u64 policy, int flags) {
  if (flags & TC_NOLOAD) return;
  const int g = lane >> 2, q = lane & 3;
  const bool hint = !(flags & TC_NOHINT);
  const int ra = min(tile * TC_ROWS + g, N - 1), rb = min(tile * TC_ROWS + g + 8, N - 1);
  const u8* sa = W + (size_t)ra * Kp + pc * 128 + 16 * q;
  const u8* sb = W + (size_t)rb * Kp + pc * 128 + 16 * q;
  cp_async16(slot + 16 * lane, sa, policy, hint);
  cp_async16(slot + 512 + 16 * lane, sa + 64, policy, hint);
  cp_async16(slot + 1024 + 16 * lane, sb, policy, hint);
  cp_async16(slot + 1536 + 16 * lane, sb + 64, policy, hint);
#ifdef TC_SCALE_PROBE
  return;  // v14 probe (-DTC_SCALE_PROBE through VIVA_TENSOR_NVRTC_DEFINES, wrong results): no scale copies
#endif
  if (q == 0 && !row) {  // (per-row scales are applied in the epilogue)
    // Scales of rows g, g + 8: blocks 2pc, 2pc + 1 (qblock 64, adjacent: one 8-byte copy per row) or pc (128).
    const int nsc = qb64 ? Kp >> 6 : Kp >> 7, si = qb64 ? 2 * pc : pc;
    const u32 d = slot + 2048 + 16 * g;
    if (qb64) {
      cp_async8(d, S + (size_t)ra * nsc + si);
      cp_async8(d + 8, S + (size_t)rb * nsc + si);
    } else {
      cp_async4(d, S + (size_t)ra * nsc + si);
      cp_async4(d + 8, S + (size_t)rb * nsc + si);
    }
  }
}

// v13: with TC_TMA (the host's -DTC_TMA=1, `VIVA_TENSOR_TC_TMA=1`, sm_90+) the ring is filled by the TMA unit,
// completing on one mbarrier per slot, instead of per-thread cp.async (~140 16-byte copies a piece, all in the SM's
// load queue, where x's loads after griddepcontrol.wait wait behind them). Lane 0 issues two copies a piece: the
// 16 rows x 128 bytes through a tensor map (W is then its address) whose 4D view - 64 bytes, row % 8 (stride Kp),
// 64-byte segment (stride 64), row / 8 (stride 8 Kp) - lands a 64 x 8 x 2 x 2 box in shared memory as exactly the
// slot's four quarters; and the piece's scales, stored by the host in piece order (pack::pack_tc_scales: 128
// bytes for blocks of 64, 64 for 128). (A first form with one 64-byte bulk copy per lane, 33 a piece, streamed at
// 1.0-1.5 TB/s: docs/gpu.md v13.)
#ifndef TC_TMA
#define TC_TMA 0
#endif
#if TC_TMA && __CUDA_ARCH__ >= 900
#define TC_USE_TMA 1
#else
#define TC_USE_TMA 0
#endif
#if TC_USE_TMA
__device__ __forceinline__ void tc_issue_bulk(const u8* __restrict__ tmap, const float* __restrict__ Stc, bool qb64,
                                              int Kp, int tile, int pc, u8* slot, u64* bar, int lane, u64 policy,
                                              int flags) {
  __syncwarp();  // every lane has read the slot's previous piece
  if (lane != 0) return;
  if (flags & TC_NOLOAD) {
    mbar_arrive(bar);
    return;
  }
  const int sc_bytes = qb64 ? 128 : 64;
  mbar_expect(bar, 2048 + sc_bytes);
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%2, "
      "%3, %4, %5}], [%6], %7;" ::"r"(smem_u32(slot)),
      "l"(tmap), "r"(0), "r"(0), "r"(2 * pc), "r"(2 * tile), "r"(smem_u32(bar)), "l"(policy)
      : "memory");
  bulk_g2s(slot + 2048, (const u8*)Stc + ((size_t)tile * (Kp >> 7) + pc) * sc_bytes, sc_bytes, bar, policy);
}
#endif

// x' into xs16 for the block (all threads): bf16(norm_w * x * rs) or bf16(x), times 2^e, as f16, zero-padded
// to Kp; zeroes accs[0, nacc). Returns 2^-e. e, in one pass: from *xmax = max |bf16(x)| where the kernel that
// wrote x also reduced that (the same e as the block's own max), else `xsh` where the host could bound |x'| in
// advance (an RMSNorm input: |x'| <= max|norm_w| sqrt(K)); otherwise from the block's max |x'|, which costs a
// block reduction and a second pass (docs/gpu.md v12). Either way max |x' 2^e| < 2^14, and x' 2^e is the bf16
// value exactly unless it is below 2^-17 (f16 subnormals), i.e. 2^-(17 + e) before scaling.
#define TC_XSH_DYN 1000
__device__ __forceinline__ float tc_stage_x(const float* __restrict__ x, const float* __restrict__ norm_w, float eps,
                                            int K, int Kp, const float* __restrict__ ss_in, u16* xs16, float* accs,
                                            int nacc, float* red, int xsh, const float* __restrict__ xmax, u64* tl) {
  const int tid = threadIdx.x;
  constexpr int NB = 8;
  if (xmax) xsh = f16_shift(__ldcg(xmax));
  const float rs = norm_w ? gv_norm_rs(x, K, eps, ss_in, red) : 1.f;
  const bool fixed = xsh != TC_XSH_DYN;
  const float fup = fixed ? exp2i(xsh) : 1.f;
  float amax = 0.f;
  for (int base = 0; base < Kp; base += NB * GV_THREADS) {
    float v[NB], nw[NB];
#pragma unroll
    for (int j = 0; j < NB; ++j) {  // all loads of the batch first: one L2 round trip
      const int k = base + j * GV_THREADS + tid;
      v[j] = k < K ? x[k] : 0.f;
      nw[j] = (norm_w && k < K) ? __ldg(norm_w + k) : 1.f;
    }
#pragma unroll
    for (int j = 0; j < NB; ++j) {
      const int k = base + j * GV_THREADS + tid;
      if (k < Kp) {
        const u32 b = f32_to_bf16(norm_w ? nw[j] * (v[j] * rs) : v[j]);
        if (fixed) {
          xs16[k] = (u16)f32_to_f16_bits(bf16_to_f32(b) * fup);
        } else {
          xs16[k] = (u16)b;
          amax = fmaxf(amax, fabsf(bf16_to_f32(b)));
        }
      }
    }
  }
  tl_mark(tl, 4);
  for (int i = tid; i < nacc; i += GV_THREADS) accs[i] = 0.f;
  if (fixed) {
    __syncthreads();
    return exp2i(-xsh);
  }
  amax = block_max(amax, red);
  const int sh = f16_shift(amax);
  const float up = exp2i(sh);
  // Each thread rescales the elements it wrote itself (no barrier needed before this pass).
  for (int base = 0; base < Kp; base += NB * GV_THREADS) {
#pragma unroll
    for (int j = 0; j < NB; ++j) {
      const int k = base + j * GV_THREADS + tid;
      if (k < Kp) xs16[k] = f32_to_f16_bits(bf16_to_f32(xs16[k]) * up);
    }
  }
  __syncthreads();
  return exp2i(-sh);
}

template <int R, bool ROWSC>
__device__ __forceinline__ void gemv_tc_body(const u8* __restrict__ W, const float* __restrict__ S, int qblock, int N,
                                             int K, int Kp, const float* __restrict__ x,
                                             const float* __restrict__ norm_w, float eps, float* __restrict__ y,
                                             int mode, const float* __restrict__ ss_in, float* __restrict__ ss_out,
                                             int flags, int xsh, const float* __restrict__ xmax_in,
                                             float* __restrict__ xmax_out, u64* tl, const u8* __restrict__ l2pf,
                                             long long l2pf_bytes) {
  extern __shared__ __align__(128) u8 tc_smem[];
  __shared__ float red[32];
  PDL_LAUNCH();
  tl_mark(tl, 0);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
  const int T = (N + TC_ROWS - 1) / TC_ROWS, G = gridDim.x, b = blockIdx.x;
  const int t0 = (int)((long long)b * T / G), t1 = (int)((long long)(b + 1) * T / G);
  const int nps = Kp >> 7;
  const int P = (t1 - t0) * nps;
  const int p0 = (int)((long long)warp * P / TC_WARPS), p1 = (int)((long long)(warp + 1) * P / TC_WARPS);
  const bool qb64 = qblock == 64;
  // v14: one scale per row (ROWSC, the gemv_fp8_tcr* kernels for pack::FP8_ROW): no scales in the ring; the
  // block's row scales are copied once into shared memory (srow) with its first ring group and applied in the
  // epilogue.
  constexpr bool row = ROWSC && !TC_USE_TMA;
  // [mbarriers (TMA ring only)] | ring | x' | row sums | row scales (per-row scales only)
  // (the mbarriers padded to 128 bytes: the TMA unit writes slots at 128-byte aligned addresses)
  constexpr int BARB = TC_USE_TMA ? (TC_WARPS * R * 8 + 127) / 128 * 128 : 0;
  u64* bars = (u64*)tc_smem + warp * R;
  u8* ring = tc_smem + BARB + warp * (R * TC_SLOT);
  u16* xs16 = (u16*)(tc_smem + BARB + TC_WARPS * R * TC_SLOT);
  float* accs = (float*)(xs16 + Kp);
  float* srow = accs + (t1 - t0) * TC_ROWS;
  const u32 ring_s = smem_u32(ring);
  u64 policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));

  // Issue cursor: the next piece, p0 + issued = (tile it, column ic). Each call copies it (if any is left) into
  // ring slot `slot` and commits one cp.async group, so that group i is always piece p0 + i.
  int it = t0 + p0 / nps, ic = p0 % nps, issued = 0;
#if TC_USE_TMA
  if (lane == 0) {
    for (int i = 0; i < R; ++i) mbar_init(bars + i, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncwarp();
  auto issue_next = [&](int slot) {
    if (p0 + issued < p1) {
      tc_issue_bulk(W, S, qb64, Kp, it, ic, ring + slot * TC_SLOT, bars + slot, lane, policy, flags);
      ++issued;
      if (++ic == nps) ic = 0, ++it;
    }
  };
#else
  (void)bars;
  auto issue_next = [&](int slot) {
    if (p0 + issued < p1) {
      tc_issue(W, S, qb64, row, N, Kp, it, ic, ring_s + slot * TC_SLOT, lane, policy, flags);
      ++issued;
      if (++ic == nps) ic = 0, ++it;
    }
    cp_commit();
  };
#endif
  if (row) {
    const int ra = t0 * TC_ROWS, nra = min(t1 * TC_ROWS, N) - ra;
    for (int i = tid; i < nra; i += GV_THREADS) cp_async4(smem_u32(srow + i), S + ra + i);
  }
  // The weights do not depend on the previous kernel: the first TC_PREWAIT slots are filled before waiting for it.
  const int pf = (flags >> TC_PREWAIT_SHIFT) & 15, pre = min(R, pf ? pf - 1 : TC_PREWAIT);
#pragma unroll
  for (int i = 0; i < R; ++i)
    if (i < pre) issue_next(i);
  PDL_WAIT();
  tl_mark(tl, 1);
  const int r0 = t0 * TC_ROWS, nr = min(t1 * TC_ROWS, N) - r0;
  // A residual epilogue's first row per thread, read now in the same round trip as x (not after the pieces).
  const float y0 = mode == 1 && tid < nr ? y[r0 + tid] : 0.f;
  const float inv = tc_stage_x(x, norm_w, eps, K, Kp, ss_in, xs16, accs, (t1 - t0) * TC_ROWS, red,
                               (flags & TC_DYNSHIFT) ? TC_XSH_DYN : xsh,
                               (flags & (TC_DYNSHIFT | TC_NOXMAX)) ? nullptr : xmax_in, tl) *
                    FP8_UNIT;
  for (int i = pre; i < R; ++i) issue_next(i);
  // The block's share of l2pf_bytes of a later kernel's weights requested into L2 (CudaModel's gu_pf_plan: the o
  // projection, for gate/up's first MiB).
  if (l2pf_bytes > 0 && tid == GV_THREADS - 32) l2_prefetch_share(l2pf, (size_t)l2pf_bytes, b, G);
  tl_mark(tl, 2);

  // Consume cursor: local tile ct, column cc.
  int ct = p0 / nps, cc = p0 % nps, slot = 0;
  u32 phase = 0;  // TMA ring: parity of the slots' current fill
  float acc0 = 0.f, acc8 = 0.f;  // rows g and g + 8 (lanes q == 0)
  for (int p = p0; p < p1; ++p) {
    // Refill the slot read in the previous iteration (its values are in registers by now).
    if (p > p0) issue_next(slot == 0 ? R - 1 : slot - 1);
#if TC_USE_TMA
    mbar_wait(bars + slot, phase);  // piece p has landed
#else
    cp_wait<R - 1>();  // this thread's copies of piece p have landed
#endif
    if (!(flags & TC_NOMATH)) {
      const u8* sl = ring + slot * TC_SLOT;
      const uint4 wa0 = *(const uint4*)(sl + 16 * lane), wa1 = *(const uint4*)(sl + 512 + 16 * lane);
      const uint4 wb0 = *(const uint4*)(sl + 1024 + 16 * lane), wb1 = *(const uint4*)(sl + 1536 + 16 * lane);
      // x' of this lane's k (column 0 of B, lanes g == 0); zero elsewhere.
      uint4 xa = make_uint4(0u, 0u, 0u, 0u), xb = xa, xc = xa, xd = xa;
      if (g == 0) {
        const u16* xp = xs16 + cc * 128 + 16 * q;
        xa = *(const uint4*)xp;
        xb = *(const uint4*)(xp + 8);
        xc = *(const uint4*)(xp + 64);
        xd = *(const uint4*)(xp + 72);
      }
      const u32 ra[2][4] = {{wa0.x, wa0.y, wa0.z, wa0.w}, {wa1.x, wa1.y, wa1.z, wa1.w}};
      const u32 rb[2][4] = {{wb0.x, wb0.y, wb0.z, wb0.w}, {wb1.x, wb1.y, wb1.z, wb1.w}};
      const u32 xv[2][8] = {{xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w},
                            {xc.x, xc.y, xc.z, xc.w, xd.x, xd.y, xd.z, xd.w}};
      float d[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int sg = 0; sg < 2; ++sg) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          u32 alo, ahi, blo, bhi;
          fp8x4_to_f16x2(ra[sg][j], &alo, &ahi);  // row g: (k 2q, 2q+1), (k 2q+8, 2q+9)
          fp8x4_to_f16x2(rb[sg][j], &blo, &bhi);  // row g + 8
          mma_f16_a4(d[sg], alo, blo, ahi, bhi, xv[sg][2 * j], xv[sg][2 * j + 1]);
        }
      }
      if (q == 0 && row) {
        acc0 += d[0][0] + d[1][0];
        acc8 += d[0][2] + d[1][2];
      } else if (q == 0) {
#if TC_USE_TMA
        float4 sc;
        if (qb64) {
          sc = *(const float4*)(sl + 2048 + 16 * g);
        } else {
          const float2 s2 = *(const float2*)(sl + 2048 + 8 * g);
          sc = make_float4(s2.x, s2.x, s2.y, s2.y);
        }
#elif defined(TC_SCALE_PROBE)
        const float4 sc = make_float4(1.f, 1.f, 1.f, 1.f);  // the probe: what per-row scales would leave
#else
        const float4 sc = *(const float4*)(sl + 2048 + 16 * g);
#endif
        acc0 = fmaf(d[0][0], sc.x, fmaf(d[1][0], qb64 ? sc.y : sc.x, acc0));
        acc8 = fmaf(d[0][2], sc.z, fmaf(d[1][2], qb64 ? sc.w : sc.z, acc8));
      }
    }
    if (++cc == nps || p + 1 == p1) {  // leaving a tile: its row sums go to the block
      if (q == 0) {
        atomicAdd(accs + ct * TC_ROWS + g, acc0);
        atomicAdd(accs + ct * TC_ROWS + g + 8, acc8);
      }
      acc0 = 0.f;
      acc8 = 0.f;
      cc = 0;
      ++ct;
    }
    if (slot == R - 1) {
      slot = 0;
      phase ^= 1;
    } else {
      ++slot;
    }
  }
  tl_mark(tl, 3);
#if !TC_USE_TMA
  if (row) cp_wait<0>();  // this thread's row scales (a warp without pieces never waited)
#endif
  __syncthreads();
  float ssp = 0.f, amx = 0.f;
  for (int i = tid; i < nr; i += GV_THREADS) {
    const int n = r0 + i;
    const float v = accs[i] * inv * (row ? srow[i] : 1.f);
    if (mode == 0) {
      y[n] = v;
    } else if (mode == 1) {
      const float nv = (i == tid ? y0 : y[n]) + v;
      y[n] = nv;
      ssp = fmaf(nv, nv, ssp);
    } else if ((i & 1) == 0) {
      const float hv = silu_mul(v, accs[i + 1] * inv * (row ? srow[i + 1] : 1.f));
      y[n >> 1] = hv;
      amx = fmaxf(amx, fabsf(bf16_round(hv)));
    }
  }
  // max |bf16(y)| of a silu epilogue for the next GEMV's x' shift (zeroed by embed_rows each step).
  if (xmax_out && mode == 2) {
    amx = warp_max(amx);
    if ((tid & 31) == 0) atomicMax((unsigned*)xmax_out, __float_as_uint(amx));
  }
  if (ss_out && mode == 1) {
    ssp = block_sum(ssp, red);
    if (tid == 0) atomicAdd(ss_out, ssp);
  }
  tl_mark(tl, 5);
}

// R = ring slots per warp (R - 1 pieces of 2 KB in flight); the host picks R and the blocks per SM
// (VIVA_TENSOR_TC_RING / _BPS). At most 85 registers, so that 3 blocks fit an SM.
#define GEMV_TC_ENTRY(name, R, ROWSC)                                                                            \
  extern "C" __global__ void __launch_bounds__(GV_THREADS, 3)                                                    \
      name(const u8* W, const float* S, int qblock, int N, int K, int Kp, const float* x, const float* norm_w,  \
           float eps, float* y, int mode, const float* ss_in, float* ss_out, int flags, int xsh,                 \
           const float* xmax_in, float* xmax_out, u64* tl, const u8* l2pf, long long l2pf_bytes) {              \
    gemv_tc_body<R, ROWSC>(W, S, qblock, N, K, Kp, x, norm_w, eps, y, mode, ss_in, ss_out, flags, xsh, xmax_in,  \
                           xmax_out, tl, l2pf, l2pf_bytes);                                                      \
  }
GEMV_TC_ENTRY(gemv_fp8_tc2, 2, false)
GEMV_TC_ENTRY(gemv_fp8_tc3, 3, false)
GEMV_TC_ENTRY(gemv_fp8_tc4, 4, false)
GEMV_TC_ENTRY(gemv_fp8_tc5, 5, false)
GEMV_TC_ENTRY(gemv_fp8_tc6, 6, false)
// v14: one FP8 scale per row (pack::FP8_ROW; qblock = Kp), applied in the epilogue.
GEMV_TC_ENTRY(gemv_fp8_tcr2, 2, true)
GEMV_TC_ENTRY(gemv_fp8_tcr3, 3, true)
GEMV_TC_ENTRY(gemv_fp8_tcr4, 4, true)
GEMV_TC_ENTRY(gemv_fp8_tcr5, 5, true)
GEMV_TC_ENTRY(gemv_fp8_tcr6, 6, true)
