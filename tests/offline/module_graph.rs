//! The module graph runs one way (STYLE.md, issue 11): no two modules of `src/` import each
//! other through any path, and the clients and the transport never reach up into the flag
//! parser. Rerun with `cargo test --test offline module_graph`.
//!
//! An edge `a -> b` is any `use crate::b...`, `use super::...` or inline `crate::b::x` /
//! `super::x` path in `a`'s file, resolved to the longest known module (`crate::aws::ec2::X`
//! is `aws::ec2`; `crate::aws::endpoint` is `aws`; an item of `main.rs` is `crate`). The
//! unit tests at the end of a file (`#[cfg(test)] mod tests`) are left out: they are not part
//! of the layering. `mod x;` declarations are containment, not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that may import `cli`: the entry point and the flag parser's property tests.
const MAY_IMPORT_CLI: &[&str] = &["crate", "robustness"];

/// `src/aws/ec2.rs` -> `aws::ec2`, `src/aws/mod.rs` -> `aws`, `src/main.rs` -> `crate`.
fn module_name(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts == ["main"] || parts == ["lib"] || parts.is_empty() {
        return "crate".into();
    }
    parts.join("::")
}

fn read_sources(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.insert(module_name(relative), text);
        }
    }
}

/// The code of a file without its line comments and its trailing unit-test module.
fn code_of(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut previous_was_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if previous_was_cfg_test && trimmed.starts_with("mod tests") {
            lines.pop();
            break;
        }
        previous_was_cfg_test = trimmed == "#[cfg(test)]";
        if !trimmed.starts_with("//") {
            lines.push(line);
        }
    }
    lines.join("\n")
}

/// A use tree without its `as name` renames.
fn without_renames(tree: &str) -> String {
    let mut out = String::new();
    let mut words = tree.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "as" {
            // Skip the new name, keep what follows it (`,` or `}`).
            if let Some(name) = words.next() {
                out.push_str(name.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            }
            continue;
        }
        out.push(' ');
        out.push_str(word);
    }
    out
}

/// Expands a use tree (`crate::a::{b, c::{d, self}}`) into plain paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = without_renames(tree)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::self").to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand(p).into_iter().map(|tail| {
                if tail == "self" {
                    prefix.to_string()
                } else {
                    format!("{prefix}::{tail}")
                }
            })
        })
        .collect()
}

/// The paths a file's code names: its `use` trees, expanded, and its inline `crate::`/`super::`
/// paths.
/// `children`: the top-level modules, when `code` is `main.rs`'s.
fn paths_in(code: &str, children: &[&str]) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = String::new();
    let mut statement: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let use_start = ["use ", "pub use ", "pub(crate) use "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p));
        match (&mut statement, use_start) {
            (Some(s), _) => s.push_str(trimmed),
            (None, Some(tail)) => statement = Some(tail.to_string()),
            (None, None) => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
        if let Some(s) = &statement {
            if let Some(end) = s.find(';') {
                paths.extend(expand(&s[..end]));
                statement = None;
            }
        }
    }
    let mut anchors = vec!["crate::".to_string(), "super::".to_string()];
    // `main.rs` names its child modules without `crate::` (`cli::parse`).
    anchors.extend(children.iter().map(|c| format!("{c}::")));
    for anchor in &anchors {
        let mut from = 0;
        while let Some(at) = rest[from..].find(anchor.as_str()) {
            let start = from + at;
            let preceded_by_ident = rest[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            let end = rest[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(rest.len(), |e| start + e);
            if !preceded_by_ident {
                paths.push(rest[start..end].trim_end_matches(':').to_string());
            }
            from = end.max(start + anchor.len());
        }
    }
    paths
}

/// The module a path from `module` lands in, when it is one of ours.
fn target(module: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if module == "crate" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    match segments.first().copied() {
        Some("crate") => {
            base.clear();
            segments.remove(0);
        }
        Some("super") => {
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
        }
        Some("self") => {
            segments.remove(0);
        }
        // In `main.rs`, `cli::parse` names a child module without `crate::`.
        Some(first) if module == "crate" && modules.contains(first) => {}
        _ => return None,
    }
    base.extend(segments);
    (0..=base.len())
        .rev()
        .map(|n| base[..n].join("::"))
        .find(|m| m.is_empty() || modules.contains(m))
        .map(|m| if m.is_empty() { "crate".into() } else { m })
}

/// The import graph of the sources under `src`: module -> modules it imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut sources = BTreeMap::new();
    read_sources(src, src, &mut sources);
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, text)| {
            let children: Vec<&str> = match module.as_str() {
                "crate" => modules
                    .iter()
                    .filter(|m| !m.contains("::") && *m != "crate")
                    .map(String::as_str)
                    .collect(),
                _ => Vec::new(),
            };
            let edges = paths_in(&code_of(text), &children)
                .iter()
                .filter_map(|p| target(module, p, &modules))
                .filter(|t| t != module)
                .collect();
            (module.clone(), edges)
        })
        .collect()
}

