//! The `--allocation` argument: a uniform spec or an allocation file.
//!
//! Uniform specs read `uniform:<kinds>[:r=<r>][:alpha=<alpha>][:layers=<i,j,...>]`, e.g.
//! `uniform:q,v:r=8` (the LoRA reference: query and value in every layer, r = 8, alpha = 16) or
//! `uniform:q,v,shortcuts:r=2`. Kinds take the names of [`SearchSpace::parse_kinds`]. Without
//! `alpha`, LoRA slots get `lora_alpha` 16 at every rank (the authors' convention, the default of
//! every allocator: see [`AlphaRule`]) and shortcut slots 4, the reference's values; `alpha` takes
//! a number or a per-rank rule (`alpha=2r`: scaling 2 at every rank). Anything else is read as the
//! path of an allocation JSON file (as `heterolora search` writes it).
//!
//! Specs parse against the model's sizes ([`SlotSizes`]): BERT's [`crate::adapters::ModelDims`]
//! or a loaded model's [`crate::adapters::SlotTable`], on which kinds the model lacks are left
//! out (`all` takes Llama's gate; `gate` alone on OPT is an error naming the architecture).

use crate::adapters::{SearchSpace, SlotSizes};
use crate::search::{Allocation, AlphaRule, SlotRank};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Parse `spec` for a model of sizes `sizes`: BERT's [`crate::adapters::ModelDims`], or the
/// [`crate::adapters::SlotTable`] of a loaded model (any backbone).
pub fn parse_allocation<S: SlotSizes + ?Sized>(spec: &str, sizes: &S) -> Result<Allocation> {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix("uniform:") {
        return parse_uniform(rest, sizes);
    }
    let dims = &sizes.model_dims();
    let path = Path::new(spec);
    if !path.is_file() {
        return Err(Error::invalid(
            "allocation",
            spec,
            "a uniform spec such as `uniform:q,v:r=8` or the path of an allocation JSON file",
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let alloc: Allocation = serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, e.line(), format!("not an allocation: {e}")))?;
    if alloc.dims != *dims {
        return Err(Error::parse(
            path,
            1,
            format!(
                "allocation is for a model with dims {:?}, but the model has {:?}",
                alloc.dims, dims
            ),
        ));
    }
    if let Some((slot, _)) = alloc.ranks.iter().find(|(s, _)| s.layer >= dims.num_layers) {
        return Err(Error::parse(
            path,
            1,
            format!(
                "slot {slot} is beyond the model's {} layers",
                dims.num_layers
            ),
        ));
    }
    Ok(alloc)
}

/// `spec` with LoRA alpha following `rule` where the spec does not say: a uniform spec without
/// `alpha=` gets `:alpha=<rule>` appended (so the rule is part of the spec a checkpoint records).
/// A spec that sets `alpha` itself is returned as it is; an allocation file records every slot's
/// alpha, so a rule for it is an error rather than silently ignored.
pub fn with_lora_alpha_rule(spec: &str, rule: AlphaRule) -> Result<String> {
    rule.check("lora_alpha")?;
    let spec = spec.trim();
    let Some(rest) = spec.strip_prefix("uniform:") else {
        return Err(Error::invalid(
            "lora_alpha",
            rule,
            "no rule with an allocation file (its alphas are in the file); use a uniform spec",
        ));
    };
    let has_alpha = rest.split(':').skip(1).any(|part| {
        part.split_once('=')
            .is_some_and(|(k, _)| matches!(k.trim(), "alpha" | "lora_alpha"))
    });
    Ok(if has_alpha {
        spec.to_string()
    } else {
        format!("{spec}:alpha={rule}")
    })
}

fn parse_uniform<S: SlotSizes + ?Sized>(rest: &str, sizes: &S) -> Result<Allocation> {
    let dims = &sizes.model_dims();
    let mut parts = rest.split(':');
    let kinds = parts.next().unwrap_or_default();
    let mut space = SearchSpace::parse_kinds(kinds)?;
    let mut r = 8usize;
    let mut alpha: Option<AlphaRule> = None;
    for part in parts {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            Error::invalid(
                "allocation",
                part,
                "`r=<rank>`, `alpha=<alpha>` or `layers=<i,j,..>`",
            )
        })?;
        match k.trim() {
            "r" => {
                r =
                    v.trim().parse().ok().filter(|&r| r > 0).ok_or_else(|| {
                        Error::invalid("allocation r", v, "a positive integer rank")
                    })?
            }
            "alpha" | "lora_alpha" => {
                alpha = Some(v.trim().parse::<AlphaRule>().map_err(|_| {
                    Error::invalid(
                        "allocation alpha",
                        v,
                        "a positive number such as 16, or a per-rank rule such as 2r",
                    )
                })?)
            }
            "layers" => {
                let mut layers = Vec::new();
                for l in v.split(',') {
                    let l: usize = l.trim().parse().map_err(|_| {
                        Error::invalid("allocation layers", v, "comma-separated layer indices")
                    })?;
                    if l >= dims.num_layers {
                        return Err(Error::invalid(
                            "allocation layers",
                            l,
                            format!("a layer index below {}", dims.num_layers),
                        ));
                    }
                    layers.push(l);
                }
                space.layers = layers;
            }
            other => {
                return Err(Error::invalid(
                    "allocation",
                    other,
                    "one of r, alpha, layers",
                ));
            }
        }
    }
    let candidates = sizes.candidates(&space)?;
    let ranks: BTreeMap<_, _> = candidates
        .iter()
        .map(|&slot| {
            let a = alpha
                .unwrap_or(if slot.kind.is_shortcut() {
                    AlphaRule::SHORTCUT_DEFAULT
                } else {
                    AlphaRule::LORA_DEFAULT
                })
                .alpha(r);
            (slot, SlotRank { r, lora_alpha: a })
        })
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("spec".to_string(), format!("uniform:{rest}"));
    Ok(Allocation {
        dims: *dims,
        candidates,
        ranks,
        method: "uniform".into(),
        proxy: None,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{ModelDims, SlotId, SlotKind};

    #[test]
    fn uniform_qv_r8_is_the_reference_lora() {
        let a = parse_allocation("uniform:q,v:r=8", &ModelDims::MINILM_L6).unwrap();
        assert_eq!(a.ranks.len(), 12);
        assert_eq!(a.rank(&SlotId::new(5, SlotKind::Value)), 8);
        assert_eq!(a.ranks[&SlotId::new(0, SlotKind::Query)].lora_alpha, 16.0);
        // 12 modules * 8 * (384 + 384).
        assert_eq!(a.trainable_params(), 73_728);
    }

    #[test]
    fn shortcuts_get_their_alpha_and_options_parse() {
        let a =
            parse_allocation("uniform:q,shortcuts:r=2:layers=1,2", &ModelDims::MINILM_L6).unwrap();
        assert!(a.ranks.keys().all(|s| s.layer == 1 || s.layer == 2));
        assert_eq!(
            a.ranks[&SlotId::new(1, SlotKind::Residual1)].lora_alpha,
            4.0
        );
        assert_eq!(a.ranks[&SlotId::new(2, SlotKind::Query)].r, 2);
        let b = parse_allocation("uniform:v:alpha=32", &ModelDims::MINILM_L6).unwrap();
        assert_eq!(b.ranks[&SlotId::new(0, SlotKind::Value)].lora_alpha, 32.0);
        // The CLI, the library's allocators and the study share the authors' alpha 16 at r = 2;
        // the per-rank rule is explicit.
        let d = ModelDims::MINILM_L6;
        let cli = parse_allocation("uniform:q,v:r=2", &d).unwrap();
        let lib = crate::search::UniformParams::new()
            .r(2)
            .check()
            .unwrap()
            .allocate(&crate::adapters::SearchSpace::lora_qv(), &d)
            .unwrap();
        let study = crate::study::Method::uniform(2)
            .allocate(&d, None, 0)
            .unwrap();
        assert_eq!(cli.ranks, lib.ranks);
        assert_eq!(cli.ranks, study.ranks);
        assert!(cli.ranks.values().all(|s| s.lora_alpha == 16.0));
        let per_rank = parse_allocation("uniform:q,v:r=2:alpha=2r", &d).unwrap();
        assert!(per_rank.ranks.values().all(|s| s.lora_alpha == 4.0));
    }

    #[test]
    fn an_alpha_rule_joins_uniform_specs_without_alpha() {
        let s = with_lora_alpha_rule("uniform:q,v:r=2", AlphaRule::PER_RANK_2R).unwrap();
        assert_eq!(s, "uniform:q,v:r=2:alpha=2r");
        let a = parse_allocation(&s, &ModelDims::MINILM_L6).unwrap();
        assert!(a.ranks.values().all(|x| x.lora_alpha == 4.0));
        let kept = with_lora_alpha_rule("uniform:q,v:alpha=8:r=2", AlphaRule::PER_RANK_2R).unwrap();
        assert_eq!(kept, "uniform:q,v:alpha=8:r=2");
        assert!(with_lora_alpha_rule("alloc.json", AlphaRule::AUTHORS).is_err());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let d = ModelDims::MINILM_L6;
        for (spec, needle) in [
            ("uniform:q,v:r=0", "rank"),
            ("uniform:q,v:rank=8", "one of r, alpha, layers"),
            ("uniform:q,v:layers=9", "below 6"),
            ("uniform:qq", "qq"),
            ("/no/such/file.json", "allocation JSON file"),
        ] {
            let e = parse_allocation(spec, &d).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn specs_parse_against_a_decoders_slot_table() {
        use crate::adapters::{Architecture, SlotTable};
        // Llama: hidden 32, feed-forward 48, q 32 -> 32, k/v 32 -> 16 (grouped-query).
        let t = SlotTable::llama(Architecture::Llama, 2, 32, 48, 32, 16);
        let a = parse_allocation("uniform:q,v,gate:r=4", &t).unwrap();
        assert_eq!(a.ranks.len(), 6);
        assert_eq!(a.rank(&SlotId::new(1, SlotKind::FfnGate)), 4);
        assert_eq!(
            a.trainable_params_in(&t).unwrap(),
            2 * 4 * ((32 + 32) + (32 + 16) + (32 + 48))
        );
        // `all` takes the gate on Llama; on BERT's table it is what ModelDims gives.
        let all = parse_allocation("uniform:all:r=2", &t).unwrap();
        assert!(all.ranks.keys().any(|s| s.kind == SlotKind::FfnGate));
        let d = ModelDims::MINILM_L6;
        assert_eq!(
            parse_allocation("uniform:all:r=2", &SlotTable::bert(&d)).unwrap(),
            parse_allocation("uniform:all:r=2", &d).unwrap()
        );
        // OPT has no gate: the error names the architecture.
        let opt = SlotTable::opt(2, 32, 48);
        let e = parse_allocation("uniform:gate", &opt)
            .unwrap_err()
            .to_string();
        assert!(e.contains("opt"), "{e}");
    }

    #[test]
    fn allocation_files_roundtrip_and_dims_are_checked() {
        let a = parse_allocation("uniform:q,v:r=4", &ModelDims::MINILM_L6).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alloc.json");
        std::fs::write(&p, serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(
            parse_allocation(p.to_str().unwrap(), &ModelDims::MINILM_L6).unwrap(),
            a
        );
        let other = ModelDims {
            num_layers: 2,
            hidden_size: 8,
            intermediate_size: 16,
        };
        let e = parse_allocation(p.to_str().unwrap(), &other)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dims"), "{e}");
    }
}
