//! `heterolora search`: turn a scores file into an allocation.
//!
//! ```text
//! heterolora search --scores scores.json --method topk --p 0.25 --r 8 --out allocation.json
//! heterolora search --scores scores.json --method heterogeneous --budget uniform:r=2 --ranks 0,1,2,4,8,16
//! heterolora search --method uniform --kinds q,v,shortcuts --r 2
//! heterolora search --method manual --spec "q,v:r=8,alpha=16"
//! ```

use crate::adapters::{ModelDims, SearchSpace, SlotKind, SlotSizes, SlotTable};
use crate::proxy::Scores;
use crate::search::{
    Allocation, AlphaRule, BudgetSpec, HeterogeneousParams, Manual, Pooling, Solver, TopKParams,
    UniformParams,
};
use crate::{Error, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// The same rank on every candidate.
    Uniform,
    /// The paper's static top-k at a fixed rank.
    Topk,
    /// A rank per slot from a set, maximising the summed score under a budget.
    Heterogeneous,
    /// A hand-written spec (`--spec`).
    Manual,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Scores JSON written by `heterolora score` (needed by topk and heterogeneous).
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Score first with this proxy on the real model (score-then-allocate in one go) instead of
    /// reading --scores; the scores are also written next to --out as `<stem>.scores.json`.
    #[arg(long, conflicts_with = "scores")]
    pub proxy: Option<String>,
    #[command(flatten)]
    pub scoring: crate::cli::score::ScoringOpts,
    #[arg(long, value_enum, default_value = "topk")]
    pub method: Method,
    /// Candidate slot kinds, e.g. `q,v`, `q,v,shortcuts`, `all`. Default: the kinds in the scores
    /// file (q,v without one).
    #[arg(long)]
    pub kinds: Option<String>,
    /// Candidate layers, e.g. `0-3` or `0,2,4`. Default: all.
    #[arg(long)]
    pub layers: Option<String>,
    /// Model sizes as LAYERS,HIDDEN,INTERMEDIATE (default all-MiniLM-L6-v2).
    #[arg(long, default_value = "6,384,1536")]
    pub dims: String,
    /// Take the model sizes from a Hugging Face config.json instead of --dims (BERT, or an OPT,
    /// Llama or Qwen2 decoder: its grouped-query k/v widths and gate).
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Fraction of candidates to enable (topk).
    #[arg(long, default_value_t = 0.25)]
    pub p: f64,
    /// Rank (topk: of enabled slots, default 8; uniform: of all slots, default 2).
    #[arg(long)]
    pub r: Option<usize>,
    /// LoRA alpha: a number (16, the authors' convention at every rank) or a per-rank rule
    /// (2r: scaling 2 at every rank).
    #[arg(long, default_value = "16")]
    pub lora_alpha: String,
    /// Rank of enabled shortcut slots (topk; default = --r).
    #[arg(long)]
    pub shortcut_r: Option<usize>,
    /// Shortcut alpha_s: a number or a per-rank rule.
    #[arg(long, default_value = "4")]
    pub shortcut_alpha: String,
    /// combined (one ranking) or separated (LoRA and shortcuts ranked apart).
    #[arg(long, default_value = "combined")]
    pub pooling: String,
    /// Seed of the random tie-breaks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rank set of the heterogeneous allocator.
    #[arg(long, default_value = "0,1,2,4,8,16")]
    pub ranks: String,
    /// Budget of the heterogeneous allocator: a count, uniform:r=R or top:p=P,r=R.
    #[arg(long, default_value = "uniform:r=2")]
    pub budget: String,
    /// greedy or exact (heterogeneous).
    #[arg(long, default_value = "greedy")]
    pub solver: String,
    /// Manual spec, e.g. `q,v:r=8,alpha=16` or `all:r=2`.
    #[arg(long)]
    pub spec: Option<String>,
    /// Where to write the allocation JSON.
    #[arg(long, short, default_value = "allocation.json")]
    pub out: PathBuf,
    /// Also write the PEFT fields (r, lora_alpha, target_modules, rank_pattern, alpha_pattern),
    /// with the model's module paths.
    #[arg(long)]
    pub peft: Option<PathBuf>,
    /// table, json ({"allocation": .., "summary": .., "files": [..]}) or csv (slot,r,lora_alpha
    /// for every candidate; r = 0 when off)
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::output::OutputFormat,
}

