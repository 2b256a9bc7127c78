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

// ---------------------------------------------------------------------------------------------------
// GQA attention (v4): one block per (KV head, split, query row) serves all G = H / KVH <= 8 query heads
// of the group. The block's 256 threads load each tile of 32 K rows and 32 V rows once, coalesced
// (16-byte vectors, all issued together; the next tile's loads are issued before the current tile is
// computed), into shared memory (rows padded by 16 bytes: no bank conflicts); warp g then scores the
// tile for query head g with lane j on position j (no shuffles for the dot), keeps the softmax
// statistics with warp shuffles (no block barriers per position) and accumulates P·V with each lane
// owning 2 adjacent dims. Splits: of the grid's gridDim.y splits the first ceil(L / 32) are used
// (decided on the device, so a captured graph follows the growing context); each writes an
// unnormalised partial and the last to finish (counter cnt[t * KVH + kvh]) combines them; with
// gridDim.y == 1 the output is normalised in place. fuse_new (decode): the split holding position pos
// RoPEs the new K, writes K and V to the cache and into its tile (no per-position branch).
// Limits (host-checked): G <= 8, head_dim * sizeof(KV) <= 512 bytes.

#define GQ_THREADS 256
#define GQ_WARPS 8
#define GQ_TILE 32
#define GQ_MAX_SPLIT 32
#define GQ_NV 4  // 16-byte vectors per thread per tile (K and V each): 32 rows x 512 bytes / 256 threads

__device__ __forceinline__ void kv_load2(const float* p, float* f) {
  const float2 a = *(const float2*)p;
  f[0] = a.x;
  f[1] = a.y;
}
__device__ __forceinline__ void kv_load2(const u16* p, float* f) {
  const u32 w = *(const u32*)p;
  f[0] = __uint_as_float(w << 16);
  f[1] = __uint_as_float(w & 0xffff0000u);
}

