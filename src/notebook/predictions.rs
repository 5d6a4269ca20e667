//! [`PredictionReport`]: a classifier's predictions on a labelled split as a notebook shows them:
//! the metrics, the confusion matrix and the errors it was most sure of.

use crate::data::{metrics, GlueDataset, Label};
use crate::display::emit_evcxr;
use crate::predict::Predictions;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// One example the model got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Misclassified {
    /// 1-based line in the split's file.
    pub line: usize,
    pub text_a: String,
    pub text_b: Option<String>,
    pub gold: String,
    pub predicted: String,
    /// Softmax probability of the predicted class.
    pub confidence: f64,
}

/// Metrics, confusion matrix and a few misclassified examples of one prediction run on a
/// labelled classification split. Built by [`PredictionReport::new`] (or
/// [`super::Workspace::predict`]); displays as HTML in evcxr.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionReport {
    /// What was predicted, e.g. `MRPC dev, adapters of run 1a2b3c4d`.
    pub title: String,
    /// Class names, in class-id order.
    pub labels: Vec<String>,
    /// `confusion[gold][predicted]`: example counts.
    pub confusion: Vec<Vec<usize>>,
    /// The task's metrics (and `loss` when computed), as the trainer logs them.
    pub metrics: BTreeMap<String, f64>,
    /// The misclassified examples with the most confident wrong predictions first (at most the
    /// number asked for).
    pub misclassified: Vec<Misclassified>,
    /// All misclassified examples, shown or not.
    pub num_errors: usize,
}

fn softmax_max(row: &[f32]) -> (usize, f64) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = row.iter().map(|&x| (x as f64 - m).exp()).collect();
    let z: f64 = exps.iter().sum();
    let (i, e) = exps
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &e)| {
            if e > best.1 {
                (i, e)
            } else {
                best
            }
        });
    (i, e / z)
}

