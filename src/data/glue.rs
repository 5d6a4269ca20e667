//! The GLUE TSV reader: per-task layouts, label maps and [`GlueDataset`] ([`Task`] and
//! [`Split`] are in [`super::task`]).
//!
//! The files are the official GLUE task files as `download_glue_data.py` leaves them. They are
//! read the way GLUE's own processors read them: split on tabs only, no quote handling (MRPC and
//! QNLI strings contain `"`), an optional UTF-8 byte-order mark on the first line, and per-task
//! column positions:
//!
//! | task  | header | text_a | text_b | label                          | fields |
//! |-------|--------|--------|--------|--------------------------------|--------|
//! | MRPC  | yes    | 3      | 4      | 0 (`0`/`1`)                     | 5      |
//! | RTE   | yes    | 1      | 2      | 3 (`entailment`/`not_entailment`) | 4    |
//! | QNLI  | yes    | 1      | 2      | 3 (`entailment`/`not_entailment`) | 4    |
//! | WNLI  | yes    | 1      | 2      | 3 (`0`/`1`)                     | 4      |
//! | SST-2 | yes    | 0      | -      | 1 (`0`/`1`)                     | 2      |
//! | CoLA  | **no** | 3      | -      | 1 (`0`/`1`)                     | 4      |
//! | STS-B | yes    | 7      | 8      | last column, float in [0, 5]    | >= 10  |
//!
//! Test files are unlabelled and have their own layout (an `index` column first; CoLA's test
//! file has a header). A row that does not fit fails with the file, the line and the reason.

pub use super::task::{Split, Task};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An example's gold label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Label {
    /// Class id, see [`Task::label_names`].
    Class(u32),
    /// STS-B similarity score in [0, 5].
    Score(f32),
    /// Unlabelled (GLUE test files).
    None,
}

impl Label {
    /// The label as a number: class id or score; `None` for unlabelled examples.
    pub fn as_f32(self) -> Option<f32> {
        match self {
            Label::Class(c) => Some(c as f32),
            Label::Score(s) => Some(s),
            Label::None => None,
        }
    }

    pub fn class(self) -> Option<u32> {
        match self {
            Label::Class(c) => Some(c),
            _ => None,
        }
    }
}

/// One GLUE example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub text_a: String,
    pub text_b: Option<String>,
    pub label: Label,
    /// 1-based line in the source file, for error messages and for tracing predictions back.
    pub line: usize,
}

/// A parsed split of one task.
#[derive(Debug, Clone)]
pub struct GlueDataset {
    pub task: Task,
    pub split: Split,
    pub examples: Vec<Example>,
    /// The file it was read from.
    pub path: PathBuf,
}

impl GlueDataset {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Whether every example carries a label.
    pub fn is_labelled(&self) -> bool {
        self.examples.iter().all(|e| e.label != Label::None)
    }

    /// Gold labels as numbers (class ids or scores); `None` if any example is unlabelled.
    pub fn labels_f32(&self) -> Option<Vec<f32>> {
        self.examples.iter().map(|e| e.label.as_f32()).collect()
    }

    /// Examples per class id (empty for STS-B and unlabelled splits).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.task.label_names().len()];
        for e in &self.examples {
            if let Label::Class(c) = e.label {
                counts[c as usize] += 1;
            }
        }
        if counts.iter().all(|&c| c == 0) {
            counts.clear();
        }
        counts
    }

    /// An HTML table of the first `n` examples.
    pub fn head_html(&self, n: usize) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let names = self.task.label_names();
        let mut h = format!(
            "<table><caption>{} {}: {} examples ({})</caption><thead><tr><th>line</th>\
             <th>text_a</th><th>text_b</th><th>label</th></tr></thead><tbody>",
            self.task,
            self.split,
            self.len(),
            esc(&self.path.display().to_string())
        );
        for e in self.examples.iter().take(n) {
            let label = match e.label {
                Label::Class(c) => names.get(c as usize).copied().unwrap_or("?").to_string(),
                Label::Score(s) => format!("{s:.3}"),
                Label::None => "-".into(),
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.line,
                esc(&e.text_a),
                esc(e.text_b.as_deref().unwrap_or("")),
                label
            ));
        }
        h.push_str("</tbody></table>");
        h
    }

    /// Inline display in evcxr notebooks: the first ten examples.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.head_html(10)
        );
    }

    /// Parses the text of a split file. `path` only names the file in errors.
    pub fn parse(task: Task, split: Split, text: &str, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let examples = parse_rows(task, split, text, &path)?;
        Ok(GlueDataset {
            task,
            split,
            examples,
            path,
        })
    }

    /// Reads and parses one split file.
    pub fn from_file(task: Task, split: Split, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
            Error::parse(&path, line, "not valid UTF-8")
        })?;
        Self::parse(task, split, &text, path)
    }
}

