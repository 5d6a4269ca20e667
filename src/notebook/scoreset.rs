//! [`ScoreSet`]: several proxies' scores of the same slots, with how much their rankings agree.

use crate::display::{emit_evcxr, HtmlTable};
use crate::plot::{spearman_rho, Figure, ProxyScatter, ScoreHeatmap};
use crate::proxy::Scores;
use crate::{Error, Result};

/// Scores of several proxies (from one shared gradient pass).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSet {
    pub scores: Vec<Scores>,
}

impl ScoreSet {
    pub fn new(scores: Vec<Scores>) -> Self {
        ScoreSet { scores }
    }

    /// The proxy names, in scoring order.
    pub fn names(&self) -> Vec<String> {
        self.scores.iter().map(|s| s.proxy.clone()).collect()
    }

    /// One proxy's scores (an owned copy; `_` and `-` are interchangeable in the name).
    pub fn get(&self, proxy: &str) -> Result<Scores> {
        let want = proxy.trim().to_ascii_lowercase().replace('_', "-");
        self.scores
            .iter()
            .find(|s| s.proxy == want || s.proxy == proxy)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(
                    "proxy",
                    proxy,
                    format!("one of the scored proxies: {}", self.names().join(", ")),
                )
            })
    }

    /// Spearman rank correlation of two proxies over the slots both scored.
    pub fn spearman(&self, a: &str, b: &str) -> Result<Option<f64>> {
        let (x, y) = (self.get(a)?, self.get(b)?);
        let (xs, ys): (Vec<f64>, Vec<f64>) = x
            .values
            .iter()
            .filter_map(|(slot, v)| y.values.get(slot).map(|w| (*v, *w)))
            .unzip();
        Ok(spearman_rho(&xs, &ys))
    }

    /// The matrix of Spearman rank correlations between every pair of proxies.
    pub fn correlation_table(&self) -> HtmlTable {
        let names = self.names();
        let mut headers = vec!["Spearman ρ".to_string()];
        headers.extend(names.iter().cloned());
        let mut t = HtmlTable::new(headers).caption(
            "rank agreement between proxies (1: same ranking, 0: unrelated, -1: reversed)",
        );
        for a in &names {
            let mut row = vec![a.clone()];
            for b in &names {
                let rho = self.spearman(a, b).ok().flatten();
                row.push(rho.map_or("-".to_string(), |r| format!("{r:.2}")));
            }
            t.push_row(row);
        }
        t
    }

    /// Scatter of proxy `x` against proxy `y`, one point per slot, with rank correlations.
    pub fn scatter(&self, x: &str, y: &str) -> Result<Figure> {
        ProxyScatter::from_scores(&self.get(x)?, &self.get(y)?)?.render()
    }

    /// Heat map of one proxy's scores.
    pub fn heatmap(&self, proxy: &str) -> Result<Figure> {
        ScoreHeatmap::new(&self.get(proxy)?).render()
    }

    /// A summary table (proxy, slots, batches, seconds, best three slots) and the correlations.
    pub fn to_html(&self) -> String {
        let mut t = HtmlTable::new(["proxy", "slots", "batches", "seconds", "best slots"])
            .caption(format!("{} proxies", self.scores.len()));
        for s in &self.scores {
            let mut best: Vec<_> = s.values.iter().collect();
            best.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            let top: Vec<String> = best.iter().take(3).map(|(k, _)| k.to_string()).collect();
            t.push_row([
                s.proxy.clone(),
                s.values.len().to_string(),
                s.num_batches.to_string(),
                format!("{:.2}", s.seconds),
                top.join(", "),
            ]);
        }
        let mut h = t.to_html();
        if self.scores.len() > 1 {
            h.push_str(&self.correlation_table().to_html());
        }
        h
    }

    pub fn evcxr_display(&self) {
        let text: Vec<String> = self.scores.iter().map(|s| s.to_string()).collect();
        emit_evcxr(&[
            ("text/plain", &text.join("\n")),
            ("text/html", &self.to_html()),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{SlotId, SlotKind};
    use std::collections::BTreeMap;

    fn scores(name: &str, vals: &[f64]) -> Scores {
        let values: BTreeMap<SlotId, f64> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| (SlotId::new(i, SlotKind::Value), *v))
            .collect();
        Scores {
            proxy: name.into(),
            values,
            rank_gains: None,
            num_batches: 2,
            seconds: 0.5,
        }
    }

    #[test]
    fn correlations_lookup_and_html() {
        let set = ScoreSet::new(vec![
            scores("grad-norm", &[1.0, 2.0, 3.0, 4.0]),
            scores("snip", &[4.0, 3.0, 2.0, 1.0]),
            scores("fisher", &[1.0, 3.0, 2.0, 4.0]),
        ]);
        assert_eq!(set.spearman("grad-norm", "snip").unwrap(), Some(-1.0));
        assert_eq!(set.spearman("grad_norm", "grad-norm").unwrap(), Some(1.0));
        let e = set.get("synflow").unwrap_err().to_string();
        assert!(e.contains("grad-norm, snip, fisher"), "{e}");
        let h = set.to_html();
        assert!(h.contains("3 proxies") && h.contains("Spearman"));
        // grad-norm's best slot is layer 3's value.
        assert!(h.contains("layer.3.attention.value, layer.2"), "{h}");
        assert!(h.contains(">-1.00<"), "{h}");
        assert!(set.scatter("grad-norm", "fisher").is_ok());
    }
}
