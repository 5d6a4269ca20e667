//! [`TrainResult`]: what a fine-tuning run produced, with an HTML view for notebooks.

use crate::train::logger::RunStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// One evaluation on the dev split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Epoch the evaluation happened in (1-based).
    pub epoch: usize,
    /// Optimiser steps done when it was taken.
    pub step: usize,
    /// Whether it closes an epoch (best-epoch selection looks only at these).
    pub epoch_end: bool,
    /// Mean training loss over the optimiser steps since the previous evaluation.
    pub train_loss: f64,
    /// The task's metrics (`accuracy`, `f1`, ...) and `loss` (mean dev loss).
    pub metrics: BTreeMap<String, f64>,
    /// Seconds since the run started (training time, without checkpoint writes).
    pub elapsed_s: f64,
}

/// The outcome of [`crate::train::Trainer::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    pub task: String,
    /// The metric that picks the best epoch (`accuracy` for MRPC, as the paper reports).
    pub primary_metric: String,
    /// Every evaluation, in order; the epoch-end ones are the per-epoch dev metrics.
    pub evals: Vec<EvalRecord>,
    /// Epoch (1-based) whose end-of-epoch evaluation scored best on `primary_metric`.
    pub best_epoch: Option<usize>,
    /// `primary_metric` at `best_epoch`.
    pub best_metric: Option<f64>,
    /// (step, loss, learning rate) every `log_every` optimiser steps.
    pub loss_history: Vec<(usize, f64, f64)>,
    /// Optimiser steps done.
    pub steps: usize,
    /// Training examples processed (counting repeats across epochs).
    pub examples_seen: usize,
    /// Wall time of the whole run (training, evaluation, checkpoints), seconds.
    pub wall_time_s: f64,
    /// Training throughput: examples per second of time spent in training steps.
    pub examples_per_sec: f64,
    pub trainable_params: usize,
    pub status: RunStatus,
    /// The tracker's run id, when the logger has one.
    pub run_id: Option<String>,
    /// Where the last checkpoint was written.
    pub checkpoint_dir: Option<PathBuf>,
    /// Device the run used (`cpu`, `cuda:0`).
    pub device: String,
}

impl TrainResult {
    /// The per-epoch dev evaluations (one per completed epoch).
    pub fn epoch_evals(&self) -> Vec<&EvalRecord> {
        self.evals.iter().filter(|e| e.epoch_end).collect()
    }

    /// The dev metrics of the best epoch.
    pub fn best_metrics(&self) -> Option<&BTreeMap<String, f64>> {
        let best = self.best_epoch?;
        self.evals
            .iter()
            .find(|e| e.epoch_end && e.epoch == best)
            .map(|e| &e.metrics)
    }

    /// The dev metrics of the last evaluation.
    pub fn final_metrics(&self) -> Option<&BTreeMap<String, f64>> {
        self.evals.last().map(|e| &e.metrics)
    }

    /// An HTML summary: headline figures and one row per evaluation, the best epoch in bold.
    pub fn to_html(&self) -> String {
        let mut keys: Vec<&String> = self.evals.iter().flat_map(|e| e.metrics.keys()).collect();
        keys.sort();
        keys.dedup();
        // The primary metric first, then the rest alphabetically.
        keys.sort_by_key(|k| *k != &self.primary_metric);
        let mut h = String::new();
        let best = match (self.best_epoch, self.best_metric) {
            (Some(e), Some(m)) => format!(
                "best {} {:.4} at epoch {e}",
                escape(&self.primary_metric),
                m
            ),
            _ => "no completed epoch".to_string(),
        };
        let _ = write!(
            h,
            "<div class=\"heterolora-train\"><p><b>{task}</b> &middot; {status} &middot; {best} &middot; \
             {steps} steps &middot; {wall:.1} s &middot; {eps:.1} examples/s &middot; {params} trainable \
             params &middot; {device}{run}</p>",
            task = escape(&self.task),
            status = self.status.as_str(),
            steps = self.steps,
            wall = self.wall_time_s,
            eps = self.examples_per_sec,
            params = self.trainable_params,
            device = escape(&self.device),
            run = self
                .run_id
                .as_ref()
                .map(|r| format!(" &middot; run <code>{}</code>", escape(r)))
                .unwrap_or_default(),
        );
        h.push_str("<table><thead><tr><th>epoch</th><th>step</th><th>train loss</th>");
        for k in &keys {
            let _ = write!(h, "<th>dev {}</th>", escape(k));
        }
        h.push_str("<th>time (s)</th></tr></thead><tbody>");
        for e in &self.evals {
            let is_best = e.epoch_end && Some(e.epoch) == self.best_epoch;
            let (o, c) = if is_best { ("<b>", "</b>") } else { ("", "") };
            let epoch = if e.epoch_end {
                e.epoch.to_string()
            } else {
                format!("({})", e.epoch)
            };
            let _ = write!(
                h,
                "<tr><td>{o}{epoch}{c}</td><td>{}</td><td>{:.4}</td>",
                e.step, e.train_loss
            );
            for k in &keys {
                match e.metrics.get(*k) {
                    Some(v) => {
                        let _ = write!(h, "<td>{o}{v:.4}{c}</td>");
                    }
                    None => h.push_str("<td></td>"),
                }
            }
            let _ = write!(h, "<td>{:.1}</td></tr>", e.elapsed_s);
        }
        h.push_str("</tbody></table></div>");
        h
    }

