// Persistent decode kernel (v8, docs/gpu.md): one launch runs a whole FP8 decode step — embedding, every
// layer, final norm, lm_head, greedy argmax — on one block per SM, instead of ~113 kernels.
//
// Why: as separate kernels each GEMV pays a ramp-up and a tail (measured ~6-8 us per GEMV on top of its
// bytes). Here the weights never wait for the activations (they do not depend on them): each block's
// producer thread streams its share of every weight matrix of the step, in order, into a ring of
// shared-memory slots with bulk copies (cp.async.bulk, completing on an mbarrier), running ahead across the
// grid barriers between stages as far as the ring allows. The consumer warps wait only for the activations
// (one grid barrier per dependent stage) and for their tile's slot.
//
// Status: opt-in (VIVA_TENSOR_PERSIST=1); measured slower than the multi-kernel graph on an H100 (docs/gpu.md,
// v8: the per-stage chain of grid barrier + L2 loads under full DRAM traffic costs ~7 us, 5 stages a layer;
// v16: the barrier alone releases ~2.7 us after its last block arrives, where a PDL hand-off takes ~0.45 us, and a
// cap on the producer's bytes in flight does not shorten it).
//
// Block: 8 consumer warps (threads 0..255) + 1 producer warp (thread 256 issues the copies). The ring has at
// least 8 slots (one per consumer warp), so no warp waits on a slot two fills ahead of the producer, which an
// mbarrier parity wait could not tell from the fill before.
// Rows: each matrix's rows are split over the blocks in contiguous ranges (gate/up keeps its interleaved
// (gate_j, up_j) pairs together). A tile is RT whole rows (RT the largest power of two <= 8 with
// RT x Kp <= tile_bytes; at least 2 for gate/up), so it is two bulk copies: the rows, and their f32 block
// scales (a 16-byte-aligned superset). (v8b copied 8 rows x 1 KB of K row by row: ~700 copies per layer
// per SM, and the one producer thread's issue rate became the limit.) Tile i of a stage goes to consumer
// warp i % 8.
// Math on the tensor cores (mma.sync m16n8k16, f16 x f16 -> f32): B = 8 weight rows x 16 k (rows past RT
// repeat a valid row; their sums are dropped), converted exactly from E4M3 (cvt.rn.f16x2.e4m3x2); A = the
// staged activation x' (every row the same; row 0 is read back).
// The 16 k of an mma are a fixed permutation of 16 of the 64 bytes a lane group reads (lane q holds
// bytes 16q..16q+15 of a 64-byte segment; mma j takes bytes 16q+4j..16q+4j+3 as k = 2q, 2q+1, 2q+8, 2q+9),
// applied to x' and the weights alike. One 64-k segment = 4 mmas, then its f32 block scale (qblock 64 or
// 128) is applied in f32; row sums go to a per-block shared accumulator, and the stage's epilogue writes
// the outputs after a block barrier. The slot's row stride is Kp (one contiguous copy): the 8 lanes of an
// LDS.128 phase read 2 rows at the same columns, a 2-way bank conflict.
// x' = bf16-rounded activation (the A16 numerics of gemv.cu) times a power of two 2^e chosen per stage so
// that max |x'| < 2^14; as f16 this is exact (bf16's 8-bit mantissa fits f16's 11 bits) except for values
// below 2^-24 of the scale; the epilogue multiplies by 2^-e.
//
// Stages of a layer (G = grid barrier): [attn RMSNorm -> x'; qkv tiles] G [RoPE + KV write + GQA split-KV
// attention, kernels/attention.cu gqa_item, last split combines] G [att -> x'; o tiles, x += ] G
// [ffn RMSNorm -> x'; gate/up tiles, act = silu(g) * u] G [act -> x'; down tiles, x += ] G (next layer).
// Then [final norm -> x'; lm_head tiles -> logits, per-block argmax -> one 64-bit atomicMax]; the last
// block to finish writes step = [argmax, pos + 1] and resets the sync words.
// Every block computes the RMSNorm statistics itself (K reads from L2); layer 0 reads the embedding row
// directly (block 0 also stores it as the residual x).
//
// plan: per layer 10 u64: qkv w, qkv s, o w, o s, gate/up w, gate/up s, down w, down s, attn_norm, ffn_norm.
// sync (u32, zeroed at allocation, reset by the kernel): [0] barrier counter, [2..3] argmax key, [4] done.
// Dynamic shared memory: ring (nslots x slot_bytes) | xs32 (xs_bytes: f32 staging, also the attention
// tiles) | xs16 (x16_bytes: f16 x') | accs (acc_rows f32 row sums).

