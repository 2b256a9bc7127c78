//! viva-bench: batch-1 decode and prefill timings of one checkpoint, with no BEAM.
//!
//! ```text
//! viva-bench MODEL [--backend auto|cpu|cuda] [--weights auto|bf16|fp8] [--fp8-block 16|32|64|128|row]
//!            [--prompt-len 128] [--new 256] [--prefill-len 512] [--api-steps 32] [--agree N]
//!            [--agree-prompt 16] [--label NAME] [--json FILE] [--profile] [--prefill-ab] [--timeline N]
//! ```
//! `viva-bench --barrier-probe` instead prints the cost of one grid-wide barrier on the CUDA device;
//! `--red-probe` the cost of every block of a GEMV-sized grid adding a hidden-size vector into one.
//! Prints decode tok/s and ms/token (greedy, argmax on the device), the implied weight bandwidth
//! (weight bytes streamed per token / time per token), the per-token time of the logits-returning
//! `forward` API, and the prefill time of `--prefill-len` tokens. `--agree N` also loads the CPU f32
//! path and reports teacher-forced top-1 agreement and logits relative error over N decode steps.
//! `--prefill-ab` (CUDA) also times the `--prefill-len` prefill with the hand-written mma.sync GEMMs and with
//! cuBLAS, interleaved in this process, and prints the relative L2 difference of their logits.
//! `--timeline N` (CUDA, tensor-core GEMV) also replays the decode step N times with `%globaltimer` marks in
//! its kernels (compiled in for this run: the decode timings of the same run include their cost) and prints,
//! per kernel kind averaged over the layers, when its blocks start, are released by the wait on the previous
//! kernel, pass their phases and end, relative to the previous kernel's last block end.
//! A checkpoint folder without tokenizer.json gets the generated test tokenizer (timing only).

use std::path::PathBuf;
use std::time::Instant;
use viva_core::{BackendKind, LoadOptions, Model, WeightFormat};

struct Args {
    model: PathBuf,
    backend: BackendKind,
    weights: WeightFormat,
    prompt_len: usize,
    new: usize,
    prefill_len: usize,
    api_steps: usize,
    agree: usize,
    agree_prompt: usize,
    label: String,
    json: Option<PathBuf>,
    profile: bool,
    prefill_ab: bool,
    timeline: usize,
}

fn usage() -> ! {
    eprintln!("usage: viva-bench MODEL [--backend B] [--weights W] [--fp8-block N] [--prompt-len N] [--new N] [--prefill-len N] [--api-steps N] [--agree N] [--agree-prompt N] [--label S] [--json FILE] [--profile] [--prefill-ab] [--timeline N]");
    std::process::exit(2)
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        model: PathBuf::new(),
        backend: BackendKind::Auto,
        weights: WeightFormat::Auto,
        prompt_len: 128,
        new: 256,
        prefill_len: 512,
        api_steps: 32,
        agree: 0,
        agree_prompt: 16,
        label: String::new(),
        json: None,
        profile: false,
        prefill_ab: false,
        timeline: 0,
    };
    let mut model = None;
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|_| format!("not a number: {s}"));
        match arg.as_str() {
            "--backend" => a.backend = BackendKind::parse(&val()?).map_err(|e| e.to_string())?,
            "--weights" => a.weights = WeightFormat::parse(&val()?).map_err(|e| e.to_string())?,
            "--fp8-block" => std::env::set_var("VIVA_TENSOR_FP8_BLOCK", val()?),
            "--prompt-len" => a.prompt_len = num(val()?)?,
            "--new" => a.new = num(val()?)?,
            "--prefill-len" => a.prefill_len = num(val()?)?,
            "--api-steps" => a.api_steps = num(val()?)?,
            "--agree" => a.agree = num(val()?)?,
            "--agree-prompt" => a.agree_prompt = num(val()?)?.max(1),
            "--label" => a.label = val()?,
            "--json" => a.json = Some(PathBuf::from(val()?)),
            "--profile" => a.profile = true,
            "--prefill-ab" => a.prefill_ab = true,
            "--timeline" => {
                a.timeline = num(val()?)?;
                // The marks are compiled into the kernels only when asked for (kernels/common.cuh tl_mark).
                std::env::set_var("VIVA_TENSOR_TIMELINE", "1");
            }
            "-h" | "--help" => usage(),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => model = Some(PathBuf::from(s)),
        }
    }
    a.model = model.ok_or("no MODEL given")?;
    Ok(a)
}

