//! The backbone slot table: what each architecture's adapter slots are called and how big they are.
//!
//! A slot kind ([`SlotKind`]) is architecture-neutral; [`Architecture`] says which kinds a model
//! family has and the Hugging Face module path of each inside a layer, and [`SlotTable`] adds the
//! `(d_in, d_out)` of every map, which grouped-query attention makes differ between maps of one
//! layer (Llama's `k_proj` and `v_proj` map `hidden -> num_key_value_heads * head_dim`). PEFT key
//! names ([`super::peft`]), the adapter registries of the models and parameter counts read them
//! from here.
//!
//! ```
//! use heterolora::adapters::backbone::{Architecture, SlotTable};
//! use heterolora::adapters::{SlotId, SlotKind};
//! let v = SlotId::new(1, SlotKind::Value);
//! assert_eq!(Architecture::Bert.module_path(v), "bert.encoder.layer.1.attention.self.value");
//! assert_eq!(Architecture::Opt.module_path(v), "model.decoder.layers.1.self_attn.v_proj");
//! // Llama: hidden 32, 4 heads of 8, 2 key-value heads, MLP 64.
//! let t = SlotTable::llama(Architecture::Llama, 2, 32, 64, 4 * 8, 2 * 8);
//! assert_eq!(t.dims(SlotKind::Value), Some((32, 16)));
//! assert_eq!(t.params_at_rank(v, 4), Some(4 * (32 + 16)));
//! ```

use super::slot::{ModelDims, SearchSpace, SlotId, SlotKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// PEFT's prefix for the wrapped model's parameters.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// Which LoRA factor a PEFT key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    A,
    B,
}

/// A model family whose layers carry adapter slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// `BertForSequenceClassification`: post-LN encoder.
    Bert,
    /// `OPTForSequenceClassification`: decoder, pre- or post-LN (`do_layer_norm_before`).
    Opt,
    /// `LlamaForSequenceClassification`: pre-norm decoder with a gated MLP.
    Llama,
    /// `Qwen2ForSequenceClassification`: Llama's layout with q/k/v biases.
    Qwen2,
}

const BERT_LORA: [SlotKind; 6] = SlotKind::LORA;
const GATED_LORA: [SlotKind; 7] = [
    SlotKind::Query,
    SlotKind::Key,
    SlotKind::Value,
    SlotKind::AttnOutput,
    SlotKind::FfnIn,
    SlotKind::FfnOut,
    SlotKind::FfnGate,
];

