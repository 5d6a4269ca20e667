//! LoRA-adapted shortcut connections and where they enter BERT's post-LN layer.
//!
//! A shortcut is `S(x) = Ws x + scale * (alpha / r) * B A x` with a frozen `Ws` that is the identity
//! (`residual1`, `residual2`: low-rank corrections of the existing residuals) or zero (`shortcut1`,
//! `shortcut2`: new low-rank paths). The low-rank part is a [`LoraAdapter`](super::LoraAdapter)
//! with `d_in = d_out = hidden_size`.
//!
//! One BERT layer with input `x` (and `p`, the previous layer's feed-forward input), with the
//! default [`ShortcutPlacement::InsideNorm`]:
//!
//! ```text
//! a   = Dropout(AttnOutput(SelfAttention(x)))
//! h   = LN1(a + S_residual1(x) + S_shortcut2(p))      // h is this layer's feed-forward input
//! f   = Dropout(FfnOut(act(FfnIn(h))))
//! out = LN2(f + S_residual2(h) + S_shortcut1(x))
//! ```
//!
//! A disabled `residual*` is the plain residual (`x`, `h`); a disabled `shortcut*` adds nothing.
//!
//! The reference implementation (post-LN OPT) adds the two cross-layer shortcuts *after* the
//! layer's LayerNorm and applies that same pretrained LayerNorm once more, whether the shortcut is
//! on or off (`h = LN1(LN1(a + S_r1(x)) + S_sc2(p))` from layer 1 on, `out = LN2(LN2(f + S_r2(h)) +
//! S_sc1(x))`). That extra normalisation changes the model's output even with every B = 0 (a
//! LayerNorm with a non-trivial weight and bias is not idempotent), i.e. the placement itself
//! perturbs the pretrained network. We therefore default to adding the shortcuts inside the
//! existing LayerNorm, where a fresh shortcut is an exact no-op like every LoRA module, and keep the
//! reference's placement as [`ShortcutPlacement::ExtraNorm`] so that the two can be compared. Under
//! `ExtraNorm`, switching a fresh shortcut on or off changes nothing (the norm is there either
//! way); the change against `InsideNorm` comes from the placement.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where the cross-layer shortcuts (`shortcut1`, `shortcut2`) are added (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortcutPlacement {
    /// Inside the existing post-LN sum: a zero-initialised shortcut is an exact no-op.
    #[default]
    InsideNorm,
    /// As the reference: after the layer's LayerNorm, which is then applied once more (its own
    /// pretrained weight and bias), with or without the shortcut.
    ExtraNorm,
}

impl fmt::Display for ShortcutPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShortcutPlacement::InsideNorm => "inside_norm",
            ShortcutPlacement::ExtraNorm => "extra_norm",
        })
    }
}

impl FromStr for ShortcutPlacement {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "inside_norm" | "inside" => Ok(ShortcutPlacement::InsideNorm),
            "extra_norm" | "extra" | "reference" => Ok(ShortcutPlacement::ExtraNorm),
            other => Err(crate::Error::invalid(
                "shortcut_placement",
                other,
                "inside_norm or extra_norm",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_parses_and_displays() {
        for p in [ShortcutPlacement::InsideNorm, ShortcutPlacement::ExtraNorm] {
            assert_eq!(p.to_string().parse::<ShortcutPlacement>().unwrap(), p);
        }
        assert!("sideways".parse::<ShortcutPlacement>().is_err());
        assert_eq!(ShortcutPlacement::default(), ShortcutPlacement::InsideNorm);
    }
}
