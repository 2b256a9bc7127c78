//! Writes small deterministic Llama checkpoints (config.json, tokenizer.json, safetensors) with no
//! download: the demo's embedded default, benchmark shapes, and test inputs for the loader
//! (sharded files, BF16/F16 storage). The weights are seeded pseudo-random numbers, so the text such
//! a model writes is noise; its tokenizer is a real SentencePiece-style BPE over a small English
//! word list, so that noise is made of words.

use crate::error::{Error, Result};
use crate::loader::StoredDtype;
use crate::names;
use std::io::Write;
use std::path::Path;

/// Model shape of a generated checkpoint.
#[derive(Debug, Clone)]
pub struct Shape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// Model vocabulary; at least the tokenizer's size (extra rows are padding, as in many HF models).
    pub vocab: usize,
    pub max_pos: usize,
    pub tie_embeddings: bool,
}

impl Shape {
    /// The demo's default: small enough for every backend, big enough to be a real transformer.
    pub fn demo() -> Shape {
        Shape {
            hidden: 256,
            intermediate: 688,
            layers: 4,
            heads: 8,
            kv_heads: 4,
            vocab: 640,
            max_pos: 2048,
            tie_embeddings: false,
        }
    }
}

const WORDS: &str = "the a and to of in it is was that he she they we you i on with as for his her \
    at by be this had not are but from or have an one all were there when what so up out if about \
    who into time day night sun moon sea river tree forest bird cat dog fox little big old new happy \
    sad went saw said looked found made came play run jump sing walk talk light dark warm cold red \
    blue green gold stone house garden window door road town boy girl friend mother father story \
    dream song rain snow wind star sky morning evening again very then because under over near far";

/// SplitMix64: a tiny, well-known seeded generator (enough for deterministic test weights).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// The tokenizer.json text: SentencePiece-style BPE (Llama-2 layout) over [`WORDS`], with byte fallback.
pub fn tokenizer_json() -> (String, usize) {
    let mut vocab: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    vocab.extend((0..=255u32).map(|b| format!("<0x{b:02X}>")));
    let mut merges: Vec<(String, String)> = Vec::new();
    let mut seen: std::collections::HashSet<String> = vocab.iter().cloned().collect();
    let mut add = |s: String, vocab: &mut Vec<String>| {
        if seen.insert(s.clone()) {
            vocab.push(s);
        }
    };
    for c in "▁abcdefghijklmnopqrstuvwxyz.,".chars() {
        add(c.to_string(), &mut vocab);
    }
    for w in WORDS.split_whitespace() {
        let chars: Vec<char> = std::iter::once('▁').chain(w.chars()).collect();
        let mut acc = chars[0].to_string();
        for c in &chars[1..] {
            let next = format!("{acc}{c}");
            if !vocab.contains(&next) {
                merges.push((acc.clone(), c.to_string()));
                add(next.clone(), &mut vocab);
            }
            acc = next;
        }
    }
    let vocab_json: Vec<String> = vocab.iter().enumerate().map(|(i, t)| format!("{}:{i}", json_str(t))).collect();
    let merges_json: Vec<String> = merges.iter().map(|(a, b)| format!("[{},{}]", json_str(a), json_str(b))).collect();
    let text = format!(
        r#"{{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[{{"id":0,"content":"<unk>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}},
{{"id":1,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}},
{{"id":2,"content":"</s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}}],
"normalizer":{{"type":"Sequence","normalizers":[{{"type":"Prepend","prepend":"▁"}},{{"type":"Replace","pattern":{{"String":" "}},"content":"▁"}}]}},
"pre_tokenizer":null,
"post_processor":{{"type":"TemplateProcessing","single":[{{"SpecialToken":{{"id":"<s>","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}}],"pair":[{{"SpecialToken":{{"id":"<s>","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}},{{"Sequence":{{"id":"B","type_id":1}}}}],"special_tokens":{{"<s>":{{"id":"<s>","ids":[1],"tokens":["<s>"]}}}}}},
"decoder":{{"type":"Sequence","decoders":[{{"type":"Replace","pattern":{{"String":"▁"}},"content":" "}},{{"type":"ByteFallback"}},{{"type":"Fuse"}},{{"type":"Strip","content":" ","start":1,"stop":0}}]}},
"model":{{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,
"vocab":{{{}}},
"merges":[{}]}}}}"#,
        vocab_json.join(","),
        merges_json.join(",")
    );
    (text, vocab.len())
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Tensors of a checkpoint of `shape`, in file order, each `(name, shape, values)`.
/// `word_rows`: the lm_head rows `3..word_rows.1` beyond the byte-fallback tokens (`word_rows.0..`) get
/// larger logits and the byte/padding rows none, so a sampled random model writes words, not bytes.
fn tensors(shape: &Shape, seed: u64, word_rows: (usize, usize)) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = SplitMix(seed);
    let hd = shape.hidden / shape.heads;
    let (h, q, kv, i) = (shape.hidden, shape.heads * hd, shape.kv_heads * hd, shape.intermediate);
    let mut out = Vec::new();
    fn mat(
        out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
        name: String,
        dims: Vec<usize>,
        scale: f32,
        rng: &mut SplitMix,
    ) {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.uniform() * scale).collect();
        out.push((name, dims, v));
    }
    let norm = |rng: &mut SplitMix, n: usize| -> Vec<f32> { (0..n).map(|_| 1.0 + 0.2 * rng.uniform()).collect() };
    let s_in = 1.0 / (h as f32).sqrt() * 1.7;
    mat(&mut out, names::EMBED.into(), vec![shape.vocab, h], 1.0, &mut rng);
    for l in 0..shape.layers {
        let n = |s: &str| names::layer(l, s);
        let an = norm(&mut rng, h);
        out.push((n(names::ATTN_NORM), vec![h], an));
        mat(&mut out, n(names::Q), vec![q, h], s_in, &mut rng);
        mat(&mut out, n(names::K), vec![kv, h], s_in, &mut rng);
        mat(&mut out, n(names::V), vec![kv, h], s_in, &mut rng);
        mat(&mut out, n(names::O), vec![h, q], 1.0 / (q as f32).sqrt(), &mut rng);
        let fnrm = norm(&mut rng, h);
        out.push((n(names::FFN_NORM), vec![h], fnrm));
        mat(&mut out, n(names::GATE), vec![i, h], s_in, &mut rng);
        mat(&mut out, n(names::UP), vec![i, h], s_in, &mut rng);
        mat(&mut out, n(names::DOWN), vec![h, i], 1.0 / (i as f32).sqrt(), &mut rng);
    }
    let fnorm = norm(&mut rng, h);
    out.push((names::NORM.into(), vec![h], fnorm));
    if !shape.tie_embeddings {
        mat(&mut out, names::LM_HEAD.into(), vec![shape.vocab, h], s_in, &mut rng);
        if let Some((_, _, head)) = out.last_mut() {
            for (row, r) in head.chunks_exact_mut(h).enumerate() {
                let gain = if row >= word_rows.0 && row < word_rows.1 { 3.0 } else { 0.0 };
                r.iter_mut().for_each(|x| *x *= gain);
            }
        }
    }
    out
}

/// Writes one safetensors file holding `tensors` stored as `dtype`.
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: StoredDtype) -> Result<()> {
    let (dname, esize) = match dtype {
        StoredDtype::F32 => ("F32", 4),
        StoredDtype::Bf16 => ("BF16", 2),
        StoredDtype::F16 => ("F16", 2),
    };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dims, v) in tensors {
        let len = v.len() * esize;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dname, "shape": dims, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let io = |e| Error::io(path, e);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    f.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    f.write_all(&h).map_err(io)?;
    for (_, _, v) in tensors {
        for &x in v {
            match dtype {
                StoredDtype::F32 => f.write_all(&x.to_le_bytes()),
                StoredDtype::Bf16 => f.write_all(&half::bf16::from_f32(x).to_bits().to_le_bytes()),
                StoredDtype::F16 => f.write_all(&half::f16::from_f32(x).to_bits().to_le_bytes()),
            }
            .map_err(io)?;
        }
    }
    f.flush().map_err(io)
}