impl PredictionReport {
    /// The report of `preds` (in `data`'s order) against `data`'s gold labels, keeping the
    /// `max_errors` most confident errors. Regression tasks and unlabelled splits are errors.
    pub fn new(
        title: impl Into<String>,
        data: &GlueDataset,
        preds: &Predictions,
        max_errors: usize,
    ) -> Result<Self> {
        let task = data.task;
        if task.is_regression() {
            return Err(Error::invalid(
                "task",
                task,
                "a classification task (a confusion matrix needs classes)",
            ));
        }
        if preds.len() != data.len() {
            return Err(Error::invalid(
                "predictions",
                format!("{} rows for {} examples", preds.len(), data.len()),
                "one prediction per example",
            ));
        }
        let gold_f = data.labels_f32().ok_or_else(|| {
            Error::invalid("split", data.split, "a labelled split (train or dev)")
        })?;
        let labels: Vec<String> = task.label_names().iter().map(|s| s.to_string()).collect();
        let k = task.num_labels();
        let mut confusion = vec![vec![0usize; k]; k];
        let mut errors = Vec::new();
        for (i, e) in data.examples.iter().enumerate() {
            let Label::Class(g) = e.label else {
                continue;
            };
            let (p, conf) = softmax_max(&preds.logits[i * k..(i + 1) * k]);
            confusion[g as usize][p] += 1;
            if p != g as usize {
                errors.push(Misclassified {
                    line: e.line,
                    text_a: e.text_a.clone(),
                    text_b: e.text_b.clone(),
                    gold: labels[g as usize].clone(),
                    predicted: labels[p].clone(),
                    confidence: conf,
                });
            }
        }
        let num_errors = errors.len();
        errors.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.line.cmp(&b.line))
        });
        errors.truncate(max_errors);
        Ok(PredictionReport {
            title: title.into(),
            labels,
            confusion,
            metrics: preds.metrics(&gold_f)?,
            misclassified: errors,
            num_errors,
        })
    }

    /// Examples counted.
    pub fn total(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }

    /// Fraction predicted right, from the confusion matrix.
    pub fn accuracy(&self) -> f64 {
        let right: usize = (0..self.confusion.len())
            .map(|i| self.confusion[i][i])
            .sum();
        right as f64 / self.total().max(1) as f64
    }

    /// Fraction of the most frequent gold class: what always predicting it scores.
    pub fn majority_rate(&self) -> f64 {
        let most = self
            .confusion
            .iter()
            .map(|row| row.iter().sum::<usize>())
            .max()
            .unwrap_or(0);
        most as f64 / self.total().max(1) as f64
    }

    /// Pure HTML: the metrics, the confusion matrix (rows gold, columns predicted) and the
    /// misclassified examples.
    pub fn to_html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let td = "style=\"text-align:right;padding:2px 8px\"";
        let tl = "style=\"text-align:left;padding:2px 8px\"";
        let mut h = format!("<div><h4>{}</h4>", esc(&self.title));
        h.push_str(&format!(
            "<p>{} examples; accuracy {:.2}% (majority class {:.2}%)",
            self.total(),
            100.0 * self.accuracy(),
            100.0 * self.majority_rate()
        ));
        for (k, v) in &self.metrics {
            if k != "accuracy" {
                h.push_str(&format!("; {} {:.4}", esc(k), v));
            }
        }
        h.push_str("</p>");
        h.push_str(&format!(
            "<table><caption>confusion matrix (rows: gold, columns: predicted)</caption>\
             <thead><tr><th {tl}>gold \\ predicted</th>"
        ));
        for l in &self.labels {
            h.push_str(&format!("<th {td}>{}</th>", esc(l)));
        }
        h.push_str("</tr></thead><tbody>");
        for (g, row) in self.confusion.iter().enumerate() {
            h.push_str(&format!("<tr><th {tl}>{}</th>", esc(&self.labels[g])));
            for (p, n) in row.iter().enumerate() {
                let cell = if g == p {
                    format!("<b>{n}</b>")
                } else {
                    n.to_string()
                };
                h.push_str(&format!("<td {td}>{cell}</td>"));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");
        if self.misclassified.is_empty() {
            h.push_str("<p>no misclassified examples</p>");
        } else {
            h.push_str(&format!(
                "<table><caption>{} of {} misclassified examples, most confident first</caption>\
                 <thead><tr><th {tl}>line</th><th {tl}>text_a</th><th {tl}>text_b</th>\
                 <th {tl}>gold</th><th {tl}>predicted</th><th {td}>p(predicted)</th></tr></thead><tbody>",
                self.misclassified.len(),
                self.num_errors
            ));
            for m in &self.misclassified {
                h.push_str(&format!(
                    "<tr><td {tl}>{}</td><td {tl}>{}</td><td {tl}>{}</td><td {tl}>{}</td>\
                     <td {tl}>{}</td><td {td}>{:.3}</td></tr>",
                    m.line,
                    esc(&m.text_a),
                    esc(m.text_b.as_deref().unwrap_or("")),
                    esc(&m.gold),
                    esc(&m.predicted),
                    m.confidence
                ));
            }
            h.push_str("</tbody></table>");
        }
        h.push_str("</div>");
        h
    }

    pub fn evcxr_display(&self) {
        emit_evcxr(&[
            ("text/plain", &self.to_string()),
            ("text/html", &self.to_html()),
        ]);
    }
}

impl std::fmt::Display for PredictionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} examples, accuracy {:.2}% (majority class {:.2}%)",
            self.title,
            self.total(),
            100.0 * self.accuracy(),
            100.0 * self.majority_rate()
        )?;
        writeln!(f, "confusion matrix (rows gold, columns predicted):")?;
        for (g, row) in self.confusion.iter().enumerate() {
            writeln!(f, "  {:<16} {:?}", self.labels[g], row)?;
        }
        write!(f, "{} misclassified", self.num_errors)
    }
}

