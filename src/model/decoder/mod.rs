//! Decoder language models with adapter slots: OPT ([`opt`]) and the Llama family (Llama, Qwen2:
//! [`llama`]), under a sequence-classification head ([`DecoderClassifier`]) that reads the last
//! non-pad token, as transformers' `*ForSequenceClassification`.
//!
//! Every linear map of every layer is a LoRA slot (the slot table of
//! [`crate::adapters::backbone`] names them and sizes them, grouped-query `k_proj` / `v_proj`
//! included), and each layer has the four LoRA-adapted shortcuts. The method file places them in
//! post-LN OPT; in a pre-norm layer there is no norm after the residual sums, so they join the
//! residual stream directly:
//!
//! ```text
//! h   = Attn(N1(x)) + S_residual1(x) + S_shortcut2(p)    // p: the previous layer's h
//! out = FFN(N2(h))  + S_residual2(h) + S_shortcut1(x)
//! ```
//!
//! `residual*` are identity + low rank (disabled: the plain residual), `shortcut*` zero + low rank
//! (disabled: nothing); with B = 0 each is an exact no-op, as in BERT. `p`, "the previous layer's
//! feed-forward input", is read as the residual stream entering the previous feed-forward block
//! (its `h`), before that block's norm, so that all four shortcuts connect points of the one
//! residual stream. Post-LN OPT (OPT-350M) places them inside the norms as BERT does
//! ([`crate::adapters::shortcut`], `InsideNorm`); the reference's extra-norm placement is not
//! offered for decoders.
//!
//! Dropout of the backbones is left out (they always compute the evaluation-mode function): the
//! fused dropout plumbing of the BERT layers does not carry over, and the method's reference
//! protocol fine-tunes adapters only. LoRA dropout applies in training mode.

pub mod classifier;
pub mod common;
mod io;
pub mod llama;
pub mod opt;
mod slots;