// One work item (KV head kvh, split `split` of at most `max_splits`, query row t) on threads 0..255 of the
// calling block; `sync` is the barrier of those 256 threads (__syncthreads in attn_gqa_*, a named barrier in
// the persistent decode kernel, kernels/persist.cu); gq_tiles: the K / V tile buffers in shared memory.
// Activations written by other blocks of the same kernel (qkv, po, pml) are read through L2 (ld.cg).
template <typename KV, typename Sync, typename Pre>
__device__ __forceinline__ void gqa_item(const float* __restrict__ qkv, int H, int KVH, int hd,
                                         KV* __restrict__ kc, KV* __restrict__ vc, int max_pos,
                                         const float* __restrict__ rope, int pos, float scale, int fuse_new,
                                         float* __restrict__ out, float* __restrict__ po, float* __restrict__ pml,
                                         int* __restrict__ cnt, int kvh, int split, int t, int max_splits,
                                         u8* gq_tiles, Sync sync, Pre pre, u64* tl) {
  __shared__ __align__(16) float qs[GQ_WARPS][ATT_MAX_HD];
  __shared__ __align__(16) KV knew[ATT_MAX_HD];
  __shared__ __align__(16) KV vnew[ATT_MAX_HD];
  __shared__ float wgt[GQ_WARPS][GQ_MAX_SPLIT];
  __shared__ int last;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int G = H / KVH, half = hd / 2;
  const int L = pos + 1;
  const int nsplit = min(max_splits, (L + GQ_TILE - 1) / GQ_TILE);
  if (split >= nsplit) return;
  const int chunk = (L + nsplit - 1) / nsplit;
  const int s0 = min(L, split * chunk), s1 = min(L, s0 + chunk);
  const bool has_new = fuse_new && s0 <= pos && pos < s1;
  const int lim = fuse_new ? min(s1, pos) : s1;  // rows [s0, lim) come from the cache
  const float* qrow = qkv + (size_t)t * (H + 2 * KVH) * hd;
  const size_t head_off = (size_t)kvh * max_pos * hd;
  const int rowb = hd * (int)sizeof(KV), rs = rowb + 16, vpr = rowb / 16, nvec = GQ_TILE * vpr;
  u8* ks = gq_tiles;
  u8* vs = gq_tiles + GQ_TILE * rs;
  const u8* kg = (const u8*)(kc + head_off);
  const u8* vg = (const u8*)(vc + head_off);

  uint4 kr[GQ_NV], vr[GQ_NV];
  auto issue = [&](int p0) {
#pragma unroll
    for (int j = 0; j < GQ_NV; ++j) {
      const int v = tid + j * GQ_THREADS;
      const int row = v / vpr, col = v % vpr, p = p0 + row;
      if (v < nvec && p < lim) {
        kr[j] = *(const uint4*)(kg + (size_t)p * rowb + col * 16);
        vr[j] = *(const uint4*)(vg + (size_t)p * rowb + col * 16);
      }
    }
  };
  issue(s0);
  pre();  // attn_gqa_*: griddepcontrol.wait in decode, after the cached rows were requested

  // Query heads of the group (RoPE'd), and the new token's K / V.
  const bool active = warp < G;
  const int h = kvh * G + warp;
  if (active) {
    for (int i = lane; i < half; i += 32) {
      float c, s;
      rope_cs(rope, half, pos, i, &c, &s);
      const float a = __ldcg(qrow + h * hd + i), b = __ldcg(qrow + h * hd + i + half);
      qs[warp][i] = a * c - b * s;
      qs[warp][i + half] = b * c + a * s;
    }
  }
  if (has_new) {
    const float* kn = qrow + H * hd + kvh * hd;
    const float* vn = qrow + (H + KVH) * hd + kvh * hd;
    for (int i = tid; i < half; i += GQ_THREADS) {
      float c, s;
      rope_cs(rope, half, pos, i, &c, &s);
      const float ka = __ldcg(kn + i), kb = __ldcg(kn + i + half);
      const float va = __ldcg(vn + i), vb = __ldcg(vn + i + half);
      kv_put(&knew[i], ka * c - kb * s);
      kv_put(&knew[i + half], kb * c + ka * s);
      kv_put(&vnew[i], va);
      kv_put(&vnew[i + half], vb);
      kv_put(kc + head_off + (size_t)pos * hd + i, ka * c - kb * s);
      kv_put(kc + head_off + (size_t)pos * hd + i + half, kb * c + ka * s);
      kv_put(vc + head_off + (size_t)pos * hd + i, va);
      kv_put(vc + head_off + (size_t)pos * hd + i + half, vb);
    }
  }
  sync();
  tl_mark(tl, 2);

  float m_run = NEG_INF, l_run = 0.f;
  float o[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) o[j] = 0.f;
  for (int p0 = s0; p0 < s1; p0 += GQ_TILE) {
#pragma unroll
    for (int j = 0; j < GQ_NV; ++j) {
      const int v = tid + j * GQ_THREADS;
      const int row = v / vpr, col = v % vpr;
      if (v < nvec && p0 + row < lim) {
        *(uint4*)(ks + row * rs + col * 16) = kr[j];
        *(uint4*)(vs + row * rs + col * 16) = vr[j];
      }
    }
    if (has_new && p0 <= pos && pos < p0 + GQ_TILE) {
      KV* kd = (KV*)(ks + (pos - p0) * rs);
      KV* vd = (KV*)(vs + (pos - p0) * rs);
      for (int i = tid; i < hd; i += GQ_THREADS) {
        kd[i] = knew[i];
        vd[i] = vnew[i];
      }
    }
    sync();
    if (p0 + GQ_TILE < s1) issue(p0 + GQ_TILE);  // the next tile streams while this one is computed
    if (active) {
      const int n = min(GQ_TILE, s1 - p0);
      const bool valid = lane < n;
      float sc = NEG_INF;
      if (valid) {
        const KV* krow = (const KV*)(ks + lane * rs);
        const float* q = qs[warp];
        float dot = 0.f;
        for (int i = 0; i < hd; i += 8) {
          float f[8];
          kv_load8(krow + i, f);
          const float4 qa = *(const float4*)(q + i), qb = *(const float4*)(q + i + 4);
          dot = fmaf(qa.x, f[0], dot);
          dot = fmaf(qa.y, f[1], dot);
          dot = fmaf(qa.z, f[2], dot);
          dot = fmaf(qa.w, f[3], dot);
          dot = fmaf(qb.x, f[4], dot);
          dot = fmaf(qb.y, f[5], dot);
          dot = fmaf(qb.z, f[6], dot);
          dot = fmaf(qb.w, f[7], dot);
        }
        sc = dot * scale;
      }
      const float m_new = fmaxf(m_run, warp_max(sc));
      const float e = valid ? expf(sc - m_new) : 0.f;
      const float corr = expf(m_run - m_new);
      l_run = l_run * corr + warp_sum(e);
      m_run = m_new;
#pragma unroll
      for (int j = 0; j < 8; ++j) o[j] *= corr;
      for (int r = 0; r < n; ++r) {
        const float w = __shfl_sync(0xffffffffu, e, r);
        const KV* vrow = (const KV*)(vs + r * rs);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int d = 2 * lane + 64 * j;
          if (d < hd) {
            float v2[2];
            kv_load2(vrow + d, v2);
            o[2 * j] = fmaf(w, v2[0], o[2 * j]);
            o[2 * j + 1] = fmaf(w, v2[1], o[2 * j + 1]);
          }
        }
      }
    }
    sync();  // the tile buffers are refilled next round
  }

  if (active) {
    if (max_splits == 1) {
      const float inv = 1.0f / l_run;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        if (d < hd) {
          out[((size_t)t * H + h) * hd + d] = o[2 * j] * inv;
          out[((size_t)t * H + h) * hd + d + 1] = o[2 * j + 1] * inv;
        }
      }
    } else {
      const size_t base = ((size_t)t * H + h) * GQ_MAX_SPLIT + split;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        if (d < hd) {
          po[base * hd + d] = o[2 * j];
          po[base * hd + d + 1] = o[2 * j + 1];
        }
      }
      if (lane == 0) {
        pml[base * 2] = m_run;
        pml[base * 2 + 1] = l_run;
      }
    }
  }
  tl_mark(tl, 3);
  if (max_splits == 1) return;

  __threadfence();
  sync();
  if (tid == 0) last = atomicAdd(cnt + t * KVH + kvh, 1) == nsplit - 1;
  sync();
  if (!last) return;
  __threadfence();
  tl_mark(tl, 4);
  if (active) {  // split weights of head `warp`: one lane per split
    const size_t base = ((size_t)t * H + h) * GQ_MAX_SPLIT;
    const float mq = lane < nsplit ? __ldcg(pml + (base + lane) * 2) : NEG_INF;
    const float lq = lane < nsplit ? __ldcg(pml + (base + lane) * 2 + 1) : 0.f;
    const float M = warp_max(mq);
    const float f = mq == NEG_INF ? 0.f : expf(mq - M);
    const float Ls = warp_sum(lq * f);
    wgt[warp][lane] = f / Ls;
  }
  sync();
  for (int idx = tid; idx < G * hd; idx += GQ_THREADS) {
    const int g = idx / hd, d = idx % hd;
    const size_t base = ((size_t)t * H + kvh * G + g) * GQ_MAX_SPLIT;
    float pv[GQ_MAX_SPLIT];
#pragma unroll
    for (int q = 0; q < GQ_MAX_SPLIT; ++q) pv[q] = q < nsplit ? __ldcg(po + (base + q) * hd + d) : 0.f;
    float acc = 0.f;
#pragma unroll
    for (int q = 0; q < GQ_MAX_SPLIT; ++q) acc = fmaf(wgt[g][q], pv[q], acc);
    out[((size_t)t * H + kvh * G + g) * hd + d] = acc;
  }
  if (tid == 0) cnt[t * KVH + kvh] = 0;
}