/// The predicted class ids of `preds` (argmax of the logits).
pub fn predicted_classes(preds: &Predictions) -> Vec<u32> {
    metrics::argmax_rows(&preds.logits, preds.task.num_labels())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Example, Split, Task};
    use std::path::PathBuf;

    fn data(labels: &[u32]) -> GlueDataset {
        GlueDataset {
            task: Task::Mrpc,
            split: Split::Dev,
            examples: labels
                .iter()
                .enumerate()
                .map(|(i, &l)| Example {
                    text_a: format!("sentence a<{i}>"),
                    text_b: Some(format!("sentence b & {i}")),
                    label: Label::Class(l),
                    line: i + 2,
                })
                .collect(),
            path: PathBuf::from("dev.tsv"),
        }
    }

    fn preds(logits: Vec<f32>) -> Predictions {
        Predictions {
            task: Task::Mrpc,
            logits,
            loss: Some(0.5),
        }
    }

    #[test]
    fn confusion_matrix_errors_and_html() {
        // gold: 1 1 1 0 0; predicted: 1 0 1 1 0 (two errors; line 5 is the surer one).
        let d = data(&[1, 1, 1, 0, 0]);
        let p = preds(vec![
            0.0, 2.0, // 1, right
            0.5, 0.0, // 0, wrong (gold 1), p = 0.62
            0.0, 1.0, // 1, right
            0.0, 3.0, // 1, wrong (gold 0), p = 0.95
            2.0, 0.0, // 0, right
        ]);
        let r = PredictionReport::new("MRPC dev", &d, &p, 1).unwrap();
        assert_eq!(r.confusion, vec![vec![1, 1], vec![1, 2]]);
        assert_eq!((r.total(), r.num_errors), (5, 2));
        assert!((r.accuracy() - 0.6).abs() < 1e-12);
        assert!((r.majority_rate() - 0.6).abs() < 1e-12);
        assert!((r.metrics["accuracy"] - 0.6).abs() < 1e-9);
        assert_eq!(r.metrics["loss"], 0.5);
        assert_eq!(
            r.misclassified.len(),
            1,
            "only the most confident error is kept"
        );
        let m = &r.misclassified[0];
        assert_eq!(
            (m.line, m.gold.as_str(), m.predicted.as_str()),
            (5, "not_equivalent", "equivalent")
        );
        assert!((m.confidence - 1.0 / (1.0 + (-3.0f64).exp())).abs() < 1e-6);
        let h = r.to_html();
        assert!(h.contains("confusion matrix"), "{h}");
        assert!(
            h.contains("<b>2</b>") && h.contains("<b>1</b>"),
            "diagonal in bold: {h}"
        );
        assert!(
            h.contains("accuracy 60.00%") && h.contains("majority class 60.00%"),
            "{h}"
        );
        assert!(
            h.contains("sentence a&lt;3&gt;") && h.contains("sentence b &amp; 3"),
            "escaped: {h}"
        );
        assert!(h.contains("1 of 2 misclassified"), "{h}");
        assert!(
            !h.contains("sentence a&lt;1&gt;"),
            "the less confident error is left out"
        );
        let text = r.to_string();
        assert!(
            text.contains("[1, 2]") && text.contains("2 misclassified"),
            "{text}"
        );
        assert_eq!(predicted_classes(&p), vec![1, 0, 1, 1, 0]);
    }

    #[test]
    fn rejects_mismatched_rows_and_regression() {
        let d = data(&[1, 0]);
        let e = PredictionReport::new("x", &d, &preds(vec![0.0, 1.0]), 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("predictions"), "{e}");
        let mut s = d.clone();
        s.task = Task::Stsb;
        let p = Predictions {
            task: Task::Stsb,
            logits: vec![1.0, 2.0],
            loss: None,
        };
        let e = PredictionReport::new("x", &s, &p, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("classification"), "{e}");
        let all_right =
            PredictionReport::new("x", &d, &preds(vec![0.0, 1.0, 1.0, 0.0]), 3).unwrap();
        assert!(all_right.to_html().contains("no misclassified examples"));
    }
}
