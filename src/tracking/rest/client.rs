//! The HTTP client of MLflow's REST API: auth from MLflow's environment variables, retries with
//! exponential backoff on 429/5xx and connection errors, and errors that say what to do.

// The closures given to `with_retries` return ureq's own (large) error type.
#![allow(clippy::result_large_err)]

use crate::{Error, Result};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Basic auth user (with [`PASSWORD_ENV`]), as MLflow's client reads it.
pub const USERNAME_ENV: &str = "MLFLOW_TRACKING_USERNAME";
pub const PASSWORD_ENV: &str = "MLFLOW_TRACKING_PASSWORD";
/// Bearer token, as MLflow's client reads it.
pub const TOKEN_ENV: &str = "MLFLOW_TRACKING_TOKEN";
/// How many times a request is retried (MLflow's variable; default here 4).
pub const MAX_RETRIES_ENV: &str = "MLFLOW_HTTP_REQUEST_MAX_RETRIES";
/// Seconds before a request times out (MLflow's variable; default here 30).
pub const TIMEOUT_ENV: &str = "MLFLOW_HTTP_REQUEST_TIMEOUT";

/// Why a request failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer, or only 429/5xx answers, after every try: worth trying again later.
    Unreachable(String),
    /// The server refused the request (4xx): trying again will not help.
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
}

impl CallError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CallError::Unreachable(_))
    }
    /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, ...), if the server gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How hard to try one request.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all (1 = no retry).
    pub tries: u32,
    /// Wait before the second try; doubled for each further one.
    pub first_wait: Duration,
}

/// An MLflow tracking server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    auth: Option<String>,
    pub retry: Retry,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "<set>"))
            .finish()
    }
}

fn env_num(k: &str) -> Option<u64> {
    std::env::var(k).ok().and_then(|v| v.trim().parse().ok())
}

