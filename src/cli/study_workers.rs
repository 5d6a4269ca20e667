//! `heterolora study` beyond one process: `--jobs N` (worker processes on this machine),
//! `--emit slurm` (a job array, one task per child) and `--worker` (one worker of a study whose
//! parent run exists, what both of them start).

use super::study::{finish, StudyArgs};
use crate::study::slurm::{SlurmJob, SlurmResources};
use crate::study::{AssetSource, Study, StudyOutcome};
use crate::tracking::{RunStatus, Tracker};
use crate::train::install_ctrlc;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn open(args: &StudyArgs) -> anyhow::Result<Study> {
    let cfg = args.opts.config()?;
    let tracker = Tracker::open_or_default(args.opts.tracking_uri.as_deref())?;
    let source = AssetSource::new(
        args.opts.assets.model.as_deref(),
        args.opts.assets.glue.as_deref(),
    );
    let mut study = Study::new(cfg, tracker, Box::new(source));
    study.claims = args.worker.policy();
    Ok(study)
}

/// `--jobs`, `--emit slurm` or `--worker`.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs 0: give the number of children to run at once (1 or more)");
    }
    match (&args.emit, args.worker.worker, args.jobs > 1) {
        (Some(_), true, _) | (Some(_), _, true) | (None, true, true) => anyhow::bail!(
            "--emit, --worker and --jobs are separate ways to run a study: give one of them"
        ),
        (Some(e), _, _) if e != "slurm" => {
            anyhow::bail!("--emit {e}: the only scheduler supported is `slurm`")
        }
        (Some(_), _, _) => emit_slurm(args),
        (None, true, _) => worker(args),
        (None, false, _) => jobs(args),
    }
}

fn worker(args: StudyArgs) -> anyhow::Result<()> {
    let mut study = open(&args)?;
    let parent = match &args.worker.parent_run {
        Some(id) => id.clone(),
        None => newest_parent(&study)?,
    };
    study.stop = install_ctrlc();
    if let Some(d) = args.stop_after {
        study.stop.stop_after(d);
    }
    let prefix = match args.worker.child_index {
        Some(i) => format!("[child {i}] "),
        None => String::new(),
    };
    let out = study.run_worker(&parent, args.worker.child_index, &mut |line| {
        eprintln!("{prefix}{line}")
    })?;
    let stopped = out.stopped.is_some() || study.stop.is_set();
    finish(&args, &study, &out, stopped)
}

fn newest_parent(study: &Study) -> anyhow::Result<String> {
    let exp = study.tracker.experiment(&study.cfg.experiment)?;
    let found = exp.search_runs(
        &format!(
            "tags.`heterolora.kind` = '{}' and tags.`study.name` = '{}'",
            crate::study::KIND_PARENT,
            study.cfg.name
        ),
        &["attributes.start_time DESC"],
    )?;
    found.run_ids().into_iter().next().ok_or_else(|| {
        anyhow::anyhow!(
            "study `{}` has no parent run in {}: start it once (`heterolora study ...`, `--jobs` \
             or `--emit slurm`), or pass --parent-run",
            study.cfg.name,
            study.tracker.tracking_uri()
        )
    })
}

