//! Llama-family `config.json`: read as loose JSON (every field optional, HF defaults), then turned into
//! a validated [`Config`]. Errors name the field and the file.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// `rope_scaling` of type `llama3` (Llama-3.1 and later).
///
/// Numeric trap: the scaling rewrites `inv_freq` per frequency band, not the positions.
/// With `wavelen = 2π / inv_freq`, `lo = orig_ctx / low_freq_factor`, `hi = orig_ctx / high_freq_factor`:
/// `wavelen < hi` keeps `inv_freq`; `wavelen > lo` divides it by `factor`; in between it is blended
/// with `s = (orig_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)`:
/// `(1 - s) * inv_freq / factor + s * inv_freq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// A validated model configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn req_usize(obj: &serde_json::Map<String, Value>, key: &str) -> Result<usize> {
    match field(obj, key) {
        None => Err(Error::InvalidConfig(format!("config.json: `{key}` is missing"))),
        Some(v) => as_pos_usize(v, key),
    }
}

fn opt_usize(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<usize>> {
    field(obj, key).map(|v| as_pos_usize(v, key)).transpose()
}

fn as_pos_usize(v: &Value, key: &str) -> Result<usize> {
    match v.as_u64() {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(Error::InvalidConfig(format!("config.json: `{key}` must be a positive integer, got {v}"))),
    }
}

fn opt_f64(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(Error::InvalidConfig(format!("config.json: `{key}` must be a positive number, got {v}"))),
        },
    }
}

fn token_ids(v: Option<&Value>, key: &str) -> Result<Vec<u32>> {
    let one = |x: &Value| -> Result<u32> {
        x.as_u64()
            .filter(|n| *n <= u32::MAX as u64)
            .map(|n| n as u32)
            .ok_or_else(|| Error::InvalidConfig(format!("config.json: `{key}` must be a token id, got {x}")))
    };
    match v {
        None => Ok(vec![]),
        Some(Value::Array(xs)) => xs.iter().map(one).collect(),
        Some(x) => Ok(vec![one(x)?]),
    }
}

