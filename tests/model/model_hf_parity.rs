//! Our BERT against Hugging Face transformers on all-MiniLM-L6-v2 and three real MRPC pairs.
//! Reference numbers: scripts/make_model_fixtures.py (BertModel, eval mode, eager attention).

use crate::model_util;

use candle_core::{DType, Device, IndexOp, Tensor};
use heterolora::model::SequenceClassifier;
use model_util::*;

#[test]
fn hidden_states_and_pooled_output_match_transformers() {
    let model =
        SequenceClassifier::from_pretrained(&model_dir(), 2, DType::F32, &Device::Cpu, 0).unwrap();
    assert!(
        !model.pooler_was_initialised(),
        "all-MiniLM-L6-v2 ships a pooler"
    );
    let f = fixture("minilm_mrpc.safetensors");
    let (ids, tt, mask) = mrpc_inputs();
    let out = model.encode(&ids, &tt, &mask, None).unwrap();
    assert_eq!(out.hidden_states.len(), 7);
    let positions = f["positions"].to_dtype(DType::U32).unwrap();
    let mut worst = 0f32;
    for (l, h) in out.hidden_states.iter().enumerate() {
        let want = &f[&format!("hidden_{l}")];
        let got = Tensor::stack(
            &(0..3)
                .map(|i| {
                    h.i(i)
                        .unwrap()
                        .index_select(&positions.i(i).unwrap(), 0)
                        .unwrap()
                })
                .collect::<Vec<_>>(),
            0,
        )
        .unwrap();
        let d = max_abs_diff(&got, want);
        assert!(d < 1e-4, "hidden state {l}: max abs diff {d}");
        worst = worst.max(d);
    }
    let d = max_abs_diff(&out.pooled, &f["pooled"]);
    assert!(d < 1e-4, "pooled: max abs diff {d}");
    eprintln!("max abs diff: hidden {worst:.2e}, pooled {d:.2e}");
}

#[test]
fn padding_does_not_change_real_tokens() {
    // The same pair alone (no pads) and inside the padded batch give the same [CLS] state.
    let model =
        SequenceClassifier::from_pretrained(&model_dir(), 2, DType::F32, &Device::Cpu, 0).unwrap();
    let (ids, tt, mask) = mrpc_inputs();
    let lens: Vec<u32> = mask.sum(1).unwrap().to_vec1().unwrap();
    let (i, n) = lens
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map(|(i, n)| (i, *n as usize))
        .unwrap();
    assert!(n < ids.dim(1).unwrap(), "the fixture has a padded example");
    let one = |t: &Tensor| t.i((i..i + 1, 0..n)).unwrap();
    let alone = model
        .encode(&one(&ids), &one(&tt), &one(&mask), None)
        .unwrap();
    let batch = model.encode(&ids, &tt, &mask, None).unwrap();
    let d = max_abs_diff(&alone.pooled, &batch.pooled.i(i..i + 1).unwrap());
    assert!(d < 1e-5, "{d}");
}
