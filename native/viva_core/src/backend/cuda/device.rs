//! The CUDA device: library probe, context, the NVRTC-compiled kernel module (compiled once per
//! device per process and cached) and the kernel launcher.
//!
//! cudarc loads libcuda and libnvrtc at run time and *panics* when one is missing, so [`available`]
//! looks for both libraries first and every cudarc entry is additionally wrapped in
//! [`guard`] (`catch_unwind`): no panic reaches the caller, whatever the machine lacks.

use crate::error::{Error, Result};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaStream};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

/// The kernel sources, in the order they are concatenated for NVRTC (the header first).
const SOURCES: [(&str, &str); 7] = [
    ("common.cuh", include_str!("../../../kernels/common.cuh")),
    ("misc.cu", include_str!("../../../kernels/misc.cu")),
    ("gemv.cu", include_str!("../../../kernels/gemv.cu")),
    ("gemm.cu", include_str!("../../../kernels/gemm.cu")),
    ("attention.cu", include_str!("../../../kernels/attention.cu")),
    ("persist.cu", include_str!("../../../kernels/persist.cu")),
    ("tp.cu", include_str!("../../../kernels/tp.cu")),
];

/// Runs `f`, turning a panic inside cudarc (a library or symbol it could not load) into an error.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::CudaUnavailable(format!("{what}: the CUDA libraries failed to load: {msg}")))
        }
    }
}

/// Checks that the CUDA driver library and NVRTC can be loaded (no cudarc call that could panic).
pub fn probe_libraries() -> Result<()> {
    // SAFETY: these only try `dlopen` on cudarc's candidate names (running the libraries'
    // initialisers, as cudarc is about to do anyway); they do not panic.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable(
            "no CUDA driver: libcuda.so could not be loaded (no NVIDIA driver on this machine?)".into(),
        ));
    }
    // SAFETY: as above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable(
            "NVRTC (libnvrtc.so) could not be loaded: install the CUDA toolkit's NVRTC or add it to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    Ok(())
}

pub fn drv(what: &str, e: cudarc::driver::DriverError) -> Error {
    if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Error::Cuda(format!("{what}: out of device memory"))
    } else {
        Error::Cuda(format!("{what}: {e:?}"))
    }
}

/// Head dims of the tensor-core decode attention kernels (`Kernels::attn_tc`, kernels/attention.cu).
pub const ATTN_TC_HD: [usize; 3] = [32, 64, 128];
/// Warps per block of the tensor-core decode attention (`TCA_WARPS`: 4; `VIVA_TENSOR_ATTN_WARPS` 8 or 16 for
/// experiments, docs/gpu.md v18: no faster).
pub fn attn_tc_warps() -> usize {
    static W: OnceLock<usize> = OnceLock::new();
    *W.get_or_init(|| {
        let v = std::env::var("VIVA_TENSOR_ATTN_WARPS").ok().and_then(|v| v.parse::<usize>().ok());
        v.filter(|w| matches!(w, 8 | 16)).unwrap_or(4)
    })
}
/// The most blocks in one of its clusters.
pub const ATTN_TC_MAX_CLUSTER: usize = 8;

/// Dynamic shared memory of one tensor-core decode attention block (the layout at `attn_tc_body` in kernels/attention.cu):
/// the warps' rings of `slots` 32-row K | V slots (rows padded by 16 bytes), q as two bf16 rows per head (padded
/// by 8), the new K and V, the RoPE row, the warps' softmax statistics and room for the `cluster` block partials.
pub fn attn_tc_smem(hd: usize, slots: usize, cluster: usize) -> usize {
    attn_tc_warps() * slots * 2 * 32 * (2 * hd + 16)
        + 2 * 8 * (hd + 8) * 2
        + 4 * hd
        + 4 * (hd + 2 * attn_tc_warps() * 8)
        + 4 * cluster * (8 * hd + 16)
}

