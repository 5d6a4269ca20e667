//! Where base weights come from: a Hugging Face safetensors file, or a seeded random init.
//!
//! Names are Hugging Face's (`encoder.layer.0.attention.self.query.weight`). A file may store them
//! with or without the `bert.` prefix (BertModel vs BertForSequenceClassification checkpoints) and
//! with old TensorFlow-era LayerNorm names (`gamma`, `beta`); all are accepted.

use super::nn::normal_tensor;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a weight is initialised when it is created rather than loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    /// N(0, initializer_range^2), as Hugging Face's `_init_weights` for Linear and Embedding.
    Normal,
    Zeros,
    Ones,
}

pub(crate) enum WeightSource {
    File {
        tensors: HashMap<String, Tensor>,
        /// `""` or `"bert."`.
        prefix: String,
        path: PathBuf,
    },
    Random {
        rng: Rng,
    },
}

impl WeightSource {
    /// Load every tensor of a safetensors file (on the CPU; converted when taken).
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Asset {
                what: path.display().to_string(),
                reason: "file not found".into(),
                hint: "run `heterolora fetch model` or pass the directory that holds model.safetensors".into(),
            });
        }
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::parse(path, 0, format!("not a readable safetensors file: {e}")))?;
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            String::new()
        } else if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert.".to_string()
        } else {
            return Err(Error::MissingWeight {
                name:
                    "embeddings.word_embeddings.weight (or bert.embeddings.word_embeddings.weight)"
                        .into(),
                source_name: path.display().to_string(),
            });
        };
        Ok(WeightSource::File {
            tensors,
            prefix,
            path: path.to_path_buf(),
        })
    }

    /// Every tensor of a model folder's `model.safetensors`, or of the shards its
    /// `model.safetensors.index.json` lists (larger checkpoints), names taken as they are
    /// (decoder checkpoints, whose names carry their own `model.` prefix).
    pub fn from_dir_unprefixed(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if single.exists() || !index.exists() {
            vec![single.clone()]
        } else {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::parse(&index, e.line(), e.to_string()))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::parse(&index, 1, "no `weight_map` object"))?;
            let mut shards: Vec<PathBuf> = map
                .values()
                .filter_map(|f| f.as_str())
                .map(|f| dir.join(f))
                .collect();
            shards.sort();
            shards.dedup();
            shards
        };
        let mut tensors = HashMap::new();
        for path in &files {
            if !path.exists() {
                return Err(Error::Asset {
                    what: path.display().to_string(),
                    reason: "file not found".into(),
                    hint: "pass the directory that holds config.json and model.safetensors (or \
                           model.safetensors.index.json and its shards)"
                        .into(),
                });
            }
            let t = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
                Error::parse(path, 0, format!("not a readable safetensors file: {e}"))
            })?;
            tensors.extend(t);
        }
        Ok(WeightSource::File {
            tensors,
            prefix: String::new(),
            path: if files.len() == 1 { single } else { index },
        })
    }

    pub fn random(rng: Rng) -> Self {
        WeightSource::Random { rng }
    }

    /// Whether the file holds `name` (under the detected prefix, or at the top level).
    pub fn contains(&self, name: &str) -> bool {
        match self {
            WeightSource::File {
                tensors, prefix, ..
            } => tensors.contains_key(&format!("{prefix}{name}")) || tensors.contains_key(name),
            WeightSource::Random { .. } => false,
        }
    }

    /// The weight `name` with shape `shape`, in `dtype` on `device`.
    ///
    /// From a file: a missing name or a wrong shape is an error naming the weight and the file.
    /// Random: created with `init` (`std` for [`Init::Normal`]).
    #[allow(clippy::too_many_arguments)]
    pub fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        std: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let t = match self {
            WeightSource::File {
                tensors,
                prefix,
                path,
            } => {
                let mut candidates = vec![format!("{prefix}{name}"), name.to_string()];
                if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
                    candidates.push(format!("{prefix}{stem}LayerNorm.gamma"));
                }
                if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
                    candidates.push(format!("{prefix}{stem}LayerNorm.beta"));
                }
                let found = candidates
                    .iter()
                    .find_map(|c| tensors.get(c).map(|t| (c, t)));
                let Some((key, t)) = found else {
                    return Err(Error::MissingWeight {
                        name: format!("{prefix}{name}"),
                        source_name: path.display().to_string(),
                    });
                };
                if t.dims() != shape {
                    return Err(Error::Shape {
                        name: format!("{key} in {}", path.display()),
                        expected: shape.to_vec(),
                        actual: t.dims().to_vec(),
                    });
                }
                t.clone()
            }
            WeightSource::Random { rng } => match init {
                Init::Normal => normal_tensor(rng, shape, std, DType::F32, &Device::Cpu)?,
                Init::Zeros => Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                Init::Ones => Tensor::ones(shape, DType::F32, &Device::Cpu)?,
            },
        };
        Ok(t.to_dtype(dtype)?.to_device(device)?)
    }
}

