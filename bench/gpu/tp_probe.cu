// tp_probe.cu: what a tensor-parallel persistent decode step could cost on this card, before anyone builds it.
//
// Session 11's question (docs/gpu.md v17). Today's decode step is a chain of five all-to-all hand-offs a layer
// (q/k/v -> attention -> o -> gate/up -> down), and every way of handing off has been measured at ~3 µs under
// load (v10-v16). Laid out the way tensor parallelism splits a layer over GPUs, a layer needs only two
// all-to-all steps, with each thread-block cluster of CL SMs playing one "GPU":
//   - q/k/v column-parallel: a cluster owns a slice of the heads; its CL blocks all-gather the q/k/v values in
//     distributed shared memory (DSMEM), and the attention of those heads runs inside the cluster (a DSMEM combine);
//   - o row-parallel: block r of every cluster produces rows [r*PIECE, (r+1)*PIECE) of the cluster's partial sum,
//     so one global exchange (16 partials a row at 16 clusters) plus a DSMEM all-gather gives every block x;
//   - gate/up column-parallel and down row-parallel: a block's silu(gate)*up values are exactly the K slice of down
//     it multiplies, so gate/up -> down needs no exchange at all; down's partials are reduced in the cluster
//     (DSMEM reduce-scatter), then one global exchange and an all-gather as for o.
// Every block streams its share of every weight matrix through a ring of shared-memory slots with bulk copies
// from one producer warp that runs ahead across all the waits, so the weight stream need not stop at a hand-off.
//
// The probe runs that schedule with the right byte counts and none of the model: weights, KV rows and exchanged
// values are real memory traffic and real DSMEM / global synchronisation, the GEMV math is optional (the same
// per-weight work as the engine's tensor-core GEMV: E4M3 -> f16x2 conversion and mma.sync m16n8k16), and the
// values computed are meaningless. Modes (bits): 1 stream the weights, 2 run the hand-offs, 4 do the GEMV math,
// 8 skip the global exchanges, 16 skip the cluster exchanges, 32 skip the attention's KV reads, 64 global exchanges
// with the flag in the data (each 16 bytes = two values and two copies of the exchange's sequence number, written by
// one store; readers poll the data itself) instead of a release / acquire counter.
// A cap (slots in flight) makes the producer wait for tile t - cap to land before issuing tile t.
//
// Build on the device (sm_90a for st.async and the cluster forms):
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o tp_probe bench/gpu/tp_probe.cu
//   ./tp_probe [iterations]
// It prints one row per (mode, layers) with µs per launch; per layer = (launch(22) - launch(0)) / 22.
#ifndef __CUDACC_RTC__  // NVRTC (a local syntax check with no CUDA toolkit) sees only the device code
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef CLN
#define CLN 8
#endif
constexpr int CL = CLN;            // blocks per cluster
constexpr int HID = 2048;          // hidden size (TinyLlama)
constexpr int PIECE = HID / CL;    // rows a block owns in a global exchange
constexpr int CW = 8;              // consumer warps
constexpr int NT = (CW + 1) * 32;  // + one producer warp
constexpr int SLOT = 16384;        // ring slot bytes
constexpr int NSLOT = 12;          // ring slots (192 KB)
constexpr int NSTAGE = 4;          // q/k/v, o, gate/up, down
constexpr int KVH = 4;             // KV heads (TinyLlama)

enum { M_STREAM = 1, M_SYNC = 2, M_MATH = 4, M_NOGLOBAL = 8, M_NOCLUSTER = 16, M_NOKV = 32, M_LL = 64 };

struct Params {
  const unsigned char* w;  // layers x layer_bytes, each stage's shares block by block
  u64 layer_bytes;
  u64 stage_off[NSTAGE];
  u32 stage_share[NSTAGE];  // bytes of each stage a block streams (multiple of 4096)
  const unsigned char* head;
  u32 head_share;
  const unsigned char* kv;  // layers x KVH x kv_group_bytes
  u32 kv_group_bytes, kv_share;
  int layers, ncl, mode;
  u32 gbase;  // global-exchange counter value at this launch's start (counters only grow)
  u32 cap;    // bulk copies in flight at most (0: the ring's depth)
  float* xch;  // [2][ncl][HID]
  uint4* xll;  // [2][ncl][HID / 2]: {v0, seq, v1, seq}
  u32* cnt;    // CL counters, 128 bytes apart
  float* sink;
};

