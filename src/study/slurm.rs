//! `heterolora study ... --emit slurm`: a Slurm job array with one task per pending child.
//!
//! Each array task runs `heterolora study <the same options> --worker --parent-run <id>
//! --child-index $SLURM_ARRAY_TASK_ID`: exactly one child, skipped when it is already finished
//! or held by a live worker (claims in the tracker, see [`crate::study::claim`]). The parent
//! run is opened once, when the script is written, so that tasks starting together do not each
//! create one. A second job, submitted with `--dependency=afterany` on the array, writes the
//! report. The tracking URI is written into the script (the tasks must share the store: an
//! MLflow server, or an SQLite file on a shared file system that supports locking).

use crate::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Resources and placement of the array tasks.
///
/// | field | default | `sbatch` option |
/// |---|---|---|
/// | `cpus_per_task` | 4 | `--cpus-per-task` (also the task's thread count) |
/// | `mem` | `16G` | `--mem` |
/// | `time` | `04:00:00` | `--time` (a task past it is killed; its claim goes stale and is retried) |
/// | `gpus_per_task` | 0 | `--gpus-per-task` |
/// | `partition` | none | `--partition` |
/// | `account` | none | `--account` |
/// | `max_parallel` | none | the `%N` limit of `--array` |
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmResources {
    pub cpus_per_task: usize,
    pub mem: String,
    pub time: String,
    pub gpus_per_task: usize,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub max_parallel: Option<usize>,
}

impl Default for SlurmResources {
    fn default() -> Self {
        SlurmResources {
            cpus_per_task: 4,
            mem: "16G".into(),
            time: "04:00:00".into(),
            gpus_per_task: 0,
            partition: None,
            account: None,
            max_parallel: None,
        }
    }
}

