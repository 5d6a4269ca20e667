//! `heterolora search` on decoders: `--proxy` on a decoder folder and `--model-config` of a
//! decoder size slots with the model's slot table (grouped-query k/v widths, Llama's gate), so
//! budgets, the printed table and the JSON summary count the parameters the model trains.

use crate::util::{fixture, glue_root, output_of};
use candle_core::{DType, Device};
use heterolora::adapters::{SlotId, SlotKind, SlotTable};
use heterolora::model::Classifier;
use heterolora::search::Allocation;
use std::path::Path;
use std::process::Command;

fn search(args: &[&str]) -> (bool, String, String) {
    output_of(
        &mut Command::new(env!("CARGO_BIN_EXE_heterolora"))
            .arg("search")
            .args(args),
    )
}

fn llama_table() -> SlotTable {
    Classifier::from_pretrained(&fixture("llama"), 2, DType::F32, &Device::Cpu, 0)
        .unwrap()
        .slot_table()
}

fn json_summary_params(stdout: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["summary"]["trainable_params"].as_u64().unwrap() as usize
}

#[test]
fn search_with_a_proxy_on_a_llama_folder_budgets_with_its_slot_table() {
    let dir = tempfile::tempdir().unwrap();
    let glue = glue_root(dir.path(), 24, 8);
    let t = llama_table();
    // The fixture: hidden 32, 4 heads of 8, 2 key-value heads (k/v map 32 -> 16), MLP 48.
    assert_eq!(t.dims(SlotKind::Value), Some((32, 16)));
    let scoring = |out: &Path| -> Vec<String> {
        [
            "--proxy",
            "grad-norm",
            "--task",
            "mrpc",
            "--model",
            fixture("llama").to_str().unwrap(),
            "--glue",
            glue.to_str().unwrap(),
            "--batches",
            "2",
            "--batch-size",
            "4",
            "--max-len",
            "32",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    // Uniform r = 2 on q, v and the gate: 2 layers x 2 x ((32 + 32) + (32 + 16) + (32 + 48)).
    let out = dir.path().join("uniform.json");
    let mut a = scoring(&out);
    a.extend(
        [
            "--method", "uniform", "--kinds", "q,v,gate", "--r", "2", "--format", "json",
        ]
        .map(String::from),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = search(&a);
    assert!(ok, "{stderr}");
    let alloc = Allocation::load(&out).unwrap();
    assert!(alloc.is_enabled(&SlotId::new(1, SlotKind::FfnGate)));
    assert_eq!(alloc.ranks.len(), 6);
    assert_eq!(json_summary_params(&stdout), 2 * 2 * (64 + 48 + 80));
    assert_eq!(alloc.trainable_params_in(&t).unwrap(), 768);

    // Heterogeneous under the budget of uniform r = 2 on q, v: 2 x 2 x (64 + 48) = 448 on this
    // model (BERT-shaped maps would allow 512).
    let out = dir.path().join("hetero.json");
    let mut a = scoring(&out);
    a.extend(
        [
            "--method",
            "heterogeneous",
            "--kinds",
            "q,v",
            "--ranks",
            "0,1,2,4",
        ]
        .map(String::from),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = search(&a);
    assert!(ok, "{stderr}");
    let alloc = Allocation::load(&out).unwrap();
    let params = alloc.trainable_params_in(&t).unwrap();
    assert!(params <= 448, "{params} > 448\n{stdout}");
    assert_eq!(alloc.meta["budget"], "448");
    // The table's title and total count with the table; the objective line's uniform too.
    let total = heterolora::search::table::thousands(params);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!("{total} trainable parameters")),
        "{stdout}"
    );
    assert!(stdout.contains("with 448 parameters"), "{stdout}");
    assert!(dir.path().join("hetero.scores.json").exists());
}

#[test]
fn search_reads_a_decoder_config_for_its_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alloc.json");
    let cfg = fixture("llama").join("config.json");
    let (ok, stdout, stderr) = search(&[
        "--method",
        "uniform",
        "--kinds",
        "all",
        "--r",
        "2",
        "--model-config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let t = llama_table();
    let alloc = Allocation::load(&out).unwrap();
    // `all` on Llama: 7 LoRA kinds and the shortcuts (no shortcut2 in layer 0), in 2 layers.
    assert_eq!(alloc.ranks.len(), 2 * 7 + 4 + 3);
    assert_eq!(alloc.candidates, t.all_slots());
    assert_eq!(
        json_summary_params(&stdout),
        alloc.trainable_params_in(&t).unwrap()
    );
    assert_ne!(
        alloc.trainable_params_in(&t).unwrap(),
        alloc.trainable_params()
    );

    // OPT's config has ffn_dim, not intermediate_size: read as OPT's table. The PEFT fields
    // name OPT's modules.
    let cfg = fixture("opt_pre").join("config.json");
    let peft = dir.path().join("peft.json");
    let (ok, stdout, stderr) = search(&[
        "--method",
        "manual",
        "--spec",
        "q,v:r=4",
        "--model-config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--peft",
        peft.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let opt = Classifier::from_pretrained(&fixture("opt_pre"), 2, DType::F32, &Device::Cpu, 0)
        .unwrap()
        .slot_table();
    let alloc = Allocation::load(&out).unwrap();
    let total = heterolora::search::table::thousands(alloc.trainable_params_in(&opt).unwrap());
    assert!(stdout.lines().next().unwrap().contains(&total), "{stdout}");
    let fields: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&peft).unwrap()).unwrap();
    assert_eq!(fields["r"], 4);
    assert_eq!(
        fields["target_modules"][0], "layers.0.self_attn.q_proj",
        "{fields}"
    );
    assert_eq!(
        fields["rank_pattern"]["layers.1.self_attn.v_proj"], 4,
        "{fields}"
    );
}

#[test]
fn bert_sizes_from_a_config_print_as_the_dims_flag_does() {
    // A BERT config and the same sizes as --dims give the same bytes (the path BERT always took).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"model_type": "bert", "num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536}"#,
    )
    .unwrap();
    let out = dir.path().join("a.json");
    let run = |sizes: &[&str]| {
        let mut a = vec![
            "--method",
            "uniform",
            "--kinds",
            "q,v,shortcuts",
            "--r",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend(sizes);
        let (ok, stdout, stderr) = search(&a);
        assert!(ok, "{stderr}");
        (stdout, std::fs::read_to_string(&out).unwrap())
    };
    let by_config = run(&["--model-config", cfg.to_str().unwrap()]);
    let by_dims = run(&["--dims", "6,384,1536"]);
    assert_eq!(by_config, by_dims);
    let a = Allocation::load(&out).unwrap();
    assert!(by_dims
        .0
        .contains(&heterolora::search::table::thousands(a.trainable_params())));
}