/// The `--timeline` table: per kernel kind, the mean over layers 1.. of its marks (first / last block: start,
/// wait released, phases 2 and 3, end; see kernels/common.cuh `tl_mark`) relative to the previous launch's last
/// end (negative: before it), and the weight GB/s over its span (previous last end to its last end).
#[cfg(feature = "cuda")]
fn print_timeline(label: &str, cfg: &viva_core::config::Config, rows: &[viva_core::backend::cuda::TimelineRow]) {
    let (h, hd, inter) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
    let qkv = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd;
    let bytes = [qkv * h, 0, h * cfg.num_heads * hd, 2 * inter * h, h * inter, cfg.vocab_size * h];
    let step = rows.last().map_or(f64::NAN, |r| r.1[r.1.len() - 1]);
    println!("{label:24} timeline (median of replays): step {step:.1} us from the first GEMV start to lm_head end");
    let cols = ["start", "wait", "ph2", "ph3", "ph4", "end"];
    let head: String = cols.iter().map(|c| format!(" {:>7} {:>7}", format!("{c}0"), format!("{c}1"))).collect();
    println!("    {:10}{head} {:>6}", "kernel", "GB/s");
    let nl = cfg.num_layers;
    for kind in 0..6 {
        let idx: Vec<usize> = if kind == 5 { vec![5 * nl] } else { (1..nl).map(|l| 5 * l + kind).collect() };
        let mut acc = vec![0.0f64; rows[0].1.len()];
        let mut n = 0usize;
        for &j in &idx {
            let prev = rows[j - 1].1[acc.len() - 1];
            let m = rows[j].1;
            if prev.is_finite() {
                for (a, x) in acc.iter_mut().zip(m) {
                    *a += if x.is_finite() { x - prev } else { f64::NAN };
                }
                n += 1;
            }
        }
        if n == 0 {
            continue;
        }
        let v: Vec<f64> = acc.iter().map(|a| a / n as f64).collect();
        let name = ["qkv", "attention", "o", "gate/up", "down", "lm_head"][kind];
        let span = v[v.len() - 1];
        let gbs = if bytes[kind] > 0 { bytes[kind] as f64 / (span * 1e-6) / 1e9 } else { 0.0 };
        let cells: String = v.iter().map(|x| format!(" {x:7.2}")).collect();
        println!("    {name:10}{cells} {gbs:6.0}");
    }
    for (name, m) in rows.iter().take(6).chain(rows.iter().rev().take(2).rev()) {
        println!("    {name:12} {}", m.iter().map(|x| format!("{x:8.2}")).collect::<String>());
    }
}

/// Deterministic prompt ids in [3, vocab) (a fixed LCG; the values only feed the timing).
fn prompt(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            3 + ((s >> 33) % (vocab as u64 - 3)) as u32
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `viva-bench --barrier-probe`: cost of one grid-wide barrier on the CUDA device (docs/gpu.md, v6).
    #[cfg(feature = "cuda")]
    if std::env::args().any(|x| x == "--barrier-probe") {
        for bps in [1usize, 2, 4] {
            match viva_core::backend::cuda::grid_barrier_us(bps, 2000) {
                Ok(us) => println!("grid barrier: {bps} block(s) of 256 threads per SM: {us:.3} us per barrier"),
                Err(e) => {
                    eprintln!("viva-bench: barrier probe: {e}");
                    std::process::exit(1);
                }
            }
        }
        return;
    }
    // `viva-bench --red-probe`: cost of every block adding a hidden-size vector into one (docs/gpu.md, v13).
    #[cfg(feature = "cuda")]
    if std::env::args().any(|x| x == "--red-probe") {
        for (bps, n, v4) in
            [(2usize, 4096usize, true), (2, 4096, false), (1, 4096, true), (2, 2048, true), (2, 2048, false)]
        {
            match viva_core::backend::cuda::red_probe_us(bps, n, v4, 20) {
                Ok(us) => println!(
                    "reduction: {bps} block(s) per SM each adding {n} f32 into one vector ({}): {us:.3} us per round",
                    if v4 { "red.global.add.v4.f32" } else { "atomicAdd" }
                ),
                Err(e) => {
                    eprintln!("viva-bench: reduction probe: {e}");
                    std::process::exit(1);
                }
            }
        }
        return;
    }
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("viva-bench: {e}");
            usage()
        }
    };
    if let Err(e) = run(&a) {
        eprintln!("viva-bench: {} ({})", e, e.kind());
        std::process::exit(1);
    }
}

