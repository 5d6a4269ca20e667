//! [`AlphaRule`]: how an allocator picks `lora_alpha` for the rank it gives a slot.
//!
//! PEFT's scaling is `lora_alpha / r`. The reference LoRA config is r = 8, alpha = 16 (scaling 2), and
//! the reference shortcuts use alpha_s = 4 at every rank. An allocator that hands out different ranks
//! needs a rule, not a number: "alpha = 2r" keeps the scaling fixed as the rank changes, "alpha = 16"
//! keeps alpha fixed (scaling falls as 1 / r).
//!
//! The default everywhere (allocators, `--allocation uniform:..`, `heterolora search`, the study's
//! methods, notebooks) is the authors' convention: their code keeps `lora_alpha = 16` at every rank,
//! so their r = 2 adapters run at scaling 8 and their r = 8 adapters at scaling 2.
//! [`AlphaRule::PER_RANK_2R`] (alpha = 2r, scaling 2 at every rank) is the explicit alternative; the
//! CPU studies committed before this convention was unified used it, and their records carry the
//! alpha of every slot, so they stay readable as they are.

use crate::adapters::SlotKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Rank and alpha of one enabled slot (PEFT's `r` and `lora_alpha`; scaling = alpha / r).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlotRank {
    pub r: usize,
    pub lora_alpha: f64,
}

/// How `lora_alpha` follows the rank. Parses from `16` (fixed), `2r` / `2*r` (per rank), or the
/// names `authors` (= 16, the default) and `per-rank` (= 2r).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaRule {
    /// alpha = c * r: the scaling alpha / r stays c whatever the rank.
    PerRank(f64),
    /// The same alpha at every rank.
    Fixed(f64),
}

impl AlphaRule {
    /// The authors' convention: `lora_alpha = 16` at every rank (scaling 16 / r).
    pub const AUTHORS: AlphaRule = AlphaRule::Fixed(16.0);
    /// alpha = 2r: scaling 2 at every rank (equal to [`AlphaRule::AUTHORS`] at r = 8 only). What
    /// the CPU studies committed before the conventions were unified used.
    pub const PER_RANK_2R: AlphaRule = AlphaRule::PerRank(2.0);
    /// LoRA default: [`AlphaRule::AUTHORS`].
    pub const LORA_DEFAULT: AlphaRule = AlphaRule::AUTHORS;
    /// Shortcut default: alpha_s = 4 at every rank, as the reference.
    pub const SHORTCUT_DEFAULT: AlphaRule = AlphaRule::Fixed(4.0);

    /// The alpha for rank `r`.
    pub fn alpha(&self, r: usize) -> f64 {
        match *self {
            AlphaRule::PerRank(c) => c * r as f64,
            AlphaRule::Fixed(a) => a,
        }
    }

    /// [`AlphaRule::LORA_DEFAULT`], as a function (for `#[serde(default = ..)]`).
    pub fn lora_default() -> AlphaRule {
        AlphaRule::LORA_DEFAULT
    }

    /// [`AlphaRule::PER_RANK_2R`], as a function: the serde default of records written before
    /// the rule was recorded (they used it).
    pub fn legacy_study() -> AlphaRule {
        AlphaRule::PER_RANK_2R
    }

    /// Checks the constant is finite and positive; `name` is the parameter reported on error.
    pub fn check(&self, name: &str) -> Result<()> {
        let c = match *self {
            AlphaRule::PerRank(c) | AlphaRule::Fixed(c) => c,
        };
        if !(c.is_finite() && c > 0.0) {
            return Err(Error::invalid(
                name,
                self,
                "a positive finite alpha such as 16, or a per-rank rule such as 2r",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for AlphaRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlphaRule::PerRank(c) => write!(f, "{c}r"),
            AlphaRule::Fixed(a) => write!(f, "{a}"),
        }
    }
}

impl FromStr for AlphaRule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            Error::invalid(
                "lora_alpha",
                s,
                "a number such as 16, a rule such as 2r, or `authors` (16) / `per-rank` (2r)",
            )
        };
        let rule = if t == "authors" || t == "fixed" {
            AlphaRule::AUTHORS
        } else if t == "per-rank" || t == "per_rank" {
            AlphaRule::PER_RANK_2R
        } else if let Some(c) = t.strip_suffix('r') {
            let c = c.trim().trim_end_matches('*').trim();
            let c = if c.is_empty() {
                1.0
            } else {
                c.parse().map_err(|_| bad())?
            };
            AlphaRule::PerRank(c)
        } else {
            AlphaRule::Fixed(t.parse().map_err(|_| bad())?)
        };
        rule.check("lora_alpha")?;
        Ok(rule)
    }
}

/// The pair of rules an allocator uses: one for LoRA slots, one for shortcut slots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlphaRules {
    pub lora: AlphaRule,
    pub shortcut: AlphaRule,
}

impl Default for AlphaRules {
    fn default() -> Self {
        AlphaRules {
            lora: AlphaRule::LORA_DEFAULT,
            shortcut: AlphaRule::SHORTCUT_DEFAULT,
        }
    }
}

impl AlphaRules {
    /// The rank and alpha of a slot of `kind` at rank `r`.
    pub fn slot_rank(&self, kind: SlotKind, r: usize) -> SlotRank {
        let rule = if kind.is_shortcut() {
            self.shortcut
        } else {
            self.lora
        };
        SlotRank {
            r,
            lora_alpha: rule.alpha(r),
        }
    }

    pub fn check(&self) -> Result<()> {
        self.lora.check("lora_alpha")?;
        self.shortcut.check("shortcut_alpha")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_rules_parse_and_apply() {
        assert_eq!("16".parse::<AlphaRule>().unwrap(), AlphaRule::Fixed(16.0));
        assert_eq!("2r".parse::<AlphaRule>().unwrap(), AlphaRule::PerRank(2.0));
        assert_eq!("2*r".parse::<AlphaRule>().unwrap(), AlphaRule::PerRank(2.0));
        assert_eq!("r".parse::<AlphaRule>().unwrap(), AlphaRule::PerRank(1.0));
        assert_eq!("authors".parse::<AlphaRule>().unwrap(), AlphaRule::AUTHORS);
        assert_eq!(
            "per-rank".parse::<AlphaRule>().unwrap(),
            AlphaRule::PER_RANK_2R
        );
        // The authors' convention by default: alpha 16 at every rank (scaling 8 at r = 2).
        assert_eq!(AlphaRule::LORA_DEFAULT.alpha(8), 16.0);
        assert_eq!(AlphaRule::LORA_DEFAULT.alpha(2), 16.0);
        assert_eq!(AlphaRule::PER_RANK_2R.alpha(2), 4.0);
        assert_eq!(AlphaRule::SHORTCUT_DEFAULT.alpha(2), 4.0);
        for bad in ["x", "-1", "0", "nan", "0r"] {
            let e = bad.parse::<AlphaRule>().unwrap_err().to_string();
            assert!(e.contains("lora_alpha"), "{e}");
        }
        let rules = AlphaRules::default();
        assert_eq!(rules.slot_rank(SlotKind::Value, 4).lora_alpha, 16.0);
        assert_eq!(rules.slot_rank(SlotKind::Residual1, 4).lora_alpha, 4.0);
    }
}
