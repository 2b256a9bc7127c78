// Small kernels of the forward pass: embedding gather, row RMSNorm (prefill), greedy argmax.

// x[t, :] = embed[ids[t], :] (bf16 table -> f32). Grid T, 256 threads.
// ss != 0 (decode, T = 1, fused norm statistics, see gemv.cu): ss[0] = sum(x²), ss[1 .. nss) = 0.
extern "C" __global__ void embed_rows(const u16* __restrict__ emb, const int* __restrict__ ids, int H,
                                      float* __restrict__ x, float* __restrict__ ss, int nss) {
  __shared__ float red[32];
  PDL_LAUNCH();
  PDL_WAIT();
  const int t = blockIdx.x;
  const size_t id = (size_t)ids[t];
  float q = 0.f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = bf16_to_f32(emb[id * H + i]);
    x[(size_t)t * H + i] = v;
    q = fmaf(v, v, q);
  }
  if (ss) {
    for (int i = 1 + threadIdx.x; i < nss; i += blockDim.x) ss[i] = 0.f;
    q = block_sum(q, red);
    if (threadIdx.x == 0) ss[0] = q;
  }
}

// Grid-wide barrier cost probe (docs/gpu.md, v6): `iters` barriers of all blocks (one monotonic counter,
// zeroed by the host; the grid must be co-resident). Timed from the host with events.
extern "C" __global__ void grid_barrier_probe(unsigned* bar, int iters) {
  for (int i = 1; i <= iters; ++i) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(bar, 1u);
      const unsigned target = (unsigned)i * gridDim.x;
      unsigned v;
      do {
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
      } while (v < target);
    }
    __syncthreads();
  }
}

// Reduction probe (docs/gpu.md v13, what is next: the fused MLP's cost): every block adds its own `n` f32 values
// (n a multiple of 4 * blockDim.x) into the one vector `out` with `red.global.add` — as v4 (sm_90+) when `v4`,
// else one float at a time. `iters` rounds per launch; timed from the host with events.
extern "C" __global__ void red_probe(float* __restrict__ out, int n, int v4, int iters) {
  const float v = 1.0f + (float)blockIdx.x * 1e-3f;
  for (int it = 0; it < iters; ++it) {
    for (int i = 4 * threadIdx.x; i < n; i += 4 * blockDim.x) {
#if __CUDA_ARCH__ >= 900
      if (v4) {
        asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(out + i), "f"(v), "f"(v), "f"(v), "f"(v)
                     : "memory");
        continue;
      }
#endif
      for (int j = 0; j < 4; ++j) atomicAdd(out + i + j, v);
    }
  }
}

// out[t, :] = w * (x[t, :] * rsqrt(mean(x[t, :]²) + eps)), then bf16-rounded when a16. Grid T, 256 threads.
extern "C" __global__ void rmsnorm_rows(const float* __restrict__ x, const float* __restrict__ w, int K, float eps,
                                        int a16, float* __restrict__ out) {
  __shared__ float red[32];
  PDL_LAUNCH();
  PDL_WAIT();
  const float* xr = x + (size_t)blockIdx.x * K;
  float* orow = out + (size_t)blockIdx.x * K;
  float ss = 0.f;
  for (int k = threadIdx.x; k < K; k += blockDim.x) ss = fmaf(xr[k], xr[k], ss);
  ss = block_sum(ss, red);
  const float r = 1.0f / sqrtf(ss / (float)K + eps);
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    const float v = w[k] * (xr[k] * r);
    orow[k] = a16 ? bf16_round(v) : v;
  }
}

// Greedy step: step[0] = argmax(logits) (lowest index on ties, as the CPU sampler), step[1] += 1.
// One block of 1024 threads.
extern "C" __global__ void argmax_step(const float* __restrict__ logits, int V, int* __restrict__ step) {
  __shared__ float bv[32];
  __shared__ int bi[32];
  PDL_LAUNCH();
  PDL_WAIT();
  float best = NEG_INF;
  int idx = 0x7fffffff;
  // 16-byte loads, four rounds issued together (logits is 16-byte aligned), then the tail.
  const int V4 = V >> 2;
  const float4* l4 = (const float4*)logits;
  int i = threadIdx.x;
  for (; i + 3 * (int)blockDim.x < V4; i += 4 * blockDim.x) {
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = l4[i + u * blockDim.x];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int b = 4 * (i + u * blockDim.x);
      const float f[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (f[j] > best || (f[j] == best && b + j < idx)) {
          best = f[j];
          idx = b + j;
        }
    }
  }
  for (; i < V4; i += blockDim.x) {
    const float4 v = l4[i];
    const float f[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (f[j] > best || (f[j] == best && 4 * i + j < idx)) {
        best = f[j];
        idx = 4 * i + j;
      }
  }
  for (int k = 4 * V4 + threadIdx.x; k < V; k += blockDim.x) {
    const float v = logits[k];
    if (v > best || (v == best && k < idx)) {
      best = v;
      idx = k;
    }
  }
  warp_argmax(&best, &idx);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) {
    bv[w] = best;
    bi[w] = idx;
  }
  __syncthreads();
  if (w == 0) {
    const int nw = blockDim.x >> 5;
    best = lane < nw ? bv[lane] : NEG_INF;
    idx = lane < nw ? bi[lane] : 0x7fffffff;
    warp_argmax(&best, &idx);
    if (lane == 0) {
      step[0] = idx == 0x7fffffff ? 0 : idx;
      step[1] += 1;
    }
  }
}
