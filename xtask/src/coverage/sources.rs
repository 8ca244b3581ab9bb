//! Where a source file the compiler recorded lives in the source tree.
//!
//! A `.gcno` names each file as the compiler saw it: absolute, or relative
//! to the directory it ran in (the kernel's objtree, `../linux/mm/x.c`
//! with `O=`). Reports name it relative to the source tree (`mm/x.c`).

use std::path::{Component, Path, PathBuf};

/// A source file: its name in reports and, when found, its path on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub key: String,
    pub path: Option<PathBuf>,
}

/// Resolve `recorded` (as in gcov's `file`), compiled in `cwd`, against `root`.
pub fn resolve(recorded: &str, cwd: &Path, root: &Path) -> Source {
    let full = normalize(&cwd.join(recorded));
    if let Ok(rel) = full.strip_prefix(normalize(root)) {
        if !rel.as_os_str().is_empty() {
            return Source {
                key: rel.to_string_lossy().into_owned(),
                path: Some(full.clone()).filter(|p| p.is_file()),
            };
        }
    }
    // Built elsewhere (another machine, a copied tree): the longest tail of
    // the recorded path that exists under the root.
    let parts: Vec<&str> = Path::new(recorded)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    for start in 0..parts.len() {
        let tail = parts[start..].join("/");
        let candidate = root.join(&tail);
        if candidate.is_file() {
            return Source {
                key: tail,
                path: Some(candidate),
            };
        }
    }
    Source {
        key: recorded.to_string(),
        path: None,
    }
}

/// `a/b/../c` → `a/c`, without touching the file system (symlinks in a
/// kernel tree are not followed by the compiler's names either).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Is `key` the main source of object `object` (`mm/migrate_device` for
/// `mm/migrate_device.gcno`), rather than a header inlined into it?
pub fn is_main_source(key: &str, object: &Path) -> bool {
    Path::new(key)
        .with_extension("")
        .ends_with(object.with_extension(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_objtree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("linux");
        std::fs::create_dir_all(root.join("mm")).unwrap();
        std::fs::write(root.join("mm/x.c"), "int x;\n").unwrap();
        let obj = t.path().join("obj");
        let s = resolve("../linux/mm/x.c", &obj, &root);
        assert_eq!(s.key, "mm/x.c");
        assert_eq!(s.path, Some(root.join("mm/x.c")));
        // Absolute, from the objtree's point of view.
        let abs = root.join("mm/x.c");
        assert_eq!(resolve(abs.to_str().unwrap(), &obj, &root).key, "mm/x.c");
        // Built on another machine: the tail that exists here.
        let s = resolve("/build/other/mm/x.c", &obj, &root);
        assert_eq!(s.key, "mm/x.c");
        assert!(s.path.is_some());
        // Nowhere: kept as recorded, no path.
        let s = resolve("/elsewhere/y.c", &obj, &root);
        assert_eq!(
            s,
            Source {
                key: "/elsewhere/y.c".into(),
                path: None
            }
        );
    }

    #[test]
    fn main_sources() {
        assert!(is_main_source(
            "mm/migrate_device.c",
            Path::new("mm/migrate_device.gcno")
        ));
        assert!(!is_main_source(
            "include/linux/mm.h",
            Path::new("mm/migrate_device.gcno")
        ));
        assert!(!is_main_source(
            "mm/migrate.c",
            Path::new("mm/migrate_device.gcno")
        ));
    }
}
