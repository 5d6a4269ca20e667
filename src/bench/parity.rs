//! Device parity: logits, loss and every trainable gradient of the model with committed PEFT
//! adapters (`tests/fixtures/model/peft_qv_r8`, non-zero B, so the adapter gradients are not
//! the B = 0 special case) on the first MRPC dev pairs, written as one f32 safetensors file.
//! `heterolora bench parity` runs it on each device and `scripts/gpu-check.sh` compares the
//! files tensor by tensor (`scripts/compare-parity.py`).

use crate::data::Task;
use crate::device::{device_name, parse_device};
use crate::model::{AdaptedClassifier, AssetLoader};
use crate::train::Precision;
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The adapters the check loads unless told otherwise (relative to the project root).
pub const DEFAULT_ADAPTERS: &str = "tests/fixtures/model/peft_qv_r8";

/// What to compute.
#[derive(Debug, Clone)]
pub struct ParityConfig {
    /// `None`: `$HETEROLORA_MODEL_DIR`, else the default model's folder.
    pub model_dir: Option<PathBuf>,
    /// `None`: `$HETEROLORA_GLUE_DIR`, else `datasets/glue`.
    pub glue_dir: Option<PathBuf>,
    /// A PEFT adapter folder for BertForSequenceClassification with 2 labels.
    pub adapters: PathBuf,
    pub device: String,
    pub precision: Precision,
    /// MRPC dev pairs, from the first.
    pub examples: usize,
}

/// What [`parity_tensors`] wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParityReport {
    pub device: String,
    pub precision: String,
    pub examples: usize,
    pub loss: f64,
    /// Tensors in the file: `logits`, `loss` and one `grad.<PEFT key>` per trainable variable.
    pub tensors: usize,
    pub file: String,
}

/// Forward (evaluation mode: no dropout) and backward of the adapted model on the first
/// `examples` MRPC dev pairs; the logits `[n, 2]`, the loss `[1]` and every trainable
/// variable's gradient (as `grad.<key>`, the variable's shape), all f32, saved to `out`.
pub fn parity_tensors(cfg: &ParityConfig, out: &Path) -> Result<ParityReport> {
    if cfg.examples == 0 {
        return Err(Error::invalid("examples", 0, ">= 1"));
    }
    if !cfg.adapters.join("adapter_config.json").is_file() {
        return Err(Error::Config {
            field: "adapters".into(),
            reason: format!(
                "{} holds no adapter_config.json: name a PEFT adapter folder (the default, {DEFAULT_ADAPTERS}, \
                 is read from the project root)",
                cfg.adapters.display()
            ),
        });
    }
    let device = parse_device(&cfg.device)?;
    let mut loaded = AssetLoader::new(Task::Mrpc)
        .model_dir(cfg.model_dir.as_deref())
        .glue_dir(cfg.glue_dir.as_deref())
        .splits(false, true)
        .limit_dev(Some(cfg.examples))
        .device(&device)
        .dtype(cfg.precision.dtype())
        .load()?;
    let mut model = loaded.model.take().expect("the loader builds the model");
    let dev = loaded.dev()?;
    model.load_adapters(&cfg.adapters)?;
    let n = dev.len();
    let batch = dev.batch(&(0..n).collect::<Vec<_>>(), &device)?;
    let logits = model.forward_batch(&batch, None)?;
    let loss = model.loss(&logits, &batch.labels)?;
    let grads = loss.backward()?;
    let cpu = |t: &Tensor| -> Result<Tensor> {
        Ok(t.to_dtype(DType::F32)?
            .to_device(&candle_core::Device::Cpu)?)
    };
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert("logits".into(), cpu(&logits)?);
    tensors.insert("loss".into(), cpu(&loss.reshape(1)?)?);
    for (key, var) in model.trainable_vars() {
        let g = grads
            .get(var.as_tensor())
            .ok_or_else(|| Error::Other(format!("no gradient reached {key}: the graph is cut")))?;
        tensors.insert(format!("grad.{key}"), cpu(g)?);
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    candle_core::safetensors::save(&tensors, out)?;
    Ok(ParityReport {
        device: device_name(&device),
        precision: cfg.precision.to_string(),
        examples: n,
        loss: loss.to_dtype(DType::F64)?.to_scalar::<f64>()?,
        tensors: tensors.len(),
        file: out.display().to_string(),
    })
}