/// Model sizes from a Hugging Face `config.json` (`num_hidden_layers`, `hidden_size`,
/// `intermediate_size`).
pub fn dims_from_hf_config(path: &Path) -> Result<ModelDims> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, e.line(), format!("not a JSON config: {e}")))?;
    let field = |name: &str| -> Result<usize> {
        v.get(name)
            .and_then(|x| x.as_u64())
            .map(|x| x as usize)
            .ok_or_else(|| Error::parse(path, 0, format!("missing or non-integer field `{name}`")))
    };
    Ok(ModelDims {
        num_layers: field("num_hidden_layers")?,
        hidden_size: field("hidden_size")?,
        intermediate_size: field("intermediate_size")?,
    })
}

/// The slot table of the model a `config.json` describes: a decoder's by its `model_type` (`opt`,
/// `llama`, `qwen2`), else BERT's from its dims.
pub fn slot_table_from_hf_config(path: &Path) -> Result<SlotTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, e.line(), format!("not a JSON config: {e}")))?;
    match decoder_table(path, &v)? {
        Some(t) => Ok(t),
        None => Ok(SlotTable::bert(&dims_from_hf_config(path)?)),
    }
}

/// The slot table of a decoder `config.json` (the sizes `model::decoder` builds its maps with),
/// or `None` for any other `model_type`.
fn decoder_table(path: &Path, v: &serde_json::Value) -> Result<Option<SlotTable>> {
    use crate::model::decoder::{llama::LlamaConfig, opt::OptConfig};
    let parse_err = |e: serde_json::Error| Error::parse(path, e.line(), e.to_string());
    Ok(match v.get("model_type").and_then(|x| x.as_str()) {
        Some("opt") => {
            let c: OptConfig = serde_json::from_value(v.clone()).map_err(parse_err)?;
            Some(SlotTable::opt(
                c.num_hidden_layers,
                c.hidden_size,
                c.ffn_dim,
            ))
        }
        Some("llama" | "qwen2") => {
            let c: LlamaConfig = serde_json::from_value(v.clone()).map_err(parse_err)?;
            Some(SlotTable::llama(
                c.architecture(),
                c.num_hidden_layers,
                c.hidden_size,
                c.intermediate_size,
                c.num_attention_heads * c.head_dim(),
                c.kv_heads() * c.head_dim(),
            ))
        }
        _ => None,
    })
}

fn parse_dims(s: &str) -> Result<ModelDims> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid("dims", s, "LAYERS,HIDDEN,INTERMEDIATE, e.g. 6,384,1536"))?;
    match v[..] {
        [l, h, i] if l > 0 && h > 0 && i > 0 => Ok(ModelDims {
            num_layers: l,
            hidden_size: h,
            intermediate_size: i,
        }),
        _ => Err(Error::invalid(
            "dims",
            s,
            "three positive sizes LAYERS,HIDDEN,INTERMEDIATE",
        )),
    }
}

fn parse_layers(s: &str) -> Result<Vec<usize>> {
    let bad = || Error::invalid("layers", s, "layer indices such as 0-3 or 0,2,4");
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_ranks(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .map_err(|_| Error::invalid("ranks", s, "ranks such as 0,1,2,4,8,16"))
        })
        .collect()
}

/// Builds the allocation the arguments ask for (no printing, no files): the testable core.
pub fn build(args: &SearchArgs) -> Result<Allocation> {
    Ok(build_sized(args)?.0)
}

