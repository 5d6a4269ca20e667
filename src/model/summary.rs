//! [`ParamSummary`]: a per-slot parameter table for notebooks and logs.

use super::classifier::SequenceClassifier;
use crate::adapters::SlotId;
use crate::display::{escape, thousands};
use std::fmt;

/// One adapter's row.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    pub slot: SlotId,
    pub r: usize,
    pub lora_alpha: f64,
    pub scale: f64,
    pub enabled: bool,
    /// r * (d_in + d_out).
    pub params: usize,
}

/// Parameter counts of a model: per adapter, head, trainable, total.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSummary {
    pub rows: Vec<SlotRow>,
    pub head: usize,
    pub base: usize,
    /// Enabled adapters + head.
    pub trainable: usize,
    /// Base + trainable.
    pub total: usize,
}

impl ParamSummary {
    /// An HTML table: one row per adapter, then head, trainable and total.
    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<table><thead><tr><th>slot</th><th>r</th><th>lora_alpha</th><th>scale</th><th>enabled</th><th>params</th></tr></thead><tbody>",
        );
        for r in &self.rows {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:right\">{}</td></tr>",
                escape(&r.slot.to_string()),
                r.r,
                r.lora_alpha,
                r.scale,
                if r.enabled { "yes" } else { "no" },
                thousands(r.params)
            ));
        }
        let pct = 100.0 * self.trainable as f64 / self.total.max(1) as f64;
        h.push_str(&format!(
            "</tbody><tfoot><tr><td colspan=\"5\">classifier head</td><td style=\"text-align:right\">{}</td></tr>\
             <tr><td colspan=\"5\"><b>trainable</b> ({pct:.3}% of total)</td><td style=\"text-align:right\"><b>{}</b></td></tr>\
             <tr><td colspan=\"5\">total (frozen base {})</td><td style=\"text-align:right\">{}</td></tr></tfoot></table>",
            thousands(self.head),
            thousands(self.trainable),
            thousands(self.base),
            thousands(self.total)
        ));
        h
    }

    /// Shows the table inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl fmt::Display for ParamSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<28} {:>3} {:>6} {:>5} {:>3} {:>10}",
            "slot", "r", "alpha", "scale", "on", "params"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<28} {:>3} {:>6} {:>5} {:>3} {:>10}",
                r.slot.to_string(),
                r.r,
                r.lora_alpha,
                r.scale,
                if r.enabled { "yes" } else { "no" },
                thousands(r.params)
            )?;
        }
        writeln!(
            f,
            "head {}, trainable {}, total {}",
            thousands(self.head),
            thousands(self.trainable),
            thousands(self.total)
        )
    }
}

impl SequenceClassifier {
    /// An HTML overview: architecture, dtype, device, then the parameter table.
    pub fn to_html(&self) -> String {
        let c = &self.cfg;
        format!(
            "<p><b>SequenceClassifier</b>: BERT {} layers, hidden {}, {} heads, intermediate {}, \
             {} labels, {} on {}, shortcuts {}</p>{}",
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.intermediate_size,
            self.num_labels,
            match super::primitives::trainable_dtype(self.dtype) {
                t if t != self.dtype => format!("{:?} (adapters and head {t:?})", self.dtype),
                _ => format!("{:?}", self.dtype),
            },
            escape(&crate::device::device_name(&self.device)),
            self.placement,
            self.param_summary().to_html()
        )
    }

    /// Shows [`SequenceClassifier::to_html`] inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }

    /// The per-slot parameter table.
    pub fn param_summary(&self) -> ParamSummary {
        ParamSummary {
            rows: self
                .adapters
                .iter()
                .map(|(s, a)| SlotRow {
                    slot: *s,
                    r: a.r,
                    lora_alpha: a.lora_alpha,
                    scale: a.scale,
                    enabled: a.enabled,
                    params: a.params(),
                })
                .collect(),
            head: self.head_params(),
            base: self.base_params(),
            trainable: self.trainable_params(),
            total: self.total_params(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SlotKind;

    #[test]
    fn html_lists_slots_and_totals() {
        let s = ParamSummary {
            rows: vec![SlotRow {
                slot: SlotId::new(0, SlotKind::Query),
                r: 8,
                lora_alpha: 16.0,
                scale: 1.0,
                enabled: true,
                params: 6144,
            }],
            head: 770,
            base: 22_713_216,
            trainable: 6914,
            total: 22_720_130,
        };
        let h = s.to_html();
        assert!(h.contains("layer.0.attention.query") && h.contains("6,144"));
        assert!(h.contains("22,720,130") && h.starts_with("<table>") && h.ends_with("</table>"));
        assert!(s.to_string().contains("6,914"));
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
