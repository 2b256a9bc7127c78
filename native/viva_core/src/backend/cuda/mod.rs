//! The CUDA backend: HF `LlamaForCausalLM` on an NVIDIA GPU, weights resident on the device as bf16
//! or FP8 E4M3 with per-block f32 scales (W8A16), KV cache resident per sequence, kernels compiled at
//! run time by NVRTC from `kernels/*.cu`.
//!
//! Decode (one token) is one CUDA graph per sequence, captured on the first step and replayed (two on sm_90+, whose
//! decode attention runs in smaller clusters at short contexts: one per launch shape, `AttnTc::cluster_at`): the
//! token and position live on the device (`step = [token, pos]`), and the graph ends with an on-device
//! argmax that writes the next token and advances the position, so greedy decoding
//! ([`CudaModel::decode_greedy`]) runs ahead of the host by one step. Prefill runs the whole prompt
//! through tensor-core GEMMs and a causal attention kernel.
//!
//! Numerics (see DESIGN.md): the `bf16` format keeps activations and the KV cache in f32 and only
//! rounds the weights (its tokens are compared with the CPU path on bf16 checkpoints); `fp8` rounds
//! activations to bf16 (A16) and keeps the KV cache in bf16. Accumulation is f32 everywhere.

pub mod device;
pub mod pack;
pub mod tp;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::loader::TensorStore;
use crate::names;
use cudarc::driver::{sys, CudaGraph, CudaSlice, CudaStream, DevicePtr};
use device::{drv, guard, Arg, Blas, BlasSlot, Device, LaunchMode};
use pack::Packed;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

pub use device::probe_libraries;

/// Is a usable CUDA device present (driver, NVRTC, a GPU of compute capability 8.0+, kernels
/// compiled)? Returns the device name.
pub fn available() -> Result<String> {
    let d = device::device()?;
    Ok(format!("{} (sm_{}{})", d.name, d.cc.0, d.cc.1))
}

/// Free memory of the default device, in bytes (for leak checks).
pub fn free_device_memory() -> Result<usize> {
    let d = device::device()?;
    guard("CUDA memory query", || {
        d.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
        d.ctx.synchronize().map_err(|e| drv("synchronize", e))?;
        d.ctx.mem_get_info().map(|(free, _)| free).map_err(|e| drv("memory query", e))
    })
}

/// Whether a launch whose arguments do not match the kernel's parameters is refused before it reaches the
/// driver (`Device::launch_ex`): the grid-barrier probe kernel is launched one argument short. `Ok(false)`: the
/// driver cannot report kernel parameters (before CUDA 12.4), so launches are not checked.
pub fn launch_check_refuses_bad_arguments() -> Result<bool> {
    let d = device::device()?;
    guard("CUDA launch check", || {
        if !d.checks_launches() {
            return Ok(false);
        }
        d.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
        let s = d.ctx.new_stream().map_err(|e| drv("stream creation", e))?;
        match d.launch(&s, &d.k.barrier_probe, (1, 1, 1), 32, 0, &[Arg::P(0)]) {
            Err(Error::Cuda(m)) if m.contains("grid_barrier_probe") && m.contains("takes 2") => Ok(true),
            Err(e) => Err(e),
            Ok(()) => Err(Error::Cuda("a launch one argument short was not refused".into())),
        }
    })
}

/// Per-round cost (µs) of a probe kernel: `launch(device, stream, buffer, blocks, k)` launches `k` rounds on
/// `blocks_per_sm` x SMs blocks, with a zeroed buffer of `bytes` allocated before each timed launch; the cost is the
/// time of `iters` rounds minus the time of one, over `iters - 1`, best of 5 after a warm-up (events around each
/// launch).
fn probe_us(
    what: &str,
    blocks_per_sm: usize,
    iters: usize,
    bytes: usize,
    launch: impl Fn(&Device, &CudaStream, &Buf, u32, usize) -> Result<()>,
) -> Result<f64> {
    let d = device::device()?;
    guard(what, || {
        d.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
        let s = d.ctx.new_stream().map_err(|e| drv("stream creation", e))?;
        let blocks = (blocks_per_sm.clamp(1, 8) * d.sms) as u32;
        let iters = iters.max(2);
        let time = |k: usize| -> Result<f64> {
            let buf = Buf::zeros(&s, bytes)?;
            let ev = |_: ()| d.ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(|e| drv("event", e));
            let (a, b) = (ev(())?, ev(())?);
            a.record(&s).map_err(|e| drv("event record", e))?;
            launch(&d, &s, &buf, blocks, k)?;
            b.record(&s).map_err(|e| drv("event record", e))?;
            s.synchronize().map_err(|e| drv(what, e))?;
            Ok(f64::from(a.elapsed_ms(&b).map_err(|e| drv("event timing", e))?) * 1e3)
        };
        time(iters)?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            best = best.min((time(iters)? - time(1)?) / (iters - 1) as f64);
        }
        Ok(best)
    })
}

/// Cost of one grid-wide barrier (µs) with `blocks_per_sm` x SMs blocks of 256 threads, from the time
/// of `iters` barriers in one kernel minus the time of one (kernels/misc.cu `grid_barrier_probe`):
/// the number a persistent decode kernel pays per stage (docs/gpu.md, v6).
pub fn grid_barrier_us(blocks_per_sm: usize, iters: usize) -> Result<f64> {
    probe_us("CUDA grid barrier probe", blocks_per_sm, iters, 16, |d, s, bar, blocks, k| {
        d.launch(s, &d.k.barrier_probe, (blocks, 1, 1), 256, 0, &[Arg::P(bar.ptr), Arg::I(k as i32)])
    })
}

/// Cost (µs) of one round in which `blocks_per_sm` x SMs blocks of 256 threads each add `n` f32 values into one
/// shared vector of `n` with `red.global.add` (`v4`: four floats per instruction, sm_90+), from the time of `iters`
/// rounds in one kernel minus the time of one (kernels/misc.cu `red_probe`): what a fused MLP's reduction of
/// every block's partial down projection into the residual would cost (docs/gpu.md v13).
pub fn red_probe_us(blocks_per_sm: usize, n: usize, v4: bool, iters: usize) -> Result<f64> {
    let n = n.next_multiple_of(1024).max(1024);
    probe_us("CUDA reduction probe", blocks_per_sm, iters, n * 4, |d, s, out, blocks, k| {
        let args = [Arg::P(out.ptr), Arg::I(n as i32), Arg::I(i32::from(v4)), Arg::I(k as i32)];
        d.launch(s, &d.k.red_probe, (blocks, 1, 1), 256, 0, &args)
    })
}

/// The tensor map through which the tensor-core GEMV's TMA ring (kernels/gemv.cu, v13) copies one piece (16 rows
/// x 128 bytes of K) of an `n` x `kp` FP8 matrix at `ptr` per instruction: a 4D view (64 bytes; row % 8 at
/// stride kp; 64-byte segment at stride 64; row / 8 at stride 8 kp) whose 64 x 8 x 2 x 2 box lands as the slot's
/// four quarters. The allocation must hold n rounded up to 8 rows.
fn quarters_map(ptr: u64, n: usize, kp: usize) -> Result<[u64; 16]> {
    let (n, kp) = (n as u64, kp as u64);
    encode_map(ptr, &[64, 8, kp / 64, n.div_ceil(8)], &[kp, 64, 8 * kp], &[64, 8, 2, 2])
        .map_err(|r| Error::Cuda(format!("tensor map of a {n} x {kp} matrix refused by the driver (CUresult {r})")))
}

/// `cuTensorMapEncodeTiled` for bytes at `ptr`: dims innermost first, strides of dims 1.. in bytes; Err(CUresult).
fn encode_map(ptr: u64, dims: &[u64], strides: &[u64], boxd: &[u32]) -> std::result::Result<[u64; 16], i32> {
    use sys::{
        CUtensorMapDataType as Dt, CUtensorMapFloatOOBfill as Oob, CUtensorMapInterleave as Il,
        CUtensorMapL2promotion as L2, CUtensorMapSwizzle as Sw,
    };
    let mut map = sys::CUtensorMap { opaque: [0; 16] };
    let ones = [1u32; 5];
    // SAFETY: `dims`, `boxd` and `ones` hold at least `dims.len()` entries and `strides` one fewer; `map` is a
    // writable tensor map; the driver only records `ptr`.
    let r = unsafe {
        sys::cuTensorMapEncodeTiled(
            &mut map,
            Dt::CU_TENSOR_MAP_DATA_TYPE_UINT8,
            dims.len() as u32,
            ptr as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxd.as_ptr(),
            ones.as_ptr(),
            Il::CU_TENSOR_MAP_INTERLEAVE_NONE,
            Sw::CU_TENSOR_MAP_SWIZZLE_NONE,
            L2::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            Oob::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    if r == sys::CUresult::CUDA_SUCCESS {
        Ok(map.opaque)
    } else {
        Err(r as i32)
    }
}

/// Does the default device have FP8 conversion hardware (sm_89+), i.e. is `fp8` the natural default?
pub fn prefers_fp8() -> bool {
    device::device().map(|d| d.cc >= (8, 9)).unwrap_or(false)
}

/// Device weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bf16,
    /// E4M3 with one f32 scale per `block` elements of a row ([`pack::FP8_ROW`]: one per row).
    Fp8 {
        block: usize,
    },
}

impl Format {
    /// The block setting the kernels get: the FP8 block ([`pack::FP8_ROW`] for per-row scales; each matrix's
    /// own block is `pack::fp8_block_of` of it), 16 for bf16 (no scales).
    fn scale_block(self) -> usize {
        match self {
            Format::Fp8 { block } => block,
            Format::Bf16 => 16,
        }
    }
}

/// The FP8 block size: `VIVA_TENSOR_FP8_BLOCK` (16, 32, 64, 128 or `row`), default [`FP8_DEFAULT_BLOCK`].
pub fn fp8_block_from_env() -> Result<usize> {
    match std::env::var("VIVA_TENSOR_FP8_BLOCK") {
        Err(_) => Ok(FP8_DEFAULT_BLOCK),
        Ok(s) if s.trim() == "row" => Ok(pack::FP8_ROW),
        Ok(s) => match s.trim().parse::<usize>() {
            Ok(b) if b != pack::FP8_ROW && pack::FP8_BLOCKS.contains(&b) => Ok(b),
            _ => Err(Error::InvalidOption(format!("VIVA_TENSOR_FP8_BLOCK must be 16, 32, 64, 128 or row, got {s:?}"))),
        },
    }
}

/// An FP8 block setting as the CLI and logs write it: `16` .. `128`, or `row`.
pub fn fp8_block_name(block: usize) -> String {
    if block == pack::FP8_ROW {
        "row".into()
    } else {
        block.to_string()
    }
}

/// Default FP8 block: one scale per row ([`pack::FP8_ROW`], v14; 128 from v9, 64 from v5, DESIGN.md's original 16).
/// E4M3 is a float format: a scale only sets where a row's values start to lose precision (below 2^-15 of the
/// row's largest), so one scale per row keeps the error of blocks of 128 against the f32 path (tests/cuda.rs
/// `fp8_row_scales_match_blocks_against_cpu`, the fixtures' agreement) while the tensor-core GEMV streams 3% fewer
/// bytes and copies no scales per piece. Measured on an H100 (docs/gpu.md v14): Llama-2-7B shape +3.7 to +3.8%,
/// TinyLlama shape +1.6 to +2.0% against blocks of 128 in the same call. `VIVA_TENSOR_FP8_BLOCK=128` (or 64, 32,
/// 16) for blocks.
pub const FP8_DEFAULT_BLOCK: usize = pack::FP8_ROW;

/// Prefill GEMM path: 0 = not chosen yet (read `VIVA_TENSOR_PREFILL`), 1 = the hand-written mma.sync
/// kernels (kernels/gemm.cu `gemm_bf16` / `gemm_fp8`), 2 = cuBLAS bf16 GEMMs (FP8 weights dequantized
/// to a bf16 scratch matrix first, activations rounded / split exactly as the mma kernels do).
static PREFILL_PATH: AtomicU8 = AtomicU8::new(0);

/// Which prefill GEMM path runs (process-wide; read at each prefill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillPath {
    /// Hand-written mma.sync GEMMs (v1-v6).
    Mma,
    /// cuBLAS (when libcublas loads and the prompt has at least [`prefill_blas_min`] tokens).
    Cublas,
}

/// Default prefill path (docs/gpu.md, v7): cuBLAS (3.1x faster at 512 tokens on an H100, same test results).
pub const PREFILL_DEFAULT: PrefillPath = PrefillPath::Cublas;

/// Sets the prefill GEMM path for the whole process (overrides `VIVA_TENSOR_PREFILL=mma|cublas`).
pub fn set_prefill_path(p: PrefillPath) {
    PREFILL_PATH.store(if p == PrefillPath::Mma { 1 } else { 2 }, Ordering::Relaxed);
}

/// The prefill GEMM path in force.
pub fn prefill_path() -> PrefillPath {
    match PREFILL_PATH.load(Ordering::Relaxed) {
        1 => PrefillPath::Mma,
        2 => PrefillPath::Cublas,
        _ => {
            let p = match std::env::var("VIVA_TENSOR_PREFILL").ok().as_deref().map(str::trim) {
                Some("mma") => PrefillPath::Mma,
                Some("cublas") => PrefillPath::Cublas,
                _ => PREFILL_DEFAULT,
            };
            set_prefill_path(p);
            p
        }
    }
}

/// Fewest prompt tokens for the cuBLAS path (`VIVA_TENSOR_PREFILL_BLAS_MIN`, default 2, i.e. every prefill):
/// measured faster than the mma kernels at every length tried on an H100 (docs/gpu.md, v7: 2 tokens 2.8 vs
/// 8.4 ms, 512 tokens 10.5 vs 32.4 ms for fp8), the FP8 dequantization pass included.
pub fn prefill_blas_min() -> usize {
    std::env::var("VIVA_TENSOR_PREFILL_BLAS_MIN").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(2)
}

/// A device buffer and its raw address (kernels take raw pointers; buffers never move).
struct Buf {
    mem: CudaSlice<u8>,
    ptr: u64,
}

impl Buf {
    fn zeros(s: &Arc<CudaStream>, bytes: usize) -> Result<Buf> {
        let mem = s.alloc_zeros::<u8>(bytes.max(16)).map_err(|e| drv("device allocation", e))?;
        let ptr = {
            let (ptr, _sync) = mem.device_ptr(s);
            ptr
        };
        Ok(Buf { mem, ptr })
    }
    fn from_bytes(s: &Arc<CudaStream>, bytes: &[u8]) -> Result<Buf> {
        let mut b = Buf::zeros(s, bytes.len())?;
        if !bytes.is_empty() {
            s.memcpy_htod(bytes, &mut b.mem.slice_mut(0..bytes.len())).map_err(|e| drv("upload", e))?;
        }
        Ok(b)
    }
    fn from_f32(s: &Arc<CudaStream>, v: &[f32]) -> Result<Buf> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Buf::from_bytes(s, &bytes)
    }
    fn at(&self, byte_offset: usize) -> u64 {
        self.ptr + byte_offset as u64
    }
}

