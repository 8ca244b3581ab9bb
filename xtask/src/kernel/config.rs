//! Kernel configuration: tinyconfig, then fragments merged with the tree's own
//! `scripts/kconfig/merge_config.sh`, then `olddefconfig`. Afterwards every
//! symbol a fragment set must have kept its value; otherwise the build stops
//! before compiling anything, listing each dropped symbol.

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
}

/// Parse a fragment; a line that is neither a setting, a comment nor blank is an error.
pub fn parse_fragment(path: &Path, text: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let loc = |col: usize| format!("{}:{}:{}", path.display(), i + 1, col);
        if line.is_empty() {
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
                out.push(Setting { symbol: sym.into(), value: val.into(), file: path.into(), line: i + 1 })
            }
            _ => problems.push(format!(
                "{}: `{line}` is not a config line; write CONFIG_NAME=value or `# CONFIG_NAME is not set`",
                loc(1)
            )),
        }
    }
    if !problems.is_empty() {
        return Err(bad_input(problems.join("\n")));
    }
    Ok(out)
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
        let ok = match got {
            Some(v) => v == s.value,
            None => s.value == "n",
        };
        if ok {
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
    fn later_fragment_wins() {
        let mut s = parse_fragment(Path::new("a"), "CONFIG_A=y\n").unwrap();
        s.extend(parse_fragment(Path::new("b"), "# CONFIG_A is not set\n").unwrap());
        assert!(dropped(&s, &parse_dotconfig("# CONFIG_A is not set\n")).is_empty());
    }
}
