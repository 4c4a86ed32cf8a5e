//! The import graph of every crate in the workspace, read from the sources.
//!
//! Why a test: the layering ARCHITECTURE.md describes (probe-core reads bottom-up, data
//! flows one way) decays one convenient `use` at a time, and nothing in the compiler
//! stops it. This test reads each crate's `src/` from its root (`lib.rs`, `main.rs`)
//! along the `mod` declarations, collects the crate-internal modules every file refers
//! to (`use crate::..`, `use super::..`, `use self::..`, a child module by its name, and
//! the same paths written inline in code), and asserts:
//!
//! - no circle between files, and none between top-level modules (a file or a folder
//!   under `src/`), in any crate; the crate root counts as a file, so importing a
//!   re-export through the root (`use crate::Foo`) closes a circle with its `pub use`.
//!   A folder's `mod.rs` referring to its own children (declaring, re-exporting, using
//!   them) is containment and no edge: the children may use their parent's items,
//!   and siblings may use each other in one direction;
//! - nothing inside a crate imports through its root (`use crate::Foo` where `Foo` is
//!   a re-export);
//! - in probe-core, no module imports one that stands above it in [`PROBE_CORE_LAYERS`],
//!   the order ARCHITECTURE.md's code map lists.
//!
//! It is a reader of Rust text, not a compiler: comments, strings and character
//! literals are skipped, `use` trees are expanded, and a path is resolved to the deepest
//! module it names. Macros that build paths from pieces are not seen.
//!
//! Run it alone with `cargo test -p probe-core --test layers`; with
//! `ROLLPROBE_LAYERS_ROOT=/path/to/other/checkout` it reads that tree instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// probe-core's top-level modules from the bottom up: a module may import one in its
/// own layer or below (circles inside a layer are caught by the circle check), never
/// one above. ARCHITECTURE.md's code map lists the modules in this order.
const PROBE_CORE_LAYERS: &[(&str, &[&str])] = &[
    (
        "shared vocabulary",
        &[
            "format", "config", "host", "clock", "outcome", "cause", "sample", "event", "strategy",
            "trigger",
        ],
    ),
    (
        "the pipeline",
        &[
            "schedule",
            "execute",
            "http1",
            "classify",
            "access_log",
            "tls",
            "record",
            "metrics",
            "analyze",
            "attribute",
            "report",
        ],
    ),
    ("judging", &["gate", "matrix"]),
    ("rendering", &["output"]),
    (
        "orchestration",
        &["probe", "merge", "rollout", "matrix_runner"],
    ),
];

/// One file of a crate, and where it sits in the module tree.
struct File {
    path: PathBuf,
    /// The module path of the file itself (empty for the crate root).
    module: Vec<String>,
}

/// One reference from a file to a module of the same crate.
#[derive(Clone)]
struct Edge {
    from: usize,
    to: usize,
    line: usize,
    text: String,
}

struct Crate {
    name: String,
    files: Vec<File>,
    /// Every module (files and inline `mod x { .. }` blocks) to the file that holds it.
    modules: BTreeMap<Vec<String>, usize>,
    edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Punct(char),
}