// Grid (KVH, splits, T), GQ_THREADS threads, dynamic shared memory: the two tiles.
template <typename KV>
__device__ __forceinline__ void attn_gqa_body(const float* qkv, int H, int KVH, int hd, KV* kc, KV* vc, int max_pos,
                                              const float* rope, const int* step, float scale, int fuse_new,
                                              float* out, float* po, float* pml, int* cnt, u64* tl) {
  extern __shared__ __align__(16) u8 gq_tiles[];  // K tile | V tile: GQ_TILE rows of (hd * sizeof(KV) + 16) bytes
  PDL_LAUNCH();
  tl_mark(tl, 0);
  // Decode (fuse_new): the cached rows (positions < pos, written by earlier steps) and the position (written
  // only by the step's last kernel) do not depend on the previous kernel, so the first tile's loads go out
  // before the wait; the new row comes from qkv after it. Prefill reads rows the previous kernel wrote.
  if (!fuse_new) PDL_WAIT();
  gqa_item<KV>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step[1] + (int)blockIdx.z, scale, fuse_new, out, po, pml, cnt,
               blockIdx.x, blockIdx.y, blockIdx.z, gridDim.y, gq_tiles, []() { __syncthreads(); },
               [fuse_new, tl]() {
                 if (fuse_new) PDL_WAIT();
                 tl_mark(tl, 1);
               },
               tl);
  tl_mark(tl, 5);
}