impl Architecture {
    /// Hugging Face's `model_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::Opt => "opt",
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// The LoRA kinds this architecture has, in `Ord` order.
    pub fn lora_kinds(self) -> &'static [SlotKind] {
        match self {
            Architecture::Bert | Architecture::Opt => &BERT_LORA,
            Architecture::Llama | Architecture::Qwen2 => &GATED_LORA,
        }
    }

    /// Every slot kind of the architecture: its LoRA kinds, then the four shortcuts.
    pub fn kinds(self) -> Vec<SlotKind> {
        let mut k = self.lora_kinds().to_vec();
        k.extend(SlotKind::SHORTCUTS);
        k
    }

    /// Whether the architecture has slots of `kind`.
    pub fn has_kind(self, kind: SlotKind) -> bool {
        kind.is_shortcut() || self.lora_kinds().contains(&kind)
    }

    /// The Hugging Face module a LoRA kind adapts, relative to one layer (`self_attn.q_proj`);
    /// `None` for shortcuts and for kinds the architecture lacks.
    pub fn module(self, kind: SlotKind) -> Option<&'static str> {
        use SlotKind::*;
        Some(match (self, kind) {
            (Architecture::Bert, Query) => "attention.self.query",
            (Architecture::Bert, Key) => "attention.self.key",
            (Architecture::Bert, Value) => "attention.self.value",
            (Architecture::Bert, AttnOutput) => "attention.output.dense",
            (Architecture::Bert, FfnIn) => "intermediate.dense",
            (Architecture::Bert, FfnOut) => "output.dense",
            (Architecture::Opt, Query) => "self_attn.q_proj",
            (Architecture::Opt, Key) => "self_attn.k_proj",
            (Architecture::Opt, Value) => "self_attn.v_proj",
            (Architecture::Opt, AttnOutput) => "self_attn.out_proj",
            (Architecture::Opt, FfnIn) => "fc1",
            (Architecture::Opt, FfnOut) => "fc2",
            (Architecture::Llama | Architecture::Qwen2, Query) => "self_attn.q_proj",
            (Architecture::Llama | Architecture::Qwen2, Key) => "self_attn.k_proj",
            (Architecture::Llama | Architecture::Qwen2, Value) => "self_attn.v_proj",
            (Architecture::Llama | Architecture::Qwen2, AttnOutput) => "self_attn.o_proj",
            (Architecture::Llama | Architecture::Qwen2, FfnIn) => "mlp.up_proj",
            (Architecture::Llama | Architecture::Qwen2, FfnOut) => "mlp.down_proj",
            (Architecture::Llama | Architecture::Qwen2, FfnGate) => "mlp.gate_proj",
            _ => return None,
        })
    }

    /// The name under which `target_modules` lists a kind adapted in every layer, when that name
    /// matches no other module of the model (PEFT matches it as a suffix of the module path).
    /// BERT's `output.dense` would also match `attention.output.dense`: it has none.
    pub fn target_name(self, kind: SlotKind) -> Option<&'static str> {
        match (self, kind) {
            (Architecture::Bert, SlotKind::Query) => Some("query"),
            (Architecture::Bert, SlotKind::Key) => Some("key"),
            (Architecture::Bert, SlotKind::Value) => Some("value"),
            (Architecture::Bert, SlotKind::FfnOut) => None,
            (Architecture::Bert, k) => self.module(k),
            (_, k) => self.module(k).map(|m| m.rsplit('.').next().unwrap_or(m)),
        }
    }

    /// The task model's path to the backbone (`bert.`, `model.decoder.`, `model.`).
    pub fn base_prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert.",
            Architecture::Opt => "model.decoder.",
            Architecture::Llama | Architecture::Qwen2 => "model.",
        }
    }

    /// The layer list inside the backbone (`encoder.layer`, `layers`).
    pub fn layers_segment(self) -> &'static str {
        match self {
            Architecture::Bert => "encoder.layer",
            _ => "layers",
        }
    }

    /// The module path of a slot inside the task model: `bert.encoder.layer.3.attention.self.value`,
    /// `model.layers.0.mlp.gate_proj`; shortcuts (which Hugging Face lacks) use their kind name,
    /// `model.layers.3.residual1`.
    pub fn module_path(self, slot: SlotId) -> String {
        let module = self.module(slot.kind).unwrap_or_else(|| slot.kind.as_str());
        format!(
            "{}{}.{}.{module}",
            self.base_prefix(),
            self.layers_segment(),
            slot.layer
        )
    }

    /// The key PEFT users write in `rank_pattern` / `alpha_pattern` for a slot: its module path
    /// without the backbone prefix (`encoder.layer.3.attention.self.value`, `layers.0.fc1`).
    pub fn pattern_key(self, slot: SlotId) -> String {
        let p = self.module_path(slot);
        p[self.base_prefix().len()..].to_string()
    }

    /// The PEFT key of one factor (`lora_A` or `lora_B`) of a slot's adapter.
    pub fn slot_key(self, slot: SlotId, factor: &str) -> String {
        format!("{PEFT_PREFIX}{}.{factor}.weight", self.module_path(slot))
    }

    /// Parses an adapter key (with or without `base_model.model.` and the backbone prefix) into
    /// slot and factor; `None` for keys of other modules or architectures.
    pub fn parse_key(self, key: &str) -> Option<(SlotId, Factor)> {
        let k = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
        let k = k.strip_prefix(self.base_prefix()).unwrap_or(k);
        let rest = k.strip_prefix(self.layers_segment())?.strip_prefix('.')?;
        let (layer, rest) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        let (module, factor) = if let Some(m) = rest.strip_suffix(".lora_A.weight") {
            (m, Factor::A)
        } else if let Some(m) = rest.strip_suffix(".lora_B.weight") {
            (m, Factor::B)
        } else {
            return None;
        };
        let kind = self.kinds().into_iter().find(|k| {
            self.module(*k) == Some(module) || (k.is_shortcut() && k.as_str() == module)
        })?;
        kind.exists_in_layer(layer)
            .then_some((SlotId::new(layer, kind), factor))
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The slots of one model: its architecture, its depth and the `(d_in, d_out)` of every kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTable {
    pub architecture: Architecture,
    pub num_layers: usize,
    pub hidden_size: usize,
    /// The width of the feed-forward block (`intermediate_size`, OPT's `ffn_dim`).
    pub intermediate_size: usize,
    /// `(kind, d_in, d_out)` of every LoRA kind; shortcuts are `hidden -> hidden`.
    maps: Vec<(SlotKind, usize, usize)>,
}

impl SlotTable {
    /// BERT: every attention map `hidden -> hidden`, `intermediate.dense` `hidden -> intermediate`
    /// and `output.dense` back; the same numbers as [`SlotKind::dims`].
    pub fn bert(dims: &ModelDims) -> Self {
        Self::plain(Architecture::Bert, dims)
    }

    /// OPT: as BERT, with `fc1` / `fc2` of width `ffn_dim`.
    pub fn opt(num_layers: usize, hidden_size: usize, ffn_dim: usize) -> Self {
        Self::plain(
            Architecture::Opt,
            &ModelDims {
                num_layers,
                hidden_size,
                intermediate_size: ffn_dim,
            },
        )
    }

    fn plain(architecture: Architecture, d: &ModelDims) -> Self {
        let maps = architecture
            .lora_kinds()
            .iter()
            .map(|&k| {
                let (i, o) = k.dims(d);
                (k, i, o)
            })
            .collect();
        SlotTable {
            architecture,
            num_layers: d.num_layers,
            hidden_size: d.hidden_size,
            intermediate_size: d.intermediate_size,
            maps,
        }
    }

    /// Llama / Qwen2: `q_out = num_attention_heads * head_dim` (`q_proj`'s output and `o_proj`'s
    /// input) and `kv_out = num_key_value_heads * head_dim` (`k_proj`, `v_proj`).
    pub fn llama(
        architecture: Architecture,
        num_layers: usize,
        hidden_size: usize,
        intermediate_size: usize,
        q_out: usize,
        kv_out: usize,
    ) -> Self {
        let (h, i) = (hidden_size, intermediate_size);
        SlotTable {
            architecture,
            num_layers,
            hidden_size,
            intermediate_size,
            maps: vec![
                (SlotKind::Query, h, q_out),
                (SlotKind::Key, h, kv_out),
                (SlotKind::Value, h, kv_out),
                (SlotKind::AttnOutput, q_out, h),
                (SlotKind::FfnIn, h, i),
                (SlotKind::FfnOut, i, h),
                (SlotKind::FfnGate, h, i),
            ],
        }
    }

    /// `(d_in, d_out)` of the map a slot kind adapts; `None` for a kind the model lacks.
    pub fn dims(&self, kind: SlotKind) -> Option<(usize, usize)> {
        if kind.is_shortcut() {
            return Some((self.hidden_size, self.hidden_size));
        }
        self.maps
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|&(_, i, o)| (i, o))
    }

    /// Whether the model has `slot` (its kind, its layer; shortcut2 not in layer 0).
    pub fn has_slot(&self, slot: SlotId) -> bool {
        slot.layer < self.num_layers
            && slot.kind.exists_in_layer(slot.layer)
            && self.dims(slot.kind).is_some()
    }

    /// Trainable parameters of a rank-`r` adapter on `slot`: r * (d_in + d_out).
    pub fn params_at_rank(&self, slot: SlotId, r: usize) -> Option<usize> {
        self.has_slot(slot)
            .then(|| self.dims(slot.kind).map(|(i, o)| r * (i + o)))
            .flatten()
    }

    /// The candidate slots of `space` that this model has, in (layer, kind) order. A space that
    /// names every BERT LoRA kind (`lora`, `all`) means every LoRA map, so on a gated
    /// architecture it takes the gate too.
    pub fn slots(&self, space: &SearchSpace) -> Vec<SlotId> {
        let mut space = space.clone();
        let every_lora = SlotKind::LORA.iter().all(|k| space.kinds.contains(k));
        if every_lora && !space.kinds.contains(&SlotKind::FfnGate) {
            space.kinds.push(SlotKind::FfnGate);
        }
        space
            .slots(self.num_layers)
            .into_iter()
            .filter(|s| self.has_slot(*s))
            .collect()
    }

    /// Every slot of the model: all its kinds in every layer.
    pub fn all_slots(&self) -> Vec<SlotId> {
        let space = SearchSpace {
            kinds: self.architecture.kinds(),
            layers: vec![],
        };
        self.slots(&space)
    }

    /// The BERT-shaped summary an [`super::Allocation`] records (layers, hidden, feed-forward width).
    pub fn model_dims(&self) -> ModelDims {
        ModelDims {
            num_layers: self.num_layers,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
        }
    }
}