/// A packed linear layer on the device: `[n, kp]` weights (+ scales for FP8).
struct Lin {
    w: Buf,
    s: Option<Buf>,
    /// The scales again in the tensor-core GEMV's bulk-copy order (`pack::pack_tc_scales`), where it uses them.
    s_tc: Option<Buf>,
    /// The weights' tensor map for that ring (`quarters_map`), in device memory.
    tmap: Option<Buf>,
    n: usize,
    k: usize,
    kp: usize,
    bytes: usize,
    /// Elements per FP8 scale of this matrix (`pack::fp8_block_of`: kp for per-row scales); 16 for bf16.
    qblock: i32,
    /// One FP8 scale per row (`pack::FP8_ROW`): the tensor-core GEMV's gemv_fp8_tcr* kernels.
    row_scales: bool,
}

impl Lin {
    /// `qblock`: the format's block setting (`Format::scale_block`). `tma`: the tensor-core GEMV's ring is fed by
    /// the TMA unit (`Device::tc_tma`): an FP8 matrix then also gets a tensor map and its scales a copy in piece
    /// order.
    fn upload(s: &Arc<CudaStream>, p: Packed, qblock: usize, tma: bool) -> Result<Lin> {
        let sc_bytes = p.scales.as_ref().map_or(0, |v| v.len() * 4);
        let (s_tc, w, tmap) = match &p.scales {
            Some(sc) if tma => {
                // The tensor map reads whole groups of 8 rows: the allocation covers the last group.
                let mut w = Buf::zeros(s, p.n.next_multiple_of(8) * p.kp)?;
                s.memcpy_htod(&p.bytes, &mut w.mem.slice_mut(0..p.bytes.len())).map_err(|e| drv("upload", e))?;
                let map = quarters_map(w.ptr, p.n, p.kp)?;
                let bytes: Vec<u8> = map.iter().flat_map(|v| v.to_le_bytes()).collect();
                (
                    Some(Buf::from_f32(s, &pack::pack_tc_scales(sc, p.n, p.kp, qblock))?),
                    w,
                    Some(Buf::from_bytes(s, &bytes)?),
                )
            }
            _ => (None, Buf::from_bytes(s, &p.bytes)?, None),
        };
        Ok(Lin {
            s_tc,
            tmap,
            w,
            // 16 bytes of slack: the persistent decode kernel copies 16-byte-aligned supersets of scale rows.
            s: p.scales.as_deref().map(|v| Buf::from_f32(s, &[v, &[0.0; 4]].concat())).transpose()?,
            qblock: pack::fp8_block_of(qblock, p.kp) as i32,
            row_scales: p.scales.is_some() && qblock == pack::FP8_ROW,
            n: p.n,
            k: p.k,
            kp: p.kp,
            bytes: p.bytes.len() + sc_bytes,
        })
    }
}

/// An RMSNorm weight vector (f32 [hidden]) and the static f16 shift of the x' it produces for the tensor-core
/// GEMV (`norm_x_shift`).
struct NormW {
    w: Buf,
    xsh: i32,
}

impl NormW {
    fn upload(s: &Arc<CudaStream>, w: &[f32]) -> Result<NormW> {
        Ok(NormW { w: Buf::from_f32(s, w)?, xsh: norm_x_shift(w) })
    }
}

/// kernels/gemv.cu TC_XSH_DYN: the GEMV takes x''s f16 shift from the block's max |x'|.
const TC_XSH_DYN: i32 = 1000;

/// The f16 shift e of the tensor-core GEMV's x' = bf16(w x rs) for an RMSNorm of weights `w` (kernels/gemv.cu
/// `tc_stage_x`), known before the activations: x_i² <= sum(x²) and rs <= sqrt(K / sum(x²)), so |x'| <= max|w|
/// sqrt(K); 2^-7 more covers the bf16 rounding and the statistic's f32 sum. e is the kernel's `f16_shift` of that
/// bound (max |x' 2^e| < 2^14). `TC_XSH_DYN` when the bound is not finite.
fn norm_x_shift(w: &[f32]) -> i32 {
    let m = w.iter().fold(0f32, |a, v| a.max(v.abs()));
    let bound = f64::from(m) * (w.len() as f64).sqrt() * (1.0 + 2f64.powi(-7));
    if bound.is_nan() || bound >= 3.0e38 {
        return TC_XSH_DYN;
    }
    if bound == 0.0 {
        return 0;
    }
    let e = ((bound as f32).to_bits() >> 23 & 0xff) as i32;
    (14 - (e - 126)).clamp(-126, 127)
}

struct LayerW {
    attn_norm: NormW,
    qkv: Lin, // [(heads + 2 kv_heads) * head_dim, hidden]: q_proj | k_proj | v_proj
    o: Lin,   // [hidden, heads * head_dim]
    ffn_norm: NormW,
    gate_up: Lin, // [2 * intermediate, hidden], rows interleaved gate_0, up_0, gate_1, up_1, ...
    down: Lin,    // [hidden, intermediate]
}

/// No L2 prefetch of another matrix by a GEMV (`CudaModel::gemv`'s last argument).
const NO_PF: (u64, usize) = (0, 0);

/// Read-only device weights, shared by every sequence.
pub struct CudaModel {
    dev: Arc<Device>,
    /// The stream the weights were uploaded on (their frees are ordered on it).
    #[allow(dead_code)]
    stream: Arc<CudaStream>,
    cfg: Config,
    format: Format,
    kv_f32: bool,
    embed: Buf, // bf16 [vocab, hidden]
    rope: Buf,  // f32 [max_pos, head_dim / 2, 2]: (cos, sin), computed as the CPU reference does
    layers: Vec<LayerW>,
    norm: NormW,
    lm_head: Lin,
    weight_bytes: usize,
    nsplit: usize,
    use_graph: bool,
    /// GEMV shape: 8 rows per warp (else 4); chunks each lane streams at least (k-split choice).
    gemv_rw8: bool,
    gemv_iters: usize,
    /// Blocks of each GEMV that prefetch its whole weight matrix into L2 before waiting on the previous
    /// kernel (0: no prefetch).
    gemv_pf: usize,
    /// Bytes of the layer's gate/up weights the o projection requests into L2 once its x' is staged (`gu_pf_plan`;
    /// 0: none).
    gu_pf: usize,
    /// The tensor-core FP8 GEMV's launch shapes (kernels/gemv.cu, v9); None for bf16, FP8 blocks of 16 / 32,
    /// or `VIVA_TENSOR_GEMV=cuda-core`.
    gemv_tc: Option<TcCfg>,
    /// Bench-only switches of the tensor-core GEMV (`VIVA_TENSOR_TC_FLAGS`, kernels/gemv.cu TC_*; 0 normally).
    tc_flags: i32,
    /// Attention through the GQA kernel (K/V read once per KV head), with up to `gqa_splits` splits
    /// (`VIVA_TENSOR_ATTN=old`: the per-query-head kernel of v1-v3).
    gqa: bool,
    gqa_splits: usize,
    /// Decode attention on the tensor cores in clusters (kernels/attention.cu, v11; the default on sm_90+ for a
    /// bf16 KV cache and head_dim 32 / 64 / 128; `VIVA_TENSOR_ATTN=gqa` keeps the v4 GQA kernel).
    attn_tc: Option<AttnTc>,
    /// Fused norm statistics in decode (default; `VIVA_TENSOR_NORM_FUSE=0` turns it off, see kernels/gemv.cu):
    /// the residual GEMVs accumulate sum(x²) for the next RMSNorm, so the normed GEMVs skip their own reduction.
    norm_fuse: bool,
    /// The persistent decode kernel's launch plan (FP8 on sm_90+, opt-in with `VIVA_TENSOR_PERSIST=1`).
    persist: Option<Persist>,
    /// The tensor-parallel decode kernel's plan (kernels/tp.cu; FP8 with per-row scales on sm_90+, opt-in with
    /// `VIVA_TENSOR_DECODE=tp`).
    tp: Option<TpPlan>,
}

/// Launch plan of the tensor-parallel decode kernel (kernels/tp.cu, backend/cuda/tp.rs; docs/gpu.md v17).
struct TpPlan {
    shape: tp::TpShape,
    /// Every block's weight streams, their offsets `[(layers + 1) * blocks]`, the per-block plan (8 i32 a block)
    /// and per layer 6 pointers: attention norm, ffn norm, and the row scales of q/k/v, o, gate/up, down.
    ws: Buf,
    soff: Buf,
    bplan: Buf,
    lplan: Buf,
    nslots: usize,
    hmax: usize,
    lmax: usize,
    smem: usize,
    /// Bulk copies in flight per block at most (`VIVA_TENSOR_TP_CAP`; 0: the ring's depth).
    cap: i32,
}

/// Launch plan of the persistent FP8 decode kernel (kernels/persist.cu; docs/gpu.md, v8).
struct Persist {
    /// Per layer 10 device pointers: qkv w/s, o w/s, gate/up w/s, down w/s, attn_norm, ffn_norm.
    plan: Buf,
    /// Largest tile (whole rows, at most 8) in bytes.
    tile_bytes: usize,
    nslots: usize,
    slot_bytes: usize,
    /// Weight bytes of a slot (its scales follow).
    slot_w: usize,
    /// Shared memory after the ring: f32 staging / attention tiles, f16 x', per-block row sums.
    xs_bytes: usize,
    x16_bytes: usize,
    acc_rows: usize,
    blocks: u32,
}

/// Launch shape of the tensor-core decode attention: kernel (`Kernels::attn_tc[hd_idx][slots - 1]`) and blocks per
/// cluster (one cluster per KV head); `short`: the smaller clusters used while every warp of them has at most one
/// 32-position tile (`attn_tc_plan`).
struct AttnTc {
    hd_idx: usize,
    slots: usize,
    cluster: u32,
    short: Option<u32>,
}

impl AttnTc {
    /// Blocks per cluster for a step at position `pos`.
    fn cluster_at(&self, pos: usize) -> u32 {
        match self.short {
            Some(c) if (pos + 1).div_ceil(32) <= c as usize * device::attn_tc_warps() => c,
            _ => self.cluster,
        }
    }
}

/// Split-KV partial slots per (query row, head) of the GQA attention kernel (`GQ_MAX_SPLIT`).
const GQA_MAX_SPLIT: usize = 32;

/// Launch shape of the tensor-core GEMV: kernel variant (index into `Kernels::gemv_tc` and `TC_RINGS`; None:
/// chosen per matrix by `tc_shape`) and blocks per SM.
#[derive(Clone, Copy)]
struct TcCfg {
    variant: Option<usize>,
    bps: usize,
    /// No more ring slots than a warp has pieces (v13, `VIVA_TENSOR_TC_FIT=1`; measured slower, docs/gpu.md).
    fit: bool,
    /// The ring is filled with bulk copies (`Device::tc_tma`): one mbarrier per slot in shared memory.
    tma: bool,
}

/// Launch shape of the tensor-core GEMV for an `n` x `kp` matrix of `bytes` (weights and scales), with one FP8
/// scale per row when `row_scales` (staged in shared memory): grid, kernel variant and dynamic shared memory.
/// The ring is 6 slots (`tc.variant` fixes it), except for a matrix of at least `TC_LARGE` bytes where 6 slots
/// would not let `tc.bps` blocks share an SM of `sm_smem` bytes (each block also costs `reserved` bytes and its
/// static arrays): there the most slots with which they fit.
/// Measured on an H100 (docs/gpu.md v9): 6 slots everywhere was fastest on the TinyLlama shape (its 12 MB down
/// projection runs one block per SM), but lost on the Llama-2-7B shape, whose 45 MB down projection
/// (K = 11008) needs two blocks' bytes in flight. With `tc.fit`, a ring is never longer than the most pieces a
/// warp streams (at least 2 slots): the slots past them would never be filled, and the shared memory they
/// reserve keeps the next kernel's early blocks off the SM (the Llama-2-7B o projection, 4 pieces a warp,
/// beside the attention's blocks). Measured slower on an H100 (docs/gpu.md v13), so off by default.
fn tc_shape(
    (n, kp, bytes, row_scales): (usize, usize, usize, bool),
    tc: TcCfg,
    sms: usize,
    sm_smem: usize,
    reserved: usize,
) -> (u32, usize, usize) {
    let tiles = n.div_ceil(TC_ROWS);
    let grid = tiles.min(sms * tc.bps).max(1);
    // [mbarriers (one per slot, bulk-copy ring only)] | ring | x' | row sums | row scales (per-row scales only).
    let bars = |v: usize| if tc.tma { (8 * TC_RINGS[v] * 8).next_multiple_of(128) } else { 0 };
    let rows = tiles.div_ceil(grid) * TC_ROWS * 4 * if row_scales { 2 } else { 1 };
    let smem_of = |v: usize| bars(v) + 8 * TC_RINGS[v] * TC_SLOT + kp * 2 + rows;
    // Static shared memory of the kernel (its reduction scratch) is under 256 bytes.
    let fits = |v: usize| tc.bps * (smem_of(v) + 256 + reserved) <= sm_smem;
    let top = TC_RINGS.len() - 1;
    let variant = tc.variant.unwrap_or_else(|| {
        let v = if bytes < TC_LARGE || fits(top) { top } else { (1..top).rev().find(|&v| fits(v)).unwrap_or(0) };
        // The most pieces (16 rows x 128 bytes) one warp of the fullest block streams.
        let per_warp = (tiles.div_ceil(grid) * kp.div_ceil(128)).div_ceil(8);
        let need = TC_RINGS.iter().position(|&r| r >= per_warp).unwrap_or(top);
        if tc.fit {
            v.min(need)
        } else {
            v
        }
    });
    (grid as u32, variant, smem_of(variant))
}

/// u64 timeline marks per launch (kernels/common.cuh `tl_mark`): (first, last) block at start, wait release, three
/// phases, end.
const TL_MARKS: usize = 12;
/// u64 per launch in the timeline buffer: the marks, then 8 per block for the first 512 blocks (common.cuh
/// TL_BLOCKS: the block's own stamps of marks 0-5 and its `%smid` in the last).
const TL_STRIDE: usize = TL_MARKS + 8 * 512;

/// One launch of [`CudaModel::timeline`]: its name and marks in µs from the step's first start (NaN: not stamped).
pub type TimelineRow = (String, [f64; TL_MARKS]);

