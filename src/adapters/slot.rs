//! Slot ids, slot kinds and exact parameter arithmetic.
//!
//! A slot is one place in a transformer layer where an adapter can be switched on: a LoRA module on
//! one of its linear maps (six in BERT and OPT, seven in Llama with its gated MLP), or one of the four
//! LoRA-adapted shortcut connections of a layer. Its stable id reads `layer.<i>.<kind>`, e.g.
//! `layer.3.attention.value` or `layer.0.residual1`. Which kinds a model has, their module paths
//! and their sizes come from its architecture: [`super::backbone`].

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of adapter slot in one transformer layer: the ten of BERT and OPT, and Llama's gate.
///
/// The names in ids are BERT's (`intermediate`, `output`) for every architecture, so that slot ids,
/// allocations and plots read the same across backbones; [`super::backbone::Architecture`] maps
/// them to each model's modules (OPT: `fc1`, `fc2`; Llama: `up_proj`, `down_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SlotKind {
    /// LoRA on the attention query projection (`attention.self.query`).
    Query,
    /// LoRA on the attention key projection (`attention.self.key`).
    Key,
    /// LoRA on the attention value projection (`attention.self.value`).
    Value,
    /// LoRA on the attention output projection (`attention.output.dense`).
    AttnOutput,
    /// LoRA on the feed-forward input projection (`intermediate.dense`).
    FfnIn,
    /// LoRA on the feed-forward output projection (`output.dense`).
    FfnOut,
    /// LoRA on the gate projection of a gated (SwiGLU) feed-forward block (Llama's
    /// `mlp.gate_proj`); BERT and OPT have none. Declared here so that LoRA kinds sort first.
    FfnGate,
    /// Identity + low-rank, replacing the residual around self-attention.
    Residual1,
    /// Identity + low-rank, replacing the residual around the feed-forward block.
    Residual2,
    /// Zero + low-rank, from the layer input to the layer output.
    Shortcut1,
    /// Zero + low-rank, from the previous layer's feed-forward input to this layer's
    /// post-attention point. Not in layer 0.
    Shortcut2,
}

impl SlotKind {
    /// Every kind of every architecture, LoRA kinds first (the order of `Ord`).
    pub const EVERY: [SlotKind; 11] = [
        SlotKind::Query,
        SlotKind::Key,
        SlotKind::Value,
        SlotKind::AttnOutput,
        SlotKind::FfnIn,
        SlotKind::FfnOut,
        SlotKind::FfnGate,
        SlotKind::Residual1,
        SlotKind::Residual2,
        SlotKind::Shortcut1,
        SlotKind::Shortcut2,
    ];
    /// The kinds of BERT and OPT (all but [`SlotKind::FfnGate`]), LoRA kinds first, in a fixed
    /// order used by tables and plots.
    pub const ALL: [SlotKind; 10] = [
        SlotKind::Query,
        SlotKind::Key,
        SlotKind::Value,
        SlotKind::AttnOutput,
        SlotKind::FfnIn,
        SlotKind::FfnOut,
        SlotKind::Residual1,
        SlotKind::Residual2,
        SlotKind::Shortcut1,
        SlotKind::Shortcut2,
    ];
    /// The six LoRA kinds of BERT and OPT.
    pub const LORA: [SlotKind; 6] = [
        SlotKind::Query,
        SlotKind::Key,
        SlotKind::Value,
        SlotKind::AttnOutput,
        SlotKind::FfnIn,
        SlotKind::FfnOut,
    ];
    /// The four shortcut kinds.
    pub const SHORTCUTS: [SlotKind; 4] = [
        SlotKind::Residual1,
        SlotKind::Residual2,
        SlotKind::Shortcut1,
        SlotKind::Shortcut2,
    ];

