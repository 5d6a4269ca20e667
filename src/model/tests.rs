//! Unit tests of the model on tiny random BERT configs.

use super::context::Ctx;
use super::nn::Linear;
use super::probe::ProbeState;
use super::*;
use crate::adapters::{Allocation, SlotRank};
use crate::adapters::{LoraAdapter, ShortcutPlacement, SlotId, SlotKind};
use crate::rng::Rng;
use candle_core::{DType, Device, IndexOp, Tensor};
use std::collections::BTreeMap;

const DEV: Device = Device::Cpu;

fn tiny(dtype: DType) -> SequenceClassifier {
    SequenceClassifier::random(&BertConfig::tiny(), 3, dtype, &DEV, 7).unwrap()
}

/// Two examples of length 6, the second padded after 4 tokens.
fn batch() -> (Tensor, Tensor, Tensor) {
    let ids = Tensor::new(&[[1u32, 5, 9, 13, 2, 0], [1, 44, 17, 2, 0, 0]], &DEV).unwrap();
    let tt = Tensor::new(&[[0u32, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 0]], &DEV).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], &DEV).unwrap();
    (ids, tt, mask)
}

fn logits(m: &SequenceClassifier) -> Tensor {
    let (ids, tt, mask) = batch();
    m.forward(&ids, &tt, &mask, None).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn all_slots(m: &SequenceClassifier) -> Vec<SlotId> {
    crate::adapters::SearchSpace::parse_kinds("all")
        .unwrap()
        .slots(m.dims().num_layers)
}

/// Gives every adapter's B random values.
fn randomise_b(m: &SequenceClassifier, seed: u64, std: f32) {
    let mut rng = Rng::new(seed);
    for (_, b) in m
        .adapter_vars()
        .iter()
        .filter(|(k, _)| k.contains("lora_B"))
    {
        b.set(
            &rng.uniform_tensor(b.shape(), -std, std, &DEV)
                .unwrap()
                .to_dtype(b.dtype())
                .unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn fresh_adapters_and_shortcuts_change_nothing() {
    let mut m = tiny(DType::F32);
    let base = logits(&m);
    let (ids, tt, mask) = batch();
    let base_h = m.encode(&ids, &tt, &mask, None).unwrap();
    for s in all_slots(&m) {
        m.add_slot(s, 2, 4.0).unwrap();
    }
    assert_eq!(m.enabled_slots().len(), 2 * 10 - 1);
    assert_eq!(max_diff(&base, &logits(&m)), 0.0);
    let h = m.encode(&ids, &tt, &mask, None).unwrap();
    for (a, b) in base_h.hidden_states.iter().zip(&h.hidden_states) {
        assert!(max_diff(a, b) < 1e-6);
    }
    // The reference's placement re-applies the layer's own LayerNorm after the cross-layer
    // shortcuts. A LayerNorm applied twice with unit weight and zero bias is (up to eps) the
    // LayerNorm applied once, so on the tiny model's unit norms it changes nothing...
    m.set_shortcut_placement(ShortcutPlacement::ExtraNorm);
    assert!(max_diff(&base, &logits(&m)) < 1e-4);
    // ...but with the affine LayerNorms of every pretrained model it is not a no-op even with
    // B = 0, which is why it is not the default.
    let mut rng = Rng::new(12);
    for layer in m.bert.layers.iter_mut() {
        for ln in [&mut layer.attention_norm, &mut layer.output_norm] {
            ln.weight = rng.uniform_tensor(32, 0.5, 1.5, &DEV).unwrap();
            ln.bias = rng.uniform_tensor(32, -0.5, 0.5, &DEV).unwrap();
        }
    }
    m.set_shortcut_placement(ShortcutPlacement::InsideNorm);
    let base = logits(&m);
    m.set_shortcut_placement(ShortcutPlacement::ExtraNorm);
    let extra = logits(&m);
    assert!(max_diff(&base, &extra) > 1e-4);
    // The authors re-apply the norm whether the shortcut is on or off: switching the fresh
    // cross-layer shortcuts off (or never adding them) leaves the ExtraNorm model as it was.
    // (Before the norm followed the authors, a unit LayerNorm was applied only while the
    // shortcut was on, so switching off restored the InsideNorm output.)
    for s in m.adapter_slots() {
        if matches!(s.kind, SlotKind::Shortcut1 | SlotKind::Shortcut2) {
            m.set_enabled(s, false).unwrap();
        }
    }
    assert_eq!(max_diff(&extra, &logits(&m)), 0.0);
    let mut bare = m.clone();
    for s in bare.adapter_slots() {
        bare.remove_slot(s).unwrap();
    }
    assert!(max_diff(&extra, &logits(&bare)) < 1e-6);
    assert!(max_diff(&base, &logits(&bare)) > 1e-4);
}

#[test]
fn extra_norm_reapplies_the_layers_own_layer_norm() {
    // One layer by hand: out = LN2(LN2(f + h) + S_sc1(x)), h = LN1(a + x) (layer 0 has no
    // shortcut2, so no second LN1 there).
    let mut m = tiny(DType::F32);
    let mut rng = Rng::new(4);
    for layer in m.bert.layers.iter_mut() {
        for ln in [&mut layer.attention_norm, &mut layer.output_norm] {
            ln.weight = rng.uniform_tensor(32, 0.5, 1.5, &DEV).unwrap();
            ln.bias = rng.uniform_tensor(32, -0.5, 0.5, &DEV).unwrap();
        }
    }
    let (ids, tt, mask) = batch();
    let inside = m.encode(&ids, &tt, &mask, None).unwrap();
    m.add_slot(SlotId::new(0, SlotKind::Shortcut1), 2, 4.0)
        .unwrap();
    randomise_b(&m, 8, 0.5);
    let sc1 = m
        .adapter(SlotId::new(0, SlotKind::Shortcut1))
        .unwrap()
        .clone();
    m.set_shortcut_placement(ShortcutPlacement::ExtraNorm);
    let extra = m.encode(&ids, &tt, &mask, None).unwrap();
    let x = &inside.hidden_states[0];
    let layer0 = &m.bert.layers[0];
    let delta = sc1.delta(x).unwrap();
    let want = layer0
        .output_norm
        .forward(&(&inside.hidden_states[1] + delta).unwrap())
        .unwrap();
    assert!(max_diff(&extra.hidden_states[1], &want) < 1e-5);
}

#[test]
fn lora_linear_equals_hand_computation() {
    let mut rng = Rng::new(5);
    let (d_in, d_out, r, alpha) = (6, 5, 3, 6.0);
    let w = rng.uniform_tensor((d_out, d_in), -1.0, 1.0, &DEV).unwrap();
    let bias = rng.uniform_tensor(d_out, -1.0, 1.0, &DEV).unwrap();
    let lin = Linear::new(w.clone(), Some(bias.clone()));
    let ad = LoraAdapter::new(&mut rng, d_in, d_out, r, alpha, DType::F32, &DEV).unwrap();
    ad.b.set(&rng.uniform_tensor((d_out, r), -1.0, 1.0, &DEV).unwrap())
        .unwrap();
    let slot = SlotId::new(0, SlotKind::Value);
    let adapters = BTreeMap::from([(slot, ad.clone())]);
    let probes = ProbeState::default();
    let mut ctx = Ctx {
        adapters: &adapters,
        probes: &probes,
        rng: None,
        lora_dropout: 0.5, // inactive in evaluation
        hidden_dropout: 0.0,
        attention_dropout: 0.0,
        classifier_dropout: 0.0,
        placement: ShortcutPlacement::InsideNorm,
    };
    let x = rng.uniform_tensor((2, 4, d_in), -1.0, 1.0, &DEV).unwrap();
    let y: Vec<Vec<Vec<f32>>> = ctx.linear(slot, &lin, &x).unwrap().to_vec3().unwrap();
    type M = Vec<Vec<f32>>;
    let w: M = w.to_vec2().unwrap();
    let bias: Vec<f32> = bias.to_vec1().unwrap();
    let a: M = ad.a.to_vec2().unwrap();
    let b: M = ad.b.to_vec2().unwrap();
    let xs: Vec<M> = x.to_vec3().unwrap();
    let s = (alpha / r as f64) as f32;
    for n in 0..2 {
        for t in 0..4 {
            let xv = &xs[n][t];
            let ax: Vec<f32> = (0..r)
                .map(|k| (0..d_in).map(|i| a[k][i] * xv[i]).sum())
                .collect();
            for o in 0..d_out {
                let w0x: f32 = (0..d_in).map(|i| w[o][i] * xv[i]).sum::<f32>() + bias[o];
                let bax: f32 = (0..r).map(|k| b[o][k] * ax[k]).sum();
                let want = w0x + s * bax;
                assert!((y[n][t][o] - want).abs() < 1e-5, "{} vs {want}", y[n][t][o]);
            }
        }
    }
}

#[test]
fn shortcuts_are_identity_or_zero_plus_low_rank() {
    let mut rng = Rng::new(9);
    let h = 4;
    let mk = |rng: &mut Rng| {
        let ad = LoraAdapter::new(rng, h, h, 2, 4.0, DType::F32, &DEV).unwrap();
        ad.b.set(&rng.uniform_tensor((h, 2), -1.0, 1.0, &DEV).unwrap())
            .unwrap();
        ad
    };
    let r1 = SlotId::new(1, SlotKind::Residual1);
    let s1 = SlotId::new(1, SlotKind::Shortcut1);
    let s2 = SlotId::new(1, SlotKind::Shortcut2);
    let adapters = BTreeMap::from([(r1, mk(&mut rng)), (s1, mk(&mut rng))]);
    let probes = ProbeState::default();
    let mut ctx = Ctx {
        adapters: &adapters,
        probes: &probes,
        rng: None,
        lora_dropout: 0.0,
        hidden_dropout: 0.0,
        attention_dropout: 0.0,
        classifier_dropout: 0.0,
        placement: ShortcutPlacement::InsideNorm,
    };
    let x = rng.uniform_tensor((2, 3, h), -1.0, 1.0, &DEV).unwrap();
    let delta = |s: SlotId| adapters[&s].delta(&x).unwrap();
    let got = ctx.shortcut(r1, &x).unwrap().unwrap();
    assert!(max_diff(&got, &(&x + delta(r1)).unwrap()) < 1e-6);
    let got = ctx.shortcut(s1, &x).unwrap().unwrap();
    assert!(max_diff(&got, &delta(s1)) < 1e-6);
    // Without an adapter: identity passes x through, zero adds nothing.
    assert!(ctx.shortcut(s2, &x).unwrap().is_none());
    let r2 = SlotId::new(1, SlotKind::Residual2);
    assert_eq!(max_diff(&ctx.shortcut(r2, &x).unwrap().unwrap(), &x), 0.0);
}

#[test]
fn every_slot_kind_changes_the_output_once_trained() {
    let mut m = tiny(DType::F32);
    let base = logits(&m);
    for s in all_slots(&m) {
        m.add_slot(s, 2, 4.0).unwrap();
        m.set_enabled(s, false).unwrap();
    }
    randomise_b(&m, 3, 0.5);
    for s in all_slots(&m) {
        m.set_enabled(s, true).unwrap();
        let d = max_diff(&base, &logits(&m));
        // Disabled, the computation is bitwise the base one: any difference is the slot's.
        assert!(d > 1e-7, "{s} has no effect ({d})");
        m.set_enabled(s, false).unwrap();
        assert_eq!(max_diff(&base, &logits(&m)), 0.0, "{s} disabled");
    }
}

#[test]
fn disabled_slots_keep_weights_cost_nothing_and_get_no_gradient() {
    let mut m = tiny(DType::F32);
    let base = logits(&m);
    let q = SlotId::new(0, SlotKind::Query);
    let v = SlotId::new(1, SlotKind::Value);
    m.add_slot(q, 4, 8.0).unwrap();
    m.add_slot(v, 4, 8.0).unwrap();
    randomise_b(&m, 1, 0.5);
    let on = logits(&m);
    assert!(max_diff(&on, &base) > 1e-5);
    let (a_before, b_before) = m.lora_factors(q).unwrap();
    let (a_before, b_before) = (
        a_before.as_detached_tensor().copy().unwrap(),
        b_before.as_detached_tensor().copy().unwrap(),
    );
    m.set_enabled(q, false).unwrap();
    m.set_enabled(v, false).unwrap();
    assert_eq!(max_diff(&logits(&m), &base), 0.0);
    assert_eq!(m.enabled_slots(), Vec::<SlotId>::new());
    assert_eq!(m.adapter_slots(), vec![q, v]);
    assert_eq!(m.trainable_vars().len(), 2, "only the head");
    assert_eq!(m.adapter_vars().len(), 6);
    m.set_enabled(q, true).unwrap();
    // Gradient reaches q's factors, not v's.
    let (ids, tt, mask) = batch();
    let labels = Tensor::new(&[0u32, 2], &DEV).unwrap();
    let loss = m
        .loss(&m.forward(&ids, &tt, &mask, None).unwrap(), &labels)
        .unwrap();
    let grads = loss.backward().unwrap();
    let (qa, qb) = m.lora_factors(q).unwrap();
    let (va, vb) = m.lora_factors(v).unwrap();
    assert!(grads.get(qa.as_tensor()).is_some() && grads.get(qb.as_tensor()).is_some());
    assert!(grads.get(va.as_tensor()).is_none() && grads.get(vb.as_tensor()).is_none());
    m.set_enabled(v, true).unwrap();
    assert!(max_diff(&logits(&m), &on) < 1e-7);
    assert_eq!(max_diff(&m.lora_factors(q).unwrap().0, &a_before), 0.0);
    assert_eq!(max_diff(&m.lora_factors(q).unwrap().1, &b_before), 0.0);
    // Errors: a slot without an adapter, a slot outside the model, rank 0.
    let e = m
        .set_enabled(SlotId::new(0, SlotKind::Key), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer.0.attention.key") && e.contains("add_slot"),
        "{e}"
    );
    let e = m
        .add_slot(SlotId::new(5, SlotKind::Key), 2, 4.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer.5.attention.key"), "{e}");
    assert!(m.add_slot(SlotId::new(0, SlotKind::Key), 0, 4.0).is_err());
}

#[test]
fn merged_model_equals_unmerged() {
    let mut m = tiny(DType::F32);
    for s in all_slots(&m) {
        m.add_slot(s, 3, 6.0).unwrap();
    }
    randomise_b(&m, 2, 0.3);
    m.set_enabled(SlotId::new(1, SlotKind::Key), false).unwrap();
    m.set_slot_scale(SlotId::new(0, SlotKind::FfnOut), 0.5)
        .unwrap();
    let want = logits(&m);
    let merged = m.merged().unwrap();
    assert!(merged
        .adapter_slots()
        .iter()
        .all(|s| s.kind.is_shortcut() || *s == SlotId::new(1, SlotKind::Key)));
    let d = max_diff(&want, &logits(&merged));
    assert!(d < 1e-5, "merged differs by {d}");
    // The original is untouched.
    assert!(max_diff(&want, &logits(&m)) == 0.0);
}

#[test]
fn finite_differences_confirm_gradients_through_the_whole_network() {
    // f64 so that the central difference is accurate.
    let mut m = tiny(DType::F64);
    m.set_dropout(0.0, 0.0, None).unwrap();
    let q0 = SlotId::new(0, SlotKind::Query);
    let r2 = SlotId::new(0, SlotKind::Residual2);
    let s2 = SlotId::new(1, SlotKind::Shortcut2);
    for s in [q0, r2, s2] {
        m.add_slot(s, 2, 4.0).unwrap();
    }
    randomise_b(&m, 4, 0.2);
    let (ids, tt, mask) = batch();
    let labels = Tensor::new(&[1u32, 2], &DEV).unwrap();
    let loss_of = |m: &SequenceClassifier| -> f64 {
        m.loss(&m.forward(&ids, &tt, &mask, None).unwrap(), &labels)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let loss = m
        .loss(&m.forward(&ids, &tt, &mask, None).unwrap(), &labels)
        .unwrap();
    let grads = loss.backward().unwrap();
    for slot in [q0, r2, s2] {
        let (a, b) = m.lora_factors(slot).unwrap();
        for (var, name) in [(&a, "A"), (&b, "B")] {
            let g = grads
                .get(var.as_tensor())
                .expect("gradient")
                .flatten_all()
                .unwrap();
            let g: Vec<f64> = g.to_vec1().unwrap();
            let orig = var.as_detached_tensor().copy().unwrap();
            let flat: Vec<f64> = orig.flatten_all().unwrap().to_vec1().unwrap();
            for idx in [0, flat.len() / 2, flat.len() - 1] {
                let eps = 1e-5;
                let mut plus = flat.clone();
                plus[idx] += eps;
                var.set(&Tensor::from_vec(plus, orig.shape(), &DEV).unwrap())
                    .unwrap();
                let lp = loss_of(&m);
                let mut minus = flat.clone();
                minus[idx] -= eps;
                var.set(&Tensor::from_vec(minus, orig.shape(), &DEV).unwrap())
                    .unwrap();
                let lm = loss_of(&m);
                var.set(&orig).unwrap();
                let fd = (lp - lm) / (2.0 * eps);
                assert!(
                    (fd - g[idx]).abs() < 1e-6 + 1e-4 * fd.abs(),
                    "{slot} {name}[{idx}]: backward {} vs finite difference {fd}",
                    g[idx]
                );
            }
        }
    }
    // The head is trainable too.
    let (w, _) = m.head();
    assert!(grads.get(w.as_tensor()).is_some());
}

#[test]
fn allocation_enables_exactly_its_slots_and_keeps_same_rank_weights() {
    let mut m = tiny(DType::F32);
    let q0 = SlotId::new(0, SlotKind::Query);
    let v1 = SlotId::new(1, SlotKind::Value);
    let sc = SlotId::new(1, SlotKind::Shortcut1);
    m.add_slot(q0, 4, 8.0).unwrap();
    m.add_slot(v1, 4, 8.0).unwrap();
    randomise_b(&m, 6, 0.3);
    let q_b = m
        .lora_factors(q0)
        .unwrap()
        .1
        .as_detached_tensor()
        .copy()
        .unwrap();
    let ranks = BTreeMap::from([
        (
            q0,
            SlotRank {
                r: 4,
                lora_alpha: 2.0,
            },
        ),
        (
            sc,
            SlotRank {
                r: 2,
                lora_alpha: 4.0,
            },
        ),
    ]);
    let alloc = Allocation {
        dims: m.dims(),
        candidates: vec![q0, v1, sc],
        ranks,
        method: "manual".into(),
        proxy: None,
        meta: Default::default(),
    };
    m.apply_allocation(&alloc).unwrap();
    assert_eq!(m.enabled_slots(), vec![q0, sc]);
    assert_eq!(m.adapter_slots(), vec![q0, v1, sc]);
    assert_eq!(m.slot_rank(q0), Some((4, 2.0)));
    assert_eq!(max_diff(&m.lora_factors(q0).unwrap().1, &q_b), 0.0);
    let h = 32;
    assert_eq!(m.trainable_params(), alloc.trainable_params() + 3 * (h + 1));
    assert_eq!(m.slot_params()[&sc], 2 * (h + h));
    // A different rank gets a fresh adapter.
    let mut alloc2 = alloc.clone();
    alloc2.ranks.insert(
        q0,
        SlotRank {
            r: 2,
            lora_alpha: 4.0,
        },
    );
    m.apply_allocation(&alloc2).unwrap();
    assert_eq!(m.slot_rank(q0), Some((2, 4.0)));
    assert_eq!(
        m.lora_factors(q0)
            .unwrap()
            .1
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
    let mut bad = alloc.clone();
    bad.ranks.insert(
        SlotId::new(4, SlotKind::Key),
        SlotRank {
            r: 2,
            lora_alpha: 4.0,
        },
    );
    assert!(m
        .apply_allocation(&bad)
        .unwrap_err()
        .to_string()
        .contains("layer.4.attention.key"));
}

#[test]
fn parameter_counts_follow_hand_arithmetic() {
    let mut m = tiny(DType::F32);
    let cfg = BertConfig::tiny();
    assert_eq!(m.base_params(), cfg.base_params());
    assert_eq!(m.trainable_params(), 3 * (32 + 1));
    for l in 0..2 {
        m.add_slot(SlotId::new(l, SlotKind::Query), 8, 16.0)
            .unwrap();
        m.add_slot(SlotId::new(l, SlotKind::Value), 8, 16.0)
            .unwrap();
    }
    // 2 layers x 2 modules x 8 x (32 + 32) = 2,048
    assert_eq!(m.slot_params().values().sum::<usize>(), 2048);
    m.add_slot(SlotId::new(1, SlotKind::FfnIn), 2, 4.0).unwrap();
    assert_eq!(
        m.slot_params()[&SlotId::new(1, SlotKind::FfnIn)],
        2 * (32 + 64)
    );
    assert_eq!(m.trainable_params(), 2048 + 192 + 99);
    assert_eq!(m.total_params(), cfg.base_params() + 2048 + 192 + 99);
    let counted: usize = m.trainable_vars().iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(counted, m.trainable_params());
    let summary = m.param_summary();
    assert_eq!(summary.rows.len(), 5);
    let html = m.to_html();
    assert!(
        html.contains("2 layers")
            && html.contains("layer.1.intermediate")
            && html.contains("2,339")
    );
    assert_eq!(summary.trainable, m.trainable_params());
}

#[test]
fn dropout_is_active_only_with_an_rng_and_reproducible() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(0, SlotKind::Query), 2, 4.0).unwrap();
    m.set_lora_dropout(0.1);
    let (ids, tt, mask) = batch();
    let eval1 = m.forward(&ids, &tt, &mask, None).unwrap();
    let eval2 = m.forward(&ids, &tt, &mask, None).unwrap();
    assert_eq!(max_diff(&eval1, &eval2), 0.0);
    let t1 = m.forward(&ids, &tt, &mask, Some(&mut Rng::new(1))).unwrap();
    let t2 = m.forward(&ids, &tt, &mask, Some(&mut Rng::new(1))).unwrap();
    let t3 = m.forward(&ids, &tt, &mask, Some(&mut Rng::new(2))).unwrap();
    assert_eq!(max_diff(&t1, &t2), 0.0);
    assert!(max_diff(&t1, &eval1) > 1e-6);
    assert!(max_diff(&t1, &t3) > 1e-6);
}

#[test]
fn probes_expose_frozen_weight_and_output_gradients() {
    let mut m = tiny(DType::F64);
    m.set_dropout(0.0, 0.0, None).unwrap();
    let v0 = SlotId::new(0, SlotKind::Value);
    let s1 = SlotId::new(1, SlotKind::Shortcut1);
    let r1 = SlotId::new(1, SlotKind::Residual1);
    m.add_slot(v0, 2, 4.0).unwrap();
    let base = logits(&m);
    m.set_probes(
        &[v0, s1, r1],
        ProbeMode {
            frozen_weight_grad: true,
            output_grad: true,
        },
    )
    .unwrap();
    // Probes do not change the outputs.
    assert!(max_diff(&base, &logits(&m)) < 1e-12);
    m.take_probes();
    let (ids, tt, mask) = batch();
    let labels = Tensor::new(&[0u32, 1], &DEV).unwrap();
    let loss = m
        .loss(&m.forward(&ids, &tt, &mask, None).unwrap(), &labels)
        .unwrap();
    let grads = loss.backward().unwrap();
    let probes = m.take_probes();
    assert_eq!(probes.keys().copied().collect::<Vec<_>>(), vec![v0, r1, s1]);
    for (slot, p) in &probes {
        let w = p.frozen.as_ref().unwrap();
        let z = p.output.as_ref().unwrap();
        let gw = grads
            .get(w.as_tensor())
            .unwrap_or_else(|| panic!("{slot}: no dL/dW0"));
        let gz = grads
            .get(z.as_tensor())
            .unwrap_or_else(|| panic!("{slot}: no dL/dz"));
        // dL/dW0 = sum over tokens of dL/dz x^T.
        let d_in = p.input.dim(2).unwrap();
        let d_out = gz.dim(2).unwrap();
        let x = p.input.reshape(((), d_in)).unwrap();
        let g = gz.reshape(((), d_out)).unwrap();
        let want = g.t().unwrap().matmul(&x).unwrap();
        assert!(max_diff(gw, &want) < 1e-10, "{slot}");
        assert!(
            gw.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
                > 0.0
        );
    }
    assert_eq!(
        probes[&r1]
            .frozen
            .as_ref()
            .unwrap()
            .i((0, 0))
            .unwrap()
            .to_scalar::<f64>()
            .unwrap(),
        1.0
    );
    m.clear_probes();
    m.forward(&ids, &tt, &mask, None).unwrap();
    assert!(m.take_probes().is_empty());
}

#[test]
fn map_weights_and_dtype_conversion() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(0, SlotKind::Key), 2, 4.0).unwrap();
    randomise_b(&m, 8, 0.3);
    let want = logits(&m);
    let m64 = m.to_dtype(DType::F64).unwrap();
    assert_eq!(m64.dtype(), DType::F64);
    assert!(max_diff(&want, &logits(&m64)) < 1e-5);
    let abs = m.map_weights(|t| Ok(t.abs()?)).unwrap();
    let (w, _) = abs.head();
    assert!(
        w.min_keepdim(1)
            .unwrap()
            .min_keepdim(0)
            .unwrap()
            .i((0, 0))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            >= 0.0
    );
    // SynFlow-style input: all-ones embeddings.
    let ones = Tensor::ones((2, 5, 32), DType::F64, &DEV).unwrap();
    let mask = Tensor::ones((2, 5), DType::U32, &DEV).unwrap();
    let out = m64.forward_embeds(&ones, &mask, None).unwrap();
    assert_eq!(out.dims(), [2, 3]);
    // A deep clone does not share variables.
    let c = m.deep_clone().unwrap();
    c.head().0.set(&c.head().0.zeros_like().unwrap()).unwrap();
    assert!(max_diff(&want, &logits(&m)) == 0.0);
}

#[test]
fn regression_head_uses_mse() {
    let m = SequenceClassifier::random(&BertConfig::tiny(), 1, DType::F32, &DEV, 1).unwrap();
    let l = logits(&m);
    assert_eq!(l.dims(), [2, 1]);
    let target = Tensor::new(&[0.5f32, -1.0], &DEV).unwrap();
    let loss = m.loss(&l, &target).unwrap().to_scalar::<f32>().unwrap();
    let v: Vec<f32> = l.flatten_all().unwrap().to_vec1().unwrap();
    let want = ((v[0] - 0.5).powi(2) + (v[1] + 1.0).powi(2)) / 2.0;
    assert!((loss - want).abs() < 1e-6);
}

#[test]
fn adapters_save_and_load_roundtrip() {
    let mut m = tiny(DType::F32);
    for s in [
        SlotId::new(0, SlotKind::Query),
        SlotId::new(1, SlotKind::Query),
        SlotId::new(1, SlotKind::FfnOut),
        SlotId::new(0, SlotKind::Residual2),
        SlotId::new(1, SlotKind::Shortcut2),
    ] {
        m.add_slot(s, if s.kind == SlotKind::FfnOut { 4 } else { 2 }, 4.0)
            .unwrap();
    }
    randomise_b(&m, 11, 0.3);
    m.set_enabled(SlotId::new(1, SlotKind::Query), false)
        .unwrap();
    m.set_slot_scale(SlotId::new(0, SlotKind::Query), 0.3)
        .unwrap();
    m.set_shortcut_placement(ShortcutPlacement::ExtraNorm);
    let want = logits(&m);
    let dir = tempfile::tempdir().unwrap();
    m.save_adapters(dir.path()).unwrap();
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "heterolora_adapters.json",
        "heterolora_adapters.safetensors",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let mut fresh =
        SequenceClassifier::random(&BertConfig::tiny(), 3, DType::F32, &DEV, 7).unwrap();
    fresh.reset_head(3, 99).unwrap();
    fresh.load_adapters(dir.path()).unwrap();
    assert_eq!(fresh.adapter_slots(), m.adapter_slots());
    assert_eq!(fresh.enabled_slots(), m.enabled_slots());
    assert_eq!(fresh.shortcut_placement(), ShortcutPlacement::ExtraNorm);
    assert_eq!(
        fresh
            .adapter(SlotId::new(0, SlotKind::Query))
            .unwrap()
            .scale,
        0.3
    );
    assert!(max_diff(&want, &logits(&fresh)) < 1e-7);
    // The PEFT file alone holds the enabled LoRA modules (scale folded into alpha) and the head.
    std::fs::remove_file(dir.path().join("heterolora_adapters.json")).unwrap();
    let mut peft_only =
        SequenceClassifier::random(&BertConfig::tiny(), 3, DType::F32, &DEV, 7).unwrap();
    peft_only.load_adapters(dir.path()).unwrap();
    assert_eq!(
        peft_only.enabled_slots(),
        vec![
            SlotId::new(0, SlotKind::Query),
            SlotId::new(1, SlotKind::FfnOut)
        ]
    );
    let mut lora_only = m.clone();
    for s in lora_only.adapter_slots() {
        if s.kind.is_shortcut() {
            lora_only.set_enabled(s, false).unwrap();
        }
    }
    assert!(max_diff(&logits(&lora_only), &logits(&peft_only)) < 1e-6);
}

#[test]
fn bad_adapter_files_give_clear_errors() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(0, SlotKind::Value), 2, 4.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save_adapters(dir.path()).unwrap();
    let p = dir.path().join("adapter_model.safetensors");
    let mut t = crate::adapters::peft::load_safetensors(&p, &DEV).unwrap();
    let key = "base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.weight";
    // Wrong shape.
    t.insert(
        key.into(),
        Tensor::zeros((31, 2), DType::F32, &DEV).unwrap(),
    );
    crate::adapters::peft::save_safetensors(&t.clone().into_iter().collect(), &p).unwrap();
    let e = m.clone().load_adapters(dir.path()).unwrap_err().to_string();
    assert!(e.contains(key) && e.contains("[31, 2]"), "{e}");
    // Missing weight.
    t.remove(key);
    crate::adapters::peft::save_safetensors(&t.clone().into_iter().collect(), &p).unwrap();
    let e = m.clone().load_adapters(dir.path()).unwrap_err().to_string();
    assert!(e.contains(key) && e.contains("missing"), "{e}");
    // Unknown slot.
    t.insert(
        key.into(),
        Tensor::zeros((32, 2), DType::F32, &DEV).unwrap(),
    );
    t.insert(
        "base_model.model.bert.encoder.layer.7.attention.self.value.lora_A.weight".into(),
        Tensor::zeros((2, 32), DType::F32, &DEV).unwrap(),
    );
    crate::adapters::peft::save_safetensors(&t.clone().into_iter().collect(), &p).unwrap();
    let e = m.clone().load_adapters(dir.path()).unwrap_err().to_string();
    assert!(e.contains("layer.7.attention.value"), "{e}");
    let e = m
        .load_adapters(&dir.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn base_weight_files_are_checked() {
    let m = tiny(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&BertConfig::tiny()).unwrap(),
    )
    .unwrap();
    let mut named: BTreeMap<String, Tensor> = m.base().named_weights().into_iter().collect();
    let p = dir.path().join("model.safetensors");
    // With the `bert.` prefix, as a BertForSequenceClassification checkpoint has it.
    let prefixed: BTreeMap<String, Tensor> = named
        .iter()
        .map(|(k, v)| (format!("bert.{k}"), v.clone()))
        .collect();
    crate::adapters::peft::save_safetensors(&prefixed, &p).unwrap();
    let loaded = SequenceClassifier::from_pretrained(dir.path(), 3, DType::F32, &DEV, 7).unwrap();
    let (ids, tt, mask) = batch();
    let a = m.encode(&ids, &tt, &mask, None).unwrap().pooled;
    let b = loaded.encode(&ids, &tt, &mask, None).unwrap().pooled;
    assert_eq!(max_diff(&a, &b), 0.0);
    // No pooler: initialised and reported.
    named.remove("pooler.dense.weight");
    named.remove("pooler.dense.bias");
    crate::adapters::peft::save_safetensors(&named, &p).unwrap();
    let no_pooler =
        SequenceClassifier::from_pretrained(dir.path(), 3, DType::F32, &DEV, 7).unwrap();
    assert!(no_pooler.pooler_was_initialised());
    // Missing weight and wrong shape name the weight.
    let k = "encoder.layer.1.attention.self.key.weight";
    let w = named.remove(k).unwrap();
    crate::adapters::peft::save_safetensors(&named, &p).unwrap();
    let e = SequenceClassifier::from_pretrained(dir.path(), 3, DType::F32, &DEV, 7)
        .unwrap_err()
        .to_string();
    assert!(e.contains(k) && e.contains("model.safetensors"), "{e}");
    named.insert(k.into(), w.t().unwrap().narrow(0, 0, 16).unwrap());
    crate::adapters::peft::save_safetensors(&named, &p).unwrap();
    let e = SequenceClassifier::from_pretrained(dir.path(), 3, DType::F32, &DEV, 7)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(k) && e.contains("[16, 32]") && e.contains("[32, 32]"),
        "{e}"
    );
}

#[test]
fn bert_base_shapes_work() {
    // bert-base widths (hidden 768, 12 heads, intermediate 3072) on one layer and a small vocab.
    let cfg = BertConfig {
        vocab_size: 100,
        num_hidden_layers: 1,
        max_position_embeddings: 16,
        ..BertConfig::default()
    };
    let mut m = SequenceClassifier::random(&cfg, 2, DType::F32, &DEV, 0).unwrap();
    assert_eq!(m.config().head_dim(), 64);
    let base = logits(&m);
    for s in all_slots(&m) {
        m.add_slot(s, 8, 16.0).unwrap();
    }
    assert_eq!(max_diff(&base, &logits(&m)), 0.0);
    let sp = m.slot_params();
    assert_eq!(sp[&SlotId::new(0, SlotKind::Query)], 8 * (768 + 768));
    assert_eq!(sp[&SlotId::new(0, SlotKind::FfnIn)], 8 * (768 + 3072));
    assert_eq!(sp[&SlotId::new(0, SlotKind::FfnOut)], 8 * (3072 + 768));
    assert_eq!(logits(&m).dims(), [2, 2]);
}

#[test]
fn merged_checkpoint_reloads_with_its_head() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(0, SlotKind::Query), 2, 4.0).unwrap();
    m.add_slot(SlotId::new(1, SlotKind::FfnIn), 2, 4.0).unwrap();
    m.add_slot(SlotId::new(1, SlotKind::Shortcut1), 2, 4.0)
        .unwrap();
    randomise_b(&m, 21, 0.5);
    let dir = tempfile::tempdir().unwrap();
    let e = m.save_merged(dir.path()).unwrap_err().to_string();
    assert!(e.contains("layer.1.shortcut1"), "{e}");
    m.set_enabled(SlotId::new(1, SlotKind::Shortcut1), false)
        .unwrap();
    m.save_merged(dir.path()).unwrap();
    let back = SequenceClassifier::from_pretrained(dir.path(), 3, DType::F32, &DEV, 1234).unwrap();
    assert!(back.adapter_slots().is_empty());
    assert!(max_diff(&logits(&m), &logits(&back)) < 1e-5);
}

