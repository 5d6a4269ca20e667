//! The official GLUE metrics: accuracy, F1 of the positive class (MRPC), Matthews correlation
//! (CoLA), Pearson and Spearman correlation (STS-B). Definitions follow scikit-learn and SciPy
//! (`accuracy_score`, `f1_score`, `matthews_corrcoef`, `pearsonr`, `spearmanr`), which is what
//! GLUE's and Hugging Face's evaluation code call.

use super::glue::Task;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Named metric values for one evaluation, e.g. `{accuracy: 0.86, f1: 0.90, combined: 0.88}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub task: Task,
    pub values: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// The task's headline number ([`Task::primary_metric`]).
    pub fn primary(&self) -> f64 {
        self.get(self.task.primary_metric()).unwrap_or(f64::NAN)
    }

    pub fn primary_name(&self) -> &'static str {
        self.task.primary_metric()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// An HTML table for notebooks.
    pub fn to_html(&self) -> String {
        let mut s = format!(
            "<table><thead><tr><th colspan=\"2\">{} metrics</th></tr></thead><tbody>",
            self.task
        );
        for (k, v) in &self.values {
            let bold = k == self.task.primary_metric();
            s.push_str(&format!(
                "<tr><td>{}{k}{}</td><td>{v:.4}</td></tr>",
                if bold { "<b>" } else { "" },
                if bold { "</b>" } else { "" }
            ));
        }
        s.push_str("</tbody></table>");
        s
    }

    /// Inline display in evcxr notebooks.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.task)?;
        for (k, v) in &self.values {
            write!(f, " {k}={v:.4}")?;
        }
        Ok(())
    }
}

/// Computes the task's metrics. For classification tasks `predictions` and `labels` hold class
/// ids (as whole numbers); for STS-B they hold scores.
pub fn compute(task: Task, predictions: &[f32], labels: &[f32]) -> Result<Metrics> {
    check_lengths(predictions.len(), labels.len())?;
    if task.is_regression() {
        return compute_scores(task, predictions, labels);
    }
    let to_ids = |xs: &[f32], what: &str| -> Result<Vec<u32>> {
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                if x >= 0.0 && x.fract() == 0.0 && (x as usize) < task.num_labels() {
                    Ok(x as u32)
                } else {
                    Err(Error::invalid(
                        format!("{what}[{i}]"),
                        x,
                        format!("a class id below {} for {task}", task.num_labels()),
                    ))
                }
            })
            .collect()
    };
    compute_classes(
        task,
        &to_ids(predictions, "predictions")?,
        &to_ids(labels, "labels")?,
    )
}

/// Metrics of a classification task from predicted and gold class ids.
pub fn compute_classes(task: Task, predictions: &[u32], labels: &[u32]) -> Result<Metrics> {
    check_lengths(predictions.len(), labels.len())?;
    if task.is_regression() {
        return Err(Error::invalid(
            "task",
            task,
            "a classification task (use compute_scores for STS-B)",
        ));
    }
    let mut values = BTreeMap::new();
    let acc = accuracy(predictions, labels);
    values.insert("accuracy".to_string(), acc);
    match task {
        Task::Mrpc => {
            let f1 = f1_binary(predictions, labels);
            values.insert("f1".into(), f1);
            values.insert("combined".into(), (acc + f1) / 2.0);
        }
        Task::Cola => {
            values.insert("matthews".into(), matthews_corrcoef(predictions, labels));
        }
        _ => {}
    }
    Ok(Metrics { task, values })
}

/// Metrics of STS-B from predicted and gold scores.
pub fn compute_scores(task: Task, predictions: &[f32], labels: &[f32]) -> Result<Metrics> {
    check_lengths(predictions.len(), labels.len())?;
    if !task.is_regression() {
        return Err(Error::invalid("task", task, "STS-B for score metrics"));
    }
    if let Some(i) = predictions.iter().position(|p| !p.is_finite()) {
        return Err(Error::invalid(
            format!("predictions[{i}]"),
            predictions[i],
            "a finite score",
        ));
    }
    let x: Vec<f64> = predictions.iter().map(|&v| v as f64).collect();
    let y: Vec<f64> = labels.iter().map(|&v| v as f64).collect();
    let p = pearson(&x, &y);
    let s = spearman(&x, &y);
    let mut values = BTreeMap::new();
    values.insert("pearson".to_string(), p);
    values.insert("spearman".to_string(), s);
    values.insert("combined".to_string(), (p + s) / 2.0);
    Ok(Metrics { task, values })
}

/// Metrics from raw model outputs: `logits` is row-major `[n, task.num_labels()]` (argmax for
/// classification, the single output for STS-B).
pub fn compute_from_logits(task: Task, logits: &[f32], labels: &[f32]) -> Result<Metrics> {
    let k = task.num_labels();
    if logits.len() != labels.len() * k {
        return Err(Error::invalid(
            "logits",
            format!("{} values", logits.len()),
            format!("{} x {k} for {} labels", labels.len(), labels.len()),
        ));
    }
    if task.is_regression() {
        compute_scores(task, logits, labels)
    } else {
        let preds: Vec<f32> = argmax_rows(logits, k)
            .into_iter()
            .map(|c| c as f32)
            .collect();
        compute(task, &preds, labels)
    }
}

/// One of the task's metrics by name (`accuracy`, `f1`, `combined`, `matthews`, `pearson`,
/// `spearman`) from predictions and labels as [`compute`] takes them, computing only that one:
/// a bootstrap over dev examples calls it tens of thousands of times. The values equal
/// [`compute`]'s. `None` for a name the task does not report or inputs of unequal length.
pub fn named(task: Task, name: &str, predictions: &[f32], labels: &[f32]) -> Option<f64> {
    if predictions.len() != labels.len() || labels.is_empty() {
        return None;
    }
    if task.is_regression() {
        let x: Vec<f64> = predictions.iter().map(|&v| v as f64).collect();
        let y: Vec<f64> = labels.iter().map(|&v| v as f64).collect();
        return match name {
            "pearson" => Some(pearson(&x, &y)),
            "spearman" => Some(spearman(&x, &y)),
            "combined" => Some((pearson(&x, &y) + spearman(&x, &y)) / 2.0),
            _ => None,
        };
    }
    let ids = |xs: &[f32]| -> Vec<u32> { xs.iter().map(|&x| x as u32).collect() };
    let (p, l) = (ids(predictions), ids(labels));
    match (task, name) {
        (_, "accuracy") => Some(accuracy(&p, &l)),
        (Task::Mrpc, "f1") => Some(f1_binary(&p, &l)),
        (Task::Mrpc, "combined") => Some((accuracy(&p, &l) + f1_binary(&p, &l)) / 2.0),
        (Task::Cola, "matthews") => Some(matthews_corrcoef(&p, &l)),
        _ => None,
    }
}

fn check_lengths(p: usize, l: usize) -> Result<()> {
    if p != l {
        return Err(Error::invalid(
            "predictions",
            format!("{p} values"),
            format!("as many as labels ({l})"),
        ));
    }
    if p == 0 {
        return Err(Error::invalid("predictions", "[]", "at least one example"));
    }
    Ok(())
}

/// Row-wise argmax of a row-major `[n, k]` matrix (first maximum wins, like NumPy).
pub fn argmax_rows(values: &[f32], k: usize) -> Vec<u32> {
    values
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}

/// Fraction of equal entries.
pub fn accuracy(predictions: &[u32], labels: &[u32]) -> f64 {
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    hits as f64 / labels.len().max(1) as f64
}

/// F1 of class 1; 0 when there are no true positives (scikit-learn's `zero_division` value).
pub fn f1_binary(predictions: &[u32], labels: &[u32]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&p, &l) in predictions.iter().zip(labels) {
        match (p == 1, l == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    if tp == 0 {
        return 0.0;
    }
    2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
}

/// Matthews correlation coefficient in scikit-learn's multiclass form (equal to the binary
/// formula for two classes); 0 when it is undefined (a constant prediction or label).
pub fn matthews_corrcoef(predictions: &[u32], labels: &[u32]) -> f64 {
    let k = predictions.iter().chain(labels).copied().max().unwrap_or(0) as usize + 1;
    let mut cm = vec![0f64; k * k];
    for (&p, &l) in predictions.iter().zip(labels) {
        cm[l as usize * k + p as usize] += 1.0;
    }
    let n: f64 = predictions.len() as f64;
    let t: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| cm[i * k + j]).sum())
        .collect();
    let p: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| cm[i * k + j]).sum())
        .collect();
    let c: f64 = (0..k).map(|i| cm[i * k + i]).sum();
    let cov_ytyp = c * n - t.iter().zip(&p).map(|(a, b)| a * b).sum::<f64>();
    let cov_ypyp = n * n - p.iter().map(|x| x * x).sum::<f64>();
    let cov_ytyt = n * n - t.iter().map(|x| x * x).sum::<f64>();
    if cov_ypyp == 0.0 || cov_ytyt == 0.0 {
        return 0.0;
    }
    cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
}

/// Pearson correlation; NaN when either side is constant (as SciPy returns).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Spearman rank correlation: Pearson on ranks, ties getting their average rank.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

/// 1-based ranks with ties averaged (SciPy's `rankdata(method="average")`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = r;
        }
        i = j + 1;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hand_checked_values() {
        // tp=2 fp=1 fn=1 tn=1: acc 3/5, f1 2*2/(4+1+1) = 2/3,
        // mcc = (2*1 - 1*1) / sqrt(3*2*3*2) = 1/6.
        let p = [1, 1, 1, 0, 0];
        let l = [1, 1, 0, 1, 0];
        assert!((accuracy(&p, &l) - 0.6).abs() < 1e-12);
        assert!((f1_binary(&p, &l) - 2.0 / 3.0).abs() < 1e-12);
        assert!((matthews_corrcoef(&p, &l) - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(matthews_corrcoef(&[1, 1, 1], &[0, 1, 0]), 0.0);
        assert_eq!(f1_binary(&[0, 0], &[1, 0]), 0.0);
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        // scipy.stats.pearsonr([1, 2, 3], [2, 4, 6.5]) = 0.9979487157886732
        assert!(
            (pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]) - 0.997_948_715_788_673_2).abs() < 1e-12
        );
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn compute_picks_the_tasks_metrics_and_checks_input() {
        let m = compute(Task::Mrpc, &[1.0, 0.0, 1.0], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!(m.primary_name(), "accuracy");
        assert!((m.primary() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.get("f1").unwrap() - 0.8).abs() < 1e-12);
        let c = compute(Task::Cola, &[1.0, 0.0], &[1.0, 0.0]).unwrap();
        assert_eq!(c.primary(), 1.0);
        let s = compute(Task::Stsb, &[0.5, 2.0, 4.0], &[1.0, 2.5, 4.5]).unwrap();
        assert!((s.primary() - 1.0).abs() < 1e-9, "{s}");
        assert!((s.get("spearman").unwrap() - 1.0).abs() < 1e-12, "{s}");
        assert!(compute(Task::Rte, &[0.5], &[1.0]).is_err());
        assert!(compute(Task::Rte, &[1.0], &[1.0, 0.0]).is_err());
        assert!(compute(Task::Rte, &[], &[]).is_err());
        let l = compute_from_logits(Task::Sst2, &[0.1, 0.9, 2.0, -1.0], &[1.0, 1.0]).unwrap();
        assert_eq!(l.primary(), 0.5);
        assert!(m.to_html().contains("<b>accuracy</b>"));
        assert!(m.to_string().starts_with("MRPC: accuracy=0.6667"));
    }

    #[test]
    fn a_named_metric_equals_the_one_compute_reports() {
        let mut rng = crate::rng::Rng::new(7);
        for task in [Task::Mrpc, Task::Cola, Task::Rte, Task::Stsb] {
            let draw = |rng: &mut crate::rng::Rng| -> f32 {
                match task.is_regression() {
                    true => rng.below(51) as f32 / 10.0,
                    false => rng.below(2) as f32,
                }
            };
            let p: Vec<f32> = (0..40).map(|_| draw(&mut rng)).collect();
            let l: Vec<f32> = (0..40).map(|_| draw(&mut rng)).collect();
            let all = compute(task, &p, &l).unwrap();
            for (name, v) in all.iter().filter(|(n, _)| *n != "loss") {
                let got = named(task, name, &p, &l).unwrap();
                assert!((got - v).abs() < 1e-12, "{task} {name}: {got} vs {v}");
            }
            assert_eq!(named(task, "bogus", &p, &l), None);
            assert_eq!(named(task, all.primary_name(), &p, &l[1..]), None);
        }
        assert_eq!(named(Task::Rte, "f1", &[1.0], &[1.0]), None);
    }
}