/// Ring slots per warp of the tensor-core GEMV variants (`Kernels::gemv_tc`, kernels/gemv.cu GEMV_TC_ENTRY).
const TC_RINGS: [usize; 5] = [2, 3, 4, 5, 6];

/// Bytes of one ring slot of the tensor-core GEMV (kernels/gemv.cu TC_SLOT: 16 rows x 128 B + scales) and
/// rows per tile (TC_ROWS).
const TC_SLOT: usize = 2176;
const TC_ROWS: usize = 16;
/// Matrices of at least this many bytes keep two tensor-core GEMV blocks per SM (see `tc_shape`).
const TC_LARGE: usize = 32 << 20;
/// `VIVA_TENSOR_TC_FLAGS` bit (bench only, not read by the kernel): every matrix requests kernels/gemv.cu TC_PREWAIT
/// ring slots before the wait, large ones included (the v11 rule).
const TC_PREWAIT_V11: i32 = 64;

/// The pinned 2-slot host ring the greedy loop reads tokens from.
struct Pinned(*mut i32);

impl Pinned {
    fn new() -> Result<Pinned> {
        let mut p: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: allocates 8 bytes of page-locked host memory into `p`.
        unsafe { sys::cuMemAllocHost_v2(&mut p, 8) }.result().map_err(|e| drv("pinned host allocation", e))?;
        Ok(Pinned(p as *mut i32))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: the pointer came from cuMemAllocHost and is freed once.
        let _ = unsafe { sys::cuMemFreeHost(self.0 as *mut std::ffi::c_void) };
    }
}

/// Timing events between kernels (profiling only).
struct Prof {
    events: Vec<(String, cudarc::driver::CudaEvent)>,
}

impl Prof {
    fn mark(&mut self, dev: &Device, s: &CudaStream, name: &str) -> Result<()> {
        let e = dev.ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(|e| drv("event", e))?;
        e.record(s).map_err(|e| drv("event record", e))?;
        self.events.push((name.to_string(), e));
        Ok(())
    }
}

/// A captured decode step (the graph holds raw pointers into its cache's buffers).
struct Graph(CudaGraph);

/// Per-sequence device state: KV cache, decode scratch, the captured decode graph.
pub struct CudaCache {
    stream: Arc<CudaStream>,
    kc: Buf, // [layers, kv_heads, max_pos, head_dim] (f32 or bf16)
    vc: Buf,
    layer_bytes: usize,
    len: usize,
    step: Buf, // i32 [token, pos]
    x: Buf,    // f32 [hidden]  residual stream
    qkv: Buf,  // f32 [(heads + 2 kv_heads) * head_dim]
    att: Buf,  // f32 [heads * head_dim]
    act: Buf,  // f32 [intermediate]
    logits: Buf,
    po: Buf,   // f32 [heads, nsplit, head_dim]  split-KV partial outputs
    pml: Buf,  // f32 [heads, nsplit, 2]         partial max / sum
    cnt: Buf,  // i32 [heads]                    split completion counters
    ss: Buf,   // f32 [4 layers + 1]               fused norm statistics (sum of squares per RMSNorm), x' maxima
    sync: Buf, // u32 [8]  persistent kernels: grid barrier counter, argmax key, done counter; [5] tp's step epoch
    /// The tensor-parallel kernel's global exchange words (4 x clusters x hidden / 2 of 16 bytes).
    xll: Option<Buf>,
    pre: Option<Prefill>,
    /// The captured decode step, one per attention cluster size it has run with (`AttnTc::cluster_at`).
    graphs: Vec<(u32, Graph)>,
    pinned: Option<Pinned>,
    events: Vec<cudarc::driver::CudaEvent>,
}

// SAFETY: the cache is used through `&mut` only (one thread at a time); the CUDA objects it holds
// (graph, pinned memory, events) may be used from any thread as long as calls are not concurrent.
unsafe impl Send for CudaCache {}

/// Prefill scratch for up to `cap` tokens.
struct Prefill {
    cap: usize,
    ids: Buf, // i32 [cap]
    x: Buf,   // f32 [cap, hidden]
    xn: Buf,  // f32 [cap, hidden]
    qkv: Buf, // f32 [cap, qkv_dim]
    att: Buf, // f32 [cap, heads * head_dim]
    act: Buf, // f32 [cap, intermediate]
    /// cuBLAS path scratch (allocated on first use of that path).
    blas: Option<BlasScratch>,
}

/// Scratch of the cuBLAS prefill path.
struct BlasScratch {
    xh: Buf,         // bf16 [cap, widest k]  activations (hi)
    xl: Option<Buf>, // bf16 [cap, widest k]  x - bf16(x) (bf16 weights only, as gemm_bf16's split)
    wb: Option<Buf>, // bf16 [largest n x kp]  dequantized FP8 weights (fp8 only)
    g: Buf,          // f32 [cap, 2 intermediate]  gate/up before silu(gate) * up
}

impl CudaCache {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl CudaModel {
    /// Loads, packs and uploads every tensor (presence, shape and dtype checked by the store).
    pub fn load(cfg: &Config, store: &TensorStore, tied: bool, format: Format) -> Result<CudaModel> {
        let dev = device::device()?;
        guard("CUDA model load", || CudaModel::load_on(dev, cfg, store, tied, format))
    }