/// What allocators size slots with: BERT's [`ModelDims`] (every attention map
/// `hidden x hidden`) or a model's [`SlotTable`] (grouped-query k/v maps are smaller, Llama has
/// a gate), so that budgets are exact on any backbone.
pub trait SlotSizes {
    /// Layers, hidden and feed-forward width: what an [`super::Allocation`] records.
    fn model_dims(&self) -> ModelDims;
    /// The candidate slots of `space` on this model, in (layer, kind) order.
    fn candidates(&self, space: &SearchSpace) -> crate::Result<Vec<SlotId>>;
    /// Trainable parameters of a rank-`r` adapter on the candidate `slot`: r * (d_in + d_out).
    fn slot_params(&self, slot: SlotId, r: usize) -> usize;
    /// `(d_in, d_out)` of a slot kind.
    fn kind_dims(&self, kind: SlotKind) -> (usize, usize);
}

impl SlotSizes for ModelDims {
    fn model_dims(&self) -> ModelDims {
        *self
    }
    fn candidates(&self, space: &SearchSpace) -> crate::Result<Vec<SlotId>> {
        super::allocation::candidates(space, self)
    }
    fn slot_params(&self, slot: SlotId, r: usize) -> usize {
        slot.params_at_rank(r, self)
    }
    fn kind_dims(&self, kind: SlotKind) -> (usize, usize) {
        kind.dims(self)
    }
}