constexpr u32 SMEM_RING = NSLOT * SLOT;
constexpr u32 SMEM_XB = 2 * CL * PIECE * 4;  // cluster exchange buffers, two parities
constexpr u32 SMEM_X = HID * 4;              // x as the GEMV input
constexpr u32 SMEM_PART = HID * 4;           // a block's partial sums
constexpr u32 SMEM_BARS = (2 * NSLOT + 2) * 8;
constexpr u32 SMEM_TOTAL = SMEM_RING + SMEM_XB + SMEM_X + SMEM_PART + SMEM_BARS;

__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ u64 gtime() {
  u64 t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
// A wait that cannot hang the device call: past 2 s something is wrong with the protocol.
__device__ __forceinline__ void watchdog(u64 t0, u32& spins) {
  if ((++spins & 1023u) == 0 && gtime() - t0 > 2000000000ull) __trap();
}
__device__ __forceinline__ void mbar_init(u64* b, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ bool mbar_try(u64* b, u32 parity) {
  u32 done;
  asm volatile(
      "{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n\tselp.u32 %0, 1, "
      "0, p;\n\t}"
      : "=r"(done)
      : "r"(smem_u32(b)), "r"(parity)
      : "memory");
  return done;
}
__device__ __forceinline__ void mbar_wait(u64* b, u32 parity) {
  if (mbar_try(b, parity)) return;
  const u64 t0 = gtime();
  u32 spins = 0;
  while (!mbar_try(b, parity)) watchdog(t0, spins);
}
__device__ __forceinline__ void mbar_arrive(u64* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
__device__ __forceinline__ void mbar_expect(u64* b, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, u32 bytes, u64* b, u64 policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(b)), "l"(policy)
      : "memory");
}
__device__ __forceinline__ u32 mapa(u32 a, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
  return r;
}
// 16 bytes into another block's shared memory, completing as bytes on that block's mbarrier.
__device__ __forceinline__ void st_async4(u32 raddr, float4 v, u32 rbar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];" ::"r"(raddr),
               "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(rbar)
               : "memory");
}
__device__ __forceinline__ void cluster_sync_all() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
__device__ __forceinline__ u32 cluster_rank() {
  u32 r;
  asm volatile("mov.u32 %0, %cluster_ctarank;" : "=r"(r));
  return r;
}
__device__ __forceinline__ void consumers_sync() { asm volatile("bar.sync 1, %0;" ::"n"(CW * 32) : "memory"); }

__device__ __forceinline__ void mma_f16(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void e4m3x4_to_f16x2(u32 w, u32* lo, u32* hi) {
  asm("{\n\t.reg .b16 l, h;\n\tmov.b32 {l, h}, %2;\n\tcvt.rn.f16x2.e4m3x2 %0, l;\n\tcvt.rn.f16x2.e4m3x2 %1, h;\n\t}"
      : "=r"(*lo), "=r"(*hi)
      : "r"(w));
}

struct Ctx {
  unsigned char* ring;
  float* xb;  // [2][CL][PIECE]
  float* x;
  float* part;
  u64* full;
  u64* empty;
  u64* xbar;  // [2]
  u32 it;     // ring sequence number (consumer side)
  u32 n;      // cluster exchanges done
  u32 g;      // global exchanges done
  u32 rank, cl, blk, ctid, warp, lane;
  float acc[4];
};

// One stage's share of weights, slot by slot: wait for it to land, (math), hand the slot back.
__device__ void consume(Ctx& c, const Params& p, u32 bytes) {
  for (u32 off = 0; off < bytes; off += SLOT) {
    const u32 b = min((u32)SLOT, bytes - off), slot = c.it % NSLOT, round = c.it / NSLOT;
    mbar_wait(&c.full[slot], round & 1);
    if (p.mode & M_MATH) {
      const u32 per_warp = b / CW;  // a multiple of 512: 16 bytes a lane
      const uint4* s = (const uint4*)(c.ring + slot * SLOT + c.warp * per_warp);
      const u32 b0 = __float_as_uint(c.x[c.lane]), b1 = __float_as_uint(c.x[c.lane + 32]);
      for (u32 i = c.lane; i < per_warp / 16; i += 32) {
        const uint4 v = s[i];
        u32 a[8];
        e4m3x4_to_f16x2(v.x, &a[0], &a[1]);
        e4m3x4_to_f16x2(v.y, &a[2], &a[3]);
        e4m3x4_to_f16x2(v.z, &a[4], &a[5]);
        e4m3x4_to_f16x2(v.w, &a[6], &a[7]);
        mma_f16(c.acc, a[0], a[1], a[2], a[3], b0, b1);
        mma_f16(c.acc, a[4], a[5], a[6], a[7], b0, b1);
      }
    }
    __syncwarp();
    if (c.lane == 0) mbar_arrive(&c.empty[slot]);
    ++c.it;
  }
}

// Cluster exchange: every block sends nfl floats to every block of its cluster (scatter: a different PIECE-float
// slice of src to each), as st.async stores that complete on the receiver's mbarrier; the receiver's rank-r row of
// xb[parity] then holds block r's data. Two buffers and barriers by parity, so a block one exchange ahead never
// writes where a slower one still reads (it needs the slower block's next send to get there).
__device__ void cl_xchg(Ctx& c, const Params& p, const float* src, u32 nfl, bool scatter) {
  if (p.mode & M_NOCLUSTER) return;
  const u32 par = c.n & 1, q = nfl / 4;
  if (c.ctid == 0) mbar_expect(&c.xbar[par], CL * nfl * 4);
  const u32 dst = smem_u32(c.xb + (par * CL + c.rank) * PIECE), bar = smem_u32(&c.xbar[par]);
  for (u32 i = c.ctid; i < CL * q; i += CW * 32) {
    const u32 peer = i / q, k = i % q;
    const float4 v = ((const float4*)src)[(scatter ? peer * (PIECE / 4) : 0) + k];
    st_async4(mapa(dst + k * 16, peer), v, mapa(bar, peer));
  }
  mbar_wait(&c.xbar[par], (c.n >> 1) & 1);
  consumers_sync();  // every send has read its source before anyone overwrites it
  ++c.n;
}

// Global exchange: block r of every cluster publishes its PIECE values, one counter per r counts the clusters in,
// and each block sums the ncl partials of its rows. Counters only grow; buffers alternate by parity.
__device__ __forceinline__ uint4 ld_volatile4(const uint4* a) {
  uint4 v;
  asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(a)
               : "memory");
  return v;
}

