//! What logging to an MLflow tracking server adds to a training step, against the SQLite store.
//!
//! ```text
//! cargo bench --profile dev --bench tracking_server
//! HL_BENCH_ROUNDS=5 HL_BENCH_STEPS=80 cargo bench --profile dev --bench tracking_server
//! ```
//! Starts `mlflow server` from the project's Python environment (`.venv/bin/python`, or
//! `HETEROLORA_PYTHON`) on a free loopback port, then trains all-MiniLM-L6-v2's shapes (random
//! weights, LoRA q,v r = 8, batch 16, synthetic pairs of up to 20 tokens; no download needed)
//! with `Trainer::fit` logging to a SQLite run and to a server run, alternately, for several
//! rounds. Timings per fit: the whole `fit` per optimiser step (wall time, run start included);
//! the time spent inside the tracker's metric calls per step (what the store adds to every
//! step); and the time inside its other calls once per run (run start, params, tags, artifacts,
//! explicit flushes, end: on a server, the end waits for the uploads). The tracker timings stay
//! readable when other work on the machine makes whole-step wall times vary. Timings are
//! printed, never asserted.

use candle_core::{DType, Device};
use heterolora::data::{EncodedDataset, EncodedExample, Label, Split, Task};
use heterolora::model::{BertConfig, SequenceClassifier};
use heterolora::rng::Rng;
use heterolora::tracking::{Run, RunLogger, RunStatus, Tracker};
use heterolora::train::{parse_allocation, TrainConfig, Trainer};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn synthetic(n: usize, seed: u64, split: Split) -> EncodedDataset {
    let mut rng = Rng::new(seed);
    let examples = (0..n)
        .map(|_| {
            let label = rng.below(2) as u32;
            let mut ids = vec![1u32];
            ids.extend(vec![12 - label; 3 + rng.below(6)]);
            ids.push(2);
            let mut type_ids = vec![0u32; ids.len()];
            ids.extend((0..2 + rng.below(8)).map(|_| 10 + rng.below(80) as u32));
            ids.push(2);
            type_ids.resize(ids.len(), 1);
            EncodedExample {
                ids,
                type_ids,
                label: Label::Class(label),
            }
        })
        .collect();
    EncodedDataset {
        task: Task::Mrpc,
        split,
        examples,
        pad_id: 0,
        max_len: 32,
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signals to the process group we started.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path) -> (Server, String) {
    let py = std::env::var_os("HETEROLORA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
        .arg(port.to_string())
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("server.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("mlartifacts"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{} -m mlflow server`: {e} (bash scripts/test.sh makes .venv)",
                py.display()
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let server = Server(child);
    let t0 = Instant::now();
    while ureq::get(&format!("{url}/health")).call().is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "mlflow server did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, url)
}

/// Forwards to the run and adds up the time spent in its metric calls and in the others.
struct Timed<'a> {
    run: &'a mut Run,
    metrics: Duration,
    other: Duration,
}

impl Timed<'_> {
    fn time<T>(&mut self, f: impl FnOnce(&mut Run) -> T) -> T {
        let t0 = Instant::now();
        let out = f(self.run);
        self.other += t0.elapsed();
        out
    }
}

impl RunLogger for Timed<'_> {
    fn log_params(&mut self, p: &[(String, String)]) -> heterolora::Result<()> {
        self.time(|r| RunLogger::log_params(r, p))
    }
    fn log_metrics(&mut self, m: &[(String, f64)], step: i64) -> heterolora::Result<()> {
        let t0 = Instant::now();
        let out = RunLogger::log_metrics(self.run, m, step);
        self.metrics += t0.elapsed();
        out
    }
    fn set_tags(&mut self, t: &[(String, String)]) -> heterolora::Result<()> {
        self.time(|r| RunLogger::set_tags(r, t))
    }
    fn log_artifact(&mut self, p: &Path, d: Option<&str>) -> heterolora::Result<()> {
        self.time(|r| RunLogger::log_artifact(r, p, d))
    }
    fn log_text(&mut self, t: &str, f: &str) -> heterolora::Result<()> {
        self.time(|r| RunLogger::log_text(r, t, f))
    }
    fn flush(&mut self) -> heterolora::Result<()> {
        self.time(RunLogger::flush)
    }
    fn end(&mut self, s: RunStatus) -> heterolora::Result<()> {
        self.time(|r| RunLogger::end(r, s))
    }
    fn run_id(&self) -> Option<String> {
        Some(self.run.run_id().to_string())
    }
}

/// One `fit` logging to a run of `tracker`.
struct Fit {
    /// Wall seconds per optimiser step.
    step: f64,
    /// Seconds per step inside the tracker's metric calls.
    metrics: f64,
    /// Seconds inside its other calls, once per run.
    other: f64,
    steps: usize,
}

