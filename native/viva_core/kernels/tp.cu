// Tensor-parallel persistent decode kernel (v17, docs/gpu.md): one launch runs a whole FP8 decode step, laid
// out over the GPU the way tensor parallelism lays a layer out over GPUs, each thread-block cluster of C blocks
// (one per SM) playing one "GPU". bench/gpu/tp_probe.cu measured the schedule before this was written.
//
// Status: opt-in (`VIVA_TENSOR_DECODE=tp`), matches the multi-kernel path (tests/cuda.rs), and is slower than it on
// an H100 (v17i: 1,120 against 1,477 tok/s on the TinyLlama shape): the attention clusters' chain of small phases
// keeps the other clusters waiting, and the GEMV math is on the critical path (docs/gpu.md v17 has the profile).
//
// Why: the multi-kernel step hands activations over five times a layer (q/k/v -> attention -> o -> gate/up ->
// down), each an all-to-all step costing ~3 µs under load (v10-v16). Split as below, a layer has two all-to-all
// steps, both small global exchanges; everything else stays inside a cluster (distributed shared memory, DSMEM)
// or inside a block:
//   - q/k/v column-parallel: cluster c < KVH owns KV group c (its G query heads, its K and V head); its blocks
//     split the group's (G + 2) hd rows in 16-row tiles and all-gather the values in the cluster;
//   - attention in the cluster: the positions are split over its blocks, the partials combined in two DSMEM
//     exchanges (reduce-scatter by output element, then all-gather), so every block holds the G x hd outputs;
//   - o row-parallel: block r of cluster c multiplies rows [r P, (r + 1) P) of o (P = hidden / C) by the group's
//     G hd columns: a partial sum of its P rows, published in the global exchange;
//   - global exchange: block r of every cluster sums the partials of its P rows from the KVH attention clusters,
//     adds them to its rows of x and all-gathers x in its cluster (every cluster keeps the same full x);
//   - gate/up column-parallel in units of 8 intermediate indices (a 16-row tile: 8 gate rows, then the same 8
//     up rows), silu(gate) up stays in the block: exactly the K slice of down that the block multiplies;
//   - down row-parallel: the block's partial sums of all hidden rows, reduce-scattered in the cluster (block r
//     gets the sums of its P rows), then the global exchange over all clusters, x += that, all-gather.
// Clusters >= KVH skip q/k/v, attention and o and stream only gate/up and down; the host balances the bytes a
// block streams (the MLP units it gets) against what the attention clusters also carry.
//
// Weights: one stream per block and layer, packed at load (CudaModel's tp_plan) in the order the block consumes
// it, each matrix's 16-row tiles in mma fragment order: for k base kk (32 k a "pair" of 512 bytes), lane
// L = 4 g + q holds 16 bytes: rows g, g + 8 at k kk + 2q, +1 | k kk + 2q + 8, +9 | then the same at kk + 16. A
// lane's 16 bytes are the A operands of two m16n8k16 mma (f16 after cvt.rn.f16x2.e4m3x2); B is x' in column 0
// (lanes g == 0), so D's column 0 (lanes q == 0) is the 16 rows' partial sums. Warp w takes pairs 4w..4w+3 of
// every 16 KB slot (32 pairs; Kp a multiple of 128 keeps a warp's pairs in one row tile), so K is split over the
// warps and the row sums are added in shared memory. down is packed per 8-index unit, then per 16-row tile of the
// hidden rows, as m16n8k8 operands (128 bytes: lane L holds rows g, g + 8 at k 2q, 2q + 1), warp w owning row tiles
// w, w + 8, ... with one accumulator each: independent mma, no reduction over warps. One producer warp streams the whole step's tiles into the ring with bulk
// copies (cp.async.bulk, completing on an mbarrier), at most `cap` copies in flight (tp_probe: queued copies
// lengthen every exchange's round trip), running ahead across every wait of the consumers.
//
// Numerics as the multi-kernel FP8 path: x' = bf16(activation) x 2^e in f16 (exact), f32 accumulation, one f32
// scale per weight row (the rows of o and down are scaled after their sums over the blocks), bf16 KV cache,
// attention in f32 with the current position's K and V rounded to bf16 as the cache holds them.
//
// Exchanges: in the cluster, st.async stores that complete on the receiver's mbarrier (two buffers and barriers
// by parity); globally, 16-byte words {v0, seq, v1, seq} written by one store and polled by the readers (no
// fence, no counter; four buffers in turn), seq = epoch (sync[5], advanced by the last block of each step) x (2 L + 2) + exchange + 1.
// The final argmax is the persistent kernel's: a 64-bit atomicMax and a done counter (sync[2..4]). Every wait
// gives up after ~2 s with a trap (tp_watch): a broken protocol fails the launch with an error instead of hanging the
// caller (the CUDA context is lost then; the VM is not).
//
// Small vectors (norm weights, the block's row scales, the RoPE row) and the first chunk of each layer's cached K/V
// rows do not depend on the step's activations: each block requests the next layer's with cp.async once it has
// its silu(gate) up values (tp_prefetch), so no stage waits on a load from L2 behind the weight stream for them.
//
// Dynamic shared memory (tp_layout, mirrored by the host): ring (nslots x 16 KB) | x (f32 hidden) | x' (f16 kmax)
// | xb (f32 2 x C x xbs) | part (f32 2048) | qv (f32 (G + 2) hd) | att (f32 G hd) | hb, hf (f32 hmax each) | h16
// (f16 hmax) | xr (f32 P) | kvs (bf16 2 x 32 x (hd + 8): a chunk of K and V rows) | red (f32 64) | nwa, nwf (f32
// hidden: the norms) | sq (f32 nqmax), so (f32 P), sgu (f32 hmax), sd (f32 2 x P), sl (f32 lmax): row scales |
// rcs (f32 hd: RoPE cos, sin) | mbarriers.

#define TP_SLOT 16384
#define TP_CONS 256
#define TP_THREADS 288
#define TP_PROF_MAX 512

