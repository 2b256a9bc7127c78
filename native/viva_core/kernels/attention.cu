// Attention of query rows against the KV cache (GQA: query head h reads KV head h / (H / KVH)),
// split over the key positions (flash-decoding), and the RoPE / KV-cache writes.
//
// RoPE is HF's half rotation (rotate_half): out[i] = x[i]·cos − x[i+d/2]·sin,
// out[i+d/2] = x[i+d/2]·cos + x[i]·sin. cos/sin come from a table [max_pos, d/2] of (cos, sin) pairs
// computed on the host exactly as the CPU reference does (angle = f32(pos · inv_freq[i]), f64 cos/sin).
// (llama.cpp's interleaved pairs would be wrong for HF checkpoints.)
//
// Cache of one layer: k, v [KVH, max_pos, hd], f32 (bf16-weight path, exact reference) or bf16.
// step[1] is the position of query row 0 (row t sits at step[1] + t and sees positions 0..=that).

#define ATT_THREADS 128
#define ATT_MAX_HD 256

__device__ __forceinline__ void kv_load8(const float* p, float* f) {
  const float4 a = *(const float4*)p, b = *(const float4*)(p + 4);
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
  f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}
__device__ __forceinline__ void kv_load8(const u16* p, float* f) {
  const uint4 u = *(const uint4*)p;
  const u32 w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    f[2 * j] = __uint_as_float(w[j] << 16);
    f[2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
  }
}
__device__ __forceinline__ float kv_get(const float* p) { return *p; }
__device__ __forceinline__ float kv_get(const u16* p) { return bf16_to_f32(*p); }
__device__ __forceinline__ void kv_put(float* p, float v) { *p = v; }
__device__ __forceinline__ void kv_put(u16* p, float v) { *p = (u16)f32_to_bf16(v); }
__device__ __forceinline__ float kv_round(const float*, float v) { return v; }
__device__ __forceinline__ float kv_round(const u16*, float v) { return bf16_round(v); }

__device__ __forceinline__ void rope_cs(const float* rope, int half, int pos, int i, float* c, float* s) {
  const float2 cs = *(const float2*)(rope + ((size_t)pos * half + i) * 2);
  *c = cs.x;
  *s = cs.y;
}