// The same with the flag in the data: no fence, no counter, one L2 round trip once the last partial is written.
__device__ void g_xchg_ll(Ctx& c, const Params& p, const float* piece, float* out) {
  const u32 par = c.g & 1, seq = p.gbase + c.g + 1;
  uint4* mine = p.xll + ((size_t)par * p.ncl + c.cl) * (HID / 2) + c.rank * (PIECE / 2);
  for (u32 i = c.ctid; i < PIECE / 2; i += CW * 32) {
    const uint4 v = make_uint4(__float_as_uint(piece[2 * i]), seq, __float_as_uint(piece[2 * i + 1]), seq);
    asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(mine + i), "r"(v.x), "r"(v.y), "r"(v.z),
                 "r"(v.w)
                 : "memory");
  }
  for (u32 i = c.ctid; i < PIECE / 2; i += CW * 32) {
    const uint4* src = p.xll + (size_t)par * p.ncl * (HID / 2) + c.rank * (PIECE / 2) + i;
    uint4 v[16];
#pragma unroll
    for (int k = 0; k < 16; ++k)
      if (k < p.ncl) v[k] = ld_volatile4(src + k * (HID / 2));
    float s0 = 0.f, s1 = 0.f;
#pragma unroll
    for (int k = 0; k < 16; ++k)
      if (k < p.ncl) {
        if (v[k].y != seq || v[k].w != seq) {
          const u64 t0 = gtime();
          u32 spins = 0;
          do {
            v[k] = ld_volatile4(src + k * (HID / 2));
            watchdog(t0, spins);
          } while (v[k].y != seq || v[k].w != seq);
        }
        s0 += __uint_as_float(v[k].x);
        s1 += __uint_as_float(v[k].z);
      }
    out[2 * i] = s0;
    out[2 * i + 1] = s1;
  }
  consumers_sync();
  ++c.g;
}