impl SlurmResources {
    pub fn check(&self) -> Result<()> {
        if self.cpus_per_task == 0 {
            return Err(Error::invalid("cpus-per-task", "0", "at least 1"));
        }
        let time_ok = !self.time.is_empty()
            && self
                .time
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '-');
        if !time_ok {
            return Err(Error::invalid(
                "time",
                &self.time,
                "Slurm's time format, e.g. 04:00:00 or 1-00:00:00",
            ));
        }
        let mem_ok = self
            .mem
            .trim_end_matches(['K', 'M', 'G', 'T'])
            .parse::<u64>()
            .is_ok();
        if !mem_ok {
            return Err(Error::invalid(
                "mem",
                &self.mem,
                "a size such as 16G or 8000M",
            ));
        }
        for (field, v) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = v {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.,".contains(c))
                {
                    return Err(Error::invalid(
                        field,
                        v,
                        "a Slurm name (letters, digits, _ - . ,)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Everything the scripts need.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    pub study: String,
    pub parent_run_id: String,
    /// Plan indices of the children to run (the pending ones).
    pub indices: Vec<usize>,
    /// The heterolora binary the tasks run (overridable with `$HETEROLORA` at submit time).
    pub exe: PathBuf,
    /// The folder the tasks run in (relative paths in `args` are relative to it).
    pub workdir: PathBuf,
    /// The tracking URI every task logs to.
    pub tracking_uri: String,
    /// The study's options (`--task ... --seeds ...`), for both scripts.
    pub args: Vec<String>,
    /// Options of the array tasks only (claim settings).
    pub worker_args: Vec<String>,
    pub resources: SlurmResources,
    /// Where the tasks' output files go.
    pub log_dir: PathBuf,
}

/// `0-3,5,7-8`: the indices as Slurm's `--array` list (sorted, ranges merged).
pub fn array_spec(indices: &[usize]) -> String {
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Quotes a word for a POSIX shell (single quotes; a quote inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn quoted(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn header(s: &mut String, job: &SlurmJob, name: &str, what: &str) {
    let r = &job.resources;
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Generated by `heterolora study --emit slurm` for study `{}` (parent run {}): {what}.",
        job.study, job.parent_run_id
    );
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", r.cpus_per_task);
    let _ = writeln!(s, "#SBATCH --mem={}", r.mem);
    let _ = writeln!(s, "#SBATCH --time={}", r.time);
    if r.gpus_per_task > 0 {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={}", r.gpus_per_task);
    }
    if let Some(p) = &r.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(a) = &r.account {
        let _ = writeln!(s, "#SBATCH --account={a}");
    }
}

fn preamble(s: &mut String, job: &SlurmJob) {
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "cd {}", shell_quote(&job.workdir.display().to_string()));
    let _ = writeln!(
        s,
        "export MLFLOW_TRACKING_URI=\"${{MLFLOW_TRACKING_URI:-{}}}\"",
        job.tracking_uri.replace('"', "\\\"")
    );
    let _ = writeln!(
        s,
        "HETEROLORA=\"${{HETEROLORA:-{}}}\"",
        job.exe.display().to_string().replace('"', "\\\"")
    );
}

/// The array script: one task per pending child.
pub fn array_script(job: &SlurmJob) -> Result<String> {
    job.resources.check()?;
    if job.indices.is_empty() {
        return Err(Error::Other(format!(
            "study `{}` has no pending children: nothing to submit",
            job.study
        )));
    }
    let mut s = String::new();
    header(
        &mut s,
        job,
        &job.resources_name("train"),
        "one array task per pending child",
    );
    let mut array = array_spec(&job.indices);
    if let Some(n) = job.resources.max_parallel {
        array += &format!("%{n}");
    }
    let _ = writeln!(s, "#SBATCH --array={array}");
    let _ = writeln!(
        s,
        "#SBATCH --output={}",
        job.log_dir.join("%x-%A_%a.out").display()
    );
    preamble(&mut s, job);
    let _ = writeln!(
        s,
        "export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{}}}\"",
        job.resources.cpus_per_task
    );
    let _ = writeln!(
        s,
        ": \"${{SLURM_ARRAY_TASK_ID:?run as a Slurm array task (sbatch), or set SLURM_ARRAY_TASK_ID to a child index}}\""
    );
    let _ = writeln!(
        s,
        "exec \"$HETEROLORA\" study {} --worker --parent-run {} --child-index \"$SLURM_ARRAY_TASK_ID\" --no-report",
        quoted(&[job.args.clone(), job.worker_args.clone()].concat()),
        shell_quote(&job.parent_run_id)
    );
    Ok(s)
}

/// The report script, run after the array (`--dependency=afterany`).
pub fn report_script(job: &SlurmJob) -> String {
    let mut s = String::new();
    let mut one = job.clone();
    one.resources.gpus_per_task = 0;
    one.resources.cpus_per_task = 1;
    header(
        &mut s,
        &one,
        &job.resources_name("report"),
        "the report, after the array",
    );
    let _ = writeln!(
        s,
        "#SBATCH --output={}",
        job.log_dir.join("%x-%j.out").display()
    );
    preamble(&mut s, job);
    let _ = writeln!(s, "exec \"$HETEROLORA\" study report {}", quoted(&job.args));
    s
}

/// `submit.sh`: submits the array, then the report after it.
pub fn submit_script(dir: &Path) -> String {
    let d = shell_quote(&dir.display().to_string());
    format!(
        "#!/bin/bash\n\
         # Submits the study's array, then its report once every task has ended.\n\
         set -euo pipefail\n\
         mkdir -p {logs}\n\
         array=$(sbatch --parsable {d}/study.sbatch)\n\
         report=$(sbatch --parsable --dependency=afterany:\"${{array%%;*}}\" {d}/report.sbatch)\n\
         echo \"submitted array job $array and report job $report\"\n",
        logs = d.clone() + "/logs",
    )
}

impl SlurmJob {
    fn resources_name(&self, what: &str) -> String {
        let name: String = self
            .study
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("hl-{name}-{what}")
    }

    /// Writes `study.sbatch`, `report.sbatch` and `submit.sh` into `dir` (and `dir/logs/`).
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir.join("logs")).map_err(|e| Error::io(dir, e))?;
        let files = [
            ("study.sbatch", array_script(self)?),
            ("report.sbatch", report_script(self)),
            ("submit.sh", submit_script(dir)),
        ];
        let mut out = Vec::new();
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755));
            }
            out.push(p);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SlurmJob {
        SlurmJob {
            study: "mrpc-cpu6".into(),
            parent_run_id: "abc123".into(),
            indices: vec![0, 1, 2, 5, 7, 8],
            exe: "bin/heterolora".into(),
            workdir: "proj".into(),
            tracking_uri: "http://mlflow.internal:5000".into(),
            args: vec![
                "--task".into(),
                "mrpc".into(),
                "--methods".into(),
                "uniform-r2,random".into(),
                "--name".into(),
                "it's".into(),
            ],
            worker_args: vec![],
            resources: SlurmResources {
                partition: Some("gpu".into()),
                gpus_per_task: 1,
                max_parallel: Some(4),
                ..Default::default()
            },
            log_dir: "proj/slurm/logs".into(),
        }
    }

    #[test]
    fn array_lists_merge_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(array_spec(&[3]), "3");
        assert_eq!(array_spec(&[4, 3, 3, 0]), "0,3-4");
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("mrpc"), "mrpc");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_array_script_runs_one_child_per_task_with_its_resources() {
        let s = array_script(&job()).unwrap();
        assert!(s.starts_with("#!/bin/bash\n"));
        for line in [
            "#SBATCH --array=0-2,5,7-8%4",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --partition=gpu",
            "#SBATCH --mem=16G",
            "#SBATCH --time=04:00:00",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing:\n{s}");
        }
        assert!(s.contains("MLFLOW_TRACKING_URI:-http://mlflow.internal:5000"));
        assert!(s.contains(
            "study --task mrpc --methods uniform-r2,random --name 'it'\\''s' --worker --parent-run abc123 --child-index \"$SLURM_ARRAY_TASK_ID\""
        ));
        let r = report_script(&job());
        assert!(r.contains("study report --task mrpc"));
        assert!(!r.contains("--array") && !r.contains("gpus-per-task"));
    }

    #[test]
    fn bad_resources_and_empty_plans_are_refused() {
        let mut j = job();
        j.resources.time = "four hours".into();
        assert!(array_script(&j).unwrap_err().to_string().contains("time"));
        let mut j = job();
        j.resources.mem = "lots".into();
        assert!(array_script(&j).unwrap_err().to_string().contains("mem"));
        let mut j = job();
        j.resources.partition = Some("gpu; rm -rf".into());
        assert!(array_script(&j).is_err());
        let mut j = job();
        j.indices.clear();
        assert!(array_script(&j)
            .unwrap_err()
            .to_string()
            .contains("no pending children"));
    }
}