/// [`build`], with the slot table the allocation was sized with: the model's (`--proxy`), its
/// `config.json`'s (`--model-config`), or BERT's from `--dims`.
pub fn build_sized(args: &SearchArgs) -> Result<(Allocation, SlotTable)> {
    let (table, scores) = match &args.proxy {
        Some(name) => {
            let (table, s) = score_with_proxy(args, name)?;
            (table, Some(s))
        }
        None => {
            let table = match &args.model_config {
                Some(p) => slot_table_from_hf_config(p)?,
                None => SlotTable::bert(&parse_dims(&args.dims)?),
            };
            let scores = args.scores.as_deref().map(Scores::load).transpose()?;
            (table, scores)
        }
    };
    let mut space = match (&args.kinds, &scores) {
        (Some(k), _) => SearchSpace::parse_kinds(k)?,
        (None, Some(s)) => {
            let mut kinds: Vec<SlotKind> = s.values.keys().map(|id| id.kind).collect();
            kinds.sort();
            kinds.dedup();
            if kinds.is_empty() {
                return Err(Error::invalid(
                    "scores",
                    args.scores.as_ref().unwrap().display(),
                    "a scores file with at least one slot",
                ));
            }
            SearchSpace {
                kinds,
                layers: vec![],
            }
        }
        (None, None) => SearchSpace::lora_qv(),
    };
    if let Some(l) = &args.layers {
        space.layers = parse_layers(l)?;
    }
    let lora_alpha: AlphaRule = args.lora_alpha.parse()?;
    let shortcut_alpha: AlphaRule = args.shortcut_alpha.parse().map_err(|_| {
        Error::invalid(
            "shortcut_alpha",
            &args.shortcut_alpha,
            "a number such as 4, or a rule such as 2r",
        )
    })?;
    let rules = (lora_alpha, shortcut_alpha);
    let mut alloc = allocate(args, &space, scores.as_ref(), rules, &table, |m| {
        m.allocate_in(&table)
    })?;
    if let Some(p) = &args.scores {
        alloc
            .meta
            .insert("scores_file".into(), p.display().to_string());
    }
    if let Some(p) = &args.proxy {
        alloc.meta.insert("proxy".into(), p.clone());
        alloc.meta.insert(
            "scores_file".into(),
            proxy_scores_path(args).display().to_string(),
        );
    }
    Ok((alloc, table))
}

/// Runs the allocator of `--method` on `space`, sizing slots with `sizes` (BERT's dims or a
/// decoder's table); `manual` builds `--spec`'s allocation on the same model.
fn allocate(
    args: &SearchArgs,
    space: &SearchSpace,
    scores: Option<&Scores>,
    (lora_alpha, shortcut_alpha): (AlphaRule, AlphaRule),
    dims: &impl SlotSizes,
    manual: impl FnOnce(&Manual) -> Result<Allocation>,
) -> Result<Allocation> {
    let need_scores = || -> Result<&Scores> {
        scores.ok_or_else(|| {
            Error::invalid(
                "scores",
                "none",
                "--scores FILE for this method (write one with `heterolora score`)",
            )
        })
    };
    Ok(match args.method {
        Method::Uniform => UniformParams::new()
            .r(args.r.unwrap_or(2))
            .lora_alpha_rule(lora_alpha)
            .shortcut_alpha_rule(shortcut_alpha)
            .check()?
            .allocate(space, dims)?,
        Method::Topk => {
            let mut p = TopKParams::new()
                .p(args.p)
                .r(args.r.unwrap_or(8))
                .lora_alpha_rule(lora_alpha)
                .shortcut_alpha_rule(shortcut_alpha)
                .pooling(args.pooling.parse::<Pooling>()?)
                .seed(args.seed);
            if let Some(r) = args.shortcut_r {
                p = p.shortcut_r(r);
            }
            p.check()?.allocate(space, dims, need_scores()?)?
        }
        Method::Heterogeneous => HeterogeneousParams::new()
            .ranks(parse_ranks(&args.ranks)?)
            .budget(args.budget.parse::<BudgetSpec>()?)
            .lora_alpha_rule(lora_alpha)
            .shortcut_alpha_rule(shortcut_alpha)
            .solver(args.solver.parse::<Solver>()?)
            .seed(args.seed)
            .check()?
            .allocate(space, dims, need_scores()?)?,
        Method::Manual => {
            let spec = args.spec.as_deref().ok_or_else(|| {
                Error::invalid(
                    "spec",
                    "none",
                    "--spec such as q,v:r=8,alpha=16 for --method manual",
                )
            })?;
            manual(&Manual::parse(spec)?)?
        }
    })
}