/// Loads `<root>/<TASK>/<split>.tsv`, where `root` is a GLUE folder such as the one
/// [`crate::assets::glue_dir`] returns.
pub fn load_split(root: &Path, task: Task, split: Split) -> Result<GlueDataset> {
    let path = root.join(task.dir_name()).join(split.file_name());
    if !path.is_file() {
        let reason = if task == Task::Qnli && split == Split::Train {
            format!(
                "{} does not exist (the pinned GLUE copy has no QNLI training split)",
                path.display()
            )
        } else {
            format!("{} does not exist", path.display())
        };
        return Err(Error::Asset {
            what: format!("GLUE {task} {split} split"),
            reason,
            hint: format!(
                "Run `heterolora fetch glue {}` (add `--from DIR` for a local copy), or point \
                 HETEROLORA_GLUE_DIR at a folder holding {}/{}",
                task.name(),
                task.dir_name(),
                split.file_name()
            ),
        });
    }
    GlueDataset::from_file(task, split, path)
}

#[derive(Debug, Clone, Copy)]
enum LabelCol {
    Col(usize),
    Last,
    NoLabel,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    /// First field of the header line, or `None` when the file has no header.
    header: Option<&'static str>,
    fields: usize,
    /// STS-B: rows may carry extra columns; the score is the last one.
    at_least: bool,
    a: usize,
    b: Option<usize>,
    label: LabelCol,
}

fn parse_rows(task: Task, split: Split, text: &str, path: &Path) -> Result<Vec<Example>> {
    let layout = task.layout(split);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Only trailing empty lines are tolerated; an empty line inside the file is a broken row.
    let body = text.trim_end_matches(['\n', '\r']);
    if body.is_empty() {
        return Err(Error::parse(path, 1, "the file is empty"));
    }
    let mut lines = body.split('\n').enumerate();
    if let Some(expected) = layout.header {
        let (_, first) = lines.next().expect("non-empty body has a line");
        let first = first.strip_suffix('\r').unwrap_or(first);
        let got = first.split('\t').next().unwrap_or("");
        if got != expected {
            return Err(Error::parse(
                path,
                1,
                format!(
                    "expected a header starting with `{expected}` for {task} {split}, found `{}`",
                    truncate(got, 40)
                ),
            ));
        }
    }
    let mut examples = Vec::with_capacity(body.len() / 64);
    let mut fields: Vec<&str> = Vec::with_capacity(layout.fields + 2);
    for (i, raw) in lines {
        let line = i + 1;
        let row = raw.strip_suffix('\r').unwrap_or(raw);
        fields.clear();
        fields.extend(row.split('\t'));
        let n = fields.len();
        let ok = if layout.at_least {
            n >= layout.fields
        } else {
            n == layout.fields
        };
        if !ok {
            let reason = if row.is_empty() {
                "empty line".to_string()
            } else {
                format!(
                    "expected {}{} tab-separated fields for {task} {split}, found {n}",
                    if layout.at_least { "at least " } else { "" },
                    layout.fields
                )
            };
            return Err(Error::parse(path, line, reason));
        }
        let text_a = fields[layout.a];
        if text_a.trim().is_empty() {
            return Err(Error::parse(
                path,
                line,
                format!("empty text in column {}", layout.a + 1),
            ));
        }
        let text_b = layout.b.map(|b| fields[b].to_string());
        let label = match layout.label {
            LabelCol::NoLabel => Label::None,
            LabelCol::Col(c) => parse_label(task, fields[c], c, path, line)?,
            LabelCol::Last => parse_label(task, fields[n - 1], n - 1, path, line)?,
        };
        examples.push(Example {
            text_a: text_a.to_string(),
            text_b,
            label,
            line,
        });
    }
    Ok(examples)
}

