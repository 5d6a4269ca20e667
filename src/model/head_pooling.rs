//! [`HeadPooling`]: which summary of the encoder's last hidden states the classifier head reads.
//!
//! Hugging Face's `BertForSequenceClassification` reads the [CLS] token through the pretrained
//! pooler (`tanh(W_p h_cls + b_p)`), which is what this crate did first and still does by default.
//! all-MiniLM-L6-v2 (a sentence-transformers checkpoint) was trained with mean pooling over the
//! non-pad tokens instead, and its pooler was never trained for the task it was distilled on, so a
//! mean-pooled head reads the representation the checkpoint was built to produce. The choice is a
//! field of the model, of [`crate::train::TrainConfig`], of the study protocol and of notebook
//! settings, and it is saved with the adapters (`heterolora_adapters.json`, key `head_pooling`);
//! adapters saved without it were trained with [`HeadPooling::Cls`].

use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The classifier head's read-out of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadPooling {
    /// `tanh(pooler(h_last[:, 0]))`: [CLS] through the frozen pretrained pooler (Hugging Face's
    /// `BertForSequenceClassification`). The default, and what every adapter saved without the
    /// field used.
    #[default]
    Cls,
    /// The mean of the last hidden states over the tokens the attention mask keeps (pad
    /// positions excluded), fed straight to dropout and the linear head: the read-out
    /// sentence-transformers trained all-MiniLM-L6-v2 with (without its final L2 normalisation).
    Mean,
}

impl HeadPooling {
    pub fn as_str(self) -> &'static str {
        match self {
            HeadPooling::Cls => "cls",
            HeadPooling::Mean => "mean",
        }
    }
}

impl fmt::Display for HeadPooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HeadPooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cls" | "pooler" => Ok(HeadPooling::Cls),
            "mean" | "mean-pooling" | "mean_pooling" => Ok(HeadPooling::Mean),
            _ => Err(Error::invalid(
                "head",
                s,
                "`cls` ([CLS] through the pooler + tanh) or `mean` (mean over non-pad tokens)",
            )),
        }
    }
}

/// Mean of `hidden [b, s, h]` over the positions where `mask [b, s]` (1 = token, 0 = pad) is 1:
/// `[b, h]`. A row without tokens gives zeros rather than NaN.
pub(crate) fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, s, _) = hidden.dims3()?;
    if mask.dims() != [b, s] {
        return Err(Error::Shape {
            name: "attention_mask".into(),
            expected: vec![b, s],
            actual: mask.dims().to_vec(),
        });
    }
    let m = mask.to_dtype(hidden.dtype())?; // [b, s]
    let summed = hidden.broadcast_mul(&m.unsqueeze(2)?)?.sum(1)?; // [b, h]
    let count = m
        .to_dtype(DType::F32)?
        .sum_keepdim(1)? // [b, 1]
        .clamp(1.0f32, f32::MAX)?
        .to_dtype(hidden.dtype())?;
    Ok(summed.broadcast_div(&count)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn parses_and_displays() {
        assert_eq!("CLS".parse::<HeadPooling>().unwrap(), HeadPooling::Cls);
        assert_eq!("mean".parse::<HeadPooling>().unwrap(), HeadPooling::Mean);
        assert_eq!(HeadPooling::Mean.to_string(), "mean");
        assert!("max"
            .parse::<HeadPooling>()
            .unwrap_err()
            .to_string()
            .contains("head"));
        assert_eq!(HeadPooling::default(), HeadPooling::Cls);
    }

    #[test]
    fn masked_mean_skips_pads() {
        let d = Device::Cpu;
        let h = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &d).unwrap();
        let m = Tensor::new(&[[1u32, 1, 0]], &d).unwrap();
        let got: Vec<Vec<f32>> = masked_mean(&h, &m).unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![vec![2.0, 3.0]]);
        let none = Tensor::new(&[[0u32, 0, 0]], &d).unwrap();
        let got: Vec<Vec<f32>> = masked_mean(&h, &none).unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![vec![0.0, 0.0]]);
    }
}