__device__ void g_xchg(Ctx& c, const Params& p, const float* piece, float* out) {
  if (p.mode & M_NOGLOBAL) {
    if (c.ctid < PIECE) out[c.ctid] = piece[c.ctid];
    consumers_sync();
    return;
  }
  if (p.mode & M_LL) {
    g_xchg_ll(c, p, piece, out);
    return;
  }
  const u32 par = c.g & 1;
  float* mine = p.xch + ((size_t)par * p.ncl + c.cl) * HID + c.rank * PIECE;
  for (u32 i = c.ctid; i < PIECE; i += CW * 32) __stcg(mine + i, piece[i]);
  consumers_sync();
  if (c.ctid == 0) {
    u32* ctr = p.cnt + c.rank * 32;
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(ctr) : "memory");
    const u32 target = p.gbase + (u32)p.ncl * (c.g + 1);
    u32 v, spins = 0;
    const u64 t0 = gtime();
    for (;;) {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(ctr) : "memory");
      if ((int)(v - target) >= 0) break;
      watchdog(t0, spins);
    }
  }
  consumers_sync();
  for (u32 i = c.ctid; i < PIECE; i += CW * 32) {
    float s = 0.f;
    for (int k = 0; k < p.ncl; ++k) s += __ldcg(p.xch + ((size_t)par * p.ncl + k) * HID + c.rank * PIECE + i);
    out[i] = s;
  }
  consumers_sync();
  ++c.g;
}

// The all-gathered vector (xb[parity of the last exchange]) becomes the next GEMV's input.
__device__ void take_x(Ctx& c, const Params& p) {
  if (!(p.mode & M_NOCLUSTER)) {
    const float* src = c.xb + ((c.n - 1) & 1) * CL * PIECE;
    for (u32 i = c.ctid; i < HID; i += CW * 32) c.x[i] = src[i] * 0.5f;
  }
  consumers_sync();
}