fn parse_label(task: Task, s: &str, col: usize, path: &Path, line: usize) -> Result<Label> {
    if task.is_regression() {
        match s.trim().parse::<f32>() {
            Ok(v) if (0.0..=5.0).contains(&v) => Ok(Label::Score(v)),
            Ok(v) => Err(Error::parse(
                path,
                line,
                format!(
                    "similarity score {v} in column {} is outside [0, 5]",
                    col + 1
                ),
            )),
            Err(_) => Err(Error::parse(
                path,
                line,
                format!(
                    "similarity score `{}` in column {} is not a number",
                    truncate(s, 40),
                    col + 1
                ),
            )),
        }
    } else {
        task.parse_class(s).map(Label::Class).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!(
                    "label `{}` in column {} is not {} ({task})",
                    truncate(s, 40),
                    col + 1,
                    task.class_spelling()
                ),
            )
        })
    }
}

impl Task {
    /// Maps a label as written in the task's files to its class id.
    fn parse_class(self, s: &str) -> Option<u32> {
        match self {
            Task::Rte | Task::Qnli => match s {
                "entailment" => Some(0),
                "not_entailment" => Some(1),
                _ => None,
            },
            Task::Stsb => None,
            _ => match s {
                "0" => Some(0),
                "1" => Some(1),
                _ => None,
            },
        }
    }

