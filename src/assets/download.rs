//! HTTP downloads into [`PartialFile`]s (so a failed download leaves no half file).

use super::checksum::PartialFile;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Downloads `url` to `dest`, verifying `expected` (hex SHA-256) before the file appears.
/// Returns the SHA-256. Offline, the error says so and how to fetch from a local copy.
pub fn download(url: &str, dest: &Path, expected: Option<&str>, progress: bool) -> Result<String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(120))
        .try_proxy_from_env(true)
        .build();
    let offline = |reason: String| Error::Asset {
        what: format!("download of {url}"),
        reason,
        hint: "Without network access, fetch from a local copy with `--from DIR`".into(),
    };
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => offline(format!("the server answered HTTP {code}")),
        ureq::Error::Transport(t) => offline(format!("no connection ({t})")),
    })?;
    let total: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let bar = if progress {
        let b = indicatif::ProgressBar::new(total.unwrap_or(0));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        Some(b)
    } else {
        None
    };
    let mut reader = resp.into_reader();
    let mut file = PartialFile::create(dest)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| offline(format!("the transfer broke off: {e}")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(t) = total {
        if file.len() != t {
            return Err(offline(format!("got {} of {t} bytes", file.len())));
        }
    }
    let sha = file.check(expected, Path::new(url))?;
    file.commit()?;
    Ok(sha)
}