impl Client {
    /// A client of the server at `base` (`http(s)://host:port`), auth and limits from the environment.
    pub fn new(base: &str) -> Client {
        let timeout = Duration::from_secs(env_num(TIMEOUT_ENV).unwrap_or(30).max(1));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .build();
        let auth = match (
            std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
            std::env::var(USERNAME_ENV).ok().filter(|u| !u.is_empty()),
        ) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some(user)) => {
                let pass = std::env::var(PASSWORD_ENV).unwrap_or_default();
                Some(format!(
                    "Basic {}",
                    base64(format!("{user}:{pass}").as_bytes())
                ))
            }
            _ => None,
        };
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent,
            auth,
            retry: Retry {
                tries: env_num(MAX_RETRIES_ENV).map(|n| n as u32 + 1).unwrap_or(4),
                first_wait: Duration::from_millis(250),
            },
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A tracking API call (`path` under `/api/2.0/mlflow/`): POST with a JSON body, or GET with
    /// query pairs. Returns the JSON answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        retry: Retry,
    ) -> std::result::Result<Value, CallError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let text = body.map(|b| b.to_string());
        let resp = self.with_retries(retry, || {
            let mut req = self.request(method, &url);
            for (k, v) in query {
                req = req.query(k, v);
            }
            match &text {
                Some(t) => req.set("Content-Type", "application/json").send_string(t),
                None => req.call(),
            }
        })?;
        let s = resp
            .into_string()
            .map_err(|e| CallError::Unreachable(format!("reading the answer to {path}: {e}")))?;
        if s.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&s).map_err(|e| CallError::Rejected {
            status: 200,
            code: "BAD_RESPONSE".into(),
            message: format!(
                "{url} answered with something that is not JSON ({e}); is this an MLflow tracking server?"
            ),
        })
    }

    /// Upload a file through the server's artifact proxy (`rel` under `mlflow-artifacts/artifacts/`).
    pub fn put_artifact(
        &self,
        rel: &str,
        file: &Path,
        retry: Retry,
    ) -> std::result::Result<(), CallError> {
        let bytes = std::fs::read(file).map_err(|e| CallError::Rejected {
            status: 0,
            code: "LOCAL_FILE".into(),
            message: format!("cannot read {}: {e}", file.display()),
        })?;
        let url = self.artifact_url(rel);
        self.with_retries(retry, || {
            self.request("PUT", &url)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(&bytes)
        })?;
        Ok(())
    }

    /// Download an artifact through the proxy into `dest`.
    pub fn get_artifact(&self, rel: &str, dest: &Path) -> Result<()> {
        let url = self.artifact_url(rel);
        let resp = self
            .with_retries(self.retry, || self.request("GET", &url).call())
            .map_err(|e| self.error(&format!("download of artifact `{rel}`"), e))?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut bytes = Vec::new();
        resp.into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Tracking(format!("download of artifact `{rel}`: {e}")))?;
        super::super::artifacts::write(
            dest.parent().unwrap_or(Path::new(".")),
            &dest.file_name().unwrap_or_default().to_string_lossy(),
            &bytes,
        )?;
        Ok(())
    }

    /// List one folder through the proxy: (name relative to `rel`, is a folder).
    pub fn list_artifacts(&self, rel: &str) -> Result<Vec<(String, bool)>> {
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
        let resp = self
            .with_retries(self.retry, || {
                self.request("GET", &url).query("path", rel).call()
            })
            .map_err(|e| self.error("artifact listing", e))?;
        let v: Value = resp
            .into_json()
            .map_err(|e| Error::Tracking(format!("artifact listing of `{rel}`: {e}")))?;
        let files = v["files"].as_array().cloned().unwrap_or_default();
        Ok(files
            .iter()
            .filter_map(|f| {
                let p = f["path"].as_str()?;
                Some((p.to_string(), f["is_dir"].as_bool().unwrap_or(false)))
            })
            .collect())
    }

    fn artifact_url(&self, rel: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base,
            encode_path(rel.trim_start_matches('/'))
        )
    }

    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let req = self.agent.request(method, url);
        match &self.auth {
            Some(a) => req.set("Authorization", a),
            None => req,
        }
    }

    fn with_retries(
        &self,
        retry: Retry,
        mut send: impl FnMut() -> std::result::Result<ureq::Response, ureq::Error>,
    ) -> std::result::Result<ureq::Response, CallError> {
        let mut wait = retry.first_wait;
        let mut last = String::new();
        for attempt in 0..retry.tries.max(1) {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
            }
            match send() {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(code, resp)) if code == 429 || code >= 500 => {
                    if let Some(s) = resp
                        .header("Retry-After")
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        wait = wait.max(Duration::from_secs(s.min(60)));
                    }
                    last = format!("HTTP {code} {}", resp.status_text());
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let text = resp.into_string().unwrap_or_default();
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    return Err(CallError::Rejected {
                        status: code,
                        code: v["error_code"].as_str().unwrap_or("").to_string(),
                        message: v["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| text.chars().take(300).collect()),
                    });
                }
                Err(ureq::Error::Transport(t)) => last = t.to_string(),
            }
        }
        Err(CallError::Unreachable(format!(
            "{last} (after {} tr{})",
            retry.tries.max(1),
            if retry.tries.max(1) == 1 { "y" } else { "ies" }
        )))
    }

    /// A crate error for a failed call, naming the server and what to do.
    pub fn error(&self, what: &str, e: CallError) -> Error {
        match e {
            CallError::Unreachable(why) => Error::Tracking(format!(
                "MLflow tracking server {} did not answer {what}: {why}. Start the server or check \
                 --tracking-uri / MLFLOW_TRACKING_URI (unset it to log to the local tracking/mlflow.db)",
                self.base
            )),
            CallError::Rejected {
                status,
                code,
                message,
            } => {
                let hint = match status {
                    401 => format!(
                        " Set {USERNAME_ENV}/{PASSWORD_ENV} (basic auth) or {TOKEN_ENV} (bearer token)."
                    ),
                    403 => " The credentials lack permission for this.".to_string(),
                    404 if code.is_empty() => format!(
                        " Is {} an MLflow tracking server (with --serve-artifacts for artifacts)?",
                        self.base
                    ),
                    _ => String::new(),
                };
                Error::Tracking(format!(
                    "MLflow tracking server {} refused {what} (HTTP {status}{}): {message}.{hint}",
                    self.base,
                    if code.is_empty() {
                        String::new()
                    } else {
                        format!(" {code}")
                    }
                ))
            }
        }
    }
}

/// Percent-encoding of a URL path (`/` kept).
pub fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Standard base64 with padding (for basic auth).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_path_encoding() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
        assert_eq!(
            encode_path("1/ab/artifacts/a b#.txt"),
            "1/ab/artifacts/a%20b%23.txt"
        );
    }

    #[test]
    fn unreachable_server_error_says_what_to_do() {
        // Port 9 on loopback (discard) is closed on test machines: connection refused at once.
        let c = Client::new("http://127.0.0.1:9");
        let r = Retry {
            tries: 2,
            first_wait: Duration::from_millis(1),
        };
        let e = c
            .call("GET", "experiments/search", &[], None, r)
            .unwrap_err();
        assert!(e.is_unreachable());
        let msg = c.error("the experiment list", e).to_string();
        assert!(
            msg.contains("127.0.0.1:9")
                && msg.contains("MLFLOW_TRACKING_URI")
                && msg.contains("2 tries"),
            "{msg}"
        );
    }
}
