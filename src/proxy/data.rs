//! [`ScoringData`]: the first N training batches, unshuffled (the reference scores on these), so
//! every proxy and every re-allocation sees the same examples.

use crate::data::{Batch, EncodedDataset};
use crate::{Error, Result};
use candle_core::Device;

/// The scoring batches.
///
/// | name | default (CLI) | meaning |
/// |---|---|---|
/// | `batch_size` | 32 | examples per batch |
/// | `num_batches` | 32 | N: how many batches from the start of the training split |
#[derive(Debug, Clone)]
pub struct ScoringData {
    pub batches: Vec<Batch>,
    pub batch_size: usize,
}

impl ScoringData {
    /// The first `num_batches` batches of `batch_size` examples of `ds` in dataset order (fewer
    /// if the split is shorter; the last may be smaller). Errors on an unlabelled split.
    pub fn from_dataset(
        ds: &EncodedDataset,
        batch_size: usize,
        num_batches: usize,
        device: &Device,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "at least 1"));
        }
        if num_batches == 0 {
            return Err(Error::invalid("num_batches", 0, "at least 1"));
        }
        if ds.examples.is_empty() {
            return Err(Error::invalid(
                "scoring dataset",
                "empty",
                "a training split with examples",
            ));
        }
        let n = ds.examples.len().min(batch_size * num_batches);
        let order: Vec<usize> = (0..n).collect();
        let batches = order
            .chunks(batch_size)
            .map(|idx| ds.batch(idx, device))
            .collect::<Result<Vec<_>>>()?;
        if let Some(i) = batches.iter().position(|b| !b.labelled) {
            return Err(Error::invalid(
                format!(
                    "scoring batch {i} of {} {}",
                    ds.task.name(),
                    ds.split.name()
                ),
                "unlabelled",
                "a labelled split (train)",
            ));
        }
        Ok(ScoringData {
            batches,
            batch_size,
        })
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Examples over all batches.
    pub fn num_examples(&self) -> usize {
        self.batches.iter().map(|b| b.size()).sum()
    }
}