/// Tokens of a Rust source with their line numbers, without comments and literals.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let n = c.len();
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += c[from..to.min(n)].iter().filter(|&&ch| ch == '\n').count();
    };
    while i < n {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < n && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let start = i;
            let mut depth = 0;
            while i < n {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && c.get(i + 1) == Some(&'"')) {
            let start = i;
            i += if ch == '"' { 1 } else { 2 };
            while i < n && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            count_lines(start, i, &mut line);
        } else if (ch == 'r' || ch == 'b' || ch == 'c') && raw_string_start(&c, i).is_some() {
            let (hashes, body) = raw_string_start(&c, i).unwrap();
            let start = i;
            i = body;
            loop {
                if i >= n {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            count_lines(start, i, &mut line);
        } else if ch == '\'' || (ch == 'b' && c.get(i + 1) == Some(&'\'')) {
            let q = if ch == '\'' { i } else { i + 1 };
            if c.get(q + 1) == Some(&'\\') {
                // An escaped character literal: skip the escaped character itself.
                i = q + 3;
                while i < n && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(q + 2) == Some(&'\'') {
                i = q + 3;
            } else {
                // A lifetime or a label.
                i = q + 1;
                while i < n && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < n && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_string).unwrap_or(word);
            out.push((Tok::Ident(word), line));
        } else if ch.is_ascii_digit() {
            while i < n && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                // `1..2` is two numbers and a range, not one number.
                if c[i] == '.' && c.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// If a raw string starts at `i` (`r"`, `r#"`, `br#"`, ..), its `#` count and the index
/// of its first character.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if c[j] == 'b' || c[j] == 'c' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    // `r` must start a token: `for"` is not a raw string.
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// The paths a `use` tree names, starting at `toks[*i]`, up to its `;`.
fn use_paths(toks: &[(Tok, usize)], i: &mut usize) -> Vec<Vec<String>> {
    fn tree(toks: &[(Tok, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        while *i < toks.len() {
            match &toks[*i].0 {
                Tok::Ident(w) if w == "as" => {
                    *i += 2;
                }
                Tok::Ident(w) => {
                    path.push(w.clone());
                    *i += 1;
                }
                Tok::Path => *i += 1,
                Tok::Punct('{') => {
                    *i += 1;
                    loop {
                        tree(toks, i, &path, out);
                        match toks.get(*i).map(|t| &t.0) {
                            Some(Tok::Punct(',')) => *i += 1,
                            Some(Tok::Punct('}')) => {
                                *i += 1;
                                return;
                            }
                            _ => return,
                        }
                        if let Some((Tok::Punct('}'), _)) = toks.get(*i) {
                            *i += 1;
                            return;
                        }
                    }
                }
                Tok::Punct('*') => {
                    *i += 1;
                }
                _ => break,
            }
        }
        // `use a::{self, b}` names `a` itself.
        if path.last().map(String::as_str) == Some("self") && path.len() > 1 {
            path.pop();
        }
        out.push(path);
    }
    let mut out = Vec::new();
    tree(toks, i, &[], &mut out);
    out
}

fn is_ident(t: Option<&(Tok, usize)>, w: &str) -> bool {
    matches!(t, Some((Tok::Ident(x), _)) if x == w)
}

/// Reads one crate from its root file along its `mod` declarations.
fn read_crate(name: &str, root: &Path) -> Crate {
    let mut krate = Crate {
        name: name.to_string(),
        files: Vec::new(),
        modules: BTreeMap::new(),
        edges: Vec::new(),
    };
    let mut sources = Vec::new();
    // (file, directory its children live in, module path)
    let mut todo = vec![(
        root.to_path_buf(),
        root.parent().unwrap().to_path_buf(),
        Vec::new(),
    )];
    while let Some((path, dir, module)) = todo.pop() {
        let src = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let toks = lex(&src);
        let index = krate.files.len();
        krate.modules.insert(module.clone(), index);
        // Inline modules, and child files declared with `mod x;`.
        let mut stack: Vec<(Vec<String>, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut current = module.clone();
        for k in 0..toks.len() {
            match &toks[k].0 {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if stack.last().map(|s| s.1) == Some(depth) {
                        let (outer, _) = stack.pop().unwrap();
                        current = outer;
                    }
                }
                Tok::Ident(w) if w == "mod" => {
                    if let (Some((Tok::Ident(child), _)), Some((next, _))) =
                        (toks.get(k + 1), toks.get(k + 2))
                    {
                        let mut child_module = current.clone();
                        child_module.push(child.clone());
                        match next {
                            Tok::Punct(';') => {
                                let rel: PathBuf = child_module[module.len()..].iter().collect();
                                let base = dir.join(rel);
                                let file = base.with_extension("rs");
                                let (file, child_dir) = if file.exists() {
                                    (file, base)
                                } else {
                                    (base.join("mod.rs"), base)
                                };
                                todo.push((file, child_dir, child_module));
                            }
                            Tok::Punct('{') => {
                                krate.modules.insert(child_module.clone(), index);
                                stack.push((current.clone(), depth));
                                current = child_module;
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        krate.files.push(File { path, module });
        sources.push(toks);
    }
    for (index, toks) in sources.iter().enumerate() {
        let refs = references(&krate, index, toks);
        krate.edges.extend(refs);
    }
    krate
}

/// Every reference a file makes to another file of its crate.
fn references(krate: &Crate, index: usize, toks: &[(Tok, usize)]) -> Vec<Edge> {
    let file_module = krate.files[index].module.clone();
    let mut edges = Vec::new();
    let mut stack: Vec<(Vec<String>, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut current = file_module.clone();
    let mut k = 0;
    while k < toks.len() {
        let (tok, line) = &toks[k];
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if stack.last().map(|s| s.1) == Some(depth) {
                    current = stack.pop().unwrap().0;
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some((Tok::Ident(child), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(k + 1), toks.get(k + 2))
                {
                    stack.push((current.clone(), depth));
                    current.push(child.clone());
                    depth += 1;
                    k += 3;
                    continue;
                }
                k += 2;
                continue;
            }
            Tok::Ident(w) if w == "use" => {
                k += 1;
                for path in use_paths(toks, &mut k) {
                    if let Some(to) = resolve(krate, &current, &path) {
                        edges.push(Edge {
                            from: index,
                            to,
                            line: *line,
                            text: format!("use {}", path.join("::")),
                        });
                    }
                }
                continue;
            }
            Tok::Ident(w) => {
                // `pub(in crate::x)` is a visibility, not a reference.
                let after_in = k >= 1 && is_ident(toks.get(k - 1), "in");
                let preceded_by_path = k >= 1 && toks[k - 1].0 == Tok::Path;
                if !after_in
                    && !preceded_by_path
                    && toks.get(k + 1).map(|t| &t.0) == Some(&Tok::Path)
                {
                    let first = w.clone();
                    let mut path = vec![first];
                    let mut j = k + 1;
                    while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                        match toks.get(j + 1) {
                            Some((Tok::Ident(seg), _)) => {
                                path.push(seg.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    if let Some(to) = resolve(krate, &current, &path) {
                        edges.push(Edge {
                            from: index,
                            to,
                            line: *line,
                            text: path.join("::"),
                        });
                    }
                    k = j;
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    // A folder's mod.rs owns its children: declaring, re-exporting and using them is
    // containment, not a dependency that could close a circle with a child's
    // `use super::..`. The crate root is the exception: what it re-exports is the
    // public face, and a module that imports through it closes a circle.
    let owner = &krate.files[index].module;
    edges.retain(|e| {
        let target = &krate.files[e.to].module;
        let owns = !owner.is_empty() && target.len() > owner.len() && target.starts_with(owner);
        e.from != e.to && !owns
    });
    edges
}

/// The file a path refers to, if it names something inside the crate.
fn resolve(krate: &Crate, current: &[String], path: &[String]) -> Option<usize> {
    let mut segs = path.iter().peekable();
    let mut at: Vec<String> = match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
            Vec::new()
        }
        Some("self") => {
            segs.next();
            current.to_vec()
        }
        Some("super") => {
            let mut at = current.to_vec();
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                segs.next();
                at.pop()?;
            }
            at
        }
        Some(first) => {
            // A bare path is relative only when it starts with a child module.
            let mut child = current.to_vec();
            child.push(first.to_string());
            if !krate.modules.contains_key(&child) {
                return None;
            }
            current.to_vec()
        }
        None => return None,
    };
    for seg in segs {
        let mut next = at.clone();
        next.push(seg.clone());
        if krate.modules.contains_key(&next) {
            at = next;
        } else {
            break;
        }
    }
    krate.modules.get(&at).copied()
}

/// The top-level module a file belongs to (`""` for the crate root).
fn top(file: &File) -> String {
    file.module.first().cloned().unwrap_or_default()
}

/// A file's path from the workspace root.
fn display(krate: &Crate, index: usize) -> String {
    let path = &krate.files[index].path;
    let root = workspace();
    let mut parts = Vec::new();
    for c in path.strip_prefix(&root).unwrap_or(path).components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// Strongly connected components with more than one node (Tarjan).
fn circles(nodes: usize, edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: usize,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        out: Vec<Vec<usize>>,
        adj: &'a [Vec<usize>],
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        for &w in &s.adj[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut adj = vec![Vec::new(); nodes];
    for &(a, b) in edges {
        adj[a].push(b);
    }
    let mut s = State {
        next: 0,
        index: vec![None; nodes],
        low: vec![0; nodes],
        on: vec![false; nodes],
        stack: Vec::new(),
        out: Vec::new(),
        adj: &adj,
    };
    for v in 0..nodes {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The workspace to read: this one, or another checkout named by
/// `ROLLPROBE_LAYERS_ROOT` (to see what the check finds in an older tree).
fn workspace() -> PathBuf {
    match std::env::var_os("ROLLPROBE_LAYERS_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    }
}

/// Every crate root of the workspace: each package's `lib.rs` and `main.rs`.
fn crates() -> Vec<Crate> {
    let root = workspace();
    let mut packages = vec![("rollprobe".to_string(), root.clone())];
    let mut dirs: Vec<_> = fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        packages.push((name, dir));
    }
    let mut out = Vec::new();
    for (name, dir) in packages {
        for root_file in ["lib.rs", "main.rs"] {
            let path = dir.join("src").join(root_file);
            if path.exists() {
                out.push(read_crate(&format!("{name} ({root_file})"), &path));
            }
        }
    }
    out
}

/// The references that make a circle's edges, one line per edge (`edge_of` names the
/// edge a reference belongs to, if it is one of the circle's): its first reference.
fn why(krate: &Crate, edge_of: impl Fn(&Edge) -> Option<(usize, usize)>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    krate
        .edges
        .iter()
        .filter(|e| edge_of(e).is_some_and(|edge| seen.insert(edge)))
        .map(|e| {
            format!(
                "    {}:{} -> {}  ({})",
                display(krate, e.from),
                e.line,
                display(krate, e.to),
                e.text
            )
        })
        .collect()
}

/// The circles of one crate, as lines that name the files and the references.
fn crate_circles(krate: &Crate) -> Vec<String> {
    let mut problems = Vec::new();
    // Between files.
    let file_edges: BTreeSet<(usize, usize)> = krate.edges.iter().map(|e| (e.from, e.to)).collect();
    for comp in circles(krate.files.len(), &file_edges) {
        let names: Vec<_> = comp.iter().map(|&f| display(krate, f)).collect();
        let why = why(krate, |e| {
            (comp.contains(&e.from) && comp.contains(&e.to)).then_some((e.from, e.to))
        });
        problems.push(format!(
            "{}: circle between files {}\n{}",
            krate.name,
            names.join(", "),
            why.join("\n")
        ));
    }
    // Between top-level modules (the crate root is a node of its own).
    let tops: Vec<String> = {
        let set: BTreeSet<String> = krate.files.iter().map(top).collect();
        set.into_iter().collect()
    };
    let at = |name: &String| tops.iter().position(|t| t == name).unwrap();
    let top_edges: BTreeSet<(usize, usize)> = krate
        .edges
        .iter()
        .map(|e| (at(&top(&krate.files[e.from])), at(&top(&krate.files[e.to]))))
        .filter(|(a, b)| a != b)
        .collect();
    for comp in circles(tops.len(), &top_edges) {
        let names: Vec<_> = comp
            .iter()
            .map(|&t| {
                if tops[t].is_empty() {
                    "(crate root)".to_string()
                } else {
                    tops[t].clone()
                }
            })
            .collect();
        let why = why(krate, |e| {
            let (a, b) = (at(&top(&krate.files[e.from])), at(&top(&krate.files[e.to])));
            (a != b && comp.contains(&a) && comp.contains(&b)).then_some((a, b))
        });
        problems.push(format!(
            "{}: circle between top-level modules {}\n{}",
            krate.name,
            names.join(", "),
            why.join("\n")
        ));
    }
    problems
}

#[test]
fn no_import_circles_in_any_crate() {
    let crates = crates();
    assert!(crates.len() >= 5, "expected every crate of the workspace");
    let problems: Vec<String> = crates.iter().flat_map(crate_circles).collect();
    assert!(
        problems.is_empty(),
        "import circles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn nothing_imports_through_its_crate_root() {
    // A root's `pub use` is the crate's face for its users; inside the crate an item
    // is imported from the module that defines it.
    let mut problems = Vec::new();
    for krate in crates() {
        let root = krate.modules[&Vec::new()];
        for e in krate.edges.iter().filter(|e| e.to == root) {
            problems.push(format!(
                "{}:{}: {}",
                display(&krate, e.from),
                e.line,
                e.text
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "imports through a crate root:\n{}",
        problems.join("\n")
    );
}

#[test]
fn probe_core_imports_only_its_own_layer_or_below() {
    let root = workspace().join("crates/probe-core/src/lib.rs");
    let krate = read_crate("probe-core", &root);
    let layer_of = |name: &str| {
        PROBE_CORE_LAYERS
            .iter()
            .position(|(_, mods)| mods.contains(&name))
    };
    let mut problems = Vec::new();
    for file in &krate.files {
        let t = top(file);
        if !t.is_empty() && layer_of(&t).is_none() {
            problems.push(format!("module `{t}` is in no layer of PROBE_CORE_LAYERS"));
        }
    }
    for e in &krate.edges {
        let (from, to) = (&krate.files[e.from], &krate.files[e.to]);
        let (a, b) = (top(from), top(to));
        if a.is_empty() || a == b {
            continue;
        }
        let (Some(la), Some(lb)) = (layer_of(&a), layer_of(&b)) else {
            continue;
        };
        if lb > la {
            problems.push(format!(
                "{}:{}: `{a}` ({}) imports `{b}` ({}) above it: {}",
                display(&krate, e.from),
                e.line,
                PROBE_CORE_LAYERS[la].0,
                PROBE_CORE_LAYERS[lb].0,
                e.text
            ));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "layer breaches:\n{}",
        problems.join("\n")
    );
}

/// The modules of probe-core's code map in ARCHITECTURE.md, in the order it lists them:
/// each bullet that starts with a module's file (`` - `name.rs` ``) or folder
/// (`` - `name/` ``).
fn code_map_order(architecture: &str) -> Vec<String> {
    let start = architecture
        .find("### `crates/probe-core`")
        .expect("ARCHITECTURE.md has a probe-core section");
    let section = &architecture[start..];
    let end = section[4..].find("\n### ").map_or(section.len(), |e| e + 4);
    section[..end]
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("- `")?;
            let name = &name[..name.find('`')?];
            let name = name
                .strip_suffix(".rs")
                .or_else(|| name.strip_suffix('/'))?;
            Some(name.to_string())
        })
        .collect()
}

#[test]
fn architecture_lists_probe_core_in_layer_order() {
    let text = fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let listed = code_map_order(&text);
    let layers: Vec<String> = PROBE_CORE_LAYERS
        .iter()
        .flat_map(|(_, mods)| mods.iter().map(|m| m.to_string()))
        .collect();
    assert_eq!(
        listed, layers,
        "ARCHITECTURE.md's probe-core code map must list PROBE_CORE_LAYERS' modules, in order"
    );
}

#[test]
fn the_reader_sees_use_trees_and_inline_paths_but_not_strings_or_comments() {
    let src = r#"
        use crate::{a::X, b::{self, c::Y as Z}};
        use super::*;
        // use crate::commented;
        fn f() -> char {
            let _ = "crate::in_a_string";
            let _ = crate::d::call();
            let _: &'static str = r"crate::raw";
            '\''
        }
        use crate::e;
    "#;
    let toks = lex(src);
    let mut paths = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        if is_ident(toks.get(k), "use") {
            k += 1;
            paths.extend(use_paths(&toks, &mut k).into_iter().map(|p| p.join("::")));
        } else {
            k += 1;
        }
    }
    assert_eq!(
        paths,
        [
            "crate::a::X",
            "crate::b",
            "crate::b::c::Y",
            "super",
            "crate::e"
        ]
    );
    let words: Vec<String> = toks
        .iter()
        .filter_map(|(t, _)| match t {
            Tok::Ident(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert!(words.contains(&"d".to_string()), "the inline path is read");
    for hidden in ["commented", "in_a_string", "raw"] {
        assert!(!words.contains(&hidden.to_string()), "{hidden} was read");
    }
}