/// Every kernel of the module.
pub struct Kernels {
    pub embed: CudaFunction,
    pub rmsnorm: CudaFunction,
    pub argmax: CudaFunction,
    pub barrier_probe: CudaFunction,
    pub red_probe: CudaFunction,
    /// [rows per warp 4, 8]
    pub gemv_bf16: [CudaFunction; 2],
    pub gemv_fp8: [CudaFunction; 2],
    /// The tensor-core FP8 GEMV (kernels/gemv.cu, v9) with 2 / 3 / 4 / 5 / 6 ring slots per warp.
    pub gemv_tc: [CudaFunction; 5],
    /// The same for one FP8 scale per row (v14, `pack::FP8_ROW`).
    pub gemv_tcr: [CudaFunction; 5],
    pub gemm_bf16: CudaFunction,
    pub gemm_fp8: CudaFunction,
    pub attn_f32: CudaFunction,
    pub attn_bf16: CudaFunction,
    pub rope_f32: CudaFunction,
    pub rope_bf16: CudaFunction,
    /// GQA attention (one block per KV head and split): f32 / bf16 KV cache.
    pub gqa_f32: CudaFunction,
    pub gqa_bf16: CudaFunction,
    /// Decode attention on the tensor cores in thread-block clusters (v11; sm_90+, bf16 KV cache): for head_dim
    /// 32 / 64 / 128 ([`ATTN_TC_HD`]), each with rings of 1 and 2 slots per warp.
    pub attn_tc: [[CudaFunction; 2]; 3],
    /// cuBLAS prefill helpers (kernels/gemm.cu): FP8 -> bf16 weights, f32 -> bf16 (hi, lo) activations,
    /// interleaved gate/up -> silu(gate) * up.
    pub dequant_fp8: CudaFunction,
    pub split_bf16: CudaFunction,
    pub glu: CudaFunction,
    /// The persistent FP8 decode step (kernels/persist.cu; sm_90+, empty on older chips).
    pub persist: CudaFunction,
    /// The tensor-parallel persistent FP8 decode step (kernels/tp.cu; sm_90+, empty on older chips).
    pub tp: CudaFunction,
}

/// One GPU: context, kernels and the facts the launch shapes depend on.
pub struct Device {
    pub ctx: Arc<CudaContext>,
    pub k: Kernels,
    pub name: String,
    pub cc: (i32, i32),
    pub sms: usize,
    /// Largest dynamic shared memory a block may ask for (after the opt-in).
    pub max_smem: usize,
    /// Shared memory of one SM, and what the driver reserves per resident block (launch-shape choices).
    pub sm_smem: usize,
    pub block_reserved_smem: usize,
    /// L2 cache size in bytes (0 where the driver does not say).
    pub l2_bytes: usize,
    /// Dynamic shared memory the persistent decode kernel may use (after its static arrays).
    pub persist_smem: usize,
    /// The same for the tensor-parallel decode kernel (kernels/tp.cu).
    pub tp_smem: usize,
    /// Launch with programmatic dependent launch (sm_90+, `VIVA_TENSOR_PDL=0` turns it off).
    pub pdl: bool,
    /// The kernels carry the timeline marks (`VIVA_TENSOR_TIMELINE=1` when the device was created; bench only).
    pub timeline: bool,
    /// The tensor-core GEMV fills its ring through the TMA unit (sm_90+, `VIVA_TENSOR_TC_TMA=1`; measured slower
    /// than its cp.async ring, docs/gpu.md v13).
    pub tc_tma: bool,
    /// cuBLAS handle for the prefill GEMMs (created on first use, kept for the process).
    pub blas: Mutex<BlasSlot>,
    /// Every kernel's name and parameter sizes in bytes, by function handle, as the driver reports them (empty
    /// when the driver cannot say: before CUDA 12.4). `launch_ex` checks its arguments against them.
    params: HashMap<usize, (String, Vec<usize>)>,
}

/// The device's cuBLAS handle: not tried yet, ready, or unavailable (the mma kernels are used).
pub enum BlasSlot {
    Untried,
    Ready(Blas),
    Failed,
}

static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<Device>>>> = OnceLock::new();

/// The device `ordinal` (`VIVA_TENSOR_CUDA_DEVICE`, default 0), created and its kernels compiled on
/// first use, then shared.
pub fn device() -> Result<Arc<Device>> {
    let ordinal = match std::env::var("VIVA_TENSOR_CUDA_DEVICE") {
        Ok(s) => s
            .trim()
            .parse::<usize>()
            .map_err(|_| Error::InvalidOption(format!("VIVA_TENSOR_CUDA_DEVICE must be a device number, got {s:?}")))?,
        Err(_) => 0,
    };
    let map = DEVICES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock();
    if let Some(d) = map.get(&ordinal) {
        return Ok(d.clone());
    }
    probe_libraries()?;
    let d = Arc::new(guard("CUDA initialisation", || Device::new(ordinal))?);
    map.insert(ordinal, d.clone());
    Ok(d)
}