/// A cycle as `a -> b -> a`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle.join(" -> "));
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Everything wrong with the graph of the sources under `src`, one line each.
fn problems(src: &Path) -> Vec<String> {
    let graph = graph(src);
    let mut problems: Vec<String> = graph
        .iter()
        .filter(|(module, edges)| {
            edges.contains("cli") && !MAY_IMPORT_CLI.contains(&module.as_str())
        })
        .map(|(module, _)| {
            format!("{module} imports cli: move the settled type it needs out of cli.rs")
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("import cycle: {cycle}"));
    }
    problems
}

#[test]
fn module_graph_has_no_cycle_and_nothing_below_reaches_cli() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    // The checker sees the modules it is meant to judge.
    for (module, imports) in [
        ("run", "config"),
        ("aws::ec2", "aws::query"),
        ("cli", "config"),
    ] {
        assert!(
            graph.get(module).is_some_and(|e| e.contains(imports)),
            "the checker lost the edge {module} -> {imports}: {graph:?}"
        );
    }
    let problems = problems(&src);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A throwaway `src/` with these files.
fn fake_src(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("module-graph-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn module_graph_checker_finds_what_issue_11_was_about() {
    // The cycle issue 11 reported: credentials -> cli -> http -> imds -> credentials.
    let dir = fake_src(
        "cycle",
        &[
            (
                "main.rs",
                "mod aws;\nmod cli;\nmod http;\nmod imds;\nfn main() { cli::parse(); }\n",
            ),
            ("aws/mod.rs", "pub mod credentials;\n"),
            ("aws/credentials.rs", "use crate::cli::AwsSettings;\n"),
            ("cli.rs", "use crate::http::{self, Timeouts};\n"),
            ("http.rs", "pub fn f() { crate::imds::get(); }\n"),
            (
                "imds.rs",
                "use crate::aws::{\n    credentials::{parse, Credentials},\n};\n",
            ),
        ],
    );
    let found = problems(&dir);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("aws::credentials imports cli")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.starts_with("import cycle:")
            && ["aws::credentials", "cli", "http", "imds"]
                .iter()
                .all(|m| p.contains(m))),
        "{found:?}"
    );

    // Two siblings through `super::`, and a unit test module that is left out.
    let dir2 = fake_src(
        "super",
        &[
            ("main.rs", "mod aws;\n"),
            ("aws/mod.rs", "pub mod a;\npub mod b;\n"),
            ("aws/a.rs", "use super::b::X;\n"),
            (
                "aws/b.rs",
                "pub struct X;\n#[cfg(test)]\nmod tests {\n    use super::super::a;\n}\n",
            ),
        ],
    );
    assert!(problems(&dir2).is_empty(), "{:?}", problems(&dir2));
    std::fs::write(dir2.join("aws/b.rs"), "pub fn f() { super::a::g(); }\n").unwrap();
    assert_eq!(
        problems(&dir2),
        vec!["import cycle: aws::a -> aws::b -> aws::a".to_string()]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}