#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void tp_sync() { asm volatile("bar.sync 1, 256;" ::: "memory"); }
__device__ __forceinline__ u64 tp_now() {
  u64 t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
// A wait that cannot hang the caller: after ~2 s the protocol is broken, and a trap reports it as an error.
__device__ __forceinline__ void tp_watch(u64& t0, u32& spins) {
  if ((++spins & 1023u) == 0) {
    if (t0 == 0) t0 = tp_now();
    else if (tp_now() - t0 > 2000000000ull) __trap();
  }
}
// Waits for the phase of mbarrier b with this parity: with acquire at cluster scope where other blocks' st.async
// complete it (the cluster exchanges), at CTA scope where only this block's threads and bulk copies do (the ring;
// v17d measured cluster scope there no different).
template <bool CLUSTER_SCOPE>
__device__ __forceinline__ void tp_wait(u64* b, u32 parity) {
  u64 t0 = 0;
  u32 spins = 0;
  for (;;) {
    u32 done;
    if (CLUSTER_SCOPE)
      asm volatile(
          "{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n\t"
          "selp.u32 %0, 1, 0, p;\n\t}"
          : "=r"(done)
          : "r"(smem_u32(b)), "r"(parity)
          : "memory");
    else
      asm volatile(
          "{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
          : "=r"(done)
          : "r"(smem_u32(b)), "r"(parity)
          : "memory");
    if (done) return;
    tp_watch(t0, spins);
  }
}
__device__ __forceinline__ u32 tp_mapa(u32 a, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
  return r;
}
__device__ __forceinline__ void tp_st_async(u32 raddr, float4 v, u32 rbar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];" ::"r"(raddr),
               "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(rbar)
               : "memory");
}
__device__ __forceinline__ uint4 tp_ldv(const uint4* a) {
  uint4 v;
  asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(a)
               : "memory");
  return v;
}
__device__ __forceinline__ void tp_stv(uint4* a, uint4 v) {
  asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(a), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}
__device__ __forceinline__ void tp_cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
// Per-thread async copies into shared memory (4 or 16 bytes; a 4-byte copy of an out-of-range element zero-fills).
__device__ __forceinline__ void tp_cp16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void tp_cp4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void tp_cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void tp_cp_wait() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// d += A . B, m16n8k8 (f16 inputs, f32 accumulation): a0 rows g, a1 rows g + 8 (k 2q, 2q + 1); b0 column g.
__device__ __forceinline__ void tp_mma_k8(float* d, u32 a0, u32 a1, u32 b0) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(b0));
}

struct Tp {
  u8* ring;
  u64* full;
  u64* empty;
  u64* xbar;
  float* x;
  u16* x16;
  float* xb;
  float* part;
  float* qv;
  float* att;
  float* hb;
  float* hf;
  u16* h16;
  u16* kvs;
  float* nwa;
  float* nwf;
  float* sq;
  float* so;
  float* sgu;
  float* sd;
  float* sl;
  float* rcs;
  float* xr;
  float* red;
  u32 slot, phase;  // the consumers' next ring slot and its fill's parity (counted, no division per slot)
  u32 n;   // cluster exchanges done
  u32 g;   // global exchanges done
  u32 seq0;
  u64 waited;  // profiling: ns thread 0 spent waiting for ring slots (only counted when `timed`)
  bool timed;
  int C, rank, cl, ncl, warp, lane, tid, nslots, xbs, P, hidden;
  uint4* xll;
};

// Shared-memory offsets (bytes); backend/cuda/tp.rs smem_bytes computes the same total.
__device__ __forceinline__ void tp_layout(Tp& t, u8* smem, int hidden, int kmax, int C, int xbs, int qvn, int attn,
                                          int hmax, int P, int hd, int nqmax, int lmax) {
  size_t o = (size_t)t.nslots * TP_SLOT;
  auto take = [&](size_t bytes) {
    u8* p = smem + o;
    o += (bytes + 15) & ~(size_t)15;
    return p;
  };
  t.ring = smem;
  t.x = (float*)take((size_t)hidden * 4);
  t.x16 = (u16*)take((size_t)kmax * 2);
  t.xb = (float*)take((size_t)2 * C * xbs * 4);
  t.part = (float*)take(2048 * 4);
  t.qv = (float*)take((size_t)qvn * 4);
  t.att = (float*)take((size_t)attn * 4);
  t.hb = (float*)take((size_t)hmax * 4);
  t.hf = (float*)take((size_t)hmax * 4);
  t.h16 = (u16*)take((size_t)hmax * 2);
  t.xr = (float*)take((size_t)P * 4);
  t.kvs = (u16*)take((size_t)2 * 32 * (hd + 8) * 2);
  t.red = (float*)take(64 * 4);
  t.nwa = (float*)take((size_t)hidden * 4);
  t.nwf = (float*)take((size_t)hidden * 4);
  t.sq = (float*)take((size_t)nqmax * 4);
  t.so = (float*)take((size_t)P * 4);
  t.sgu = (float*)take((size_t)hmax * 4);
  t.sd = (float*)take((size_t)2 * P * 4);
  t.sl = (float*)take((size_t)lmax * 4);
  t.rcs = (float*)take((size_t)hd * 4);
  t.full = (u64*)take((size_t)t.nslots * 8);
  t.empty = (u64*)take((size_t)t.nslots * 8);
  t.xbar = (u64*)take(2 * 8);
}

// Slot `idx` of the ring: wait until it has landed (every consumer warp waits for every slot, so that no warp
// can hand back a slot two fills ahead); `tp_done` hands it back (the empty barrier counts the 8 warps).
__device__ __forceinline__ const u8* tp_slot(Tp& t) {
  if (t.timed) {
    const u64 t0 = tp_now();
    tp_wait<false>(t.full + t.slot, t.phase);
    t.waited += tp_now() - t0;
  } else {
    tp_wait<false>(t.full + t.slot, t.phase);
  }
  return t.ring + (size_t)t.slot * TP_SLOT;
}
__device__ __forceinline__ void tp_done(Tp& t) {
  __syncwarp();
  if (t.lane == 0) mbar_arrive(t.empty + t.slot);
  if (++t.slot == (u32)t.nslots) {
    t.slot = 0;
    t.phase ^= 1u;
  }
}

