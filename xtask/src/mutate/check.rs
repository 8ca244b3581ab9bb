//! `cargo xtask mutate --check`: the verdicts that need no boot.
//!
//! Each selected mutant's object, and only that object, is compiled with
//! the exact command kbuild used for it in the kernel's cached build (its
//! `.<name>.o.cmd`), run in that object directory so its relative include
//! paths and generated headers are the build's own. Only the output, the
//! dependency file and the source path are redirected into a scratch
//! directory; the cached tree and objects are only read. Compiling the
//! unmutated file this way must give the build's own object back (checked
//! before any mutant: `Recipe::check_baseline`).
//!
//! The verdicts, first match wins (`classify`):
//! - `unviable`: the compile fails;
//! - `equivalent`: the object's code is the original's (`code_hash`);
//! - `duplicate`: the object's code is an earlier mutant's;
//! - `uncovered`: no scenario ran the mutant's lines (`--coverage-from`);
//! - `pending`: to be booted.
//!
//! Line numbers: a mutant that removes lines (`{ … }` becoming `{}`) would
//! shift every later `__LINE__`, and with `CONFIG_DEBUG_BUGVERBOSE` each
//! `WARN_ON`/`BUG_ON` records its line in `__bug_table`. The compiled text
//! gets the removed line breaks back right after the mutated text
//! (`compiled_text`), so the lines after it keep their numbers, and an
//! object differs from the original's only where code or data does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{Mutant, Selection};
use crate::coverage::model::{Coverage, FileCoverage};
use crate::fail::bad_input;
use crate::progress::Progress;

/// What a compile of a mutant says about it before any boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Unviable,
    Equivalent,
    Duplicate,
    Uncovered,
    Pending,
    /// Booted: a scenario failed.
    Killed,
    /// Booted: a scenario timed out (and none crashed).
    Timeout,
    /// Booted: the kernel crashed (an oops or panic in a scenario).
    Crashed,
    /// Booted: every scenario passed.
    Survived,
    /// Its kernel could not be linked or the run did not end (the reason
    /// is kept): no verdict yet; booted again on --resume.
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 10] = [
        Verdict::Unviable,
        Verdict::Equivalent,
        Verdict::Duplicate,
        Verdict::Uncovered,
        Verdict::Pending,
        Verdict::Killed,
        Verdict::Timeout,
        Verdict::Crashed,
        Verdict::Survived,
        Verdict::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Unviable => "unviable",
            Verdict::Equivalent => "equivalent",
            Verdict::Duplicate => "duplicate",
            Verdict::Uncovered => "uncovered",
            Verdict::Pending => "pending",
            Verdict::Killed => "killed",
            Verdict::Timeout => "timeout",
            Verdict::Crashed => "crashed",
            Verdict::Survived => "survived",
            Verdict::Error => "error",
        }
    }

    /// Did the suite notice the mutant?
    pub fn detected(self) -> bool {
        matches!(self, Verdict::Killed | Verdict::Timeout | Verdict::Crashed)
    }

    /// Is the mutant out of the score (it is not a different program, or
    /// not a program)?
    pub fn excluded(self) -> bool {
        matches!(
            self,
            Verdict::Unviable | Verdict::Equivalent | Verdict::Duplicate
        )
    }
}

/// Whether the scenarios ran a mutant's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Covered,
    Uncovered,
    /// No coverage was given (`--coverage-from`).
    Unknown,
}

/// The verdict of one compiled mutant: `object` is its code hash, or None
/// when it did not compile; `earlier` maps the code hash of each mutant
/// checked before it to that mutant's id. The second value names the
/// earlier mutant a duplicate repeats.
pub fn classify(
    object: Option<&str>,
    original: &str,
    earlier: &BTreeMap<String, String>,
    reach: Reach,
) -> (Verdict, Option<String>) {
    let Some(object) = object else {
        return (Verdict::Unviable, None);
    };
    if object == original {
        return (Verdict::Equivalent, None);
    }
    if let Some(first) = earlier.get(object) {
        return (Verdict::Duplicate, Some(first.clone()));
    }
    match reach {
        Reach::Uncovered => (Verdict::Uncovered, None),
        Reach::Covered | Reach::Unknown => (Verdict::Pending, None),
    }
}

/// Did any scenario run lines `first..=last` of `function`? The lines gcov
/// records code on decide; a span with none of them (a mutant on a line
/// without code of its own) goes by whether the function ran at all.
pub fn reach(cov: Option<&FileCoverage>, function: &str, first: usize, last: usize) -> Reach {
    let Some(cov) = cov else {
        return Reach::Unknown;
    };
    let lines: Vec<u64> = cov
        .lines
        .range(first as u32..=last as u32)
        .map(|(_, l)| l.count)
        .collect();
    let ran = if lines.is_empty() {
        cov.functions.get(function).is_some_and(|f| f.count > 0)
    } else {
        lines.iter().any(|&c| c > 0)
    };
    if ran {
        Reach::Covered
    } else {
        Reach::Uncovered
    }
}

/// The last line of the expression that line `last` (1-based) of `text`
/// belongs to: while a line ends in `&&`, `||`, `|`, `&`, `,` or `(`,
/// the expression goes on on the next one (at most 8 more). gcov may
/// count a condition written over several lines on another of its lines
/// than the one a mutant changes (7.3.4's `if (!softleaf_is_device_private(entry) ||`
/// of migrate_vma_collect_huge_pmd() has its count on the line after), so
/// the lines a mutant reaches run to the end of its expression.
pub fn continued_to(text: &str, last: usize) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = last;
    while at < lines.len() && at < last + 8 {
        let code = lines[at - 1];
        let code = code.split("//").next().unwrap_or("").trim_end();
        let code = match code.rfind("/*") {
            Some(i) if code.ends_with("*/") => code[..i].trim_end(),
            _ => code,
        };
        let open = ["&&", "||", "|", "&", ",", "("]
            .iter()
            .any(|end| code.ends_with(end));
        if !open {
            break;
        }
        at += 1;
    }
    at
}

/// The scenario instances that ran lines `first..=last` of `function`
/// (the function's own, when none of those lines has code).
pub fn instances_over(
    cov: &FileCoverage,
    function: &str,
    first: usize,
    last: usize,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut any_line = false;
    for (_, l) in cov.lines.range(first as u32..=last as u32) {
        any_line = true;
        out.extend(l.scenarios.iter().cloned());
    }
    if !any_line {
        if let Some(f) = cov.functions.get(function) {
            out.extend(f.scenarios.iter().cloned());
        }
    }
    out
}

/// The text that is compiled for `m`: the mutant applied, with the line
/// breaks it removed put back right after the mutated text, so every
/// later line keeps its number (see the module comment).
pub fn compiled_text(source: &str, m: &Mutant) -> String {
    let removed = source[m.start..m.end].matches('\n').count();
    let kept = m.mutated.matches('\n').count();
    let mut s = String::with_capacity(source.len() + removed);
    s.push_str(&source[..m.start]);
    s.push_str(&m.mutated);
    for _ in kept..removed {
        s.push('\n');
    }
    s.push_str(&source[m.end..]);
    s
}