/// A Hugging Face `nn.Linear` named `name` (`{name}.weight` `[d_out, d_in]`, `{name}.bias` `[d_out]`).
pub(crate) fn load_linear(
    src: &mut WeightSource,
    name: &str,
    d_in: usize,
    d_out: usize,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<super::nn::Linear> {
    load_linear_maybe_bias(src, name, d_in, d_out, true, std, dtype, device)
}

/// A Hugging Face `nn.Linear(d_in, d_out, bias = bias)` named `name`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_linear_maybe_bias(
    src: &mut WeightSource,
    name: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<super::nn::Linear> {
    let w = src.get(
        &format!("{name}.weight"),
        &[d_out, d_in],
        Init::Normal,
        std,
        dtype,
        device,
    )?;
    let b = if bias {
        Some(src.get(
            &format!("{name}.bias"),
            &[d_out],
            Init::Zeros,
            std,
            dtype,
            device,
        )?)
    } else {
        None
    };
    Ok(super::nn::Linear::new(w, b))
}

/// A Hugging Face `nn.LayerNorm` named `name`.
pub(crate) fn load_layer_norm(
    src: &mut WeightSource,
    name: &str,
    size: usize,
    eps: f64,
    dtype: DType,
    device: &Device,
) -> Result<super::nn::LayerNorm> {
    let w = src.get(
        &format!("{name}.weight"),
        &[size],
        Init::Ones,
        0.0,
        dtype,
        device,
    )?;
    let b = src.get(
        &format!("{name}.bias"),
        &[size],
        Init::Zeros,
        0.0,
        dtype,
        device,
    )?;
    Ok(super::nn::LayerNorm::new(w, b, eps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_checkpoints_load_every_shard() {
        let dir = tempfile::tempdir().unwrap();
        let a = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let save = |name: &str, key: &str, t: &Tensor| {
            candle_core::safetensors::save(
                &HashMap::from([(key.to_string(), t.clone())]),
                dir.path().join(name),
            )
            .unwrap()
        };
        save("model-00001-of-00002.safetensors", "model.a.weight", &a);
        save("model-00002-of-00002.safetensors", "model.b.bias", &b);
        let index = r#"{"metadata": {}, "weight_map": {
            "model.a.weight": "model-00001-of-00002.safetensors",
            "model.b.bias": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
        let mut src = WeightSource::from_dir_unprefixed(dir.path()).unwrap();
        let got = src
            .get(
                "model.a.weight",
                &[2, 3],
                Init::Zeros,
                0.0,
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
        assert_eq!(got.sum_all().unwrap().to_scalar::<f32>().unwrap(), 6.0);
        assert!(src.contains("model.b.bias"));
        let e = src
            .get(
                "model.a.weight",
                &[3, 2],
                Init::Zeros,
                0.0,
                DType::F32,
                &Device::Cpu,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.a.weight"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(WeightSource::from_dir_unprefixed(empty.path()).is_err());
    }
}
