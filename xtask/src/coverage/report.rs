//! `cargo xtask coverage-report`: counters in, every report format out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hmmlab_harness::exit;
use hmmlab_harness::report::write::write_atomic;

use super::gcov::ReadOptions;
use super::model::Coverage;
use super::read::{read_all, Instance};
use super::{html, lcov, table};
use crate::cli::CoverageReportArgs;
use crate::fail::bad_input;

pub fn coverage_report(a: &CoverageReportArgs) -> Result<i32> {
    if !a.compare.is_empty() {
        let mut columns = Vec::new();
        for spec in &a.compare {
            let (name, file) = spec
                .split_once('=')
                .filter(|(n, f)| !n.is_empty() && !f.is_empty())
                .ok_or_else(|| {
                    bad_input(format!(
                        "--compare {spec}: expected NAME=FILE (e.g. 7.3=results/x/coverage/coverage.json)"
                    ))
                })?;
            columns.push((name.to_string(), load(Path::new(file))?));
        }
        let refs: Vec<(String, &Coverage)> = columns.iter().map(|(n, c)| (n.clone(), c)).collect();
        print!("{}", table::side_by_side(&refs));
        return Ok(exit::OK);
    }
    let (Some(source), Some(out)) = (&a.source, &a.out) else {
        return Err(bad_input(
            "--source DIR and --out DIR are needed unless --compare is given",
        ));
    };
    let instances = a
        .gcda
        .iter()
        .map(|spec| parse_instance(spec))
        .collect::<Result<Vec<_>>>()?;
    if instances.is_empty() && a.add.is_empty() {
        return Err(bad_input(
            "nothing to report: give --gcda NAME=DIR or --add FILE",
        ));
    }
    let mut cov = Coverage::default();
    if !instances.is_empty() {
        let build = a
            .build
            .as_deref()
            .ok_or_else(|| bad_input("--gcda needs --build DIR, the tree with the .gcno files"))?;
        let opts = ReadOptions {
            source: crate::paths::absolute(source),
            gcov: a.gcov.clone(),
            all_files: a.all_files,
        };
        cov = read_all(build, &instances, &opts)?;
    }
    let earlier = a.add.iter().map(|f| load(f)).collect::<Result<Vec<_>>>()?;
    let parts: Vec<(&str, &Coverage)> = std::iter::once(("the counters", &cov))
        .chain(
            a.add
                .iter()
                .zip(&earlier)
                .map(|(f, c)| (f.to_str().unwrap_or("?"), c)),
        )
        .collect();
    for (i, (name, c)) in parts.iter().enumerate() {
        for (other, o) in &parts[..i] {
            if let Some(file) = c.source_mismatch(o) {
                return Err(bad_input(format!(
                    "{name} and {other} count different sources of {file} (another kernel or patch):                      their lines cannot be merged; report them apart, or compare them with --compare"
                )));
            }
        }
    }
    let cov = Coverage::merged(parts.iter().map(|(_, c)| *c));
    write(&cov, &crate::paths::absolute(source), out)?;
    print!("{}", table::render(&cov));
    eprintln!(
        "coverage of {} scenario instance(s): {}/coverage.info, coverage.json, html/index.html",
        cov.scenarios().len(),
        out.display()
    );
    Ok(exit::OK)
}

/// A report's coverage.json.
pub fn load(file: &Path) -> Result<Coverage> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str::<Coverage>(&text)
        .map_err(|e| bad_input(format!("{}: not a coverage.json: {e}", file.display())))
}

/// `NAME=DIR`.
fn parse_instance(spec: &str) -> Result<Instance> {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => Ok(Instance {
            name: name.to_string(),
            gcda_dir: PathBuf::from(dir),
        }),
        _ => Err(bad_input(format!(
            "--gcda {spec}: expected NAME=DIR (e.g. empty-anon@madvise=results/x/gcov/empty-anon@madvise)"
        ))),
    }
}

/// Write coverage.info, coverage.json and html/index.html into `out`.
/// html/ holds that one page: any other `.html` file there (the per-file
/// pages earlier reports wrote beside their index) is removed.
pub fn write(cov: &Coverage, source: &Path, out: &Path) -> Result<()> {
    let pages = out.join("html");
    std::fs::create_dir_all(&pages).with_context(|| format!("creating {}", pages.display()))?;
    write_atomic(
        &out.join("coverage.info"),
        lcov::render(cov, "", source).as_bytes(),
    )?;
    write_atomic(&out.join("coverage.json"), &serde_json::to_vec_pretty(cov)?)?;
    let texts: BTreeMap<String, String> = cov
        .files
        .keys()
        .filter_map(|key| {
            let bytes = std::fs::read(source.join(key)).ok()?;
            Some((key.clone(), String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect();
    write_atomic(
        &pages.join("index.html"),
        html::render(cov, &texts).as_bytes(),
    )?;
    for e in std::fs::read_dir(&pages).with_context(|| format!("reading {}", pages.display()))? {
        let p = e?.path();
        let stale = p.is_file()
            && p.extension().is_some_and(|x| x == "html")
            && p.file_name().is_some_and(|n| n != "index.html");
        if stale {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_specs() {
        let i = parse_instance("empty-anon@madvise=/tmp/g").unwrap();
        assert_eq!(i.name, "empty-anon@madvise");
        assert_eq!(i.gcda_dir, PathBuf::from("/tmp/g"));
        for bad in ["x", "=dir", "name="] {
            let e = parse_instance(bad).unwrap_err();
            assert_eq!(crate::fail::exit_code(&e), exit::BAD_INPUT, "{bad}");
        }
    }
}