/// The identity of an object's code: SHA-256 over every section but the
/// debug ones (`.debug_*` and their relocations) and `.comment`, each with
/// its name, type, flags, sizes and links, and its bytes. Two objects with
/// the same hash load the same code and data. hmmlab's configuration has
/// no debug information, so there that is the whole object but the
/// compiler's version string.
pub fn code_hash(elf: &[u8]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let u16_at = |o: usize| -> Result<u16> {
        Ok(u16::from_le_bytes(
            elf.get(o..o + 2).context("truncated ELF")?.try_into()?,
        ))
    };
    let u32_at = |o: usize| -> Result<u32> {
        Ok(u32::from_le_bytes(
            elf.get(o..o + 4).context("truncated ELF")?.try_into()?,
        ))
    };
    let u64_at = |o: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(
            elf.get(o..o + 8).context("truncated ELF")?.try_into()?,
        ))
    };
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        bail!("not a 64-bit little-endian ELF object");
    }
    let shoff = u64_at(0x28)? as usize;
    let shentsize = u16_at(0x3a)? as usize;
    let shnum = u16_at(0x3c)? as usize;
    let shstrndx = u16_at(0x3e)? as usize;
    let header = |i: usize| shoff + i * shentsize;
    let names_at = u64_at(header(shstrndx) + 24)? as usize;
    let name_of = |off: usize| -> Result<&[u8]> {
        let rest = elf.get(names_at + off..).context("truncated ELF")?;
        Ok(&rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())])
    };
    let mut h = Sha256::new();
    for i in 0..shnum {
        let s = header(i);
        let name = name_of(u32_at(s)? as usize)?;
        if name.starts_with(b".debug") || name.starts_with(b".rela.debug") || name == b".comment" {
            continue;
        }
        let kind = u32_at(s + 4)?;
        let (offset, size) = (u64_at(s + 24)? as usize, u64_at(s + 32)? as usize);
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(kind.to_le_bytes());
        h.update(elf.get(s + 8..s + 16).context("truncated ELF")?); // flags
        h.update(elf.get(s + 32..s + 64).context("truncated ELF")?); // size, link, info, align, entsize
        const SHT_NOBITS: u32 = 8;
        if kind != SHT_NOBITS {
            h.update(elf.get(offset..offset + size).context("truncated ELF")?);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// How kbuild compiled one object of a build, ready to compile other text
/// in its place.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The object directory the command runs in.
    pub obj_dir: PathBuf,
    /// The file, relative to the top of the tree (`mm/migrate_device.c`).
    pub file: String,
    /// kbuild's argv: `out`, `dep` and `src` mark what is redirected.
    argv: Vec<String>,
    out: usize,
    dep: Option<usize>,
    src: usize,
    /// The build's own object.
    pub built_object: PathBuf,
}

/// The compiler hmmlab's kernel builds call instead of ccache's wrapper.
fn real_cc() -> String {
    std::env::var("HMMLAB_REAL_CC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "gcc".into())
}

impl Recipe {
    /// Read `<obj>/<dir>/.<name>.o.cmd`, the command kbuild saved for
    /// `file`'s object.
    pub fn of_build(obj_dir: &Path, tree: &Path, file: &str) -> Result<Recipe> {
        let object = Path::new(file).with_extension("o");
        let name = object
            .file_name()
            .context("no file name")?
            .to_string_lossy();
        let dir = object.parent().unwrap_or(Path::new(""));
        let cmd_file = obj_dir.join(dir).join(format!(".{name}.cmd"));
        let text = fs::read_to_string(&cmd_file).map_err(|_| {
            bad_input(format!(
                "--check: {file} is not compiled into this kernel (no {}); give a file the \
                 kernel's configuration builds",
                cmd_file.display()
            ))
        })?;
        let object = object.to_string_lossy().into_owned();
        let line = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("savedcmd_{object} := "))
                    .or_else(|| l.strip_prefix(&format!("cmd_{object} := ")))
            })
            .with_context(|| format!("{}: no compile command in it", cmd_file.display()))?;
        Self::parse(obj_dir, tree, file, line)
            .with_context(|| format!("reading the compile command of {}", cmd_file.display()))
    }

    fn parse(obj_dir: &Path, tree: &Path, file: &str, line: &str) -> Result<Recipe> {
        let mut argv = shlex::split(line).context("not a shell command line")?;
        if argv
            .first()
            .is_some_and(|a| a.ends_with("/hmmlab-cc") || a == "ccache")
        {
            // Past ccache: a mutant's object is never worth keeping there.
            if argv[0] == "ccache" {
                argv.remove(0);
            } else {
                argv[0] = real_cc();
            }
        }
        if argv.iter().any(|a| a == ";" || a == "&&" || a == "|") {
            bail!("more than one command: {line}");
        }
        let wanted = fs::canonicalize(tree.join(file))
            .with_context(|| format!("{} is not in {}", file, tree.display()))?;
        let src = argv
            .iter()
            .position(|a| fs::canonicalize(obj_dir.join(a)).is_ok_and(|p| p == wanted))
            .with_context(|| format!("the command does not compile {file}: {line}"))?;
        let out = argv
            .iter()
            .position(|a| a == "-o")
            .context("no -o in the command")?
            + 1;
        if out >= argv.len() {
            bail!("-o without a file");
        }
        let built_object = obj_dir.join(&argv[out]);
        let dep = argv
            .iter()
            .position(|a| a.starts_with("-Wp,-MMD,") || a.starts_with("-Wp,-MD,"));
        // The mutated text is compiled from a scratch directory: its
        // `__FILE__` must still read as the tree's (`mm/migrate_device.c`),
        // and its `#include "…"` must find the file's own directory first.
        let c = argv
            .iter()
            .position(|a| a == "-c")
            .context("no -c in the command")?;
        let own_dir = tree.join(file);
        let own_dir = own_dir.parent().context("no directory")?;
        argv.insert(c, format!("-iquote{}", own_dir.display()));
        let shift = |i: usize| if i >= c { i + 1 } else { i };
        let (src, out, dep) = (shift(src), shift(out), dep.map(shift));
        Ok(Recipe {
            obj_dir: obj_dir.to_path_buf(),
            file: file.to_string(),
            argv,
            out,
            dep,
            src,
            built_object,
        })
    }

    /// Compile `text` in place of the file, in `work` (scratch): the
    /// object's bytes, or the compiler's messages when it fails.
    pub fn compile(&self, text: &str, work: &Path) -> Result<Compiled> {
        let original = self.argv[self.src].clone();
        // The source in a directory of a short name (the system's temporary
        // directory), so that its path can be made as long as the build's.
        let short = tempfile::Builder::new()
            .prefix("hmmlab-cc-")
            .tempdir()
            .context("creating a scratch directory for the source")?;
        let src_root = scratch_root(short.path(), &original, &self.file);
        let src = src_root.join(&self.file);
        fs::create_dir_all(src.parent().context("no directory")?)?;
        fs::write(&src, text).with_context(|| format!("writing {}", src.display()))?;
        let out = work.join("mutant.o");
        let _ = fs::remove_file(&out);
        let mut argv = self.argv.clone();
        argv[self.out] = out.to_string_lossy().into_owned();
        argv[self.src] = src.to_string_lossy().into_owned();
        if let Some(d) = self.dep {
            argv[d] = format!("-Wp,-MMD,{}", work.join("mutant.d").display());
        }
        argv.insert(1, format!("-fmacro-prefix-map={}/=", src_root.display()));
        let t = Instant::now();
        let result = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&self.obj_dir)
            .output()
            .with_context(|| format!("running {}", argv[0]))?;
        let seconds = t.elapsed().as_secs_f64();
        if result.status.success() {
            let mut bytes = fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
            // The compiler names its input file in the object where no
            // prefix map reaches (KASAN's global descriptors carry
            // main_input_filename): put the build's own name back.
            let ours = src.to_string_lossy();
            if ours.len() == original.len() {
                replace_same_length(&mut bytes, ours.as_bytes(), original.as_bytes());
            }
            Ok(Compiled {
                seconds,
                object: Ok(bytes),
                stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            })
        } else {
            let text = String::from_utf8_lossy(&result.stderr).into_owned();
            let prefix = format!("{}/", src_root.display());
            Ok(Compiled {
                seconds,
                object: Err(first_errors(&text, &src_root)),
                stderr: text.replace(&prefix, ""),
            })
        }
    }

    /// Compile the unmutated file this way: its code must be the build's
    /// own object's, else this way of compiling is not the build's.
    pub fn check_baseline(&self, text: &str, work: &Path) -> Result<(String, f64)> {
        let c = self.compile(text, work)?;
        let bytes = c.object.map_err(|e| {
            anyhow::anyhow!(
                "the unmutated {} does not compile this way:\n{}",
                self.file,
                e.join("\n")
            )
        })?;
        let ours = code_hash(&bytes)?;
        let built = fs::read(&self.built_object)
            .with_context(|| format!("reading {}", self.built_object.display()))?;
        if code_hash(&built)? != ours {
            bail!(
                "the unmutated {} compiled from the saved kbuild command is not the build's own \
                 {}: the build changed since; rebuild it",
                self.file,
                self.built_object.display()
            );
        }
        Ok((ours, c.seconds))
    }
}

/// Where a scratch compile writes the file (`<root>/<file>`): a path as
/// long as the build's own (`original`, as its command gave it) when the
/// scratch directory is short enough, so that the build's name can replace
/// it in the object byte for byte; else `<work>/src`.
fn scratch_root(work: &Path, original: &str, file: &str) -> PathBuf {
    let plain = work.join("src");
    let Some(prefix) = original
        .strip_suffix(file)
        .and_then(|p| p.strip_suffix('/'))
    else {
        return plain;
    };
    let mut root = format!("{}/s", work.display());
    if !original.starts_with('/') || root.len() > prefix.len() {
        return plain;
    }
    root.push_str(&"_".repeat(prefix.len() - root.len()));
    PathBuf::from(root)
}

/// Replace every occurrence of `from` in `bytes` by `to`, of the same
/// length.
fn replace_same_length(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    if from.is_empty() {
        return;
    }
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

/// One compile: its time, and the object or the first error lines.
pub struct Compiled {
    pub seconds: f64,
    pub object: std::result::Result<Vec<u8>, Vec<String>>,
    /// The compiler's messages, the scratch path shortened to the tree's.
    pub stderr: String,
}

/// The compiler's first error and the lines after it (at most 6), with the
/// scratch path shortened to the tree's.
pub fn first_errors(stderr: &str, src_root: &Path) -> Vec<String> {
    let prefix = format!("{}/", src_root.display());
    let lines: Vec<String> = stderr.lines().map(|l| l.replace(&prefix, "")).collect();
    let at = lines.iter().position(|l| l.contains("error")).unwrap_or(0);
    lines.into_iter().skip(at).take(6).collect()
}

/// A record of `mm/m.c`, function `f`, for unit tests.
#[cfg(test)]
pub fn test_record(id: &str, line: usize, verdict: Verdict) -> Record {
    Record {
        id: id.into(),
        file: "mm/m.c".into(),
        function: "f".into(),
        line,
        operator: "negate-cond".into(),
        verdict,
        duplicate_of: None,
        error: vec![],
        coverage: Reach::Unknown,
        object: None,
        compile_seconds: 1.0,
        under: vec![],
        killed_by: vec![],
        timings: None,
        run_dir: None,
        reason: None,
        scenarios: vec![],
        schema: None,
        listed: None,
    }
}

/// One line of `mutants.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub file: String,
    pub function: String,
    pub line: usize,
    pub operator: String,
    pub verdict: Verdict,
    /// A duplicate: the earlier mutant with the same code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Unviable: the compiler's first error lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// Whether a scenario ran the mutant's lines: covered, uncovered, or
    /// unknown (no coverage given).
    pub coverage: Reach,
    /// The code hash of its object (`code_hash`), when it compiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub compile_seconds: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub under: Vec<String>,
    /// Booted: the scenarios that failed on its kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub killed_by: Vec<super::boot::Kill>,
    /// Booted: where its time went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<super::boot::Timings>,
    /// Booted: the run directory of its kernel's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// `error`: why it has no verdict yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Booted with coverage: the scenarios that ran its lines, the only
    /// ones run on it (empty: every scenario asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<String>,
    /// Booted woven (`schema`): its number in the woven kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<u32>,
    /// The entry of the equivalent list (`equivalent::LIST`) that names
    /// it: a survivor so listed is `equivalent`; a detected one shows the
    /// entry is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<String>,
}

impl Record {
    /// The record as its check left it: without what a boot added
    /// (killers, timings, run, reason, scenarios, woven number, list entry).
    pub fn unbooted(self) -> Record {
        Record {
            killed_by: vec![],
            timings: None,
            run_dir: None,
            reason: None,
            scenarios: vec![],
            schema: None,
            listed: None,
            ..self
        }
    }
}

/// What a check directory is a check of (`check.json`); a resumed check
/// must be of the same build and source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub kernel_key: String,
    pub source: String,
    pub release: String,
    pub tree: PathBuf,
    pub obj_dir: PathBuf,
    /// Each checked file and the code hash of its unmutated object.
    pub baseline: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_from: Option<PathBuf>,
    /// `--shard K/N`: the part of the mutants this check takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::shard::Shard>,
}

