//! Batches with dynamic padding, and the seeded batch order ([`Batcher`]).

use super::glue::Label;
use super::tokenize::EncodedDataset;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor};

/// A padded batch. `b` = batch size, `s` = the longest sequence in the batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[b, s]` u32, padded with the tokenizer's pad id.
    pub input_ids: Tensor,
    /// `[b, s]` u32, 0 on padding.
    pub token_type_ids: Tensor,
    /// `[b, s]` u32: 1 on real tokens, 0 on padding.
    pub attention_mask: Tensor,
    /// `[b]`: u32 class ids, or f32 scores for a regression task (STS-B). For an unlabelled
    /// split (GLUE test) this is all zeros and [`Batch::labelled`] is false.
    pub labels: Tensor,
    /// Whether `labels` holds gold labels.
    pub labelled: bool,
    /// Positions of the batch's rows in the dataset, to map predictions back.
    pub indices: Vec<usize>,
}

impl Batch {
    pub fn size(&self) -> usize {
        self.indices.len()
    }

    /// Padded sequence length `s`.
    pub fn seq_len(&self) -> usize {
        self.input_ids.dims().get(1).copied().unwrap_or(0)
    }
}

impl EncodedDataset {
    /// Builds the batch of `indices`, padded to the longest of them.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Batch> {
        self.batch_padded(indices, 1, device)
    }

    /// As [`Self::batch`], padded to at least `min_len` tokens (e.g. the fixed 128 of a
    /// benchmark without dynamic padding).
    pub fn batch_padded(
        &self,
        indices: &[usize],
        min_len: usize,
        device: &Device,
    ) -> Result<Batch> {
        if indices.is_empty() {
            return Err(Error::invalid(
                "batch indices",
                "[]",
                "at least one example",
            ));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.examples.len()) {
            return Err(Error::invalid(
                "batch index",
                bad,
                format!("below the dataset size {}", self.examples.len()),
            ));
        }
        let b = indices.len();
        let s = indices
            .iter()
            .map(|&i| self.examples[i].ids.len())
            .max()
            .unwrap_or(0)
            .max(min_len)
            .max(1);
        let mut ids = vec![self.pad_id; b * s];
        let mut types = vec![0u32; b * s];
        let mut mask = vec![0u32; b * s];
        for (row, &i) in indices.iter().enumerate() {
            let e = &self.examples[i];
            let off = row * s;
            ids[off..off + e.ids.len()].copy_from_slice(&e.ids);
            types[off..off + e.type_ids.len()].copy_from_slice(&e.type_ids);
            mask[off..off + e.ids.len()].fill(1);
        }
        let labelled = indices
            .iter()
            .all(|&i| self.examples[i].label != Label::None);
        let labels = if self.task.is_regression() {
            let v: Vec<f32> = indices
                .iter()
                .map(|&i| self.examples[i].label.as_f32().unwrap_or(0.0))
                .collect();
            Tensor::from_vec(v, b, device)?
        } else {
            let v: Vec<u32> = indices
                .iter()
                .map(|&i| self.examples[i].label.class().unwrap_or(0))
                .collect();
            Tensor::from_vec(v, b, device)?
        };
        Ok(Batch {
            input_ids: Tensor::from_vec(ids, (b, s), device)?,
            token_type_ids: Tensor::from_vec(types, (b, s), device)?,
            attention_mask: Tensor::from_vec(mask, (b, s), device)?,
            labels,
            labelled,
            indices: indices.to_vec(),
        })
    }
}

/// The order in which examples are batched.
///
/// | parameter     | default | meaning                                                          |
/// |---------------|---------|------------------------------------------------------------------|
/// | `batch_size`  | -       | examples per batch, > 0                                          |
/// | `seed`        | -       | shuffles derive from it; same seed, same batches on any platform |
/// | `bucketing`   | `true`  | group examples of similar length to cut padding                  |
/// | `bucket_span` | 50      | bucketing sorts within windows of `bucket_span * batch_size`     |
/// | `drop_last`   | `false` | drop the last, smaller training batch                            |
///
/// Epoch `k`'s order comes from `Rng::derive(seed, "batcher.epoch.k")`, so it does not depend
/// on earlier epochs having been drawn: a resumed run sees the same batches as an unbroken one.
#[derive(Debug, Clone)]
pub struct Batcher {
    lengths: Vec<usize>,
    batch_size: usize,
    seed: u64,
    bucketing: bool,
    bucket_span: usize,
    drop_last: bool,
}

