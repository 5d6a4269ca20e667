//! Per-split statistics: rows, label balance and token-length percentiles.

use super::glue::{GlueDataset, Label, Split, Task};
use super::tokenize::{EncodedDataset, Tokenizer};
use crate::Result;
use serde::Serialize;
use std::fmt;

/// Token lengths of a split (with special tokens, after truncation to `max_len`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthStats {
    pub max_len: usize,
    pub mean: f64,
    pub p50: usize,
    pub p90: usize,
    pub p95: usize,
    pub p99: usize,
    pub max: usize,
    /// Examples cut to `max_len`.
    pub truncated: usize,
}

impl LengthStats {
    pub fn from_encoded(enc: &EncodedDataset) -> Option<Self> {
        let mut l = enc.lengths();
        if l.is_empty() {
            return None;
        }
        l.sort_unstable();
        Some(LengthStats {
            max_len: enc.max_len,
            mean: l.iter().sum::<usize>() as f64 / l.len() as f64,
            p50: percentile(&l, 50.0),
            p90: percentile(&l, 90.0),
            p95: percentile(&l, 95.0),
            p99: percentile(&l, 99.0),
            max: *l.last().unwrap(),
            truncated: enc.num_at_max_len(),
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[usize], q: f64) -> usize {
    let n = sorted.len();
    let rank = ((q / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// What `heterolora info` prints for one split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitStats {
    pub task: Task,
    pub split: Split,
    pub rows: usize,
    /// `(class name, count)`; empty for STS-B and unlabelled splits.
    pub classes: Vec<(String, usize)>,
    /// STS-B: `(min, mean, max)` of the scores.
    pub scores: Option<(f32, f32, f32)>,
    pub lengths: Option<LengthStats>,
}

impl SplitStats {
    /// Statistics of `ds`; token lengths only when a tokenizer is given.
    pub fn compute(ds: &GlueDataset, tokenizer: Option<&Tokenizer>) -> Result<Self> {
        let names = ds.task.label_names();
        let classes = ds
            .class_counts()
            .into_iter()
            .enumerate()
            .map(|(i, c)| (names[i].to_string(), c))
            .collect();
        let scores: Vec<f32> = ds
            .examples
            .iter()
            .filter_map(|e| match e.label {
                Label::Score(s) => Some(s),
                _ => None,
            })
            .collect();
        let scores = (!scores.is_empty()).then(|| {
            let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (min, scores.iter().sum::<f32>() / scores.len() as f32, max)
        });
        let lengths = match tokenizer {
            Some(t) => LengthStats::from_encoded(&t.encode_dataset(ds)?),
            None => None,
        };
        Ok(SplitStats {
            task: ds.task,
            split: ds.split,
            rows: ds.len(),
            classes,
            scores,
            lengths,
        })
    }

    /// Label balance as text, e.g. `equivalent 2474 (67.4%), not_equivalent 1194 (32.6%)`.
    pub fn balance(&self) -> String {
        if let Some((min, mean, max)) = self.scores {
            return format!("score min {min:.2} mean {mean:.2} max {max:.2}");
        }
        if self.classes.is_empty() {
            return "unlabelled".into();
        }
        self.classes
            .iter()
            .map(|(n, c)| format!("{n} {c} ({:.1}%)", 100.0 * *c as f64 / self.rows as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Token lengths as text, e.g. `p50 48 p90 71 p95 77 p99 90 max 103 (0 cut at 128)`.
    pub fn length_summary(&self) -> String {
        match &self.lengths {
            Some(l) => format!(
                "mean {:.1} p50 {} p90 {} p95 {} p99 {} max {} ({} cut at {})",
                l.mean, l.p50, l.p90, l.p95, l.p99, l.max, l.truncated, l.max_len
            ),
            None => "-".into(),
        }
    }

    /// A one-row HTML table (see [`stats_table_html`] for several splits).
    pub fn to_html(&self) -> String {
        stats_table_html(std::slice::from_ref(self))
    }

    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }

    fn html_row(&self) -> String {
        format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            self.task,
            self.split,
            self.rows,
            html_escape(&self.balance()),
            html_escape(&self.length_summary())
        )
    }
}

impl fmt::Display for SplitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<6} {:<5} {:>6} rows  {}  tokens: {}",
            self.task.to_string(),
            self.split.name(),
            self.rows,
            self.balance(),
            self.length_summary()
        )
    }
}

/// An HTML table of several splits (for notebooks).
pub fn stats_table_html(stats: &[SplitStats]) -> String {
    let mut s = String::from(
        "<table><thead><tr><th>task</th><th>split</th><th>rows</th><th>labels</th>\
         <th>tokens</th></tr></thead><tbody>",
    );
    for st in stats {
        s.push_str(&st.html_row());
    }
    s.push_str("</tbody></table>");
    s
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_balance() {
        let v: Vec<usize> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 90.0), 7);
        let text = "sentence\tlabel\na\t1\nb\t1\nc\t0\nd\t1\n";
        let ds = GlueDataset::parse(Task::Sst2, Split::Train, text, "t.tsv").unwrap();
        let st = SplitStats::compute(&ds, None).unwrap();
        assert_eq!(st.rows, 4);
        assert_eq!(st.balance(), "negative 1 (25.0%), positive 3 (75.0%)");
        assert!(stats_table_html(&[st]).contains("<td>SST-2</td>"));
    }
}
