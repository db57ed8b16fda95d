//! The layer check of the core crate (`cargo xtask layers`).
//!
//! The core (`crates/seaworthy/src`) is laid out in layers, lowest first, in one table: the block
//! between `<!-- layers -->` and `<!-- /layers -->` in ARCHITECTURE.md. Each row is
//! `| n | name | `module`, `module`, ... | what the layer owns |`; a module not listed belongs to
//! its nearest listed parent (`stack::plan` to `stack`), and a module in no layer is an error, so
//! a new file is placed on purpose. A line `Exempt: `module`, ...` in the block names the modules
//! allowed to import from any layer (the `Container` handle, which holds its definition and its
//! standby).
//!
//! The check reads every module's `crate::…` paths (in `use` lines and in code) and `super::…`
//! paths, outside comments and `#[cfg(test)]` modules, and fails naming the file, the line and
//! both layers wherever a module imports from a layer above its own. `crate::Item` paths through
//! the crate root's re-exports count as imports from the module that defines the item.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The markers around the layer table in ARCHITECTURE.md.
const BEGIN: &str = "<!-- layers -->";
const END: &str = "<!-- /layers -->";

/// Where the check looks.
pub struct Paths {
    /// The document holding the layer table.
    pub table: PathBuf,
    /// The core crate's `src` directory.
    pub src: PathBuf,
}

impl Paths {
    /// The paths inside the workspace at `root`.
    pub fn new(root: &Path) -> Paths {
        Paths {
            table: root.join("ARCHITECTURE.md"),
            src: root.join("crates/seaworthy/src"),
        }
    }
}

/// One layer of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Its position, lowest first (0-based, in table order).
    pub rank: usize,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer {} `{}`", self.rank, self.name)
    }
}

/// The layer table: which module belongs to which layer, and the exempt modules.
#[derive(Debug, Default)]
pub struct Table {
    modules: BTreeMap<String, Layer>,
    exempt: Vec<String>,
}

impl Table {
    /// Parses the block between the markers of `doc`.
    pub fn parse(doc: &str) -> Result<Table> {
        let start = doc
            .find(BEGIN)
            .with_context(|| format!("no `{BEGIN}` marker"))?;
        let end = doc[start..]
            .find(END)
            .map(|i| start + i)
            .with_context(|| format!("no `{END}` marker after `{BEGIN}`"))?;
        let mut table = Table::default();
        let mut rank = 0;
        for line in doc[start + BEGIN.len()..end].lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("Exempt:") {
                table.exempt.extend(ticked(rest));
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            // Rows only: `| n | name | modules | owns |`, not the header or its rule.
            if !line.starts_with('|') || cells.len() < 3 || cells[0].parse::<usize>().is_err() {
                continue;
            }
            let layer = Layer {
                rank,
                name: cells[1].trim_matches('`').to_string(),
            };
            let modules = ticked(cells[2]);
            if modules.is_empty() {
                bail!("the layer table's row `{}` lists no module", layer.name);
            }
            for module in modules {
                if let Some(earlier) = table.modules.insert(module.clone(), layer.clone()) {
                    bail!("module `{module}` is listed in {earlier} and in {layer}");
                }
            }
            rank += 1;
        }
        if table.modules.is_empty() {
            bail!("the layer table between `{BEGIN}` and `{END}` has no rows");
        }
        Ok(table)
    }

    /// The layer of `module` (`a::b`): its own row, else its nearest listed parent's.
    fn layer_of(&self, module: &str) -> Option<&Layer> {
        let mut path = module;
        loop {
            if let Some(layer) = self.modules.get(path) {
                return Some(layer);
            }
            path = &path[..path.rfind("::")?];
        }
    }

    fn is_exempt(&self, module: &str) -> bool {
        self.exempt.iter().any(|e| e == module)
    }
}

/// The backticked words of `text`.
fn ticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One source file of the core, as a module.
#[derive(Debug)]
pub struct Source {
    /// The module path (`stack::plan`; empty for the crate root).
    pub module: String,
    /// The file, for messages.
    pub file: String,
    /// Its text.
    pub text: String,
}