__global__ void __launch_bounds__(NT, 1) tp_kernel(const Params p) {
  extern __shared__ __align__(1024) unsigned char smem[];
  Ctx c;
  c.ring = smem;
  c.xb = (float*)(smem + SMEM_RING);
  c.x = (float*)(smem + SMEM_RING + SMEM_XB);
  c.part = (float*)(smem + SMEM_RING + SMEM_XB + SMEM_X);
  c.full = (u64*)(smem + SMEM_RING + SMEM_XB + SMEM_X + SMEM_PART);
  c.empty = c.full + NSLOT;
  c.xbar = c.empty + NSLOT;
  c.rank = cluster_rank();
  c.blk = blockIdx.x;
  c.cl = blockIdx.x / CL;
  c.warp = threadIdx.x / 32;
  c.lane = threadIdx.x % 32;
  c.ctid = threadIdx.x;
  c.it = c.n = c.g = 0;
  c.acc[0] = c.acc[1] = c.acc[2] = c.acc[3] = 0.f;
  if (threadIdx.x == 0) {
    for (int i = 0; i < NSLOT; ++i) {
      mbar_init(&c.full[i], 1);
      mbar_init(&c.empty[i], CW);
    }
    mbar_init(&c.xbar[0], 1);
    mbar_init(&c.xbar[1], 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  for (u32 i = threadIdx.x; i < HID; i += NT) {
    c.x[i] = 1.f;
    c.part[i] = (float)(i & 7);
  }
  cluster_sync_all();  // every block of the cluster started and its barriers ready before any DSMEM traffic

  if (c.warp == CW) {  // producer: the whole step's weights, in the consumers' order, as far ahead as the ring allows
    if (c.lane == 0 && (p.mode & M_STREAM)) {
      u64 policy;
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
      u32 it = 0;
      auto issue = [&](const unsigned char* src, u32 bytes) {
        for (u32 off = 0; off < bytes; off += SLOT, ++it) {
          const u32 b = min((u32)SLOT, bytes - off), slot = it % NSLOT, round = it / NSLOT;
          if (round > 0) mbar_wait(&c.empty[slot], (round - 1) & 1);
          if (p.cap && it >= p.cap) mbar_wait(&c.full[(it - p.cap) % NSLOT], ((it - p.cap) / NSLOT) & 1);
          mbar_expect(&c.full[slot], b);
          bulk_g2s(c.ring + slot * SLOT, src + off, b, &c.full[slot], policy);
        }
      };
      for (int l = 0; l < p.layers; ++l)
        for (int s = 0; s < NSTAGE; ++s)
          issue(p.w + l * p.layer_bytes + p.stage_off[s] + (u64)c.blk * p.stage_share[s], p.stage_share[s]);
      issue(p.head + (u64)c.blk * p.head_share, p.head_share);
    }
  } else {
    const bool stream = p.mode & M_STREAM, sync = p.mode & M_SYNC;
    const u32 kvg = c.cl % KVH;
    for (int l = 0; l < p.layers; ++l) {
      if (stream) consume(c, p, p.stage_share[0]);  // q/k/v
      if (sync) {
        cl_xchg(c, p, c.part, 32, false);  // the cluster's q/k/v values, all-gathered
        float a = 0.f;
        if (!(p.mode & M_NOKV)) {  // attention: this block's positions of the group's K and V rows
          const uint4* kv = (const uint4*)(p.kv + ((size_t)l * KVH + kvg) * p.kv_group_bytes + c.rank * p.kv_share);
          for (u32 i = c.ctid; i < p.kv_share / 16; i += CW * 32) {
            const uint4 v = __ldcg(kv + i);
            a += __uint_as_float(v.x ^ v.w);
          }
        }
        if (c.ctid < 128) c.part[c.ctid] += a;
        consumers_sync();
        cl_xchg(c, p, c.part, 128, false);  // the attention's partials, combined in every block
      }
      if (stream) consume(c, p, p.stage_share[1]);  // o
      if (sync) {
        g_xchg(c, p, c.part, c.part + PIECE);
        cl_xchg(c, p, c.part + PIECE, PIECE, false);
        take_x(c, p);
      }
      if (stream) {
        consume(c, p, p.stage_share[2]);  // gate/up: the block's intermediate slice stays in the block
        consume(c, p, p.stage_share[3]);  // down
      }
      if (sync) {
        cl_xchg(c, p, c.part, PIECE, true);  // reduce-scatter of down's partial sums in the cluster
        if (!(p.mode & M_NOCLUSTER))
          for (u32 i = c.ctid; i < PIECE; i += CW * 32) {
            float s = 0.f;
            for (int k = 0; k < CL; ++k) s += c.xb[(((c.n - 1) & 1) * CL + k) * PIECE + i];
            c.part[i] = s;
          }
        consumers_sync();
        g_xchg(c, p, c.part, c.part + PIECE);
        cl_xchg(c, p, c.part + PIECE, PIECE, false);
        take_x(c, p);
      }
    }
    if (stream) consume(c, p, p.head_share);  // lm_head
    if (sync) g_xchg(c, p, c.part, c.part + PIECE);  // the argmax's hand-off
    if (c.acc[0] == 1234.5f) p.sink[c.blk] = c.acc[1] + c.acc[2] + c.acc[3];
  }
  __syncwarp();
  cluster_sync_all();  // no block leaves while a peer may still store into its shared memory
}

#ifndef __CUDACC_RTC__
#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

static u32 round_up(u64 v, u64 m) { return (u32)((v + m - 1) / m * m); }

int main(int argc, char** argv) {
  const int iters = argc > 1 ? atoi(argv[1]) : 100;
  const int npos = argc > 2 ? atoi(argv[2]) : 400;
  int dev = 0;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  CK(cudaFuncSetAttribute(tp_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_TOTAL));
  if (CL > 8) CK(cudaFuncSetAttribute(tp_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));

  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = CL;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cfg.blockDim = dim3(NT);
  cfg.dynamicSmemBytes = SMEM_TOTAL;
  cfg.gridDim = dim3(CL * 16);
  int maxcl = 0;
  CK(cudaOccupancyMaxActiveClusters(&maxcl, tp_kernel, &cfg));
  const int ncl = maxcl < 16 ? maxcl : 16;
  const int nblk = ncl * CL;
  printf("# %s, %d SMs, L2 %d MB; cluster %d, max active clusters %d, using %d (%d blocks); smem %u B a block\n",
         prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, CL, maxcl, ncl, nblk, SMEM_TOTAL);
  if (ncl < 1) return 1;
  cfg.gridDim = dim3(nblk);

  // TinyLlama-1.1B shape, FP8 with one scale per row: bytes a token.
  const u64 stage_bytes[NSTAGE] = {2560ull * 2048, 2048ull * 2048, 11264ull * 2048, 2048ull * 5632};
  const u64 head_bytes = 32000ull * 2048;
  const int L = 22;
  Params p = {};
  u64 off = 0, model = 0;
  for (int s = 0; s < NSTAGE; ++s) {
    p.stage_share[s] = round_up((stage_bytes[s] + nblk - 1) / nblk, 4096);
    p.stage_off[s] = off;
    off += (u64)p.stage_share[s] * nblk;
    model += stage_bytes[s];
  }
  p.layer_bytes = off;
  p.head_share = round_up((head_bytes + nblk - 1) / nblk, 4096);
  const u64 streamed = (u64)L * p.layer_bytes + (u64)p.head_share * nblk;
  model = model * L + head_bytes;
  unsigned char *w, *head, *kv;
  CK(cudaMalloc(&w, (u64)L * p.layer_bytes));
  CK(cudaMalloc(&head, (u64)p.head_share * nblk));
  CK(cudaMemset(w, 0x3a, (u64)L * p.layer_bytes));
  CK(cudaMemset(head, 0x3a, (u64)p.head_share * nblk));
  p.kv_share = round_up((u64)npos * 256 / CL, 16);
  p.kv_group_bytes = p.kv_share * CL;
  CK(cudaMalloc(&kv, (u64)L * KVH * p.kv_group_bytes));
  CK(cudaMemset(kv, 0x11, (u64)L * KVH * p.kv_group_bytes));
  CK(cudaMalloc(&p.xch, 2ull * ncl * HID * 4));
  CK(cudaMalloc(&p.cnt, CL * 128));
  CK(cudaMalloc(&p.xll, 2ull * ncl * HID * 8));
  CK(cudaMalloc(&p.sink, nblk * 4));
  p.w = w;
  p.head = head;
  p.kv = kv;
  p.ncl = ncl;
  printf("# weights streamed a token %.1f MB (model %.1f MB); shares q/k/v %u o %u gate/up %u down %u head %u B; KV %u B a block\n",
         streamed / 1e6, model / 1e6, p.stage_share[0], p.stage_share[1], p.stage_share[2], p.stage_share[3],
         p.head_share, p.kv_share);

  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto run = [&](int mode, int layers, u32 cap) -> double {
    p.mode = mode;
    p.layers = layers;
    p.cap = cap;
    const u32 per_launch =
        (mode & M_SYNC) && !(mode & M_NOGLOBAL) ? (mode & M_LL ? 1u : (u32)ncl) * (2 * layers + 1) : 0;
    CK(cudaMemset(p.cnt, 0, CL * 128));
    CK(cudaMemset(p.xll, 0, 2ull * ncl * HID * 8));
    u32 base = 0;
    for (int i = 0; i < 3; ++i, base += per_launch) {
      p.gbase = base;
      CK(cudaLaunchKernelEx(&cfg, tp_kernel, p));
    }
    CK(cudaEventRecord(e0));
    for (int i = 0; i < iters; ++i, base += per_launch) {
      p.gbase = base;
      CK(cudaLaunchKernelEx(&cfg, tp_kernel, p));
    }
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    CK(cudaGetLastError());
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1000.0 / iters;
  };
  struct Row {
    int mode;
    u32 cap;
    const char* what;
  };
  const Row rows[] = {
      {M_STREAM, 0, "stream only"},
      {M_STREAM | M_MATH, 0, "stream + math"},
      {M_STREAM | M_MATH, 4, "stream + math, 4 copies in flight"},
      {M_SYNC, 0, "hand-offs only"},
      {M_SYNC | M_LL, 0, "hand-offs only, flag-in-data exchanges"},
      {M_SYNC | M_NOGLOBAL, 0, "hand-offs, no global exchanges"},
      {M_STREAM | M_SYNC | M_MATH, 0, "stream + hand-offs + math"},
      {M_STREAM | M_SYNC | M_MATH | M_LL, 0, "stream + hand-offs + math, flag-in-data"},
      {M_STREAM | M_SYNC | M_MATH, 4, "stream + hand-offs + math, cap 4"},
      {M_STREAM | M_SYNC | M_MATH | M_LL, 2, "... flag-in-data, cap 2"},
      {M_STREAM | M_SYNC | M_MATH | M_LL, 3, "... flag-in-data, cap 3"},
      {M_STREAM | M_SYNC | M_MATH | M_LL, 4, "... flag-in-data, cap 4"},
      {M_STREAM | M_SYNC | M_MATH | M_LL, 6, "... flag-in-data, cap 6"},
      {M_STREAM | M_SYNC | M_MATH | M_LL | M_NOGLOBAL, 0, "all but the global exchanges"},
  };
  printf("| mode | cap | what | µs a launch, 22 layers | µs, lm_head only | µs a layer | tok/s if a launch is a token | GB/s of weights |\n");
  printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Row& r : rows) {
    const double t22 = run(r.mode, L, r.cap), t0 = run(r.mode, 0, r.cap);
    printf("| %d | %u | %s | %.1f | %.1f | %.2f | %.0f | %.0f |\n", r.mode, r.cap, r.what, t22, t0, (t22 - t0) / L, 1e6 / t22,
           (r.mode & M_STREAM) ? streamed / (t22 * 1e3) : 0.0);
    fflush(stdout);
  }
  return 0;
}
#endif