    fn class_spelling(self) -> &'static str {
        match self {
            Task::Rte | Task::Qnli => "`entailment` or `not_entailment`",
            _ => "`0` or `1`",
        }
    }

    fn layout(self, split: Split) -> Layout {
        use LabelCol::*;
        let l = |header: Option<&'static str>, fields, a, b, label| Layout {
            header,
            fields,
            at_least: false,
            a,
            b,
            label,
        };
        match (self, split) {
            (Task::Mrpc, Split::Test) => l(Some("index"), 5, 3, Some(4), NoLabel),
            (Task::Mrpc, _) => l(Some("Quality"), 5, 3, Some(4), Col(0)),
            (Task::Rte | Task::Qnli | Task::Wnli, Split::Test) => {
                l(Some("index"), 3, 1, Some(2), NoLabel)
            }
            (Task::Rte | Task::Qnli | Task::Wnli, _) => l(Some("index"), 4, 1, Some(2), Col(3)),
            (Task::Sst2, Split::Test) => l(Some("index"), 2, 1, None, NoLabel),
            (Task::Sst2, _) => l(Some("sentence"), 2, 0, None, Col(1)),
            (Task::Cola, Split::Test) => l(Some("index"), 2, 1, None, NoLabel),
            (Task::Cola, _) => l(None, 4, 3, None, Col(1)),
            (Task::Stsb, Split::Test) => Layout {
                at_least: true,
                ..l(Some("index"), 9, 7, Some(8), NoLabel)
            },
            (Task::Stsb, _) => Layout {
                at_least: true,
                ..l(Some("index"), 10, 7, Some(8), Last)
            },
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_parse_both_ways() {
        for t in Task::ALL {
            assert_eq!(t.name().parse::<Task>().unwrap(), t);
            assert_eq!(t.dir_name().parse::<Task>().unwrap(), t);
        }
        assert_eq!("SST-2".parse::<Task>().unwrap(), Task::Sst2);
        assert_eq!("sts-b".parse::<Task>().unwrap(), Task::Stsb);
        assert_eq!("CoLA".parse::<Task>().unwrap(), Task::Cola);
        let err = "mnli".parse::<Task>().unwrap_err().to_string();
        assert!(err.contains("mnli") && err.contains("mrpc"), "{err}");
        assert_eq!(Task::Stsb.num_labels(), 1);
        assert!(Task::Stsb.is_regression() && !Task::Mrpc.is_regression());
        assert_eq!("validation".parse::<Split>().unwrap(), Split::Dev);
    }

    #[test]
    fn parses_mrpc_with_bom_and_quotes() {
        let text = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n\
                    1\t1\t2\tHe said \" hi .\tShe said \"hi\n\
                    0\t3\t4\tA\tB\n";
        let ds = GlueDataset::parse(Task::Mrpc, Split::Train, text, "x.tsv").unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.examples[0].text_a, "He said \" hi .");
        assert_eq!(ds.examples[0].text_b.as_deref(), Some("She said \"hi"));
        assert_eq!(ds.examples[0].label, Label::Class(1));
        assert_eq!(ds.examples[1].line, 3);
        assert_eq!(ds.class_counts(), vec![1, 1]);
        let html = ds.head_html(1);
        assert!(
            html.contains("<td>equivalent</td>") && !html.contains("<td>A</td>"),
            "{html}"
        );
    }

    #[test]
    fn parses_cola_without_header_and_stsb_scores() {
        let cola = "gj04\t1\t\tGood sentence.\ngj04\t0\t*\tBad sentence good.";
        let ds = GlueDataset::parse(Task::Cola, Split::Dev, cola, "c.tsv").unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.examples[1].label, Label::Class(0));
        assert_eq!(ds.examples[1].text_b, None);
        let stsb = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n\
                    0\tg\tf\ty\t0\tn\tn\tA man.\tA person.\t3.800\n\
                    1\tg\tf\ty\t0\tn\tn\tA\tB\textra\t0.5\n";
        let ds = GlueDataset::parse(Task::Stsb, Split::Train, stsb, "s.tsv").unwrap();
        assert_eq!(ds.examples[0].label, Label::Score(3.8));
        assert_eq!(ds.examples[1].label, Label::Score(0.5));
        assert_eq!(ds.examples[1].text_b.as_deref(), Some("B"));
    }

    #[test]
    fn malformed_rows_name_file_line_and_reason() {
        let bad_label = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n";
        let err = GlueDataset::parse(Task::Rte, Split::Train, bad_label, "rte/train.tsv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rte/train.tsv:3:"), "{err}");
        assert!(
            err.contains("`maybe`") && err.contains("not_entailment"),
            "{err}"
        );

        let short = "sentence\tlabel\nfine film\t1\nno label here\n";
        let err = GlueDataset::parse(Task::Sst2, Split::Train, short, "sst.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("sst.tsv:3:") && err.contains("found 1"),
            "{err}"
        );

        let header = "index\tsentence\n0\tx\n";
        let err = GlueDataset::parse(Task::Sst2, Split::Dev, header, "h.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h.tsv:1:") && err.contains("`sentence`"),
            "{err}"
        );

        let score = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n\
                     0\tg\tf\ty\t0\tn\tn\tA\tB\t7.5\n";
        let err = GlueDataset::parse(Task::Stsb, Split::Dev, score, "s.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.tsv:2:") && err.contains("outside [0, 5]"),
            "{err}"
        );

        let blank = "sentence\tlabel\na\t1\n\nb\t0\n";
        let err = GlueDataset::parse(Task::Sst2, Split::Train, blank, "b.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.tsv:3:") && err.contains("empty line"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_says_which_fetch_to_run() {
        let dir = std::env::temp_dir().join("heterolora-no-such-glue");
        let err = load_split(&dir, Task::Rte, Split::Dev)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dev.tsv") && err.contains("heterolora fetch glue rte"),
            "{err}"
        );
    }
}