    fn load_on(dev: Arc<Device>, cfg: &Config, store: &TensorStore, tied: bool, format: Format) -> Result<CudaModel> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        if hd % 8 != 0 || hd > 256 {
            return Err(Error::InvalidConfig(format!(
                "the CUDA backend needs head_dim to be a multiple of 8 and at most 256, got {hd}"
            )));
        }
        let (q_dim, kv_dim, inter) = (cfg.num_heads * hd, cfg.num_kv_heads * hd, cfg.intermediate_size);
        let widest = pack::padded(h.max(q_dim).max(inter)) * 4;
        if widest > dev.max_smem {
            return Err(Error::Cuda(format!(
                "a row of {widest} bytes does not fit the {} bytes of shared memory a block may use",
                dev.max_smem
            )));
        }
        dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
        let stream = dev.ctx.new_stream().map_err(|e| drv("stream creation", e))?;
        let pack = |w: &[f32], n: usize, k: usize| -> Packed {
            match format {
                Format::Bf16 => pack::pack_bf16(w, n, k),
                Format::Fp8 { block } => pack::pack_fp8(w, n, k, block),
            }
        };
        // v9 (docs/gpu.md): the tensor-core GEMV for FP8 blocks of 64 / 128 (a piece spans 128 k, one or two
        // scales); `VIVA_TENSOR_GEMV=cuda-core` keeps the v5 GEMV. Its TMA ring (`Device::tc_tma`) needs the
        // matrices' tensor maps and piece-ordered scales, made at upload.
        let tc_gemv_block = match format {
            Format::Fp8 { block }
                if (block == 64 || block == 128 || block == pack::FP8_ROW)
                    && std::env::var("VIVA_TENSOR_GEMV").map_or(true, |v| v != "cuda-core") =>
            {
                Some(block)
            }
            _ => None,
        };
        if dev.tc_tma && tc_gemv_block == Some(pack::FP8_ROW) {
            return Err(Error::InvalidOption(
                "the TMA-fed GEMV ring (VIVA_TENSOR_TC_TMA=1) has no per-row FP8 scales: pick a block of 64 or 128"
                    .into(),
            ));
        }
        let tma = dev.tc_tma && tc_gemv_block.is_some();
        let up = |p: Packed| Lin::upload(&stream, p, format.scale_block(), tma);
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let n = |s: &str| names::layer(i, s);
            let mut qkv = store.f32(&n(names::Q), &[q_dim, h])?;
            qkv.extend_from_slice(&store.f32(&n(names::K), &[kv_dim, h])?);
            qkv.extend_from_slice(&store.f32(&n(names::V), &[kv_dim, h])?);
            let gate = store.f32(&n(names::GATE), &[inter, h])?;
            let upw = store.f32(&n(names::UP), &[inter, h])?;
            let mut gu = Vec::with_capacity(2 * inter * h);
            for (g, u) in gate.chunks_exact(h).zip(upw.chunks_exact(h)) {
                gu.extend_from_slice(g);
                gu.extend_from_slice(u);
            }
            drop((gate, upw));
            layers.push(LayerW {
                attn_norm: NormW::upload(&stream, &store.f32(&n(names::ATTN_NORM), &[h])?)?,
                qkv: up(pack(&qkv, q_dim + 2 * kv_dim, h))?,
                o: up(pack(&store.f32(&n(names::O), &[h, q_dim])?, h, q_dim))?,
                ffn_norm: NormW::upload(&stream, &store.f32(&n(names::FFN_NORM), &[h])?)?,
                gate_up: up(pack(&gu, 2 * inter, h))?,
                down: up(pack(&store.f32(&n(names::DOWN), &[h, inter])?, h, inter))?,
            });
        }
        let embed_f32 = store.f32(names::EMBED, &[cfg.vocab_size, h])?;
        let embed_bytes: Vec<u8> =
            embed_f32.iter().flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes()).collect();
        let embed = Buf::from_bytes(&stream, &embed_bytes)?;
        drop(embed_bytes);
        let lm_head = if tied {
            up(pack(&embed_f32, cfg.vocab_size, h))?
        } else {
            drop(embed_f32);
            up(pack(&store.f32(names::LM_HEAD, &[cfg.vocab_size, h])?, cfg.vocab_size, h))?
        };
        let norm = NormW::upload(&stream, &store.f32(names::NORM, &[h])?)?;
        let inv_freq = cfg.rope_inv_freq();
        let half = hd / 2;
        let mut table = vec![0f32; cfg.max_position_embeddings * half * 2];
        let (mut cos, mut sin) = (vec![0f32; half], vec![0f32; half]);
        for (pos, row) in table.chunks_exact_mut(half * 2).enumerate() {
            crate::backend::linalg::rope_cos_sin(pos, &inv_freq, &mut cos, &mut sin);
            for i in 0..half {
                row[2 * i] = cos[i];
                row[2 * i + 1] = sin[i];
            }
        }
        let rope = Buf::from_f32(&stream, &table)?;
        stream.synchronize().map_err(|e| drv("weight upload", e))?;
        let weight_bytes =
            layers.iter().map(|l| l.qkv.bytes + l.o.bytes + l.gate_up.bytes + l.down.bytes).sum::<usize>()
                + lm_head.bytes;
        let nsplit = (2 * dev.sms).div_ceil(cfg.num_heads).clamp(1, 16);
        let env = |k: &str| std::env::var(k).ok();
        let use_graph = env("VIVA_TENSOR_CUDA_GRAPH").is_none_or(|v| v != "0");
        // Measured on an H100 (docs/gpu.md): 4 rows per warp for fp8, 8 for bf16.
        let gemv_rw8 = env("VIVA_TENSOR_GEMV_RW").map_or(format == Format::Bf16, |v| v == "8");
        let gemv_iters = env("VIVA_TENSOR_GEMV_ITERS").and_then(|v| v.parse::<usize>().ok()).unwrap_or(2).clamp(1, 16);
        // Off by default: measured slower on an H100 (docs/gpu.md, v4).
        let gemv_pf = env("VIVA_TENSOR_GEMV_PF").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let gu_bytes = layers.first().map_or(0, |l| l.gate_up.n * l.gate_up.kp);
        let fp8 = matches!(format, Format::Fp8 { .. });
        let gu_pf = gu_pf_plan(env("VIVA_TENSOR_GU_PF").as_deref(), fp8, dev.cc.0, dev.l2_bytes, gu_bytes);
        // The tensor-core GEMV (`tc_gemv_block` above): 2 blocks of 8 warps per SM, the ring per matrix as
        // `tc_shape` picks it. `VIVA_TENSOR_TC_RING` (2-6, fixed for every matrix) and `_BPS` (1-4) are for
        // experiments.
        let gemv_tc = tc_gemv_block.map(|_| {
            let variant = env("VIVA_TENSOR_TC_RING")
                .and_then(|v| v.parse::<usize>().ok())
                .and_then(|slots| TC_RINGS.iter().position(|&r| r == slots));
            let bps = env("VIVA_TENSOR_TC_BPS").and_then(|v| v.parse::<usize>().ok()).unwrap_or(2).clamp(1, 4);
            let fit = env("VIVA_TENSOR_TC_FIT").is_some_and(|v| v == "1");
            TcCfg { variant, bps, fit, tma: dev.tc_tma }
        });
        let tc_flags = env("VIVA_TENSOR_TC_FLAGS").and_then(|v| v.parse::<i32>().ok()).unwrap_or(0);
        let group = cfg.num_heads / cfg.num_kv_heads.max(1);
        let gqa = env("VIVA_TENSOR_ATTN").is_none_or(|v| v != "old")
            && cfg.num_kv_heads > 0
            && cfg.num_heads.is_multiple_of(cfg.num_kv_heads)
            && group <= 8
            && hd * if format == Format::Bf16 { 4 } else { 2 } <= 512;
        // All GQA_MAX_SPLIT slots are launched; the kernel uses ceil(positions / 32) of them. (Fewer launched
        // splits for many KV heads, 8 instead of 32 on the Llama-2-7B shape, measured neutral: docs/gpu.md v10.)
        let gqa_splits = GQA_MAX_SPLIT;
        let attn_tc = if gqa && format != Format::Bf16 && env("VIVA_TENSOR_ATTN").is_none_or(|v| v != "gqa") {
            attn_tc_plan(&dev, cfg)
        } else {
            None
        };
        // On by default: measured 1.1% faster on an H100 with identical test results (docs/gpu.md, v6);
        // `VIVA_TENSOR_NORM_FUSE=0` restores the per-block reduction.
        let norm_fuse = env("VIVA_TENSOR_NORM_FUSE").is_none_or(|v| v != "0");
        // Opt-in (`VIVA_TENSOR_PERSIST=1`): measured slower than the multi-kernel graph so far (docs/gpu.md, v8).
        let persist = if !gqa || env("VIVA_TENSOR_PERSIST").is_none_or(|v| v != "1") {
            None
        } else {
            persist_plan(&dev, &stream, cfg, &layers, format)?
        };
        // Opt-in (`VIVA_TENSOR_DECODE=tp`) until it is measured faster (docs/gpu.md, v17).
        let tp = if persist.is_none() && env("VIVA_TENSOR_DECODE").is_some_and(|v| v == "tp") {
            tp_plan(&dev, &stream, cfg, &layers, &lm_head, format)?
        } else {
            None
        };
        Ok(CudaModel {
            dev,
            stream,
            cfg: cfg.clone(),
            format,
            kv_f32: format == Format::Bf16,
            embed,
            rope,
            layers,
            norm,
            lm_head,
            weight_bytes,
            nsplit,
            use_graph,
            gemv_rw8,
            gemv_iters,
            gemv_pf,
            gu_pf,
            gemv_tc,
            tc_flags,
            gqa,
            gqa_splits,
            attn_tc,
            norm_fuse,
            persist,
            tp,
        })
    }

    /// Does decode run as the one persistent kernel (kernels/persist.cu)?
    pub fn persistent_decode(&self) -> bool {
        self.persist.is_some() || self.tp.is_some()
    }

    /// The decode step's attention kernel (see `Model::decode_attention`).
    pub fn decode_attention(&self) -> &'static str {
        if self.tp.is_some() {
            "tensor-parallel kernel"
        } else if self.persist.is_some() {
            "persistent kernel"
        } else if self.attn_tc.is_some() {
            "tensor-core cluster"
        } else if self.gqa {
            "gqa"
        } else {
            "per-head"
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Weight bytes streamed from device memory per decoded token (packed layers + lm_head).
    pub fn weight_bytes_per_token(&self) -> usize {
        self.weight_bytes
    }

    /// `"NVIDIA H100 80GB HBM3 (sm_90)"`.
    pub fn device_name(&self) -> String {
        format!("{} (sm_{}{})", self.dev.name, self.dev.cc.0, self.dev.cc.1)
    }

    fn fp8(&self) -> bool {
        matches!(self.format, Format::Fp8 { .. })
    }

    /// The FP8 block of the persistent kernel, which takes one for every matrix (it refuses per-row scales).
    fn qblock(&self) -> i32 {
        self.format.scale_block() as i32
    }

    /// A fresh, empty KV cache (device memory for the whole context is allocated now).
    pub fn new_cache(&self) -> Result<CudaCache> {
        guard("CUDA cache allocation", || self.new_cache_inner())
    }

    fn new_cache_inner(&self) -> Result<CudaCache> {
        let c = &self.cfg;
        self.dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
        let s = self.dev.ctx.new_stream().map_err(|e| drv("stream creation", e))?;
        let esize = if self.kv_f32 { 4 } else { 2 };
        let layer_bytes = c.num_kv_heads * c.max_position_embeddings * c.head_dim * esize;
        let qkv_dim = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
        let f = |n: usize| Buf::zeros(&s, n * 4);
        let cache = CudaCache {
            kc: Buf::zeros(&s, layer_bytes * c.num_layers)?,
            vc: Buf::zeros(&s, layer_bytes * c.num_layers)?,
            layer_bytes,
            len: 0,
            step: f(2)?,
            x: f(c.hidden_size)?,
            qkv: f(qkv_dim)?,
            att: f(c.num_heads * c.head_dim)?,
            act: f(c.intermediate_size)?,
            logits: f(c.vocab_size)?,
            po: f(c.num_heads * self.nsplit.max(GQA_MAX_SPLIT) * c.head_dim)?,
            pml: f(c.num_heads * self.nsplit.max(GQA_MAX_SPLIT) * 2)?,
            cnt: f(c.num_heads)?,
            ss: f(4 * c.num_layers + 1)?,
            sync: f(8)?,
            xll: self.tp.as_ref().map(|p| Buf::zeros(&s, 4 * p.shape.ncl * c.hidden_size * 8)).transpose()?,
            pre: None,
            graphs: Vec::new(),
            pinned: None,
            events: Vec::new(),
            stream: s,
        };
        cache.stream.synchronize().map_err(|e| drv("cache allocation", e))?;
        Ok(cache)
    }

    fn check(&self, c: &CudaCache, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::InvalidOption("forward needs at least one token".into()));
        }
        if c.len + tokens.len() > self.cfg.max_position_embeddings {
            return Err(Error::PromptTooLong(format!(
                "{} cached + {} new positions exceed the context of {} positions",
                c.len,
                tokens.len(),
                self.cfg.max_position_embeddings
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            return Err(Error::TokenOutOfRange(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.cfg.vocab_size
            )));
        }
        Ok(())
    }

    /// Runs `tokens` at positions `cache.len..` and returns the last position's logits.
    pub fn forward(&self, c: &mut CudaCache, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check(c, tokens)?;
        guard("CUDA forward", || {
            self.dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
            if tokens.len() == 1 {
                self.write_step(c, tokens[0], c.len)?;
                self.decode_step(c, c.len)?;
            } else {
                self.prefill(c, tokens, &mut None)?;
            }
            c.len += tokens.len();
            let mut bytes = vec![0u8; self.cfg.vocab_size * 4];
            c.stream
                .memcpy_dtoh(&c.logits.mem.slice(0..bytes.len()), &mut bytes)
                .map_err(|e| drv("logits download", e))?;
            c.stream.synchronize().map_err(|e| drv("forward", e))?;
            Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        })
    }

    /// Greedy decoding on the device: feeds `token` at `cache.len`, then each argmax, reporting every
    /// generated token to `on_token` (return `false` to stop). At most `max_new` tokens (and never
    /// past the context). The host stays one step ahead of the device (token i is read back while
    /// step i + 1 runs), so the GPU does not wait for the host between tokens.
    pub fn decode_greedy(
        &self,
        c: &mut CudaCache,
        token: u32,
        max_new: usize,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Vec<u32>> {
        self.check(c, &[token])?;
        let n = max_new.min(self.cfg.max_position_embeddings - c.len);
        if n == 0 {
            return Ok(vec![]);
        }
        guard("CUDA greedy decode", || {
            self.dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
            if c.pinned.is_none() {
                c.pinned = Some(Pinned::new()?);
            }
            while c.events.len() < 2 {
                c.events.push(self.dev.ctx.new_event(None).map_err(|e| drv("event", e))?);
            }
            let host = c.pinned.as_ref().map(|p| p.0).unwrap_or(std::ptr::null_mut());
            self.write_step(c, token, c.len)?;
            let mut out = Vec::with_capacity(n);
            let pos = c.len;
            self.greedy_issue(c, host, pos, 0)?;
            let mut result = Ok(());
            for i in 0..n {
                if i + 1 < n {
                    if let Err(e) = self.greedy_issue(c, host, pos + i + 1, i + 1) {
                        result = Err(e);
                        break;
                    }
                }
                if let Err(e) = c.events[i % 2].synchronize() {
                    result = Err(drv("greedy step", e));
                    break;
                }
                // SAFETY: slot i % 2 of the pinned ring was written by the copy recorded before
                // event i % 2, which has completed; the next write to this slot is issued later.
                let tok = unsafe { std::ptr::read_volatile(host.add(i % 2)) } as u32;
                out.push(tok);
                if !on_token(tok) {
                    break;
                }
            }
            c.stream.synchronize().map_err(|e| drv("greedy decode", e))?;
            result?;
            c.len += out.len();
            Ok(out)
        })
    }

    /// Issues step `i` of a greedy run (at position `pos`) and the copy of its token into pinned slot i % 2.
    fn greedy_issue(&self, c: &mut CudaCache, host: *mut i32, pos: usize, i: usize) -> Result<()> {
        self.decode_step(c, pos)?;
        // SAFETY: copies the 4-byte token (step[0]) into pinned slot i % 2, ordered after the step.
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(host.add(i % 2) as *mut std::ffi::c_void, c.step.ptr, 4, c.stream.cu_stream())
        }
        .result()
        .map_err(|e| drv("token download", e))?;
        c.events[i % 2].record(&c.stream).map_err(|e| drv("event record", e))
    }

    fn write_step(&self, c: &mut CudaCache, token: u32, pos: usize) -> Result<()> {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(token as i32).to_le_bytes());
        b[4..].copy_from_slice(&(pos as i32).to_le_bytes());
        c.stream.memcpy_htod(&b, &mut c.step.mem.slice_mut(0..8)).map_err(|e| drv("step upload", e))
    }

    /// The attention's cluster size for a step at `pos` (0 where the tensor-core attention does not run).
    fn attn_cluster(&self, pos: usize) -> u32 {
        if self.persistent_decode() {
            return 0;
        }
        self.attn_tc.as_ref().map_or(0, |a| a.cluster_at(pos))
    }

    /// One decode step for the token / position in `c.step` (`pos`, which picks the attention's shape), through the
    /// cache's graph for that shape (captured on first use).
    fn decode_step(&self, c: &mut CudaCache, pos: usize) -> Result<()> {
        let cluster = self.attn_cluster(pos);
        if !self.use_graph {
            return self.decode_launches(c, &mut None, 0, cluster);
        }
        let i = match c.graphs.iter().position(|(k, _)| *k == cluster) {
            Some(i) => i,
            None => {
                let g = self.capture_step(c, 0, cluster)?;
                g.upload().map_err(|e| drv("graph upload", e))?;
                c.graphs.push((cluster, Graph(g)));
                c.graphs.len() - 1
            }
        };
        let (_, Graph(g)) = &c.graphs[i];
        g.launch().map_err(|e| drv("graph launch", e))
    }

    /// The decode step's launches captured as a graph on the cache's stream (`tl`, `cluster`: as in
    /// `decode_launches`).
    fn capture_step(&self, c: &CudaCache, tl: u64, cluster: u32) -> Result<CudaGraph> {
        c.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(|e| drv("graph capture", e))?;
        let launched = self.decode_launches(c, &mut None, tl, cluster);
        let g = c.stream.end_capture(sys::CUgraphInstantiate_flags(0)).map_err(|e| drv("graph capture", e))?;
        launched?;
        g.ok_or_else(|| Error::Cuda("graph capture produced no graph".into()))
    }

    fn a16(&self) -> i32 {
        i32::from(self.fp8())
    }

    /// The arguments both GEMV kernels start with: W, S, qblock, N, K, Kp, x, norm_w, eps.
    fn gemv_head(&self, l: &Lin, x: u64, norm: Option<&NormW>) -> [Arg; 9] {
        [
            Arg::P(l.w.ptr),
            Arg::P(l.s.as_ref().map_or(0, |b| b.ptr)),
            Arg::I(l.qblock),
            Arg::I(l.n as i32),
            Arg::I(l.k as i32),
            Arg::I(l.kp as i32),
            Arg::P(x),
            Arg::P(norm.map_or(0, |b| b.w.ptr)),
            Arg::F(self.cfg.rms_norm_eps as f32),
        ]
    }

    /// y (op)= W · x', x' optionally RMS-normalised with `norm` (see kernels/gemv.cu): through the tensor-core
    /// FP8 kernel (v9) when `gemv_tc` is set — at most `tc.bps` blocks per SM, each taking a contiguous share of
    /// the 16-row tiles — else the CUDA-core kernel.
    #[allow(clippy::too_many_arguments)]
    fn gemv(
        &self,
        s: &CudaStream,
        l: &Lin,
        x: u64,
        norm: Option<&NormW>,
        y: u64,
        mode: i32,
        ss: (u64, u64),
        xmax: (u64, u64),
        tl: u64,
        l2pf: (u64, usize),
    ) -> Result<()> {
        if let Some(tc) = self.gemv_tc {
            let m = (l.n, l.kp, l.bytes, l.row_scales);
            let (grid, variant, smem) = tc_shape(m, tc, self.dev.sms, self.dev.sm_smem, self.dev.block_reserved_smem);
            // Ring slots requested before griddepcontrol.wait: a matrix of TC_LARGE bytes or more requests its whole
            // ring, the others kernels/gemv.cu TC_PREWAIT (H100, docs/gpu.md v11-v12: +0.5-0.8% on the Llama-2-7B
            // shape, whose big matrices all qualify; -0.7% on TinyLlama's lm_head, one call). Flags (F + 1) << 8
            // override.
            let flags = if self.tc_flags & TC_PREWAIT_V11 != 0 || self.tc_flags >> 8 & 15 != 0 || l.bytes < TC_LARGE {
                self.tc_flags
            } else {
                self.tc_flags | (TC_RINGS[variant] as i32 + 1) << 8
            };
            let xsh = norm.map_or(TC_XSH_DYN, |n| n.xsh);
            let mut head = self.gemv_head(l, x, norm);
            if self.dev.tc_tma {
                // The kernel's TMA ring reads the weights through their tensor map and the scales in piece order.
                let (Some(m), Some(st)) = (&l.tmap, &l.s_tc) else {
                    return Err(Error::Cuda("a matrix without the TMA ring's tensor map reached the TMA GEMV".into()));
                };
                head[0] = Arg::P(m.ptr);
                head[1] = Arg::P(st.ptr);
            }
            let args = [
                &head[..],
                &[Arg::P(y), Arg::I(mode), Arg::P(ss.0), Arg::P(ss.1), Arg::I(flags), Arg::I(xsh)],
                &[Arg::P(xmax.0), Arg::P(xmax.1), Arg::P(tl), Arg::P(l2pf.0), Arg::I64(l2pf.1 as i64)],
            ]
            .concat();
            let f = if l.row_scales { &self.dev.k.gemv_tcr[variant] } else { &self.dev.k.gemv_tc[variant] };
            return self.dev.launch(s, f, (grid, 1, 1), 256, smem as u32, &args);
        }
        let (fs, ch) = if self.fp8() { (&self.dev.k.gemv_fp8, 16) } else { (&self.dev.k.gemv_bf16, 8) };
        let rw = if self.gemv_rw8 { 8 } else { 4 };
        let f = &fs[usize::from(self.gemv_rw8)];
        // k-split: as many warps along K as keep every lane streaming >= gemv_iters chunks.
        let nch = l.kp / ch;
        let mut wk = 8;
        while wk > 1 && wk * 32 * self.gemv_iters > nch {
            wk /= 2;
        }
        let rpb = (8 / wk) * rw;
        let grid = l.n.div_ceil(rpb) as u32;
        let args = [
            &self.gemv_head(l, x, norm)[..],
            &[
                Arg::I(self.a16()),
                Arg::P(y),
                Arg::I(mode),
                Arg::I(wk as i32),
                Arg::I(self.gemv_pf as i32),
                Arg::P(ss.0),
                Arg::P(ss.1),
            ],
        ]
        .concat();
        self.dev.launch(s, f, (grid, 1, 1), 256, (l.kp * 4) as u32, &args)
    }

    /// Y[m, n] (op)= X[m, k] · Wᵀ on the tensor cores (see kernels/gemm.cu).
    fn gemm(&self, s: &CudaStream, l: &Lin, x: u64, m: usize, y: u64, mode: i32) -> Result<()> {
        let f = if self.fp8() { &self.dev.k.gemm_fp8 } else { &self.dev.k.gemm_bf16 };
        let args = [
            Arg::P(x),
            Arg::I(m as i32),
            Arg::I(l.k as i32),
            Arg::P(l.w.ptr),
            Arg::P(l.s.as_ref().map_or(0, |b| b.ptr)),
            Arg::I(l.qblock),
            Arg::I(l.n as i32),
            Arg::I(l.kp as i32),
            Arg::P(y),
            Arg::I(mode),
        ];
        self.dev.launch(s, f, (l.n.div_ceil(128) as u32, m.div_ceil(64) as u32, 1), 256, 0, &args)
    }

    /// Is the cuBLAS handle usable (created now if not tried yet)? A failure is remembered and logged
    /// once; the hand-written GEMMs are used instead.
    fn blas_ready(&self) -> bool {
        let mut b = self.dev.blas.lock();
        if matches!(*b, BlasSlot::Untried) {
            *b = match Blas::new() {
                Ok(h) => BlasSlot::Ready(h),
                Err(e) => {
                    eprintln!("viva_tensor: cuBLAS unavailable, prefill uses the built-in GEMMs: {e}");
                    BlasSlot::Failed
                }
            };
        }
        matches!(*b, BlasSlot::Ready(_))
    }

    fn blas_scratch(&self, s: &Arc<CudaStream>, cap: usize) -> Result<BlasScratch> {
        let c = &self.cfg;
        let lins = self.layers.iter().flat_map(|l| [&l.qkv, &l.o, &l.gate_up, &l.down]);
        let widest = lins.clone().map(|l| l.k).max().unwrap_or(0);
        let largest = lins.map(|l| l.n * l.kp).max().unwrap_or(0);
        let b = |n: usize| Buf::zeros(s, n * 2);
        Ok(BlasScratch {
            xh: b(cap * widest)?,
            xl: if self.fp8() { None } else { Some(b(cap * widest)?) },
            wb: if self.fp8() { Some(b(largest)?) } else { None },
            g: Buf::zeros(s, cap * 2 * c.intermediate_size * 4)?,
        })
    }

    /// Grid of a grid-stride elementwise kernel over `n` items.
    fn ew_grid(&self, n: usize) -> (u32, u32, u32) {
        (n.div_ceil(256).clamp(1, self.dev.sms * 16) as u32, 1, 1)
    }

    /// Prefill GEMM: cuBLAS when `bs` is given (and the shape allows), else the mma.sync kernel.
    #[allow(clippy::too_many_arguments)]
    fn gemm_pre(
        &self,
        s: &CudaStream,
        l: &Lin,
        x: u64,
        m: usize,
        y: u64,
        mode: i32,
        bs: Option<&BlasScratch>,
    ) -> Result<()> {
        let bs = match bs {
            Some(b) if l.k.is_multiple_of(4) => b,
            _ => return self.gemm(s, l, x, m, y, mode),
        };
        let k = &self.dev.k;
        let guard_ = self.dev.blas.lock();
        let BlasSlot::Ready(blas) = &*guard_ else {
            return self.gemm(s, l, x, m, y, mode);
        };
        // Activations: f32 [m, k] -> bf16 (+ remainder for the bf16-weight path), as gemm.cu rounds them.
        let n4 = m * l.k / 4;
        let xl = bs.xl.as_ref().map_or(0, |b| b.ptr);
        self.dev.launch(
            s,
            &k.split_bf16,
            self.ew_grid(n4),
            256,
            0,
            &[Arg::P(x), Arg::I64(n4 as i64), Arg::P(bs.xh.ptr), Arg::P(xl)],
        )?;
        let w = match (&bs.wb, &l.s) {
            (Some(wb), Some(sc)) => {
                let nch = l.n * l.kp / 16;
                self.dev.launch(
                    s,
                    &k.dequant_fp8,
                    self.ew_grid(nch),
                    256,
                    0,
                    &[
                        Arg::P(l.w.ptr),
                        Arg::P(sc.ptr),
                        Arg::I(l.qblock),
                        Arg::I(l.kp as i32),
                        Arg::I64(nch as i64),
                        Arg::P(wb.ptr),
                    ],
                )?;
                wb.ptr
            }
            _ => l.w.ptr,
        };
        let (out, beta) = match mode {
            1 => (y, 1.0),
            2 => (bs.g.ptr, 0.0),
            _ => (y, 0.0),
        };
        blas.gemm_bf16(s, (m, l.n, l.k), bs.xh.ptr, l.k, w, l.kp, out, beta)?;
        if let Some(xl) = &bs.xl {
            blas.gemm_bf16(s, (m, l.n, l.k), xl.ptr, l.k, w, l.kp, out, 1.0)?;
        }
        if mode == 2 {
            let np = m * l.n / 2;
            self.dev.launch(
                s,
                &k.glu,
                self.ew_grid(np),
                256,
                0,
                &[Arg::P(bs.g.ptr), Arg::I64(np as i64), Arg::P(y)],
            )?;
        }
        Ok(())
    }

    /// Attention of `t` query rows into `out`. `amax`: a zeroed f32 slot for max |bf16(out)|, which only the
    /// tensor-core kernel reduces; returns it when that kernel ran (the o projection's x' shift), else 0.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        c: &CudaCache,
        layer: usize,
        qkv: u64,
        out: u64,
        nsplit: usize,
        t: usize,
        fuse: bool,
        amax: u64,
        tl: u64,
        cluster: u32,
    ) -> Result<u64> {
        let cfg = &self.cfg;
        // The arguments every attention kernel starts with, and those of the KV cache they all take.
        let heads = [Arg::P(qkv), Arg::I(cfg.num_heads as i32), Arg::I(cfg.num_kv_heads as i32)];
        let cache = [
            Arg::P(c.kc.at(layer * c.layer_bytes)),
            Arg::P(c.vc.at(layer * c.layer_bytes)),
            Arg::I(cfg.max_position_embeddings as i32),
            Arg::P(self.rope.ptr),
            Arg::P(c.step.ptr),
            Arg::F(1.0 / (cfg.head_dim as f32).sqrt()),
        ];
        if let (Some(a), true, 1) = (&self.attn_tc, fuse, t) {
            let args = [&heads[..], &cache, &[Arg::P(out), Arg::P(amax), Arg::P(tl)]].concat();
            let smem = device::attn_tc_smem(cfg.head_dim, a.slots, cluster as usize) as u32;
            let grid = (cfg.num_kv_heads as u32 * cluster, 1, 1);
            let f = &self.dev.k.attn_tc[a.hd_idx][a.slots - 1];
            let threads = 32 * device::attn_tc_warps() as u32;
            self.dev.launch_ex(&c.stream, f, grid, threads, smem, &args, LaunchMode::Cluster(cluster))?;
            return Ok(amax);
        }
        let (f, grid, threads, smem) = if self.gqa {
            let k = &self.dev.k;
            let splits = if nsplit > 1 { self.gqa_splits } else { 1 };
            let tiles = 2 * 32 * (cfg.head_dim * if self.kv_f32 { 4 } else { 2 } + 16);
            let f = if self.kv_f32 { &k.gqa_f32 } else { &k.gqa_bf16 };
            (f, (cfg.num_kv_heads as u32, splits as u32, t as u32), 256, tiles as u32)
        } else {
            let f = if self.kv_f32 { &self.dev.k.attn_f32 } else { &self.dev.k.attn_bf16 };
            (f, (cfg.num_heads as u32, nsplit as u32, t as u32), 128, 0)
        };
        let tail = [Arg::I(i32::from(fuse)), Arg::P(out), Arg::P(c.po.ptr), Arg::P(c.pml.ptr), Arg::P(c.cnt.ptr)];
        let args = [&heads[..], &[Arg::I(cfg.head_dim as i32)], &cache, &tail].concat();
        // The GQA kernel also takes its timeline marks.
        let args = if self.gqa { [&args[..], &[Arg::P(tl)]].concat() } else { args };
        self.dev.launch(&c.stream, f, grid, threads, smem, &args)?;
        Ok(0)
    }

    /// The kernels of one decode step (token and position read from `c.step`). `tl`: 0, or the device buffer
    /// of [`TL_STRIDE`] u64 per launch of [`CudaModel::timeline`] (the GEMVs and attention kernels, in order).
    /// `cluster`: the tensor-core attention's blocks per cluster (`CudaModel::attn_cluster`; 0 where it does not run).
    fn decode_launches(&self, c: &CudaCache, prof: &mut Option<Prof>, tl: u64, cluster: u32) -> Result<()> {
        let (cfg, k, s) = (&self.cfg, &self.dev.k, &c.stream);
        let h = cfg.hidden_size;
        let mut mark = |name: &str| prof.as_mut().map_or(Ok(()), |p| p.mark(&self.dev, s, name));
        mark("start")?;
        if let Some(p) = &self.persist {
            self.launch_persist(c, p, 0)?;
            return mark("persistent decode step");
        }
        if let Some(p) = &self.tp {
            self.launch_tp(c, p, 0)?;
            return mark("tensor-parallel decode step");
        }
        self.dev.launch(
            s,
            &k.embed,
            (1, 1, 1),
            256,
            0,
            &[
                Arg::P(self.embed.ptr),
                Arg::P(c.step.ptr),
                Arg::I(h as i32),
                Arg::P(c.x.ptr),
                Arg::P(if self.norm_fuse { c.ss.ptr } else { 0 }),
                Arg::I(4 * cfg.num_layers as i32 + 1),
            ],
        )?;
        mark("embed")?;
        // Slot j of c.ss: sum(x²) for the j-th RMSNorm of the step (2 per layer, then the final norm). After them,
        // 2 per layer: max |bf16(x')| of the o and down projections' inputs, reduced by the kernels that write them
        // (the tensor-core attention, which says whether it ran; gate/up's silu epilogue), so those GEMVs skip
        // their own block max.
        let slot = |j: usize| if self.norm_fuse { c.ss.at(j * 4) } else { 0 };
        let nl = cfg.num_layers;
        let att_max = |li: usize| slot(2 * nl + 1 + 2 * li);
        let act_max = |li: usize| slot(2 * nl + 2 + 2 * li);
        // Launch j's timeline marks (GEMVs and attention in order; 0 when not recording).
        let tl = |j: usize| if tl == 0 { 0 } else { tl + (j * TL_STRIDE * 8) as u64 };
        for (li, l) in self.layers.iter().enumerate() {
            let j = 5 * li;
            // The o projection requests gate/up's first weights into L2 (`gu_pf_plan`).
            let gu_pf = (l.gate_up.w.ptr, (l.gate_up.n * l.gate_up.kp).min(self.gu_pf));
            // h = x + o_proj(attn(rope(q), rope(k), v)), q|k|v = qkv_proj(norm(x))
            self.gemv(s, &l.qkv, c.x.ptr, Some(&l.attn_norm), c.qkv.ptr, 0, (slot(2 * li), 0), (0, 0), tl(j), NO_PF)?;
            mark("norm+qkv gemv")?;
            let om =
                self.attention(c, li, c.qkv.ptr, c.att.ptr, self.nsplit, 1, true, att_max(li), tl(j + 1), cluster)?;
            mark("rope+kv+attention")?;
            self.gemv(s, &l.o, c.att.ptr, None, c.x.ptr, 1, (0, slot(2 * li + 1)), (om, 0), tl(j + 2), gu_pf)?;
            mark("o gemv+residual")?;
            // x = h + down_proj(silu(gate_proj(norm(h))) * up_proj(norm(h)))
            let ss = (slot(2 * li + 1), 0);
            self.gemv(s, &l.gate_up, c.x.ptr, Some(&l.ffn_norm), c.act.ptr, 2, ss, (0, act_max(li)), tl(j + 3), NO_PF)?;
            mark("norm+gate/up gemv+silu")?;
            self.gemv(
                s,
                &l.down,
                c.act.ptr,
                None,
                c.x.ptr,
                1,
                (0, slot(2 * li + 2)),
                (act_max(li), 0),
                tl(j + 4),
                NO_PF,
            )?;
            mark("down gemv+residual")?;
        }
        let last = slot(2 * cfg.num_layers);
        let j = 5 * self.layers.len();
        self.gemv(s, &self.lm_head, c.x.ptr, Some(&self.norm), c.logits.ptr, 0, (last, 0), (0, 0), tl(j), NO_PF)?;
        mark("norm+lm_head gemv")?;
        self.dev.launch(
            s,
            &k.argmax,
            (1, 1, 1),
            1024,
            0,
            &[Arg::P(c.logits.ptr), Arg::I(cfg.vocab_size as i32), Arg::P(c.step.ptr)],
        )?;
        mark("argmax")
    }

    /// The model's dimensions as the persistent kernels take them: heads, KV heads, head_dim, hidden, intermediate,
    /// vocabulary.
    fn dims_args(&self) -> [Arg; 6] {
        let cfg = &self.cfg;
        [cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size]
            .map(|v| Arg::I(v as i32))
    }

    /// The persistent kernels' RMSNorm epsilon and attention scale, then the cache's K, V, context, layer stride (elements)
    /// and step buffer.
    fn cache_args(&self, c: &CudaCache) -> [Arg; 7] {
        let cfg = &self.cfg;
        [
            Arg::F(cfg.rms_norm_eps as f32),
            Arg::F(1.0 / (cfg.head_dim as f32).sqrt()),
            Arg::P(c.kc.ptr),
            Arg::P(c.vc.ptr),
            Arg::I(cfg.max_position_embeddings as i32),
            Arg::I64((c.layer_bytes / 2) as i64),
            Arg::P(c.step.ptr),
        ]
    }

    /// The whole decode step as one cooperative launch of the persistent kernel.
    /// `prof`: 0, or a device buffer of 2 x 1024 u64 for the kernel's (clock, phase) marks (profiling only).
    fn launch_persist(&self, c: &CudaCache, p: &Persist, prof: u64) -> Result<()> {
        let cfg = &self.cfg;
        let l = &self.lm_head;
        let head = [
            Arg::P(p.plan.ptr),
            Arg::I(cfg.num_layers as i32),
            Arg::P(l.w.ptr),
            Arg::P(l.s.as_ref().map_or(0, |b| b.ptr)),
            Arg::P(self.norm.w.ptr),
            Arg::P(self.embed.ptr),
            Arg::P(self.rope.ptr),
        ];
        let tail = [
            Arg::P(c.x.ptr),
            Arg::P(c.qkv.ptr),
            Arg::P(c.att.ptr),
            Arg::P(c.act.ptr),
            Arg::P(c.logits.ptr),
            Arg::P(c.po.ptr),
            Arg::P(c.pml.ptr),
            Arg::P(c.cnt.ptr),
            Arg::P(c.sync.ptr),
            Arg::I(p.tile_bytes as i32),
            Arg::I(p.nslots as i32),
            Arg::I(p.slot_bytes as i32),
            Arg::I(p.slot_w as i32),
            Arg::I(p.xs_bytes as i32),
            Arg::I(p.x16_bytes as i32),
            Arg::I(p.acc_rows as i32),
            Arg::P(prof),
        ];
        let args = [&head[..], &self.dims_args(), &[Arg::I(self.qblock())], &self.cache_args(c), &tail].concat();
        let smem = (p.nslots * p.slot_bytes + p.xs_bytes + p.x16_bytes + p.acc_rows * 4) as u32;
        self.dev.launch_ex(&c.stream, &self.dev.k.persist, (p.blocks, 1, 1), 288, smem, &args, LaunchMode::Cooperative)
    }

    /// The whole decode step as one launch of the tensor-parallel kernel, in clusters of `tp::CLUSTER` blocks.
    /// `prof`: 0, or a device buffer of blocks x `TP_PROF_MAX` (time, phase) pairs (profiling only).
    fn launch_tp(&self, c: &CudaCache, p: &TpPlan, prof: u64) -> Result<()> {
        let cfg = &self.cfg;
        let s = &p.shape;
        let xll =
            c.xll.as_ref().ok_or_else(|| Error::Cuda("the cache has no tensor-parallel exchange buffer".into()))?;
        let head = [
            Arg::P(p.ws.ptr),
            Arg::P(p.soff.ptr),
            Arg::P(p.bplan.ptr),
            Arg::P(p.lplan.ptr),
            Arg::P(self.lm_head.s.as_ref().map_or(0, |b| b.ptr)),
            Arg::P(self.norm.w.ptr),
            Arg::P(self.embed.ptr),
            Arg::P(self.rope.ptr),
            Arg::I(cfg.num_layers as i32),
        ];
        let tail = [
            Arg::P(c.logits.ptr),
            Arg::P(xll.ptr),
            Arg::P(c.sync.ptr),
            Arg::I(p.nslots as i32),
            Arg::I(s.xbs as i32),
            Arg::I(p.hmax as i32),
            Arg::I(s.kph as i32),
            Arg::I(s.kpo as i32),
            Arg::I(p.cap),
            Arg::I(p.lmax as i32),
            Arg::P(prof),
        ];
        let args = [&head[..], &self.dims_args(), &self.cache_args(c), &tail].concat();
        let grid = (s.nblk as u32, 1, 1);
        let mode = LaunchMode::Cluster(tp::CLUSTER as u32);
        self.dev.launch_ex(&c.stream, &self.dev.k.tp, grid, 288, p.smem as u32, &args, mode)
    }

    /// Prefill: all `tokens` in one pass (GEMMs + causal attention), logits of the last one.
    fn prefill(&self, c: &mut CudaCache, tokens: &[u32], prof: &mut Option<Prof>) -> Result<()> {
        let cfg = &self.cfg;
        let t = tokens.len();
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let qkv_dim = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd;
        if c.pre.as_ref().is_none_or(|p| p.cap < t) {
            let cap = t.next_power_of_two().max(16);
            let s = &c.stream;
            let f = |n: usize| Buf::zeros(s, n * 4);
            c.pre = Some(Prefill {
                cap,
                ids: f(cap)?,
                x: f(cap * h)?,
                xn: f(cap * h)?,
                qkv: f(cap * qkv_dim)?,
                att: f(cap * cfg.num_heads * hd)?,
                act: f(cap * cfg.intermediate_size)?,
                blas: None,
            });
        }
        let use_blas = prefill_path() == PrefillPath::Cublas && t >= prefill_blas_min() && self.blas_ready();
        let p = c.pre.as_mut().ok_or_else(|| Error::Cuda("prefill scratch".into()))?;
        if use_blas && p.blas.is_none() {
            p.blas = Some(self.blas_scratch(&c.stream, p.cap)?);
        }
        let ids: Vec<u8> = tokens.iter().flat_map(|&id| (id as i32).to_le_bytes()).collect();
        c.stream.memcpy_htod(&ids, &mut p.ids.mem.slice_mut(0..ids.len())).map_err(|e| drv("ids upload", e))?;
        self.write_step(c, 0, c.len)?;
        let p = c.pre.as_ref().ok_or_else(|| Error::Cuda("prefill scratch".into()))?;
        let (k, s) = (&self.dev.k, &c.stream);
        let bs = if use_blas { p.blas.as_ref() } else { None };
        let eps = cfg.rms_norm_eps as f32;
        let a16 = self.a16();
        let tu = t as u32;
        let mut mark = |name: &str| prof.as_mut().map_or(Ok(()), |pr| pr.mark(&self.dev, s, name));
        mark("start")?;
        self.dev.launch(
            s,
            &k.embed,
            (tu, 1, 1),
            256,
            0,
            &[Arg::P(self.embed.ptr), Arg::P(p.ids.ptr), Arg::I(h as i32), Arg::P(p.x.ptr), Arg::P(0), Arg::I(0)],
        )?;
        mark("embed")?;
        let rope = if self.kv_f32 { &k.rope_f32 } else { &k.rope_bf16 };
        // xn = RMSNorm(x) · w over the t rows (the same launch before attention and before the MLP).
        let rmsnorm = |w| {
            let args = [Arg::P(p.x.ptr), Arg::P(w), Arg::I(h as i32), Arg::F(eps), Arg::I(a16), Arg::P(p.xn.ptr)];
            self.dev.launch(s, &k.rmsnorm, (tu, 1, 1), 256, 0, &args)
        };
        for (li, l) in self.layers.iter().enumerate() {
            rmsnorm(l.attn_norm.w.ptr)?;
            mark("rmsnorm")?;
            self.gemm_pre(s, &l.qkv, p.xn.ptr, t, p.qkv.ptr, 0, bs)?;
            mark("qkv gemm")?;
            let args = [
                Arg::P(p.qkv.ptr),
                Arg::I(cfg.num_heads as i32),
                Arg::I(cfg.num_kv_heads as i32),
                Arg::I(hd as i32),
                Arg::P(c.kc.at(li * c.layer_bytes)),
                Arg::P(c.vc.at(li * c.layer_bytes)),
                Arg::I(cfg.max_position_embeddings as i32),
                Arg::P(self.rope.ptr),
                Arg::P(c.step.ptr),
            ];
            self.dev.launch(s, rope, (tu, 1, 1), 128, 0, &args)?;
            mark("rope+kv write")?;
            self.attention(c, li, p.qkv.ptr, p.att.ptr, 1, t, false, 0, 0, 0)?;
            mark("causal attention")?;
            self.gemm_pre(s, &l.o, p.att.ptr, t, p.x.ptr, 1, bs)?;
            mark("o gemm+residual")?;
            rmsnorm(l.ffn_norm.w.ptr)?;
            mark("rmsnorm")?;
            self.gemm_pre(s, &l.gate_up, p.xn.ptr, t, p.act.ptr, 2, bs)?;
            mark("gate/up gemm+silu")?;
            self.gemm_pre(s, &l.down, p.act.ptr, t, p.x.ptr, 1, bs)?;
            mark("down gemm+residual")?;
        }
        let last = p.x.at((t - 1) * h * 4);
        self.gemv(s, &self.lm_head, last, Some(&self.norm), c.logits.ptr, 0, (0, 0), (0, 0), 0, NO_PF)?;
        mark("norm+lm_head gemv")
    }

    /// Per-kernel device time of one forward of `tokens` (prefill if several, else one decode step,
    /// no graph), with events between the kernels: `(kernel, total µs over the layers, launches)`.
    pub fn profile(&self, c: &mut CudaCache, tokens: &[u32]) -> Result<Vec<(String, f64, usize)>> {
        self.check(c, tokens)?;
        guard("CUDA profile", || {
            self.dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
            if tokens.len() == 1 {
                if let Some(p) = &self.persist {
                    return self.profile_persist(c, p, tokens[0]);
                }
                if let Some(p) = &self.tp {
                    return self.profile_tp(c, p, tokens[0]);
                }
            }
            let mut prof = Some(Prof { events: Vec::new() });
            if tokens.len() == 1 {
                self.write_step(c, tokens[0], c.len)?;
                self.decode_launches(c, &mut prof, 0, self.attn_cluster(c.len))?;
            } else {
                self.prefill(c, tokens, &mut prof)?;
            }
            c.stream.synchronize().map_err(|e| drv("profile", e))?;
            c.len += tokens.len();
            let ev = prof.map(|p| p.events).unwrap_or_default();
            let mut out: Vec<(String, f64, usize)> = Vec::new();
            for w in ev.windows(2) {
                let us = f64::from(w[0].1.elapsed_ms(&w[1].1).map_err(|e| drv("event timing", e))?) * 1e3;
                match out.iter_mut().find(|(n, _, _)| *n == w[1].0) {
                    Some(r) => {
                        r.1 += us;
                        r.2 += 1;
                    }
                    None => out.push((w[1].0.clone(), us, 1)),
                }
            }
            Ok(out)
        })
    }
}

