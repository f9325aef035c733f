//! Core's pure modules (the declaration, execution records, events, locks, rule evaluation,
//! variables, the ASL compiler, triggers...) never reach into the engine, and do not depend on
//! each other in a cycle: the engine (`src/engine/`, where every `impl Engine` lives: abort,
//! sweep and retire included) builds on them, and what builds on the engine (the control plane)
//! on it.
//!
//! The graph is read from the sources: every `crate::<module>` path (also inside
//! `crate::{...}` groups) outside comment lines, by top-level module. A name the crate root
//! re-exports (`crate::parse_pipeline`, `crate::control`) counts as the module it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules that must not depend on the engine, nor on each other in a cycle.
const PURE: &[&str] = &[
    "abort",
    "access",
    "asl",
    "cloudformation",
    "codebuild",
    "codedeploy",
    "ecs",
    "conditions",
    "declaration",
    "events",
    "execution",
    "git_source",
    "hex",
    "locks",
    "port_error",
    "providers",
    "sources",
    "sweep",
    "store",
    "triggers",
    "validation",
    "variables",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module `path` (under `src/`) belongs to; `None` for `lib.rs`.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// The text of `source` without its comment lines (`//`, `///`, `//!`: where doc links name
/// other modules without depending on them).
fn without_comments(source: &str) -> String {
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of every `crate::` path in `code`.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // `pipewright_crate::x` or `some_crate::x` are not this crate.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d as e}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(identifier(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = identifier(rest);
            if !name.is_empty() {
                found.insert(name.to_string());
            }
        }
    }
    found
}

/// Names the crate root re-exports (`pub use module::{a, b};`), mapped to their module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let code = without_comments(lib);
    for statement in code.split(';') {
        let Some(used) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let (module, items) = used.split_once("::").unwrap_or((used, ""));
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// module → the modules it refers to.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let reexports = root_reexports(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let code = without_comments(&std::fs::read_to_string(file).unwrap());
        let edges = graph.entry(module.clone()).or_default();
        for name in crate_references(&code) {
            let target = if modules.contains(&name) {
                name
            } else if let Some(from) = reexports.get(&name) {
                from.clone()
            } else {
                panic!(
                    "{}: crate::{name} is neither a module nor a root re-export",
                    file.display()
                );
            };
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle among `nodes` in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>, nodes: &[&str]) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        nodes: &[&str],
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if nodes.contains(&next.as_str()) {
                if let Some(cycle) = visit(next, graph, nodes, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    nodes
        .iter()
        .find_map(|n| visit(n, graph, nodes, &mut Vec::new(), &mut done))
}

#[test]
fn pure_modules_do_not_depend_on_the_engine() {
    let graph = graph();
    for module in PURE {
        let edges = graph
            .get(*module)
            .unwrap_or_else(|| panic!("no module {module} in src/"));
        let outside: Vec<&String> = edges
            .iter()
            .filter(|m| !PURE.contains(&m.as_str()))
            .collect();
        assert!(
            outside.is_empty(),
            "{module} refers to {outside:?}, which are not pure modules (the engine and what \
             builds on it)"
        );
    }
}

#[test]
fn pure_modules_have_no_cycle() {
    let graph = graph();
    if let Some(cycle) = find_cycle(&graph, PURE) {
        panic!(
            "import cycle among core's pure modules: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn the_reader_sees_what_it_should() {
    let code = without_comments(
        "use crate::{asl, execution::{A, B}, store as s};\n\
         /// [`crate::engine`] in a doc comment\n\
         let x = crate::locks::MAX; let y = other_crate::nope;",
    );
    assert_eq!(
        crate_references(&code),
        ["asl", "execution", "locks", "store"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&graph, &["a", "b"]).is_some());
    assert!(find_cycle(&graph, &["a"]).is_none());
    // The real graph is read: the engine builds on the pure modules.
    let real = self::graph();
    assert!(real["engine"].contains("conditions") && real["engine"].contains("execution"));
}