    /// Inline display in an evcxr notebook.
    pub fn evcxr_display(&self) {
        let block = format!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT\n",
            self.to_html()
        );
        // One write, so that blocks from other threads cannot interleave with it.
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(block.as_bytes());
    }
}

impl std::fmt::Display for TrainResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} {}: {} steps, {:.1} s, {:.1} examples/s",
            self.task,
            self.status.as_str(),
            self.steps,
            self.wall_time_s,
            self.examples_per_sec
        )?;
        for e in self.epoch_evals() {
            let m: Vec<String> = e
                .metrics
                .iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            writeln!(
                f,
                "  epoch {} (step {}): train loss {:.4}, dev {}{}",
                e.epoch,
                e.step,
                e.train_loss,
                m.join(", "),
                if Some(e.epoch) == self.best_epoch {
                    "  <- best"
                } else {
                    ""
                }
            )?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, step: usize, end: bool, acc: f64) -> EvalRecord {
        EvalRecord {
            epoch,
            step,
            epoch_end: end,
            train_loss: 0.5,
            metrics: [
                ("accuracy".to_string(), acc),
                ("f1".to_string(), acc + 0.05),
            ]
            .into_iter()
            .collect(),
            elapsed_s: step as f64,
        }
    }

    fn result() -> TrainResult {
        TrainResult {
            task: "MRPC<x>".into(),
            primary_metric: "accuracy".into(),
            evals: vec![
                record(1, 5, false, 0.70),
                record(1, 10, true, 0.75),
                record(2, 20, true, 0.81),
            ],
            best_epoch: Some(2),
            best_metric: Some(0.81),
            loss_history: vec![(10, 0.6, 1e-3)],
            steps: 20,
            examples_seen: 640,
            wall_time_s: 12.5,
            examples_per_sec: 51.2,
            trainable_params: 1234,
            status: RunStatus::Finished,
            run_id: Some("abc".into()),
            checkpoint_dir: None,
            device: "cpu".into(),
        }
    }

    #[test]
    fn html_has_one_row_per_eval_bolds_the_best_and_escapes() {
        let h = result().to_html();
        assert_eq!(h.matches("<tr><td>").count(), 3, "{h}");
        assert!(h.contains("MRPC&lt;x&gt;"), "{h}");
        assert!(h.contains("<td><b>2</b></td>"), "{h}");
        assert!(h.contains("<td><b>0.8100</b></td>"), "{h}");
        assert!(!h.contains("<b>1</b>"), "{h}");
        // The primary metric is the first metric column.
        let acc = h.find("dev accuracy").unwrap();
        let f1 = h.find("dev f1").unwrap();
        assert!(acc < f1);
        assert!(h.contains("51.2 examples/s"));
    }

    #[test]
    fn best_and_final_metrics_and_text_summary() {
        let r = result();
        assert_eq!(r.epoch_evals().len(), 2);
        assert_eq!(r.best_metrics().unwrap()["accuracy"], 0.81);
        assert_eq!(r.final_metrics().unwrap()["accuracy"], 0.81);
        let t = r.to_string();
        assert!(
            t.contains("epoch 2 (step 20)") && t.contains("<- best"),
            "{t}"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<TrainResult>(&json).unwrap(), r);
    }
}