extern "C" __global__ void __launch_bounds__(GQ_THREADS, 2)
    attn_gqa_f32kv(const float* qkv, int H, int KVH, int hd, float* kc, float* vc, int max_pos, const float* rope,
                   const int* step, float scale, int fuse_new, float* out, float* po, float* pml, int* cnt,
                   u64* tl) {
  attn_gqa_body<float>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step, scale, fuse_new, out, po, pml, cnt, tl);
}

extern "C" __global__ void __launch_bounds__(GQ_THREADS, 2)
    attn_gqa_bf16kv(const float* qkv, int H, int KVH, int hd, u16* kc, u16* vc, int max_pos, const float* rope,
                    const int* step, float scale, int fuse_new, float* out, float* po, float* pml, int* cnt,
                    u64* tl) {
  attn_gqa_body<u16>(qkv, H, KVH, hd, kc, vc, max_pos, rope, step, scale, fuse_new, out, po, pml, cnt, tl);
}

// ---------------------------------------------------------------------------------------------------
// Decode attention on the tensor cores (v11; sm_90+, bf16 KV cache, one query row, head_dim HD = 32 / 64 / 128,
// G = H / KVH <= 8). Grid KVH x C blocks in thread-block clusters of C (one cluster per KV head), TCA_WARPS warps
// per block. Positions 0..pos are cut into tiles of 32; tile i belongs to warp i mod (C x TCA_WARPS) of the
// cluster (warp u = rank x TCA_WARPS + warp), which streams its tiles through its own ring of S shared-memory
// slots with cp.async. The cached rows need nothing from the previous kernel, so the first S tiles (and the
// position's RoPE row) are requested before griddepcontrol.wait. Per tile, for all G query heads of the group:
//   S = Q K^T: mma m16n8k16 with A = Q (rows 0-7: the heads rounded to bf16, rows 8-15: what that rounding lost,
//   also bf16; a score is the sum of its head's two rows, about 16 mantissa bits of q) and B = K rows (ldmatrix);
//   O += P V: A = P split the same way, taken from S's accumulator registers (the accumulator layout of m16n8k16
//   is its A layout), B = V (ldmatrix.trans).
// Softmax online per warp in f32 (exp2 of scores pre-scaled by log2 e). The warps' partials (m, l, O) are combined
// in the block through shared memory, then across the cluster: the G x HD outputs are cut into one slice per block,
// every block stores its partial of each element into the shared memory of the block that owns the element's slice
// (distributed shared memory), and after one cluster barrier each block combines its slice: no partials in global
// memory, no fence, no counter, no second barrier. The block whose warp holds tile pos / 32 RoPEs the new K, rounds
// K and V to bf16 and writes them to the cache while it stages q; that warp copies them into row pos of its slot and
// zeroes the slot's V rows past pos (P is 0 there, but stale bits could be NaN).
// Shared memory (its size: `attn_tc_smem` in backend/cuda/device.rs): the rings (after the loop each warp's ring holds its partial O [8][HD] f32),
// q [2][8][HD + 8] bf16 (value, remainder), the new K and V [2][HD] bf16, the RoPE row, the warps' m and l [warp][8],
// and the cluster's block partials of this block's slice [C][O (the slice), m [8], l [8]] (C x (8 HD + 16) floats).