impl Device {
    fn new(ordinal: usize) -> Result<Device> {
        let count = CudaContext::device_count()
            .map_err(|e| Error::CudaUnavailable(format!("the CUDA driver did not initialise: {e:?}")))?;
        if count <= 0 {
            return Err(Error::CudaUnavailable("no CUDA device found".into()));
        }
        if ordinal >= count as usize {
            return Err(Error::CudaUnavailable(format!("CUDA device {ordinal} requested but only {count} present")));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| Error::CudaUnavailable(format!("CUDA device {ordinal}: context creation failed: {e:?}")))?;
        // Streams are synchronised by hand (one stream per sequence; weights are uploaded and synced
        // at load), so cudarc's per-buffer events are not needed, and they would get in the way of
        // graph capture.
        // SAFETY: called before this context allocates anything through cudarc.
        unsafe { ctx.disable_event_tracking() };
        let cc = ctx.compute_capability().map_err(|e| drv("compute capability", e))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let attr = |a| ctx.attribute(a).map_err(|e| drv("device attribute", e));
        let sms = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?.max(1) as usize;
        let max_smem =
            attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?.max(0) as usize;
        let sm_smem =
            attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)?.max(0) as usize;
        let block_reserved_smem =
            attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK)?.max(0) as usize;
        let l2_bytes =
            attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).map_or(0, |v| v.max(0) as usize);
        if cc.0 < 8 {
            return Err(Error::CudaUnavailable(format!(
                "{name} has compute capability {}.{}; the CUDA backend needs 8.0 or newer (bf16 tensor cores)",
                cc.0, cc.1
            )));
        }
        let timeline = std::env::var("VIVA_TENSOR_TIMELINE").is_ok_and(|v| v == "1");
        let tc_tma = cc.0 >= 9 && std::env::var("VIVA_TENSOR_TC_TMA").is_ok_and(|v| v == "1");
        let module = compile(&ctx, cc, timeline, tc_tma)?;
        let loaded = std::cell::RefCell::new(Vec::new());
        let f = |n: &str| {
            let func = module
                .load_function(n)
                .map_err(|e| Error::Cuda(format!("kernel {n} missing from the module: {e:?}")))?;
            loaded.borrow_mut().push((n.to_string(), func.cu_function()));
            Ok::<_, Error>(func)
        };
        let k = Kernels {
            embed: f("embed_rows")?,
            rmsnorm: f("rmsnorm_rows")?,
            argmax: f("argmax_step")?,
            barrier_probe: f("grid_barrier_probe")?,
            red_probe: f("red_probe")?,
            gemv_bf16: [f("gemv_bf16_r4")?, f("gemv_bf16_r8")?],
            gemv_fp8: [f("gemv_fp8_r4")?, f("gemv_fp8_r8")?],
            gemv_tc: [
                f("gemv_fp8_tc2")?,
                f("gemv_fp8_tc3")?,
                f("gemv_fp8_tc4")?,
                f("gemv_fp8_tc5")?,
                f("gemv_fp8_tc6")?,
            ],
            gemv_tcr: [
                f("gemv_fp8_tcr2")?,
                f("gemv_fp8_tcr3")?,
                f("gemv_fp8_tcr4")?,
                f("gemv_fp8_tcr5")?,
                f("gemv_fp8_tcr6")?,
            ],
            gemm_bf16: f("gemm_bf16")?,
            gemm_fp8: f("gemm_fp8")?,
            attn_f32: f("attention_f32kv")?,
            attn_bf16: f("attention_bf16kv")?,
            rope_f32: f("rope_kv_f32kv")?,
            rope_bf16: f("rope_kv_bf16kv")?,
            gqa_f32: f("attn_gqa_f32kv")?,
            gqa_bf16: f("attn_gqa_bf16kv")?,
            attn_tc: [
                [f("attn_tc_h32_s1")?, f("attn_tc_h32_s2")?],
                [f("attn_tc_h64_s1")?, f("attn_tc_h64_s2")?],
                [f("attn_tc_h128_s1")?, f("attn_tc_h128_s2")?],
            ],
            dequant_fp8: f("dequant_fp8_bf16")?,
            split_bf16: f("split_bf16")?,
            glu: f("glu_rows")?,
            persist: f("decode_persist")?,
            tp: f("decode_tp")?,
        };
        // The GEMV stages its input row (Kp f32) in dynamic shared memory: allow the device's maximum.
        let static_smem = 2048;
        let max_smem = max_smem.saturating_sub(static_smem);
        for g in k.gemv_bf16.iter().chain(k.gemv_fp8.iter()).chain(k.gemv_tc.iter()).chain(k.gemv_tcr.iter()) {
            g.set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                max_smem as i32,
            )
            .map_err(|e| drv("shared memory opt-in", e))?;
        }
        for (pair, &hd) in k.attn_tc.iter().zip(ATTN_TC_HD.iter()) {
            for (g, slots) in pair.iter().zip([1, 2]) {
                g.set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    attn_tc_smem(hd, slots, ATTN_TC_MAX_CLUSTER).min(max_smem) as i32,
                )
                .map_err(|e| drv("shared memory opt-in", e))?;
            }
        }
        // The persistent decode kernels take all the shared memory their static arrays leave.
        let take_all_smem = |f: &CudaFunction| -> Result<usize> {
            let fixed = f
                .get_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)
                .map_err(|e| drv("function attribute", e))?
                .max(0) as usize;
            let dynamic = (max_smem + static_smem).saturating_sub(fixed);
            f.set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, dynamic as i32)
                .map_err(|e| drv("shared memory opt-in", e))?;
            Ok(dynamic)
        };
        let persist_smem = take_all_smem(&k.persist)?;
        let tp_smem = take_all_smem(&k.tp)?;
        // The tensor-parallel kernel's clusters of 16 blocks are the non-portable size (sm_90+).
        if cc.0 >= 9 {
            k.tp.set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
                .map_err(|e| drv("cluster size opt-in", e))?;
        }
        let pdl = cc.0 >= 9 && std::env::var("VIVA_TENSOR_PDL").map(|v| v != "0").unwrap_or(true);
        // One query per kernel; the first failure (an older driver) skips the rest.
        let mut params = HashMap::new();
        for (name, func) in loaded.into_inner() {
            match param_sizes(func) {
                Some(sizes) => params.insert(func as usize, (name, sizes)),
                None => break,
            };
        }
        Ok(Device {
            ctx,
            k,
            name,
            cc,
            sms,
            max_smem,
            sm_smem,
            block_reserved_smem,
            l2_bytes,
            persist_smem,
            tp_smem,
            pdl,
            timeline,
            tc_tma,
            blas: Mutex::new(BlasSlot::Untried),
            params,
        })
    }

    /// Are launches checked against the kernels' parameters (the driver reported them)?
    pub fn checks_launches(&self) -> bool {
        !self.params.is_empty()
    }

    /// Launches `f` on `stream`. Arguments are 8-byte slots (pointers, or i32/f32 in the low bytes,
    /// which is what the driver copies for a 4-byte parameter on little-endian machines).
    pub fn launch(
        &self,
        stream: &CudaStream,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        args: &[Arg],
    ) -> Result<()> {
        self.launch_ex(stream, f, grid, block, smem, args, LaunchMode::Pdl)
    }

    /// As [`Device::launch`], as `mode` says: with PDL (where the device has it), as a cooperative grid (all
    /// blocks co-resident, or the launch fails; for kernels with grid-wide barriers), or in thread-block
    /// clusters of `n` blocks along x (sm_90+; with PDL as well).
    #[allow(clippy::too_many_arguments)]
    pub fn launch_ex(
        &self,
        stream: &CudaStream,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        args: &[Arg],
        mode: LaunchMode,
    ) -> Result<()> {
        if let Some((name, sizes)) = self.params.get(&(f.cu_function() as usize)) {
            check_args(name, sizes, args)?;
        }
        let mut slots: Vec<u64> = args.iter().map(|a| a.bits()).collect();
        let mut ptrs: Vec<*mut c_void> = slots.iter_mut().map(|s| s as *mut u64 as *mut c_void).collect();
        // SAFETY: an all-zero launch attribute is a valid (ignored) value; the fields are set below.
        let mut attrs: [sys::CUlaunchAttribute; 2] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        if mode == LaunchMode::Cooperative {
            attrs[n].id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
            attrs[n].value.cooperative = 1;
            n += 1;
        } else if self.pdl {
            attrs[n].id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
            attrs[n].value.programmaticStreamSerializationAllowed = 1;
            n += 1;
        }
        if let LaunchMode::Cluster(c) = mode {
            attrs[n] = cluster_attr(c);
            n += 1;
        }
        let cfg = launch_config(grid, block, smem, stream.cu_stream(), &mut attrs[..n]);
        // SAFETY: `ptrs` points at one live 8-byte slot per kernel parameter, in order, for the
        // duration of the call (the driver copies the values at launch); the function belongs to
        // this device's module and the stream to its context; `attrs` holds `n` initialised attributes.
        unsafe { sys::cuLaunchKernelEx(&cfg, f.cu_function(), ptrs.as_mut_ptr(), std::ptr::null_mut()) }
            .result()
            .map_err(|e| drv("kernel launch", e))
    }

    /// How many clusters of `cluster` blocks (`block` threads, `smem` bytes of dynamic shared memory) of `f` can
    /// be resident at once (0: such a cluster cannot be placed at all).
    pub fn max_active_clusters(&self, f: &CudaFunction, grid: u32, block: u32, smem: u32, cluster: u32) -> Result<i32> {
        let mut attrs = [cluster_attr(cluster)];
        let cfg = launch_config((grid, 1, 1), block, smem, std::ptr::null_mut(), &mut attrs);
        let mut n = 0i32;
        self.ctx.bind_to_thread().map_err(|e| drv("context", e))?;
        // SAFETY: `cfg` and `attrs` live across the call; the function belongs to this device's module.
        unsafe { sys::cuOccupancyMaxActiveClusters(&mut n, f.cu_function(), &cfg) }
            .result()
            .map_err(|e| drv("cluster occupancy", e))?;
        Ok(n)
    }
}