impl CudaModel {
    /// The in-graph timeline of a decode step (bench only; docs/gpu.md v10): the step captured as a graph with
    /// `%globaltimer` marks in the tensor-core GEMVs and the GQA attention kernels, replayed `reps` times from
    /// `token` (the cache grows by `reps` positions); per launch the median over the replays of its marks.
    pub fn timeline(&self, c: &mut CudaCache, token: u32, reps: usize) -> Result<Vec<TimelineRow>> {
        self.check(c, &[token])?;
        if self.persist.is_some() || self.gemv_tc.is_none() || !self.gqa {
            return Err(Error::InvalidOption("timeline: needs the tensor-core GEMV and GQA attention".into()));
        }
        if !self.dev.timeline {
            return Err(Error::InvalidOption(
                "timeline: the kernels were compiled without marks (VIVA_TENSOR_TIMELINE=1)".into(),
            ));
        }
        if reps == 0 || c.len + reps > self.cfg.max_position_embeddings {
            return Err(Error::InvalidOption(format!("timeline: {reps} replays do not fit the context")));
        }
        let nl = self.layers.len();
        let n = 5 * nl + 1;
        let init: Vec<u8> = (0..n * TL_STRIDE)
            .flat_map(|i| if i % TL_STRIDE < TL_MARKS && i % 2 == 0 { u64::MAX } else { 0 }.to_le_bytes())
            .collect();
        guard("CUDA timeline", || {
            self.dev.ctx.bind_to_thread().map_err(|e| drv("bind context", e))?;
            let mut buf = Buf::from_bytes(&c.stream, &init)?;
            let g = self.capture_step(c, buf.ptr, self.attn_cluster(c.len))?;
            let mut runs: Vec<Vec<[f64; TL_MARKS]>> = Vec::with_capacity(reps);
            let mut bytes = vec![0u8; init.len()];
            for _ in 0..reps {
                c.stream.memcpy_htod(&init, &mut buf.mem.slice_mut(0..init.len())).map_err(|e| drv("upload", e))?;
                self.write_step(c, token, c.len)?;
                g.launch().map_err(|e| drv("graph launch", e))?;
                c.stream.memcpy_dtoh(&buf.mem.slice(0..init.len()), &mut bytes).map_err(|e| drv("download", e))?;
                c.stream.synchronize().map_err(|e| drv("timeline", e))?;
                c.len += 1;
                let v: Vec<u64> = bytes
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect();
                let t0 = v.iter().step_by(TL_STRIDE).copied().min().unwrap_or(0);
                runs.push(
                    v.chunks_exact(TL_STRIDE)
                        .map(|m| {
                            let mut r = [f64::NAN; TL_MARKS];
                            for (o, &x) in r.iter_mut().zip(&m[..TL_MARKS]) {
                                if x != 0 && x != u64::MAX {
                                    *o = x.saturating_sub(t0) as f64 / 1e3;
                                }
                            }
                            r
                        })
                        .collect(),
                );
            }
            // The last replay's raw buffer (per-block stamps included) for offline analysis, bench only.
            if let Ok(path) = std::env::var("VIVA_TENSOR_TIMELINE_DUMP") {
                let mut out = Vec::with_capacity(16 + bytes.len());
                out.extend_from_slice(&(n as u64).to_le_bytes());
                out.extend_from_slice(&(TL_STRIDE as u64).to_le_bytes());
                out.extend_from_slice(&bytes);
                std::fs::write(&path, out).map_err(|e| Error::InvalidOption(format!("timeline dump {path}: {e}")))?;
            }
            let names = ["qkv", "attention", "o", "gate/up", "down"];
            Ok((0..n)
                .map(|j| {
                    let name = if j == 5 * nl { "lm_head".to_string() } else { format!("L{} {}", j / 5, names[j % 5]) };
                    let mut m = [f64::NAN; TL_MARKS];
                    for (k, o) in m.iter_mut().enumerate() {
                        let mut xs: Vec<f64> = runs.iter().map(|r| r[j][k]).filter(|x| x.is_finite()).collect();
                        xs.sort_by(f64::total_cmp);
                        if !xs.is_empty() {
                            *o = xs[xs.len() / 2];
                        }
                    }
                    (name, m)
                })
                .collect())
        })
    }