    /// The name used in slot ids (`attention.value`, `intermediate`, `residual1`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Query => "attention.query",
            SlotKind::Key => "attention.key",
            SlotKind::Value => "attention.value",
            SlotKind::AttnOutput => "attention.output",
            SlotKind::FfnIn => "intermediate",
            SlotKind::FfnOut => "output",
            SlotKind::FfnGate => "gate",
            SlotKind::Residual1 => "residual1",
            SlotKind::Residual2 => "residual2",
            SlotKind::Shortcut1 => "shortcut1",
            SlotKind::Shortcut2 => "shortcut2",
        }
    }

    /// A short label for table headers and plot axes (`q`, `k`, `v`, `o`, `ffn_in`, ...).
    pub fn short(self) -> &'static str {
        match self {
            SlotKind::Query => "q",
            SlotKind::Key => "k",
            SlotKind::Value => "v",
            SlotKind::AttnOutput => "o",
            SlotKind::FfnIn => "ffn_in",
            SlotKind::FfnOut => "ffn_out",
            SlotKind::FfnGate => "ffn_gate",
            SlotKind::Residual1 => "res1",
            SlotKind::Residual2 => "res2",
            SlotKind::Shortcut1 => "sc1",
            SlotKind::Shortcut2 => "sc2",
        }
    }

    /// Whether this is a shortcut kind rather than a LoRA module on a linear map.
    pub fn is_shortcut(self) -> bool {
        SlotKind::SHORTCUTS.contains(&self)
    }

    /// Whether the frozen map of a shortcut is the identity (residual kinds) rather than zero.
    pub fn is_identity_shortcut(self) -> bool {
        matches!(self, SlotKind::Residual1 | SlotKind::Residual2)
    }

    /// Whether the kind exists in layer `layer` (shortcut2 needs a previous layer).
    pub fn exists_in_layer(self, layer: usize) -> bool {
        !(self == SlotKind::Shortcut2 && layer == 0)
    }

    /// (d_in, d_out) of the map this slot adapts in a model whose attention maps are all
    /// `hidden x hidden` (BERT, OPT); grouped-query attention needs [`super::backbone::SlotTable`].
    pub fn dims(self, dims: &ModelDims) -> (usize, usize) {
        match self {
            SlotKind::FfnIn | SlotKind::FfnGate => (dims.hidden_size, dims.intermediate_size),
            SlotKind::FfnOut => (dims.intermediate_size, dims.hidden_size),
            _ => (dims.hidden_size, dims.hidden_size),
        }
    }

    /// Trainable parameters of a rank-`r` adapter on this kind: r * (d_in + d_out).
    pub fn params_at_rank(self, r: usize, dims: &ModelDims) -> usize {
        let (i, o) = self.dims(dims);
        r * (i + o)
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotKind {
    type Err = Error;

    /// Accepts the id names, the short labels and common aliases (`query`, `q_proj`, `ffn_out`,
    /// `gate_proj`, ...).
    fn from_str(s: &str) -> Result<Self> {
        let k = s.trim().to_ascii_lowercase();
        let kind = match k.as_str() {
            "attention.query" | "query" | "q" | "q_proj" | "attention.self.query" => {
                SlotKind::Query
            }
            "attention.key" | "key" | "k" | "k_proj" | "attention.self.key" => SlotKind::Key,
            "attention.value" | "value" | "v" | "v_proj" | "attention.self.value" => {
                SlotKind::Value
            }
            "attention.output"
            | "attention.output.dense"
            | "o"
            | "attn_out"
            | "out_proj"
            | "o_proj" => SlotKind::AttnOutput,
            "intermediate" | "intermediate.dense" | "ffn_in" | "fc1" | "up_proj" | "up" => {
                SlotKind::FfnIn
            }
            "output" | "output.dense" | "ffn_out" | "fc2" | "down_proj" | "down" => {
                SlotKind::FfnOut
            }
            "gate" | "ffn_gate" | "gate_proj" | "mlp.gate_proj" => SlotKind::FfnGate,
            "residual1" | "res1" => SlotKind::Residual1,
            "residual2" | "res2" => SlotKind::Residual2,
            "shortcut1" | "sc1" => SlotKind::Shortcut1,
            "shortcut2" | "sc2" => SlotKind::Shortcut2,
            _ => return Err(Error::UnknownSlot(s.to_string())),
        };
        Ok(kind)
    }
}

/// One adapter slot: a layer and a kind. Displays and parses as `layer.<i>.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId {
    pub layer: usize,
    pub kind: SlotKind,
}

impl SlotId {
    pub fn new(layer: usize, kind: SlotKind) -> Self {
        SlotId { layer, kind }
    }

    /// Trainable parameters at rank `r`.
    pub fn params_at_rank(&self, r: usize, dims: &ModelDims) -> usize {
        self.kind.params_at_rank(r, dims)
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer.{}.{}", self.layer, self.kind)
    }
}

impl FromStr for SlotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let rest = s
            .trim()
            .strip_prefix("layer.")
            .ok_or_else(|| Error::UnknownSlot(s.to_string()))?;
        let (layer, kind) = rest
            .split_once('.')
            .ok_or_else(|| Error::UnknownSlot(s.to_string()))?;
        let layer: usize = layer
            .parse()
            .map_err(|_| Error::UnknownSlot(s.to_string()))?;
        let kind: SlotKind = kind
            .parse()
            .map_err(|_| Error::UnknownSlot(s.to_string()))?;
        if !kind.exists_in_layer(layer) {
            return Err(Error::UnknownSlot(format!(
                "{s} (shortcut2 has no previous layer in layer 0)"
            )));
        }
        Ok(SlotId { layer, kind })
    }
}

