//! Ctrl-C during `heterolora train` checkpoints and exits with status 130 (the shell's 128 +
//! SIGINT), so scripts can tell an interrupt from a failure. Needs the fetched model and MRPC.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_checkpoints_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_heterolora"))
        .args(["train", "--task", "mrpc", "--allocation", "uniform:v:r=2"])
        .args(["--batch-size", "4", "--max-len", "32", "--max-steps", "400"])
        .arg("--output")
        .arg(&out)
        .arg("--tracking-uri")
        .arg(dir.path().join("mlflow.db"))
        .env_remove("MLFLOW_TRACKING_URI")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let started = Instant::now();
    // Wait for the first progress line: training is under way and the handler installed.
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("no progress line: {log:?}"));
        let training = line.starts_with("step ");
        log.push(line);
        if training {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{log:?}");
    }
    // SAFETY: sends SIGINT to the child we spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    log.extend(rx.try_iter());
    assert_eq!(status.code(), Some(130), "{log:#?}");
    assert!(out.join("checkpoint").is_dir(), "no checkpoint: {log:#?}");
    assert!(
        log.iter().any(|l| l.contains("stopped by the user")),
        "{log:#?}"
    );
}
