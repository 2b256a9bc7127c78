//! `viva-checkpoint DIR [options]` — writes a deterministic random Llama checkpoint
//! (config.json, tokenizer.json, safetensors) for the demo, benchmarks and tests. No download.
//!
//! Options: --hidden N --intermediate N --layers N --heads N --kv-heads N --vocab N --max-pos N
//!          --dtype f32|bf16|f16 --shards N --seed N --untied

use std::path::PathBuf;
use std::process::ExitCode;
use viva_core::loader::StoredDtype;
use viva_core::testckpt::{write_checkpoint, Shape};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("viva-checkpoint: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let mut shape = Shape::demo();
    let (mut dtype, mut shards, mut seed, mut dir) = (StoredDtype::F32, 1usize, 1234u64, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a positive integer"))
        };
        match a.as_str() {
            "--hidden" => shape.hidden = num(a)?,
            "--intermediate" => shape.intermediate = num(a)?,
            "--layers" => shape.layers = num(a)?,
            "--heads" => shape.heads = num(a)?,
            "--kv-heads" => shape.kv_heads = num(a)?,
            "--vocab" => shape.vocab = num(a)?,
            "--max-pos" => shape.max_pos = num(a)?,
            "--shards" => shards = num(a)?,
            "--seed" => seed = num(a)? as u64,
            "--untied" => shape.tie_embeddings = false,
            "--dtype" => {
                dtype = match it.next().map(String::as_str) {
                    Some("f32") => StoredDtype::F32,
                    Some("bf16") => StoredDtype::Bf16,
                    Some("f16") => StoredDtype::F16,
                    other => return Err(format!("--dtype must be f32, bf16 or f16, got {other:?}")),
                }
            }
            "-h" | "--help" => return Err("usage: viva-checkpoint DIR [--hidden N ...] (see the source header)".into()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => dir = Some(PathBuf::from(s)),
        }
    }
    let dir = dir.ok_or("missing DIR")?;
    write_checkpoint(&dir, &shape, seed, dtype, shards).map_err(|e| e.to_string())?;
    Ok(format!(
        "wrote {} (hidden {}, intermediate {}, layers {}, heads {}/{} kv, vocab {}, {:?}, {} shard(s))",
        dir.display(),
        shape.hidden,
        shape.intermediate,
        shape.layers,
        shape.heads,
        shape.kv_heads,
        shape.vocab,
        dtype,
        shards
    ))
}