fn run(a: &Args) -> viva_core::Result<()> {
    let dir = if a.model.is_dir() { a.model.clone() } else { a.model.parent().map(PathBuf::from).unwrap_or_default() };
    if !dir.join("tokenizer.json").exists() {
        let (tok, _) = viva_core::testckpt::tokenizer_json();
        std::fs::write(dir.join("tokenizer.json"), tok).map_err(|e| viva_core::Error::io(&dir, e))?;
    }
    let t0 = Instant::now();
    let model = Model::load(&a.model, LoadOptions { backend: a.backend, weights: a.weights })?;
    let load_s = t0.elapsed().as_secs_f64();
    let cfg = &model.config;
    #[cfg(feature = "cuda")]
    let default_block = viva_core::backend::cuda::fp8_block_name(viva_core::backend::cuda::FP8_DEFAULT_BLOCK);
    #[cfg(not(feature = "cuda"))]
    let default_block = String::from("-");
    let block = std::env::var("VIVA_TENSOR_FP8_BLOCK").unwrap_or(default_block);
    let variant = match model.weight_format() {
        WeightFormat::Fp8 => format!("{}:fp8/b{block}", model.backend_name()),
        w => format!("{}:{}", model.backend_name(), w.name()),
    };
    let label = if a.label.is_empty() { variant.clone() } else { a.label.clone() };
    println!(
        "model {} | {} | device {} | load {:.2} s",
        a.model.display(),
        variant,
        model.device_name().unwrap_or_else(|| "cpu".into()),
        load_s
    );
    println!("attention: {}", model.decode_attention());

    // Prefill of the prompt, then greedy decode with the argmax on the device.
    let ids = prompt(a.prompt_len, cfg.vocab_size, 1);
    let mut cache = model.new_cache()?;
    let t = Instant::now();
    let logits = model.forward(&mut cache, &ids)?;
    let prompt_ms = t.elapsed().as_secs_f64() * 1e3;
    let first = viva_core::sampler::argmax(&logits);
    let warm = 8.min(a.new);
    let toks = model.decode_greedy(&mut cache, first, warm, &mut |_| true)?;
    let next = toks.last().copied().unwrap_or(first);
    let n = a.new.saturating_sub(warm).max(1);
    let t = Instant::now();
    let gen = model.decode_greedy(&mut cache, next, n, &mut |_| true)?;
    let dt = t.elapsed().as_secs_f64();
    let ms_tok = dt * 1e3 / gen.len().max(1) as f64;
    let wbytes = model.weight_bytes_per_token().unwrap_or(0) as f64;
    let gbs = if ms_tok > 0.0 { wbytes / (ms_tok * 1e-3) / 1e9 } else { 0.0 };

    // The logits-returning API path (host argmax), one forward per token.
    let mut api_ms = 0.0;
    if a.api_steps > 0 && cache.len() + a.api_steps < cfg.max_position_embeddings {
        let mut tok = gen.last().copied().unwrap_or(next);
        let t = Instant::now();
        for _ in 0..a.api_steps {
            let l = model.forward(&mut cache, &[tok])?;
            tok = viva_core::sampler::argmax(&l);
        }
        api_ms = t.elapsed().as_secs_f64() * 1e3 / a.api_steps as f64;
    }

    // Prefill of prefill_len tokens: median of 3 runs, each into a fresh cache (warm-up first).
    let mut prefill_ms = 0.0;
    if a.prefill_len > 0 && a.prefill_len <= cfg.max_position_embeddings {
        let pids = prompt(a.prefill_len, cfg.vocab_size, 2);
        let mut runs = Vec::new();
        for i in 0..4 {
            let mut c = model.new_cache()?;
            let t = Instant::now();
            model.forward(&mut c, &pids)?;
            if i > 0 {
                runs.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        prefill_ms = median(runs);
    }

    println!(
        "{label:24} decode {:8.1} tok/s {:7.3} ms/tok  weights {:.3} GB/tok -> {:6.0} GB/s | forward() {:7.3} ms/tok | prefill {} {:8.2} ms (prompt {} {:.2} ms)",
        1e3 / ms_tok,
        ms_tok,
        wbytes / 1e9,
        gbs,
        api_ms,
        a.prefill_len,
        prefill_ms,
        a.prompt_len,
        prompt_ms
    );

    #[cfg(feature = "cuda")]
    if a.prefill_ab && a.prefill_len > 1 && a.prefill_len <= cfg.max_position_embeddings {
        prefill_ab(&label, &model, &prompt(a.prefill_len, cfg.vocab_size, 2))?;
    }

    if a.profile {
        // Per-kernel times (events between kernels, no graph, no PDL overlap): a decode step at the
        // cache's current position, then a prefill of prefill_len tokens.
        let show = |what: &str, rows: Option<Vec<(String, f64, usize)>>| {
            if let Some(rows) = rows {
                let total: f64 = rows.iter().map(|r| r.1).sum();
                println!("{label:24} profile {what}: total {total:.1} us");
                for (name, us, n) in rows {
                    println!("    {name:28} {us:9.1} us  ({n} launches, {:.2} us each)", us / n as f64);
                }
            }
        };
        let tok = viva_core::sampler::argmax(&model.forward(&mut cache, &[next])?);
        show("decode step", model.profile(&mut cache, &[tok])?);
        if a.prefill_len > 0 && a.prefill_len <= cfg.max_position_embeddings {
            let mut c = model.new_cache()?;
            show(
                &format!("prefill {}", a.prefill_len),
                model.profile(&mut c, &prompt(a.prefill_len, cfg.vocab_size, 2))?,
            );
        }
    }

    #[cfg(feature = "cuda")]
    if a.timeline > 0 && cache.len() + a.timeline < cfg.max_position_embeddings {
        let tok = viva_core::sampler::argmax(&model.forward(&mut cache, &[next])?);
        if let Some(rows) = model.timeline(&mut cache, tok, a.timeline)? {
            print_timeline(&label, cfg, &rows);
        }
    }

    let mut agree_json = String::from("null");
    if a.agree > 0 {
        let (agree, rel) = agreement(a, &model)?;
        println!("{label:24} teacher-forced top-1 agreement with cpu f32 over {} steps: {:.4}; logits rel L2 error mean {:.3e} max {:.3e}", a.agree, agree, rel.0, rel.1);
        agree_json = format!("{{\"steps\":{},\"top1\":{agree},\"rel_mean\":{},\"rel_max\":{}}}", a.agree, rel.0, rel.1);
    }
    if let Some(path) = &a.json {
        use std::io::Write;
        let line = format!(
            "{{\"label\":\"{label}\",\"variant\":\"{variant}\",\"device\":\"{}\",\"tok_s\":{},\"ms_tok\":{ms_tok},\"weight_gb\":{},\"gb_s\":{gbs},\"api_ms_tok\":{api_ms},\"prefill_len\":{},\"prefill_ms\":{prefill_ms},\"agree\":{agree_json}}}\n",
            model.device_name().unwrap_or_else(|| "cpu".into()),
            1e3 / ms_tok,
            wbytes / 1e9,
            a.prefill_len
        );
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| viva_core::Error::io(path, e))?;
        f.write_all(line.as_bytes()).map_err(|e| viva_core::Error::io(path, e))?;
    }
    Ok(())
}

/// Teacher-forced comparison with the CPU f32 path: the CPU's greedy continuation is the teacher;
/// both models see the same tokens; returns (top-1 agreement, (mean, max) relative L2 logits error).
fn agreement(a: &Args, model: &Model) -> viva_core::Result<(f64, (f64, f64))> {
    let cpu = Model::load(&a.model, LoadOptions { backend: BackendKind::Cpu, weights: WeightFormat::F32 })?;
    let ids = prompt(a.agree_prompt.min(cpu.config.max_position_embeddings / 2), cpu.config.vocab_size, 3);
    let mut cc = cpu.new_cache()?;
    let mut gc = model.new_cache()?;
    let mut lc = cpu.forward(&mut cc, &ids)?;
    let mut lg = model.forward(&mut gc, &ids)?;
    let (mut same, mut rels) = (0usize, Vec::new());
    for _ in 0..a.agree {
        let tc = viva_core::sampler::argmax(&lc);
        let tg = viva_core::sampler::argmax(&lg);
        same += usize::from(tc == tg);
        let num: f64 = lc.iter().zip(&lg).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = lc.iter().map(|&x| (x as f64).powi(2)).sum();
        rels.push((num / den.max(1e-30)).sqrt());
        if cc.len() + 1 >= cpu.config.max_position_embeddings {
            break;
        }
        lc = cpu.forward(&mut cc, &[tc])?;
        lg = model.forward(&mut gc, &[tc])?;
    }
    let n = rels.len().max(1) as f64;
    let mean = rels.iter().sum::<f64>() / n;
    let max = rels.iter().copied().fold(0.0, f64::max);
    Ok((same as f64 / n, (mean, max)))
}

/// Prefill A/B (CUDA): mma.sync GEMMs vs cuBLAS, interleaved (3 rounds, median of 5 prefills each per
/// round after a warm-up), and the relative L2 difference of the two paths' last-token logits.
#[cfg(feature = "cuda")]
fn prefill_ab(label: &str, model: &Model, ids: &[u32]) -> viva_core::Result<()> {
    use viva_core::backend::cuda::{prefill_path, set_prefill_path, PrefillPath};
    let before = prefill_path();
    let time = |p: PrefillPath| -> viva_core::Result<(f64, Vec<f32>)> {
        set_prefill_path(p);
        let mut runs = Vec::new();
        let mut logits = Vec::new();
        for i in 0..6 {
            let mut c = model.new_cache()?;
            let t = Instant::now();
            logits = model.forward(&mut c, ids)?;
            if i > 0 {
                runs.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok((median(runs), logits))
    };
    let (mut tm, mut tb) = (Vec::new(), Vec::new());
    let (mut lm, mut lb) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (t, l) = time(PrefillPath::Mma)?;
        tm.push(t);
        lm = l;
        let (t, l) = time(PrefillPath::Cublas)?;
        tb.push(t);
        lb = l;
    }
    set_prefill_path(before);
    let num: f64 = lm.iter().zip(&lb).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = lm.iter().map(|&x| (x as f64).powi(2)).sum();
    let finite = lb.iter().all(|x| x.is_finite());
    println!(
        "{label:24} prefill-ab {} tokens: mma {:?} ms | cublas {:?} ms | logits rel L2 diff {:.3e} | top-1 {} | finite {finite}",
        ids.len(),
        tm.iter().map(|t| (t * 100.0).round() / 100.0).collect::<Vec<_>>(),
        tb.iter().map(|t| (t * 100.0).round() / 100.0).collect::<Vec<_>>(),
        (num / den.max(1e-30)).sqrt(),
        if viva_core::sampler::argmax(&lm) == viva_core::sampler::argmax(&lb) { "same" } else { "DIFFERENT" },
    );
    Ok(())
}
