//! Loader formats and every bad-input path: each must be a clear error of the right kind.

use std::path::{Path, PathBuf};
use viva_core::loader::StoredDtype;
use viva_core::testckpt::{write_checkpoint, write_safetensors, Shape};
use viva_core::{Error, LoadOptions, Model};

fn fixtures() -> PathBuf {
    match std::env::var("VIVA_TENSOR_FIXTURES") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

fn tiny() -> Shape {
    Shape {
        hidden: 32,
        intermediate: 48,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        vocab: 600,
        max_pos: 64,
        tie_embeddings: false,
    }
}

fn load(p: &Path) -> Result<Model, Error> {
    Model::load(p, LoadOptions::default())
}

fn err_of(p: &Path) -> Error {
    match load(p) {
        Ok(_) => panic!("{} loaded but should not", p.display()),
        Err(e) => e,
    }
}

/// Copies the stories260k fixture (read-only in CI) into a temp dir so it can be damaged.
fn stories_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("stories260k").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn logits(m: &Model, ids: &[u32]) -> Vec<f32> {
    let mut c = m.new_cache().unwrap();
    m.forward(&mut c, ids).unwrap()
}

#[test]
fn single_sharded_folder_file_and_index_paths_give_the_same_model() {
    let root = tempfile::tempdir().unwrap();
    let (single, sharded) = (root.path().join("single"), root.path().join("sharded"));
    write_checkpoint(&single, &tiny(), 9, StoredDtype::F32, 1).unwrap();
    write_checkpoint(&sharded, &tiny(), 9, StoredDtype::F32, 3).unwrap();
    let ids = [1u32, 17, 300, 42];
    let want = logits(&load(&single).unwrap(), &ids);
    for p in [single.join("model.safetensors"), sharded.clone(), sharded.join("model.safetensors.index.json")] {
        assert_eq!(logits(&load(&p).unwrap(), &ids), want, "{}", p.display());
    }
}

#[test]
fn bf16_and_f16_storage_equal_f32_storage_of_the_rounded_values() {
    let root = tempfile::tempdir().unwrap();
    for (name, dtype) in [("bf16", StoredDtype::Bf16), ("f16", StoredDtype::F16)] {
        let dir = root.path().join(name);
        write_checkpoint(&dir, &tiny(), 3, dtype, 1).unwrap();
        let m = load(&dir).unwrap();
        // Reference: the same tensors rounded independently (through `half`) and stored as F32.
        let st = viva_core::loader::TensorStore::open(&[dir.join("model.safetensors")]).unwrap();
        let mut tensors = Vec::new();
        let mut names: Vec<String> = st.names().map(str::to_string).collect();
        names.sort();
        for n in names {
            let (_, bytes) = st.bytes(&n, &shape_of(&st, &n)).unwrap();
            let vals: Vec<f32> = bytes
                .chunks_exact(2)
                .map(|c| {
                    let b = u16::from_le_bytes([c[0], c[1]]);
                    match dtype {
                        StoredDtype::Bf16 => half::bf16::from_bits(b).to_f32(),
                        _ => half::f16::from_bits(b).to_f32(),
                    }
                })
                .collect();
            tensors.push((n.clone(), shape_of(&st, &n), vals));
        }
        let f32dir = root.path().join(format!("{name}-as-f32"));
        std::fs::create_dir_all(&f32dir).unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(dir.join(f), f32dir.join(f)).unwrap();
        }
        write_safetensors(&f32dir.join("model.safetensors"), &tensors, StoredDtype::F32).unwrap();
        let ids = [1u32, 5, 77, 599];
        assert_eq!(logits(&m, &ids), logits(&load(&f32dir).unwrap(), &ids), "{name}");
    }
}

