//! `base_model_name_or_path` of a saved adapter: what PEFT loads the adapter onto.
//!
//! `AutoPeftModelForSequenceClassification.from_pretrained(adapter_dir)` reads this field and
//! loads that model first, so a wrong name makes the adapter silently wrong outside this crate
//! and a missing one makes it unusable. A Hugging Face id works on any machine that reaches the
//! hub; a local path only where that folder exists. So: the hub id when the folder holds a model
//! `fetch model` knows (recognised by its pinned `config.json` checksum), else the folder's
//! absolute path.
//!
//! The name travels in the model's config (`_name_or_path`, as transformers records where a model
//! was loaded from). A `config.json` as downloaded carries the name of the model it was trained
//! from instead (all-MiniLM-L6-v2's says `nreimers/MiniLM-L6-H384-uncased`, a different model),
//! so only a name this module can vouch for is written: see [`vouched_base`].

use crate::assets::checksum::sha256_file;
use crate::assets::manifest::known_models;
use std::path::Path;

/// The name PEFT should load the base model by, for a model loaded from `model_dir`.
pub fn base_model_name_or_path(model_dir: &Path) -> String {
    if let Some(hub) = known_hub_id(model_dir) {
        return hub;
    }
    std::fs::canonicalize(model_dir)
        .or_else(|_| std::path::absolute(model_dir))
        .unwrap_or_else(|_| model_dir.to_path_buf())
        .display()
        .to_string()
}

/// `name` when it is one [`base_model_name_or_path`] gives: the hub id of a model we pin, or an
/// absolute path to an existing folder. Anything else (a `config.json`'s own `_name_or_path`) is
/// not written, since PEFT would load the wrong base without a word.
pub fn vouched_base(name: Option<&str>) -> Option<&str> {
    let name = name?;
    let known = known_models().iter().any(|m| m.hub == name);
    let local = Path::new(name).is_absolute() && Path::new(name).is_dir();
    (known || local).then_some(name)
}

/// The hub id of a pinned model whose `config.json` is byte for byte the pinned one.
fn known_hub_id(model_dir: &Path) -> Option<String> {
    let sha = sha256_file(&model_dir.join("config.json")).ok()?;
    known_models()
        .iter()
        .find(|m| {
            m.sha256
                .get("config.json")
                .is_some_and(|s| s.eq_ignore_ascii_case(&sha))
        })
        .map(|m| m.hub.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_we_do_not_know_is_named_by_its_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let p = base_model_name_or_path(dir.path());
        assert!(Path::new(&p).is_absolute() && Path::new(&p).is_dir(), "{p}");
        assert_eq!(vouched_base(Some(&p)), Some(p.as_str()));
    }

    #[test]
    fn only_names_we_can_vouch_for_are_written() {
        let hub = "sentence-transformers/all-MiniLM-L6-v2";
        assert!(known_models().iter().any(|m| m.hub == hub));
        assert_eq!(vouched_base(Some(hub)), Some(hub));
        // What all-MiniLM-L6-v2's own config.json says: another model.
        assert_eq!(vouched_base(Some("nreimers/MiniLM-L6-H384-uncased")), None);
        assert_eq!(vouched_base(Some("/no/such/folder")), None);
        assert_eq!(vouched_base(None), None);
    }
}