impl Batcher {
    /// A batcher over examples with these token lengths.
    pub fn new(lengths: Vec<usize>, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "at least 1"));
        }
        Ok(Batcher {
            lengths,
            batch_size,
            seed,
            bucketing: true,
            bucket_span: 50,
            drop_last: false,
        })
    }

    /// A batcher over a tokenised split.
    pub fn for_dataset(ds: &EncodedDataset, batch_size: usize, seed: u64) -> Result<Self> {
        Self::new(ds.lengths(), batch_size, seed)
    }

    pub fn with_bucketing(mut self, on: bool) -> Self {
        self.bucketing = on;
        self
    }

    pub fn with_bucket_span(mut self, span: usize) -> Self {
        self.bucket_span = span.max(1);
        self
    }

    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn num_examples(&self) -> usize {
        self.lengths.len()
    }

    /// Training batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.lengths.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The shuffled training batches of epoch `epoch` (0-based), as dataset indices.
    pub fn epoch(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut rng = Rng::derive(self.seed, &format!("batcher.epoch.{epoch}"));
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        rng.shuffle(&mut order);
        let mut batches: Vec<Vec<usize>> = if self.bucketing {
            let window = self.bucket_span * self.batch_size;
            let mut out = Vec::with_capacity(self.batches_per_epoch() + 1);
            for chunk in order.chunks_mut(window) {
                // Stable sort keeps the random order among equal lengths.
                chunk.sort_by_key(|&i| self.lengths[i]);
                out.extend(chunk.chunks(self.batch_size).map(|c| c.to_vec()));
            }
            out
        } else {
            order.chunks(self.batch_size).map(|c| c.to_vec()).collect()
        };
        if self.drop_last {
            batches.retain(|b| b.len() == self.batch_size);
        }
        if self.bucketing {
            // Otherwise every window would run from short to long batches.
            rng.shuffle(&mut batches);
        }
        batches
    }

    /// Batches in dataset order, neither shuffled nor sorted (e.g. the "first N training batches,
    /// unshuffled" that zero-cost proxies score on).
    pub fn ordered_batches(&self) -> Vec<Vec<usize>> {
        let order: Vec<usize> = (0..self.lengths.len()).collect();
        order.chunks(self.batch_size).map(|c| c.to_vec()).collect()
    }

    /// Evaluation batches: every example once, sorted by length (least padding), no shuffle.
    pub fn eval_batches(&self) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        order.sort_by_key(|&i| self.lengths[i]);
        order.chunks(self.batch_size).map(|c| c.to_vec()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::glue::{Split, Task};
    use crate::data::tokenize::EncodedExample;

    fn toy(lengths: &[usize], task: Task) -> EncodedDataset {
        let examples = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| EncodedExample {
                ids: (0..n as u32).map(|t| 100 + t).collect(),
                type_ids: (0..n as u32).map(|t| (t >= 2) as u32).collect(),
                label: if task.is_regression() {
                    Label::Score(i as f32 / 2.0)
                } else {
                    Label::Class((i % 2) as u32)
                },
            })
            .collect();
        EncodedDataset {
            task,
            split: Split::Train,
            examples,
            pad_id: 0,
            max_len: 128,
        }
    }

    #[test]
    fn batch_pads_to_longest_with_mask() {
        let ds = toy(&[3, 5, 2], Task::Mrpc);
        let b = ds.batch(&[0, 1, 2], &Device::Cpu).unwrap();
        assert_eq!(b.input_ids.dims(), &[3, 5]);
        let ids = b.input_ids.to_vec2::<u32>().unwrap();
        assert_eq!(ids[0], vec![100, 101, 102, 0, 0]);
        assert_eq!(ids[1], vec![100, 101, 102, 103, 104]);
        let mask = b.attention_mask.to_vec2::<u32>().unwrap();
        assert_eq!(mask[2], vec![1, 1, 0, 0, 0]);
        let types = b.token_type_ids.to_vec2::<u32>().unwrap();
        assert_eq!(types[1], vec![0, 0, 1, 1, 1]);
        assert_eq!(b.labels.to_vec1::<u32>().unwrap(), vec![0, 1, 0]);
        assert!(b.labelled);
        let r = toy(&[2, 4], Task::Stsb).batch(&[1], &Device::Cpu).unwrap();
        assert_eq!(r.labels.to_vec1::<f32>().unwrap(), vec![0.5]);
        assert_eq!(r.seq_len(), 4);
        assert!(ds.batch(&[3], &Device::Cpu).is_err());
        assert!(ds.batch(&[], &Device::Cpu).is_err());
    }

    #[test]
    fn epochs_are_permutations_reproducible_and_independent() {
        let lengths: Vec<usize> = (0..1000).map(|i| 5 + (i * 37) % 120).collect();
        let b = Batcher::new(lengths.clone(), 16, 7).unwrap();
        let e0 = b.epoch(0);
        let e3 = b.epoch(3);
        assert_eq!(e0.len(), b.batches_per_epoch());
        // A fresh batcher asked for epoch 3 directly gives the same batches.
        assert_eq!(Batcher::new(lengths.clone(), 16, 7).unwrap().epoch(3), e3);
        assert_ne!(e0, e3);
        assert_ne!(Batcher::new(lengths.clone(), 16, 8).unwrap().epoch(0), e0);
        let mut all: Vec<usize> = e0.concat();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // Bucketing cuts padding well below random batching.
        let pad = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|b| {
                    let m = b.iter().map(|&i| lengths[i]).max().unwrap();
                    b.iter().map(|&i| m - lengths[i]).sum::<usize>()
                })
                .sum()
        };
        let plain = b.clone().with_bucketing(false).epoch(0);
        assert!(
            pad(&e0) * 4 < pad(&plain),
            "{} vs {}",
            pad(&e0),
            pad(&plain)
        );
        let dl = b.clone().with_drop_last(true).epoch(1);
        assert!(dl.iter().all(|x| x.len() == 16));
        assert_eq!(dl.len(), 1000 / 16);
    }

    #[test]
    fn eval_batches_cover_all_sorted() {
        let b = Batcher::new(vec![5, 1, 9, 3, 7], 2, 0).unwrap();
        assert_eq!(b.eval_batches(), vec![vec![1, 3], vec![0, 4], vec![2]]);
        assert_eq!(b.ordered_batches(), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(Batcher::new(vec![1], 0, 0).is_err());
    }
}