/// Writes a complete checkpoint folder: `config.json`, `tokenizer.json` and the weights, in one
/// `model.safetensors` (`shards == 1`) or `shards` files with a `model.safetensors.index.json`.
pub fn write_checkpoint(dir: &Path, shape: &Shape, seed: u64, dtype: StoredDtype, shards: usize) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (tok, tok_vocab) = tokenizer_json();
    if shape.vocab < tok_vocab {
        return Err(Error::InvalidOption(format!("vocab {} is smaller than the tokenizer's {tok_vocab}", shape.vocab)));
    }
    if !shape.hidden.is_multiple_of(shape.heads) || !shape.heads.is_multiple_of(shape.kv_heads) {
        return Err(Error::InvalidOption("hidden must divide by heads, heads by kv_heads".into()));
    }
    let torch_dtype = match dtype {
        StoredDtype::F32 => "float32",
        StoredDtype::Bf16 => "bfloat16",
        StoredDtype::F16 => "float16",
    };
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": shape.hidden, "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads, "vocab_size": shape.vocab,
        "max_position_embeddings": shape.max_pos, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_scaling": null, "tie_word_embeddings": shape.tie_embeddings, "attention_bias": false,
        "mlp_bias": false, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": torch_dtype,
        "initializer_range": 0.02
    });
    let w = |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| Error::io(&dir.join(name), e));
    w("config.json", serde_json::to_string_pretty(&config).unwrap_or_default())?;
    w("tokenizer.json", tok)?;
    let all = tensors(shape, seed, (3 + 256, tok_vocab));
    if shards <= 1 {
        return write_safetensors(&dir.join("model.safetensors"), &all, dtype);
    }
    let per = all.len().div_ceil(shards);
    let mut map = serde_json::Map::new();
    for (i, chunk) in all.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, all.len().div_ceil(per));
        for (name, _, _) in chunk {
            map.insert(name.clone(), serde_json::Value::String(file.clone()));
        }
        write_safetensors(&dir.join(&file), chunk, dtype)?;
    }
    w("model.safetensors.index.json", serde_json::json!({"metadata": {}, "weight_map": map}).to_string())
}
