//! Tokenisation matches the reference tokenizers, and tokenised GLUE data batches correctly.
//! Needs the model (`heterolora fetch model`) and the GLUE data (`heterolora fetch glue`).

use heterolora::assets;
use heterolora::candle_core::Device;
use heterolora::data::{load_split, Batcher, Split, Task, Tokenizer};

/// `(MRPC train row or None for the text below, max_len, input_ids, token_type_ids)`, printed by
/// `python3 scripts/reference_tokenize.py` (transformers' pure-Python
/// `BertTokenizer` and `BertTokenizerFast` agree on all of them).
#[allow(clippy::type_complexity)]
const REFERENCE: &[(Option<usize>, usize, &[u32], &[u32])] = &[
    (
        Some(0),
        128,
        &[
            101, 2572, 3217, 5831, 5496, 2010, 2567, 1010, 3183, 2002, 2170, 1000, 1996, 7409,
            1000, 1010, 1997, 9969, 4487, 23809, 3436, 2010, 3350, 1012, 102, 7727, 2000, 2032,
            2004, 2069, 1000, 1996, 7409, 1000, 1010, 2572, 3217, 5831, 5496, 2010, 2567, 1997,
            9969, 4487, 23809, 3436, 2010, 3350, 1012, 102,
        ],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ],
    ),
    (
        Some(1),
        128,
        &[
            101, 9805, 3540, 11514, 2050, 3079, 11282, 2243, 1005, 1055, 2077, 4855, 1996, 4677,
            2000, 3647, 4576, 1999, 2687, 2005, 1002, 1016, 1012, 1019, 4551, 1012, 102, 9805,
            3540, 11514, 2050, 4149, 11282, 2243, 1005, 1055, 1999, 2786, 2005, 1002, 6353, 2509,
            2454, 1998, 2853, 2009, 2000, 3647, 4576, 2005, 1002, 1015, 1012, 1022, 4551, 1999,
            2687, 1012, 102,
        ],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1,
        ],
    ),
    (
        Some(2),
        128,
        &[
            101, 2027, 2018, 2405, 2019, 15147, 2006, 1996, 4274, 2006, 2238, 2184, 1010, 5378,
            1996, 6636, 2005, 5096, 1010, 2002, 2794, 1012, 102, 2006, 2238, 2184, 1010, 1996,
            2911, 1005, 1055, 5608, 2018, 2405, 2019, 15147, 2006, 1996, 4274, 1010, 5378, 1996,
            14792, 2005, 5096, 1012, 102,
        ],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ],
    ),
    (
        Some(0),
        24,
        &[
            101, 2572, 3217, 5831, 5496, 2010, 2567, 1010, 3183, 2002, 2170, 102, 7727, 2000, 2032,
            2004, 2069, 1000, 1996, 7409, 1000, 1010, 2572, 102,
        ],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ],
    ),
    (
        None,
        128,
        &[101, 7668, 2139, 3900, 24728, 1516, 15743, 13746, 999, 102],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ),
];
const OWN_TEXT: &str = "Café déjà vu – naïve résumé!";

fn model_dir() -> std::path::PathBuf {
    assets::require_model_dir(assets::DEFAULT_MODEL).unwrap_or_else(|e| panic!("{e}"))
}

fn glue() -> std::path::PathBuf {
    assets::require_glue_dir(Task::Mrpc).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn ids_match_the_reference_tokenizer() {
    let train = load_split(&glue(), Task::Mrpc, Split::Train).unwrap();
    for &(row, max_len, ids, types) in REFERENCE {
        let tok = Tokenizer::from_model_dir(model_dir(), max_len).unwrap();
        let (a, b) = match row {
            Some(r) => (
                train.examples[r].text_a.as_str(),
                train.examples[r].text_b.as_deref(),
            ),
            None => (OWN_TEXT, None),
        };
        let enc = tok.encode_pair(a, b).unwrap();
        assert_eq!(enc.ids, ids, "row {row:?} max_len {max_len}");
        assert_eq!(enc.type_ids, types, "row {row:?} max_len {max_len}");
    }
}

#[test]
fn encoded_mrpc_batches_pad_dynamically() {
    let tok = Tokenizer::from_model_dir(model_dir(), 64).unwrap();
    assert_eq!(tok.vocab_size(), 30522);
    let dev = load_split(&glue(), Task::Mrpc, Split::Dev).unwrap();
    let enc = tok.encode_dataset(&dev).unwrap();
    assert_eq!(enc.len(), 408);
    // No fixed padding to 128 (the tokenizer file's own setting) and truncation at 64.
    let lengths = enc.lengths();
    assert!(lengths.iter().all(|&l| (5..=64).contains(&l)));
    assert!(lengths.iter().any(|&l| l < 64) && lengths.contains(&64));
    // Each example equals a one-by-one encoding.
    let e7 = tok
        .encode_pair(&dev.examples[7].text_a, dev.examples[7].text_b.as_deref())
        .unwrap();
    assert_eq!(enc.examples[7].ids, e7.ids);

    let batcher = Batcher::for_dataset(&enc, 16, 42).unwrap();
    let batches = batcher.epoch(0);
    assert_eq!(batches.len(), 26);
    let b = enc.batch(&batches[0], &Device::Cpu).unwrap();
    let longest = batches[0].iter().map(|&i| lengths[i]).max().unwrap();
    assert_eq!(b.input_ids.dims(), &[16, longest]);
    let mask = b.attention_mask.to_vec2::<u32>().unwrap();
    for (row, &i) in batches[0].iter().enumerate() {
        assert_eq!(mask[row].iter().sum::<u32>() as usize, lengths[i]);
    }
    let labels = b.labels.to_vec1::<u32>().unwrap();
    for (row, &i) in batches[0].iter().enumerate() {
        assert_eq!(Some(labels[row]), dev.examples[i].label.class());
    }
    // Eval batches: sorted by length, every example exactly once.
    let mut seen: Vec<usize> = batcher.eval_batches().concat();
    assert!(seen.windows(2).all(|w| lengths[w[0]] <= lengths[w[1]]));
    seen.sort();
    assert_eq!(seen, (0..408).collect::<Vec<_>>());
}

#[test]
fn stsb_batches_carry_float_scores() {
    let tok = Tokenizer::from_model_dir(model_dir(), 128).unwrap();
    let dev = load_split(&glue(), Task::Stsb, Split::Dev).unwrap();
    let enc = tok.encode_dataset(&dev).unwrap();
    let b = enc.batch(&[0, 1], &Device::Cpu).unwrap();
    assert_eq!(b.labels.to_vec1::<f32>().unwrap(), vec![5.0, 4.75]);
}

#[test]
fn missing_tokenizer_says_which_fetch_to_run() {
    let err = Tokenizer::from_file("/nonexistent/tokenizer.json", 128)
        .unwrap_err()
        .to_string();
    assert!(err.contains("heterolora fetch model"), "{err}");
    assert!(Tokenizer::from_model_dir(model_dir(), 2).is_err());
}
