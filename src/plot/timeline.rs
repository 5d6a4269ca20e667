//! Re-allocation timeline of a dynamic run: slots by re-allocation step, on or off, with the slots
//! that changed at a step outlined.

use super::figure::Figure;
use super::grid::{Cell, Grid};
use super::palette;
use crate::adapters::SlotId;
use crate::search::Allocation;
use crate::{Error, Result};
use plotters::style::RGBColor;
use std::collections::BTreeSet;

/// Which slots were on after each re-allocation: `enabled[step][slot]`, aligned with `steps`
/// (training steps at which the allocation changed or was re-checked) and `slots`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReallocationTimeline {
    pub steps: Vec<usize>,
    pub slots: Vec<SlotId>,
    pub enabled: Vec<Vec<bool>>,
    /// Chart title (default `Re-allocation timeline`).
    pub title: Option<String>,
    /// Pixels; the default height grows with the number of slots.
    pub size: Option<(u32, u32)>,
}

impl ReallocationTimeline {
    /// Checks that `enabled` has one row per step and one entry per slot.
    pub fn new(steps: Vec<usize>, slots: Vec<SlotId>, enabled: Vec<Vec<bool>>) -> Result<Self> {
        if enabled.len() != steps.len() {
            return Err(Error::Plot(format!(
                "re-allocation timeline: {} steps but {} rows of on/off flags",
                steps.len(),
                enabled.len()
            )));
        }
        if let Some((i, row)) = enabled
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != slots.len())
        {
            return Err(Error::Plot(format!(
                "re-allocation timeline: step {} has {} on/off flags for {} slots",
                steps[i],
                row.len(),
                slots.len()
            )));
        }
        if steps.is_empty() || slots.is_empty() {
            return Err(Error::Plot(
                "re-allocation timeline: needs at least one step and one slot".into(),
            ));
        }
        Ok(ReallocationTimeline {
            steps,
            slots,
            enabled,
            title: None,
            size: None,
        })
    }

    /// From the allocation in force after each step; slots are every candidate of any of them.
    pub fn from_allocations(steps: Vec<usize>, allocations: &[Allocation]) -> Result<Self> {
        let slots: Vec<SlotId> = allocations
            .iter()
            .flat_map(|a| a.candidates.iter().chain(a.ranks.keys()))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let enabled = allocations
            .iter()
            .map(|a| slots.iter().map(|s| a.ranks.contains_key(s)).collect())
            .collect();
        Self::new(steps, slots, enabled)
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Number of slot switches (on to off or off to on) between consecutive steps.
    pub fn changes(&self) -> usize {
        self.enabled
            .windows(2)
            .map(|w| w[0].iter().zip(&w[1]).filter(|(a, b)| a != b).count())
            .sum()
    }

    pub fn render(&self) -> Result<Figure> {
        Self::new(self.steps.clone(), self.slots.clone(), self.enabled.clone())?;
        Figure::new(self.grid())
    }

    pub(crate) fn grid(&self) -> Grid {
        let on = palette::series(0);
        let turned_on = RGBColor(0, 0, 0);
        let turned_off = palette::OKABE_ITO[3];
        let n = self.slots.len();
        let cells: Vec<Vec<Option<Cell>>> = (0..n)
            .map(|s| {
                (0..self.steps.len())
                    .map(|t| {
                        let now = self.enabled[t][s];
                        let mut cell = Cell::new(if now { on } else { palette::OFF }, "");
                        if t > 0 && self.enabled[t - 1][s] != now {
                            cell.outline = Some(if now { turned_on } else { turned_off });
                        }
                        Some(cell)
                    })
                    .collect()
            })
            .collect();
        let per_step: Vec<String> = self
            .enabled
            .iter()
            .map(|row| row.iter().filter(|&&b| b).count().to_string())
            .collect();
        let per_slot: Vec<String> = (0..n)
            .map(|s| self.enabled.iter().filter(|row| row[s]).count().to_string())
            .collect();
        let height = (110 + 16 * (n as u32 + 1)).clamp(500, 2400);
        Grid {
            size: self.size.unwrap_or((800, height)),
            title: self
                .title
                .clone()
                .unwrap_or_else(|| "Re-allocation timeline".to_string()),
            subtitle: format!(
                "{n} slots · {} re-allocations · {} switches",
                self.steps.len(),
                self.changes()
            ),
            row_labels: self
                .slots
                .iter()
                .map(|s| format!("L{} {}", s.layer, s.kind.short()))
                .collect(),
            col_labels: self.steps.iter().map(|s| s.to_string()).collect(),
            cells,
            margin_cols: vec![("steps on".to_string(), per_slot)],
            margin_rows: vec![("# on".to_string(), per_step)],
            bar: None,
            swatches: vec![
                (on, None, "on".to_string()),
                (palette::OFF, None, "off".to_string()),
                (on, Some(turned_on), "switched on".to_string()),
                (palette::OFF, Some(turned_off), "switched off".to_string()),
            ],
            x_desc: Some("training step".to_string()),
            y_desc: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_validates_shapes_and_counts_switches() {
        let slots: Vec<SlotId> = ["layer.0.attention.query", "layer.1.residual1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let t = ReallocationTimeline::new(
            vec![0, 100, 200],
            slots.clone(),
            vec![vec![true, false], vec![false, true], vec![false, true]],
        )
        .unwrap();
        assert_eq!(t.changes(), 2);
        let g = t.grid();
        assert_eq!(g.row_labels, ["L0 q", "L1 res1"]);
        assert_eq!(g.margin_rows[0].1, ["1", "1", "1"]);
        assert_eq!(g.margin_cols[0].1, ["1", "2"]);
        assert!(g.cells[0][1].as_ref().unwrap().outline.is_some());
        assert!(g.cells[0][2].as_ref().unwrap().outline.is_none());
        let err = ReallocationTimeline::new(vec![0], slots.clone(), vec![vec![true]]).unwrap_err();
        assert!(
            err.to_string().contains("1 on/off flags for 2 slots"),
            "{err}"
        );
        assert!(ReallocationTimeline::new(vec![0, 1], slots, vec![vec![true, true]]).is_err());
    }
}