/// The records already in `mutants.jsonl`, one per mutant in the order
/// they were first written: a later line of the same mutant (its boot's
/// verdict) replaces the earlier. A torn last line is dropped: its mutant
/// is checked (or booted) again.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(vec![]);
    };
    let mut out: Vec<Record> = vec![];
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for r in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
    {
        match at.get(&r.id) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.id.clone(), out.len());
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The mutation score of `records`: detected (killed, timed out,
/// crashed) over every mutant but the equivalent, duplicate and
/// unviable ones (uncovered, survived and not yet booted count against
/// it). None when no mutant counts.
pub fn score(records: &[&Record]) -> Option<(usize, usize)> {
    let counted = records.iter().filter(|r| !r.verdict.excluded()).count();
    let detected = records.iter().filter(|r| r.verdict.detected()).count();
    (counted > 0).then_some((detected, counted))
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// Counts per verdict, then per function (with each one's score), and the
/// compile times.
pub fn summary(records: &[Record], functions: &[String], coverage_given: bool) -> String {
    let mut by_verdict: BTreeMap<Verdict, usize> = BTreeMap::new();
    let mut by_fn: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in records {
        *by_verdict.entry(r.verdict).or_default() += 1;
        by_fn
            .entry(format!("{}:{}", r.file, r.function))
            .or_default()
            .push(r);
    }
    let all = records.len();
    let mut s = format!("\n{all} mutants checked\n\nby verdict:\n");
    // The check's verdicts always; a boot's when one occurred.
    let shown: Vec<Verdict> = Verdict::ALL
        .into_iter()
        .filter(|v| {
            matches!(
                v,
                Verdict::Unviable
                    | Verdict::Equivalent
                    | Verdict::Duplicate
                    | Verdict::Uncovered
                    | Verdict::Pending
            ) || by_verdict.contains_key(v)
        })
        .collect();
    for &v in &shown {
        let n = by_verdict.get(&v).copied().unwrap_or(0);
        s.push_str(&format!(
            "  {:<12}{n:>6}  {:5.1}%\n",
            v.name(),
            percent(n, all)
        ));
    }
    if !coverage_given {
        s.push_str("  uncovered: unknown (no coverage given; --coverage-from FILE)\n");
    }
    let listed = records
        .iter()
        .filter(|r| r.verdict == Verdict::Equivalent && r.listed.is_some())
        .count();
    if listed > 0 {
        s.push_str(&format!(
            "  of the equivalent, {listed} survived and are listed in {} with the reason\n",
            super::equivalent::LIST
        ));
    }
    for r in records
        .iter()
        .filter(|r| r.verdict.detected() && r.listed.is_some())
    {
        s.push_str(&format!(
            "  WRONG ENTRY: {} is listed as equivalent ({}) but was {}: remove the entry\n",
            r.id,
            r.listed.as_deref().unwrap_or(""),
            r.verdict.name()
        ));
    }
    let booted = records.iter().any(|r| r.timings.is_some());
    if booted {
        let refs: Vec<&Record> = records.iter().collect();
        if let Some((d, c)) = score(&refs) {
            let waiting = by_verdict.get(&Verdict::Pending).copied().unwrap_or(0)
                + by_verdict.get(&Verdict::Error).copied().unwrap_or(0);
            s.push_str(&format!(
                "\nmutation score: {:.1}% ({d} detected of {c}: killed, timed out or crashed, \
                 of all but the unviable, equivalent and duplicate)",
                percent(d, c)
            ));
            if waiting > 0 {
                s.push_str(&format!("; {waiting} not booted yet count as undetected"));
            }
            s.push('\n');
        }
    }
    s.push_str("\nby function:");
    let w = functions.iter().map(|k| k.len()).max().unwrap_or(0) + 2;
    s.push_str(&format!("\n  {:<w$}{:>6}", "", "all"));
    for v in &shown {
        s.push_str(&format!("{:>12}", v.name()));
    }
    if booted {
        s.push_str(&format!("{:>8}", "score"));
    }
    s.push('\n');
    for f in functions {
        let rs = by_fn.get(f).cloned().unwrap_or_default();
        s.push_str(&format!("  {f:<w$}{:>6}", rs.len()));
        for v in &shown {
            let n = rs.iter().filter(|r| r.verdict == *v).count();
            s.push_str(&format!("{n:>12}"));
        }
        if booted {
            match score(&rs) {
                Some((d, c)) => s.push_str(&format!("{:>7.1}%", percent(d, c))),
                None => s.push_str(&format!("{:>8}", "-")),
            }
        }
        s.push('\n');
    }
    let mut secs: Vec<f64> = records.iter().map(|r| r.compile_seconds).collect();
    secs.sort_by(f64::total_cmp);
    if let Some(&max) = secs.last() {
        s.push_str(&format!(
            "\ncompile seconds per mutant: median {:.2}, min {:.2}, max {max:.2}, total {:.0}\n",
            secs[secs.len() / 2],
            secs[0],
            secs.iter().sum::<f64>()
        ));
    }
    let timings: Vec<&super::boot::Timings> =
        records.iter().filter_map(|r| r.timings.as_ref()).collect();
    if !timings.is_empty() {
        let median = |f: fn(&super::boot::Timings) -> f64| {
            let mut v: Vec<f64> = timings.iter().map(|t| f(t)).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        s.push_str(&format!(
            "booted mutants: {}; seconds per mutant, median: {:.1} (compile {:.1}, link and \
             check {:.1}, boot and scenarios {:.1})\n",
            timings.len(),
            median(|t| t.total),
            median(|t| t.compile),
            median(|t| t.link),
            median(|t| t.run)
        ));
    }
    s
}

/// `cargo xtask mutate --check`.
pub fn run(a: &crate::cli::MutateArgs, sel: &Selection) -> Result<i32> {
    use crate::kernel::{self, build::Request, config, source::Source};
    let shard = a
        .shard
        .as_deref()
        .map(super::shard::Shard::parse)
        .transpose()?;
    let repo = crate::paths::repo_root();
    let req = Request {
        source: Source::parse(&a.kernel)?,
        patches: vec![],
        fragments: config::fragment_files(&repo, &a.fragments)?,
        base: crate::cli::ConfigBase::Tinyconfig,
        cover: vec![],
        jobs: 2,
    };
    let k = kernel::ensure(&req)?;
    eprintln!(
        "mutate: checking against {} {} (objects {})",
        k.source,
        k.release,
        k.obj_dir.display()
    );
    let files = super::generate(&k.tree, sel)?;
    let coverage: Option<Coverage> = a
        .coverage_from
        .as_deref()
        .map(crate::coverage::load)
        .transpose()?;

    let dir = match &a.resume {
        Some(d) => {
            let d = crate::paths::absolute(d);
            if !d.join("check.json").is_file() {
                return Err(bad_input(format!(
                    "--resume {}: no check.json there; give a results/mutate-<id> directory \
                     that `mutate --check` made",
                    d.display()
                )));
            }
            d
        }
        None => {
            let d = crate::paths::absolute(&a.results_dir)
                .join(format!("mutate-{}", crate::run::new_run_id()));
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
    };
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&dir)
        .context("creating the scratch directory")?;

    // Each file's recipe, checked to rebuild the build's own object.
    let mut recipes = BTreeMap::new();
    let mut baseline = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for fm in &files {
        let text = fs::read_to_string(k.tree.join(&fm.file))?;
        let recipe = Recipe::of_build(&k.obj_dir, &k.tree, &fm.file)?;
        let (hash, secs) = recipe.check_baseline(&text, work.path())?;
        eprintln!(
            "mutate: {} compiled unmutated in {secs:.2}s: the build's own object",
            fm.file
        );
        if let Some(cov) = &coverage {
            check_coverage_source(cov, &fm.file, &text, a.coverage_from.as_deref().unwrap())?;
        }
        baseline.insert(fm.file.clone(), hash);
        recipes.insert(fm.file.clone(), recipe);
        sources.insert(fm.file.clone(), text);
    }
    let header = Header {
        kernel_key: k.key.clone(),
        source: k.source.clone(),
        release: k.release.clone(),
        tree: k.tree.clone(),
        obj_dir: k.obj_dir.clone(),
        baseline,
        coverage_from: a.coverage_from.clone(),
        shard,
    };
    let header_path = dir.join("check.json");
    if a.resume.is_some() {
        let old: Header = serde_json::from_slice(&fs::read(&header_path)?)
            .with_context(|| format!("reading {}", header_path.display()))?;
        if old.kernel_key != header.kernel_key || old.baseline != header.baseline {
            return Err(bad_input(format!(
                "--resume {}: that check was of kernel build {} ({}), this one is {}; resume \
                 it with the same --kernel",
                dir.display(),
                old.kernel_key,
                old.source,
                header.kernel_key
            )));
        }
        if old.shard != header.shard {
            let name = |s: Option<super::shard::Shard>| match s {
                Some(s) => format!("--shard {s}"),
                None => "no --shard".to_string(),
            };
            return Err(bad_input(format!(
                "--resume {}: that check was made with {}, this one has {}; resume it with \
                 the same --shard",
                dir.display(),
                name(old.shard),
                name(header.shard)
            )));
        }
    } else {
        crate::kernel::build::write_atomic(&header_path, &serde_json::to_vec_pretty(&header)?)?;
    }

    let jsonl = dir.join("mutants.jsonl");
    let mut records = read_records(&jsonl)?;
    let done: BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
    let mut earlier: BTreeMap<String, String> = BTreeMap::new();
    for r in &records {
        if let Some(o) = &r.object {
            earlier.entry(o.clone()).or_insert_with(|| r.id.clone());
        }
    }
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&jsonl)
        .with_context(|| format!("opening {}", jsonl.display()))?;
    let mut candidates: Vec<Candidate> = vec![];
    for fm in &files {
        let text = &sources[&fm.file];
        for m in &fm.mutants {
            candidates.push(Candidate {
                id: m.id.clone(),
                file: m.file.clone(),
                function: m.function.clone(),
                line: m.line,
                last_line: continued_to(text, m.line + text[m.start..m.end].matches('\n').count()),
                operator: m.operator.name().to_string(),
                under: m.under.clone(),
                text: Text::Generated(m),
                diff: m.diff.clone(),
            });
        }
    }
    for p in &a.mutant_patches {
        candidates.push(patch_candidate(p, &files, &sources)?);
    }
    if let Some(shard) = shard {
        let all = candidates.len();
        candidates.retain(|c| shard.contains(&c.file, c.line));
        eprintln!(
            "mutate: shard {shard}: {} of the {all} selected mutants",
            candidates.len()
        );
    }
    // A resumed run's coverage file may be newer than the one its check
    // used: a mutant it found uncovered whose lines some scenario now runs
    // is pending again.
    if let Some(cv) = &coverage {
        let reached = rejudge_uncovered(cv, &candidates, &mut records, &mut out)?;
        if reached > 0 {
            eprintln!(
                "mutate: {reached} mutant(s) recorded uncovered are run by some scenario of the \
                 coverage file given now: pending"
            );
        }
    }
    let total = candidates.len();
    eprintln!(
        "mutate: {total} mutants, {} already checked; results in {}",
        candidates.iter().filter(|c| done.contains(&c.id)).count(),
        dir.display()
    );
    for (n, c) in candidates.iter().enumerate() {
        if done.contains(&c.id) {
            continue;
        }
        if hmmlab_harness::interrupt::requested() {
            eprintln!(
                "mutate: interrupted; resume with --resume {}",
                dir.display()
            );
            break;
        }
        let source = &sources[&c.file];
        let text = match &c.text {
            Text::Generated(m) => compiled_text(source, m),
            Text::Patched(t) => t.clone(),
        };
        let compiled = recipes[&c.file].compile(&text, work.path())?;
        let (object, error) = match compiled.object {
            Ok(bytes) => (Some(code_hash(&bytes)?), vec![]),
            Err(e) => (None, e),
        };
        let cov = coverage.as_ref().and_then(|cv| cv.files.get(&c.file));
        let reach = reach(cov, &c.function, c.line, c.last_line);
        let (verdict, duplicate_of) = classify(
            object.as_deref(),
            &header.baseline[&c.file],
            &earlier,
            reach,
        );
        if let Some(o) = &object {
            earlier.entry(o.clone()).or_insert_with(|| c.id.clone());
        }
        let r = Record {
            id: c.id.clone(),
            file: c.file.clone(),
            function: c.function.clone(),
            line: c.line,
            operator: c.operator.clone(),
            verdict,
            duplicate_of,
            error,
            coverage: reach,
            object,
            compile_seconds: (compiled.seconds * 1000.0).round() / 1000.0,
            under: c.under.clone(),
            killed_by: vec![],
            timings: None,
            run_dir: None,
            reason: None,
            scenarios: vec![],
            schema: None,
            listed: None,
        };
        let mut line = serde_json::to_string(&r)?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()?;
        eprintln!(
            "[{}/{total}] {:<10} {:.2}s  {}{}",
            n + 1,
            r.verdict.name(),
            r.compile_seconds,
            r.id,
            r.duplicate_of
                .as_deref()
                .map(|d| format!(" (= {d})"))
                .unwrap_or_default()
        );
        records.push(r);
    }
    let checked: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut complete = !hmmlab_harness::interrupt::requested()
        && candidates.iter().all(|c| checked.contains(c.id.as_str()));
    if a.run && complete {
        complete = boot_pending(
            a,
            &k,
            &dir,
            work.path(),
            &recipes,
            &sources,
            coverage.as_ref(),
            &candidates,
            &mut records,
            &mut out,
        )?;
    }
    let list = super::equivalent::load_repo()?;
    relist(
        &list,
        &k.release,
        &sources,
        &candidates,
        &mut records,
        &mut out,
    )?;
    drop(out);
    let ids: BTreeSet<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
    let selected: Vec<Record> = records
        .into_iter()
        .filter(|r| ids.contains(r.id.as_str()))
        .collect();
    let functions = functions_with(&files, |file, function| {
        candidates
            .iter()
            .any(|c| c.file == file && c.function == function)
    });
    write_elements(&dir, &selected, &sources, &candidates)?;
    print!("{}", summary(&selected, &functions, coverage.is_some()));
    println!("results: {}", jsonl.display());
    drop(File::open(&jsonl)?);
    if selected.len() < ids.len() || !complete {
        eprintln!(
            "mutate: {} of {} checked{}; resume with --resume {}",
            selected.len(),
            ids.len(),
            if a.run {
                ", not every pending one booted"
            } else {
                ""
            },
            dir.display()
        );
        return Ok(hmmlab_harness::exit::INTERRUPTED);
    }
    if a.run {
        // One line per mutant, its last verdict.
        let mut text = String::new();
        for r in read_records(&jsonl)? {
            text.push_str(&serde_json::to_string(&r)?);
            text.push('\n');
        }
        crate::kernel::build::write_atomic(&jsonl, text.as_bytes())?;
        print_survivors(&selected, &|id| {
            candidates
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.diff.clone())
        });
    }
    Ok(hmmlab_harness::exit::OK)
}

/// The uncovered records of `candidates` whose lines `cv` says some
/// scenario runs become pending (appended to `out`); how many.
fn rejudge_uncovered(
    cv: &crate::coverage::model::Coverage,
    candidates: &[Candidate],
    records: &mut [Record],
    out: &mut impl Write,
) -> Result<usize> {
    let mut reached = 0;
    for c in candidates {
        let Some(r) = records.iter_mut().rev().find(|r| r.id == c.id) else {
            continue;
        };
        let cov = cv.files.get(&c.file);
        let unreached = r.verdict == Verdict::Uncovered
            || (r.verdict == Verdict::Equivalent && r.listed.is_some() && r.timings.is_none());
        if unreached && reach(cov, &c.function, c.line, c.last_line) == Reach::Covered {
            r.verdict = Verdict::Pending;
            r.coverage = Reach::Covered;
            r.listed = None;
            let mut line = serde_json::to_string(&*r)?;
            line.push('\n');
            out.write_all(line.as_bytes())?;
            reached += 1;
        }
    }
    Ok(reached)
}

/// Bring the booted records in line with the equivalent list: a survivor
/// an entry names becomes `equivalent` (the entry's place kept in
/// `listed`), one no entry names any more goes back to `survived`, and a
/// detected one an entry names keeps its verdict with the entry noted (the
/// summary says the entry is wrong). Changed records are appended to
/// mutants.jsonl.
fn relist(
    list: &[super::equivalent::Entry],
    release: &str,
    sources: &BTreeMap<String, String>,
    candidates: &[Candidate],
    records: &mut [Record],
    out: &mut File,
) -> Result<()> {
    let mutant_of = |id: &str| match candidates.iter().find(|c| c.id == id)?.text {
        Text::Generated(m) => Some(m),
        Text::Patched(_) => None,
    };
    for i in apply_list(list, release, sources, &mutant_of, records) {
        let mut line = serde_json::to_string(&records[i])?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The equivalent list as it stands now, applied to the records of a run
/// (a resumed one, or shards merged): a booted survivor or an unreached
/// mutant an entry names becomes equivalent, and one listed by an entry
/// that is gone goes back to what its boot (or coverage) said. Returns the
/// indices of the records it changed. `mutant_of` gives a generated
/// mutant's text by id (None for a hand-written patch: never listed).
pub(super) fn apply_list<'m>(
    list: &[super::equivalent::Entry],
    release: &str,
    sources: &BTreeMap<String, String>,
    mutant_of: &dyn Fn(&str) -> Option<&'m Mutant>,
    records: &mut [Record],
) -> Vec<usize> {
    use super::equivalent::{find, Change};
    let mut changed = vec![];
    for (i, r) in records.iter_mut().enumerate() {
        // Booted mutants, and those no scenario reached: an entry may say
        // why none can (a function test_hmm never calls).
        let unreached = r.coverage == Reach::Uncovered
            && (r.verdict == Verdict::Uncovered
                || (r.verdict == Verdict::Equivalent && r.listed.is_some()));
        if r.timings.is_none() && !unreached {
            continue;
        }
        let Some(m) = mutant_of(&r.id) else {
            continue;
        };
        let entry = find(
            list,
            &Change {
                file: &m.file,
                function: &m.function,
                operator: m.operator.name(),
                original: &m.original,
                mutated: &m.mutated,
                line: &sources
                    .get(&m.file)
                    .map(|t| super::equivalent::context_of(t, m.line))
                    .unwrap_or_default(),
                index: m.index,
            },
            release,
        );
        let listed = entry.map(|e| e.at.clone());
        let verdict = match (r.verdict, &listed) {
            (Verdict::Survived | Verdict::Uncovered, Some(_)) => Verdict::Equivalent,
            (Verdict::Equivalent, None) if r.listed.is_some() && r.timings.is_none() => {
                Verdict::Uncovered
            }
            (Verdict::Equivalent, None) if r.listed.is_some() => Verdict::Survived,
            (v, _) => v,
        };
        if verdict != r.verdict || listed != r.listed {
            r.verdict = verdict;
            r.listed = listed;
            changed.push(i);
        }
    }
    changed
}

/// `file:function` of every function of `files` (in their order) that
/// `has` mutants in: the rows of the summary.
pub fn functions_with(
    files: &[super::FileMutants],
    has: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut functions = vec![];
    for fm in files {
        for f in &fm.functions {
            let key = format!("{}:{}", fm.file, f.name);
            if has(&fm.file, &f.name) && !functions.contains(&key) {
                functions.push(key);
            }
        }
    }
    functions
}

/// The verdicts of `--again`: only those a boot gives.
pub fn again_verdicts(names: &[String]) -> Result<Vec<Verdict>> {
    names
        .iter()
        .map(|n| {
            Verdict::ALL
                .into_iter()
                .filter(|v| {
                    matches!(
                        v,
                        Verdict::Survived | Verdict::Timeout | Verdict::Killed | Verdict::Crashed
                    )
                })
                .find(|v| v.name() == n)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--again {n}: not a verdict a boot gives; use survived, timeout, killed or crashed"
                    )
                })
        })
        .collect()
}

