//! No two files of a crate import each other, directly or through others (ARCHITECTURE.md):
//! the `use crate::...` and `use super::...` paths of every library file, outside its tests,
//! resolved to the files that define them, make a graph without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `src/inventory/check.rs` is `inventory::check`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a `use` tree names, each as its segments: `a::{b, c::d}` is `a::b` and `a::c::d`.
fn paths(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let (head, rest) = match tree.find('{') {
        Some(i) => {
            let end = tree.rfind('}').filter(|e| *e > i).unwrap_or(tree.len());
            (&tree[..i], Some(&tree[i + 1..end]))
        }
        None => (tree, None),
    };
    let head: Vec<String> = head
        .split("::")
        .map(|s| s.trim().split(' ').next().unwrap_or("").to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let Some(inner) = rest else {
        return vec![head];
    };
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(paths)
        .map(|tail| head.iter().cloned().chain(tail).collect())
        .collect()
}

/// Every `use` statement of a file's code before its tests.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.split(';')
        .filter_map(|stmt| {
            // The statement's first line that is not blank, a comment or an attribute.
            let first = stmt.lines().map(str::trim).find(|l| {
                !(l.is_empty() || l.starts_with("//") || (l.starts_with("#[") && l.ends_with(']')))
            })?;
            let at = stmt.find(first)?;
            let s = &stmt[at..];
            let s = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|p| s.strip_prefix(p))
                .unwrap_or(s);
            s.strip_prefix("use ").map(str::to_owned)
        })
        .collect()
}

fn check_crate(krate: &str) -> usize {
    let src = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join(krate)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            (
                module_of(&src, f),
                f.strip_prefix(&src).unwrap().display().to_string(),
            )
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let is_mod = matches!(
            f.file_stem().and_then(|s| s.to_str()),
            Some("mod" | "lib" | "main")
        );
        let name = &modules[&me];
        for u in uses(&std::fs::read_to_string(f).unwrap()) {
            for p in paths(&u) {
                let mut abs: Vec<String> = match p.first().map(String::as_str) {
                    Some("crate") => Vec::new(),
                    Some("super") => {
                        let mut base = me.clone();
                        // `super` in `a/b.rs` is `a`; in `a/b/mod.rs` it is `a` too.
                        if !is_mod || !me.is_empty() {
                            base.pop();
                        }
                        base
                    }
                    Some("self") => me.clone(),
                    _ => continue,
                };
                let mut rest = p.into_iter().skip(1).peekable();
                while rest.peek().is_some_and(|s| s == "super") {
                    rest.next();
                    abs.pop();
                }
                abs.extend(rest);
                // The longest prefix that is a file of the crate is the file imported.
                let target = (0..=abs.len())
                    .rev()
                    .find_map(|n| modules.get(&abs[..n]))
                    .cloned();
                if let Some(t) = target.filter(|t| t != name) {
                    graph.entry(name.clone()).or_default().insert(t);
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            return Some(stack[i..].iter().cloned().chain([n.to_owned()]).collect());
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "{krate}: files import each other in a loop: {}",
                cycle.join(" -> ")
            );
        }
    }
    graph.values().map(BTreeSet::len).sum()
}

#[test]
fn no_two_files_import_each_other_in_a_loop() {
    for krate in ["core", "store", "vault", "server", "cli"] {
        let edges = check_crate(krate);
        assert!(
            krate == "cli" || edges > 3,
            "{krate}: only {edges} imports read"
        );
    }
}

#[test]
fn the_reader_sees_a_loop_when_there_is_one() {
    assert_eq!(
        paths("super::{raw::{RawInventory, RawOrganization}, Inventory}"),
        [
            vec!["super", "raw", "RawInventory"],
            vec!["super", "raw", "RawOrganization"],
            vec!["super", "Inventory"],
        ]
    );
    assert_eq!(uses("use a::b;\n#[cfg(test)]\nuse c::d;"), ["a::b"]);
}