/// The launch attribute for thread-block clusters of `n` blocks along x.
fn cluster_attr(n: u32) -> sys::CUlaunchAttribute {
    // SAFETY: an all-zero launch attribute is a valid (ignored) value; the fields are set below.
    let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
    attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attr.value.clusterDim.x = n;
    attr.value.clusterDim.y = 1;
    attr.value.clusterDim.z = 1;
    attr
}

/// A launch configuration of `grid` blocks of `block` threads; it points at `attrs`, which must outlive its use.
fn launch_config(
    grid: (u32, u32, u32),
    block: u32,
    smem: u32,
    stream: sys::CUstream,
    attrs: &mut [sys::CUlaunchAttribute],
) -> sys::CUlaunchConfig {
    sys::CUlaunchConfig {
        gridDimX: grid.0,
        gridDimY: grid.1,
        gridDimZ: grid.2,
        blockDimX: block,
        blockDimY: 1,
        blockDimZ: 1,
        sharedMemBytes: smem,
        hStream: stream,
        attrs: if attrs.is_empty() { std::ptr::null_mut() } else { attrs.as_mut_ptr() },
        numAttrs: attrs.len() as u32,
    }
}

/// How [`Device::launch_ex`] launches a grid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LaunchMode {
    /// With programmatic dependent launch where the device has it.
    Pdl,
    /// As a cooperative grid.
    Cooperative,
    /// In clusters of this many blocks along x (with PDL where the device has it).
    Cluster(u32),
}