/// `--run`: boot each pending mutant (and the uncovered with
/// `--boot-uncovered`, and those whose boot failed before), after the
/// unmutated code passed the same way. False when interrupted.
///
/// The generated mutants of each file are woven into one object
/// (`schema`): one link, then one boot per mutant with its number on the
/// command line. The woven kernel with no mutant active is the unmutated
/// run; when it does not pass, or a mutant does not weave, those mutants
/// are linked one by one after the plain unmutated kernel passed.
#[allow(clippy::too_many_arguments)]
fn boot_pending(
    a: &crate::cli::MutateArgs,
    k: &crate::kernel::Kernel,
    dir: &Path,
    work: &Path,
    recipes: &BTreeMap<String, Recipe>,
    sources: &BTreeMap<String, String>,
    coverage: Option<&Coverage>,
    candidates: &[Candidate],
    records: &mut [Record],
    out: &mut File,
) -> Result<bool> {
    use super::boot::{self, Selected};
    let again = again_verdicts(&a.again)?;
    let wanted = |v: Verdict| {
        matches!(v, Verdict::Pending | Verdict::Error)
            || (a.boot_uncovered && v == Verdict::Uncovered)
            || again.contains(&v)
    };
    let todo: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            records
                .iter()
                .rev()
                .find(|r| r.id == c.id)
                .is_some_and(|r| wanted(r.verdict))
        })
        .collect();
    if todo.is_empty() {
        eprintln!("mutate: no mutant to boot");
        return Ok(true);
    }
    let runs = dir.join("runs");
    let asked = Selected::asked(a);
    let scenario_dir = dir.join("scenarios");
    let copied = boot::snapshot_scenarios(
        &crate::paths::repo_root().join(&a.scenario_dir),
        &scenario_dir,
    )?;
    eprintln!(
        "mutate: {copied} scenario files copied to {}: every boot of this run reads them",
        scenario_dir.display()
    );
    let base_args = boot::run_args(a, &scenario_dir, runs.join("unmutated"), None, &asked);
    let inputs = crate::run::inputs(&base_args)?;
    let known: Vec<String> = inputs.scenarios.iter().map(|s| s.name.clone()).collect();
    let uncharted = coverage
        .filter(|_| !a.all_scenarios)
        .map(|cv| boot::uncharted(cv, &known))
        .unwrap_or_default();
    if !uncharted.is_empty() {
        eprintln!(
            "mutate: {} scenario(s) the coverage file never saw run on every mutant: {} (run \
             `cargo xtask coverage` again to narrow them to the mutants whose lines they run)",
            uncharted.len(),
            uncharted.join(", ")
        );
    }
    let mut b = Booter {
        a,
        uncharted,
        scenario_dir: scenario_dir.clone(),
        coverage,
        runs: runs.clone(),
        known,
        asked,
        guest: crate::guest::build(&k.uapi_header())?,
        ws: boot::workspace(k, work)?,
        limit: None,
        limits: BTreeMap::new(),
        done: 0,
        total: todo.len(),
        started: Instant::now(),
        totals: vec![],
        shown: None,
    };
    b.shown = Some(Progress::counted(
        "mutate",
        "mutants",
        Some(todo.len() as u64),
    ));
    let mut left: Vec<&Candidate> = todo.clone();

    if !a.no_schemata {
        let mut files: Vec<&str> = vec![];
        for c in &todo {
            if matches!(c.text, Text::Generated(_)) && !files.contains(&c.file.as_str()) {
                files.push(&c.file);
            }
        }
        for file in files {
            let ms: Vec<&Mutant> = todo
                .iter()
                .filter(|c| c.file == file)
                .filter_map(|c| match c.text {
                    Text::Generated(m) => Some(m),
                    Text::Patched(_) => None,
                })
                .collect();
            let Some((woven, object, secs)) =
                weave_compiled(&recipes[file], &sources[file], &ms, work, dir)?
            else {
                continue;
            };
            let label = format!(
                "schemata {} {file} ({} mutants)",
                k.key,
                woven.numbers.len()
            );
            let linked = b.ws.link(&[(&recipes[file], object)], &boot::tag(&label))?;
            b.say(&format!(
                "mutate: {} mutants of {file} woven into one kernel: compiled in {secs:.1}s, \
                 linked in {:.1}s{}",
                woven.numbers.len(),
                linked.seconds,
                if woven.left_out.is_empty() {
                    String::new()
                } else {
                    format!("; {} linked on their own", woven.left_out.len())
                }
            ));
            let kernel = boot::kernel(k, &b.ws, &label, &linked);
            let base_dir = runs.join(format!("woven-{}", boot::file_name(file)));
            match b.baseline(&base_args, &inputs, &kernel, base_dir) {
                Ok(()) => {}
                Err(e) => {
                    b.say(&format!(
                        "mutate: {e:#}\nmutate: so the mutants of {file} are linked one by one"
                    ));
                    continue;
                }
            }
            for c in todo.iter().filter(|c| c.file == file) {
                let Some(n) = woven.number(&c.id) else {
                    continue;
                };
                if hmmlab_harness::interrupt::requested() {
                    return Ok(false);
                }
                let t = Instant::now();
                let Some(rec) = records.iter().rev().find(|r| r.id == c.id).cloned() else {
                    continue;
                };
                let rec = match b.boot(c, rec, &kernel, Some(n), Timings::default(), t)? {
                    Some(r) => r,
                    None => return Ok(false),
                };
                save(rec, records, out, &mut b, t)?;
                left.retain(|x| x.id != c.id);
            }
        }
    }
    if left.is_empty() {
        return Ok(true);
    }

    // The rest, each linked on its own, after the unmutated kernel linked
    // and run the same way (unless a woven kernel already passed).
    if b.limit.is_none() {
        let first = &left[0].file;
        let own = fs::read(&recipes[first].built_object)?;
        let label = format!("unmutated {}", k.key);
        let linked = b.ws.link(&[(&recipes[first], own)], &boot::tag(&label))?;
        b.say(&format!(
            "mutate: unmutated kernel linked in {:.1}s",
            linked.seconds
        ));
        let kernel = boot::kernel(k, &b.ws, &label, &linked);
        b.baseline(&base_args, &inputs, &kernel, runs.join("unmutated"))?;
    }
    for c in left {
        if hmmlab_harness::interrupt::requested() {
            return Ok(false);
        }
        let t = Instant::now();
        let Some(mut rec) = records.iter().rev().find(|r| r.id == c.id).cloned() else {
            continue;
        };
        let text = match &c.text {
            Text::Generated(m) => compiled_text(&sources[&c.file], m),
            Text::Patched(t) => t.clone(),
        };
        let compiled = recipes[&c.file].compile(&text, work)?;
        let bytes = compiled.object.map_err(|e| {
            anyhow::anyhow!(
                "{} compiled at the check but not now:\n{}",
                c.id,
                e.join("\n")
            )
        })?;
        if rec.object.as_deref() != Some(code_hash(&bytes)?.as_str()) {
            bail!(
                "{}: its object is not the one the check recorded: the build changed since; \
                 check again without --resume",
                c.id
            );
        }
        let label = format!("mutant {}", c.id);
        let mut timings = Timings {
            compile: compiled.seconds,
            ..Default::default()
        };
        let rec = match b.ws.link(&[(&recipes[&c.file], bytes)], &boot::tag(&label)) {
            Err(e) => {
                rec.verdict = Verdict::Error;
                rec.reason = Some(format!("{e:#}"));
                rec.killed_by = vec![];
                rec.timings = None;
                rec
            }
            Ok(linked) => {
                timings.link = linked.seconds;
                let kernel = boot::kernel(k, &b.ws, &label, &linked);
                match b.boot(c, rec, &kernel, None, timings, t)? {
                    Some(r) => r,
                    None => return Ok(false),
                }
            }
        };
        save(rec, records, out, &mut b, t)?;
    }
    Ok(true)
}