// Cluster exchange: every block sends nfl floats (a multiple of 4) to every block of the cluster (scatter: the
// slice src[peer * stride ..] to each peer), as stores completing on the receiver's barrier; afterwards row r of
// the returned buffer (stride xbs) holds block r's data.
__device__ float* tp_cx(Tp& t, const float* src, int stride, int nfl, bool scatter) {
  const u32 par = t.n & 1u, q = (u32)nfl / 4;
  float* buf = t.xb + (size_t)par * t.C * t.xbs;
  if (t.tid == 0) mbar_expect(t.xbar + par, (u32)(t.C * nfl * 4));
  const u32 dst = smem_u32(buf + (size_t)t.rank * t.xbs), bar = smem_u32(t.xbar + par);
  for (u32 i = t.tid; i < (u32)t.C * q; i += TP_CONS) {
    const u32 peer = i / q, k = i % q;
    const float4 v = ((const float4*)(src + (scatter ? (size_t)peer * stride : 0)))[k];
    tp_st_async(tp_mapa(dst + k * 16, peer), v, tp_mapa(bar, peer));
  }
  tp_wait<true>(t.xbar + par, (t.n >> 1) & 1u);
  tp_sync();  // every send has read its source before anyone overwrites it
  ++t.n;
  return buf;
}

// Global exchange: block r of clusters [0, nsrc) publishes `piece` (P floats) when `publish`; every block sums the
// nsrc pieces of its rows, in cluster order (so every cluster gets the same bits), into out. Four buffers in turn:
// a block writes exchange e's buffer again (e + 4) only after it has seen every cluster publish an exchange after
// e (every second exchange is down's, which all clusters publish), i.e. after every reader of e is done with it.
__device__ void tp_gx(Tp& t, bool publish, const float* piece, int nsrc, float* out) {
  const u32 par = t.g & 3u, seq = t.seq0 + t.g + 1u;
  const int h2 = t.hidden / 2, p2 = t.P / 2;
  uint4* buf = t.xll + (size_t)par * t.ncl * h2 + (size_t)t.rank * p2;
  if (publish)
    for (int i = t.tid; i < p2; i += TP_CONS)
      tp_stv(buf + (size_t)t.cl * h2 + i,
             make_uint4(__float_as_uint(piece[2 * i]), seq, __float_as_uint(piece[2 * i + 1]), seq));
  for (int i = t.tid; i < p2; i += TP_CONS) {
    float s0 = 0.f, s1 = 0.f;
    for (int k0 = 0; k0 < nsrc; k0 += 8) {  // eight contributors' words requested at once
      uint4 v[8];
#pragma unroll
      for (int k = 0; k < 8; ++k)
        if (k0 + k < nsrc) v[k] = tp_ldv(buf + (size_t)(k0 + k) * h2 + i);
#pragma unroll
      for (int k = 0; k < 8; ++k)
        if (k0 + k < nsrc) {
          u64 t0 = 0;
          u32 spins = 0;
          while (v[k].y != seq || v[k].w != seq) {
            v[k] = tp_ldv(buf + (size_t)(k0 + k) * h2 + i);
            tp_watch(t0, spins);
          }
          s0 += __uint_as_float(v[k].x);
          s1 += __uint_as_float(v[k].z);
        }
    }
    out[2 * i] = s0;
    out[2 * i + 1] = s1;
  }
  tp_sync();
  ++t.g;
}

// Sum / max of v over the block's 256 consumer threads, through red[slot .. slot + 7]; every thread gets it.
__device__ __forceinline__ float tp_block_sum(Tp& t, float v, int slot) {
  v = warp_sum(v);
  if (t.lane == 0) t.red[slot + t.warp] = v;
  tp_sync();
  float r = 0.f;
#pragma unroll
  for (int k = 0; k < 8; ++k) r += t.red[slot + k];
  return r;
}
__device__ __forceinline__ float tp_block_max(Tp& t, float v, int slot) {
  v = warp_max(v);
  if (t.lane == 0) t.red[slot + t.warp] = v;
  tp_sync();
  float r = 0.f;
#pragma unroll
  for (int k = 0; k < 8; ++k) r = fmaxf(r, t.red[slot + k]);
  return r;
}

// x' (f16 into x16, zero-padded to kp) from n f32 values: times w * rs when w is given (RMSNorm; rs from the
// sum of squares over the n values), rounded to bf16, scaled by 2^e (block max). Returns 2^-e.
__device__ float tp_stage(Tp& t, const float* src, int n, int kp, const float* w, float eps) {
  // (A bound on max |x'| instead of this pass, from max |w|, max |x| and the statistic, read the same speed in v17h and
  // moved the logits a little further from the multi-kernel path's: not kept.)
  float rs = 1.f;
  if (w) {
    float ss = 0.f;
    for (int i = t.tid; i < n; i += TP_CONS) ss = fmaf(src[i], src[i], ss);
    rs = 1.0f / sqrtf(tp_block_sum(t, ss, 0) / (float)n + eps);
  }
  float amax = 0.f;
  for (int i = t.tid; i < n; i += TP_CONS) {
    float v = src[i];
    if (w) v = w[i] * (v * rs);
    amax = fmaxf(amax, fabsf(bf16_round(v)));
  }
  const int sh = f16_shift(tp_block_max(t, amax, 8));
  const float up = exp2i(sh);
  // Stored in fragment order: within each 32-k block, the words a lane q reads for a pair's two mma (k 2q, 2q + 8,
  // 16 + 2q, 24 + 2q and their neighbours) are adjacent, one 16-byte load (tp_gemv).
  for (int i = t.tid; i < kp; i += TP_CONS) {
    float v = 0.f;
    if (i < n) {
      v = src[i];
      if (w) v = w[i] * (v * rs);
      v = bf16_round(v) * up;
    }
    const int wl = (i >> 1) & 15;
    t.x16[(i & ~31) + 2 * (4 * (wl & 3) + (wl >> 2)) + (i & 1)] = f32_to_f16_bits(v);
  }
  tp_sync();
  return exp2i(-sh);
}