#[test]
fn missing_model_directory_says_what_to_run() {
    let e = SequenceClassifier::from_pretrained(
        std::path::Path::new("/nonexistent/minilm"),
        2,
        DType::F32,
        &DEV,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/nonexistent/minilm/config.json") && e.contains("heterolora fetch model"),
        "{e}"
    );
    let e = SequenceClassifier::random(&BertConfig::tiny(), 0, DType::F32, &DEV, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("num_labels"), "{e}");
}

fn logits_train(m: &SequenceClassifier) -> Tensor {
    let (ids, tt, mask) = batch();
    m.forward(&ids, &tt, &mask, Some(&mut Rng::new(11)))
        .unwrap()
}

/// The whole training step through the fused CPU ops (f32) against candle's primitives (the f64
/// path, the same dropout masks from the same generator): loss and every trainable gradient.
#[test]
fn fused_training_step_matches_primitives_with_dropout() {
    let mut m = tiny(DType::F32);
    for layer in 0..2 {
        for kind in [
            SlotKind::Query,
            SlotKind::Value,
            SlotKind::FfnIn,
            SlotKind::FfnOut,
        ] {
            m.add_slot(SlotId::new(layer, kind), 2, 4.0).unwrap();
        }
    }
    m.add_slot(SlotId::new(1, SlotKind::Shortcut2), 2, 4.0)
        .unwrap();
    randomise_b(&m, 3, 0.3);
    let m64 = m.to_dtype(DType::F64).unwrap();
    let (ids, tt, mask) = batch();
    let labels = Tensor::new(&[2u32, 0], &DEV).unwrap();
    let step = |m: &SequenceClassifier| {
        let mut rng = Rng::new(11);
        let logits = m.forward(&ids, &tt, &mask, Some(&mut rng)).unwrap();
        let loss = m.loss(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let loss = loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let g: Vec<(String, Tensor)> = m
            .trainable_vars()
            .into_iter()
            .map(|(n, v)| (n, grads.get(v.as_tensor()).expect("a gradient").clone()))
            .collect();
        (loss, g)
    };
    let (l32, g32) = step(&m);
    let (l64, g64) = step(&m64);
    assert!((l32 - l64).abs() < 1e-5, "loss {l32} vs {l64}");
    // Dropout is on: the training-mode logits differ from the evaluation ones.
    let mut rng = Rng::new(11);
    let train = m.forward(&ids, &tt, &mask, Some(&mut rng)).unwrap();
    let eval = logits(&m);
    assert!(max_diff(&train, &eval) > 10.0 * max_diff(&train, &logits_train(&m64)));
    assert_eq!(g32.len(), g64.len());
    for ((n, a), (_, b)) in g32.iter().zip(&g64) {
        let scale = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .max(1e-3);
        let d = max_diff(a, b);
        assert!(d < 1e-4 * scale.max(1.0), "{n}: {d} (max |g| {scale})");
    }
}

/// Two examples whose pad positions hold the ids `pad`; the second is padded after 4 tokens.
fn padded_batch(pad: u32) -> (Tensor, Tensor, Tensor) {
    let ids = Tensor::new(&[[1u32, 5, 9, 13, 2, pad], [1, 44, 17, 2, pad, pad]], &DEV).unwrap();
    let tt = Tensor::new(&[[0u32, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 0]], &DEV).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], &DEV).unwrap();
    (ids, tt, mask)
}

