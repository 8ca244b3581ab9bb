//! Loading sets of scenario files and choosing among them by name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hmmlab_proto::Scenario;

use super::diagnostic::{backticked, did_you_mean, Diagnostic, Diagnostics};
use super::parse::parse_str;

/// A scenario file that parsed and passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedScenario {
    /// The file stem; used as a directory name for results and as a JUnit name.
    pub name: String,
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// Load every `*.toml` file in `dir` (not recursing, skipping hidden files),
/// sorted by scenario name. Every problem in every file is reported at once.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedScenario>, Diagnostics> {
    let entries = fs::read_dir(dir).map_err(|e| {
        Diagnostics(vec![Diagnostic::file(
            dir,
            format!("cannot read scenario directory: {e}"),
            None,
        )])
    })?;
    let mut paths = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let toml = path.extension().is_some_and(|e| e == "toml");
                if toml && !hidden && path.is_file() {
                    paths.push(path);
                }
            }
            Err(e) => problems.push(Diagnostic::file(
                dir,
                format!("cannot list scenario directory: {e}"),
                None,
            )),
        }
    }
    if paths.is_empty() && problems.is_empty() {
        let hint = Some("scenario files are named `<name>.toml`".to_string());
        problems.push(Diagnostic::file(
            dir,
            "no scenario files in this directory",
            hint,
        ));
    }
    // By scenario name (the file stem), not by path: `a-b.toml` sorts before
    // `a.toml`, but scenario `a` before `a-b`.
    paths.sort_by(|a, b| a.file_stem().cmp(&b.file_stem()).then_with(|| a.cmp(b)));
    match load_files(&paths) {
        Ok(loaded) if problems.is_empty() => Ok(loaded),
        Ok(_) => Err(Diagnostics(problems)),
        Err(Diagnostics(more)) => {
            problems.extend(more);
            Err(Diagnostics(problems))
        }
    }
}

/// Load the given scenario files, in the order given. Every problem in every
/// file is reported at once, including names that clash.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, Diagnostics> {
    let mut problems = Vec::new();
    let mut loaded = Vec::new();
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    for path in paths {
        let name = match scenario_name(path) {
            Ok(name) => Some(name),
            Err(d) => {
                problems.push(d);
                None
            }
        };
        if let Some(name) = &name {
            if let Some(first) = seen.get(name.as_str()) {
                let msg = format!("scenario name `{name}` is also used by {}", first.display());
                let hint = Some(
                    "scenario names are file stems and must be unique; rename one file".to_string(),
                );
                problems.push(Diagnostic::file(path, msg, hint));
            } else {
                seen.insert(name.clone(), path);
            }
        }
        let text = match fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    problems.push(Diagnostic::file(path, "file is not valid UTF-8", None));
                    continue;
                }
            },
            Err(e) => {
                problems.push(Diagnostic::file(
                    path,
                    format!("cannot read scenario file: {e}"),
                    None,
                ));
                continue;
            }
        };
        match (parse_str(path, &text), name) {
            (Ok(scenario), Some(name)) => loaded.push(LoadedScenario {
                name,
                path: path.clone(),
                scenario,
            }),
            (Ok(_), None) => {}
            (Err(ds), _) => problems.extend(ds),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(Diagnostics(problems))
    }
}

/// The scenario name of `path`: its file stem, which must match
/// `^[a-z0-9][a-z0-9._-]*$` since it becomes a path component and a JUnit name.
pub fn scenario_name(path: &Path) -> Result<String, Diagnostic> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if is_valid_name(stem) {
        return Ok(stem.to_string());
    }
    let hint =
        "a scenario's name is its file name without `.toml`; use lowercase letters, digits, \
                `.`, `_` and `-`, starting with a letter or digit"
            .to_string();
    Err(Diagnostic::file(
        path,
        format!("invalid scenario name `{stem}`"),
        Some(hint),
    ))
}

/// `^[a-z0-9][a-z0-9._-]*$`
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    chars.next().is_some_and(ok) && chars.all(|c| ok(c) || matches!(c, '.' | '_' | '-'))
}

/// The scenarios named in `names`, in that order (each once); all of them
/// when `names` is empty. An unknown name is an error listing the valid ones.
pub fn select(all: Vec<LoadedScenario>, names: &[String]) -> Result<Vec<LoadedScenario>, String> {
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !known.contains(&n.as_str()))
        .map(|n| match did_you_mean(n, known.iter().copied()) {
            Some(m) => format!("`{n}` (did you mean `{m}`?)"),
            None => format!("`{n}`"),
        })
        .collect();
    if !unknown.is_empty() {
        let valid = if known.is_empty() {
            "none".to_string()
        } else {
            backticked(known)
        };
        let s = if unknown.len() == 1 { "" } else { "s" };
        return Err(format!(
            "unknown scenario{s} {}; valid names: {valid}",
            unknown.join(", ")
        ));
    }
    let mut by_name: BTreeMap<String, LoadedScenario> =
        all.into_iter().map(|s| (s.name.clone(), s)).collect();
    Ok(names.iter().filter_map(|n| by_name.remove(n)).collect())
}