// Column-parallel GEMV: ntiles 16-row tiles of kp columns from the ring (fragment order, above), x' in x16; the
// row sums (row 0 = the stage's first row) into rows[0, 16 ntiles), visible to every consumer thread on return.
__device__ void tp_gemv(Tp& t, int ntiles, int kp, float* rows) {
  const int ppt = kp / 32, g = t.lane >> 2, q = t.lane & 3;
  const bool pow2 = (ppt & (ppt - 1)) == 0;
  const int lg = __ffs(ppt) - 1;
  const u32* xv = (const u32*)t.x16;
  float* pw = t.part + t.warp * 128;
  for (int tb = 0; tb < ntiles; tb += 8) {
    const int nb = min(8, ntiles - tb);
    for (int i = t.lane; i < 128; i += 32) pw[i] = 0.f;
    __syncwarp();
    const int p0 = tb * ppt, p1 = (tb + nb) * ppt;
    for (int ps = p0; ps < p1; ps += 32) {
      const u8* s = tp_slot(t);
      const int pa = ps + 4 * t.warp;
#if defined(TP_NOMATH)  // probe (wrong results): the GEMVs' slots are waited for and handed back, nothing computed
      if (false) {
#else
      if (pa < p1) {
#endif
        const int tile = pow2 ? pa >> lg : pa / ppt, kk0 = (pow2 ? pa & (ppt - 1) : pa % ppt) * 32;
        const uint4* src = (const uint4*)(s + (size_t)(pa - ps) * 512) + t.lane;
        // All loads first, then the math (no branch in between, so the four pairs' latencies overlap). Every lane
        // reads x' at its q: B's columns 1-7 (lanes g != 0) only feed D's columns 1-7, which are not used.
        uint4 wv[4], xb[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          wv[j] = src[j * 32];
          xb[j] = *(const uint4*)(xv + ((kk0 + 32 * j) >> 1) + 4 * q);
        }
        float d[4][4] = {};  // one accumulator per pair: four independent mma chains
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint4 w = wv[j];
          const u32 b0 = xb[j].x, b1 = xb[j].y, b2 = xb[j].z, b3 = xb[j].w;
          u32 a0, a1, a2, a3;
          fp8x4_to_f16x2(w.x, &a0, &a1);
          fp8x4_to_f16x2(w.y, &a2, &a3);
          mma_f16_a4(d[j], a0, a1, a2, a3, b0, b1);
          fp8x4_to_f16x2(w.z, &a0, &a1);
          fp8x4_to_f16x2(w.w, &a2, &a3);
          mma_f16_a4(d[j], a0, a1, a2, a3, b2, b3);
        }
        if (q == 0) {
          pw[(tile - tb) * 16 + g] += (d[0][0] + d[1][0]) + (d[2][0] + d[3][0]);
          pw[(tile - tb) * 16 + g + 8] += (d[0][2] + d[1][2]) + (d[2][2] + d[3][2]);
        }
      }
      tp_done(t);
    }
    tp_sync();
    for (int i = t.tid; i < nb * 16; i += TP_CONS) {
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < 8; ++w) v += t.part[w * 128 + i];
      rows[tb * 16 + i] = v;
    }
    tp_sync();
  }
}

// down, row-parallel: for each of the block's nu units (8 intermediate indices), ht row tiles (16 hidden rows) of
// 128 bytes, unit-major, 128 a slot; warp w owns row tiles w, w + 8, ... (at most TP_DOWN_ACC of them: hidden <=
// 2048), each with its own accumulator, so its mma are independent; out[row] = the block's partial sum x inv.
#define TP_DOWN_ACC 16
__device__ void tp_down(Tp& t, int ht, int nu, float inv, float* out) {
  const int total = ht * nu, g = t.lane >> 2, q = t.lane & 3;
  const u32* hv = (const u32*)t.h16;
  float r0[TP_DOWN_ACC], r8[TP_DOWN_ACC];  // rows g and g + 8 of each row tile (column 0 of D)
#pragma unroll
  for (int j = 0; j < TP_DOWN_ACC; ++j) r0[j] = r8[j] = 0.f;
  for (int s0 = 0; s0 < total; s0 += 128) {
    const u8* s = tp_slot(t);
    const int s1 = min(total, s0 + 128);
#if !defined(TP_NOMATH)
    if (ht == 128) {
      // One whole unit a slot (hidden 2048): 16 row tiles a warp, loads first, no branch between the mma.
      const int u = s0 / ht;
      const u32 b0 = hv[u * 4 + q];  // B's columns 1-7 (lanes g != 0) feed only D's unused columns
#pragma unroll
      for (int h = 0; h < TP_DOWN_ACC; h += 8) {  // two halves of 8 loads, to stay in registers
        u32 wv[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) wv[j] = ((const u32*)(s + (size_t)(t.warp + 8 * (h + j)) * 128))[t.lane];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          u32 a0, a1;
          fp8x4_to_f16x2(wv[j], &a0, &a1);
          float d[4] = {0.f, 0.f, 0.f, 0.f};
          tp_mma_k8(d, a0, a1, b0);
          r0[h + j] += d[0];
          r8[h + j] += d[2];
        }
      }
      tp_done(t);
      continue;
    }
#endif
    for (int u = s0 / ht; u * ht < s1; ++u) {
      const u32 b0 = hv[u * 4 + q];  // as in the fast path: columns 1-7 of D are not used
#pragma unroll
      for (int j = 0; j < TP_DOWN_ACC; ++j) {
        const int rt = t.warp + 8 * j, idx = u * ht + rt;
#if defined(TP_NOMATH)
        if (false) {
#else
        if (rt < ht && idx >= s0 && idx < s1) {
#endif
          const u32 w = ((const u32*)(s + (size_t)(idx - s0) * 128))[t.lane];
          u32 a0, a1;
          fp8x4_to_f16x2(w, &a0, &a1);
          float d[4] = {0.f, 0.f, 0.f, 0.f};
          tp_mma_k8(d, a0, a1, b0);
          r0[j] += d[0];
          r8[j] += d[2];
        }
      }
    }
    tp_done(t);
  }
  if (q == 0) {
#pragma unroll
    for (int j = 0; j < TP_DOWN_ACC; ++j) {
      const int rt = t.warp + 8 * j;
      if (rt < ht) {
        out[rt * 16 + g] = r0[j] * inv;
        out[rt * 16 + g + 8] = r8[j] * inv;
      }
    }
  }
  tp_sync();
}
// The arguments of tp_prefetch.
struct TpPf {
  const u64* lplan;
  const float* final_norm;
  const float* lm_s;
  const u16* kc;
  const u16* vc;
  long long layer_elems;
  int nlayers, hidden, inter, vocab, hd, max_pos, pos, G, H, KVH, qvn;
  bool attn;
  int nq, q0, nu, gu0, nlm, lm0, pa, pb, P;
};

