//! Kernel configuration: tinyconfig, then fragments merged with the tree's own
//! `scripts/kconfig/merge_config.sh`, then `olddefconfig`. Afterwards every
//! symbol a fragment set must have kept its value; otherwise the build stops
//! before compiling anything, listing each dropped symbol.
//!
//! A symbol the kernel renamed is written under both names, after a line
//! `# hmmlab: any-of CONFIG_OLD CONFIG_NEW`: the group is satisfied when
//! one of its settings kept its value (the other name is unknown to that
//! kernel, so olddefconfig drops it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fail::bad_input;

/// One `CONFIG_X=…` or `# CONFIG_X is not set` line of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub symbol: String,
    /// `y`, `m`, a number, a quoted string, or `n` for "is not set".
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
    /// The other names of this symbol (`# hmmlab: any-of`); empty for most.
    pub any_of: Vec<String>,
}

const ANY_OF: &str = "hmmlab: any-of ";

/// Parse a fragment; a line that is neither a setting, a comment nor blank is an error.
pub fn parse_fragment(path: &Path, text: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let loc = |col: usize| format!("{}:{}:{}", path.display(), i + 1, col);
        if line.is_empty() {
            continue;
        }
        if let Some(names) = line.strip_prefix("# ").and_then(|r| r.strip_prefix(ANY_OF)) {
            let names: Vec<String> = names.split_whitespace().map(String::from).collect();
            if names.len() < 2
                || !names
                    .iter()
                    .all(|n| n.starts_with("CONFIG_") && valid_symbol(n))
            {
                problems.push(format!(
                    "{}: `{line}`: write `# {ANY_OF}CONFIG_A CONFIG_B` with two or more symbols",
                    loc(1)
                ));
            }
            groups.push(names);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(sym) = rest.strip_suffix(" is not set") {
                if sym.starts_with("CONFIG_") {
                    out.push(Setting {
                        symbol: sym.into(),
                        value: "n".into(),
                        file: path.into(),
                        line: i + 1,
                        any_of: vec![],
                    });
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((sym, val)) if sym.starts_with("CONFIG_") && valid_symbol(sym) && !val.is_empty() => {
                out.push(Setting { symbol: sym.into(), value: val.into(), file: path.into(), line: i + 1, any_of: vec![] })
            }
            _ => problems.push(format!(
                "{}: `{line}` is not a config line; write CONFIG_NAME=value or `# CONFIG_NAME is not set`",
                loc(1)
            )),
        }
    }
    for group in &groups {
        let named: Vec<&String> = group
            .iter()
            .filter(|g| !out.iter().any(|s| &&s.symbol == g))
            .collect();
        for missing in named {
            problems.push(format!(
                "{}: `# {ANY_OF}` names {missing}, which the file does not set; set every symbol of the group",
                path.display()
            ));
        }
    }
    for s in &mut out {
        if let Some(group) = groups.iter().find(|g| g.contains(&s.symbol)) {
            s.any_of = group.iter().filter(|g| **g != s.symbol).cloned().collect();
        }
    }
    if !problems.is_empty() {
        return Err(bad_input(problems.join("\n")));
    }
    Ok(out)
}

fn kept(s: &Setting, final_config: &BTreeMap<String, String>) -> bool {
    match final_config.get(&s.symbol) {
        Some(v) => *v == s.value,
        None => s.value == "n",
    }
}

fn valid_symbol(sym: &str) -> bool {
    sym.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The values in a `.config`: `n` for "is not set"; absent symbols are absent.
pub fn parse_dotconfig(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(sym) = line
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
        {
            out.insert(sym.to_string(), "n".to_string());
        } else if let Some((sym, val)) = line.split_once('=') {
            if sym.starts_with("CONFIG_") {
                out.insert(sym.to_string(), val.to_string());
            }
        }
    }
    out
}

/// Settings whose value did not survive into the final `.config`, explained.
/// Later fragments override earlier ones, as in merge_config.sh.
pub fn dropped(settings: &[Setting], final_config: &BTreeMap<String, String>) -> Vec<String> {
    let mut wanted: BTreeMap<&str, &Setting> = BTreeMap::new();
    for s in settings {
        wanted.insert(&s.symbol, s);
    }
    let mut out = Vec::new();
    for s in wanted.values() {
        let got = final_config.get(&s.symbol).map(String::as_str);
        let another_name_kept = s.any_of.iter().any(|other| {
            wanted
                .get(other.as_str())
                .is_some_and(|o| kept(o, final_config))
        });
        if kept(s, final_config) || another_name_kept {
            continue;
        }
        let why = match got {
            None => "absent from the final .config: the symbol is unknown to this kernel, or the options it depends on are off".to_string(),
            Some("n") => "ended up not set: a dependency is off (look the symbol up with `make menuconfig`, `/` search)".to_string(),
            Some(v) => format!("ended up as {v}"),
        };
        out.push(format!(
            "  {}={} ({}:{}): {}",
            s.symbol,
            s.value,
            s.file.display(),
            s.line,
            why
        ));
    }
    out
}

/// The fragments of a build: `images/configs/*.config` (sorted), then the extra ones.
pub fn fragment_files(repo: &Path, extra: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let dir = repo.join("images/configs");
    let mut base: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    base.sort();
    for p in extra {
        if !p.is_file() {
            return Err(bad_input(format!(
                "--config-fragment {}: no such file; give the path of a file of CONFIG_NAME=value lines",
                p.display()
            )));
        }
        base.push(crate::paths::absolute(p));
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_lines() {
        let s = parse_fragment(
            Path::new("f.config"),
            "# c\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n\n",
        )
        .unwrap();
        assert_eq!(
            s.iter()
                .map(|s| (s.symbol.as_str(), s.value.as_str(), s.line))
                .collect::<Vec<_>>(),
            vec![
                ("CONFIG_A", "y", 2),
                ("CONFIG_B", "n", 3),
                ("CONFIG_C", "\"x y\"", 4),
            ]
        );
        let e = parse_fragment(Path::new("f.config"), "CONFIG_A=y\nA=y\nCONFIG_b=y\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.config:2:1") && e.contains("f.config:3:1"),
            "{e}"
        );
    }

    #[test]
    fn dropped_symbols_are_explained() {
        let frag = parse_fragment(
            Path::new("f.config"),
            "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\n# CONFIG_D is not set\nCONFIG_E=m\n",
        )
        .unwrap();
        let fin = parse_dotconfig("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_E=y\n");
        let d = dropped(&frag, &fin);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("CONFIG_B=y (f.config:2)") && d[0].contains("not set"));
        assert!(d[1].contains("CONFIG_C=y") && d[1].contains("unknown to this kernel"));
        assert!(d[2].contains("CONFIG_E=m") && d[2].contains("ended up as y"));
    }

    #[test]
    fn a_renamed_symbol_needs_one_of_its_names() {
        let text = "# hmmlab: any-of CONFIG_OLD CONFIG_NEW\nCONFIG_OLD=y\nCONFIG_NEW=y\n";
        let frag = parse_fragment(Path::new("f.config"), text).unwrap();
        assert_eq!(frag[0].any_of, vec!["CONFIG_NEW".to_string()]);
        assert!(dropped(&frag, &parse_dotconfig("CONFIG_NEW=y\n")).is_empty());
        assert!(dropped(&frag, &parse_dotconfig("CONFIG_OLD=y\n")).is_empty());
        let d = dropped(&frag, &parse_dotconfig("# CONFIG_NEW is not set\n"));
        assert_eq!(d.len(), 2, "{d:?}");
        let e = parse_fragment(
            Path::new("f.config"),
            "# hmmlab: any-of CONFIG_OLD CONFIG_NEW\nCONFIG_OLD=y\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CONFIG_NEW, which the file does not set"), "{e}");
        let e = parse_fragment(
            Path::new("f.config"),
            "# hmmlab: any-of CONFIG_OLD\nCONFIG_OLD=y\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.config:1:1") && e.contains("two or more"),
            "{e}"
        );
    }

    #[test]
    fn later_fragment_wins() {
        let mut s = parse_fragment(Path::new("a"), "CONFIG_A=y\n").unwrap();
        s.extend(parse_fragment(Path::new("b"), "# CONFIG_A is not set\n").unwrap());
        assert!(dropped(&s, &parse_dotconfig("# CONFIG_A is not set\n")).is_empty());
    }
}