use super::boot::Timings;

/// What every boot of a `--run` shares.
struct Booter<'a> {
    a: &'a crate::cli::MutateArgs,
    /// The run's copy of the scenario files (`boot::snapshot_scenarios`).
    scenario_dir: PathBuf,
    coverage: Option<&'a Coverage>,
    runs: PathBuf,
    known: Vec<String>,
    /// Scenarios of the run that the coverage file has no line for (newer
    /// than it): they run on every mutant.
    uncharted: Vec<String>,
    asked: super::boot::Selected,
    guest: PathBuf,
    ws: crate::kernel::relink::Workspace,
    /// The per-scenario limit, from the first unmutated run that passed.
    limit: Option<f64>,
    /// Each instance's limit, from that run (`boot::instance_limits`).
    limits: BTreeMap<String, f64>,
    done: usize,
    total: usize,
    /// When booting began, and each booted mutant's own seconds: the wall
    /// time per mutant, said at the end (`Drop`).
    started: Instant,
    totals: Vec<f64>,
    /// Mutants booted of all, and the time left at the median so far.
    shown: Option<Progress>,
}

impl Drop for Booter<'_> {
    fn drop(&mut self) {
        // Its live line is gone before the last line is printed.
        self.shown = None;
        if self.totals.is_empty() {
            return;
        }
        let wall = self.started.elapsed().as_secs_f64();
        let mut v = self.totals.clone();
        let (median, _, _) = crate::bench::stats(&mut v);
        let own: f64 = self.totals.iter().sum();
        eprintln!(
            "mutate: {} mutants booted in {wall:.0}s: {median:.1}s each (median), {:.1}s \
             each with the shared work (woven compile, links, unmutated runs: {:.0}s)",
            self.totals.len(),
            wall / self.totals.len() as f64,
            wall - own
        );
    }
}