#define PK_CONS 256
#define PK_THREADS 288
#define PK_WARPS 8
// Profiling categories (CudaModel::profile_persist names them in this order) and the most marks recorded.
#define PK_P_SYNC 0
#define PK_P_STAGE 1
#define PK_P_QKV 2
#define PK_P_ATTN 3
#define PK_P_O 4
#define PK_P_GU 5
#define PK_P_DOWN 6
#define PK_P_LM 7
#define PK_P_FINISH 8
#define PK_P_START 9
#define PK_PROF_MAX 1024
#define PK_BAR_MAX 128

#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void cons_sync() { asm volatile("bar.sync 1, 256;" ::: "memory"); }

// Grid-wide barrier of the consumer threads of every block (one monotonic counter; the grid is
// co-resident: cooperative launch, one block per SM).
// st (profiling only, else null): this block's two stamps of this barrier, %globaltimer at its arrival (all its
// consumer warps in) and at its release.
__device__ __forceinline__ void pk_grid_sync(u32* bar, u32& target, unsigned long long* st) {
  target += gridDim.x;
  cons_sync();
  if (threadIdx.x == 0) {
    if (st) asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(st[0]));
    __threadfence();
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
    u32 v;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
    } while (v < target);
    __threadfence();
    if (st) asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(st[1]));
  }
  cons_sync();
}
#endif


// Contiguous share [r0, r1) of N rows for block b of nb (pairs: units of two rows).
__device__ __forceinline__ void pk_rows(int N, bool pairs, int b, int nb, int* r0, int* r1) {
  const int u = pairs ? N / 2 : N, base = u / nb, extra = u % nb;
  const int a = b * base + min(b, extra), e = a + base + (b < extra ? 1 : 0);
  *r0 = pairs ? 2 * a : a;
  *r1 = pairs ? 2 * e : e;
}

// Rows per tile (CudaModel's persist_plan computes the same to size the slots).
__device__ __forceinline__ int pk_rows_per_tile(int Kp, bool pairs, int tile_bytes) {
  int r = 8;
  while (r > 1 && r * Kp > tile_bytes) r >>= 1;
  return pairs ? max(r, 2) : r;
}

struct PkStage {
  const u8* w;
  const float* s;
  int N, Kp;
  bool pairs;
};

// Byte offset (16-aligned down) of the scales of rows [rr, rr + nr) and the superset's length.
__device__ __forceinline__ void pk_scale_span(int rr, int nr, int nsc, size_t* a0, u32* len) {
  const size_t s0 = (size_t)rr * nsc * 4, s1 = s0 + (size_t)nr * nsc * 4;
  *a0 = s0 & ~(size_t)15;
  *len = (u32)(((s1 + 15) & ~(size_t)15) - *a0);
}

