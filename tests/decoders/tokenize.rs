//! Decoder tokenisation against transformers: the tiny tokenizers of the decoder fixtures
//! (byte-level BPE as OPT and Qwen2, SentencePiece-style BPE with Llama's `<s>` template, and two
//! folders whose `add_bos_token`/`add_eos_token` disagree with `tokenizer.json`'s post-processor,
//! which transformers keeps; written
//! by `scripts/make_decoder_fixtures.py --tokenizers`) give transformers' ids for sentence pairs,
//! truncation included (`tokenizer_reference.json`: `AutoTokenizer` on the folder, `tok(a, b)`),
//! and the pad id the batches use is the one the classifier reads its last token before, with
//! `eos_token_id` standing in when the folder names no pad.

use crate::util::{fixture, fixture_copy};
use candle_core::{DType, Device, Tensor};
use heterolora::data::{EncodedDataset, EncodedExample, Label, Split, Task, Tokenizer};
use heterolora::model::decoder::DecoderClassifier;
use heterolora::model::{AdaptedClassifier, AssetLoader, Classifier};

#[derive(serde::Deserialize)]
struct Case {
    a: String,
    b: Option<String>,
    max_length: Option<usize>,
    ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    tokenizer_class: String,
    pad_token_id: Option<u32>,
    cases: Vec<Case>,
}

fn reference(name: &str) -> Reference {
    let p = fixture(name).join("tokenizer_reference.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `.venv-torch/bin/python scripts/make_decoder_fixtures.py --tokenizers`)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn pair_ids_equal_transformers_for_byte_level_and_llama_style_tokenizers() {
    for name in ["opt_pre", "qwen2", "llama", "llama_flags", "opt_flags"] {
        let r = reference(name);
        let mut checked = 0;
        for c in &r.cases {
            let tok = Tokenizer::from_model_dir(fixture(name), c.max_length.unwrap_or(64)).unwrap();
            let got = tok.encode_pair(&c.a, c.b.as_deref()).unwrap().ids;
            assert_eq!(
                got, c.ids,
                "{name} ({}): {:?} / {:?}",
                r.tokenizer_class, c.a, c.b
            );
            checked += 1;
        }
        assert_eq!(checked, 5, "{name}");
        println!(
            "{name}: {} cases equal to transformers' {}",
            checked, r.tokenizer_class
        );
    }
    // Llama's template: <s> before each sentence of a pair; OPT's: </s> before each.
    let llama = reference("llama");
    assert_eq!(llama.cases[0].ids[0], 1);
    assert_eq!(llama.cases[0].ids.iter().filter(|&&i| i == 1).count(), 2);
    let opt = reference("opt_pre");
    assert_eq!(opt.cases[0].ids.iter().filter(|&&i| i == 2).count(), 2);
    // tokenizer_config.json's add_bos_token / add_eos_token do not override tokenizer.json's
    // post-processor in transformers 5: a Llama folder asking for </s> gets Llama's template
    // without it, and an OPT folder asking for a leading </s> over a post-processor that adds
    // nothing gets no special token at all.
    let flags = reference("llama_flags");
    for (f, l) in flags.cases.iter().zip(&llama.cases) {
        assert_eq!(f.ids, l.ids);
    }
    assert!(reference("opt_flags")
        .cases
        .iter()
        .all(|c| !c.ids.contains(&2)));
}

#[test]
fn batches_pad_with_the_id_the_classifier_reads_before() {
    for (name, pad) in [("opt_pre", 1), ("qwen2", 0), ("llama", 0)] {
        let tok = Tokenizer::from_model_dir(fixture(name), 32).unwrap();
        assert_eq!(tok.pad_id(), pad, "{name}: config.json's pad_token_id");
        let m = DecoderClassifier::from_pretrained(&fixture(name), 2, DType::F32, &Device::Cpu, 0)
            .unwrap();
        assert_eq!(m.pad_token_id(), Some(pad), "{name}");
        let r = reference(name);
        if let Some(hf) = r.pad_token_id {
            assert_eq!(hf, pad, "{name}: transformers' pad token");
        }
    }
}

/// A Llama folder whose config has no pad_token_id (as Meta's checkpoints): the tokenizer
/// declares none either, so both sides take eos_token_id 2, and a right-padded row gives the
/// logits of the same row unpadded.
#[test]
fn without_a_pad_id_eos_pads_and_right_padding_reads_the_last_real_token() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixture_copy("llama", dir.path(), |c| {
        c.remove("pad_token_id");
    });
    let tok = Tokenizer::from_model_dir(&m, 32).unwrap();
    assert_eq!(tok.pad_id(), 2, "eos_token_id");
    let loaded = AssetLoader::new(Task::Mrpc)
        .model_dir(Some(&m))
        .splits(false, false)
        .load()
        .unwrap();
    let model = loaded.model().unwrap();
    let Classifier::Decoder(d) = model else {
        panic!("a llama folder loads a decoder")
    };
    assert_eq!(d.pad_token_id(), Some(2));
    assert_eq!(loaded.tokenizer.pad_id(), 2);

    let long = tok
        .encode_pair("the cat sat on the mat", Some("a dog"))
        .unwrap();
    let short = tok.encode_pair("the day", None).unwrap();
    let ds = EncodedDataset {
        task: Task::Mrpc,
        split: Split::Dev,
        examples: [&long, &short]
            .iter()
            .map(|e| EncodedExample {
                ids: e.ids.clone(),
                type_ids: e.type_ids.clone(),
                label: Label::Class(0),
            })
            .collect(),
        pad_id: tok.pad_id(),
        max_len: 32,
    };
    let batch = ds.batch(&[0, 1], &Device::Cpu).unwrap();
    let ids = batch.input_ids.to_vec2::<u32>().unwrap();
    assert!(
        ids[1][short.ids.len()..].iter().all(|&t| t == 2),
        "right padding with eos"
    );
    let both = model.forward_batch(&batch, None).unwrap();
    let alone = model
        .forward(
            &Tensor::new(short.ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
            None,
            &Tensor::ones((1, short.ids.len()), DType::U32, &Device::Cpu).unwrap(),
            None,
        )
        .unwrap();
    let diff = (both.get(1).unwrap() - alone.get(0).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        diff < 1e-5,
        "padded row differs from the row alone by {diff}"
    );
}
