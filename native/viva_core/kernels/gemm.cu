// Prefill GEMM on the tensor cores: Y[M, N] (op)= X[M, K] · W[N, Kp]ᵀ, mma.sync m16n8k16 bf16 -> f32.
//
// X: f32 rows (stride K; columns K..Kp read as zero). Staged in shared memory as bf16; with SPLIT
// (the bf16-weight path) also the remainder x - bf16(x) as a second bf16 operand, so the product
// carries ~16 mantissa bits of x (close to the f32 CPU reference). Without SPLIT (the W8A16 path) x
// is rounded to bf16, as the contract's 16-bit activations.
// W: bf16, or E4M3 with f32 scales per `qblock` (>= 16) elements; fp8 tiles are dequantized
// (q * scale, rounded to bf16) into shared memory.
// Tile 64 x 128 x 64, 256 threads = 2 x 4 warps of 32 x 32; global loads of tile k+1 are issued
// before the mma work of tile k. Epilogue modes as in gemv.cu (0 store, 1 add, 2 interleaved GLU,
// whose output row stride is N / 2).

#define GM_BM 64
#define GM_BN 128
#define GM_BK 64
#define GM_LD (GM_BK + 8)  // shared row stride in bf16 (144 bytes): conflict-free fragment loads

__device__ __forceinline__ void mma_bf16(float* d, const u32* a, const u32* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <bool FP8, bool SPLIT>
__device__ __forceinline__ void gemm_body(const float* __restrict__ X, int M, int K, const u8* __restrict__ W,
                                          const float* __restrict__ S, int qblock, int N, int Kp,
                                          float* __restrict__ Y, int mode) {
  __shared__ __align__(16) u16 As[GM_BM * GM_LD];
  __shared__ __align__(16) u16 Al[SPLIT ? GM_BM * GM_LD : 8];
  __shared__ __align__(16) u16 Bs[GM_BN * GM_LD];
  PDL_LAUNCH();
  PDL_WAIT();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;
  const int g = lane >> 2, tq = lane & 3;
  const int m0 = blockIdx.y * GM_BM, n0 = blockIdx.x * GM_BN;
  const int ar = tid >> 2, ac = (tid & 3) * 16;  // A staging: row, first of 16 columns
  const int br = tid >> 1, bc = (tid & 1) * 32;  // B staging: row, first of 32 columns
  const int nsc = FP8 ? Kp / qblock : 1;

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  float ra[16];
  uint4 rb[4];
  float rsc[2];

  auto load = [&](int k0) {
    const int m = m0 + ar;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const int k = k0 + ac + j;
      ra[j] = (m < M && k < K) ? X[(size_t)m * K + k] : 0.f;
    }
    const int n = n0 + br;
    if (n < N) {
      if (FP8) {
        const u8* p = W + (size_t)n * Kp + k0 + bc;
        rb[0] = ld_stream(p);
        rb[1] = ld_stream(p + 16);
        rsc[0] = __ldg(S + (size_t)n * nsc + (k0 + bc) / qblock) * FP8_UNIT;
        rsc[1] = __ldg(S + (size_t)n * nsc + (k0 + bc + 16) / qblock) * FP8_UNIT;
      } else {
        const u8* p = W + ((size_t)n * Kp + k0 + bc) * 2;
#pragma unroll
        for (int j = 0; j < 4; ++j) rb[j] = ld_stream(p + 16 * j);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) rb[j] = make_uint4(0, 0, 0, 0);
      rsc[0] = rsc[1] = 0.f;
    }
  };

  auto store = [&]() {
    u32 hi[8], lo[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const u32 h0 = f32_to_bf16(ra[2 * j]), h1 = f32_to_bf16(ra[2 * j + 1]);
      hi[j] = h0 | (h1 << 16);
      if (SPLIT) {
        const u32 l0 = f32_to_bf16(ra[2 * j] - bf16_to_f32(h0));
        const u32 l1 = f32_to_bf16(ra[2 * j + 1] - bf16_to_f32(h1));
        lo[j] = l0 | (l1 << 16);
      }
    }
    uint4* a = (uint4*)(As + ar * GM_LD + ac);
    a[0] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
    a[1] = make_uint4(hi[4], hi[5], hi[6], hi[7]);
    if (SPLIT) {
      uint4* al = (uint4*)(Al + ar * GM_LD + ac);
      al[0] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
      al[1] = make_uint4(lo[4], lo[5], lo[6], lo[7]);
    }
    uint4* b = (uint4*)(Bs + br * GM_LD + bc);
    if (FP8) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const u32 u[4] = {rb[h].x, rb[h].y, rb[h].z, rb[h].w};
        u32 o[8];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float f[4];
          fp8x4_to_f32(u[j], f);
          o[2 * j] = f32_to_bf16(f[0] * rsc[h]) | (f32_to_bf16(f[1] * rsc[h]) << 16);
          o[2 * j + 1] = f32_to_bf16(f[2] * rsc[h]) | (f32_to_bf16(f[3] * rsc[h]) << 16);
        }
        b[2 * h] = make_uint4(o[0], o[1], o[2], o[3]);
        b[2 * h + 1] = make_uint4(o[4], o[5], o[6], o[7]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = rb[j];
    }
  };

  load(0);
  store();
  __syncthreads();
  for (int k0 = 0; k0 < Kp; k0 += GM_BK) {
    const bool more = k0 + GM_BK < Kp;
    if (more) load(k0 + GM_BK);
#pragma unroll
    for (int kk = 0; kk < GM_BK; kk += 16) {
      u32 a[2][4], al[2][4], b[4][2];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int r = wm * 32 + mt * 16 + g;
        const int c = kk + tq * 2;
        a[mt][0] = *(const u32*)(As + r * GM_LD + c);
        a[mt][1] = *(const u32*)(As + (r + 8) * GM_LD + c);
        a[mt][2] = *(const u32*)(As + r * GM_LD + c + 8);
        a[mt][3] = *(const u32*)(As + (r + 8) * GM_LD + c + 8);
        if (SPLIT) {
          al[mt][0] = *(const u32*)(Al + r * GM_LD + c);
          al[mt][1] = *(const u32*)(Al + (r + 8) * GM_LD + c);
          al[mt][2] = *(const u32*)(Al + r * GM_LD + c + 8);
          al[mt][3] = *(const u32*)(Al + (r + 8) * GM_LD + c + 8);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int r = wn * 32 + nt * 8 + g;
        b[nt][0] = *(const u32*)(Bs + r * GM_LD + kk + tq * 2);
        b[nt][1] = *(const u32*)(Bs + r * GM_LD + kk + tq * 2 + 8);
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          mma_bf16(acc[mt][nt], a[mt], b[nt]);
          if (SPLIT) mma_bf16(acc[mt][nt], al[mt], b[nt]);
        }
    }
    __syncthreads();
    if (more) {
      store();
      __syncthreads();
    }
  }