/// A kernel argument.
#[derive(Clone, Copy)]
pub enum Arg {
    P(u64),
    I(i32),
    I64(i64),
    F(f32),
}

impl Arg {
    /// Bytes of the kernel parameter this argument fills.
    fn width(self) -> usize {
        match self {
            Arg::P(_) | Arg::I64(_) => 8,
            Arg::I(_) | Arg::F(_) => 4,
        }
    }

    fn bits(self) -> u64 {
        match self {
            Arg::P(p) => p,
            Arg::I(i) => i as u32 as u64,
            Arg::I64(i) => i as u64,
            Arg::F(f) => f.to_bits() as u64,
        }
    }
}

/// The parameter sizes of `func` as the driver reports them (`cuFuncGetParamInfo`, CUDA 12.4+); None when the
/// driver cannot say (an older driver lacks the symbol, which cudarc reports by panicking: `guard` catches it).
fn param_sizes(func: sys::CUfunction) -> Option<Vec<usize>> {
    let query = || {
        let mut sizes = Vec::new();
        for i in 0..1024 {
            let (mut off, mut size) = (0usize, 0usize);
            // SAFETY: `func` is a live function of this device's module; the out-pointers are valid locals.
            match unsafe { sys::cuFuncGetParamInfo(func, i, &mut off, &mut size) } {
                sys::CUresult::CUDA_SUCCESS => sizes.push(size),
                sys::CUresult::CUDA_ERROR_INVALID_VALUE => return Ok(sizes),
                e => return Err(Error::Cuda(format!("kernel parameters: {e:?}"))),
            }
        }
        Err(Error::Cuda("kernel parameters: more than 1024".into()))
    };
    guard("kernel parameters", query).ok()
}

