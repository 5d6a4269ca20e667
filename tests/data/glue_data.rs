//! Parses every GLUE file and checks the official split sizes and label balances.
//! Data: HETEROLORA_GLUE_DIR or datasets/glue (run `heterolora fetch glue --from DIR` first).

use heterolora::assets;
use heterolora::data::{load_split, Label, Split, Task};
use std::path::{Path, PathBuf};

fn glue() -> PathBuf {
    assets::require_glue_dir(Task::Mrpc).unwrap_or_else(|e| panic!("{e}"))
}

/// (task, split, rows, class counts by id or None).
const EXPECTED: &[(Task, Split, usize, Option<[usize; 2]>)] = &[
    (Task::Mrpc, Split::Train, 3668, Some([1194, 2474])),
    (Task::Mrpc, Split::Dev, 408, Some([129, 279])),
    (Task::Mrpc, Split::Test, 1725, None),
    // RTE / QNLI: class 0 = entailment.
    (Task::Rte, Split::Train, 2490, Some([1249, 1241])),
    (Task::Rte, Split::Dev, 277, Some([146, 131])),
    (Task::Rte, Split::Test, 3000, None),
    (Task::Sst2, Split::Train, 67349, Some([29780, 37569])),
    (Task::Sst2, Split::Dev, 872, Some([428, 444])),
    (Task::Sst2, Split::Test, 1821, None),
    (Task::Cola, Split::Train, 8551, Some([2528, 6023])),
    (Task::Cola, Split::Dev, 1043, Some([322, 721])),
    (Task::Cola, Split::Test, 1063, None),
    (Task::Stsb, Split::Train, 5749, None),
    (Task::Stsb, Split::Dev, 1500, None),
    (Task::Stsb, Split::Test, 1379, None),
    (Task::Qnli, Split::Dev, 5463, Some([2702, 2761])),
    (Task::Qnli, Split::Test, 5463, None),
    (Task::Wnli, Split::Train, 635, None),
    (Task::Wnli, Split::Dev, 71, None),
    (Task::Wnli, Split::Test, 146, None),
];

#[test]
fn every_split_has_the_official_size_and_balance() {
    let root = glue();
    for &(task, split, rows, classes) in EXPECTED {
        let ds = load_split(&root, task, split).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ds.len(), rows, "{task} {split}");
        if let Some(c) = classes {
            assert_eq!(ds.class_counts(), c.to_vec(), "{task} {split}");
        }
        if split == Split::Test {
            assert!(ds.examples.iter().all(|e| e.label == Label::None), "{task}");
        } else {
            assert!(ds.is_labelled(), "{task} {split}");
        }
        assert_eq!(ds.examples[0].text_b.is_some(), task.is_pair(), "{task}");
        // Line numbers point into the file: header (if any) is line 1.
        let first = if task == Task::Cola && split != Split::Test {
            1
        } else {
            2
        };
        assert_eq!(ds.examples[0].line, first, "{task} {split}");
        assert_eq!(ds.examples.last().unwrap().line, rows + first - 1);
    }
}

#[test]
fn stsb_scores_and_mrpc_text_are_read_verbatim() {
    let root = glue();
    let ds = load_split(&root, Task::Stsb, Split::Dev).unwrap();
    let scores: Vec<f32> = ds.labels_f32().unwrap();
    assert!(scores.iter().all(|s| (0.0..=5.0).contains(s)));
    assert_eq!(scores[0], 5.0);
    assert_eq!(scores[1], 4.75);
    assert!(scores.contains(&0.0));
    // No quote handling: MRPC keeps its `"` characters, and the BOM is not part of any text.
    let mrpc = load_split(&root, Task::Mrpc, Split::Dev).unwrap();
    assert!(mrpc.examples[0]
        .text_b
        .as_deref()
        .unwrap()
        .starts_with("\" The"));
    assert!(mrpc.examples.iter().all(|e| !e.text_a.contains('\u{feff}')));
    // SST-2 sentences keep their trailing space, as GLUE's processors do.
    let sst = load_split(&root, Task::Sst2, Split::Dev).unwrap();
    assert!(sst.examples[0].text_a.ends_with(". "));
}

#[test]
fn qnli_train_is_missing_with_a_clear_error() {
    let root = glue();
    if root.join("QNLI/train.tsv").is_file() {
        // A full download has it; then it must have the official size.
        let ds = load_split(&root, Task::Qnli, Split::Train).unwrap();
        assert_eq!(ds.len(), 104743);
        return;
    }
    let err = load_split(&root, Task::Qnli, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("QNLI") && err.contains("heterolora fetch glue qnli"),
        "{err}"
    );
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/glue_malformed")
}

#[test]
fn malformed_rows_fail_with_file_line_and_reason() {
    let root = fixtures();
    let cases = [
        (
            Task::Rte,
            Split::Dev,
            "RTE/dev.tsv:4:",
            "expected 4 tab-separated fields",
        ),
        (Task::Stsb, Split::Dev, "STS-B/dev.tsv:3:", "`n/a`"),
        (Task::Cola, Split::Train, "CoLA/train.tsv:2:", "label `2`"),
    ];
    for (task, split, at, reason) in cases {
        let err = load_split(&root, task, split).unwrap_err().to_string();
        assert!(err.contains(at) && err.contains(reason), "{err}");
    }
    let ok = load_split(&root, Task::Mrpc, Split::Dev).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok.examples[0].text_a, "She said \" yes \" .");
}

#[test]
fn missing_files_name_the_fetch_command() {
    let err = load_split(&fixtures(), Task::Sst2, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SST-2/train.tsv") && err.contains("heterolora fetch glue sst2"),
        "{err}"
    );
}