#[test]
fn mean_pooling_ignores_pad_tokens_and_differs_from_cls() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(0, SlotKind::Value), 2, 16.0)
        .unwrap();
    randomise_b(&m, 3, 0.3);
    let run = |m: &SequenceClassifier, pad: u32| {
        let (ids, tt, mask) = padded_batch(pad);
        m.forward(&ids, &tt, &mask, None).unwrap()
    };
    let cls = run(&m, 0);
    m.set_head_pooling(HeadPooling::Mean);
    assert_eq!(m.head_pooling(), HeadPooling::Mean);
    let mean = run(&m, 0);
    // Whatever sits at the pad positions, the mean over non-pad tokens (and so the logits) is the
    // same: the attention mask hides pads from the other tokens and the mean skips them.
    for pad in [7u32, 30, 99] {
        assert!(max_diff(&run(&m, pad), &mean) < 1e-6, "pad id {pad}");
    }
    assert!(max_diff(&cls, &mean) > 1e-4);
    // The head reads the masked mean of the last hidden states.
    let (ids, tt, mask) = padded_batch(0);
    let out = m.encode(&ids, &tt, &mask, None).unwrap();
    let last = out.hidden_states.last().unwrap();
    let want = last.i((1, 0..4)).unwrap().mean(0).unwrap();
    let got = m.head_input(&out, &mask).unwrap().i(1).unwrap();
    assert!(max_diff(&got, &want) < 1e-6);
    // The builder form gives the same model.
    let built = tiny(DType::F32).with_head_pooling(HeadPooling::Mean);
    assert_eq!(built.head_pooling(), HeadPooling::Mean);
}