// Requests (cp.async, one group) layer l's small vectors and first K/V chunk into shared memory (l == nlayers: the
// final norm and lm_head's scales).
__device__ __forceinline__ void tp_prefetch(Tp& t, const TpPf& a, int l) {
  const int hd = a.hd, P = a.P, rs16 = hd + 8;
  if (l == a.nlayers) {
    for (int i = t.tid; i < a.hidden / 4; i += TP_CONS) tp_cp16(t.nwa + 4 * i, a.final_norm + 4 * i);
    for (int i = t.tid; i < a.nlm * 16; i += TP_CONS)
      tp_cp4(t.sl + i, a.lm_s + a.lm0 * 16 + i, a.lm0 * 16 + i < a.vocab);
    tp_cp_commit();
    return;
  }
  const u64* lp = a.lplan + (size_t)l * 6;
  if (a.attn) {
    for (int i = t.tid; i < a.hidden / 4; i += TP_CONS) tp_cp16(t.nwa + 4 * i, (const float*)lp[0] + 4 * i);
    for (int i = t.tid; i < a.nq * 16; i += TP_CONS) {
      const int gi = a.q0 * 16 + i, grp = t.cl, G = a.G;
      const int row = gi < G * hd ? grp * G * hd + gi
                                  : (gi < (G + 1) * hd ? a.H * hd + grp * hd + (gi - G * hd)
                                                       : (a.H + a.KVH) * hd + grp * hd + (gi - (G + 1) * hd));
      tp_cp4(t.sq + i, (const float*)lp[2] + (gi < a.qvn ? row : 0), gi < a.qvn);
    }
    for (int i = t.tid; i < P / 4; i += TP_CONS) tp_cp16(t.so + 4 * i, (const float*)lp[3] + t.rank * P + 4 * i);
    const int np = min(32, a.pb - a.pa), h8 = hd / 8, step = TP_CONS / h8;  // h8 divides 256 (hd <= 128)
    const u16* kcl = a.kc + (size_t)l * a.layer_elems + ((size_t)t.cl * a.max_pos) * hd;
    const u16* vcl = a.vc + (size_t)l * a.layer_elems + ((size_t)t.cl * a.max_pos) * hd;
    const int d8 = t.tid % h8;
    for (int r = t.tid / h8; r < 2 * np; r += step) {  // rows np.. are V
      const bool v = r >= np;
      const int p = a.pa + (v ? r - np : r);
      if (p != a.pos)
        tp_cp16(t.kvs + (size_t)(v ? 32 : 0) * rs16 + (size_t)(p - a.pa) * rs16 + d8 * 8,
                (v ? vcl : kcl) + (size_t)p * hd + d8 * 8);
    }
  }
  for (int i = t.tid; i < a.hidden / 4; i += TP_CONS) tp_cp16(t.nwf + 4 * i, (const float*)lp[1] + 4 * i);
  for (int i = t.tid; i < a.nu * 16; i += TP_CONS) {
    const int gi = 2 * a.gu0 * 8 + i;
    tp_cp4(t.sgu + i, (const float*)lp[4] + (gi < 2 * a.inter ? gi : 0), gi < 2 * a.inter);
  }
  for (int i = t.tid; i < P / 4; i += TP_CONS)
    tp_cp16(t.sd + (l & 1) * P + 4 * i, (const float*)lp[5] + t.rank * P + 4 * i);
  tp_cp_commit();
}

#endif