// Grid (H, nsplit, T), ATT_THREADS threads. With nsplit == 1 the normalised output goes to
// out[t, h*hd..]; otherwise each split writes its unnormalised partial (po, m/l in pml) and the last
// split to finish (counter cnt[t*H + h], reset after use) combines them into out.
// fuse_new (decode, T == 1): the query's own K/V come from the qkv row (RoPE applied here) instead of
// the cache, and the first query head of each KV group writes them to the cache.
template <typename KV>
__device__ __forceinline__ void attention_body(const float* __restrict__ qkv, int H, int KVH, int hd,
                                               KV* __restrict__ kc, KV* __restrict__ vc, int max_pos,
                                               const float* __restrict__ rope, const int* __restrict__ step,
                                               float scale, int fuse_new, float* __restrict__ out,
                                               float* __restrict__ po, float* __restrict__ pml,
                                               int* __restrict__ cnt) {
  __shared__ float qs[ATT_MAX_HD], kn[ATT_MAX_HD], vn[ATT_MAX_HD];
  __shared__ float sc[ATT_THREADS];
  __shared__ float ored[2 * ATT_THREADS];
  __shared__ float red[32];
  __shared__ int last;
  PDL_LAUNCH();
  PDL_WAIT();
  const int h = blockIdx.x, split = blockIdx.y, t = blockIdx.z, nsplit = gridDim.y;
  const int tid = threadIdx.x, G = H / KVH, kvh = h / G, half = hd / 2;
  const int stride = (H + 2 * KVH) * hd;
  const int pos = step[1] + t;
  const int L = pos + 1;
  const float* qrow = qkv + (size_t)t * stride;
  for (int i = tid; i < half; i += ATT_THREADS) {
    float c, s;
    rope_cs(rope, half, pos, i, &c, &s);
    const float a = qrow[h * hd + i], b = qrow[h * hd + i + half];
    qs[i] = a * c - b * s;
    qs[i + half] = b * c + a * s;
    if (fuse_new) {
      const float* kr = qrow + H * hd + kvh * hd;
      const float* vr = qrow + (H + KVH) * hd + kvh * hd;
      const float ka = kr[i], kb = kr[i + half];
      kn[i] = kv_round(kc, ka * c - kb * s);
      kn[i + half] = kv_round(kc, kb * c + ka * s);
      vn[i] = kv_round(vc, vr[i]);
      vn[i + half] = kv_round(vc, vr[i + half]);
    }
  }
  __syncthreads();

  const int chunk = (L + nsplit - 1) / nsplit;
  const int s0 = min(L, split * chunk), s1 = min(L, s0 + chunk);
  const size_t head_off = (size_t)kvh * max_pos * hd;
  if (fuse_new && (h % G) == 0 && s0 <= pos && pos < s1) {
    for (int i = tid; i < hd; i += ATT_THREADS) {
      kv_put(kc + head_off + (size_t)pos * hd + i, kn[i]);
      kv_put(vc + head_off + (size_t)pos * hd + i, vn[i]);
    }
  }
  const int lim = fuse_new ? min(s1, pos) : s1;  // positions read from the cache

  // P·V ownership: thread -> (position group g, dim d); hd > ATT_THREADS: dims tid and tid + 128.
  const int npar = hd >= ATT_THREADS ? 1 : ATT_THREADS / hd;
  const int g = hd >= ATT_THREADS ? 0 : tid / hd;
  const int d = hd >= ATT_THREADS ? tid : tid % hd;
  const bool active = g < npar;
  const bool two = hd > ATT_THREADS && tid + ATT_THREADS < hd;
  float o0 = 0.f, o1 = 0.f, m_run = NEG_INF, l_run = 0.f;

  for (int ts = s0; ts < s1; ts += ATT_THREADS) {
    const int p = ts + tid;
    float s = NEG_INF;
    if (p < s1) {
      float dot = 0.f;
      if (p < lim) {
        const KV* kr = kc + head_off + (size_t)p * hd;
        int i = 0;
        for (; i + 32 <= hd; i += 32) {  // four independent 16/32-byte loads in flight
          float f[32];
#pragma unroll
          for (int u = 0; u < 4; ++u) kv_load8(kr + i + 8 * u, f + 8 * u);
#pragma unroll
          for (int j = 0; j < 32; ++j) dot = fmaf(qs[i + j], f[j], dot);
        }
        for (; i < hd; i += 8) {
          float f[8];
          kv_load8(kr + i, f);
#pragma unroll
          for (int j = 0; j < 8; ++j) dot = fmaf(qs[i + j], f[j], dot);
        }
      } else {
        for (int i = 0; i < hd; ++i) dot = fmaf(qs[i], kn[i], dot);
      }
      s = dot * scale;
    }
    const float m_new = fmaxf(m_run, block_max(s, red));
    const float e = p < s1 ? expf(s - m_new) : 0.f;
    sc[tid] = e;
    const float tsum = block_sum(e, red);  // its barriers also publish sc
    const float corr = expf(m_run - m_new);
    l_run = l_run * corr + tsum;
    m_run = m_new;
    o0 *= corr;
    o1 *= corr;
    const int nt = min(ATT_THREADS, s1 - ts);
    if (active) {
      // Cached positions of this tile first, eight per round with the loads issued together, then
      // the fused new position (decode), in position order.
      const int lim_t = min(nt, lim - ts);
      int j = g;
      for (; j + 7 * npar < lim_t; j += 8 * npar) {
        float a[8], b[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const KV* vr = vc + head_off + (size_t)(ts + j + u * npar) * hd;
          a[u] = kv_get(vr + d);
          b[u] = two ? kv_get(vr + d + ATT_THREADS) : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const float w = sc[j + u * npar];
          o0 = fmaf(w, a[u], o0);
          o1 = fmaf(w, b[u], o1);
        }
      }
      for (; j < lim_t; j += npar) {
        const KV* vr = vc + head_off + (size_t)(ts + j) * hd;
        const float w = sc[j];
        o0 = fmaf(w, kv_get(vr + d), o0);
        if (two) o1 = fmaf(w, kv_get(vr + d + ATT_THREADS), o1);
      }
      for (; j < nt; j += npar) {
        const float w = sc[j];
        o0 = fmaf(w, vn[d], o0);
        if (two) o1 = fmaf(w, vn[d + ATT_THREADS], o1);
      }
    }
    __syncthreads();
  }
  if (npar > 1) {
    ored[tid] = o0;
    __syncthreads();
    if (active && g == 0)
      for (int q = 1; q < npar; ++q) o0 += ored[q * hd + d];
  }
  const bool owner = active && g == 0;
  float* orow = out + (size_t)t * H * hd + (size_t)h * hd;
  if (nsplit == 1) {
    if (owner) {
      orow[d] = o0 / l_run;
      if (two) orow[d + ATT_THREADS] = o1 / l_run;
    }
    return;
  }
  const size_t base = ((size_t)t * H + h) * nsplit;
  if (owner) {
    po[(base + split) * hd + d] = o0;
    if (two) po[(base + split) * hd + d + ATT_THREADS] = o1;
  }
  if (tid == 0) {
    pml[(base + split) * 2] = m_run;
    pml[(base + split) * 2 + 1] = l_run;
  }
  __threadfence();
  __syncthreads();
  if (tid == 0) last = atomicAdd(cnt + t * H + h, 1) == nsplit - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  const volatile float* vpml = pml;
  const volatile float* vpo = po;
  float M = NEG_INF;
  for (int q = 0; q < nsplit; ++q) M = fmaxf(M, vpml[(base + q) * 2]);
  float Ls = 0.f;
  for (int q = 0; q < nsplit; ++q) {
    const float mq = vpml[(base + q) * 2];
    if (mq != NEG_INF) Ls += vpml[(base + q) * 2 + 1] * expf(mq - M);
  }
  for (int i = tid; i < hd; i += ATT_THREADS) {
    float a = 0.f;
    for (int q = 0; q < nsplit; ++q) {
      const float mq = vpml[(base + q) * 2];
      if (mq != NEG_INF) a += vpo[(base + q) * hd + i] * expf(mq - M);
    }
    orow[i] = a / Ls;
  }
  if (tid == 0) cnt[t * H + h] = 0;
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
    attention_f32kv(const float* qkv, int H, int KVH, int hd, float* kc, float* vc, int max_pos,
                    const float* rope, const int* step, float scale, int fuse_new, float* out, float* po,
                    float* pml, int* cnt) {
  attention_body<float>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step, scale, fuse_new, out, po, pml, cnt);
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
    attention_bf16kv(const float* qkv, int H, int KVH, int hd, u16* kc, u16* vc, int max_pos,
                     const float* rope, const int* step, float scale, int fuse_new, float* out, float* po,
                     float* pml, int* cnt) {
  attention_body<u16>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step, scale, fuse_new, out, po, pml, cnt);
}