pub use classifier::{DecoderBackbone, DecoderClassifier};
pub use llama::{LlamaConfig, LlamaModel};
pub use opt::{OptConfig, OptDecoder};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{SlotId, SlotKind};
    use candle_core::{DType, Device, Tensor};

    fn tiny_opt(pre: bool, proj: Option<usize>) -> OptConfig {
        OptConfig {
            vocab_size: 40,
            hidden_size: 16,
            num_hidden_layers: 2,
            ffn_dim: 24,
            max_position_embeddings: 16,
            do_layer_norm_before: pre,
            word_embed_proj_dim: proj,
            num_attention_heads: 4,
            init_std: 0.3,
            ..OptConfig::default()
        }
    }

    fn tiny_llama(qwen: bool) -> LlamaConfig {
        LlamaConfig {
            model_type: if qwen { "qwen2" } else { "llama" }.into(),
            vocab_size: 40,
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            initializer_range: 0.3,
            pad_token_id: Some(0),
            ..LlamaConfig::default()
        }
    }

    fn models() -> Vec<DecoderClassifier> {
        let (d, dev) = (DType::F32, Device::Cpu);
        vec![
            DecoderClassifier::random_opt(&tiny_opt(true, None), 3, d, &dev, 1).unwrap(),
            DecoderClassifier::random_opt(&tiny_opt(false, Some(8)), 3, d, &dev, 2).unwrap(),
            DecoderClassifier::random_llama(&tiny_llama(false), 3, d, &dev, 3).unwrap(),
            DecoderClassifier::random_llama(&tiny_llama(true), 3, d, &dev, 4).unwrap(),
        ]
    }

    fn batch_for(m: &DecoderClassifier) -> (Tensor, Tensor) {
        let pad = m.backbone().pad_token_id().unwrap_or(0);
        let ids = Tensor::new(&[[5u32, 9, 3, 7], [4, 8, pad, pad]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 0, 0]], &Device::Cpu).unwrap();
        (ids, mask)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn fresh_slots_everywhere_are_exact_no_ops_and_trained_ones_are_not() {
        for mut m in models() {
            let (ids, mask) = batch_for(&m);
            let base = m.forward(&ids, &mask, None).unwrap();
            assert_eq!(base.dims(), [2, 3]);
            let slots = m.slot_table().all_slots();
            for s in &slots {
                m.add_slot(*s, 2, 4.0).unwrap();
            }
            let same = m.forward(&ids, &mask, None).unwrap();
            assert_eq!(max_diff(&base, &same), 0.0, "{}", m.architecture());
            // Non-zero B on every slot changes the logits, and merging LoRA keeps them.
            for s in &slots {
                let ad = m.adapter(*s).unwrap();
                ad.b.set(&(ad.b.ones_like().unwrap() * 0.05).unwrap())
                    .unwrap();
            }
            let moved = m.forward(&ids, &mask, None).unwrap();
            assert!(max_diff(&base, &moved) > 1e-3, "{}", m.architecture());
            let merged = m.merged().unwrap().forward(&ids, &mask, None).unwrap();
            assert!(max_diff(&moved, &merged) < 1e-4, "{}", m.architecture());
        }
    }

    #[test]
    fn causal_pads_do_not_leak_and_trailing_tokens_do_not_matter() {
        for m in models() {
            let (ids, mask) = batch_for(&m);
            let full = m.forward(&ids, &mask, None).unwrap();
            // Row 1 alone without its pads gives the same logits.
            let short = Tensor::new(&[[4u32, 8]], &Device::Cpu).unwrap();
            let alone = m
                .forward(&short, &short.ones_like().unwrap(), None)
                .unwrap();
            let row1 = full.narrow(0, 1, 1).unwrap();
            assert!(max_diff(&row1, &alone) < 1e-5, "{}", m.architecture());
        }
    }

    #[test]
    fn the_read_out_follows_the_pad_id_it_is_given() {
        // A Llama without a pad id reads the last position; given the id a tokenizer pads
        // with (eos 2 here), a right-padded row reads its last real token.
        let cfg = LlamaConfig {
            pad_token_id: None,
            ..tiny_llama(false)
        };
        let mut m = DecoderClassifier::random_llama(&cfg, 3, DType::F32, &Device::Cpu, 5).unwrap();
        assert_eq!(m.pad_token_id(), None);
        let ids = Tensor::new(&[[4u32, 8, 2, 2]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0, 0]], &Device::Cpu).unwrap();
        let short = Tensor::new(&[[4u32, 8]], &Device::Cpu).unwrap();
        let alone = m
            .forward(&short, &short.ones_like().unwrap(), None)
            .unwrap();
        let at_last = m.forward(&ids, &mask, None).unwrap();
        assert!(max_diff(&at_last, &alone) > 1e-4, "read at a pad position");
        m.set_pad_token_id(Some(2));
        let read = m.forward(&ids, &mask, None).unwrap();
        assert!(max_diff(&read, &alone) < 1e-5);
        assert_eq!(m.deep_clone().unwrap().pad_token_id(), Some(2));
    }

    #[test]
    fn gate_slots_exist_only_in_gated_models_and_counts_follow_the_table() {
        let ms = models();
        let opt = &ms[0];
        let llama = &ms[2];
        let gate = SlotId::new(0, SlotKind::FfnGate);
        assert!(!opt.has_slot(gate));
        assert!(llama.has_slot(gate));
        let mut l = llama.clone();
        l.add_slot(SlotId::new(1, SlotKind::Key), 2, 4.0).unwrap();
        l.add_slot(gate, 2, 4.0).unwrap();
        // k: 2 * (16 + 2 * 4); gate: 2 * (16 + 24); head 3 * 16.
        assert_eq!(l.trainable_params(), 2 * 24 + 2 * 40 + 48);
        let names: Vec<String> = l.trainable_vars().into_iter().map(|(k, _)| k).collect();
        assert!(
            names.contains(&"base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight".into())
        );
        assert!(names.contains(&"base_model.model.score.weight".into()));
    }
}