extern "C" __global__ void __launch_bounds__(TP_THREADS, 1)
    decode_tp(const u8* __restrict__ ws, const u64* __restrict__ soff, const int* __restrict__ bplan,
              const u64* __restrict__ lplan, const float* __restrict__ lm_s, const float* __restrict__ final_norm,
              const u16* __restrict__ emb, const float* __restrict__ rope, int nlayers, int H, int KVH, int hd,
              int hidden, int inter, int vocab, float eps, float scale, u16* kc, u16* vc, int max_pos,
              long long layer_elems, int* step, float* logits, uint4* xll, u32* sync, int nslots, int xbs, int hmax,
              int kph, int kpo, int cap, int lmax, unsigned long long* prof) {
#if __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) u8 tp_smem[];
  __shared__ float bv[8];
  __shared__ int bi[8];
  Tp t;
  u32 C;
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(C));
  u32 rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  t.C = (int)C;
  t.rank = (int)rank;
  t.cl = blockIdx.x / C;
  t.ncl = gridDim.x / C;
  t.tid = threadIdx.x;
  t.warp = threadIdx.x >> 5;
  t.lane = threadIdx.x & 31;
  t.nslots = nslots;
  t.xbs = xbs;
  t.hidden = hidden;
  t.P = hidden / t.C;
  t.xll = xll;
  t.slot = t.phase = t.n = t.g = 0;
  t.waited = 0;
  t.timed = prof != nullptr && threadIdx.x == 0;
  const int G = H / KVH, qvn = (G + 2) * hd, natt = G * hd;
  const int TQ = (qvn + 15) / 16, nqmax = 16 * ((TQ + t.C - 1) / t.C);
  tp_layout(t, tp_smem, hidden, max(kph, kpo), t.C, xbs, qvn, natt, hmax, t.P, hd, nqmax, lmax);
  const int b = blockIdx.x, P = t.P;
  const bool attn = t.cl < KVH;
  const int q0 = t.rank * TQ / t.C, nq = (t.rank + 1) * TQ / t.C - q0;
  const int gu0 = bplan[b * 8], nu = bplan[b * 8 + 1], lm0 = bplan[b * 8 + 2], nlm = bplan[b * 8 + 3];
  const int pt = (P + 15) / 16, ht = (hidden + 15) / 16;
  // Bytes of this block's stages (the producer's copies and the consumers' slots follow the same list).
  const u32 by_qkv = attn ? (u32)nq * kph * 16 : 0u, by_o = attn ? (u32)pt * kpo * 16 : 0u;
  const u32 by_gu = (u32)nu * kph * 16, by_down = (u32)ht * nu * 128, by_lm = (u32)nlm * kph * 16;
  if (t.tid == 0) {
    for (int i = 0; i < nslots; ++i) {
      mbar_init(t.full + i, 1);
      mbar_init(t.empty + i, 8);
    }
    mbar_init(t.xbar, 1);
    mbar_init(t.xbar + 1, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  PDL_WAIT();
  tp_cluster_sync();  // every block of the cluster has started and set up its barriers before any DSMEM traffic

  if (t.warp == 8) {
    // Producer: lane 0 streams the block's whole step, stage by stage, each stage in slots of up to 16 KB.
    if (t.lane == 0) {
      u64 policy;
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
      u32 it = 0;
      // Profiling: per layer, the ns spent waiting for a free slot (the ring full) and for copies to land (the cap).
      u64 w_full = 0, w_cap = 0;
      auto issue = [&](const u8* src, u32 bytes) {
        for (u32 off = 0; off < bytes; off += TP_SLOT, ++it) {
          const u32 n = min((u32)TP_SLOT, bytes - off), s = it % (u32)nslots, round = it / (u32)nslots;
          const u64 t0 = prof ? tp_now() : 0;
          if (round > 0) tp_wait<false>(t.empty + s, (round - 1) & 1u);
          const u64 t1 = prof ? tp_now() : 0;
          if (cap > 0 && it >= (u32)cap) tp_wait<false>(t.full + (it - cap) % (u32)nslots, ((it - cap) / (u32)nslots) & 1u);
          if (prof) {
            w_full += t1 - t0;
            w_cap += tp_now() - t1;
          }
          mbar_expect(t.full + s, n);
          bulk_g2s(t.ring + (size_t)s * TP_SLOT, src + off, n, t.full + s, policy);
        }
      };
      for (int l = 0; l <= nlayers; ++l) {
        if (prof && l > 0 && l <= TP_PROF_MAX / 4) {
          prof[((size_t)b * TP_PROF_MAX + TP_PROF_MAX / 2 + l - 1) * 2] = w_full;
          prof[((size_t)b * TP_PROF_MAX + TP_PROF_MAX / 2 + l - 1) * 2 + 1] = w_cap;
          w_full = w_cap = 0;
        }
        const u8* src = ws + soff[(size_t)l * gridDim.x + b];
        if (l == nlayers) {
          issue(src, by_lm);
          break;
        }
        issue(src, by_qkv);
        issue(src + by_qkv, by_o);
        issue(src + by_qkv + by_o, by_gu);
        issue(src + by_qkv + by_o + by_gu, by_down);
      }
    }
    __syncwarp();
    tp_cluster_sync();
    return;
  }

  // Consumers.
  const int token = step[0], pos = step[1];
  t.seq0 = __ldcg(sync + 5) * (u32)(2 * nlayers + 2);
  const int half = hd / 2;
  const int L = pos + 1, pa = t.rank * L / t.C, pb = (t.rank + 1) * L / t.C;
  const int rs16 = hd + 8;  // a staged K / V row, padded by 16 bytes against bank conflicts

  TpPf pf{lplan, final_norm, lm_s, kc, vc, layer_elems, nlayers, hidden, inter, vocab, hd, max_pos, pos, G, H, KVH,
          qvn, attn, nq, q0, nu, gu0, nlm, lm0, pa, pb, P};
  auto prefetch = [&](int l) { tp_prefetch(t, pf, l); };
  // x from an all-gather of the blocks' P rows (row r of xa, stride xbs), then a barrier.
  auto gather_x = [&](const float* xa) {
    if (xbs == P)
      for (int i = t.tid; i < hidden / 4; i += TP_CONS) ((float4*)t.x)[i] = ((const float4*)xa)[i];
    else
      for (int i = t.tid; i < hidden; i += TP_CONS) t.x[i] = xa[(size_t)(i / P) * xbs + i % P];
    tp_sync();
  };

  for (int j = t.tid; j < half; j += TP_CONS) {
    float c, s;
    rope_cs(rope, half, pos, j, &c, &s);
    t.rcs[2 * j] = c;
    t.rcs[2 * j + 1] = s;
  }
  // prof != 0 (profiling only): thread 0 of every block stamps %globaltimer and a phase id at each phase's end
  // (the first half of its TP_PROF_MAX pairs; CudaModel::profile_tp names the phases).
  int pm = 0;
  auto mark = [&](int id) {
    if (prof && t.tid == 0 && pm < TP_PROF_MAX / 2) {
      prof[((size_t)b * TP_PROF_MAX + pm) * 2] = tp_now();
      prof[((size_t)b * TP_PROF_MAX + pm) * 2 + 1] = (unsigned long long)id;
    }
    ++pm;
  };
  // Profiling: the ns thread 0 waited for ring slots since the last call, as (ns, id) after the producer's words.
  int pv = 0;
  auto mark_wait = [&](int id) {
    if (prof && t.tid == 0 && pv < TP_PROF_MAX / 4) {
      prof[((size_t)b * TP_PROF_MAX + 3 * TP_PROF_MAX / 4 + pv) * 2] = t.waited;
      prof[((size_t)b * TP_PROF_MAX + 3 * TP_PROF_MAX / 4 + pv) * 2 + 1] = (unsigned long long)id;
    }
    t.waited = 0;
    ++pv;
  };
  mark(0);
  prefetch(0);
  for (int i = t.tid; i < hidden; i += TP_CONS) t.x[i] = bf16_to_f32(emb[(size_t)token * hidden + i]);
  tp_sync();
  for (int layer = 0; layer < nlayers; ++layer) {
    tp_cp_wait();  // this layer's small vectors and first K/V chunk (tp_prefetch), from every thread
    for (int i = t.tid; i < P; i += TP_CONS) t.xr[i] = t.x[t.rank * P + i];
    tp_sync();
    mark(1);
    if (attn) {
      const int grp = t.cl;
      float inv = tp_stage(t, t.x, hidden, kph, t.nwa, eps);
      mark(2);
      float* mine = t.part;  // reused after the GEMV: this block's q/k/v values (nqmax)
      tp_gemv(t, nq, kph, t.hb);
      mark(3);
      mark_wait(3);
      for (int i = t.tid; i < nqmax; i += TP_CONS) mine[i] = i < nq * 16 ? t.hb[i] * t.sq[i] * inv : 0.f;
      tp_sync();
      const float* all = tp_cx(t, mine, 0, nqmax, false);
      for (int i = t.tid; i < qvn; i += TP_CONS) {
        const int tile = i / 16;
        // The block holding this tile: the last one whose first tile is at or before it.
        int owner = min(t.C - 1, ((tile + 1) * t.C - 1) / TQ);
        while (owner > 0 && owner * TQ / t.C > tile) --owner;
        while (owner + 1 < t.C && (owner + 1) * TQ / t.C <= tile) ++owner;
        t.qv[i] = all[(size_t)owner * t.xbs + (i - (owner * TQ / t.C) * 16)];
      }
      tp_sync();
      mark(4);
      // RoPE on q (G heads) and k, in place; k and v rounded to bf16 as the cache keeps them.
      for (int i = t.tid; i < (G + 1) * half; i += TP_CONS) {
        const int hh = i / half, j = i % half;
        const float c = t.rcs[2 * j], s = t.rcs[2 * j + 1];
        float* r = t.qv + hh * hd;
        const float a = r[j], bb = r[j + half];
        float na = a * c - bb * s, nb = bb * c + a * s;
        if (hh == G) {
          na = bf16_round(na);
          nb = bf16_round(nb);
        }
        r[j] = na;
        r[j + half] = nb;
      }
      for (int i = t.tid; i < hd; i += TP_CONS) t.qv[(G + 1) * hd + i] = bf16_round(t.qv[(G + 1) * hd + i]);
      tp_sync();
      u16* kcl = kc + (size_t)layer * layer_elems + ((size_t)grp * max_pos) * hd;
      u16* vcl = vc + (size_t)layer * layer_elems + ((size_t)grp * max_pos) * hd;
      if (t.rank == 0)
        for (int i = t.tid; i < hd; i += TP_CONS) {
          kcl[(size_t)pos * hd + i] = (u16)f32_to_bf16(t.qv[G * hd + i]);
          vcl[(size_t)pos * hd + i] = (u16)f32_to_bf16(t.qv[(G + 1) * hd + i]);
        }
      mark(5);
      // Attention partials over this block's positions [pa, pb), 32 at a time: the chunk's K and V rows staged in
      // shared memory (the current position's from qv; the first chunk's cached rows came with tp_prefetch), then
      // warp w < G scores and sums them for query head w.
      u16* ks = t.kvs;
      u16* vs = t.kvs + 32 * rs16;
      const float* qh = t.qv + t.warp * hd;
      float m = NEG_INF, l = 0.f, o0 = 0.f, o1 = 0.f, o2 = 0.f, o3 = 0.f;
      for (int c0 = pa; c0 < pb; c0 += 32) {
        const int np = min(32, pb - c0), h8 = hd / 8;
        for (int i = t.tid; i < 2 * np * h8; i += TP_CONS) {
          const int which = i / (np * h8), rem = i % (np * h8), p = c0 + rem / h8, d8 = rem % h8;
          if (c0 == pa && p != pos) continue;  // already there
          uint4 v;
          if (p == pos) {
            const float* src = t.qv + (G + which) * hd + d8 * 8;
            v.x = f32_to_bf16(src[0]) | (f32_to_bf16(src[1]) << 16);
            v.y = f32_to_bf16(src[2]) | (f32_to_bf16(src[3]) << 16);
            v.z = f32_to_bf16(src[4]) | (f32_to_bf16(src[5]) << 16);
            v.w = f32_to_bf16(src[6]) | (f32_to_bf16(src[7]) << 16);
          } else {
            v = __ldcg((const uint4*)((which ? vcl : kcl) + (size_t)p * hd) + d8);
          }
          *(uint4*)((which ? vs : ks) + (size_t)(p - c0) * rs16 + d8 * 8) = v;
        }
        tp_sync();
        if (t.warp < G) {
          float sc = NEG_INF;
          if (t.lane < np) {
            const uint4* kr = (const uint4*)(ks + (size_t)t.lane * rs16);
            float acc = 0.f;
            for (int d8 = 0; d8 < h8; ++d8) {
              const uint4 kv = kr[d8];
              const u32 wv[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                acc = fmaf(qh[d8 * 8 + 2 * e], bf16_to_f32(wv[e]), acc);
                acc = fmaf(qh[d8 * 8 + 2 * e + 1], bf16_to_f32(wv[e] >> 16), acc);
              }
            }
            sc = acc * scale;
          }
          const float mn = fmaxf(m, warp_max(sc));
          const float corr = m == NEG_INF ? 0.f : __expf(m - mn);
          const float e = t.lane < np ? __expf(sc - mn) : 0.f;
          l = l * corr + warp_sum(e);
          o0 *= corr;
          o1 *= corr;
          o2 *= corr;
          o3 *= corr;
          for (int j = 0; j < np; ++j) {
            const float ej = __shfl_sync(0xffffffffu, e, j);
            const u16* vr = vs + (size_t)j * rs16;
            if (t.lane < hd) o0 = fmaf(ej, bf16_to_f32(vr[t.lane]), o0);
            if (t.lane + 32 < hd) o1 = fmaf(ej, bf16_to_f32(vr[t.lane + 32]), o1);
            if (t.lane + 64 < hd) o2 = fmaf(ej, bf16_to_f32(vr[t.lane + 64]), o2);
            if (t.lane + 96 < hd) o3 = fmaf(ej, bf16_to_f32(vr[t.lane + 96]), o3);
          }
          m = mn;
        }
        tp_sync();
      }
      float* pm = t.part;  // [G][hd + 2]: o, then m, l
      if (t.warp < G) {
        float* dst = pm + t.warp * (hd + 2);
        if (t.lane < hd) dst[t.lane] = o0;
        if (t.lane + 32 < hd) dst[t.lane + 32] = o1;
        if (t.lane + 64 < hd) dst[t.lane + 64] = o2;
        if (t.lane + 96 < hd) dst[t.lane + 96] = o3;
        if (t.lane == 0) {
          dst[hd] = m;
          dst[hd + 1] = l;
        }
      }
      tp_sync();
      mark(6);
      // Reduce-scatter: block r combines outputs [r D, (r + 1) D) (D = G hd / C, within one head).
      const int D = natt / t.C, dpay = (D + 2 + 3) & ~3;
      float* sc = t.part + 1024;  // [C][dpay]: what goes to each peer (o slice, m, l)
      for (int i = t.tid; i < t.C * dpay; i += TP_CONS) {
        const int peer = i / dpay, k = i % dpay, e0 = peer * D, hh = e0 / hd, d0 = e0 % hd;
        const float* src = pm + hh * (hd + 2);
        sc[i] = k < D ? src[d0 + k] : (k == D ? src[hd] : (k == D + 1 ? src[hd + 1] : 0.f));
      }
      tp_sync();
      const float* rs = tp_cx(t, sc, dpay, dpay, true);
      float* comb = t.part;
      for (int k = t.tid; k < D; k += TP_CONS) {
        float M = NEG_INF;
        for (int r = 0; r < t.C; ++r) M = fmaxf(M, rs[(size_t)r * xbs + D]);
        float num = 0.f, den = 0.f;
        for (int r = 0; r < t.C; ++r) {
          const float* row = rs + (size_t)r * xbs;
          const float w = row[D] == NEG_INF ? 0.f : __expf(row[D] - M);
          num = fmaf(w, row[k], num);
          den = fmaf(w, row[D + 1], den);
        }
        comb[k] = num / den;
      }
      for (int k = D + t.tid; k < ((D + 3) & ~3); k += TP_CONS) comb[k] = 0.f;
      tp_sync();
      const float* ag = tp_cx(t, comb, 0, (D + 3) & ~3, false);
      for (int i = t.tid; i < natt; i += TP_CONS) t.att[i] = ag[(size_t)(i / D) * xbs + i % D];
      tp_sync();
      mark(7);
      // o: this block's P rows of o times the group's G hd columns.
      inv = tp_stage(t, t.att, natt, kpo, nullptr, eps);
      tp_gemv(t, pt, kpo, t.hb);
      for (int i = t.tid; i < P; i += TP_CONS) t.hb[i] *= t.so[i] * inv;
      tp_sync();
      mark(8);
      mark_wait(8);
    }
    // x += o (the KVH attention clusters' partials of this block's rows), all-gathered in the cluster.
    float* sum = t.part;
    tp_gx(t, attn, t.hb, KVH, sum);
    mark(9);
    for (int i = t.tid; i < P; i += TP_CONS) sum[i] += t.xr[i];
    tp_sync();
    {
      for (int i = t.tid; i < P; i += TP_CONS) t.xr[i] = sum[i];
      gather_x(tp_cx(t, sum, 0, P, false));
      mark(10);
    }
    // gate/up -> silu(gate) up for this block's units, then down's partial sums of every hidden row.
    {
      const float inv = tp_stage(t, t.x, hidden, kph, t.nwf, eps);
      mark(11);
      tp_gemv(t, nu, kph, t.hb);
      mark(12);
      mark_wait(12);
      float amax = 0.f;
      for (int i = t.tid; i < nu * 8; i += TP_CONS) {
        const int u = i / 8, r = i % 8;
        const float gv = t.hb[u * 16 + r] * t.sgu[16 * u + 2 * r] * inv;
        const float uv = t.hb[u * 16 + 8 + r] * t.sgu[16 * u + 2 * r + 1] * inv;
        const float hv = bf16_round(silu_mul(gv, uv));
        t.hf[i] = hv;
        amax = fmaxf(amax, fabsf(hv));
      }
      const int sh = f16_shift(tp_block_max(t, amax, 16));
      const float up = exp2i(sh);
      for (int i = t.tid; i < nu * 8; i += TP_CONS) t.h16[i] = f32_to_f16_bits(t.hf[i] * up);
      prefetch(layer + 1);  // every small vector of this layer but down's scales (in the other half) is used
      tp_sync();
      mark(13);
      tp_down(t, ht, nu, exp2i(-sh), t.x);  // t.x becomes the partial sums (all rows; zeros with no units)
      mark(14);
      mark_wait(14);
    }
    // Reduce-scatter in the cluster (block r: the sums of its P rows), then the global exchange over all clusters.
    {
      const float* rs = tp_cx(t, t.x, P, P, true);
      float* piece = t.att;
      for (int i = t.tid; i < P; i += TP_CONS) {
        float s = 0.f;
        for (int r = 0; r < t.C; ++r) s += rs[(size_t)r * xbs + i];
        piece[i] = s;
      }
      tp_sync();
      mark(15);
      float* sum2 = t.part;
      tp_gx(t, true, piece, t.ncl, sum2);
      mark(16);
      for (int i = t.tid; i < P; i += TP_CONS) sum2[i] = t.xr[i] + sum2[i] * t.sd[(layer & 1) * P + i];
      tp_sync();
      gather_x(tp_cx(t, sum2, 0, P, false));
      mark(17);
    }
  }
  // Final norm and this block's rows of lm_head; greedy argmax over the grid.
  float best_v = NEG_INF;
  int best_i = 0x7fffffff;
  {
    tp_cp_wait();
    tp_sync();
    const float inv = tp_stage(t, t.x, hidden, kph, t.nwa, eps);
    mark(18);
    tp_gemv(t, nlm, kph, t.hb);
    for (int i = t.tid; i < nlm * 16; i += TP_CONS) {
      const int row = lm0 * 16 + i;
      if (row < vocab) {
        const float y = t.hb[i] * t.sl[i] * inv;
        logits[row] = y;
        if (y > best_v || (y == best_v && row < best_i)) {
          best_v = y;
          best_i = row;
        }
      }
    }
  }
  mark(19);
  mark_wait(19);
  step_argmax_finish(best_v, best_i, bv, bi, sync, step, pos);
  mark(20);
  tp_cluster_sync();  // no block leaves while a peer may still store into its shared memory
#endif
}
