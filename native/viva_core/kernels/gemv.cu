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

  float rs = 1.f;
  if (norm_w && ss_in) {
    rs = 1.0f / sqrtf(__ldcg(ss_in) / (float)K + eps);
  } else if (norm_w) {
    float ss = 0.f;
    for (int k = tid; k < K; k += GV_THREADS) {
      const float v = x[k];
      ss = fmaf(v, v, ss);
    }
    ss = block_sum(ss, red);
    rs = 1.0f / sqrtf(ss / (float)K + eps);
  }
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
