//! The engine against HF transformers references (../shared/fixtures, see its README).

use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use viva_core::tokenizer::Tokenizer;
use viva_core::{generate, GenOpts, LoadOptions, Model};

fn fixtures() -> PathBuf {
    match std::env::var("VIVA_TENSOR_FIXTURES") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

fn json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Greedy tokens equal the reference exactly; last-position logits match the top-10 within 1e-4 relative.
fn check_fixture(name: &str) {
    let dir = fixtures().join(name);
    let reference = json(dir.join("reference.json"));
    let model = Model::load(&dir, LoadOptions::default()).unwrap();
    let n_new = reference["generation"]["max_new_tokens"].as_u64().unwrap() as usize;
    for case in reference["cases"].as_array().unwrap() {
        let input = ids(&case["input_ids"]);
        if let Some(prompt) = case["prompt"].as_str() {
            assert_eq!(model.tokenizer.encode(prompt, true).unwrap(), input, "{name}: prompt ids of {prompt:?}");
        }
        let mut cache = model.new_cache().unwrap();
        let logits = model.forward(&mut cache, &input).unwrap();
        let lp = &case["last_position"];
        for pair in lp["top10"].as_array().unwrap() {
            let (id, want) = (pair[0].as_u64().unwrap() as usize, pair[1].as_f64().unwrap());
            let got = logits[id] as f64;
            assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{name}: logit[{id}] {got} vs {want}");
        }
        let l2: f64 = logits.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt();
        let want_l2 = lp["l2_norm"].as_f64().unwrap();
        assert!((l2 - want_l2).abs() / want_l2 < 1e-4, "{name}: l2 {l2} vs {want_l2}");

        let opts = GenOpts { max_new_tokens: n_new, stop_on_eos: false, ..GenOpts::default() };
        let mut streamed = String::new();
        let stats = generate(&model, &input, &opts, &AtomicBool::new(false), &mut |_, piece| {
            streamed.push_str(piece);
            true
        })
        .unwrap();
        assert_eq!(stats.tokens, ids(&case["greedy_new_ids"]), "{name}: greedy ids for {:?}", case["label"]);
        assert_eq!(stats.text, case["greedy_new_text"].as_str().unwrap(), "{name}: greedy text");
        assert_eq!(streamed, stats.text, "{name}: streamed pieces concatenate to the text");
    }
}

#[test]
fn stories260k_matches_hf_reference() {
    check_fixture("stories260k");
}

#[test]
fn bytelevel_tiny_matches_hf_reference() {
    check_fixture("bytelevel-tiny");
}

#[test]
fn llama2_tokenizer_vectors() {
    let dir = fixtures().join("llama2-tokenizer");
    let tok = Tokenizer::from_path(&dir).unwrap();
    let vectors = json(dir.join("vectors.json"));
    let list = vectors.as_array().or_else(|| vectors["vectors"].as_array()).unwrap();
    assert!(list.len() >= 40);
    for v in list {
        let text = v["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), ids(&v["ids_with_bos"]), "ids_with_bos {text:?}");
        assert_eq!(tok.encode(text, false).unwrap(), ids(&v["ids_no_special"]), "ids_no_special {text:?}");
        let with_bos = ids(&v["ids_with_bos"]);
        assert_eq!(tok.decode(&with_bos, true).unwrap(), v["decode_skip_special"].as_str().unwrap());
        assert_eq!(tok.decode(&with_bos, false).unwrap(), v["decode_keep_special"].as_str().unwrap());
    }
}

#[test]
fn fixture_tokenizer_vectors() {
    for name in ["stories260k", "bytelevel-tiny"] {
        let dir = fixtures().join(name);
        let tok = Tokenizer::from_path(&dir).unwrap();
        let reference = json(dir.join("reference.json"));
        for v in reference["tokenizer_vectors"].as_array().unwrap() {
            let text = v["text"].as_str().unwrap();
            for (key, special) in [("ids_with_bos", true), ("ids_no_special", false)] {
                assert_eq!(tok.encode(text, special).unwrap(), ids(&v[key]), "{name} {key} {text:?}");
            }
            let with_bos = ids(&v["ids_with_bos"]);
            assert_eq!(tok.decode(&with_bos, true).unwrap(), v["decode_skip_special"].as_str().unwrap());
        }
    }
}