    /// One tensor-parallel decode step with every block's phase stamps (kernels/tp.cu `mark`): for the first block of
    /// an attention cluster and of the first other cluster, each phase's time (summed, with its count), thread 0's
    /// waits for ring slots per GEMV and the producer's waits per layer (for a free slot, on the cap); then the step
    /// from the first block's start to the last block's end.
    fn profile_tp(&self, c: &mut CudaCache, p: &TpPlan, token: u32) -> Result<Vec<(String, f64, usize)>> {
        const NAMES: [&str; 21] = [
            "start",
            "layer start (prefetch wait)",
            "attn norm -> x'",
            "q/k/v gemv",
            "q/k/v all-gather",
            "rope + kv write",
            "attention partials",
            "attention combine + all-gather",
            "o x' + gemv",
            "o global exchange",
            "x all-gather",
            "ffn norm -> x'",
            "gate/up gemv (+ prefetch)",
            "silu * up -> h'",
            "down",
            "down reduce-scatter",
            "down global exchange",
            "x all-gather (down)",
            "final norm",
            "lm_head gemv",
            "argmax + finish",
        ];
        const MAX: usize = 512; // kernels/tp.cu TP_PROF_MAX
        let nb = p.shape.nblk;
        let buf = Buf::zeros(&c.stream, nb * MAX * 16)?;
        self.write_step(c, token, c.len)?;
        self.launch_tp(c, p, buf.ptr)?;
        let mut raw = vec![0u8; nb * MAX * 16];
        c.stream.memcpy_dtoh(&buf.mem.slice(0..raw.len()), &mut raw).map_err(|e| drv("profile download", e))?;
        c.stream.synchronize().map_err(|e| drv("profile", e))?;
        c.len += 1;
        let words: Vec<u64> = raw.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
        let marks = |b: usize| -> Vec<(u64, usize)> {
            words[b * MAX * 2..b * MAX * 2 + MAX]
                .chunks_exact(2)
                .map(|w| (w[0], w[1] as usize))
                .take_while(|&(t, _)| t != 0)
                .collect()
        };
        let all: Vec<Vec<(u64, usize)>> = (0..nb).map(marks).collect();
        let t0 = all.iter().filter_map(|m| m.first().map(|m| m.0)).min().unwrap_or(0);
        let mut out: Vec<(String, f64, usize)> = Vec::new();
        let other = (self.cfg.num_kv_heads * tp::CLUSTER).min(nb - 1);
        for (who, b) in [("attention block 0", 0), ("other block", other)] {
            let m = &all[b];
            for w in m.windows(2) {
                let us = w[1].0.saturating_sub(w[0].0) as f64 / 1e3;
                let name = format!("{who}: {}", NAMES.get(w[1].1).copied().unwrap_or("?"));
                match out.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(r) => {
                        r.1 += us;
                        r.2 += 1;
                    }
                    None => out.push((name, us, 1)),
                }
            }
            if let Some(last) = m.last() {
                out.push((
                    format!("{who}: whole step (from the first block's start)"),
                    last.0.saturating_sub(t0) as f64 / 1e3,
                    1,
                ));
            }
            // Thread 0's waits for ring slots in each GEMV (value marks), and the producer's waits per layer for a
            // free slot and for the copies in flight to land.
            let vals = &words[b * MAX * 2 + 3 * MAX / 2..(b + 1) * MAX * 2];
            for w in vals.chunks_exact(2).filter(|w| w[1] != 0) {
                let name = format!("{who}: waiting for slots in: {}", NAMES.get(w[1] as usize).copied().unwrap_or("?"));
                match out.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(r) => {
                        r.1 += w[0] as f64 / 1e3;
                        r.2 += 1;
                    }
                    None => out.push((name, w[0] as f64 / 1e3, 1)),
                }
            }
            let prod = &words[b * MAX * 2 + MAX..b * MAX * 2 + 3 * MAX / 2];
            let layers = self.cfg.num_layers.min(MAX / 4);
            let (full, cap) = prod.chunks_exact(2).take(layers).fold((0u64, 0u64), |a, w| (a.0 + w[0], a.1 + w[1]));
            out.push((format!("{who}: producer waiting for a free slot"), full as f64 / 1e3, layers));
            out.push((format!("{who}: producer waiting on the cap"), cap as f64 / 1e3, layers));
        }
        let end = all.iter().filter_map(|m| m.last().map(|m| m.0)).max().unwrap_or(t0);
        out.push(("all blocks: first start to last end".into(), end.saturating_sub(t0) as f64 / 1e3, 1));
        Ok(out)
    }

    /// One persistent decode step with the kernel's phase marks (block 0, thread 0: clock64 at the end of each
    /// phase), summed per phase and converted at the device's nominal SM clock. "tiles" rows are warp 0's own
    /// tiles; the barrier row includes waiting for the block's other warps.
    fn profile_persist(&self, c: &mut CudaCache, p: &Persist, token: u32) -> Result<Vec<(String, f64, usize)>> {
        const NAMES: [&str; 10] = [
            "grid barrier (+ sibling warps)",
            "stage x' (load, norm)",
            "qkv tiles (warp 0)",
            "rope+kv+attention",
            "o tiles (warp 0)",
            "gate/up tiles (warp 0)",
            "down tiles (warp 0)",
            "lm_head tiles (warp 0)",
            "argmax + finish",
            "start",
        ];
        // Block 0's 1024 (clock, phase) marks, then every block's (arrival, release) stamps of up to 128 grid
        // barriers (kernels/persist.cu PK_PROF_MAX, PK_BAR_MAX).
        const MARK_WORDS: usize = 2 * 1024;
        const BARS: usize = 128;
        let nb = p.blocks as usize;
        let words = MARK_WORDS + 2 * BARS * nb;
        let buf = Buf::zeros(&c.stream, words * 8)?;
        self.write_step(c, token, c.len)?;
        self.launch_persist(c, p, buf.ptr)?;
        let mut raw = vec![0u8; words * 8];
        c.stream.memcpy_dtoh(&buf.mem.slice(0..raw.len()), &mut raw).map_err(|e| drv("profile download", e))?;
        c.stream.synchronize().map_err(|e| drv("profile", e))?;
        c.len += 1;
        let khz = self
            .dev
            .ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
            .map_err(|e| drv("device attribute", e))?
            .max(1) as f64;
        let words: Vec<u64> = raw.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
        let marks: Vec<(u64, usize)> =
            words[..MARK_WORDS].chunks_exact(2).map(|w| (w[0], w[1] as usize)).take_while(|&(t, _)| t != 0).collect();
        let mut out: Vec<(String, f64, usize)> = Vec::new();
        for w in marks.windows(2) {
            let us = w[1].0.wrapping_sub(w[0].0) as f64 / khz * 1e3;
            let name = NAMES.get(w[1].1).copied().unwrap_or("?");
            match out.iter_mut().find(|(n, _, _)| n == name) {
                Some(r) => {
                    r.1 += us;
                    r.2 += 1;
                }
                None => out.push((name.to_string(), us, 1)),
            }
        }
        // Grid barriers over all blocks (%globaltimer, ns): how far apart the blocks arrive, and how long after the
        // last arrival the first and the last block are released.
        let stamps = &words[MARK_WORDS..];
        let (mut spread, mut first, mut last, mut n) = (0f64, 0f64, 0f64, 0usize);
        for i in 0..BARS {
            let at = |b: usize, k: usize| stamps[2 * (b * BARS + i) + k];
            if (0..nb).any(|b| at(b, 0) == 0 || at(b, 1) == 0) {
                continue;
            }
            let arr_min = (0..nb).map(|b| at(b, 0)).min().unwrap_or(0);
            let arr_max = (0..nb).map(|b| at(b, 0)).max().unwrap_or(0);
            let rel_min = (0..nb).map(|b| at(b, 1)).min().unwrap_or(0);
            let rel_max = (0..nb).map(|b| at(b, 1)).max().unwrap_or(0);
            spread += arr_max.saturating_sub(arr_min) as f64 / 1e3;
            first += rel_min.saturating_sub(arr_max) as f64 / 1e3;
            last += rel_max.saturating_sub(arr_max) as f64 / 1e3;
            n += 1;
        }
        out.push(("barriers: first to last block's arrival".into(), spread, n));
        out.push(("barriers: last arrival to first release".into(), first, n));
        out.push(("barriers: last arrival to last release".into(), last, n));
        Ok(out)
    }
}