/// A launch's arguments against the kernel's parameters: the same count, and each argument as wide as its
/// parameter. A slip here would otherwise run the kernel on garbage (and can poison the context).
fn check_args(name: &str, sizes: &[usize], args: &[Arg]) -> Result<()> {
    if args.len() != sizes.len() || args.iter().zip(sizes).any(|(a, &s)| a.width() != s) {
        let widths: Vec<usize> = args.iter().map(|a| a.width()).collect();
        return Err(Error::Cuda(format!(
            "kernel {name}: launched with {} arguments of {widths:?} bytes, but it takes {} of {sizes:?}",
            widths.len(),
            sizes.len()
        )));
    }
    Ok(())
}

fn compile(
    ctx: &Arc<CudaContext>,
    cc: (i32, i32),
    timeline: bool,
    tc_tma: bool,
) -> Result<Arc<cudarc::driver::CudaModule>> {
    use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions};
    let src: String = SOURCES.iter().map(|(name, text)| format!("// ---- {name}\n{text}\n")).collect();
    let mut options = vec![format!("--gpu-architecture=compute_{}{}", cc.0, cc.1), "--std=c++17".into()];
    if timeline {
        options.push("-DVIVA_TIMELINE".into());
    }
    options.push(format!("-DTC_TMA={}", u8::from(tc_tma)));
    if attn_tc_warps() != 4 {
        options.push(format!("-DTCA_WARPS={}", attn_tc_warps()));
    }
    // Experiments: `VIVA_TENSOR_NVRTC_DEFINES="-DNAME=V ..."` (only -D options are taken).
    if let Ok(defs) = std::env::var("VIVA_TENSOR_NVRTC_DEFINES") {
        options.extend(defs.split_whitespace().filter(|d| d.starts_with("-D")).map(String::from));
    }
    let opts = CompileOptions { options, name: Some("viva_kernels.cu".into()), ..Default::default() };
    let ptx = compile_ptx_with_opts(&src, opts).map_err(|e| match e {
        CompileError::CompileError { nvrtc, options, log } => Error::Cuda(format!(
            "NVRTC failed to compile the kernels ({nvrtc:?}, options {options:?}):\n{}",
            log.to_string_lossy()
        )),
        other => Error::Cuda(format!("NVRTC: {other:?}")),
    })?;
    ctx.load_module(ptx).map_err(|e| {
        Error::Cuda(format!(
            "loading the NVRTC output failed ({e:?}); an NVRTC newer than the driver produces PTX the driver cannot read"
        ))
    })
}

/// A cuBLAS handle. libcublas is loaded at run time (cudarc `dynamic-loading`): [`Blas::new`] checks that it
/// loads before any cuBLAS call (cudarc panics on a missing library or symbol; every call is also under
/// [`guard`]), so a machine without it gets an error and the caller keeps the hand-written GEMMs.
pub struct Blas(cudarc::cublas::sys::cublasHandle_t);

// SAFETY: the handle is used by one thread at a time (the model keeps it behind a mutex).
unsafe impl Send for Blas {}

fn blas_status(what: &str, s: cudarc::cublas::sys::cublasStatus_t) -> Result<()> {
    if s == cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{what}: {s:?}")))
    }
}