/// Reads every `.rs` file under `src`.
pub fn read_sources(src: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap_or(&path);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("read {}", path.display()))?;
                out.push(Source {
                    module: module_path(relative),
                    file: relative.display().to_string(),
                    text,
                });
            }
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// `stack/plan.rs` -> `stack::plan`; `lib.rs` -> ``; `engine/mod.rs` -> `engine`.
fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// A module importing from a layer above its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The importing file and line (1-based).
    pub file: String,
    /// The line number.
    pub line: usize,
    /// The importing module and its layer.
    pub module: String,
    /// Its layer.
    pub layer: Layer,
    /// The path as written (`crate::wait::Wait`).
    pub path: String,
    /// The imported module.
    pub target: String,
    /// Its layer.
    pub target_layer: Layer,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: module `{}` ({}) uses `{}` from module `{}` ({}), a layer above its own",
            self.file,
            self.line,
            self.module,
            self.layer,
            self.path,
            self.target,
            self.target_layer
        )
    }
}

/// Checks `sources` against `table`: the violations, or an error when a module is in no layer
/// or a path names no module.
pub fn check(table: &Table, sources: &[Source]) -> Result<Vec<Violation>> {
    let known: Vec<&str> = sources.iter().map(|s| s.module.as_str()).collect();
    let reexports = sources
        .iter()
        .find(|s| s.module.is_empty())
        .map(|root| root_reexports(&root.text))
        .unwrap_or_default();
    let mut violations = Vec::new();
    for source in sources.iter().filter(|s| !s.module.is_empty()) {
        let layer = table.layer_of(&source.module).with_context(|| {
            format!(
                "module `{}` ({}) is in no layer: add it to the layer table in ARCHITECTURE.md",
                source.module, source.file
            )
        })?;
        if table.is_exempt(&source.module) {
            continue;
        }
        for (line, path) in paths_in(&source.text) {
            let Some(target) = resolve(&source.module, &path, &known, &reexports) else {
                bail!(
                    "{}:{line}: `{path}` names no module of the crate (the layer check cannot place it)",
                    source.file
                );
            };
            // A module's own children and parents are its own business (`super::*` of a part).
            if target.is_empty()
                || target == source.module
                || source.module.starts_with(&format!("{target}::"))
            {
                continue;
            }
            let target_layer = table.layer_of(&target).with_context(|| {
                format!("module `{target}` is in no layer: add it to the layer table in ARCHITECTURE.md")
            })?;
            if target_layer.rank > layer.rank {
                violations.push(Violation {
                    file: source.file.clone(),
                    line,
                    module: source.module.clone(),
                    layer: layer.clone(),
                    path,
                    target,
                    target_layer: target_layer.clone(),
                });
            }
        }
    }
    Ok(violations)
}

/// The items the crate root re-exports (`pub use module::{A, B}`), by name -> module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in code_lines(lib)
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
    {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_start_matches("crate::");
        let Some((module, items)) = rest.split_once("::") else {
            // `pub use bollard;`: another crate, re-exported whole (outside the layers).
            out.insert(rest.trim().to_string(), String::new());
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.split_whitespace().last().unwrap_or("");
            if !item.is_empty() {
                out.insert(item.to_string(), module.to_string());
            }
        }
    }
    out
}

/// The code lines of `text` (1-based numbers), without comments, string-free enough for paths,
/// and without `#[cfg(test)]` modules.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut skip_depth: Option<i64> = None;
    let mut test_attribute = false;
    text.lines().enumerate().filter_map(move |(i, line)| {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let trimmed = code.trim();
        if let Some(depth) = skip_depth.as_mut() {
            *depth += brace_balance(code);
            if *depth <= 0 {
                skip_depth = None;
            }
            return None;
        }
        if trimmed == "#[cfg(test)]" {
            test_attribute = true;
            return None;
        }
        if test_attribute {
            test_attribute = false;
            if trimmed.starts_with("mod ") && trimmed.ends_with('{') {
                skip_depth = Some(brace_balance(code));
                return None;
            }
        }
        Some((i + 1, code.to_string()))
    })
}

fn brace_balance(code: &str) -> i64 {
    code.chars().fold(0, |n, c| match c {
        '{' => n + 1,
        '}' => n - 1,
        _ => n,
    })
}