/// The tensor-core decode attention's launch shape, or None where it does not apply: before sm_90 (clusters),
/// for a head_dim other than 32 / 64 / 128, or when the driver cannot place its cluster (or say whether it can).
/// Blocks per cluster:
/// `VIVA_TENSOR_ATTN_CLUSTER` (1-8), else the largest power of two up to 8 that keeps the kernel on at most half
/// the SMs (one cluster per KV head; the other half stays free for the next GEMV's early blocks: on the Llama-2-7B
/// shape 2 blocks per cluster beat 4, docs/gpu.md v11), and half as many while the positions fit one 32-position
/// tile per warp of those (docs/gpu.md v18: on the TinyLlama shape clusters of 4 beat 8 by 1.2% at 128-384
/// positions and lose by 6% at 1536; `VIVA_TENSOR_ATTN_SHORT=0` keeps one size); ring slots per warp:
/// `VIVA_TENSOR_ATTN_SLOTS` (1-2), else 2.
fn attn_tc_plan(dev: &Device, cfg: &Config) -> Option<AttnTc> {
    let hd_idx = device::ATTN_TC_HD.iter().position(|&d| d == cfg.head_dim)?;
    if dev.cc.0 < 9 || cfg.num_kv_heads == 0 {
        return None;
    }
    let var = |name: &str, max: usize| {
        std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok()).filter(|c| (1..=max).contains(c))
    };
    let slots = var("VIVA_TENSOR_ATTN_SLOTS", 2).unwrap_or(2);
    let fit = (dev.sms / (2 * cfg.num_kv_heads)).clamp(1, device::ATTN_TC_MAX_CLUSTER);
    let fixed = var("VIVA_TENSOR_ATTN_CLUSTER", device::ATTN_TC_MAX_CLUSTER);
    let cluster = fixed.unwrap_or(1 << fit.ilog2());
    let f = &dev.k.attn_tc[hd_idx][slots - 1];
    let threads = 32 * device::attn_tc_warps() as u32;
    // Can a grid of these clusters be placed? (A driver that cannot say keeps the v4 kernel.)
    let fits = |c: usize| {
        let smem = device::attn_tc_smem(cfg.head_dim, slots, c);
        let grid = (cfg.num_kv_heads * c) as u32;
        smem <= dev.max_smem && dev.max_active_clusters(f, grid, threads, smem as u32, c as u32).is_ok_and(|n| n >= 1)
    };
    if !fits(cluster) {
        return None;
    }
    let halves = fixed.is_none() && std::env::var("VIVA_TENSOR_ATTN_SHORT").map_or(true, |v| v != "0");
    let short = (halves && cluster >= 2 && fits(cluster / 2)).then_some(cluster as u32 / 2);
    Some(AttnTc { hd_idx, slots, cluster: cluster as u32, short })
}

/// The gate/up L2 prefetch (`CudaModel::gu_pf`). By default, on sm_90+ with FP8 weights whose gate/up matrix is
/// larger than the L2 cache: once the o projection's blocks have staged x', each requests its share of the first
/// 16 MiB of the layer's gate/up weights into L2 (`cp.async.bulk.prefetch.L2`), so that device memory, which runs
/// under its bandwidth while o finishes, fetches them before gate/up starts. Measured on an H100 (docs/gpu.md, v16):
/// +2.6% on the Llama-2-7B shape (gate/up 90 MB; 8-24 MiB all alike), -0.5% to -3.5% on the TinyLlama shape (23 MB,
/// which fits in L2), hence the size rule; issuing from q/k/v, or before o's PDL wait, measured slower everywhere.
/// `VIVA_TENSOR_GU_PF` overrides: `off` (or anything but a number), or the MiB to request on any FP8 model.
/// `sm_major` and `l2_bytes` are the device's; `gu_bytes` the size of one layer's gate/up weights. Returns bytes.
fn gu_pf_plan(var: Option<&str>, fp8: bool, sm_major: i32, l2_bytes: usize, gu_bytes: usize) -> usize {
    const DEFAULT_MIB: usize = 16;
    match var {
        None if fp8 && sm_major >= 9 && l2_bytes > 0 && gu_bytes > l2_bytes => DEFAULT_MIB << 20,
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_or(0, |mib| mib.min(1 << 20) << 20),
    }
}

/// The tensor-parallel kernel's plan (asked for with `VIVA_TENSOR_DECODE=tp`), or `None`, with the reason on
/// stderr, when the device, the format or the shapes do not fit it (`tp::TpShape::new`): sm_90+, FP8 with one
/// scale per row, clusters of 16 blocks of 288 threads, one per SM, at least one cluster per KV head. The
/// weights are read back from the device and repacked into one stream per block (`tp::build_streams`); the
/// row-major copies stay for prefill.
fn tp_plan(
    dev: &Arc<Device>,
    stream: &Arc<CudaStream>,
    cfg: &Config,
    layers: &[LayerW],
    lm_head: &Lin,
    format: Format,
) -> Result<Option<TpPlan>> {
    let why_not = |why: String| {
        eprintln!("viva_tensor: tensor-parallel decode kernel not used: {why}");
        Ok(None)
    };
    if format != (Format::Fp8 { block: pack::FP8_ROW }) {
        return why_not("it needs FP8 weights with one scale per row (the default FP8 format)".into());
    }
    if dev.cc.0 < 9 {
        return why_not(format!("it needs sm_90+, the device is sm_{}{}", dev.cc.0, dev.cc.1));
    }
    let cluster = tp::CLUSTER as u32;
    // Shared memory does not depend on the number of clusters: a shape at the fewest it takes (one per KV head) sizes
    // it, then the occupancy query gives the real count.
    let probe = match tp::TpShape::new(cfg, cfg.num_kv_heads.max(1)) {
        Ok(s) => s,
        Err(why) => return why_not(why),
    };
    // Row buffers for up to 32 MLP units a block (TinyLlama's shape deals at most 9).
    let hmax_bound = tp::hmax(&probe, &[0, 32, 0, 0]);
    // lm_head tiles of a block: at most one more than tiles / blocks, with at least 16 blocks per KV head.
    let lmax_bound = 16 * (cfg.vocab_size.div_ceil(16).div_ceil(tp::CLUSTER * cfg.num_kv_heads.max(1)) + 1);
    let fixed = tp::smem_bytes(&probe, 0, hmax_bound, lmax_bound);
    let nslots = ((dev.tp_smem.saturating_sub(fixed + 16 * 16)) / tp::SLOT).min(16);
    if nslots < 4 {
        return why_not(format!(
            "{nslots} ring slots fit beside {fixed} bytes in {} bytes of shared memory",
            dev.tp_smem
        ));
    }
    let smem = tp::smem_bytes(&probe, nslots, hmax_bound, lmax_bound);
    let grid = cluster * 16;
    let ncl = dev.max_active_clusters(&dev.k.tp, grid, 288, smem as u32, cluster)?.clamp(0, 16) as usize;
    let shape = match tp::TpShape::new(cfg, ncl) {
        Ok(s) => s,
        Err(why) => return why_not(why),
    };
    let plan = tp::block_plan(&shape, cfg.num_kv_heads);
    let hmax = tp::hmax(&shape, &plan);
    if hmax > hmax_bound || tp::lmax(&plan) > lmax_bound {
        return why_not(format!(
            "a block's rows ({hmax} or lm_head's) outgrow the shared memory planned for {hmax_bound}"
        ));
    }
    let download = |l: &Lin| -> Result<Vec<u8>> {
        let mut v = vec![0u8; l.n * l.kp];
        stream.memcpy_dtoh(&l.w.mem.slice(0..v.len()), &mut v).map_err(|e| drv("weight download", e))?;
        Ok(v)
    };
    let mut host: Vec<[Vec<u8>; 4]> = Vec::with_capacity(layers.len());
    for l in layers {
        host.push([download(&l.qkv)?, download(&l.o)?, download(&l.gate_up)?, download(&l.down)?]);
    }
    let lm_bytes = download(lm_head)?;
    stream.synchronize().map_err(|e| drv("weight download", e))?;
    fn mat<'a>(w: &'a [u8], l: &Lin) -> tp::Mat<'a> {
        tp::Mat { w, n: l.n, kp: l.kp }
    }
    let mats: Vec<tp::LayerMats> = layers
        .iter()
        .zip(&host)
        .map(|(l, h)| tp::LayerMats {
            qkv: mat(&h[0], &l.qkv),
            o: mat(&h[1], &l.o),
            gate_up: mat(&h[2], &l.gate_up),
            down: mat(&h[3], &l.down),
        })
        .collect();
    let (bytes, soff) = tp::build_streams(&shape, cfg, &mats, mat(&lm_bytes, lm_head), &plan);
    drop(mats);
    drop(host);
    let mut lplan: Vec<u8> = Vec::with_capacity(layers.len() * 48);
    for l in layers {
        let sc = |x: &Lin| x.s.as_ref().map_or(0, |b| b.ptr);
        let ptrs = [l.attn_norm.w.ptr, l.ffn_norm.w.ptr, sc(&l.qkv), sc(&l.o), sc(&l.gate_up), sc(&l.down)];
        lplan.extend(ptrs.iter().flat_map(|p| p.to_le_bytes()));
    }
    let cap = std::env::var("VIVA_TENSOR_TP_CAP").ok().and_then(|v| v.trim().parse::<i32>().ok()).unwrap_or(2);
    let plan_bytes: Vec<u8> = plan.iter().flat_map(|v| v.to_le_bytes()).collect();
    let soff_bytes: Vec<u8> = soff.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tp = TpPlan {
        ws: Buf::from_bytes(stream, &bytes)?,
        soff: Buf::from_bytes(stream, &soff_bytes)?,
        bplan: Buf::from_bytes(stream, &plan_bytes)?,
        lplan: Buf::from_bytes(stream, &lplan)?,
        nslots,
        hmax: hmax_bound,
        lmax: lmax_bound,
        smem,
        cap: cap.clamp(0, nslots as i32 - 1),
        shape,
    };
    stream.synchronize().map_err(|e| drv("weight upload", e))?;
    Ok(Some(tp))
}