impl SlotSizes for SlotTable {
    fn model_dims(&self) -> ModelDims {
        SlotTable::model_dims(self)
    }
    fn candidates(&self, space: &SearchSpace) -> crate::Result<Vec<SlotId>> {
        if self.architecture == Architecture::Bert {
            return super::allocation::candidates(space, &SlotTable::model_dims(self));
        }
        super::allocation::candidates_in(space, self)
    }
    fn slot_params(&self, slot: SlotId, r: usize) -> usize {
        self.dims(slot.kind).map_or(0, |(i, o)| r * (i + o))
    }
    fn kind_dims(&self, kind: SlotKind) -> (usize, usize) {
        self.dims(kind)
            .unwrap_or_else(|| kind.dims(&SlotTable::model_dims(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_table_matches_slot_kind_arithmetic_and_paths() {
        let d = ModelDims::MINILM_L6;
        let t = SlotTable::bert(&d);
        for kind in SlotKind::ALL {
            assert_eq!(t.dims(kind), Some(kind.dims(&d)), "{kind}");
            let s = SlotId::new(1, kind);
            assert_eq!(t.params_at_rank(s, 8), Some(kind.params_at_rank(8, &d)));
        }
        assert_eq!(t.dims(SlotKind::FfnGate), None);
        assert_eq!(
            Architecture::Bert.slot_key(SlotId::new(0, SlotKind::Query), "lora_A"),
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"
        );
        assert_eq!(t.all_slots().len(), 6 * 10 - 1);
    }

    #[test]
    fn keys_roundtrip_for_every_architecture_and_kind() {
        for arch in [
            Architecture::Bert,
            Architecture::Opt,
            Architecture::Llama,
            Architecture::Qwen2,
        ] {
            for kind in arch.kinds() {
                let slot = SlotId::new(3, kind);
                for (f, factor) in [("lora_A", Factor::A), ("lora_B", Factor::B)] {
                    let k = arch.slot_key(slot, f);
                    assert_eq!(arch.parse_key(&k), Some((slot, factor)), "{k}");
                }
            }
        }
        assert_eq!(
            Architecture::Llama.slot_key(SlotId::new(2, SlotKind::FfnGate), "lora_B"),
            "base_model.model.model.layers.2.mlp.gate_proj.lora_B.weight"
        );
        assert_eq!(
            Architecture::Opt.pattern_key(SlotId::new(2, SlotKind::FfnIn)),
            "layers.2.fc1"
        );
        // A key of another architecture is not taken for one of this one.
        let opt_key = Architecture::Opt.slot_key(SlotId::new(0, SlotKind::AttnOutput), "lora_A");
        assert_eq!(Architecture::Llama.parse_key(&opt_key), None);
        assert_eq!(Architecture::Bert.parse_key(&opt_key), None);
        assert_eq!(Architecture::Opt.target_name(SlotKind::FfnOut), Some("fc2"));
        assert_eq!(
            Architecture::Qwen2.target_name(SlotKind::FfnGate),
            Some("gate_proj")
        );
    }

    #[test]
    fn grouped_query_dims_and_counts() {
        // hidden 32, 4 heads x 8, 2 kv heads, MLP 48.
        let t = SlotTable::llama(Architecture::Llama, 2, 32, 48, 32, 16);
        assert_eq!(t.dims(SlotKind::Key), Some((32, 16)));
        assert_eq!(t.dims(SlotKind::AttnOutput), Some((32, 32)));
        assert_eq!(t.dims(SlotKind::FfnGate), Some((32, 48)));
        assert_eq!(t.dims(SlotKind::Shortcut1), Some((32, 32)));
        let q = SlotId::new(0, SlotKind::Query);
        let k = SlotId::new(0, SlotKind::Key);
        assert_eq!(t.params_at_rank(q, 2), Some(2 * 64));
        assert_eq!(t.params_at_rank(k, 2), Some(2 * 48));
        assert_eq!(t.params_at_rank(SlotId::new(2, SlotKind::Key), 2), None);
        // 2 layers x (7 LoRA + 4 shortcuts) - shortcut2 of layer 0.
        assert_eq!(t.all_slots().len(), 21);
        let qv = t.slots(&SearchSpace::lora_qv());
        assert_eq!(qv.len(), 4);
    }
}