impl Blas {
    pub fn new() -> Result<Blas> {
        // SAFETY: only tries `dlopen` on cudarc's candidate names for libcublas; does not panic.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(Error::CudaUnavailable("libcublas could not be loaded".into()));
        }
        guard("cuBLAS initialisation", || {
            let mut h: cudarc::cublas::sys::cublasHandle_t = std::ptr::null_mut();
            // SAFETY: writes a new handle into `h`; the current thread has the device's context bound.
            blas_status("cublasCreate", unsafe { cudarc::cublas::sys::cublasCreate_v2(&mut h) })?;
            Ok(Blas(h))
        })
    }

    /// Y[m, n] (row-major f32, row stride n) = beta * Y + X[m, k] · W[n, k]ᵀ, X and W bf16 with row
    /// strides `ldx` / `ldw` elements, f32 accumulation (compute type 32F), on `stream`.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_bf16(
        &self,
        stream: &CudaStream,
        (m, n, k): (usize, usize, usize),
        x: u64,
        ldx: usize,
        w: u64,
        ldw: usize,
        y: u64,
        beta: f32,
    ) -> Result<()> {
        use cudarc::cublas::sys as b;
        let i = |v: usize| i32::try_from(v).map_err(|_| Error::Cuda(format!("cuBLAS dimension {v} too large")));
        let (alpha, beta) = (1.0f32, beta);
        guard("cuBLAS GEMM", || {
            // SAFETY: the handle is live; the stream belongs to the device's context.
            blas_status("cublasSetStream", unsafe {
                b::cublasSetStream_v2(self.0, stream.cu_stream() as b::cudaStream_t)
            })?;
            // Column-major view: Yᵀ[n, m] = W[n, k] (= (Wᵀ)ᵀ, stored col-major as [k, n], ld ldw) · Xᵀ[k, m] (ld ldx).
            // SAFETY: x, w, y are device buffers of at least m·ldx, n·ldw (bf16) and m·n (f32) elements,
            // live until the stream has run the call (the caller owns them for the prefill).
            blas_status("cublasGemmEx", unsafe {
                b::cublasGemmEx(
                    self.0,
                    b::cublasOperation_t::CUBLAS_OP_T,
                    b::cublasOperation_t::CUBLAS_OP_N,
                    i(n)?,
                    i(m)?,
                    i(k)?,
                    &alpha as *const f32 as *const std::ffi::c_void,
                    w as *const std::ffi::c_void,
                    b::cudaDataType::CUDA_R_16BF,
                    i(ldw)?,
                    x as *const std::ffi::c_void,
                    b::cudaDataType::CUDA_R_16BF,
                    i(ldx)?,
                    &beta as *const f32 as *const std::ffi::c_void,
                    y as *mut std::ffi::c_void,
                    b::cudaDataType::CUDA_R_32F,
                    i(n)?,
                    b::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    b::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            })
        })
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: the handle came from cublasCreate and is destroyed once (the library is loaded, or
        // it could not exist); a panic here is caught.
        let h = self.0;
        let _ = std::panic::catch_unwind(move || unsafe { cudarc::cublas::sys::cublasDestroy_v2(h) });
    }
}

#[cfg(test)]
mod tests {
    use super::{check_args, Arg};

    #[test]
    fn launch_arguments_must_match_the_kernel_parameters() {
        let sizes = [8, 4, 8, 4];
        assert!(check_args("k", &sizes, &[Arg::P(1), Arg::I(2), Arg::I64(3), Arg::F(4.0)]).is_ok());
        // One argument short (the slip of session 3's dropped `a16`), and a 4-byte value where a pointer goes.
        let short = check_args("k", &sizes, &[Arg::P(1), Arg::I(2), Arg::I64(3)]).unwrap_err().to_string();
        assert!(short.contains("kernel k") && short.contains("3 arguments") && short.contains("takes 4"), "{short}");
        let narrow =
            check_args("k", &sizes, &[Arg::I(1), Arg::I(2), Arg::I64(3), Arg::F(4.0)]).unwrap_err().to_string();
        assert!(narrow.contains("[4, 4, 8, 4]") && narrow.contains("[8, 4, 8, 4]"), "{narrow}");
    }
}