/// Every `crate::…` and `super::…` path in `text`, with its line; a grouped
/// `use crate::{a::X, b::Y}` gives one path per part.
fn paths_in(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<(usize, String)> = code_lines(text).collect();
    let mut out = Vec::new();
    for (index, (number, code)) in lines.iter().enumerate() {
        for anchor in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(at) = code[from..].find(anchor).map(|i| from + i) {
                from = at + anchor.len();
                // Part of a longer word (`seaworthy::crate::`? `mycrate::`): not ours.
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[from..];
                if let Some(group) = rest.strip_prefix('{') {
                    // A grouped use may span lines: read up to its closing brace, each part
                    // with the line it is on.
                    let mut body: Vec<(usize, char)> =
                        group.chars().map(|c| (*number, c)).collect();
                    let mut next = index + 1;
                    while !balanced(&body) && next < lines.len() {
                        body.push((lines[next].0, ' '));
                        body.extend(lines[next].1.chars().map(|c| (lines[next].0, c)));
                        next += 1;
                    }
                    for (line, part) in top_level_parts(&body) {
                        let segments = leading_path(&part);
                        if !segments.is_empty() {
                            out.push((line, format!("{anchor}{segments}")));
                        }
                    }
                } else {
                    let segments = leading_path(rest);
                    if !segments.is_empty() {
                        out.push((*number, format!("{anchor}{segments}")));
                    }
                }
            }
        }
    }
    out
}

/// Whether the group text (after its `{`) has reached its closing `}`.
fn balanced(group: &[(usize, char)]) -> bool {
    let mut depth = 1i64;
    for (_, c) in group {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return true;
        }
    }
    false
}

/// The comma-separated parts of a group (after its `{`, up to its `}`), each with the line its
/// first word is on; nested groups kept whole (their first segment is the module).
fn top_level_parts(group: &[(usize, char)]) -> Vec<(usize, String)> {
    let mut parts: Vec<(Option<usize>, String)> = vec![(None, String::new())];
    let mut depth = 0;
    for &(line, c) in group {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push((None, String::new()));
                continue;
            }
            _ => {}
        }
        if let Some((first, text)) = parts.last_mut() {
            if !c.is_whitespace() && first.is_none() {
                *first = Some(line);
            }
            text.push(c);
        }
    }
    parts
        .into_iter()
        .filter_map(|(line, text)| Some((line?, text.trim().to_string())))
        .collect()
}

/// The `a::b::C` path at the start of `text` (identifiers joined by `::`).
fn leading_path(text: &str) -> String {
    let mut segments = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(&rest[..end]);
        match rest[end..].strip_prefix("::") {
            Some(after) => rest = after,
            None => break,
        }
    }
    segments.join("::")
}

/// The module a path from `module` names: the longest prefix of its segments that is a module of
/// the crate; `crate::Item` through the root's re-exports.
fn resolve(
    module: &str,
    path: &str,
    known: &[&str],
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let (base, rest) = if let Some(rest) = path.strip_prefix("crate::") {
        (Vec::new(), rest)
    } else {
        let mut base: Vec<&str> = module.split("::").collect();
        let mut rest = path;
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop()?;
            rest = after;
        }
        if rest == "super" {
            base.pop()?;
            rest = "";
        }
        (base, rest)
    };
    let segments: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
    let mut best = base.join("::");
    // `crate::` alone names no module yet; `super::` names the parent, which exists.
    let mut found = !base.is_empty() && known.contains(&best.as_str());
    for n in 1..=segments.len() {
        let mut candidate = base.clone();
        candidate.extend(&segments[..n]);
        let candidate = candidate.join("::");
        if known.contains(&candidate.as_str()) {
            best = candidate;
            found = true;
        }
    }
    // `crate::Item` (or `crate::Item::method`): the module the root re-exports it from.
    if best.is_empty() {
        if let Some(module) = segments.first().and_then(|s| reexports.get(*s)) {
            return Some(module.clone());
        }
    }
    found.then_some(best)
}

