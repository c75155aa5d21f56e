//! A check that the top-level modules form layers: no module reaches, directly or through
//! others, back into one that depends on it (`messages` at the bottom, the two edges `routes`
//! and `web` above the domain, `startup` and `cli` on top). Reads the sources, so a new
//! `use crate::…` that closes a circle fails the unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, files);
        }
    } else if path.extension().is_some_and(|ext| ext == "rs") {
        files.push(path.to_owned());
    }
}

/// Every `crate::name` in `text` outside line comments.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (index, _) in code.match_indices("crate::") {
            let name: String = code[index + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// The top-level modules and whom each uses.
fn edges(source: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(source).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if matches!(stem, "lib" | "main" | "bin") {
            continue;
        }
        modules.insert(stem.to_owned(), path);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, path)| {
            let mut files = Vec::new();
            rust_files(path, &mut files);
            let used = files
                .iter()
                .filter_map(|file| std::fs::read_to_string(file).ok())
                .flat_map(|text| crate_paths(&text))
                .filter(|used| used != name && names.contains(used))
                .collect();
            (name.clone(), used)
        })
        .collect()
}

/// One circle, as the path that closes it, if there is any.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_have_no_import_circle() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&source);
    assert!(edges.len() > 10, "the modules were found: {edges:?}");
    assert!(edges["startup"].contains("routes"), "edges were read");
    if let Some(circle) = find_circle(&edges) {
        panic!("import circle: {}", circle.join(" -> "));
    }
}

#[test]
fn a_circle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(name, used)| {
        (
            name.to_owned(),
            used.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    assert_eq!(
        find_circle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn comments_do_not_count() {
    let used = crate_paths("use crate::db::DbPool; // see crate::web\n/// [`crate::routes`]\n");
    assert_eq!(used, BTreeSet::from(["db".to_owned()]));
}