impl Config {
    /// Reads and validates `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::InvalidConfig(format!("{}: config.json not found", path.display())),
            _ => Error::io(path, e),
        })?;
        Config::from_json_str(&text).map_err(|e| match e {
            Error::InvalidConfig(m) => Error::InvalidConfig(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses and validates a `config.json` text.
    pub fn from_json_str(text: &str) -> Result<Config> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidConfig(format!("config.json is not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| Error::InvalidConfig("config.json: expected a JSON object".into()))?;
        if let Some(mt) = field(obj, "model_type").and_then(Value::as_str) {
            const LLAMA_LIKE: [&str; 3] = ["llama", "mistral", "qwen2"];
            if !LLAMA_LIKE.contains(&mt) {
                return Err(Error::InvalidConfig(format!(
                    "config.json: model_type `{mt}` is not a Llama-family architecture"
                )));
            }
        }
        for flag in ["attention_bias", "mlp_bias"] {
            if field(obj, flag) == Some(&Value::Bool(true)) {
                return Err(Error::InvalidConfig(format!(
                    "config.json: `{flag}: true` is not supported (Llama has no biases)"
                )));
            }
        }
        if let Some(act) = field(obj, "hidden_act").and_then(Value::as_str) {
            if act != "silu" {
                return Err(Error::InvalidConfig(format!(
                    "config.json: hidden_act `{act}` is not supported (only silu)"
                )));
            }
        }
        let hidden_size = req_usize(obj, "hidden_size")?;
        let intermediate_size = req_usize(obj, "intermediate_size")?;
        let num_layers = req_usize(obj, "num_hidden_layers")?;
        let num_heads = req_usize(obj, "num_attention_heads")?;
        let num_kv_heads = opt_usize(obj, "num_key_value_heads")?.unwrap_or(num_heads);
        let vocab_size = req_usize(obj, "vocab_size")?;
        let max_position_embeddings = opt_usize(obj, "max_position_embeddings")?.unwrap_or(2048);
        if num_heads % num_kv_heads != 0 {
            return Err(Error::InvalidConfig(format!(
                "config.json: num_attention_heads ({num_heads}) is not a multiple of num_key_value_heads ({num_kv_heads})"
            )));
        }
        let head_dim = match opt_usize(obj, "head_dim")? {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(Error::InvalidConfig(format!(
                    "config.json: hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_heads}) and no head_dim is given"
                )))
            }
        };
        if head_dim % 2 != 0 {
            return Err(Error::InvalidConfig(format!("config.json: head_dim ({head_dim}) must be even for RoPE")));
        }
        let rms_norm_eps = opt_f64(obj, "rms_norm_eps")?.unwrap_or(1e-6);
        // transformers 5.x writes `rope_parameters` {rope_theta, rope_type, factor, ...} instead of
        // top-level `rope_theta` + `rope_scaling`; both layouts are read.
        let rope_params = field(obj, "rope_parameters").and_then(Value::as_object);
        let rope_theta = match rope_params {
            Some(rp) if field(rp, "rope_theta").is_some() => opt_f64(rp, "rope_theta")?.unwrap_or(10000.0),
            _ => opt_f64(obj, "rope_theta")?.unwrap_or(10000.0),
        };
        let from_params = field(obj, "rope_scaling").is_none() && rope_params.is_some();
        let scaling_value = field(obj, "rope_scaling").or_else(|| field(obj, "rope_parameters"));
        let rope_scaling = match scaling_value {
            None => None,
            Some(Value::Object(rs)) => {
                let ty = field(rs, "rope_type").or_else(|| field(rs, "type")).and_then(Value::as_str);
                match ty {
                    Some("llama3") => {
                        let num = |k: &str| -> Result<f64> {
                            opt_f64(rs, k)?.ok_or_else(|| {
                                Error::InvalidConfig(format!("config.json: rope_scaling.{k} is missing"))
                            })
                        };
                        let s = Llama3Scaling {
                            factor: num("factor")?,
                            low_freq_factor: num("low_freq_factor")?,
                            high_freq_factor: num("high_freq_factor")?,
                            original_max_position_embeddings: num("original_max_position_embeddings")?,
                        };
                        if s.high_freq_factor <= s.low_freq_factor {
                            return Err(Error::InvalidConfig(
                                "config.json: rope_scaling.high_freq_factor must exceed low_freq_factor".into(),
                            ));
                        }
                        Some(s)
                    }
                    Some("default") => None,
                    None if from_params => None,
                    other => {
                        return Err(Error::InvalidConfig(format!(
                            "config.json: rope_scaling type {:?} is not supported (only llama3)",
                            other.unwrap_or("<missing>")
                        )))
                    }
                }
            }
            Some(v) => {
                return Err(Error::InvalidConfig(format!(
                    "config.json: rope_scaling must be an object or null, got {v}"
                )))
            }
        };
        let tie_word_embeddings = match field(obj, "tie_word_embeddings") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(Error::InvalidConfig(format!(
                    "config.json: tie_word_embeddings must be a boolean, got {v}"
                )))
            }
        };
        let bos = token_ids(field(obj, "bos_token_id"), "bos_token_id")?;
        let eos_token_ids = token_ids(field(obj, "eos_token_id"), "eos_token_id")?;
        Ok(Config {
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            max_position_embeddings,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings,
            bos_token_id: bos.first().copied(),
            eos_token_ids,
        })
    }

    /// RoPE inverse frequencies (length `head_dim / 2`), computed like HF: `1 / theta^(2i/d)` in f32,
    /// then the llama3 band rewrite when configured.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        (0..d / 2)
            .map(|i| {
                let exponent = (2 * i) as f32 / d as f32;
                let inv = 1.0f32 / (self.rope_theta as f32).powf(exponent);
                match &self.rope_scaling {
                    None => inv,
                    Some(s) => {
                        let inv64 = inv as f64;
                        let wavelen = 2.0 * std::f64::consts::PI / inv64;
                        let lo = s.original_max_position_embeddings / s.low_freq_factor;
                        let hi = s.original_max_position_embeddings / s.high_freq_factor;
                        let out = if wavelen < hi {
                            inv64
                        } else if wavelen > lo {
                            inv64 / s.factor
                        } else {
                            let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                                / (s.high_freq_factor - s.low_freq_factor);
                            (1.0 - smooth) * inv64 / s.factor + smooth * inv64
                        };
                        out as f32
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"hidden_size":64,"intermediate_size":172,"num_hidden_layers":5,
        "num_attention_heads":8,"num_key_value_heads":4,"vocab_size":512,"rms_norm_eps":1e-05,
        "max_position_embeddings":512,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}"#;

    #[test]
    fn parses_defaults_and_derived_fields() -> Result<()> {
        let c = Config::from_json_str(BASE)?;
        assert_eq!(c.head_dim, 8);
        assert_eq!(c.num_kv_heads, 4);
        assert_eq!(c.eos_token_ids, vec![2]);
        assert_eq!(c.bos_token_id, Some(1));
        assert!(c.tie_word_embeddings);
        assert_eq!(c.rope_theta, 10000.0);
        Ok(())
    }

    #[test]
    fn eos_list_and_explicit_head_dim() -> Result<()> {
        let c = Config::from_json_str(&BASE.replace("\"eos_token_id\":2", "\"eos_token_id\":[2,7],\"head_dim\":16"))?;
        assert_eq!(c.eos_token_ids, vec![2, 7]);
        assert_eq!(c.head_dim, 16);
        Ok(())
    }

    #[test]
    fn llama3_scaling_matches_hand_computed_bands() -> Result<()> {
        // Llama-3.1 values: factor 8, low 1, high 4, original context 8192, theta 500000, head_dim 128.
        let text = r#"{"hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":1,"num_attention_heads":32,
            "num_key_value_heads":8,"vocab_size":128256,"rope_theta":500000.0,
            "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192,"rope_type":"llama3"}}"#;
        let c = Config::from_json_str(text)?;
        let inv = c.rope_inv_freq();
        // i = 0: wavelen 2π < 2048 → unchanged (1.0).
        assert_eq!(inv[0], 1.0);
        // i = 63: inv = 500000^(-126/128); wavelen ≈ 2.4e6 > 8192 → divided by 8.
        let raw = 1.0f64 / 500000f64.powf(126.0 / 128.0);
        assert!(((inv[63] as f64) - raw / 8.0).abs() / (raw / 8.0) < 1e-5);
        // A band-middle index: wavelen between 2048 and 8192 gets the smooth blend.
        let band = (0..64).find(|&i| {
            let w = 2.0 * std::f64::consts::PI * 500000f64.powf(2.0 * i as f64 / 128.0);
            w > 2048.0 && w < 8192.0
        });
        let Some(i) = band else { return Err(Error::InvalidConfig("no index in the blended band".into())) };
        let raw = 1.0f64 / 500000f64.powf(2.0 * i as f64 / 128.0);
        let w = 2.0 * std::f64::consts::PI / raw;
        let s = (8192.0 / w - 1.0) / 3.0;
        let want = (1.0 - s) * raw / 8.0 + s * raw;
        assert!(((inv[i] as f64) - want).abs() / want < 1e-5);
        Ok(())
    }

    #[test]
    fn rejects_bad_configs_with_named_fields() {
        let cases = [
            ("{", "not valid JSON"),
            ("[]", "expected a JSON object"),
            (r#"{"hidden_size":64}"#, "intermediate_size"),
            (&BASE.replace("\"num_key_value_heads\":4", "\"num_key_value_heads\":3"), "multiple"),
            (&BASE.replace("\"hidden_size\":64", "\"hidden_size\":-64"), "hidden_size"),
            (
                &BASE.replace("\"tie_word_embeddings\":true", "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":2.0}"),
                "yarn",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_json_str(text).unwrap_err();
            assert_eq!(err.kind(), "invalid_config");
            assert!(err.to_string().contains(needle), "{err} should mention {needle}");
        }
    }
}