#ifndef TCA_WARPS
#define TCA_WARPS 4
#endif
#define TCA_THREADS (TCA_WARPS * 32)
#define TCA_MAX_CLUSTER 8

// Offsets into the shared memory: the rings, then q.
__device__ constexpr int tca_ring_bytes(int hd, int slots) { return TCA_WARPS * slots * 2 * 32 * (2 * hd + 16); }
__device__ constexpr int tca_q_bytes(int hd) { return 2 * 8 * (hd + 8) * 2; }

#if __CUDA_ARCH__ >= 900
// (x0, x1) as bf16x2 (x0 in the low half), and the bf16x2 of what that rounding lost.
__device__ __forceinline__ void split_bf16x2(float x0, float x1, u32* hi, u32* lo) {
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(*hi) : "f"(x1), "f"(x0));
  const float r0 = x0 - __uint_as_float(*hi << 16), r1 = x1 - __uint_as_float(*hi & 0xffff0000u);
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(*lo) : "f"(r1), "f"(r0));
}
__device__ __forceinline__ void ldsm_x4(u32 addr, u32* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldsm_x4_t(u32 addr, u32* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
// Stores v at `p` (an address in this block's shared memory) in the shared memory of cluster block `rank`.
__device__ __forceinline__ void st_cluster(float* p, u32 rank, float v) {
  u32 a;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(a) : "r"(smem_u32(p)), "r"(rank));
  asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(a), "f"(v) : "memory");
}