// Consumer side of one GEMV stage (x' staged, accs zeroed): this block's tiles tbase.. of the stream, row
// sums into accs; then (after a block barrier) the epilogue, with inv = 2^-e of the staging:
// mode 0: y[n] = v; 1: y[n] += v (residual); 2: y[n / 2] = silu(v[n]) * v[n + 1]; 3: as 0 plus argmax.
__device__ __forceinline__ void pk_gemv(const PkStage& st, int mode, float* __restrict__ y, const u8* xs16,
                                        float* accs, float inv, u8* ring, u64* full, u64* empty, int nslots,
                                        int slot_bytes, int slot_w, int qblock, int tile_bytes, int& tbase,
                                        float* best_v, int* best_i) {
#if __CUDA_ARCH__ >= 900
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  int r0, r1;
  pk_rows(st.N, st.pairs, blockIdx.x, gridDim.x, &r0, &r1);
  const int RT = pk_rows_per_tile(st.Kp, st.pairs, tile_bytes), nsc = st.Kp / qblock;
  const int ntiles = (r1 - r0 + RT - 1) / RT;
  for (int i = warp; i < ntiles; i += PK_WARPS) {
    const int t = tbase + i, slot = t % nslots;
    const int rr = r0 + i * RT, nr = min(RT, r1 - rr);
    mbar_wait(full + slot, (u32)(t / nslots) & 1u);
    const u8* sw = ring + (size_t)slot * slot_bytes;
    const u8* wrow = sw + (size_t)min(g, nr - 1) * st.Kp + 16 * q;
    // Scales of rows 2q and 2q + 1 (the D columns this lane holds), at pk_scale_span's superset offset.
    const float* sbase = (const float*)(sw + slot_w + (((size_t)rr * nsc * 4) & 15));
    const float* sc0 = sbase + (size_t)min(2 * q, nr - 1) * nsc;
    const float* sc1 = sbase + (size_t)min(2 * q + 1, nr - 1) * nsc;
    const u8* xq = xs16 + 32 * q;
    float acc0 = 0.f, acc1 = 0.f;
    const int nseg = st.Kp / 64;
#pragma unroll 2
    for (int sg = 0; sg < nseg; ++sg) {
      const uint4 w = *(const uint4*)(wrow + 64 * sg);
      const uint4 xa = *(const uint4*)(xq + 128 * sg), xb = *(const uint4*)(xq + 128 * sg + 16);
      const u32 wv[4] = {w.x, w.y, w.z, w.w};
      const u32 xv[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
      float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        u32 b0, b1;
        fp8x4_to_f16x2(wv[j], &b0, &b1);
        mma_f16(d, xv[2 * j], xv[2 * j + 1], b0, b1);
      }
      const int si = (64 * sg) / qblock;
      acc0 = fmaf(d[0], sc0[si], acc0);
      acc1 = fmaf(d[1], sc1[si], acc1);
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(empty + slot);  // the slot may be refilled; the sums are in registers
    if (g == 0) {
      if (2 * q < nr) accs[rr - r0 + 2 * q] = acc0;
      if (2 * q + 1 < nr) accs[rr - r0 + 2 * q + 1] = acc1;
    }
  }
  tbase += ntiles;
  cons_sync();
  for (int i = threadIdx.x; i < r1 - r0; i += PK_CONS) {
    const int n = r0 + i;
    const float v = accs[i] * inv;
    if (mode == 2) {
      if ((i & 1) == 0) y[n >> 1] = silu_mul(v, accs[i + 1] * inv);
    } else if (mode == 1) {
      y[n] = __ldcg(y + n) + v;
    } else {
      y[n] = v;
      if (mode == 3 && (v > *best_v || (v == *best_v && n < *best_i))) {
        *best_v = v;
        *best_i = n;
      }
    }
  }
#endif
}

// x' for a stage: from an f32 vector (or the bf16 embedding row, emb != 0), RMS-normalised with norm_w when
// given, rounded to bf16 (A16), then scaled by 2^e into f16 (xs16, zero-padded to Kp); zeroes accs[0, nacc).
// Returns 2^-e. Consumer threads only. The loads of a batch of PK_NB elements per thread are all issued
// before any is used (one L2 round trip per batch; a plain loop serialises them behind its stores), and the
// norm weights of a one-batch row stay in registers.
#define PK_NB 24
__device__ __forceinline__ float pk_stage_x(const float* __restrict__ src, const u16* __restrict__ emb, float* store,
                                            const float* __restrict__ norm_w, float eps, int K, int Kp, float* xs32,
                                            u16* xs16, float* accs, int nacc, float* red) {
#if __CUDA_ARCH__ >= 900
  const int tid = threadIdx.x;
  const bool one = K <= PK_NB * PK_CONS;
  float wv[PK_NB];
  float ss = 0.f;
  for (int base = 0; base < K; base += PK_NB * PK_CONS) {
    float v[PK_NB];
#pragma unroll
    for (int j = 0; j < PK_NB; ++j) {
      const int k = base + tid + j * PK_CONS;
      v[j] = 0.f;
      if (k < K) v[j] = emb ? bf16_to_f32(emb[k]) : __ldcg(src + k);
      if (one && norm_w) wv[j] = k < K ? __ldg(norm_w + k) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < PK_NB; ++j) {
      const int k = base + tid + j * PK_CONS;
      if (k < K) {
        if (store) store[k] = v[j];
        ss = fmaf(v[j], v[j], ss);
        xs32[k] = v[j];
      }
    }
  }
  for (int i = tid; i < nacc; i += PK_CONS) accs[i] = 0.f;
  float rs = 1.f;
  if (norm_w) {
    ss = warp_sum(ss);
    if ((tid & 31) == 0) red[tid >> 5] = ss;
    cons_sync();
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < PK_WARPS; ++w) t += red[w];
    rs = 1.0f / sqrtf(t / (float)K + eps);
  }
  float amax = 0.f;
  for (int base = 0; base < K; base += PK_NB * PK_CONS) {
#pragma unroll
    for (int j = 0; j < PK_NB; ++j) {
      const int k = base + tid + j * PK_CONS;
      if (k < K) {
        float v = xs32[k];
        if (norm_w) v = (one ? wv[j] : __ldg(norm_w + k)) * (v * rs);
        v = bf16_round(v);
        xs32[k] = v;
        amax = fmaxf(amax, fabsf(v));
      }
    }
  }
  amax = warp_max(amax);
  if ((tid & 31) == 0) red[PK_WARPS + (tid >> 5)] = amax;
  cons_sync();
  amax = 0.f;
#pragma unroll
  for (int w = 0; w < PK_WARPS; ++w) amax = fmaxf(amax, red[PK_WARPS + w]);
  const int sh = f16_shift(amax);
  const float up = exp2i(sh);
  for (int k = tid; k < Kp; k += PK_CONS) xs16[k] = k < K ? f32_to_f16_bits(xs32[k] * up) : (u16)0;
  cons_sync();
  return exp2i(-sh);
#else
  return 1.f;
#endif
}

