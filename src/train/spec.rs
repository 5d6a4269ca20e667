//! The `--allocation` argument: a uniform spec or an allocation file.
//!
//! Uniform specs read `uniform:<kinds>[:r=<r>][:alpha=<alpha>][:layers=<i,j,...>]`, e.g.
//! `uniform:q,v:r=8` (the LoRA reference: query and value in every layer, r = 8, alpha = 16) or
//! `uniform:q,v,shortcuts:r=2`. Kinds take the names of [`SearchSpace::parse_kinds`]. Without
//! `alpha`, LoRA slots get `lora_alpha` 16 and shortcut slots 4, the reference's values. Anything
//! else is read as the path of an allocation JSON file (as `heterolora search` writes it).

use crate::adapters::{ModelDims, SearchSpace};
use crate::search::{Allocation, SlotRank};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Reference `lora_alpha` of LoRA modules.
pub const LORA_ALPHA: f64 = 16.0;
/// Reference `alpha_s` of LoRA-adapted shortcut connections.
pub const SHORTCUT_ALPHA: f64 = 4.0;

/// Parse `spec` for a model of size `dims`.
pub fn parse_allocation(spec: &str, dims: &ModelDims) -> Result<Allocation> {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix("uniform:") {
        return parse_uniform(rest, dims);
    }
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

fn parse_uniform(rest: &str, dims: &ModelDims) -> Result<Allocation> {
    let mut parts = rest.split(':');
    let kinds = parts.next().unwrap_or_default();
    let mut space = SearchSpace::parse_kinds(kinds)?;
    let mut r = 8usize;
    let mut alpha: Option<f64> = None;
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
                alpha = Some(
                    v.trim()
                        .parse()
                        .ok()
                        .filter(|a: &f64| a.is_finite() && *a > 0.0)
                        .ok_or_else(|| {
                            Error::invalid("allocation alpha", v, "a positive number")
                        })?,
                )
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
    let candidates = space.slots(dims.num_layers);
    let ranks: BTreeMap<_, _> = candidates
        .iter()
        .map(|&slot| {
            let a = alpha.unwrap_or(if slot.kind.is_shortcut() {
                SHORTCUT_ALPHA
            } else {
                LORA_ALPHA
            });
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
    use crate::adapters::{SlotId, SlotKind};

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
