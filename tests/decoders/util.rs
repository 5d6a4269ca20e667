//! Shared helpers of the decoder integration tests: the fixture folders of
//! `tests/fixtures/decoders/` (random-weight models with tiny tokenizers, written by
//! `scripts/make_decoder_fixtures.py`) and a GLUE-format MRPC folder over their words.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `tests/fixtures/decoders/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decoders")
        .join(name)
}

/// The words the fixture tokenizers were trained on (the script's `WORDS`): other characters
/// are not in their 64-id vocabularies.
pub const WORDS: [&str; 19] = [
    "the", "a", "cat", "dog", "sat", "ran", "on", "to", "mat", "park", "big", "small", "red",
    "sun", "day", "is", "was", "and", "not",
];

/// MRPC-layout rows: label 1 when the first sentence starts with "the", 0 with "a" (the
/// last-token head sees it through the causal attention).
pub fn mrpc_rows(n: usize, seed: usize) -> String {
    let mut s = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n".to_string();
    for i in 0..n {
        let label = (i * 7 + seed) % 3 % 2;
        let w = |k: usize| WORDS[2 + k % (WORDS.len() - 2)];
        let a = format!(
            "{} {} {} {}",
            if label == 1 { "the" } else { "a" },
            w(i + seed),
            w(i * 3 + 1),
            w(i * 5 + seed + 2)
        );
        let b = format!("{} {} {}", w(i * 2 + seed), w(i + 4), w(i * 7 + 3));
        s += &format!("{label}\t{}\t{}\t{a}\t{b}\n", 1000 + i, 2000 + i);
    }
    s
}

/// A GLUE root under `dir` with `MRPC/train.tsv` (`n_train` rows) and `MRPC/dev.tsv`
/// (`n_dev` rows).
pub fn glue_root(dir: &Path, n_train: usize, n_dev: usize) -> PathBuf {
    let root = dir.join("glue");
    std::fs::create_dir_all(root.join("MRPC")).unwrap();
    std::fs::write(root.join("MRPC/train.tsv"), mrpc_rows(n_train, 1)).unwrap();
    std::fs::write(root.join("MRPC/dev.tsv"), mrpc_rows(n_dev, 2)).unwrap();
    root
}

/// A copy of fixture `name` under `dir` with `edit` applied to its `config.json` (e.g. the
/// pad id removed, as real Llama checkpoints ship).
pub fn fixture_copy(
    name: &str,
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> PathBuf {
    let src = fixture(name);
    let dst = dir.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    let cfg = dst.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    edit(v.as_object_mut().unwrap());
    std::fs::write(&cfg, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    dst
}

/// Runs a command (the `heterolora` binary) to the end: (succeeded, stdout, stderr).
pub fn output_of(cmd: &mut std::process::Command) -> (bool, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