extern "C" __global__ void __launch_bounds__(PK_THREADS, 1)
    decode_persist(const u64* __restrict__ plan, int nlayers, const u8* __restrict__ lm_w,
                   const float* __restrict__ lm_s, const float* __restrict__ final_norm, const u16* __restrict__ emb,
                   const float* __restrict__ rope, int H, int KVH, int hd, int hidden, int inter, int vocab,
                   int qblock, float eps, float scale, u16* kc, u16* vc, int max_pos, long long layer_elems,
                   int* step, float* x, float* qkv, float* att, float* act, float* logits, float* po, float* pml,
                   int* cnt, u32* sync, int tile_bytes, int nslots, int slot_bytes, int slot_w, int xs_bytes,
                   int x16_bytes,
                   int acc_rows, unsigned long long* prof) {
#if __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) u8 pk_smem[];
  __shared__ __align__(8) u64 full[64];
  __shared__ __align__(8) u64 empty[64];
  __shared__ float red[2 * PK_WARPS];
  __shared__ float bv[PK_WARPS];
  __shared__ int bi[PK_WARPS];
  u8* ring = pk_smem;
  float* xs32 = (float*)(pk_smem + (size_t)nslots * slot_bytes);
  u16* xs16 = (u16*)((u8*)xs32 + xs_bytes);
  float* accs = (float*)((u8*)xs16 + x16_bytes);
  const int tid = threadIdx.x;
  const int kp_h = (hidden + 127) / 128 * 128, kp_q = (H * hd + 127) / 128 * 128, kp_i = (inter + 127) / 128 * 128;
  const int qkv_n = (H + 2 * KVH) * hd;
  if (tid == 0) {
    for (int i = 0; i < nslots; ++i) {
      mbar_init(full + i, 1);
      mbar_init(empty + i, 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  auto stage_of = [&](int layer, int kind) -> PkStage {
    const u64* p = plan + (size_t)layer * 10;
    switch (kind) {
      case 0: return PkStage{(const u8*)p[0], (const float*)p[1], qkv_n, kp_h, false};
      case 1: return PkStage{(const u8*)p[2], (const float*)p[3], hidden, kp_q, false};
      case 2: return PkStage{(const u8*)p[4], (const float*)p[5], 2 * inter, kp_h, true};
      case 3: return PkStage{(const u8*)p[6], (const float*)p[7], hidden, kp_i, false};
      default: return PkStage{lm_w, lm_s, vocab, kp_h, false};
    }
  };

  if (tid >= PK_CONS) {
    // Producer: thread 256 streams this block's tiles of every matrix of the step, in consumption order.
    if (tid != PK_CONS) return;
    u64 policy;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    int t = 0;
    for (int layer = 0; layer <= nlayers; ++layer) {
      for (int kind = 0; kind < 4; ++kind) {
        if (layer == nlayers && kind > 0) break;
        const PkStage st = stage_of(layer, layer == nlayers ? 4 : kind);
        int r0, r1;
        pk_rows(st.N, st.pairs, blockIdx.x, gridDim.x, &r0, &r1);
        const int RT = pk_rows_per_tile(st.Kp, st.pairs, tile_bytes), nsc = st.Kp / qblock;
        for (int rr = r0; rr < r1; rr += RT, ++t) {
          const int nr = min(RT, r1 - rr), slot = t % nslots;
          if (t >= nslots) mbar_wait(empty + slot, (u32)(t / nslots - 1) & 1u);
          u8* dst = ring + (size_t)slot * slot_bytes;
          size_t a0;
          u32 len;
          pk_scale_span(rr, nr, nsc, &a0, &len);
          const u32 wb = (u32)(nr * st.Kp);
          mbar_expect(full + slot, wb + len);
          bulk_g2s(dst, st.w + (size_t)rr * st.Kp, wb, full + slot, policy);
          bulk_g2s(dst + slot_w, (const u8*)st.s + a0, len, full + slot, policy);
        }
      }
    }
    return;
  }

  // Consumers. prof != 0 (profiling only): thread 0 of block 0 records (clock64, category) at each phase end.
  int pm = 0;
  auto mark = [&](int cat) {
    if (prof && blockIdx.x == 0 && tid == 0 && pm < PK_PROF_MAX) {
      prof[2 * pm] = (unsigned long long)clock64();
      prof[2 * pm + 1] = (unsigned long long)cat;
    }
    ++pm;
  };
  mark(PK_P_START);
  const int token = step[0], pos = step[1];
  u32 target = 0;
  int tbase = 0;
  // Per-block barrier stamps after block 0's marks: [block][barrier][arrive, release], PK_BAR_MAX barriers a block.
  int nbar = 0;
  auto gsync = [&]() {
    unsigned long long* st =
        prof && nbar < PK_BAR_MAX ? prof + 2 * PK_PROF_MAX + 2 * ((size_t)blockIdx.x * PK_BAR_MAX + nbar) : nullptr;
    ++nbar;
    pk_grid_sync(sync, target, st);
  };
  float best_v = NEG_INF;
  int best_i = 0x7fffffff;
  auto gemv = [&](int layer, int kind, int mode, float* y, float inv) {
    pk_gemv(stage_of(layer, kind), mode, y, (const u8*)xs16, accs, inv, ring, full, empty, nslots, slot_bytes,
            slot_w, qblock, tile_bytes, tbase, &best_v, &best_i);
  };
  auto stage = [&](const float* src, const u16* e, float* store, const float* nw, int K, int Kp) {
    return pk_stage_x(src, e, store, nw, eps, K, Kp, xs32, xs16, accs, acc_rows, red);
  };
  for (int layer = 0; layer < nlayers; ++layer) {
    const u64* p = plan + (size_t)layer * 10;
    if (layer > 0) {
      gsync();
      mark(PK_P_SYNC);
    }
    float inv = layer == 0 ? stage(nullptr, emb + (size_t)token * hidden, blockIdx.x == 0 ? x : nullptr,
                                   (const float*)p[8], hidden, kp_h)
                           : stage(x, nullptr, nullptr, (const float*)p[8], hidden, kp_h);
    mark(PK_P_STAGE);
    gemv(layer, 0, 0, qkv, inv);
    mark(PK_P_QKV);
    gsync();
    mark(PK_P_SYNC);
    {
      const int L = pos + 1;
      const int nsplit = min(GQ_MAX_SPLIT, (L + GQ_TILE - 1) / GQ_TILE);
      u16* kcl = kc + (size_t)layer * layer_elems;
      u16* vcl = vc + (size_t)layer * layer_elems;
      for (int item = blockIdx.x; item < KVH * nsplit; item += gridDim.x)
        gqa_item<u16>(qkv, H, KVH, hd, kcl, vcl, max_pos, rope, pos, scale, 1, att, po, pml, cnt, item % KVH,
                      item / KVH, 0, GQ_MAX_SPLIT, (u8*)xs32, []() { cons_sync(); }, []() {},
                      nullptr);
    }
    mark(PK_P_ATTN);
    gsync();
    mark(PK_P_SYNC);
    inv = stage(att, nullptr, nullptr, nullptr, H * hd, kp_q);
    mark(PK_P_STAGE);
    gemv(layer, 1, 1, x, inv);
    mark(PK_P_O);
    gsync();
    mark(PK_P_SYNC);
    inv = stage(x, nullptr, nullptr, (const float*)p[9], hidden, kp_h);
    mark(PK_P_STAGE);
    gemv(layer, 2, 2, act, inv);
    mark(PK_P_GU);
    gsync();
    mark(PK_P_SYNC);
    inv = stage(act, nullptr, nullptr, nullptr, inter, kp_i);
    mark(PK_P_STAGE);
    gemv(layer, 3, 1, x, inv);
    mark(PK_P_DOWN);
  }
  gsync();
  mark(PK_P_SYNC);
  const float inv = stage(x, nullptr, nullptr, final_norm, hidden, kp_h);
  mark(PK_P_STAGE);
  gemv(nlayers, 4, 3, logits, inv);
  mark(PK_P_LM);

  // Greedy token over the grid; the last block publishes it and resets the sync words (common.cuh).
  step_argmax_finish(best_v, best_i, bv, bi, sync, step, pos);
  mark(PK_P_FINISH);
#endif
}
