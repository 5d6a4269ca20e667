//! [`Precision`]: the number format the frozen model computes in during fine-tuning.
//!
//! `bf16` is mixed precision as PEFT does it with `torch_dtype=bfloat16`: the frozen weights and
//! the activations are bf16, while everything that trains (the LoRA factors, shortcut adapters and
//! the classifier head) stays f32 ("master weights") and is cast to bf16 where it meets the
//! activations. Gradients reach the f32 variables through the casts, AdamW updates them in f32,
//! and LayerNorm, softmax statistics, the head and the loss are computed in f32. bf16 has f32's
//! exponent range, so gradients neither underflow nor overflow and no loss scale is needed (f16
//! would need one, which is why it is not offered).
//!
//! On a GPU with tensor cores bf16 halves the frozen model's memory and speeds its matrix
//! products; on the CPU it is slower than f32 (no fused kernels, and the casts cost) and exists
//! so that the same configuration can be checked anywhere.

use crate::{Error, Result};
use candle_core::DType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The frozen model's compute format in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (the reference; what every committed result used).
    #[default]
    F32,
    /// bf16 frozen weights and activations, f32 trainable variables, statistics and loss.
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The dtype the frozen model is loaded in and computes in.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" => Err(Error::invalid(
                "precision",
                s,
                "f32 or bf16: f16 would need a loss scale, which is not implemented, and bf16 has \
                 f32's range, so it trains without one",
            )),
            _ => Err(Error::invalid("precision", s, "f32 or bf16")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_refuses_f16_with_the_reason() {
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("float32".parse::<Precision>().unwrap(), Precision::F32);
        assert_eq!(Precision::Bf16.dtype(), DType::BF16);
        let e = "fp16".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("precision") && e.contains("loss scale"), "{e}");
        let e = "int8".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("f32 or bf16"), "{e}");
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
    }
}