#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int row = m0 + wm * 32 + mt * 16 + g + 8 * hh;
        const int col = n0 + wn * 32 + nt * 8 + tq * 2;
        if (row >= M) continue;
        const float v0 = acc[mt][nt][2 * hh], v1 = acc[mt][nt][2 * hh + 1];
        if (mode == 2) {
          if (col + 1 < N) Y[(size_t)row * (N / 2) + col / 2] = silu_mul(v0, v1);
        } else {
          float* yr = Y + (size_t)row * N;
          if (col < N) yr[col] = mode == 1 ? yr[col] + v0 : v0;
          if (col + 1 < N) yr[col + 1] = mode == 1 ? yr[col + 1] + v1 : v1;
        }
      }
}

extern "C" __global__ void __launch_bounds__(256) gemm_bf16(const float* X, int M, int K, const u8* W, const float* S,
                                                            int qblock, int N, int Kp, float* Y, int mode) {
  gemm_body<false, true>(X, M, K, W, S, qblock, N, Kp, Y, mode);
}

extern "C" __global__ void __launch_bounds__(256) gemm_fp8(const float* X, int M, int K, const u8* W, const float* S,
                                                           int qblock, int N, int Kp, float* Y, int mode) {
  gemm_body<true, false>(X, M, K, W, S, qblock, N, Kp, Y, mode);
}

// ---- cuBLAS prefill path (docs/gpu.md, v7): helpers around a library bf16 GEMM (f32 accumulation).

// FP8 E4M3 [N, Kp] + f32 scales -> bf16 [N, Kp], rounded exactly as gemm_fp8 rounds its shared tiles
// (q * scale -> bf16). One thread per 16 weights (one 16-byte load, two 16-byte stores).
extern "C" __global__ void __launch_bounds__(256) dequant_fp8_bf16(const u8* __restrict__ W, const float* __restrict__ S,
                                                                   int qblock, int Kp, long long nchunks,
                                                                   u16* __restrict__ out) {
  PDL_LAUNCH();
  PDL_WAIT();
  const int nsc = Kp / qblock;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < nchunks;
       i += (long long)gridDim.x * blockDim.x) {
    const long long e = i * 16;
    const long long row = e / Kp;
    const int col = (int)(e - row * Kp);
    const uint4 q = ld_stream(W + e);
    const float sc = __ldg(S + row * nsc + col / qblock) * FP8_UNIT;
    const u32 u[4] = {q.x, q.y, q.z, q.w};
    u32 o[8];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float f[4];
      fp8x4_to_f32(u[j], f);
      o[2 * j] = f32_to_bf16(f[0] * sc) | (f32_to_bf16(f[1] * sc) << 16);
      o[2 * j + 1] = f32_to_bf16(f[2] * sc) | (f32_to_bf16(f[3] * sc) << 16);
    }
    uint4* p = (uint4*)(out + e);
    p[0] = make_uint4(o[0], o[1], o[2], o[3]);
    p[1] = make_uint4(o[4], o[5], o[6], o[7]);
  }
}

// f32 [n] (n % 4 == 0) -> bf16 hi [n] and, when lo != 0, the remainder x - bf16(x) as bf16 (the
// split activations of gemm_bf16).
extern "C" __global__ void __launch_bounds__(256) split_bf16(const float* __restrict__ X, long long n4,
                                                             u16* __restrict__ hi, u16* __restrict__ lo) {
  PDL_LAUNCH();
  PDL_WAIT();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4; i += (long long)gridDim.x * blockDim.x) {
    const float4 v = ((const float4*)X)[i];
    const float f[4] = {v.x, v.y, v.z, v.w};
    u32 h[4], l[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      h[j] = f32_to_bf16(f[j]);
      l[j] = f32_to_bf16(f[j] - bf16_to_f32(h[j]));
    }
    ((uint2*)hi)[i] = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
    if (lo) ((uint2*)lo)[i] = make_uint2(l[0] | (l[1] << 16), l[2] | (l[3] << 16));
  }
}

// G [M, N] f32, columns interleaved gate, up -> Y [M, N / 2] = silu(gate) * up (gemm mode 2's epilogue).
extern "C" __global__ void __launch_bounds__(256) glu_rows(const float* __restrict__ G, long long npairs,
                                                           float* __restrict__ Y) {
  PDL_LAUNCH();
  PDL_WAIT();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < npairs;
       i += (long long)gridDim.x * blockDim.x) {
    const float2 v = ((const float2*)G)[i];
    Y[i] = silu_mul(v.x, v.y);
  }
}