fn fit_once(tracker: &Tracker, steps: usize, out: &Path) -> heterolora::Result<Fit> {
    let cfg_model = BertConfig::minilm_l6();
    let model = SequenceClassifier::random(&cfg_model, 2, DType::F32, &Device::Cpu, 7)?;
    let alloc = parse_allocation("uniform:q,v:r=8", &model.dims())?;
    let batch = 16;
    let cfg = TrainConfig::default()
        .lr(2e-3)
        .batch_size(batch)
        .epochs(1)
        .log_every(1)
        .quiet(true);
    let mut trainer = Trainer::new(
        model,
        alloc,
        synthetic(steps * batch, 1, Split::Train),
        synthetic(64, 2, Split::Dev),
        cfg,
    )?
    .with_output_dir(out);
    let t0 = Instant::now();
    let mut run = tracker.start_run("bench-step", "fit")?;
    let started = t0.elapsed();
    let mut timed = Timed {
        run: &mut run,
        metrics: Duration::ZERO,
        other: started,
    };
    let r = trainer.fit(&mut timed)?;
    let (metrics, other) = (timed.metrics.as_secs_f64(), timed.other.as_secs_f64());
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(r.status, RunStatus::Finished);
    assert!(run.spooled().is_none(), "the server missed requests");
    let n = r.steps as f64;
    Ok(Fit {
        step: dt / n,
        metrics: metrics / n,
        other,
        steps: r.steps,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn main() -> heterolora::Result<()> {
    let rounds = env_usize("HL_BENCH_ROUNDS", 3);
    let steps = env_usize("HL_BENCH_STEPS", 60);
    let dir = tempfile::tempdir().map_err(|e| heterolora::Error::io("tempdir", e))?;
    let (_server, url) = start_server(dir.path());
    let sqlite = Tracker::open_path(&dir.path().join("local.db"))?;
    let server = Tracker::open_server(&url, Some(&dir.path().join("spool")));
    println!(
        "training step of MiniLM-L6 shapes (LoRA q,v r = 8, batch 16, synthetic pairs), {steps} steps a fit, \
         {rounds} rounds, threads: {}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into())
    );
    // Warm-up (allocations, page cache), not counted.
    fit_once(&sqlite, 4, &dir.path().join("warm"))?;
    let (mut a, mut b): (Vec<Fit>, Vec<Fit>) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which store goes first.
        for which in [round % 2, 1 - round % 2] {
            let out = dir.path().join(format!("out-{round}-{which}"));
            let f = if which == 0 {
                fit_once(&sqlite, steps, &out)?
            } else {
                fit_once(&server, steps, &out)?
            };
            println!(
                concat!(
                    "round {} {:<7}: {:.2} ms/step over {} steps; in the tracker: ",
                    "metrics {:.4} ms/step, the rest {:.1} ms once per run"
                ),
                round,
                if which == 0 { "sqlite" } else { "server" },
                f.step * 1e3,
                f.steps,
                f.metrics * 1e3,
                f.other * 1e3
            );
            if which == 0 { &mut a } else { &mut b }.push(f);
        }
    }
    let col = |v: &[Fit], f: fn(&Fit) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let (ma, mb) = (col(&a, |f| f.step), col(&b, |f| f.step));
    let (mma, mmb) = (col(&a, |f| f.metrics), col(&b, |f| f.metrics));
    let (moa, mob) = (col(&a, |f| f.other), col(&b, |f| f.other));
    let fastest = a.iter().map(|f| f.step).fold(f64::INFINITY, f64::min);
    println!(
        "median wall ms/step: sqlite {:.2}, server {:.2} ({:+.2}%; includes whatever else ran)",
        ma * 1e3,
        mb * 1e3,
        (mb / ma - 1.0) * 100.0
    );
    println!(
        concat!(
            "median metric logging ms/step: sqlite {:.4}, server {:.4}: the server adds {:.4} ms = ",
            "{:+.3}% of a {:.2} ms step ({:+.3}% of the fastest, {:.2} ms)"
        ),
        mma * 1e3,
        mmb * 1e3,
        (mmb - mma) * 1e3,
        (mmb - mma) / ma * 100.0,
        ma * 1e3,
        (mmb - mma) / fastest * 100.0,
        fastest * 1e3
    );
    println!(
        concat!(
            "median once-per-run tracker time: sqlite {:.1} ms, server {:.1} ms: {:+.1} ms per run = ",
            "{:+.2}% of this {}-step fit"
        ),
        moa * 1e3,
        mob * 1e3,
        (mob - moa) * 1e3,
        (mob - moa) / (ma * steps as f64) * 100.0,
        steps
    );

    // Raw metric logging to the server (default batching: a log-batch per second or 1,000 points).
    let n = env_usize("HL_BENCH_POINTS", 20_000);
    let mut run = server.start_run("bench-step", "points")?;
    let t0 = Instant::now();
    for s in 0..n as i64 {
        run.log_metric("loss", 1.0 / (s as f64 + 1.0), s)?;
    }
    run.end(RunStatus::Finished)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "log_metric to the server, default batching: {n} points in {dt:.3} s = {:.0} points/s",
        n as f64 / dt
    );
    Ok(())
}