/// The persistent kernel's plan for this model (asked for with `VIVA_TENSOR_PERSIST=1`), or `None`, with the
/// reason on stderr, when the format, the shapes or the device do not fit it: sm_90+, FP8 blocks of 64 or 128
/// (one scale per 64-k mma segment), a ring of at least 8 tile slots beside the staging buffers in shared
/// memory, one block of 288 threads per SM. `VIVA_TENSOR_PERSIST_TILE` sets the largest tile in bytes (16384).
fn persist_plan(
    dev: &Arc<Device>,
    stream: &Arc<CudaStream>,
    cfg: &Config,
    layers: &[LayerW],
    format: Format,
) -> Result<Option<Persist>> {
    let why_not = |why: String| {
        eprintln!("viva_tensor: persistent decode kernel not used: {why}");
        Ok(None)
    };
    let Format::Fp8 { block } = format else { return why_not("it needs FP8 weights".into()) };
    if dev.cc.0 < 9 {
        return why_not(format!("it needs sm_90+, the device is sm_{}{}", dev.cc.0, dev.cc.1));
    }
    if block == pack::FP8_ROW || block % 64 != 0 {
        return why_not(format!("it needs FP8 blocks of 64 or 128 elements, not {}", fp8_block_name(block)));
    }
    let tile_bytes = std::env::var("VIVA_TENSOR_PERSIST_TILE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(16384)
        .clamp(1024, 65536);
    let hd = cfg.head_dim;
    let (kp_h, kp_q, kp_i) =
        (pack::padded(cfg.hidden_size), pack::padded(cfg.num_heads * hd), pack::padded(cfg.intermediate_size));
    // Rows per tile as kernels/persist.cu's pk_rows_per_tile; the slot holds the largest tile and its scales.
    let rows_per_tile = |kp: usize, pairs: bool| {
        let mut r = 8;
        while r > 1 && r * kp > tile_bytes {
            r /= 2;
        }
        if pairs {
            r.max(2)
        } else {
            r
        }
    };
    let (mut slot_w, mut slot_s) = (0, 0);
    for (kp, pairs) in [(kp_h, false), (kp_q, false), (kp_h, true), (kp_i, false)] {
        let r = rows_per_tile(kp, pairs);
        slot_w = slot_w.max(r * kp);
        slot_s = slot_s.max(r * (kp / block) * 4);
    }
    let slot_bytes = (slot_w + slot_s + 32).div_ceil(128) * 128;
    let kmax = kp_h.max(kp_q).max(kp_i);
    let att_tiles = 2 * 32 * (hd * 2 + 16);
    let xs_bytes = (kmax * 4).max(att_tiles).div_ceil(128) * 128;
    let x16_bytes = (kmax * 2).div_ceil(128) * 128;
    let nb = dev.sms;
    let qkv_n = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd;
    let acc_rows = [qkv_n, cfg.hidden_size, 2 * cfg.intermediate_size, cfg.vocab_size]
        .iter()
        .map(|&n| n.div_ceil(nb) + 2)
        .max()
        .unwrap_or(0)
        .div_ceil(32)
        * 32;
    let fixed = xs_bytes + x16_bytes + acc_rows * 4;
    let nslots = (dev.persist_smem.saturating_sub(fixed) / slot_bytes).min(64);
    // At least one slot per consumer warp: with fewer, a warp may wait on a slot two fills ahead of the
    // producer, and an mbarrier parity wait cannot tell those phases apart (seen: a hang with 7 slots).
    if nslots < 8 {
        return why_not(format!(
            "{nslots} tile slots of {slot_bytes} bytes fit beside {fixed} bytes of staging in {} bytes of shared memory",
            dev.persist_smem
        ));
    }
    let smem = nslots * slot_bytes + fixed;
    let per_sm = dev
        .k
        .persist
        .occupancy_max_active_blocks_per_multiprocessor(288, smem, None)
        .map_err(|e| drv("occupancy query", e))?;
    if per_sm < 1 {
        return why_not(format!("a block of 288 threads with {smem} bytes of shared memory does not fit an SM"));
    }
    let mut plan: Vec<u8> = Vec::with_capacity(layers.len() * 80);
    for l in layers {
        let ptrs = [
            l.qkv.w.ptr,
            l.qkv.s.as_ref().map_or(0, |b| b.ptr),
            l.o.w.ptr,
            l.o.s.as_ref().map_or(0, |b| b.ptr),
            l.gate_up.w.ptr,
            l.gate_up.s.as_ref().map_or(0, |b| b.ptr),
            l.down.w.ptr,
            l.down.s.as_ref().map_or(0, |b| b.ptr),
            l.attn_norm.w.ptr,
            l.ffn_norm.w.ptr,
        ];
        plan.extend(ptrs.iter().flat_map(|p| p.to_le_bytes()));
    }
    Ok(Some(Persist {
        plan: Buf::from_bytes(stream, &plan)?,
        tile_bytes,
        nslots,
        slot_bytes,
        slot_w,
        xs_bytes,
        x16_bytes,
        acc_rows,
        blocks: nb as u32,
    }))
}

// The model is shared by every caller (the NIF's resource); a cache moves between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<CudaModel>();
    send::<CudaCache>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_clusters_halve_while_each_warp_has_one_tile() {
        let a = AttnTc { hd_idx: 1, slots: 2, cluster: 8, short: Some(4) };
        let w = device::attn_tc_warps();
        // Position p needs ceil((p + 1) / 32) tiles; 4 blocks of w warps take 4 w of them.
        assert_eq!(a.cluster_at(0), 4);
        assert_eq!(a.cluster_at(32 * 4 * w - 1), 4);
        assert_eq!(a.cluster_at(32 * 4 * w), 8);
        assert_eq!(a.cluster_at(4000), 8);
        let fixed = AttnTc { short: None, ..a };
        assert_eq!(fixed.cluster_at(0), 8);
    }

    #[test]
    fn gate_up_l2_prefetch_only_where_gate_up_outgrows_l2_on_hopper() {
        const MB: usize = 1 << 20;
        let h100_l2 = 50 * MB;
        // Llama-2-7B shape (22016 x 4096 FP8 bytes) on an H100: o's blocks, once x' is staged, the first 16 MiB.
        assert_eq!(gu_pf_plan(None, true, 9, h100_l2, 22016 * 4096), 16 * MB);
        // TinyLlama shape (11264 x 2048): it fits in L2, no prefetch; nor with bf16 weights, before sm_90, or
        // where the driver gave no L2 size.
        assert_eq!(gu_pf_plan(None, true, 9, h100_l2, 11264 * 2048), 0);
        assert_eq!(gu_pf_plan(None, false, 9, h100_l2, 22016 * 4096), 0);
        assert_eq!(gu_pf_plan(None, true, 8, h100_l2, 22016 * 4096), 0);
        assert_eq!(gu_pf_plan(None, true, 9, 0, 22016 * 4096), 0);
        // The variable overrides, both ways.
        assert_eq!(gu_pf_plan(Some("off"), true, 9, h100_l2, 22016 * 4096), 0);
        assert_eq!(gu_pf_plan(Some("0"), true, 9, h100_l2, 22016 * 4096), 0);
        assert_eq!(gu_pf_plan(Some("8"), true, 9, h100_l2, 11264 * 2048), 8 * MB);
        assert_eq!(gu_pf_plan(Some(" 24 "), true, 8, h100_l2, 11264 * 2048), 24 * MB);
    }

    /// H100 SXM: 132 SMs, 228 KB of shared memory per SM, 1 KB reserved per block.
    fn h100(n: usize, kp: usize, variant: Option<usize>) -> (u32, usize, usize) {
        h100_with(n, kp, TcCfg { variant, bps: 2, fit: false, tma: false })
    }
    fn h100_with(n: usize, kp: usize, tc: TcCfg) -> (u32, usize, usize) {
        let bytes = n * kp + n * (kp / 128) * 4; // FP8 block 128: one f32 scale per 128 weights
        tc_shape((n, kp, bytes, false), tc, 132, 233_472, 1024)
    }

    #[test]
    fn tc_shape_takes_six_slots_unless_a_large_matrix_would_lose_its_second_block() {
        // TinyLlama down projection (12 MB): 6 slots even though only one block then fits an SM.
        assert_eq!(h100(2048, 5632, None), (128, 4, 8 * 6 * TC_SLOT + 5632 * 2 + 16 * 4));
        // Llama-2-7B q/k/v (52 MB): two blocks of 6 slots still fit.
        assert_eq!(h100(12288, 4096, None).1, 4);
        // Llama-2-7B down projection (46 MB, K = 11008): 6 slots would leave one block per SM, so 5.
        assert_eq!(h100(4096, 11008, None).1, 3);
        // Llama-2-7B lm_head (131 MB): 2000 tiles over 264 blocks.
        assert_eq!(h100(32000, 4096, None).0, 264);
        // A fixed ring is taken as it is.
        assert_eq!(h100(4096, 11008, Some(1)).1, 1);
        // One scale per row (staged beside the row sums) keeps both rings: Llama-2-7B gate/up 6 slots, down 5.
        let tc = TcCfg { variant: None, bps: 2, fit: false, tma: false };
        let rows = |n: usize, kp: usize| tc_shape((n, kp, n * kp + n * 4, true), tc, 132, 233_472, 1024);
        assert_eq!(rows(22016, 4096), (264, 4, 8 * 6 * TC_SLOT + 4096 * 2 + 6 * 16 * 4 * 2));
        assert_eq!(rows(4096, 11008).1, 3);
    }

    #[test]
    fn tc_shape_fits_the_ring_to_the_pieces_of_a_warp_when_asked() {
        let fit = TcCfg { variant: None, bps: 2, fit: true, tma: false };
        // Llama-2-7B o projection: 256 tiles of 32 pieces, one a block, 4 pieces a warp: a 4-slot ring.
        assert_eq!(h100_with(4096, 4096, fit), (256, 2, 8 * 4 * TC_SLOT + 4096 * 2 + 16 * 4));
        // TinyLlama q/k/v and o: 2 pieces a warp, the shortest ring.
        assert_eq!(h100_with(2560, 2048, fit).1, 0);
        assert_eq!(h100_with(2048, 2048, fit).1, 0);
        // TinyLlama gate/up: 704 tiles over 264 blocks, at most 3 tiles of 16 pieces: 6 a warp.
        assert_eq!(h100_with(11264, 2048, fit).1, 4);
        // Llama-2-7B down projection: 11 pieces a warp; the 5 slots that let two blocks share an SM stay.
        assert_eq!(h100_with(4096, 11008, fit).1, 3);
        // By default, 6 slots.
        assert_eq!(h100(4096, 4096, None).1, 4);
        // The TMA ring's mbarriers come first, padded to 128 bytes.
        let tma = TcCfg { variant: None, bps: 2, fit: false, tma: true };
        assert_eq!(h100_with(4096, 4096, tma).2, 384 + 8 * 6 * TC_SLOT + 4096 * 2 + 16 * 4);
    }

    /// The static x' shift against the activations that come closest to the bound: all of sum(x²) in the element
    /// of the largest |w| (a one-hot x), computed as the kernel does (f32 statistic, bf16 rounding), checked in f64.
    #[test]
    fn norm_x_shift_keeps_every_x_below_2_pow_14_and_is_tight() {
        let bf16 = |v: f32| half::bf16::from_f32(v).to_f32();
        for &(k, wmax) in &[(2048usize, 1.0f32), (4096, 0.37), (4096, 47.5), (288, 1.0e-3), (5632, 2.0)] {
            let mut w: Vec<f32> = (0..k).map(|i| wmax * ((i * 7919 % 1000) as f32 / 1000.0 - 0.5)).collect();
            let at = k / 3;
            w[at] = -wmax;
            let sh = norm_x_shift(&w);
            assert!((-126..=127).contains(&sh), "k {k}: shift {sh}");
            for &xv in &[1.0f32, 3.0e4, 1.0e-20] {
                let mut x = vec![0f32; k];
                x[at] = xv;
                let ss: f32 = x.iter().map(|v| v * v).sum();
                let rs = 1.0 / (ss / k as f32 + 1e-6f32).sqrt();
                let big = x.iter().zip(&w).map(|(&xi, &wi)| f64::from(bf16(wi * (xi * rs))).abs()).fold(0.0, f64::max);
                assert!(big * 2f64.powi(sh) < 16384.0, "k {k} wmax {wmax} x {xv}: |x'| {big} shift {sh}");
            }
            // Tight: one more bit of shift would let the bound reach 2^14.
            let bound = f64::from(wmax) * (k as f64).sqrt();
            assert!(bound * 2f64.powi(sh + 1) >= 16384.0 * 0.99, "k {k}: shift {sh} leaves a bit unused");
        }
        assert_eq!(norm_x_shift(&[0.0; 64]), 0);
        assert_eq!(norm_x_shift(&[1.0, f32::INFINITY]), TC_XSH_DYN);
    }
}
