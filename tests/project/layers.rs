//! The structure of `src/` stays one way: `scripts/check-layers.py` fails on a module that uses a
//! higher layer (data, model and adapters, proxy and search, train, tracking, study; display
//! and plots read from all) or on an import cycle between files.

use std::process::Command;

#[test]
fn src_imports_run_one_way_without_cycles() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/check-layers.py"))
        .output()
        .expect("python3 runs scripts/check-layers.py");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("layers one way, no import cycles"), "{text}");
}