impl Booter<'_> {
    /// Print `line` on stderr, above the live progress line when there is one.
    fn say(&self, line: &str) {
        match &self.shown {
            Some(p) => p.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The progress after a mutant: done of all, and the time left at the
    /// median time of a booted mutant so far.
    fn progress(&mut self) {
        let mut v = self.totals.clone();
        let eta = (!v.is_empty()).then(|| {
            let (median, _, _) = crate::bench::stats(&mut v);
            let left = self.total.saturating_sub(self.done) as u64;
            crate::progress::items_eta(
                Duration::from_secs_f64(median.max(0.0)),
                left,
                1,
                Duration::ZERO,
            )
        });
        if let Some(p) = self.shown.as_mut() {
            p.update(self.done as u64, eta, "");
            p.line_now();
        }
    }

    /// Run every asked scenario on `kernel` with no mutant active: all
    /// must pass, or a mutant's failure would mean nothing. Sets the limit.
    fn baseline(
        &mut self,
        base_args: &crate::cli::RunArgs,
        inputs: &crate::run::Inputs,
        kernel: &crate::kernel::Kernel,
        results: PathBuf,
    ) -> Result<()> {
        let mut args = base_args.clone();
        args.results_dir = results;
        let t = Instant::now();
        let (report, run_dir) = crate::run::run_on(&args, inputs, kernel, &self.guest)?;
        let _ = fs::remove_file(run_dir.join("initramfs.cpio"));
        match super::boot::outcome(&report) {
            Ok((Verdict::Survived, _)) => {}
            Ok((_, kills)) => {
                let names: Vec<String> = kills
                    .iter()
                    .map(|k| format!("{} ({})", k.scenario, k.outcome))
                    .collect();
                bail!(
                    "the unmutated kernel ({}) does not pass: {} (run {}); a mutant's failure \
                     would mean nothing. Fix those scenarios, or leave them out with -s",
                    kernel.patches.join(", "),
                    names.join(", "),
                    run_dir.display()
                );
            }
            Err(why) => bail!(
                "the unmutated kernel's run ({}) did not end: {why} (run {})",
                kernel.patches.join(", "),
                run_dir.display()
            ),
        }
        let machine_limit = inputs
            .machine
            .accel(hmmlab_harness::machine::Accel::Tcg)
            .scenario_timeout_s;
        let limit = super::boot::scenario_timeout(&report, machine_limit);
        if self.limits.is_empty() {
            self.limits = super::boot::instance_limits(&report.scenarios);
        }
        self.say(&format!(
            "mutate: the unmutated kernel ({}) passes {} scenarios in {:.1}s; limit per \
             scenario for mutants: 3 times its time there, 10s at least (at most {limit:.0}s)",
            kernel.patches.join(", "),
            report.scenarios.len(),
            t.elapsed().as_secs_f64()
        ));
        self.limit.get_or_insert(limit);
        Ok(())
    }

    /// Boot `kernel` for `c` (with `hmmlab.mutant=N` when woven) and run
    /// the scenarios that ran its lines: its record with the verdict. None
    /// when interrupted.
    fn boot(
        &mut self,
        c: &Candidate,
        mut rec: Record,
        kernel: &crate::kernel::Kernel,
        number: Option<u32>,
        mut timings: Timings,
        t: Instant,
    ) -> Result<Option<Record>> {
        use super::boot::{self, Selected};
        let mdir = self.runs.join(boot::file_name(&c.id));
        fs::create_dir_all(&mdir)?;
        fs::write(mdir.join("mutant.diff"), &c.diff)?;
        rec.killed_by = vec![];
        rec.reason = None;
        rec.schema = number;
        // The scenarios that ran its lines, when coverage says.
        let sel = self
            .coverage
            .filter(|_| !self.a.all_scenarios)
            .and_then(|cv| cv.files.get(&c.file))
            .and_then(|fc| {
                let over = instances_over(fc, &c.function, c.line, c.last_line);
                Selected::covering(&over, &self.known)
            })
            .map(|s| s.with(&self.uncharted));
        rec.scenarios = sel
            .as_ref()
            .map(|s| s.scenarios.clone())
            .unwrap_or_default();
        let sel = sel.unwrap_or_else(|| self.asked.clone());
        let mut args = boot::run_args(self.a, &self.scenario_dir, mdir.clone(), self.limit, &sel);
        args.instance_limits = self.limits.clone();
        if let Some(n) = number {
            args.append = vec![format!("{}={n}", super::schema::PARAM)];
        }
        let r = Instant::now();
        let result = crate::run::inputs(&args)
            .and_then(|inputs| crate::run::run_on(&args, &inputs, kernel, &self.guest));
        timings.run = r.elapsed().as_secs_f64();
        match result {
            Ok((report, run_dir)) => {
                let _ = fs::remove_file(run_dir.join("initramfs.cpio"));
                if report.status == hmmlab_harness::report::RunStatus::Interrupted {
                    return Ok(None);
                }
                let said = number.map(|n| {
                    let console =
                        fs::read_to_string(run_dir.join("console.log")).unwrap_or_default();
                    (n, console.contains(&super::schema::announcement(n)))
                });
                rec.run_dir = Some(run_dir);
                match (boot::outcome(&report), said) {
                    (_, Some((n, false))) => {
                        rec.verdict = Verdict::Error;
                        rec.reason = Some(format!(
                            "the woven kernel never said \"{}\": mutant {n} may not have been \
                             active",
                            super::schema::announcement(n)
                        ));
                    }
                    (Ok((v, kills)), _) => {
                        rec.verdict = v;
                        rec.killed_by = kills;
                    }
                    (Err(why), _) => {
                        rec.verdict = Verdict::Error;
                        rec.reason = Some(why);
                    }
                }
            }
            Err(e) if crate::fail::exit_code(&e) == hmmlab_harness::exit::INTERRUPTED => {
                return Ok(None)
            }
            Err(e) => {
                rec.verdict = Verdict::Error;
                rec.reason = Some(format!("{e:#}"));
            }
        }
        timings.total = t.elapsed().as_secs_f64();
        rec.timings = Some(timings);
        Ok(Some(rec))
    }
}

/// Write `rec` (its timings rounded) to mutants.jsonl and the records, and
/// say it.
fn save(
    mut rec: Record,
    records: &mut [Record],
    out: &mut File,
    b: &mut Booter,
    t: Instant,
) -> Result<()> {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    if let Some(tm) = rec.timings.as_mut() {
        tm.compile = round(tm.compile);
        tm.link = round(tm.link);
        tm.run = round(tm.run);
        tm.total = round(t.elapsed().as_secs_f64());
    }
    let mut line = serde_json::to_string(&rec)?;
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()?;
    b.done += 1;
    b.totals.push(t.elapsed().as_secs_f64());
    let why = match rec.verdict {
        Verdict::Error => format!(": {}", rec.reason.as_deref().unwrap_or("")),
        _ if !rec.killed_by.is_empty() => format!(
            " by {}",
            rec.killed_by
                .iter()
                .map(|k| k.scenario.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    };
    b.say(&format!(
        "mutate: [{}/{}] {:<9} {:.1}s  {}{}{why}",
        b.done,
        b.total,
        rec.verdict.name(),
        t.elapsed().as_secs_f64(),
        rec.id,
        rec.schema
            .map(|n| format!(" (woven #{n})"))
            .unwrap_or_default(),
    ));
    b.progress();
    if let Some(slot) = records.iter_mut().rev().find(|r| r.id == rec.id) {
        *slot = rec;
    }
    Ok(())
}

/// Weave `ms` (mutants of `recipe`'s file) and compile the woven file,
/// leaving out the mutants on lines the compiler rejects until it
/// compiles (at most 8 rounds). The woven text and what was left out are
/// kept in `dir/woven/`. None when nothing weaves.
fn weave_compiled(
    recipe: &Recipe,
    source: &str,
    ms: &[&Mutant],
    work: &Path,
    dir: &Path,
) -> Result<Option<(super::schema::Woven, Vec<u8>, f64)>> {
    use super::schema;
    let tree = super::gen::parse(source)?;
    let mut skip: BTreeSet<String> = BTreeSet::new();
    let mut secs = 0.0;
    let keep = dir.join("woven");
    fs::create_dir_all(&keep)?;
    let name = super::boot::file_name(&recipe.file);
    for _round in 0..8 {
        let woven = schema::weave(source, &tree, ms, &skip)?;
        if woven.numbers.is_empty() {
            return Ok(None);
        }
        let text = schema::kernel_text(&woven);
        fs::write(keep.join(&name), &text)?;
        let compiled = recipe.compile(&text, work)?;
        secs += compiled.seconds;
        match compiled.object {
            Ok(bytes) => {
                let left: Vec<String> = woven
                    .left_out
                    .iter()
                    .map(|(id, why)| format!("{id}\t{why}\n"))
                    .collect();
                fs::write(keep.join(format!("{name}.left-out")), left.concat())?;
                return Ok(Some((woven, bytes, secs)));
            }
            Err(_) => {
                let lines = schema::rejected_lines(&compiled.stderr, &recipe.file);
                let mut more = 0;
                for l in lines {
                    for n in woven.at_line(l) {
                        if let Some((id, _)) = woven.numbers.iter().find(|(_, x)| *x == n) {
                            more += usize::from(skip.insert(id.clone()));
                        }
                    }
                }
                if more == 0 {
                    eprintln!(
                        "mutate: the woven {} does not compile and no mutant is to blame; its \
                         mutants are linked one by one:\n{}",
                        recipe.file,
                        first_errors(&compiled.stderr, Path::new("/")).join("\n")
                    );
                    return Ok(None);
                }
            }
        }
    }
    eprintln!(
        "mutate: the woven {} still does not compile after 8 rounds; its mutants are linked \
         one by one",
        recipe.file
    );
    Ok(None)
}

/// `mutation-report.json` (`elements`) of the records so far.
fn write_elements(
    dir: &Path,
    records: &[Record],
    sources: &BTreeMap<String, String>,
    candidates: &[Candidate],
) -> Result<()> {
    let generated: Vec<&Mutant> = candidates
        .iter()
        .filter_map(|c| match &c.text {
            Text::Generated(m) => Some(*m),
            Text::Patched(_) => None,
        })
        .collect();
    write_report(dir, records, sources, &generated)
}

/// `mutation-report.json` in `dir`: `records` over each file's source,
/// with the spans of the generated mutants among them; and `report.html`,
/// the page of the same (`html::render`).
pub fn write_report(
    dir: &Path,
    records: &[Record],
    sources: &BTreeMap<String, String>,
    generated: &[&Mutant],
) -> Result<()> {
    use super::elements::{report, Span};
    let spans: BTreeMap<String, Span> = generated
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                Span {
                    start: m.start,
                    end: m.end,
                    replacement: Some(m.mutated.clone()),
                    description: Some(m.description.clone()),
                },
            )
        })
        .collect();
    let r = report(records, sources, &spans);
    crate::kernel::build::write_atomic(
        &dir.join("mutation-report.json"),
        &serde_json::to_vec(&r)?,
    )?;
    // The page, with what check.json says of the build.
    let mut facts = vec![];
    if let Ok(h) = fs::read(dir.join("check.json"))
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice::<Header>(&b)?))
    {
        facts.push(("kernel".to_string(), format!("{} {}", h.source, h.release)));
        facts.push(("build".to_string(), h.kernel_key.clone()));
        if let Some(s) = h.shard {
            facts.push(("shard".to_string(), s.to_string()));
        }
        if let Some(c) = &h.coverage_from {
            facts.push(("coverage from".to_string(), c.display().to_string()));
        }
    }
    facts.push((
        "records".to_string(),
        dir.join("mutants.jsonl").display().to_string(),
    ));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let html = super::html::render(
        &format!("mutation run {name}"),
        &facts,
        records,
        sources,
        generated,
    );
    crate::kernel::build::write_atomic(&dir.join("report.html"), html.as_bytes())
}

/// The survivors and the uncovered, each with its diff (`diff_of` its
/// id): what the suite would miss.
pub fn print_survivors(records: &[Record], diff_of: &dyn Fn(&str) -> Option<String>) {
    for (v, title) in [
        (Verdict::Survived, "survived (no scenario failed)"),
        (Verdict::Uncovered, "uncovered (no scenario ran its lines)"),
    ] {
        let these: Vec<&Record> = records.iter().filter(|r| r.verdict == v).collect();
        if these.is_empty() {
            continue;
        }
        println!("\n{} {title}:", these.len());
        for r in these {
            println!("\n{}", r.id);
            if let Some(d) = diff_of(&r.id) {
                print!("{d}");
            }
        }
    }
}

/// One mutant to check.
struct Candidate<'a> {
    id: String,
    file: String,
    function: String,
    line: usize,
    last_line: usize,
    operator: String,
    under: Vec<String>,
    text: Text<'a>,
    /// What `patch -p1` applies to make it.
    diff: String,
}

enum Text<'a> {
    Generated(&'a Mutant),
    /// A hand-written mutant (`--mutant-patch`): the whole patched file.
    Patched(String),
}

/// The operator name of a hand-written mutant.
pub const PATCH_OPERATOR: &str = "patch";

