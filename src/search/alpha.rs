//! [`AlphaRule`]: how an allocator picks `lora_alpha` for the rank it gives a slot.
//!
//! PEFT's scaling is `lora_alpha / r`. The reference LoRA config is r = 8, alpha = 16 (scaling 2), and
//! the reference shortcuts use alpha_s = 4 at every rank. An allocator that hands out different ranks
//! needs a rule, not a number: "alpha = 2r" keeps the scaling fixed as the rank changes, "alpha = 16"
//! keeps alpha fixed (scaling falls as 1 / r).

use crate::adapters::SlotKind;
use crate::search::allocation::SlotRank;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How `lora_alpha` follows the rank. Parses from `16` (fixed) or `2r` / `2*r` (per rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaRule {
    /// alpha = c * r: the scaling alpha / r stays c whatever the rank.
    PerRank(f64),
    /// The same alpha at every rank.
    Fixed(f64),
}

impl AlphaRule {
    /// LoRA default: alpha = 2r (r = 8 gives the reference alpha = 16).
    pub const LORA_DEFAULT: AlphaRule = AlphaRule::PerRank(2.0);
    /// Shortcut default: alpha_s = 4 at every rank, as the reference.
    pub const SHORTCUT_DEFAULT: AlphaRule = AlphaRule::Fixed(4.0);

    /// The alpha for rank `r`.
    pub fn alpha(&self, r: usize) -> f64 {
        match *self {
            AlphaRule::PerRank(c) => c * r as f64,
            AlphaRule::Fixed(a) => a,
        }
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
        let bad = || Error::invalid("lora_alpha", s, "a number such as 16, or a rule such as 2r");
        let rule = if let Some(c) = t.strip_suffix('r') {
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
        assert_eq!(AlphaRule::LORA_DEFAULT.alpha(8), 16.0);
        assert_eq!(AlphaRule::SHORTCUT_DEFAULT.alpha(2), 4.0);
        for bad in ["x", "-1", "0", "nan", "0r"] {
            let e = bad.parse::<AlphaRule>().unwrap_err().to_string();
            assert!(e.contains("lora_alpha"), "{e}");
        }
        let rules = AlphaRules::default();
        assert_eq!(rules.slot_rank(SlotKind::Value, 4).lora_alpha, 8.0);
        assert_eq!(rules.slot_rank(SlotKind::Residual1, 4).lora_alpha, 4.0);
    }
}