/// Where `search --proxy` writes the scores it computed: `<out stem>.scores.json`.
pub fn proxy_scores_path(args: &SearchArgs) -> PathBuf {
    let stem = args
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("allocation");
    args.out.with_file_name(format!("{stem}.scores.json"))
}

/// `search --proxy`: loads the model and the first training batches, scores the candidate
/// space (`--kinds`, `--layers`; q,v by default) and writes the scores beside `--out`. Returns
/// the model's slot table (a decoder's grouped-query k/v, Llama's gate) and the scores.
fn score_with_proxy(args: &SearchArgs, name: &str) -> Result<(SlotTable, Scores)> {
    let mut space = match &args.kinds {
        Some(k) => SearchSpace::parse_kinds(k)?,
        None => SearchSpace::lora_qv(),
    };
    if let Some(l) = &args.layers {
        space.layers = parse_layers(l)?;
    }
    let (_, mut model, sd) = crate::cli::score::load_for_scoring(&args.scoring, args.seed)?;
    let fresh = crate::proxy::FreshAdapters {
        r: args.scoring.fresh_r,
        ..Default::default()
    };
    let mut all = crate::cli::score::score_names(name, &mut model, &sd, &space, &fresh, args.seed)?;
    if all.len() != 1 {
        return Err(Error::invalid(
            "proxy",
            name,
            "exactly one proxy for search",
        ));
    }
    let scores = all.remove(0);
    scores.save(proxy_scores_path(args))?;
    Ok((model.slot_table(), scores))
}

/// Runs `heterolora search`: builds the allocation, writes it, prints its table.
pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let (alloc, table) = build_sized(&args)?;
    alloc.save(&args.out)?;
    if let Some(p) = &args.peft {
        let fields = alloc.peft_config_fields(table.architecture);
        let text = serde_json::to_string_pretty(&fields)?;
        std::fs::write(p, text + "\n").map_err(|e| Error::io(p, e))?;
    }
    let mut files = vec![args.out.clone()];
    files.extend(args.peft.iter().cloned());
    if args.format != crate::cli::output::OutputFormat::Table {
        for f in &files {
            eprintln!("wrote {}", f.display());
        }
        return crate::cli::search_output::print_allocation(args.format, &alloc, &table, &files);
    }
    let mut report = format!("{}\n", alloc.to_string_in(&table)?);
    if args.method == Method::Heterogeneous {
        report.push_str(&objective_line(&args, &alloc, &table)?);
    }
    report.push_str(&format!("wrote {}\n", args.out.display()));
    if let Some(p) = &args.peft {
        report.push_str(&format!(
            "wrote {} (PEFT fields of the LoRA slots)\n",
            p.display()
        ));
    }
    crate::cli::output::print_stdout(&report)
}

