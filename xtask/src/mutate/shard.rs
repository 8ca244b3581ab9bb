//! Mutation runs split across machines: `--shard K/N` takes one part of
//! the mutants, `--emit github --shards N` prints the CI matrix of the
//! parts, and `--merge DIR...` joins the parts' results into one run's.
//!
//! A mutant's shard is a hash of its file and line (`file:line`, SHA-256),
//! so it depends on nothing else: not on the filters, not on the other
//! mutants. Every mutant of one line, the likeliest duplicates of each
//! other, is in the same shard. Duplicates across shards are found when
//! they merge: the merged records are put in the order one run checks
//! them, and a mutant whose code is an earlier one's becomes `duplicate`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::check::{self, classify, Header, Record, Verdict, PATCH_OPERATOR};
use crate::fail::bad_input;

/// `--shard K/N`: the K-th of N parts, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = |why: &str| {
            bad_input(format!(
                "--shard {s}: {why}; give K/N, the K-th of N parts with 1 <= K <= N, \
                 e.g. --shard 1/4"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(|| bad("not K/N"))?;
        let k: u32 = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if n == 0 {
            return Err(bad("N must be at least 1"));
        }
        if k == 0 || k > n {
            return Err(bad(&format!("K must be between 1 and {n}")));
        }
        Ok(Shard { index: k, count: n })
    }

    /// Is the mutant on `line` of `file` in this shard?
    pub fn contains(&self, file: &str, line: usize) -> bool {
        shard_of(file, line, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Shard, String> {
        Shard::parse(&s).map_err(|e| e.to_string())
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

/// The shard (1..=`count`) of the mutants on `line` of `file`: the first
/// eight bytes of SHA-256 over `file:line`, modulo `count`. The same on
/// every machine and in every version.
pub fn shard_of(file: &str, line: usize, count: u32) -> u32 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{file}:{line}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (n % u64::from(count.max(1))) as u32 + 1
}

/// `{"include": [{"shard": "1/N"}, …]}` for a GitHub Actions
/// `strategy.matrix`.
pub fn github_matrix(count: u32) -> Result<String> {
    let include: Vec<_> = (1..=count)
        .map(|k| serde_json::json!({ "shard": Shard { index: k, count }.to_string() }))
        .collect();
    serde_json::to_string(&serde_json::json!({ "include": include }))
        .context("writing the matrix JSON")
}

/// One shard's results, read back.
pub struct Part {
    pub dir: PathBuf,
    pub header: Header,
    pub records: Vec<Record>,
}

impl Part {
    pub fn read(dir: &Path) -> Result<Part> {
        let dir = crate::paths::absolute(dir);
        let header_path = dir.join("check.json");
        let text = fs::read(&header_path).map_err(|_| {
            bad_input(format!(
                "--merge {}: no check.json there; give results/mutate-<id> directories that \
                 `mutate --check` or `--run` made",
                dir.display()
            ))
        })?;
        let header: Header = serde_json::from_slice(&text)
            .with_context(|| format!("reading {}", header_path.display()))?;
        let records = check::read_records(&dir.join("mutants.jsonl"))?;
        Ok(Part {
            dir,
            header,
            records,
        })
    }
}

/// The shards of one split that `parts` lack: `Some((N, missing))` when
/// every part is a shard of N (`--shard K/N`), `None` when one is a whole
/// run. Parts split another way (K/N with different N) are an error: their
/// mutants overlap and none is whole.
pub fn missing_shards(parts: &[Part]) -> Result<Option<(u32, Vec<u32>)>> {
    let shards: Option<Vec<Shard>> = parts.iter().map(|p| p.header.shard).collect();
    let Some(shards) = shards else {
        return Ok(None);
    };
    let Some(first) = shards.first() else {
        return Ok(None);
    };
    if let Some((p, other)) = parts
        .iter()
        .zip(&shards)
        .find(|(_, s)| s.count != first.count)
    {
        return Err(bad_input(format!(
            "--merge: {} is shard {}/{} and {} is shard {}/{}: merge the shards of one split              (`--shard K/N` with the same N)",
            parts[0].dir.display(),
            first.index,
            first.count,
            p.dir.display(),
            other.index,
            other.count
        )));
    }
    let given: BTreeSet<u32> = shards.iter().map(|s| s.index).collect();
    let missing = (1..=first.count).filter(|k| !given.contains(k)).collect();
    Ok(Some((first.count, missing)))
}

/// The parts' records as one run's: the same kernel build and baseline
/// (else an error naming the two directories), each mutant once (one in
/// two parts must have the same verdict and code in both), in `order` (a mutant's
/// position in one run's candidates; one not in it goes last, by id), and
/// duplicates found again across the parts: a mutant whose code is an
/// earlier one's is `duplicate` of the earliest, whatever its part said.
pub fn merge_records(parts: &[Part], order: &BTreeMap<String, usize>) -> Result<Vec<Record>> {
    let first = parts.first().context("no results to merge")?;
    for p in &parts[1..] {
        if p.header.kernel_key != first.header.kernel_key
            || p.header.baseline != first.header.baseline
        {
            return Err(bad_input(format!(
                "--merge: {} is a check of kernel build {} ({} {}) and {} of {} ({} {}); merge \
                 only the shards of one kernel build",
                first.dir.display(),
                first.header.kernel_key,
                first.header.source,
                first.header.release,
                p.dir.display(),
                p.header.kernel_key,
                p.header.source,
                p.header.release
            )));
        }
    }
    let mut by_id: BTreeMap<String, (&Record, &Path)> = BTreeMap::new();
    for p in parts {
        for r in &p.records {
            match by_id.get(&r.id) {
                Some((seen, dir)) if (seen.verdict, &seen.object) != (r.verdict, &r.object) => {
                    return Err(bad_input(format!(
                        "--merge: mutant {} has a verdict in both {} ({}) and {} ({}) and they \
                         differ; merge shards that do not overlap (each --shard K/N once)",
                        r.id,
                        dir.display(),
                        seen.verdict.name(),
                        p.dir.display(),
                        r.verdict.name()
                    )));
                }
                Some(_) => {}
                None => {
                    by_id.insert(r.id.clone(), (r, &p.dir));
                }
            }
        }
    }
    let mut records: Vec<Record> = by_id.into_values().map(|(r, _)| r.clone()).collect();
    records.sort_by(|a, b| {
        let at = |r: &Record| order.get(&r.id).copied().unwrap_or(usize::MAX);
        at(a).cmp(&at(b)).then_with(|| a.id.cmp(&b.id))
    });
    let baseline = &first.header.baseline;
    let mut earlier: BTreeMap<String, String> = BTreeMap::new();
    for r in &mut records {
        let Some(object) = r.object.clone() else {
            continue;
        };
        let original = baseline.get(&r.file).map(String::as_str).unwrap_or("");
        let (verdict, duplicate_of) = classify(Some(&object), original, &earlier, r.coverage);
        earlier.entry(object).or_insert_with(|| r.id.clone());
        if verdict == Verdict::Duplicate {
            // Booting it taught nothing its twin's boot did not.
            *r = Record {
                verdict,
                duplicate_of,
                ..r.clone().unbooted()
            };
        } else if r.verdict == Verdict::Duplicate {
            // Its earlier twin is in no part: the compile's verdict.
            r.verdict = verdict;
            r.duplicate_of = None;
        }
    }
    Ok(records)
}

/// `cargo xtask mutate --merge DIR...`.
pub fn merge(a: &crate::cli::MutateArgs) -> Result<i32> {
    let parts = a
        .merge
        .iter()
        .map(|d| Part::read(d))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = BTreeSet::new();
    for p in &parts {
        if !seen.insert(p.dir.clone()) {
            return Err(bad_input(format!(
                "--merge {}: given twice; give each shard's directory once",
                p.dir.display()
            )));
        }
    }
    let missing = match missing_shards(&parts)? {
        Some((count, missing)) if !missing.is_empty() => {
            let names: Vec<String> = missing.iter().map(|k| format!("{k}/{count}")).collect();
            Some(format!(
                "mutate: warning: shard{} {} not given: this merge is part of the selection, not \
                 the whole; merge all {count} for one run's result",
                if missing.len() == 1 { "" } else { "s" },
                names.join(", ")
            ))
        }
        _ => None,
    };
    if let Some(w) = &missing {
        eprintln!("{w}");
    }
    let header = &parts[0].header;
    // One run's order: the generated mutants of each file in source
    // order, then the hand-written ones (by id).
    let tree = if header.tree.is_dir() {
        header.tree.clone()
    } else {
        let source = crate::kernel::source::Source::parse_tree(&header.source)?;
        let identity = source.identity()?;
        source.pristine_tree(&crate::paths::cache_root(), &identity)?
    };
    let sel = super::Selection {
        files: header.baseline.keys().cloned().collect(),
        ..Default::default()
    };
    let files = super::generate(&tree, &sel)?;
    let mut order = BTreeMap::new();
    let mut mutants = BTreeMap::new();
    for m in files.iter().flat_map(|f| &f.mutants) {
        order.insert(m.id.clone(), order.len());
        mutants.insert(m.id.clone(), m);
    }
    let mut records = merge_records(&parts, &order)?;
    if let Some(r) = records
        .iter()
        .find(|r| r.operator != PATCH_OPERATOR && !order.contains_key(&r.id))
    {
        return Err(bad_input(format!(
            "--merge: {} gives no mutant {} (from {}); the tree changed since the check, \
             merge results of the tree they were checked on",
            tree.display(),
            r.id,
            header.source
        )));
    }
    let mut sources = BTreeMap::new();
    for f in header.baseline.keys() {
        let path = tree.join(f);
        sources.insert(
            f.clone(),
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    // Each shard carries the equivalent list as it stood when it was
    // checked or last resumed; the merged run gets today's, as a single
    // run resumed now would.
    let list = super::equivalent::load_repo()?;
    let before: Vec<_> = records.iter().map(|r| r.verdict).collect();
    let relisted = check::apply_list(
        &list,
        &header.release,
        &sources,
        &|id| mutants.get(id).copied(),
        &mut records,
    );
    let changed = relisted
        .iter()
        .filter(|&&i| records[i].verdict != before[i])
        .count();
    if changed > 0 {
        eprintln!(
            "mutate: {changed} verdict{} changed by {} as it stands now (entries added or \
             removed since the shards ran)",
            if changed == 1 { "" } else { "s" },
            super::equivalent::LIST
        );
    }

    let dir =
        crate::paths::absolute(&a.results_dir).join(format!("mutate-{}", crate::run::new_run_id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let merged = Header {
        shard: None,
        ..header.clone()
    };
    let write = crate::kernel::build::write_atomic;
    write(
        &dir.join("check.json"),
        &serde_json::to_vec_pretty(&merged)?,
    )?;
    let mut text = String::new();
    for r in &records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    let jsonl = dir.join("mutants.jsonl");
    write(&jsonl, text.as_bytes())?;
    let generated: Vec<&super::Mutant> = records
        .iter()
        .filter_map(|r| mutants.get(&r.id).copied())
        .collect();
    check::write_report(&dir, &records, &sources, &generated)?;

    let mut functions = check::functions_with(&files, |file, function| {
        records
            .iter()
            .any(|r| r.file == file && r.function == function)
    });
    for r in &records {
        let key = format!("{}:{}", r.file, r.function);
        if !functions.contains(&key) {
            functions.push(key);
        }
    }
    eprintln!(
        "mutate: {} shard directories merged: {} mutants",
        parts.len(),
        records.len()
    );
    print!(
        "{}",
        check::summary(&records, &functions, merged.coverage_from.is_some())
    );
    println!("results: {}", jsonl.display());
    if records.iter().any(|r| r.timings.is_some()) {
        check::print_survivors(&records, &|id| mutants.get(id).map(|m| m.diff.clone()));
    }
    // Said again after the survivors, where the eye lands.
    if let Some(w) = &missing {
        eprintln!("{w}");
    }
    Ok(hmmlab_harness::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::check::{test_record, Reach};

    #[test]
    fn shard_assignment_is_stable_and_total() {
        // Pinned: the same on every machine and every Rust version.
        let got: Vec<u32> = (290..298)
            .map(|l| shard_of("mm/migrate_device.c", l, 4))
            .collect();
        assert_eq!(got, PINNED);
        for count in 1..=7 {
            for line in 1..2000 {
                let holders: Vec<u32> = (1..=count)
                    .filter(|&k| Shard { index: k, count }.contains("mm/migrate_device.c", line))
                    .collect();
                assert_eq!(
                    holders.len(),
                    1,
                    "line {line} of {count} shards: {holders:?}"
                );
            }
        }
        // Not all in one shard.
        let used: BTreeSet<u32> = (1..200).map(|l| shard_of("mm/m.c", l, 4)).collect();
        assert_eq!(used.len(), 4);
    }

    /// `printf mm/migrate_device.c:290 | sha256sum`: the first 16 hex
    /// digits as a number, modulo 4, plus 1; and so on to line 297.
    const PINNED: [u32; 8] = [4, 4, 1, 4, 4, 2, 2, 1];

    #[test]
    fn shard_parses_k_of_n_and_names_the_flag_when_not() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        assert_eq!(Shard::parse("1/1").unwrap().to_string(), "1/1");
        for bad in ["0/2", "3/2", "2", "a/2", "1/b", "1/0", "", "-1/2"] {
            let e = Shard::parse(bad).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("--shard {bad}:")) && msg.contains("give K/N"),
                "{msg}"
            );
            assert_eq!(
                crate::fail::exit_code(&e),
                hmmlab_harness::exit::BAD_INPUT,
                "{bad}"
            );
        }
        // In check.json as "K/N"; a header without it reads as before.
        let s: Shard = serde_json::from_str("\"3/8\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"3/8\"");
        assert!(serde_json::from_str::<Shard>("\"9/8\"").is_err());
    }

    #[test]
    fn shard_matrix_for_github_lists_every_shard() {
        let v: serde_json::Value = serde_json::from_str(&github_matrix(3).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"include": [{"shard": "1/3"}, {"shard": "2/3"}, {"shard": "3/3"}]})
        );
    }

    fn header(key: &str) -> Header {
        Header {
            kernel_key: key.into(),
            source: "debian:7.3".into(),
            release: "7.3.4".into(),
            tree: "/t".into(),
            obj_dir: "/o".into(),
            baseline: [("mm/m.c".to_string(), "orig".to_string())].into(),
            coverage_from: None,
            shard: None,
        }
    }

    fn part(dir: &str, key: &str, records: Vec<Record>) -> Part {
        Part {
            dir: dir.into(),
            header: header(key),
            records,
        }
    }

    fn rec(id: &str, line: usize, verdict: Verdict, object: Option<&str>) -> Record {
        Record {
            object: object.map(String::from),
            coverage: Reach::Covered,
            ..test_record(id, line, verdict)
        }
    }

    #[test]
    fn merge_finds_a_duplicate_across_shards_and_keeps_the_earliest() {
        let mut booted = rec("m:f:20:a:0", 20, Verdict::Killed, Some("h1"));
        booted.timings = Some(Default::default());
        booted.schema = Some(3);
        let a = part(
            "/r/a",
            "k",
            vec![
                rec("m:f:10:a:0", 10, Verdict::Pending, Some("h1")),
                rec("m:f:30:a:0", 30, Verdict::Equivalent, Some("orig")),
            ],
        );
        let b = part(
            "/r/b",
            "k",
            vec![
                booted,
                rec("m:f:40:a:0", 40, Verdict::Duplicate, Some("h1")),
                rec("m:f:50:a:0", 50, Verdict::Unviable, None),
            ],
        );
        let b_dup_of = |rs: &[Record], id: &str| {
            let r = rs.iter().find(|r| r.id == id).unwrap();
            (r.verdict, r.duplicate_of.clone())
        };
        let order: BTreeMap<String, usize> = ["10", "20", "30", "40", "50"]
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("m:f:{l}:a:0"), i))
            .collect();
        let rs = merge_records(&[b, a], &order).unwrap();
        let ids: Vec<&str> = rs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "m:f:10:a:0",
                "m:f:20:a:0",
                "m:f:30:a:0",
                "m:f:40:a:0",
                "m:f:50:a:0"
            ]
        );
        let first = Some("m:f:10:a:0".to_string());
        assert_eq!(b_dup_of(&rs, "m:f:10:a:0"), (Verdict::Pending, None));
        assert_eq!(
            b_dup_of(&rs, "m:f:20:a:0"),
            (Verdict::Duplicate, first.clone())
        );
        assert_eq!(b_dup_of(&rs, "m:f:40:a:0"), (Verdict::Duplicate, first));
        assert_eq!(b_dup_of(&rs, "m:f:30:a:0"), (Verdict::Equivalent, None));
        assert_eq!(b_dup_of(&rs, "m:f:50:a:0"), (Verdict::Unviable, None));
        // The boot a duplicate had in its shard is dropped.
        let dup = &rs[1];
        assert!(dup.timings.is_none() && dup.schema.is_none(), "{dup:?}");

        // The other way round: the earliest is the one that stays.
        let order: BTreeMap<String, usize> = ["20", "10"]
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("m:f:{l}:a:0"), i))
            .collect();
        let a = part(
            "/r/a",
            "k",
            vec![rec("m:f:10:a:0", 10, Verdict::Pending, Some("h1"))],
        );
        let b = part(
            "/r/b",
            "k",
            vec![rec("m:f:20:a:0", 20, Verdict::Survived, Some("h1"))],
        );
        let rs = merge_records(&[a, b], &order).unwrap();
        assert_eq!(
            (rs[0].id.as_str(), rs[0].verdict),
            ("m:f:20:a:0", Verdict::Survived)
        );
        assert_eq!(
            b_dup_of(&rs, "m:f:10:a:0"),
            (Verdict::Duplicate, Some("m:f:20:a:0".to_string()))
        );
    }

    #[test]
    fn merge_names_the_shards_it_was_not_given() {
        let shard = |dir: &str, index, count| {
            let mut p = part(dir, "k", vec![]);
            p.header.shard = Some(Shard { index, count });
            p
        };
        let parts = [
            shard("/r/1", 1, 4),
            shard("/r/3", 3, 4),
            shard("/r/2", 2, 4),
        ];
        assert_eq!(missing_shards(&parts).unwrap(), Some((4, vec![4])));
        let all = [shard("/r/1", 1, 2), shard("/r/2", 2, 2)];
        assert_eq!(missing_shards(&all).unwrap(), Some((2, vec![])));
        // A whole run among them: nothing to say.
        let whole = [shard("/r/1", 1, 2), part("/r/w", "k", vec![])];
        assert_eq!(missing_shards(&whole).unwrap(), None);
        // Two splits: refused, naming both.
        let e = missing_shards(&[shard("/r/a", 1, 4), shard("/r/b", 2, 3)]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/r/a") && msg.contains("2/3") && msg.contains("1/4"),
            "{msg}"
        );
        assert_eq!(crate::fail::exit_code(&e), hmmlab_harness::exit::BAD_INPUT);
    }

    #[test]
    fn merge_refuses_shards_of_another_kernel_build() {
        let a = part("/r/a", "k1", vec![]);
        let b = part("/r/b", "k2", vec![]);
        let e = merge_records(&[a, b], &BTreeMap::new()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/r/a")
                && msg.contains("/r/b")
                && msg.contains("k1")
                && msg.contains("k2"),
            "{msg}"
        );
        assert_eq!(crate::fail::exit_code(&e), hmmlab_harness::exit::BAD_INPUT);
        // The same key with another baseline is another build too.
        let a = part("/r/a", "k", vec![]);
        let mut b = part("/r/b", "k", vec![]);
        b.header.baseline.insert("mm/m.c".into(), "other".into());
        assert!(merge_records(&[a, b], &BTreeMap::new()).is_err());
    }

    #[test]
    fn merge_keeps_a_mutant_two_shards_agree_on_and_refuses_one_they_do_not() {
        let r = rec("m:f:10:a:0", 10, Verdict::Pending, Some("h1"));
        let a = part("/r/a", "k", vec![r.clone()]);
        let b = part("/r/b", "k", vec![r.clone()]);
        assert_eq!(merge_records(&[a, b], &BTreeMap::new()).unwrap().len(), 1);
        let a = part("/r/a", "k", vec![r]);
        let b = part(
            "/r/b",
            "k",
            vec![rec("m:f:10:a:0", 10, Verdict::Killed, Some("h1"))],
        );
        let msg = merge_records(&[a, b], &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("m:f:10:a:0") && msg.contains("/r/a") && msg.contains("/r/b"),
            "{msg}"
        );
    }

    #[test]
    fn a_check_header_without_a_shard_still_reads() {
        let mut v = serde_json::to_value(header("k")).unwrap();
        assert!(v.get("shard").is_none());
        let h: Header = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(h.shard, None);
        v["shard"] = "2/4".into();
        let h: Header = serde_json::from_value(v).unwrap();
        assert_eq!(h.shard, Some(Shard { index: 2, count: 4 }));
    }
}