template <int HD, int S>
__device__ __forceinline__ void attn_tc_body(const float* __restrict__ qkv, int H, int KVH, u16* __restrict__ kc,
                                             u16* __restrict__ vc, int max_pos, const float* __restrict__ rope,
                                             const int* __restrict__ step, float scale, float* __restrict__ out,
                                             float* __restrict__ amax, u64* tl) {
  constexpr int KS = HD / 16;        // k-steps of S = Q K^T
  constexpr int NT = HD / 8;         // n-tiles of O
  constexpr int RS = 2 * HD + 16;    // bytes per slot row (padded: conflict-free ldmatrix)
  constexpr int VPR = 2 * HD / 16;   // 16-byte vectors per row
  constexpr int SLOT = 2 * 32 * RS;  // K tile | V tile
  constexpr int QS = HD + 8;         // q row stride in bf16 (padded)
  extern __shared__ __align__(16) u8 tca_smem[];
  PDL_LAUNCH();
  tl_mark(tl, 0);
  u32 rank, C;
  asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  asm("mov.u32 %0, %%cluster_nctarank;" : "=r"(C));
  const int kvh = blockIdx.x / C;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
  const int G = H / KVH, half = HD / 2;
  const int pos = step[1], L = pos + 1, ntiles = (L + 31) / 32;
  const int nw = (int)C * TCA_WARPS, u = (int)rank * TCA_WARPS + warp;
  u8* ring = tca_smem + warp * S * SLOT;
  u16* qsm = (u16*)(tca_smem + tca_ring_bytes(HD, S));  // [2][8][QS]: bf16 value, remainder
  u16* nkv = (u16*)(tca_smem + tca_ring_bytes(HD, S) + tca_q_bytes(HD));  // new K, V [2][HD]
  float* cs = (float*)(nkv + 2 * HD);                                      // (cos, sin) [half]
  float* wm = cs + HD;                                                     // warps' m [warp][8]
  float* wl = wm + TCA_WARPS * 8;
  float* cp = wl + TCA_WARPS * 8;  // the block partials of this block's slice [C][8 HD + 16]
  const size_t head_off = (size_t)kvh * max_pos * HD;
  const u8* kg = (const u8*)(kc + head_off);
  const u8* vg = (const u8*)(vc + head_off);

  // The position's RoPE row (one commit group), then tile `tile` (if it exists) into slot `sl`: its cached rows
  // (< pos), one commit group either way.
  for (int v = tid; v < HD * 4 / 16; v += TCA_THREADS)
    cp_async16(smem_u32(cs) + v * 16, rope + (size_t)pos * HD + v * 4, 0, false);
  cp_commit();
  auto issue = [&](int tile, int sl) {
    if (tile < ntiles) {
      const u32 ks = smem_u32(ring + sl * SLOT), vs = ks + 32 * RS;
#pragma unroll
      for (int j = 0; j < VPR; ++j) {
        const int v = j * 32 + lane, row = v / VPR, col = v % VPR, p = tile * 32 + row;
        if (p < pos) {
          cp_async16(ks + row * RS + col * 16, kg + (size_t)p * 2 * HD + col * 16, 0, false);
          cp_async16(vs + row * RS + col * 16, vg + (size_t)p * 2 * HD + col * 16, 0, false);
        }
      }
    }
    cp_commit();
  };
#pragma unroll
  for (int sl = 0; sl < S; ++sl) issue(u + sl * nw, sl);
  cp_wait<S>();  // the RoPE row
  __syncthreads();
  PDL_WAIT();
  tl_mark(tl, 1);

  // q of the group's heads, RoPE'd and scaled by scale x log2 e, as bf16 value and remainder; heads >= G zero.
  {
    const float qscale = scale * 1.4426950408889634f;
    for (int e = tid; e < 8 * half / 2; e += TCA_THREADS) {
      const int h = e / (half / 2), i = 2 * (e % (half / 2));
      float2 a = make_float2(0.f, 0.f), b = a;
      if (h < G) {
        const float* qrow = qkv + (size_t)(kvh * G + h) * HD;
        a = __ldcg((const float2*)(qrow + i));
        b = __ldcg((const float2*)(qrow + i + half));
      }
      const float4 r = *(const float4*)(cs + 2 * i);  // (cos, sin) of dims i, i + 1
      u32 hi, lo;
      split_bf16x2((a.x * r.x - b.x * r.y) * qscale, (a.y * r.z - b.y * r.w) * qscale, &hi, &lo);
      *(u32*)(qsm + h * QS + i) = hi;
      *(u32*)(qsm + (8 + h) * QS + i) = lo;
      split_bf16x2((b.x * r.x + a.x * r.y) * qscale, (b.y * r.z + a.y * r.w) * qscale, &hi, &lo);
      *(u32*)(qsm + h * QS + i + half) = hi;
      *(u32*)(qsm + (8 + h) * QS + i + half) = lo;
    }
  }
  // The new position's K (RoPE'd) and V, rounded to bf16: into the cache and nkv, by the block whose warp holds the
  // last tile.
  if ((int)rank == ((ntiles - 1) % nw) / TCA_WARPS) {
    const float* kn = qkv + (size_t)H * HD + (size_t)kvh * HD;
    const float* vn = qkv + (size_t)(H + KVH) * HD + (size_t)kvh * HD;
    u16* kd = kc + head_off + (size_t)pos * HD;
    u16* vd = vc + head_off + (size_t)pos * HD;
    for (int i = tid; i < half; i += TCA_THREADS) {
      const float c = cs[2 * i], sn = cs[2 * i + 1];
      const float ka = __ldcg(kn + i), kb = __ldcg(kn + i + half);
      const u16 k0 = (u16)f32_to_bf16(ka * c - kb * sn), k1 = (u16)f32_to_bf16(kb * c + ka * sn);
      const u16 v0 = (u16)f32_to_bf16(__ldcg(vn + i)), v1 = (u16)f32_to_bf16(__ldcg(vn + i + half));
      kd[i] = nkv[i] = k0;
      kd[i + half] = nkv[i + half] = k1;
      vd[i] = nkv[HD + i] = v0;
      vd[i + half] = nkv[HD + i + half] = v1;
    }
  }
  __syncthreads();
  // A fragments: k-step s holds dims 16 s + 2 q (+1) in registers 0 / 1 (value / remainder) and 16 s + 8 + 2 q (+1)
  // in registers 2 / 3.
  u32 qa[KS][4];
#pragma unroll
  for (int s = 0; s < KS; ++s) {
    qa[s][0] = *(const u32*)(qsm + g * QS + 16 * s + 2 * q);
    qa[s][1] = *(const u32*)(qsm + (8 + g) * QS + 16 * s + 2 * q);
    qa[s][2] = *(const u32*)(qsm + g * QS + 16 * s + 8 + 2 * q);
    qa[s][3] = *(const u32*)(qsm + (8 + g) * QS + 16 * s + 8 + 2 * q);
  }
  tl_mark(tl, 2);

  float m_run = NEG_INF, l_run = 0.f;
  float o[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  int k = 0;
  for (int tile = u; tile < ntiles; tile += nw, ++k) {
    const int sl = S == 1 ? 0 : k % S;
    u8* sb = ring + sl * SLOT;
    cp_wait<S - 1>();
    if (tile == ntiles - 1) {  // row r = the new position (from nkv), V rows past it zeroed
      const int r = pos - tile * 32;
      if (lane < 2 * VPR)
        *(uint4*)(sb + (lane / VPR) * 32 * RS + r * RS + (lane % VPR) * 16) =
            *(const uint4*)(nkv + (lane / VPR) * HD + (lane % VPR) * 8);
      for (int v = lane; v < (31 - r) * VPR; v += 32)
        *(uint4*)(sb + 32 * RS + (r + 1 + v / VPR) * RS + (v % VPR) * 16) = make_uint4(0, 0, 0, 0);
    }
    __syncwarp();
    const u32 kb = smem_u32(sb), vb = kb + 32 * RS;
    // S for positions 8 j + 2 q (+1) of the tile, head g: sacc[j][0 / 1] (+ the remainder rows' [2 / 3]).
    float sacc[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      sacc[j][0] = sacc[j][1] = sacc[j][2] = sacc[j][3] = 0.f;
#pragma unroll
      for (int s = 0; s < KS; s += 2) {
        u32 b[4];
        ldsm_x4(kb + (8 * j + (lane & 7)) * RS + (16 * s + 8 * (lane >> 3)) * 2, b);
        mma_bf16(sacc[j], qa[s], b);
        mma_bf16(sacc[j], qa[s + 1], b + 2);
      }
    }
    float p[8];
    float tmax = NEG_INF;
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float sc = sacc[j][e] + sacc[j][e + 2];
        p[2 * j + e] = tile * 32 + 8 * j + 2 * q + e < L ? sc : NEG_INF;
        tmax = fmaxf(tmax, p[2 * j + e]);
      }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float m_new = fmaxf(m_run, tmax), corr = exp2f(m_run - m_new);
    m_run = m_new;
    float ps = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      p[e] = exp2f(p[e] - m_new);
      ps += p[e];
    }
    l_run = l_run * corr + ps;
    // P as A fragments: k-step t covers positions 16 t .. 16 t + 15 = S n-tiles 2 t, 2 t + 1.
    u32 pa[2][4];
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      split_bf16x2(p[4 * t], p[4 * t + 1], &pa[t][0], &pa[t][1]);
      split_bf16x2(p[4 * t + 2], p[4 * t + 3], &pa[t][2], &pa[t][3]);
    }
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      o[n][0] *= corr;
      o[n][1] *= corr;
      o[n][2] *= corr;
      o[n][3] *= corr;
      u32 b[4];
      ldsm_x4_t(vb + lane * RS + n * 16, b);
      mma_bf16(o[n], pa[0], b);
      mma_bf16(o[n], pa[1], b + 2);
    }
    __syncwarp();
    issue(tile + S * nw, sl);
  }
  cp_wait<0>();
  __syncwarp();
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);

  // The warp's partial: O [8][HD] over its own (now idle) ring, m and l.
  float* wo = (float*)ring;
  if (g < G) {
#pragma unroll
    for (int n = 0; n < NT; ++n)
      *(float2*)(wo + g * HD + 8 * n + 2 * q) = make_float2(o[n][0] + o[n][2], o[n][1] + o[n][3]);
    if (q == 0) {
      wm[warp * 8 + g] = m_run;
      wl[warp * 8 + g] = l_run;
    }
  }
  tl_mark(tl, 3);
  __syncthreads();
  // The cluster's G x HD outputs are cut into C slices; block s combines slice s. The block's partial of each
  // element goes to cp[rank] of the block that combines it, its m and l (per head) to every block.
  const int E = G * HD, Es = (E + (int)C - 1) / (int)C;
  for (int e = tid; e < E; e += TCA_THREADS) {
    const int h = e / HD, d = e % HD;
    float M = NEG_INF;
#pragma unroll
    for (int w = 0; w < TCA_WARPS; ++w) M = fmaxf(M, wm[w * 8 + h]);
    float Ls = 0.f, Os = 0.f;
    if (M != NEG_INF) {
#pragma unroll
      for (int w = 0; w < TCA_WARPS; ++w) {
        const float f = exp2f(wm[w * 8 + h] - M);
        Ls = fmaf(f, wl[w * 8 + h], Ls);
        Os = fmaf(f, ((const float*)(tca_smem + w * S * SLOT))[h * HD + d], Os);
      }
    }
    float* mine = cp + rank * (8 * HD + 16);
    st_cluster(mine + e % Es, e / Es, Os);
    if (d == 0)
      for (int r = 0; r < (int)C; ++r) {
        st_cluster(mine + 8 * HD + h, r, M);
        st_cluster(mine + 8 * HD + 8 + h, r, Ls);
      }
  }
  cluster_sync();  // every block has its slice's partials; no block reads another's shared memory after this
  tl_mark(tl, 4);
  float amx = 0.f;
  for (int j = tid; j < Es && (int)rank * Es + j < E; j += TCA_THREADS) {
    const int e = (int)rank * Es + j, h = e / HD;
    float mr[TCA_MAX_CLUSTER], lr[TCA_MAX_CLUSTER], orr[TCA_MAX_CLUSTER];
    float M = NEG_INF;
#pragma unroll
    for (int r = 0; r < TCA_MAX_CLUSTER; ++r) {
      const float* pr = cp + r * (8 * HD + 16);
      mr[r] = r < (int)C ? pr[8 * HD + h] : NEG_INF;
      lr[r] = r < (int)C ? pr[8 * HD + 8 + h] : 0.f;
      orr[r] = r < (int)C ? pr[j] : 0.f;
      M = fmaxf(M, mr[r]);
    }
    float Ls = 0.f, Os = 0.f;
#pragma unroll
    for (int r = 0; r < TCA_MAX_CLUSTER; ++r) {
      const float f = mr[r] == NEG_INF ? 0.f : exp2f(mr[r] - M);
      Ls = fmaf(f, lr[r], Ls);
      Os = fmaf(f, orr[r], Os);
    }
    const float o = Os / Ls;
    out[(size_t)(kvh * G) * HD + e] = o;
    amx = fmaxf(amx, fabsf(bf16_round(o)));
  }
  // The o projection's x' shift comes from max |bf16(out)| over all heads (kernels/gemv.cu tc_stage_x): one max
  // per warp into *amax (non-negative floats order as their bits; zeroed by embed_rows each step).
  if (amax) {
    amx = warp_max(amx);
    if (lane == 0) atomicMax((unsigned*)amax, __float_as_uint(amx));
  }
  tl_mark(tl, 5);
}
#else
template <int HD, int S>
__device__ __forceinline__ void attn_tc_body(const float*, int, int, u16*, u16*, int, const float*, const int*, float,
                                             float*, float*, u64*) {}
#endif

#define ATTN_TC_ENTRY(HD, S)                                                                                       \
  extern "C" __global__ void __launch_bounds__(TCA_THREADS)                                                        \
      attn_tc_h##HD##_s##S(const float* qkv, int H, int KVH, u16* kc, u16* vc, int max_pos, const float* rope,     \
                           const int* step, float scale, float* out, float* amax, u64* tl) {                       \
    attn_tc_body<HD, S>(qkv, H, KVH, kc, vc, max_pos, rope, step, scale, out, amax, tl);                           \
  }
ATTN_TC_ENTRY(32, 1)
ATTN_TC_ENTRY(32, 2)
ATTN_TC_ENTRY(64, 1)
ATTN_TC_ENTRY(64, 2)
ATTN_TC_ENTRY(128, 1)
ATTN_TC_ENTRY(128, 2)
