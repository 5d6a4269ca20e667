//! Shared helpers of the tracking-server tests: a real `mlflow server` from the project's Python
//! environment on a free loopback port, a logger that records what it forwards, and the check
//! through MLflow's own Python client (`tests/mlflow_rest_check.py`).
#![allow(dead_code)]

use heterolora::tracking::{MemoryLogger, RunLogger, RunStatus};
use heterolora::Result;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tiny training both server tests run: a random tiny BERT, uniform LoRA q,v r = 4 and the
/// synthetic pairs of `study_util`, writing its output into `output` (a run's artifact folder).
/// Needs `mod study_util;` in the including test.
pub fn tiny_trainer(output: PathBuf) -> heterolora::train::Trainer {
    use candle_core::{DType, Device};
    use heterolora::data::Split;
    use heterolora::model::{BertConfig, SequenceClassifier};
    use heterolora::train::{parse_allocation, TrainConfig, Trainer};
    let synthetic = crate::study_util::synthetic;
    let model =
        SequenceClassifier::random(&BertConfig::tiny(), 2, DType::F32, &Device::Cpu, 7).unwrap();
    let alloc = parse_allocation("uniform:q,v:r=4", &model.dims()).unwrap();
    let cfg = TrainConfig::default()
        .lr(1e-2)
        .batch_size(4)
        .epochs(2)
        .eval_every(3)
        .log_every(1)
        .quiet(true);
    Trainer::new(
        model,
        alloc,
        synthetic(24, 1, Split::Train),
        synthetic(12, 2, Split::Dev),
        cfg,
    )
    .unwrap()
    .with_output_dir(output)
}

/// The Python with mlflow: `HETEROLORA_PYTHON`, else `.venv/bin/python` (as tests/tracking/mlflow_compat.rs).
pub fn python() -> PathBuf {
    match std::env::var_os("HETEROLORA_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

fn require_mlflow(py: &Path) {
    let ok = Command::new(py)
        .args(["-c", "import mlflow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import mlflow. Make the test environment with `bash scripts/test.sh` (or \
         `python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-ci.txt`), or point \
         HETEROLORA_PYTHON at a Python that has mlflow",
        py.display()
    );
}

/// A free loopback port (bound, then released for the server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `mlflow server` with its SQLite backend store and artifacts under `dir`.
pub struct MlflowServer {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl MlflowServer {
    pub fn start(dir: &Path) -> MlflowServer {
        let mut s = MlflowServer {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port, backend store and artifact folder.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let py = python();
        require_mlflow(&py);
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(&py)
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                self.dir.join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(self.dir.join("mlartifacts"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start mlflow server");
        self.child = Some(child);
        // Not a timing assertion: a guard against a server that never comes up.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/health", self.url())).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mlflow server exited ({st}):\n{}",
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server did not answer on {}:\n{}",
                self.url(),
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop the server and its workers (the whole process group) and wait for them.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pgid = c.id() as i32;
            // SAFETY: signals to the process group we started.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = c.wait();
            // The port is free once nothing accepts connections on it any more.
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Records everything it forwards to `inner` (the expected content of the server).
pub struct Tee<'a> {
    pub mem: MemoryLogger,
    pub inner: &'a mut dyn RunLogger,
}

impl RunLogger for Tee<'_> {
    fn log_params(&mut self, p: &[(String, String)]) -> Result<()> {
        self.mem.log_params(p)?;
        self.inner.log_params(p)
    }
    fn log_metrics(&mut self, m: &[(String, f64)], step: i64) -> Result<()> {
        self.mem.log_metrics(m, step)?;
        self.inner.log_metrics(m, step)
    }
    fn set_tags(&mut self, t: &[(String, String)]) -> Result<()> {
        self.mem.set_tags(t)?;
        self.inner.set_tags(t)
    }
    fn log_artifact(&mut self, p: &Path, d: Option<&str>) -> Result<()> {
        self.mem.log_artifact(p, d)?;
        self.inner.log_artifact(p, d)
    }
    fn log_text(&mut self, t: &str, f: &str) -> Result<()> {
        self.mem.log_text(t, f)?;
        self.inner.log_text(t, f)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn end(&mut self, s: RunStatus) -> Result<()> {
        self.mem.end(s)?;
        self.inner.end(s)
    }
    fn run_id(&self) -> Option<String> {
        self.inner.run_id()
    }
}

/// A float for expect.json (non-finite values as MLflow's JSON strings).
pub fn num(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// What the server must hold for a run that logged `mem` and ended with `status`.
pub fn expect_from(run_id: &str, mem: &MemoryLogger, status: &str) -> Value {
    let mut metrics = serde_json::Map::new();
    for (k, v, s) in &mem.metrics {
        metrics
            .entry(k.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!([s, num(*v)]));
    }
    let params: serde_json::Map<String, Value> = mem
        .params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let tags: serde_json::Map<String, Value> = mem
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let texts: serde_json::Map<String, Value> = mem
        .texts
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let artifacts: Vec<&str> = mem.artifacts.iter().map(|(p, _)| p.as_str()).collect();
    json!({"run_id": run_id, "status": status, "params": params, "tags": tags,
           "metrics": metrics, "artifacts": artifacts, "artifact_texts": texts})
}

/// Check `runs` through MLflow's Python client on the server at `url`; panics with its message.
pub fn mlflow_check(url: &str, dir: &Path, runs: Vec<Value>) -> String {
    let expect = dir.join("expect.json");
    std::fs::write(
        &expect,
        serde_json::to_string_pretty(&json!({"runs": runs})).unwrap(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow_rest_check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(url)
        .arg(&expect)
        .output()
        .expect("run tests/mlflow_rest_check.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "tests/mlflow_rest_check.py failed:\n{text}"
    );
    text
}