#[test]
fn head_pooling_round_trips_through_saved_adapters() {
    let mut m = tiny(DType::F32);
    m.add_slot(SlotId::new(1, SlotKind::Query), 2, 16.0)
        .unwrap();
    randomise_b(&m, 5, 0.3);
    m.set_head_pooling(HeadPooling::Mean);
    let want = logits(&m);
    let dir = tempfile::tempdir().unwrap();
    m.save_adapters(dir.path()).unwrap();
    let state = std::fs::read_to_string(dir.path().join("heterolora_adapters.json")).unwrap();
    assert!(state.contains("\"head_pooling\": \"mean\""), "{state}");
    let cfg = std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap();
    assert!(
        cfg.contains("\"heterolora_head_pooling\": \"mean\""),
        "{cfg}"
    );
    let mut fresh = tiny(DType::F32);
    fresh.load_adapters(dir.path()).unwrap();
    assert_eq!(fresh.head_pooling(), HeadPooling::Mean);
    assert!(max_diff(&logits(&fresh), &want) < 1e-6);
    // PEFT's files alone carry the choice too.
    std::fs::remove_file(dir.path().join("heterolora_adapters.json")).unwrap();
    std::fs::remove_file(dir.path().join("heterolora_adapters.safetensors")).unwrap();
    let mut peft_only = tiny(DType::F32);
    peft_only.load_adapters(dir.path()).unwrap();
    assert_eq!(peft_only.head_pooling(), HeadPooling::Mean);
    // A merged BertForSequenceClassification checkpoint cannot read mean-pooled tokens.
    let e = m.save_merged(&dir.path().join("merged")).unwrap_err();
    assert!(e.to_string().contains("head pooling"), "{e}");

    // Files written without the field (before the choice existed) mean [CLS].
    let mut c = tiny(DType::F32);
    c.add_slot(SlotId::new(1, SlotKind::Query), 2, 16.0)
        .unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    c.save_adapters(dir2.path()).unwrap();
    let p = dir2.path().join("heterolora_adapters.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v["head_pooling"], "cls");
    v.as_object_mut().unwrap().remove("head_pooling");
    std::fs::write(&p, v.to_string()).unwrap();
    let cfg = std::fs::read_to_string(dir2.path().join("adapter_config.json")).unwrap();
    assert!(!cfg.contains("heterolora_head_pooling"));
    let mut back = tiny(DType::F32).with_head_pooling(HeadPooling::Mean);
    back.load_adapters(dir2.path()).unwrap();
    assert_eq!(back.head_pooling(), HeadPooling::Cls);
}

/// The cosine between two tensors of one shape, in f64.
fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let (a, b) = (flat(a), flat(b));
    let dot = |x: &Tensor, y: &Tensor| {
        (x * y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt()
}

#[test]
fn bf16_mixed_precision_keeps_trainables_f32_and_follows_f32() {
    let mut m = tiny(DType::F32);
    for s in [
        SlotId::new(0, SlotKind::Query),
        SlotId::new(1, SlotKind::Value),
        SlotId::new(1, SlotKind::FfnOut),
        SlotId::new(0, SlotKind::Residual2),
    ] {
        m.add_slot(s, 4, 8.0).unwrap();
    }
    randomise_b(&m, 3, 0.2);
    let mb = m.to_dtype(DType::BF16).unwrap();
    assert_eq!(mb.dtype(), DType::BF16);
    assert!(mb.to_html().contains("BF16 (adapters and head F32) on cpu"));
    assert!(m.to_html().contains("F32 on cpu"));
    // Master weights: every trainable variable stays f32 with its f32 value.
    for ((n, v), (_, v32)) in mb.trainable_vars().iter().zip(m.trainable_vars().iter()) {
        assert_eq!(v.dtype(), DType::F32, "{n}");
        assert_eq!(max_diff(v.as_tensor(), v32.as_tensor()), 0.0, "{n}");
    }
    // A slot added to the bf16 model is f32 too.
    let mut mb2 = mb.deep_clone().unwrap();
    mb2.add_slot(SlotId::new(1, SlotKind::Key), 2, 4.0).unwrap();
    assert_eq!(
        mb2.adapter(SlotId::new(1, SlotKind::Key))
            .unwrap()
            .a
            .dtype(),
        DType::F32
    );

    let (ids, tt, mask) = batch();
    let labels = Tensor::new(&[2u32, 0], &DEV).unwrap();
    let want = m.forward(&ids, &tt, &mask, None).unwrap();
    let got = mb.forward(&ids, &tt, &mask, None).unwrap();
    assert_eq!(got.dtype(), DType::F32, "the head computes in f32");
    // bf16 keeps 8 mantissa bits (relative rounding 2^-9 per op): a few hundredths on logits of
    // order one after two layers; an f32 model read as bf16 would not pass with 1e-3.
    let scale = want
        .abs()
        .unwrap()
        .max_keepdim(1)
        .unwrap()
        .max_keepdim(0)
        .unwrap();
    let scale = scale.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0] as f64;
    assert!(
        max_diff(&want, &got) < 0.05 * scale.max(1.0),
        "{}",
        max_diff(&want, &got)
    );

    // Gradients reach the f32 variables through the casts, in f32, pointing where f32's do.
    let g32 = m.loss(&want, &labels).unwrap().backward().unwrap();
    let gb = mb.loss(&got, &labels).unwrap().backward().unwrap();
    for ((n, v), (_, v32)) in mb.trainable_vars().iter().zip(m.trainable_vars().iter()) {
        let g = gb
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {n}"));
        assert_eq!(g.dtype(), DType::F32, "{n}");
        let c = cosine(g, g32.get(v32.as_tensor()).unwrap());
        assert!(c > 0.98, "{n}: cosine {c}");
    }
}