// Prefill: RoPE the K of rows 0..T and write K, V to the cache at step[1] + t. Grid T, 128 threads.
template <typename KV>
__device__ __forceinline__ void rope_kv_body(const float* __restrict__ qkv, int H, int KVH, int hd,
                                             KV* __restrict__ kc, KV* __restrict__ vc, int max_pos,
                                             const float* __restrict__ rope, const int* __restrict__ step) {
  PDL_LAUNCH();
  PDL_WAIT();
  const int t = blockIdx.x, half = hd / 2;
  const int pos = step[1] + t;
  const float* row = qkv + (size_t)t * (H + 2 * KVH) * hd;
  for (int idx = threadIdx.x; idx < KVH * half; idx += blockDim.x) {
    const int kvh = idx / half, i = idx % half;
    float c, s;
    rope_cs(rope, half, pos, i, &c, &s);
    const float* kr = row + H * hd + kvh * hd;
    const float* vr = row + (H + KVH) * hd + kvh * hd;
    const float ka = kr[i], kb = kr[i + half];
    KV* kd = kc + ((size_t)kvh * max_pos + pos) * hd;
    KV* vd = vc + ((size_t)kvh * max_pos + pos) * hd;
    kv_put(kd + i, ka * c - kb * s);
    kv_put(kd + i + half, kb * c + ka * s);
    kv_put(vd + i, vr[i]);
    kv_put(vd + i + half, vr[i + half]);
  }
}

extern "C" __global__ void rope_kv_f32kv(const float* qkv, int H, int KVH, int hd, float* kc, float* vc, int max_pos,
                                         const float* rope, const int* step) {
  rope_kv_body<float>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step);
}

extern "C" __global__ void rope_kv_bf16kv(const float* qkv, int H, int KVH, int hd, u16* kc, u16* vc, int max_pos,
                                          const float* rope, const int* step) {
  rope_kv_body<u16>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step);
}