fn shape_of(st: &viva_core::loader::TensorStore, name: &str) -> Vec<usize> {
    // Ask with an impossible shape: the mismatch message carries the real one.
    match st.check(name, &[usize::MAX]) {
        Err(Error::ShapeMismatch(m)) => {
            let got = m.rsplit("got [").next().unwrap().trim_end_matches(']');
            got.split(',').map(|d| d.parse().unwrap()).collect()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_path_and_folder_without_weights() {
    assert_eq!(err_of(Path::new("/definitely/not/here")).kind(), "not_found");
    let dir = stories_copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "no_weights");
    assert!(e.to_string().contains(&dir.path().display().to_string()));
}

fn rewrite_header(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let dir = stories_copy();
    let f = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    for cut in [4usize, 100, bytes.len() - 10] {
        std::fs::write(&f, &bytes[..cut]).unwrap();
        let e = err_of(dir.path());
        assert_eq!(e.kind(), "invalid_safetensors", "cut at {cut}: {e}");
        assert!(e.to_string().contains("model.safetensors"), "{e}");
    }
    let mut garbage = bytes.clone();
    garbage[8..16].copy_from_slice(b"not json");
    std::fs::write(&f, &garbage).unwrap();
    assert_eq!(err_of(dir.path()).kind(), "invalid_safetensors");
}

#[test]
fn header_whose_offsets_lie() {
    let dir = stories_copy();
    let f = dir.path().join("model.safetensors");
    rewrite_header(&f, |h| {
        h["model.norm.weight"]["data_offsets"] = serde_json::json!([0, 999_999_999]);
    });
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "invalid_safetensors", "{e}");
}

#[test]
fn missing_tensor_wrong_shape_and_unsupported_dtype_name_the_tensor() {
    let dir = stories_copy();
    let f = dir.path().join("model.safetensors");
    let orig = std::fs::read(&f).unwrap();
    let name = "model.layers.3.self_attn.k_proj.weight";

    rewrite_header(&f, |h| {
        let v = h.as_object_mut().unwrap().remove(name).unwrap();
        h["model.layers.3.self_attn.k_proj.renamed"] = v;
    });
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "missing_tensor");
    assert!(e.to_string().contains(name), "{e}");

    std::fs::write(&f, &orig).unwrap();
    rewrite_header(&f, |h| h[name]["shape"] = serde_json::json!([64, 32]));
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "shape_mismatch");
    assert_eq!(e.to_string(), format!("{name}: expected [32,64], got [64,32]"));

    std::fs::write(&f, &orig).unwrap();
    // Same byte size: 32×64 f32 = 1024 × 8-byte I64.
    rewrite_header(&f, |h| {
        h[name]["dtype"] = serde_json::json!("I64");
        h[name]["shape"] = serde_json::json!([1024]);
    });
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "unsupported_dtype");
    assert!(e.to_string().contains(name) && e.to_string().contains("I64"), "{e}");
}

#[test]
fn malformed_config_and_tokenizer() {
    let dir = stories_copy();
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 64,").unwrap();
    assert_eq!(err_of(dir.path()).kind(), "invalid_config");

    let dir = stories_copy();
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": {\"type\": \"BPE\"").unwrap();
    assert_eq!(err_of(dir.path()).kind(), "invalid_tokenizer");

    let dir = stories_copy();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = err_of(dir.path());
    assert_eq!(e.kind(), "not_found");
    assert!(e.to_string().contains("tokenizer.json"));
}

#[test]
fn forward_rejects_out_of_range_ids_and_context_overflow() {
    let root = tempfile::tempdir().unwrap();
    write_checkpoint(root.path(), &tiny(), 1, StoredDtype::F32, 1).unwrap();
    let m = load(root.path()).unwrap();
    let mut c = m.new_cache().unwrap();
    assert_eq!(m.forward(&mut c, &[600]).unwrap_err().kind(), "token_out_of_range");
    let long: Vec<u32> = (0..65).map(|i| i % 100).collect();
    assert_eq!(m.forward(&mut c, &long).unwrap_err().kind(), "prompt_too_long");
    // The cache is still usable after a rejected call.
    assert!(m.forward(&mut c, &[1, 2, 3]).is_ok());
}

#[test]
fn the_demo_checkpoint_loads_and_generates_words() {
    let root = tempfile::tempdir().unwrap();
    write_checkpoint(root.path(), &Shape::demo(), 1234, StoredDtype::F32, 1).unwrap();
    let m = load(root.path()).unwrap();
    let ids = m.tokenizer.encode("once upon a time", true).unwrap();
    assert_eq!(ids[0], 1, "BOS from the post-processor");
    let opts = viva_core::GenOpts { max_new_tokens: 8, stop_on_eos: false, ..Default::default() };
    let stats =
        viva_core::generate(&m, &ids, &opts, &std::sync::atomic::AtomicBool::new(false), &mut |_, _| true).unwrap();
    assert_eq!(stats.tokens.len(), 8);
    assert_eq!(m.tokenizer.decode_known(&stats.tokens, true).unwrap(), stats.text);
}
