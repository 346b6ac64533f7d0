//! Embeds the OCPP JSON schemas: writes `schemas.rs` into `OUT_DIR` with one table per version
//! mapping each action to its request and response schema text (`include_str!`), sorted by
//! action name, so the crate needs no file access at run time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// (table name, schema directory, suffix of request files; 1.6 has none).
const VERSIONS: [(&str, &str, &str); 3] = [
    ("V16", "v16", ""),
    ("V201", "v201", "Request"),
    ("V21", "v21", "Request"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let out_dir = std::env::var("OUT_DIR")?;
    let schema_root = Path::new(&manifest).join("schemas");
    println!("cargo:rerun-if-changed={}", schema_root.display());
    let mut code = String::new();
    for (table, dir, request_suffix) in VERSIONS {
        let dir = schema_root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        // action -> (request path, response path)
        let mut actions: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let full = path.to_str().ok_or("non-UTF-8 schema path")?.to_owned();
            if let Some(action) = stem.strip_suffix("Response") {
                actions.entry(action.to_owned()).or_default().1 = Some(full);
            } else {
                // 2.x names requests `ActionRequest.json`; a few 2.1 SEND-only messages
                // (NotifyPeriodicEventStream) carry no suffix at all.
                let action = if request_suffix.is_empty() {
                    stem
                } else {
                    stem.strip_suffix(request_suffix).unwrap_or(stem)
                };
                actions.entry(action.to_owned()).or_default().0 = Some(full);
            }
        }
        writeln!(
            code,
            "/// Schemas of `{dir:?}`: (name, request, response), sorted by name."
        )?;
        writeln!(
            code,
            "pub(crate) static {table}: &[(&str, Option<&str>, Option<&str>)] = &["
        )?;
        for (action, (request, response)) in &actions {
            let show = |p: &Option<String>| match p {
                Some(p) => format!("Some(include_str!({p:?}))"),
                None => "None".to_owned(),
            };
            writeln!(
                code,
                "    ({action:?}, {}, {}),",
                show(request),
                show(response)
            )?;
        }
        writeln!(code, "];")?;
    }
    std::fs::write(Path::new(&out_dir).join("schemas.rs"), code)?;
    Ok(())
}
