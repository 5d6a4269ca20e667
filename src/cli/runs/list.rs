//! `heterolora runs list`: the runs matching a search, as a table that fits the terminal, or as
//! JSON or CSV.

use super::columns::{self, Cell, RunColumn, DURATION};
use super::ListArgs;
use crate::cli::output::{
    csv_document, csv_float, json_number, print_json, print_stdout, OutputFormat,
};
use crate::display::{TextColumn, TextTable};
use crate::tracking::display::{fmt_float, fmt_time_ms};
use crate::tracking::Tracker;
use std::collections::BTreeMap;

/// Width of the table when neither `COLUMNS` nor the terminal says: what every terminal has.
pub const DEFAULT_WIDTH: usize = 100;

pub fn list(t: &Tracker, a: &ListArgs) -> anyhow::Result<()> {
    let table = a.search.search(t)?;
    let experiments: BTreeMap<String, String> = t
        .list_experiments()?
        .into_iter()
        .map(|e| (e.experiment_id.to_string(), e.name))
        .collect();
    let default_view = a.columns.is_empty();
    let mut names = if default_view {
        columns::default_columns(&table)
    } else {
        columns::resolve(&table, &a.columns)?
    };
    if a.tags {
        for n in columns::all_columns(&table) {
            if n.starts_with("tags.") && !n.starts_with("tags.mlflow.") && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let cols = columns::values(&table, &names, &experiments)?;
    match a.format {
        OutputFormat::Json => print_json(&json_rows(&cols, table.len())),
        OutputFormat::Csv => print_stdout(&csv_rows(&cols, table.len())),
        OutputFormat::Table => {
            if table.is_empty() {
                eprintln!(
                    "no runs match (experiments: {})",
                    experiment_list(&experiments)
                );
                return Ok(());
            }
            let width = terminal_width();
            let short_times = default_view && same_year(&cols);
            let rendered = text_table(&cols, default_view, short_times).render(Some(width));
            print_stdout(&rendered.text)?;
            let hidden = columns::all_columns(&table)
                .len()
                .saturating_sub(cols.len())
                + rendered.left_out.len();
            if default_view && hidden > 0 {
                let hint = format!(
                    "{} run(s); {hidden} more column(s): --columns all, or e.g. --columns run_name,metrics.<key>,params.<key>",
                    table.len()
                );
                eprintln!("{}", crate::display::text_table::truncate(&hint, width));
            }
            Ok(())
        }
    }
}

fn experiment_list(experiments: &BTreeMap<String, String>) -> String {
    if experiments.is_empty() {
        return "none yet".into();
    }
    experiments.values().cloned().collect::<Vec<_>>().join(", ")
}

/// `COLUMNS` when set, else the terminal's width when stdout is one, else [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return w;
    }
    tty_width().unwrap_or(DEFAULT_WIDTH)
}

fn tty_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ only fills the winsize struct we own.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// A duration for people: `42.1s`, `3m05s`, `1h02m`, `2d03h`.
pub fn fmt_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let s = s.round() as u64;
    match s {
        0..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A column header for the narrow default view: metric keys without their prefix, with the
/// long metric names shortened (`best_dev_accuracy` -> `best_dev_acc`).
fn short_header(name: &str) -> String {
    match name {
        "start_time" => "start (UTC)".into(),
        _ => match name.strip_prefix("metrics.") {
            Some(m) => m.replace("accuracy", "acc").replace("matthews", "mcc"),
            None => name.to_string(),
        },
    }
}

/// Whether every time shown falls in one year (the default view then leaves the year out).
fn same_year(cols: &[RunColumn]) -> bool {
    let years: std::collections::BTreeSet<String> = cols
        .iter()
        .flat_map(|c| &c.cells)
        .filter_map(|v| match v {
            Cell::Time(ms) => Some(fmt_time_ms(*ms)[..4].to_string()),
            _ => None,
        })
        .collect();
    years.len() <= 1
}

/// A cell as the table shows it. `short` (the default view): 8-digit run ids and times to the
/// minute, without the year when `short_times`; the rest is in `runs show` and in JSON.
fn table_cell(c: &Cell, column: &str, short: bool, short_times: bool) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Text(s) if short && column == "run_id" => s.chars().take(8).collect(),
        Cell::Text(s) => s.clone(),
        Cell::Float(v) => fmt_float(*v),
        Cell::Time(ms) if short_times => fmt_time_ms(*ms)[5..16].to_string(),
        Cell::Time(ms) if short => fmt_time_ms(*ms)[..16].to_string(),
        Cell::Time(ms) => fmt_time_ms(*ms),
        Cell::Seconds(s) => fmt_duration(*s),
    }
}

/// The table: in the default view short ids, minute times and short headers; long names may
/// shrink (down to 20 characters, cut in the middle) and then metrics are left out to fit.
fn text_table(cols: &[RunColumn], default_view: bool, short_times: bool) -> TextTable {
    let columns = cols
        .iter()
        .map(|c| {
            let cells: Vec<String> = c
                .cells
                .iter()
                .map(|v| table_cell(v, &c.name, default_view, short_times))
                .collect();
            let numeric = c
                .cells
                .iter()
                .all(|v| matches!(v, Cell::Null | Cell::Float(_) | Cell::Seconds(_)));
            let header = if default_view {
                short_header(&c.name)
            } else {
                c.name.clone()
            };
            let mut col = TextColumn::new(header, cells);
            if numeric {
                col = col.right();
            }
            match c.name.as_str() {
                "run_name" => col.max_width(40).shrink_to(20).elide_middle(),
                columns::EXPERIMENT => col.max_width(16).shrink_to(10).elide_middle(),
                "run_id" | "status" | "start_time" | "end_time" | DURATION => col,
                _ if default_view => col.max_width(14).optional(),
                _ => col.max_width(40).shrink_to(10),
            }
        })
        .collect();
    TextTable::new(columns)
}

fn json_cell(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Null => serde_json::Value::Null,
        Cell::Text(s) => serde_json::Value::String(s.clone()),
        Cell::Float(v) | Cell::Seconds(v) => json_number(*v),
        Cell::Time(ms) => serde_json::Value::from(*ms),
    }
}

/// An array with one object per run, keyed by column name (MLflow's `search_runs` columns).
fn json_rows(cols: &[RunColumn], n: usize) -> serde_json::Value {
    let rows = (0..n)
        .map(|i| {
            let obj: serde_json::Map<String, serde_json::Value> = cols
                .iter()
                .map(|c| (c.name.clone(), json_cell(&c.cells[i])))
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn csv_rows(cols: &[RunColumn], n: usize) -> String {
    let header: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            cols.iter()
                .map(|c| match &c.cells[i] {
                    Cell::Null => String::new(),
                    Cell::Text(s) => s.clone(),
                    Cell::Float(v) | Cell::Seconds(v) => csv_float(*v),
                    Cell::Time(ms) => ms.to_string(),
                })
                .collect()
        })
        .collect();
    csv_document(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(fmt_duration(4.31), "4.3s");
        assert_eq!(fmt_duration(185.0), "3m05s");
        assert_eq!(fmt_duration(3720.0), "1h02m");
        assert_eq!(fmt_duration(2.0 * 86_400.0 + 3.0 * 3600.0), "2d03h");
    }

    #[test]
    fn headers_are_short_in_the_default_view() {
        assert_eq!(short_header("metrics.best_dev_accuracy"), "best_dev_acc");
        assert_eq!(short_header("metrics.dev_matthews"), "dev_mcc");
        assert_eq!(short_header("start_time"), "start (UTC)");
    }
}
