//! The README's layout table is the dependency rule: data flows top to bottom and each module
//! imports only those above it (serving never imports training). This test reads the table's
//! order and every `crate::<module>` path in `src/`, so a new upward import, or a module missing
//! from the table, fails here instead of in review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The library's top-level modules in the README's order (`src/<name>/` or `src/<name>.rs` rows).
fn table_order() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let layout = readme.split("## Layout").nth(1).expect("a `## Layout` section");
    let layout = layout.split("\n## ").next().unwrap_or(layout);
    layout
        .lines()
        .filter_map(|l| l.strip_prefix("| `src/"))
        .filter_map(|l| l.split('`').next())
        .map(|p| p.trim_end_matches('/').trim_end_matches(".rs").to_string())
        .filter(|m| m != "cli")
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library modules `src/lib.rs` declares.
fn declared_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).expect("src/lib.rs");
    lib.lines().filter_map(|l| l.trim().strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';').to_string()).collect()
}

/// Which top-level module a `crate::` path names (`crate::DeviceSpec` is `device`'s re-export).
fn named_module(path: &str, modules: &[String]) -> Option<String> {
    let first: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    match first.as_str() {
        "DeviceSpec" | "DeviceSpecError" => Some("device".into()),
        m if modules.iter().any(|x| x == m) => Some(m.to_string()),
        _ => None,
    }
}

#[test]
fn every_module_imports_only_those_above_it_in_the_readme_table() {
    let order = table_order();
    let declared = declared_modules();
    for m in &declared {
        assert!(order.contains(m), "src/{m} is not in the README's layout table");
    }
    let rank: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut upward = Vec::new();
    let mut checked = 0;
    for module in &declared {
        let mut files = Vec::new();
        let dir = Path::new(ROOT).join("src").join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(Path::new(ROOT).join("src").join(format!("{module}.rs")));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (n, line) in text.lines().enumerate() {
                for (at, _) in line.match_indices("crate::") {
                    // `bertkit_kernels::…` and other crates' paths end in `crate::` too.
                    if line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let Some(target) = named_module(&line[at + "crate::".len()..], &declared) else { continue };
                    checked += 1;
                    if module == "serve" && target == "train" {
                        upward.push(format!("{}:{}: serving imports training", file.strip_prefix(ROOT).unwrap_or(&file).display(), n + 1));
                    }
                    if rank[target.as_str()] > rank[module.as_str()] {
                        upward.push(format!("{}:{}: {module} imports {target}", file.strip_prefix(ROOT).unwrap_or(&file).display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} crate:: paths found: the scan is not reading the sources");
    assert!(upward.is_empty(), "imports of modules below the importer in the README's table:\n{}", upward.join("\n"));
}

/// The rule itself, on a made-up import: the scan must notice a path naming a lower module.
#[test]
fn an_upward_path_is_recognised() {
    let modules: Vec<String> = ["data", "model", "serve", "train"].map(String::from).to_vec();
    assert_eq!(named_module("train::fit::Trainer;", &modules).as_deref(), Some("train"));
    assert_eq!(named_module("DeviceSpec;", &modules).as_deref(), Some("device"));
    assert_eq!(named_module("Result<(), E>", &modules), None);
}
