//! Model statistics from `config.json` and the `model.safetensors` header (no weights loaded).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The `config.json` fields `info` reports (BERT-style names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    #[serde(default)]
    pub model_type: String,
    #[serde(default)]
    pub hidden_size: usize,
    #[serde(default)]
    pub num_hidden_layers: usize,
    #[serde(default)]
    pub num_attention_heads: usize,
    #[serde(default)]
    pub intermediate_size: usize,
    #[serde(default)]
    pub vocab_size: usize,
    #[serde(default)]
    pub max_position_embeddings: usize,
}

/// What `heterolora info` prints about a model folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub dir: PathBuf,
    pub config: ConfigSummary,
    pub tensors: usize,
    /// Elements of the floating-point tensors (integer tensors such as BERT's `position_ids`
    /// are buffers, not parameters).
    pub parameters: u64,
    /// Elements per dtype (`F32`, `I64` ...), buffers included.
    pub dtypes: BTreeMap<String, u64>,
    pub file_bytes: u64,
}

#[derive(Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
}

impl ModelInfo {
    pub fn read(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let cfg = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config: ConfigSummary = serde_json::from_str(&cfg)
            .map_err(|e| Error::parse(&cfg_path, e.line(), e.to_string()))?;
        let st = dir.join("model.safetensors");
        let (tensors, file_bytes) = read_safetensors_header(&st)?;
        let mut dtypes = BTreeMap::new();
        let mut parameters = 0;
        for t in tensors.values() {
            let n: u64 = t.shape.iter().product();
            if matches!(
                t.dtype.as_str(),
                "F64" | "F32" | "F16" | "BF16" | "F8_E4M3" | "F8_E5M2"
            ) {
                parameters += n;
            }
            *dtypes.entry(t.dtype.clone()).or_insert(0) += n;
        }
        Ok(ModelInfo {
            dir: dir.to_path_buf(),
            config,
            tensors: tensors.len(),
            parameters,
            dtypes,
            file_bytes,
        })
    }
}

fn read_safetensors_header(path: &Path) -> Result<(BTreeMap<String, TensorEntry>, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_bytes = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(len);
    if n > file_bytes.saturating_sub(8) || n > 100 << 20 {
        return Err(Error::parse(
            path,
            0,
            format!("safetensors header length {n} is impossible"),
        ));
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    let mut raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&buf)
        .map_err(|e| Error::parse(path, 0, format!("safetensors header: {e}")))?;
    raw.remove("__metadata__");
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let t: TensorEntry = serde_json::from_value(v)
            .map_err(|e| Error::parse(path, 0, format!("safetensors entry `{k}`: {e}")))?;
        out.insert(k, t);
    }
    Ok((out, file_bytes))
}

impl ModelInfo {
    /// An HTML table for notebooks.
    pub fn to_html(&self) -> String {
        let c = &self.config;
        let rows = [
            ("folder", self.dir.display().to_string()),
            ("model type", c.model_type.clone()),
            ("layers", c.num_hidden_layers.to_string()),
            ("hidden", c.hidden_size.to_string()),
            ("heads", c.num_attention_heads.to_string()),
            ("intermediate", c.intermediate_size.to_string()),
            ("vocab", c.vocab_size.to_string()),
            ("tensors", self.tensors.to_string()),
            ("parameters", self.parameters.to_string()),
        ];
        let mut s = String::from("<table><tbody>");
        for (k, v) in rows {
            let v = v.replace('&', "&amp;").replace('<', "&lt;");
            s.push_str(&format!("<tr><td>{k}</td><td>{v}</td></tr>"));
        }
        s.push_str("</tbody></table>");
        s
    }

    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        writeln!(f, "model   {}", self.dir.display())?;
        writeln!(
            f,
            "config  {} layers={} hidden={} heads={} intermediate={} vocab={} max_positions={}",
            c.model_type,
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.intermediate_size,
            c.vocab_size,
            c.max_position_embeddings
        )?;
        let d: Vec<String> = self
            .dtypes
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        write!(
            f,
            "weights {} tensors, {} parameters (elements by dtype: {}), {:.1} MB",
            self.tensors,
            self.parameters,
            d.join(" "),
            self.file_bytes as f64 / 1e6
        )
    }
}
