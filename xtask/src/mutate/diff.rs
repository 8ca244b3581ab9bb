//! A unified diff (3 lines of context, `patch -p1` paths) between a file
//! and one mutant of it. A mutant changes one contiguous stretch, so the
//! diff is the lines between the common prefix and the common suffix, in
//! one hunk; no general diff algorithm is needed.

/// Lines of context around the change, as `diff -u` gives.
pub const CONTEXT: usize = 3;

/// The unified diff that turns `old` into `new`, both the file at `path`
/// (relative to the tree: `--- a/<path>`, `+++ b/<path>`). Empty when
/// the two are equal.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    let a = lines(old);
    let b = lines(new);
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    if prefix == a.len() && prefix == b.len() {
        return String::new();
    }
    let lo = prefix.saturating_sub(CONTEXT);
    let a_hi = (a.len() - suffix + CONTEXT).min(a.len());
    let b_hi = (b.len() - suffix + CONTEXT).min(b.len());
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(lo, a_hi - lo),
        range(lo, b_hi - lo)
    ));
    for l in &a[lo..prefix] {
        push_line(&mut out, ' ', l);
    }
    for l in &a[prefix..a.len() - suffix] {
        push_line(&mut out, '-', l);
    }
    for l in &b[prefix..b.len() - suffix] {
        push_line(&mut out, '+', l);
    }
    for l in &a[a.len() - suffix..a_hi] {
        push_line(&mut out, ' ', l);
    }
    out
}

/// `start,count` of a hunk side whose first line has index `lo` (0-based).
/// An empty side names the line before it, as diff does.
fn range(lo: usize, count: usize) -> String {
    if count == 0 {
        format!("{lo},0")
    } else {
        format!("{},{count}", lo + 1)
    }
}

/// The lines of `s`, each with its newline (the last may lack one).
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

fn push_line(out: &mut String, tag: char, line: &str) {
    out.push(tag);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_changed_line_with_three_lines_of_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("mm/x.c", old, new),
            "--- a/mm/x.c\n+++ b/mm/x.c\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn an_inserted_line_near_the_top_and_a_file_without_final_newline() {
        let old = "a\nb";
        let new = "x\na\nb";
        assert_eq!(
            unified("f.c", old, new),
            "--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,3 @@\n+x\n a\n b\n\\ No newline at end of file\n"
        );
        assert_eq!(unified("f.c", old, old), "");
    }

    #[test]
    fn repeated_lines_are_not_counted_twice() {
        // Prefix and suffix must not overlap when the change is a repeat.
        let old = "a\na\n";
        let new = "a\na\na\n";
        assert_eq!(
            unified("f.c", old, new),
            "--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,3 @@\n a\n a\n+a\n"
        );
    }
}