/// Runs the check on the workspace: an error listing every violation.
pub fn run(paths: &Paths) -> Result<()> {
    let doc = std::fs::read_to_string(&paths.table)
        .with_context(|| format!("read {}", paths.table.display()))?;
    let table = Table::parse(&doc).with_context(|| format!("in {}", paths.table.display()))?;
    let sources = read_sources(&paths.src)?;
    let violations = check(&table, &sources)?;
    if violations.is_empty() {
        println!(
            "layers: {} modules of {} checked, none imports from a layer above its own",
            sources.len(),
            paths.src.display()
        );
        return Ok(());
    }
    let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
    bail!(
        "{} imports from a layer above (crates/seaworthy/src; layers in ARCHITECTURE.md):\n{}",
        violations.len(),
        list.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
# Doc
<!-- layers -->
| n | layer | modules | owns |
| --- | --- | --- | --- |
| 0 | base | `error`, `runtime` | errors |
| 1 | engine | `engine` | the client |
| 2 | container | `container`, `exec` | the handle |
| 3 | wait | `wait` | conditions |

Exempt: `container` (the handle)
<!-- /layers -->
";

    fn source(file: &str, text: &str) -> Source {
        Source {
            module: module_path(Path::new(file)),
            file: file.to_string(),
            text: text.to_string(),
        }
    }

    fn sources(bad_line: &str) -> Vec<Source> {
        vec![
            source("lib.rs", "mod engine;\npub use wait::{LogPattern, Wait};\npub use exec::Exec;\n"),
            source("error.rs", "pub enum Error {}\n"),
            source("runtime.rs", "use crate::error::Error;\n"),
            source(
                "engine.rs",
                &format!(
                    "//! Uses [`crate::wait::Wait`] in docs only.\nuse crate::error::{{Error, Result}};\n{bad_line}\n#[cfg(test)]\nmod tests {{\n    use crate::wait::Wait;\n    use super::*;\n}}\n"
                ),
            ),
            source("engine/discovery.rs", "use super::Engine;\nuse super::super::runtime;\n"),
            source("container.rs", "use crate::wait::Wait;\n"),
            source("exec.rs", "use crate::container::Container;\n"),
            source("wait.rs", "use crate::{container::Container, exec::Exec};\nuse crate::error::Error;\n"),
        ]
    }

    #[test]
    fn a_clean_tree_passes() {
        let table = Table::parse(TABLE).unwrap();
        assert_eq!(check(&table, &sources("")).unwrap(), vec![]);
    }

    #[test]
    fn an_import_from_above_is_named_with_both_layers() {
        let table = Table::parse(TABLE).unwrap();
        let found = check(
            &table,
            &sources("use crate::{runtime::spawn,\n    wait::Wait};"),
        )
        .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let message = found[0].to_string();
        assert_eq!(
            message,
            "engine.rs:4: module `engine` (layer 1 `engine`) uses `crate::wait::Wait` from module \
             `wait` (layer 3 `wait`), a layer above its own"
        );
    }

    #[test]
    fn paths_in_code_and_through_root_reexports_count() {
        let table = Table::parse(TABLE).unwrap();
        let found = check(
            &table,
            &sources("fn f() { let x = crate::exec::run(); let w = crate::Wait::log(\"x\"); }"),
        )
        .unwrap();
        let targets: Vec<&str> = found.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["exec", "wait"]);
    }

    #[test]
    fn super_paths_resolve_from_the_module() {
        let table = Table::parse(TABLE).unwrap();
        let mut tree = sources("");
        tree.push(source("exec/detail.rs", "use super::super::wait::Wait;\n"));
        let found = check(&table, &tree).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].module, "exec::detail");
        assert_eq!(found[0].layer.name, "container");
        assert_eq!(found[0].target, "wait");
    }

    #[test]
    fn the_exemption_is_the_module_alone_not_its_parts() {
        let table = Table::parse(TABLE).unwrap();
        let mut tree = sources("");
        tree.push(source("container/start.rs", "use crate::wait::Wait;\n"));
        let found = check(&table, &tree).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].module, "container::start");
        assert_eq!(found[0].file, "container/start.rs");
    }

    #[test]
    fn a_module_in_no_layer_and_an_unplaceable_path_are_errors() {
        let table = Table::parse(TABLE).unwrap();
        let mut tree = sources("");
        tree.push(source("stray.rs", ""));
        let error = check(&table, &tree).unwrap_err().to_string();
        assert!(
            error.contains("module `stray` (stray.rs) is in no layer"),
            "{error}"
        );
        let error = check(&table, &sources("use crate::nowhere::Thing;"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("engine.rs:3: `crate::nowhere::Thing` names no module"),
            "{error}"
        );
    }

    #[test]
    fn a_module_listed_twice_is_refused() {
        let doc = TABLE.replace("`engine` |", "`engine`, `error` |");
        let error = Table::parse(&doc).unwrap_err().to_string();
        assert!(
            error.contains("module `error` is listed in layer 0 `base` and in layer 1 `engine`"),
            "{error}"
        );
    }

    /// The core as committed keeps its layers (the table in ARCHITECTURE.md).
    #[test]
    fn the_core_keeps_its_layers() {
        let root = crate::workspace_root().unwrap();
        if let Err(e) = run(&Paths::new(&root)) {
            panic!("{e:#}");
        }
    }
}