/// A hand-written mutant: a patch (`patch -p1` at the top of the tree) of
/// one selected file, applied to a scratch copy. Its id is
/// `FILE:FUNCTION:LINE:patch:NAME` (NAME: the patch's file name without
/// its extension), LINE its first changed line.
fn patch_candidate<'a>(
    path: &Path,
    files: &[super::FileMutants],
    sources: &BTreeMap<String, String>,
) -> Result<Candidate<'a>> {
    let bad = |why: String| {
        bad_input(format!(
            "--mutant-patch {}: {why}; give a unified diff of one file of the selection \
             (`--- a/mm/migrate_device.c`, `+++ b/mm/migrate_device.c`)",
            path.display()
        ))
    };
    let diff = fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let targets: BTreeSet<&str> = diff
        .lines()
        .filter_map(|l| l.strip_prefix("+++ b/"))
        .map(|l| l.split('\t').next().unwrap_or(l).trim())
        .collect();
    let [file] = targets.into_iter().collect::<Vec<_>>()[..] else {
        return Err(bad("it does not change exactly one file".into()));
    };
    let (Some(fm), Some(original)) = (files.iter().find(|f| f.file == file), sources.get(file))
    else {
        return Err(bad(format!("{file} is not a file of the selection")));
    };
    // The first changed line: the hunk's start plus its leading context.
    let mut line = None;
    let mut at = 0usize;
    for l in diff.lines() {
        if let Some(h) = l.strip_prefix("@@ -") {
            at = h
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("bad hunk header {l}")))?;
        } else if at > 0 && (l.starts_with('-') || l.starts_with('+')) {
            line = Some(at);
            break;
        } else if at > 0 && l.starts_with(' ') {
            at += 1;
        }
    }
    let line = line.ok_or_else(|| bad("no hunk changes a line".into()))?;
    let scratch = tempfile::tempdir()?;
    let copy = scratch.path().join(file);
    fs::create_dir_all(copy.parent().context("no directory")?)?;
    fs::write(&copy, original)?;
    let out = Command::new("patch")
        .args(["-p1", "-s", "--no-backup-if-mismatch", "-d"])
        .arg(scratch.path())
        .arg("-i")
        .arg(crate::paths::absolute(path))
        .output()
        .context("running patch (apt-get install patch)")?;
    if !out.status.success() {
        return Err(bad(format!(
            "it does not apply to {file}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    let text = fs::read_to_string(&copy)?;
    let function = fm
        .functions
        .iter()
        .find(|f| f.first_line <= line && line <= f.last_line)
        .map(|f| f.name.clone())
        .unwrap_or_else(|| "-".into());
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Candidate {
        id: format!("{file}:{function}:{line}:{PATCH_OPERATOR}:{name}"),
        file: file.to_string(),
        function,
        line,
        last_line: line,
        operator: PATCH_OPERATOR.into(),
        under: vec![],
        text: Text::Patched(text),
        diff,
    })
}

/// The coverage must have counted this very source: line N of another
/// version of the file is another line.
fn check_coverage_source(cov: &Coverage, file: &str, text: &str, from: &Path) -> Result<()> {
    let Some(fc) = cov.files.get(file) else {
        return Err(bad_input(format!(
            "--coverage-from {}: it has no counts for {file}; give a coverage.json of a run \
             that covered it (`cargo xtask coverage`)",
            from.display()
        )));
    };
    let ours = hmmlab_harness::identity::sha256_hex(text.as_bytes());
    match &fc.source_sha256 {
        Some(theirs) if *theirs != ours => Err(bad_input(format!(
            "--coverage-from {}: it counted another {file} (SHA-256 {theirs}) than this \
             kernel's ({ours}); give a coverage.json of the same kernel source",
            from.display()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::model::{Function, Line};

    /// The scratch copy of the file gets a name as long as the build's, so
    /// that the build's name can be put back into its object byte for
    /// byte (KASAN's globals carry the compiler's input file name); a
    /// scratch directory too long, or a relative name, keep `<work>/src`.
    #[test]
    fn a_scratch_file_is_named_as_long_as_the_builds_own() {
        let file = "mm/migrate_device.c";
        let original =
            "/root/.cache/hmmlab/src/0123456789abcdef/linux-source-7.3/mm/migrate_device.c";
        let root = scratch_root(Path::new("/tmp/w"), original, file);
        let ours = root.join(file).to_string_lossy().into_owned();
        assert_eq!(ours.len(), original.len(), "{ours}");
        assert!(
            ours.starts_with("/tmp/w/s_") && ours.ends_with("/mm/migrate_device.c"),
            "{ours}"
        );
        let long = format!("/tmp/{}", "d".repeat(200));
        assert_eq!(
            scratch_root(Path::new(&long), original, file),
            Path::new(&long).join("src")
        );
        assert_eq!(
            scratch_root(Path::new("/tmp/w"), "../linux/mm/migrate_device.c", file),
            Path::new("/tmp/w/src")
        );
        let mut bytes = format!("a\0{ours}\0b{ours}").into_bytes();
        replace_same_length(&mut bytes, ours.as_bytes(), original.as_bytes());
        assert_eq!(bytes, format!("a\0{original}\0b{original}").into_bytes());
    }

    fn earlier(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(h, id)| (h.to_string(), id.to_string()))
            .collect()
    }

    #[test]
    fn the_first_verdict_that_fits_wins() {
        let e = earlier(&[
            ("b", "f.c:g:3:zero-const:0"),
            ("orig", "f.c:g:1:negate-cond:0"),
        ]);
        // Not compiling says everything.
        assert_eq!(
            classify(None, "orig", &e, Reach::Covered),
            (Verdict::Unviable, None)
        );
        // The original's code: equivalent, even when an earlier mutant
        // (equivalent too) had it, and whether or not it was reached.
        assert_eq!(
            classify(Some("orig"), "orig", &e, Reach::Uncovered),
            (Verdict::Equivalent, None)
        );
        // An earlier mutant's code: a duplicate, naming it, reached or not.
        assert_eq!(
            classify(Some("b"), "orig", &e, Reach::Uncovered),
            (Verdict::Duplicate, Some("f.c:g:3:zero-const:0".into()))
        );
        // New code: uncovered only when coverage says so.
        assert_eq!(
            classify(Some("c"), "orig", &e, Reach::Uncovered),
            (Verdict::Uncovered, None)
        );
        assert_eq!(
            classify(Some("c"), "orig", &e, Reach::Covered),
            (Verdict::Pending, None)
        );
        assert_eq!(
            classify(Some("c"), "orig", &e, Reach::Unknown),
            (Verdict::Pending, None)
        );
    }

    fn file_cov() -> FileCoverage {
        let mut f = FileCoverage::default();
        let line = |count| Line {
            count,
            ..Default::default()
        };
        f.lines.insert(10, line(5));
        f.lines.insert(11, line(0));
        f.lines.insert(13, line(0));
        f.lines.insert(30, line(0));
        let func = |count| Function {
            start_line: 0,
            end_line: 0,
            count,
            scenarios: Default::default(),
        };
        f.functions.insert("ran".into(), func(3));
        f.functions.insert("never".into(), func(0));
        f
    }

    #[test]
    fn reach_goes_by_the_lines_with_code_then_by_the_function() {
        let f = file_cov();
        assert_eq!(reach(None, "ran", 10, 10), Reach::Unknown);
        assert_eq!(reach(Some(&f), "ran", 10, 10), Reach::Covered);
        assert_eq!(reach(Some(&f), "ran", 11, 11), Reach::Uncovered);
        // Any line of the span that ran is enough.
        assert_eq!(reach(Some(&f), "ran", 9, 11), Reach::Covered);
        assert_eq!(reach(Some(&f), "ran", 11, 13), Reach::Uncovered);
        // No line with code in the span: the function decides.
        assert_eq!(reach(Some(&f), "ran", 20, 21), Reach::Covered);
        assert_eq!(reach(Some(&f), "never", 20, 21), Reach::Uncovered);
        assert_eq!(reach(Some(&f), "unknown", 20, 21), Reach::Uncovered);
    }

    #[test]
    fn a_mutant_reaches_to_the_end_of_its_expression() {
        let text =
            "if (!a(entry) ||\n    !(flags & B)) {\n\tx = f(1,\n\t      2); /* c */\n\ty++;\n}\n";
        // Line 1 goes on to line 2; line 3 to line 4; line 5 ends itself.
        assert_eq!(continued_to(text, 1), 2);
        assert_eq!(continued_to(text, 2), 2);
        assert_eq!(continued_to(text, 3), 4);
        assert_eq!(continued_to(text, 5), 5);
        // A trailing comment does not hide the operator, the last line stops.
        assert_eq!(continued_to("a &&  // why\nb;\n", 1), 2);
        assert_eq!(continued_to("a &&", 1), 1);
    }

    /// `relist` on 7.3.4 without sources, its appended lines dropped.
    fn relist_all(list: &[super::super::equivalent::Entry], c: &[Candidate], r: &mut [Record]) {
        let mut out = tempfile::tempfile().unwrap();
        relist(list, "7.3.4", &BTreeMap::new(), c, r, &mut out).unwrap();
    }

    /// A candidate `id` of function g of f.c on `line`, with `m`'s text.
    fn candidate(m: &'static Mutant, id: &str, line: usize) -> Candidate<'static> {
        Candidate {
            id: id.into(),
            file: "f.c".into(),
            function: "g".into(),
            line,
            last_line: line,
            operator: m.operator.name().into(),
            under: vec![],
            text: Text::Generated(m),
            diff: String::new(),
        }
    }

    fn mutant(source: &str, original: &str, mutated: &str) -> Mutant {
        let start = source.find(original).unwrap();
        Mutant {
            id: "f.c:g:2:delete-if-body:0".into(),
            file: "f.c".into(),
            function: "g".into(),
            line: 2,
            operator: crate::mutate::Operator::DeleteIfBody,
            index: 0,
            description: String::new(),
            start,
            end: start + original.len(),
            original: original.into(),
            mutated: mutated.into(),
            diff: String::new(),
            under: vec![],
        }
    }

    #[test]
    fn an_uncovered_mutant_of_a_function_listed_whole_is_equivalent_until_the_entry_goes() {
        let m: &'static Mutant = Box::leak(Box::new(mutant("int g(void)\n{\n}\n", "{", "")));
        let candidates = [candidate(m, "u", 2)];
        let mut records = vec![Record {
            coverage: Reach::Uncovered,
            ..test_record("u", 2, Verdict::Uncovered)
        }];
        let list = super::super::equivalent::parse(
            "[[equivalent]]\nfile = \"f.c\"\nfunction = \"g\"\nevery = true\n\
             reason = \"only another driver calls g: test_hmm never does\"\n",
            "l.toml",
        )
        .unwrap();
        relist_all(&list, &candidates, &mut records);
        assert_eq!(records[0].verdict, Verdict::Equivalent);
        assert_eq!(records[0].listed.as_deref(), Some("l.toml:1"));
        relist_all(&[], &candidates, &mut records);
        assert_eq!(records[0].verdict, Verdict::Uncovered);
        assert_eq!(records[0].listed, None);
    }

    #[test]
    fn a_newer_coverage_file_makes_uncovered_mutants_it_reaches_pending() {
        use crate::coverage::model::{Coverage, FileCoverage, Line};
        let m: &'static Mutant = Box::leak(Box::new(mutant("int g(void)\n{\n}\n", "{", "")));
        let candidates = [
            candidate(m, "a", 3),
            candidate(m, "b", 4),
            candidate(m, "c", 3),
        ];
        let mut records = vec![
            test_record("a", 3, Verdict::Uncovered),
            test_record("b", 4, Verdict::Uncovered),
            test_record("c", 3, Verdict::Killed),
        ];
        let mut fc = FileCoverage::default();
        fc.lines.insert(
            3,
            Line {
                count: 2,
                ..Line::default()
            },
        );
        fc.lines.insert(4, Line::default());
        let cv = Coverage {
            files: [("f.c".to_string(), fc)].into(),
        };
        let mut out = vec![];
        assert_eq!(
            rejudge_uncovered(&cv, &candidates, &mut records, &mut out).unwrap(),
            1
        );
        let v: Vec<Verdict> = records.iter().map(|r| r.verdict).collect();
        assert_eq!(v, [Verdict::Pending, Verdict::Uncovered, Verdict::Killed]);
        let appended: Record = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (appended.id.as_str(), appended.verdict),
            ("a", Verdict::Pending)
        );
    }

    /// A record of line 3 whose mutant was booted, with verdict `v`.
    fn booted(id: &str, v: Verdict) -> Record {
        Record {
            timings: Some(Timings::default()),
            ..test_record(id, 3, v)
        }
    }

    #[test]
    fn the_list_applied_to_merged_records_says_which_it_changed() {
        // --merge: records of shards run with an older list, mutants found
        // by id; a hand-written one (no mutant) is left alone.
        let source = "int g(void)\n{\n\tx = 1;\n}\n";
        let mut m = mutant(source, "x = 1;", "");
        m.operator = crate::mutate::Operator::DeleteStmt;
        m.id = "f.c:g:3:delete-stmt:0".into();
        let mut records = vec![
            booted("f.c:g:3:delete-stmt:0", Verdict::Survived),
            booted("patch:1", Verdict::Survived),
        ];
        let list = super::super::equivalent::parse(
            "[[equivalent]]\nfile = \"f.c\"\nfunction = \"g\"\noperator = \"delete-stmt\"\n\
             original = \"x = 1;\"\nreason = \"no caller reads it: a reason long enough\"\n",
            "l.toml",
        )
        .unwrap();
        let mutant_of = |id: &str| (id == m.id).then_some(&m);
        let changed = apply_list(&list, "7.3.4", &BTreeMap::new(), &mutant_of, &mut records);
        assert_eq!(changed, vec![0]);
        assert_eq!(records[0].verdict, Verdict::Equivalent);
        assert_eq!(records[1].verdict, Verdict::Survived);
        // Applied again: nothing left to change.
        let again = apply_list(&list, "7.3.4", &BTreeMap::new(), &mutant_of, &mut records);
        assert!(again.is_empty(), "{again:?}");
        // The entry gone (an older list): the survivor is back.
        assert_eq!(
            apply_list(&[], "7.3.4", &BTreeMap::new(), &mutant_of, &mut records),
            vec![0]
        );
        assert_eq!(records[0].verdict, Verdict::Survived);
    }

    #[test]
    fn a_listed_survivor_is_equivalent_a_listed_kill_stays_and_an_unlisted_one_survives_again() {
        let source = "int g(void)\n{\n\tx = 1;\n\ty = 2;\n}\n";
        let mut mx = mutant(source, "x = 1;", "");
        mx.operator = crate::mutate::Operator::DeleteStmt;
        mx.id = "f.c:g:3:delete-stmt:0".into();
        let mut my = mx.clone();
        let start = source.find("y = 2;").unwrap();
        (my.start, my.end, my.original) = (start, start + 6, "y = 2;".into());
        my.id = "f.c:g:4:delete-stmt:0".into();
        let cand = |m: &'static Mutant| Candidate {
            id: m.id.clone(),
            file: m.file.clone(),
            function: m.function.clone(),
            line: m.line,
            last_line: m.line,
            operator: m.operator.name().into(),
            under: vec![],
            text: Text::Generated(m),
            diff: String::new(),
        };
        let (mx, my): (&'static Mutant, &'static Mutant) =
            (Box::leak(Box::new(mx)), Box::leak(Box::new(my)));
        let candidates = [cand(mx), cand(my)];
        let mut records = vec![
            booted(&mx.id, Verdict::Survived),
            booted(&my.id, Verdict::Killed),
        ];
        let entry = |original: &str| {
            format!(
                "[[equivalent]]\nfile = \"f.c\"\nfunction = \"g\"\noperator = \"delete-stmt\"\n\
                 original = \"{original}\"\nreason = \"no caller reads it: a reason long enough\"\n"
            )
        };
        let list = super::super::equivalent::parse(
            &format!("{}\n{}", entry("x = 1;"), entry("y = 2;")),
            "l.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutants.jsonl");
        let mut out = File::create(&path).unwrap();
        relist(
            &list,
            "7.3.4",
            &BTreeMap::new(),
            &candidates,
            &mut records,
            &mut out,
        )
        .unwrap();
        assert_eq!(records[0].verdict, Verdict::Equivalent);
        assert_eq!(records[0].listed.as_deref(), Some("l.toml:1"));
        assert_eq!(
            records[1].verdict,
            Verdict::Killed,
            "a listed kill is still a kill"
        );
        assert_eq!(records[1].listed.as_deref(), Some("l.toml:8"));
        let text = summary(&records, &["f.c:g".into()], false);
        assert!(text.contains("1 survived and are listed"), "{text}");
        assert!(
            text.contains("WRONG ENTRY: f.c:g:4:delete-stmt:0"),
            "{text}"
        );
        // Written down, so a resumed run reads the same.
        let again = read_records(&path).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].verdict, Verdict::Equivalent);
        // The entry goes: the survivor survives again.
        relist_all(&[], &candidates, &mut records);
        assert_eq!(records[0].verdict, Verdict::Survived);
        assert_eq!(records[0].listed, None);
        assert_eq!(records[1].listed, None);
        // An entry for another release does not count.
        let other = super::super::equivalent::parse(
            &entry("x = 1;").replace("\nreason =", "\nreleases = [\"6.12\"]\nreason ="),
            "l.toml",
        )
        .unwrap();
        relist_all(&other, &candidates, &mut records);
        assert_eq!(records[0].verdict, Verdict::Survived);
    }

    #[test]
    fn a_mutant_that_removes_lines_is_compiled_with_every_later_line_where_it_was() {
        let src = "void g(int x)\n{\n\tif (x) {\n\t\ta();\n\t\tb();\n\t}\n\tWARN_ON(x);\n}\n";
        let m = mutant(src, "{\n\t\ta();\n\t\tb();\n\t}", "{}");
        let text = compiled_text(src, &m);
        assert_eq!(text.lines().count(), src.lines().count());
        assert_eq!(text.lines().nth(6), Some("\tWARN_ON(x);"));
        assert!(text.contains("if (x) {}\n\n\n\n\tWARN_ON"));
        // The diff (and `apply`) stay the mutant's own text.
        assert_eq!(m.apply(src).lines().count(), src.lines().count() - 3);
        // A mutant within one line is compiled exactly as applied.
        let one = mutant(src, "if (x)", "if (!x)");
        assert_eq!(compiled_text(src, &one), one.apply(src));
    }

    /// `gcc -c` of `code` with `flags`; None without gcc.
    fn object(code: &str, flags: &[&str]) -> Option<Vec<u8>> {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("t.c");
        fs::write(&c, code).unwrap();
        let o = d.path().join("t.o");
        let st = Command::new("gcc")
            .args(flags)
            .arg("-c")
            .arg(&c)
            .arg("-o")
            .arg(&o)
            .status()
            .ok()?;
        assert!(st.success());
        Some(fs::read(&o).unwrap())
    }

    #[test]
    fn the_code_hash_sees_code_and_data_and_not_debug_information() {
        let Some(plain) = object("int f(int x) { return x + 1; }\n", &["-O2"]) else {
            eprintln!("no gcc: skipped");
            return;
        };
        let h = code_hash(&plain).unwrap();
        // Debug information is not code: the same code two lines further
        // down has other line tables, and the same code hash.
        let debug = object("int f(int x) { return x + 1; }\n", &["-O2", "-g"]).unwrap();
        let moved = object("\n\nint f(int x) { return x + 1; }\n", &["-O2", "-g"]).unwrap();
        assert_ne!(debug, moved);
        assert_eq!(code_hash(&debug).unwrap(), code_hash(&moved).unwrap());
        // Code the compiler folds to the same instructions is the same.
        let folded = object("int f(int x) { return x + (3 & 1); }\n", &["-O2"]).unwrap();
        assert_eq!(code_hash(&folded).unwrap(), h);
        // Other code, other data: another hash.
        let other = object("int f(int x) { return x + 2; }\n", &["-O2"]).unwrap();
        assert_ne!(code_hash(&other).unwrap(), h);
        let data = object(
            "int f(int x) { return x + 1; }\nconst char s[] = \"a\";\n",
            &["-O2"],
        )
        .unwrap();
        assert_ne!(code_hash(&data).unwrap(), h);
        assert!(code_hash(b"not an object").is_err());
    }

    #[test]
    fn the_saved_kbuild_command_is_redirected_and_nothing_else_changes() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("linux");
        let obj = d.path().join("obj");
        fs::create_dir_all(tree.join("mm")).unwrap();
        fs::create_dir_all(obj.join("mm")).unwrap();
        fs::write(tree.join("mm/m.c"), "int x;\n").unwrap();
        let line = format!(
            "/cache/bin/hmmlab-cc -Wp,-MMD,mm/.m.o.d -nostdinc -I{t}/include -I./include \
             -fmacro-prefix-map={t}/= -DKBUILD_MODFILE='\"mm/m\"' -I{t}/mm -Imm -c -o mm/m.o {t}/mm/m.c",
            t = tree.display()
        );
        fs::write(
            obj.join("mm/.m.o.cmd"),
            format!(
                "savedcmd_mm/m.o := {line}\n\nsource_mm/m.o := {}/mm/m.c\n",
                tree.display()
            ),
        )
        .unwrap();
        let r = Recipe::of_build(&obj, &tree, "mm/m.c").unwrap();
        assert_eq!(r.built_object, obj.join("mm/m.o"));
        assert_eq!(r.argv[0], real_cc());
        assert_eq!(r.argv[r.out], "mm/m.o");
        assert_eq!(r.argv[r.out - 1], "-o");
        assert_eq!(r.argv[r.src], format!("{}/mm/m.c", tree.display()));
        assert_eq!(r.argv[r.dep.unwrap()], "-Wp,-MMD,mm/.m.o.d");
        assert!(r.argv.contains(&"-DKBUILD_MODFILE=\"mm/m\"".to_string()));
        let iquote = r
            .argv
            .iter()
            .position(|a| a.starts_with("-iquote"))
            .unwrap();
        assert_eq!(r.argv[iquote], format!("-iquote{}/mm", tree.display()));
        assert_eq!(r.argv[iquote + 1], "-c");
        // A file the build did not compile is the user's to fix.
        let e = Recipe::of_build(&obj, &tree, "mm/other.c").unwrap_err();
        assert!(
            format!("{e:#}").contains("not compiled into this kernel"),
            "{e:#}"
        );
    }

    #[test]
    fn a_torn_last_line_is_checked_again_and_the_summary_counts_every_verdict() {
        let d = tempfile::tempdir().unwrap();
        let r = |id: &str, f: &str, v: Verdict| Record {
            function: f.into(),
            ..test_record(id, 1, v)
        };
        let a = r("a", "f", Verdict::Unviable);
        let b = r("b", "g", Verdict::Pending);
        let path = d.path().join("mutants.jsonl");
        fs::write(
            &path,
            format!(
                "{}\n{}\n{{\"id\":\"c\",\"fi",
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&b).unwrap()
            ),
        )
        .unwrap();
        let got = read_records(&path).unwrap();
        assert_eq!(got, vec![a.clone(), b.clone()]);
        // A boot's line replaces the check's, in the check's place.
        let mut b2 = b.clone();
        b2.verdict = Verdict::Killed;
        let mut text = fs::read_to_string(&path).unwrap();
        text.truncate(text.rfind('{').unwrap());
        text.push_str(&format!("{}\n", serde_json::to_string(&b2).unwrap()));
        let p2 = d.path().join("booted.jsonl");
        fs::write(&p2, text).unwrap();
        assert_eq!(read_records(&p2).unwrap(), vec![a.clone(), b2.clone()]);
        let refs: Vec<&Record> = vec![&a, &b2];
        assert_eq!(score(&refs), Some((1, 1)));
        let s = summary(
            &got,
            &["mm/m.c:f".into(), "mm/m.c:g".into(), "mm/m.c:h".into()],
            false,
        );
        assert!(s.contains("2 mutants checked"), "{s}");
        assert!(s.contains("  unviable         1   50.0%"), "{s}");
        assert!(s.contains("uncovered: unknown (no coverage given"), "{s}");
        assert!(s.contains("mm/m.c:h       0"), "{s}");
        assert!(s.contains("median 1.00"), "{s}");
    }
}
