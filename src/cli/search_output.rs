//! `heterolora search --format json|csv`: the allocation for programs.

use crate::adapters::SlotTable;
use crate::cli::output::{csv_document, csv_float, print_json, print_stdout, OutputFormat};
use crate::search::Allocation;
use std::path::PathBuf;

/// JSON: `{"allocation": .., "summary": .., "files": [..]}` (the allocation as its file holds
/// it). CSV: `slot,r,lora_alpha`, one row per candidate, r = 0 and no alpha when off. The summary
/// and the table count parameters with the map sizes of the model's `table`.
pub fn print_allocation(
    format: OutputFormat,
    alloc: &Allocation,
    table: &SlotTable,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let summary = alloc.summary_in(table)?;
    match format {
        OutputFormat::Json => print_json(&serde_json::json!({
            "allocation": serde_json::to_value(alloc)?,
            "summary": serde_json::to_value(summary)?,
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        })),
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = alloc
                .candidates
                .iter()
                .map(|slot| match alloc.ranks.get(slot) {
                    Some(s) => vec![slot.to_string(), s.r.to_string(), csv_float(s.lora_alpha)],
                    None => vec![slot.to_string(), "0".into(), String::new()],
                })
                .collect();
            print_stdout(&csv_document(&["slot", "r", "lora_alpha"], &rows))
        }
        OutputFormat::Table => print_stdout(&format!("{}\n", alloc.to_string_in(table)?)),
    }
}