fn jobs(args: StudyArgs) -> anyhow::Result<()> {
    let mut study = open(&args)?;
    let plan = study.plan()?;
    println!("{plan}");
    if args.dry_run {
        return Ok(());
    }
    let pending = plan.pending().count();
    let n = args.jobs.min(pending.max(1));
    study.source.check(study.cfg.task)?;
    let mut parent = study.open_parent()?;
    let parent_id = parent.run_id().to_string();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let threads = (cores / n).max(1);
    eprintln!(
        "tracker: {}\n{pending} children to run, {n} worker(s) with {threads} thread(s) each (parent run {parent_id})",
        study.tracker.tracking_uri()
    );
    let stop = install_ctrlc();
    // The workers get the stop through the signal forwarded below, so each stops at a step.
    if let Some(d) = args.stop_after {
        stop.stop_after(d);
    }
    let exe = std::env::current_exe()?;
    let mut workers: Vec<(usize, Child)> = Vec::new();
    let mut pipes = Vec::new();
    for k in 0..n {
        let mut child = Command::new(&exe)
            .arg("study")
            .args(args.opts.to_args())
            .args(args.worker.to_args())
            .args(["--worker", "--parent-run", &parent_id, "--no-report"])
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start worker {k} ({}): {e}", exe.display()))?;
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            pipes.push(std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                    eprintln!("[w{k}] {line}");
                }
            }));
        }
        workers.push((k, child));
        // Staggered starts: workers claiming the same first child at the same moment would each
        // wait out a settle time for one of them to win.
        std::thread::sleep(args.worker.policy().settle + Duration::from_millis(200));
    }
    let mut codes = vec![None; workers.len()];
    let mut forwarded = false;
    while codes.iter().any(Option::is_none) {
        if stop.is_set() && !forwarded {
            // The terminal's Ctrl-C reaches the workers too; a signal sent to this process alone
            // (or `--stop-after`) is passed on so that they stop at a step, checkpointing their
            // children, which continue from there next time.
            for (_, c) in &workers {
                // SAFETY: plain kill(2) on a child we started.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGINT) };
            }
            forwarded = true;
        }
        for (i, (_, c)) in workers.iter_mut().enumerate() {
            if codes[i].is_none() {
                if let Some(status) = c.try_wait()? {
                    codes[i] = Some(status.code().unwrap_or(-1));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in pipes {
        let _ = p.join();
    }
    let failed: Vec<(String, String)> = workers
        .iter()
        .zip(&codes)
        .filter(|(_, c)| !matches!(c, Some(0) | Some(130)))
        .map(|((k, _), c)| {
            (
                format!("worker {k}"),
                format!("exit status {}", c.unwrap_or(-1)),
            )
        })
        .collect();
    let stopped = stop.is_set() || codes.contains(&Some(130));
    let done = study.completed_keys()?;
    let out = StudyOutcome {
        parent_run_id: parent_id,
        finished: plan
            .pending()
            .filter(|c| done.contains(&c.key))
            .map(|c| c.key.clone())
            .collect(),
        skipped: plan
            .children
            .iter()
            .filter(|c| c.done)
            .map(|c| c.key.clone())
            .collect(),
        failed,
        ..Default::default()
    };
    study.close_parent(&plan, &mut parent, &out)?;
    finish(&args, &study, &out, stopped)
}

fn emit_slurm(args: StudyArgs) -> anyhow::Result<()> {
    let mut study = open(&args)?;
    let plan = study.plan()?;
    println!("{plan}");
    let indices: Vec<usize> = plan
        .children
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.done)
        .map(|(i, _)| i)
        .collect();
    let s = &args.slurm;
    let resources = SlurmResources {
        cpus_per_task: s.cpus_per_task,
        mem: s.mem.clone(),
        time: s.time.clone(),
        gpus_per_task: s.gpus_per_task,
        partition: s.partition.clone(),
        account: s.account.clone(),
        max_parallel: s.max_parallel,
    };
    resources.check()?;
    if indices.is_empty() {
        println!("every child is finished: nothing to submit (`heterolora study report` writes the report)");
        return Ok(());
    }
    if args.dry_run {
        return Ok(());
    }
    let mut parent = study.open_parent()?;
    let parent_id = parent.run_id().to_string();
    // A run handle cannot be let go without an end status: end it, then mark it RUNNING again,
    // as its children are scheduled; the worker that finishes the last child closes it.
    parent.set_tag("study.scheduled", "slurm")?;
    parent.end(RunStatus::Killed)?;
    study
        .tracker
        .set_terminated(&parent_id, RunStatus::Running)?;
    let cwd = std::env::current_dir()?;
    let dir = s
        .slurm_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("slurm").join(&study.cfg.name));
    let dir = if dir.is_absolute() {
        dir
    } else {
        cwd.join(dir)
    };
    let job = SlurmJob {
        study: study.cfg.name.clone(),
        parent_run_id: parent_id.clone(),
        indices: indices.clone(),
        exe: std::env::current_exe()?,
        workdir: cwd,
        tracking_uri: study.tracker.tracking_uri(),
        args: args.opts.to_args(),
        worker_args: args.worker.to_args(),
        resources,
        log_dir: dir.join("logs"),
    };
    let files = job.write(&dir)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!(
        "{} array task(s), one per pending child (parent run {parent_id}); submit with: bash {}",
        indices.len(),
        dir.join("submit.sh").display()
    );
    Ok(())
}
