//! HF tensor names of `LlamaForCausalLM`.

pub const EMBED: &str = "model.embed_tokens.weight";
pub const NORM: &str = "model.norm.weight";
pub const LM_HEAD: &str = "lm_head.weight";
pub const ATTN_NORM: &str = "input_layernorm.weight";
pub const FFN_NORM: &str = "post_attention_layernorm.weight";
pub const Q: &str = "self_attn.q_proj.weight";
pub const K: &str = "self_attn.k_proj.weight";
pub const V: &str = "self_attn.v_proj.weight";
pub const O: &str = "self_attn.o_proj.weight";
pub const GATE: &str = "mlp.gate_proj.weight";
pub const UP: &str = "mlp.up_proj.weight";
pub const DOWN: &str = "mlp.down_proj.weight";

/// `model.layers.{i}.{suffix}`.
pub fn layer(i: usize, suffix: &str) -> String {
    format!("model.layers.{i}.{suffix}")
}