/// The heterogeneous objective next to that of uniform rank on the same candidates, so the user
/// sees what the uneven ranks buy under the allocator's own gain model.
fn objective_line(args: &SearchArgs, alloc: &Allocation, table: &SlotTable) -> Result<String> {
    let path = match (&args.scores, &args.proxy) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => proxy_scores_path(args),
        (None, None) => return Ok(String::new()),
    };
    let path = &path;
    let scores = Scores::load(path)?;
    let h = HeterogeneousParams::new().check()?;
    // Compare with the uniform rank the budget was named after (r = 2 by default).
    let r = match args.budget.parse::<BudgetSpec>()? {
        BudgetSpec::Uniform { r } => r,
        _ => 2,
    };
    let uniform = UniformParams::new().r(r).check()?;
    let space = SearchSpace {
        kinds: {
            let mut k: Vec<SlotKind> = alloc.candidates.iter().map(|s| s.kind).collect();
            k.sort();
            k.dedup();
            k
        },
        layers: {
            let mut l: Vec<usize> = alloc.candidates.iter().map(|s| s.layer).collect();
            l.sort();
            l.dedup();
            l
        },
    };
    let u = uniform.allocate(&space, table)?;
    let u_params = u.trainable_params_in(table)?;
    Ok(format!(
        "objective (summed gain, {}): {:.4}; uniform r={r} on the same candidates: {:.4} with {} parameters\n",
        alloc.meta.get("gain_model").map_or("", String::as_str),
        h.objective(alloc, &scores)?,
        h.objective(&u, &scores)?,
        crate::search::table::thousands(u_params)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SlotId;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: SearchArgs,
    }

    fn args(extra: &[&str]) -> SearchArgs {
        T::parse_from(std::iter::once("search").chain(extra.iter().copied())).args
    }

    fn write_scores(dir: &Path) -> PathBuf {
        let slots = SearchSpace::lora_qv_shortcuts().slots(6);
        let s = Scores {
            proxy: "grad-norm".into(),
            values: slots
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i as f64))
                .collect(),
            rank_gains: None,
            num_batches: 32,
            seconds: 0.1,
        };
        let p = dir.join("scores.json");
        s.save(&p).unwrap();
        p
    }

    #[test]
    fn search_builds_each_method_from_a_scores_file() {
        let dir = tempfile::tempdir().unwrap();
        let scores = write_scores(dir.path());
        let sp = scores.to_str().unwrap();
        let a = build(&args(&["--scores", sp])).unwrap();
        // 12 LoRA + 23 shortcut candidates: floor(3) + round(5.75) = 3 + 6 = 9 on.
        assert_eq!(a.candidates.len(), 35);
        assert_eq!(a.ranks.len(), 9);
        assert_eq!(a.proxy.as_deref(), Some("grad-norm"));
        assert!(a.meta["scores_file"].ends_with("scores.json"));
        let a = build(&args(&[
            "--scores", sp, "--kinds", "q,v", "--layers", "0-2",
        ]))
        .unwrap();
        assert_eq!((a.candidates.len(), a.ranks.len()), (6, 1));
        assert!(a
            .ranks
            .contains_key(&"layer.2.attention.value".parse::<SlotId>().unwrap()));
        let a = build(&args(&[
            "--scores",
            sp,
            "--method",
            "heterogeneous",
            "--solver",
            "exact",
        ]))
        .unwrap();
        assert!(a.trainable_params() <= 35 * 2 * 768);
        let a = build(&args(&["--method", "uniform", "--r", "2"])).unwrap();
        assert_eq!(a.trainable_params(), 12 * 2 * 768);
        let a = build(&args(&[
            "--method", "manual", "--spec", "all:r=2", "--dims", "2,8,32",
        ]))
        .unwrap();
        assert_eq!(a.ranks.len(), 2 * 10 - 1);
    }

    #[test]
    fn search_errors_name_the_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let scores = write_scores(dir.path());
        let sp = scores.to_str().unwrap();
        for (extra, needle) in [
            (vec!["--method", "topk"], "--scores FILE"),
            (
                vec!["--scores", "/nonexistent/s.json"],
                "/nonexistent/s.json",
            ),
            (vec!["--scores", sp, "--p", "1.5"], "1.5"),
            (vec!["--scores", sp, "--kinds", "q,bogus"], "bogus"),
            (
                vec!["--scores", sp, "--method", "heterogeneous", "--ranks", "0"],
                "ranks",
            ),
            (
                vec![
                    "--scores",
                    sp,
                    "--method",
                    "heterogeneous",
                    "--budget",
                    "100",
                ],
                "rank-1",
            ),
            (vec!["--scores", sp, "--dims", "6,384"], "dims"),
            (vec!["--scores", sp, "--dims", "3,384,1536"], "layer.3"),
            (vec!["--method", "manual"], "--spec"),
        ] {
            let e = build(&args(&extra)).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
    }

    #[test]
    fn run_writes_the_allocation_and_peft_fields() {
        let dir = tempfile::tempdir().unwrap();
        let scores = write_scores(dir.path());
        let out = dir.path().join("alloc.json");
        let peft = dir.path().join("peft.json");
        run(args(&[
            "--scores",
            scores.to_str().unwrap(),
            "--kinds",
            "q,v",
            "--out",
            out.to_str().unwrap(),
            "--peft",
            peft.to_str().unwrap(),
        ]))
        .unwrap();
        let a = Allocation::load(&out).unwrap();
        assert_eq!(a.ranks.len(), 3);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&peft).unwrap()).unwrap();
        assert_eq!(v["target_modules"].as_array().unwrap().len(), 3);
        assert_eq!(v["r"], 8);
    }
}
