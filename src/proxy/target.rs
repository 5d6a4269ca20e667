//! [`Scorable`]: the model a [`super::Proxy`] scores, as a trait object so that `Proxy` stays
//! object-safe (`dyn Proxy`) while taking any backbone. Every [`AdaptedClassifier`] is one (BERT's
//! `SequenceClassifier`, a `DecoderClassifier`, the enum [`crate::model::Classifier`]), so
//! `proxy.score(&mut model, ..)` takes any of them as it is.

use super::engine::{self, FreshAdapters, GradientStats, Needs};
use crate::adapters::{Architecture, SlotId};
use crate::data::Batch;
use crate::model::{AdaptedClassifier, SequenceClassifier};
use crate::{Error, Result};

/// What proxies use of a model: its architecture, BERT's classifier for the proxies that need
/// BERT's internals, and the shared gradient pass.
pub trait Scorable {
    fn architecture(&self) -> Architecture;

    /// BERT's classifier (SynFlow's embeddings path, alpha-test's training loop); `None` on a
    /// decoder.
    fn bert_mut(&mut self) -> Option<&mut SequenceClassifier>;

    /// [`engine::gradient_pass`] on this model: a working copy with `slots` on (fresh adapters
    /// from `fresh`), the scoring batches through it, what `needs` asks collected.
    fn gradient_pass(
        &self,
        batches: &[Batch],
        slots: &[SlotId],
        needs: Needs,
        fresh: &FreshAdapters,
    ) -> Result<GradientStats>;

    /// The checks every proxy shares: batches labelled and non-empty, slots the model has.
    fn check_inputs(&self, batches: &[Batch], slots: &[SlotId]) -> Result<()>;
}

impl<M: AdaptedClassifier> Scorable for M {
    fn architecture(&self) -> Architecture {
        AdaptedClassifier::architecture(self)
    }
    fn bert_mut(&mut self) -> Option<&mut SequenceClassifier> {
        self.as_bert_mut()
    }
    fn gradient_pass(
        &self,
        batches: &[Batch],
        slots: &[SlotId],
        needs: Needs,
        fresh: &FreshAdapters,
    ) -> Result<GradientStats> {
        engine::gradient_pass(self, batches, slots, needs, fresh)
    }
    fn check_inputs(&self, batches: &[Batch], slots: &[SlotId]) -> Result<()> {
        engine::check_inputs(self, batches, slots)
    }
}

/// `model` as BERT's classifier for the BERT-only proxy `proxy`, else an [`Error::Config`] that
/// names the architecture and the proxies that run on it.
pub fn bert_only<'a>(
    model: &'a mut dyn Scorable,
    proxy: &str,
) -> Result<&'a mut SequenceClassifier> {
    let arch = model.architecture();
    model.bert_mut().ok_or_else(|| Error::Config {
        field: "proxy".into(),
        reason: format!(
            "`{proxy}` runs on BERT only; on a {arch} model use a proxy of the gradient pass \
             (grad-norm, snip, snip-w0, fisher, jacob-cov, w0-grad-norm, w0-grad-spectrum) or \
             constant"
        ),
    })
}