// Slot ids serialise as their string form so that JSON maps read `{"layer.3.attention.value": 8}`.
impl Serialize for SlotId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SlotId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The sizes that fix every slot's parameter count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDims {
    pub num_layers: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
}

impl ModelDims {
    /// all-MiniLM-L6-v2: 6 layers, hidden 384, intermediate 1536.
    pub const MINILM_L6: ModelDims = ModelDims {
        num_layers: 6,
        hidden_size: 384,
        intermediate_size: 1536,
    };
}

/// Which slots are candidates: a set of kinds over a set of layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSpace {
    pub kinds: Vec<SlotKind>,
    /// Layers that may hold adapters; empty means all layers.
    #[serde(default)]
    pub layers: Vec<usize>,
}

impl SearchSpace {
    /// The reference LoRA space: query and value in every layer.
    pub fn lora_qv() -> Self {
        SearchSpace {
            kinds: vec![SlotKind::Query, SlotKind::Value],
            layers: vec![],
        }
    }

    /// The LoRA + shortcut space of the reference: query, value and the four shortcut kinds.
    pub fn lora_qv_shortcuts() -> Self {
        let mut kinds = vec![SlotKind::Query, SlotKind::Value];
        kinds.extend(SlotKind::SHORTCUTS);
        SearchSpace {
            kinds,
            layers: vec![],
        }
    }

    /// Parse a comma-separated kind list such as `q,v,residual1` (or `all`, `lora`, `shortcuts`;
    /// `all` and `lora` are BERT's and OPT's kinds: Llama's gate is named as `gate`).
    pub fn parse_kinds(spec: &str) -> Result<Self> {
        let mut kinds = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => kinds.extend(SlotKind::ALL),
                "lora" => kinds.extend(SlotKind::LORA),
                "shortcuts" => kinds.extend(SlotKind::SHORTCUTS),
                p => kinds.push(p.parse::<SlotKind>()?),
            }
        }
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            return Err(Error::invalid(
                "kinds",
                spec,
                "at least one slot kind, e.g. q,v",
            ));
        }
        Ok(SearchSpace {
            kinds,
            layers: vec![],
        })
    }

    /// Every candidate slot for a model with `num_layers` layers, in (layer, kind) order.
    pub fn slots(&self, num_layers: usize) -> Vec<SlotId> {
        let mut out = Vec::new();
        for layer in 0..num_layers {
            if !self.layers.is_empty() && !self.layers.contains(&layer) {
                continue;
            }
            for &kind in &self.kinds {
                if kind.exists_in_layer(layer) {
                    out.push(SlotId { layer, kind });
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ids_roundtrip_through_strings_and_json() {
        for layer in 0..3 {
            for kind in SlotKind::ALL {
                if !kind.exists_in_layer(layer) {
                    continue;
                }
                let id = SlotId::new(layer, kind);
                let s = id.to_string();
                assert_eq!(s.parse::<SlotId>().unwrap(), id, "{s}");
                let j = serde_json::to_string(&id).unwrap();
                assert_eq!(serde_json::from_str::<SlotId>(&j).unwrap(), id);
            }
        }
        assert_eq!(
            SlotId::new(3, SlotKind::Value).to_string(),
            "layer.3.attention.value"
        );
        assert_eq!(
            crate::adapters::Architecture::Bert.pattern_key(SlotId::new(3, SlotKind::Value)),
            "encoder.layer.3.attention.self.value"
        );
    }

    #[test]
    fn unknown_slots_are_clear_errors() {
        for bad in [
            "layer.x.attention.value",
            "layer.1.bogus",
            "query",
            "layer.0.shortcut2",
        ] {
            let err = bad.parse::<SlotId>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(SearchSpace::parse_kinds("q,zz").is_err());
    }

    #[test]
    fn parameter_counts_match_hand_arithmetic() {
        let d = ModelDims::MINILM_L6;
        // q,v at r = 8 on MiniLM-L6: 6 layers x 2 modules x 8 x (384 + 384) = 73,728.
        let total: usize = SearchSpace::lora_qv()
            .slots(d.num_layers)
            .iter()
            .map(|s| s.params_at_rank(8, &d))
            .sum();
        assert_eq!(total, 73_728);
        assert_eq!(SlotKind::FfnIn.params_at_rank(4, &d), 4 * (384 + 1536));
        // The LoRA + shortcut space has 6 x 2 LoRA slots and 6 x 4 - 1 shortcut slots.
        let s = SearchSpace::lora_qv_shortcuts().slots(6);
        assert_eq!(s.iter().filter(|x| !x.kind.is_shortcut()).count(), 12);
        assert_eq!(s.iter().filter(|x| x.kind.is_shortcut()).count(), 23);
    }
}
