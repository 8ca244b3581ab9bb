//! Where things are in a scenario file: the text parsed a second time into a
//! spanned document, and key paths such as `step[2].pages` resolved to byte
//! ranges.

use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Self {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// `key_path!["step", i, "pages"]`: a key path as a `Vec<Seg>`.
macro_rules! key_path {
    ($($seg:expr),* $(,)?) => {
        vec![$($crate::scenario::span::Seg::from($seg)),*]
    };
}
pub(crate) use key_path;

/// How a table path is written as a TOML header: `[mapping]`,
/// `[[step.expect]]`, or `the top level`.
pub fn header(path: &[Seg]) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    match path.last() {
        None => "the top level".to_string(),
        Some(Seg::Index(_)) => format!("[[{}]]", keys.join(".")),
        Some(Seg::Key(_)) => format!("[{}]", keys.join(".")),
    }
}

/// A scenario file parsed into spanned TOML values.
#[derive(Clone)]
pub struct Doc<'i> {
    pub root: Spanned<DeTable<'i>>,
}

enum Node<'a, 'i> {
    Table(&'a DeTable<'i>),
    Array(&'a [Spanned<DeValue<'i>>]),
    Leaf,
}

fn node<'a, 'i>(v: &'a DeValue<'i>) -> Node<'a, 'i> {
    match v {
        DeValue::Table(t) => Node::Table(t),
        DeValue::Array(a) => Node::Array(a),
        _ => Node::Leaf,
    }
}

impl<'i> Doc<'i> {
    /// Parse `text`, returning every syntax error when there are any.
    pub fn parse(text: &'i str) -> Result<Self, Vec<toml::de::Error>> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            Ok(Doc { root })
        } else {
            Err(errors)
        }
    }

    /// The value at `path`, if it is there.
    pub fn get(&self, path: &[Seg]) -> Option<&Spanned<DeValue<'i>>> {
        let mut found = None;
        let complete = self.walk(path, |_, v| found = Some(v));
        if complete {
            found
        } else {
            None
        }
    }

    /// The span of the last key of `path` (of the element, for an index),
    /// or of the nearest ancestor that exists.
    pub fn key_span(&self, path: &[Seg]) -> Range<usize> {
        self.span_of(path, true)
    }

    /// The span of the value at `path`, or of the nearest ancestor that
    /// exists. A `[table]` or `[[array]]` element spans its header line.
    pub fn value_span(&self, path: &[Seg]) -> Range<usize> {
        self.span_of(path, false)
    }

    fn span_of(&self, path: &[Seg], want_key: bool) -> Range<usize> {
        let mut best = self.root.span();
        let mut seen = 0;
        self.walk(path, |key, value| {
            seen += 1;
            best = match key {
                Some(k) if want_key && seen == path.len() => k,
                _ => value.span(),
            };
        });
        best
    }

    /// Follow `path`, calling `visit(key span, value)` for every step found;
    /// true if the whole path exists.
    fn walk<'a>(
        &'a self,
        path: &[Seg],
        mut visit: impl FnMut(Option<Range<usize>>, &'a Spanned<DeValue<'i>>),
    ) -> bool {
        let mut cur = Node::Table(self.root.get_ref());
        for seg in path {
            let (key, value) = match (seg, cur) {
                (Seg::Key(k), Node::Table(t)) => match t.get_key_value(k.as_str()) {
                    Some((key, value)) => (Some(key.span()), value),
                    None => return false,
                },
                (Seg::Index(i), Node::Array(a)) => match a.get(*i) {
                    Some(value) => (None, value),
                    None => return false,
                },
                _ => return false,
            };
            visit(key, value);
            cur = node(value.get_ref());
        }
        true
    }

    /// The path of the innermost table entry an error at `span` is about:
    /// the entry whose key is exactly `span` or whose value contains it.
    pub fn entry_at(&self, span: &Range<usize>) -> Option<Vec<Seg>> {
        let mut best: Option<Vec<Seg>> = None;
        let mut prefix = Vec::new();
        search(
            Node::Table(self.root.get_ref()),
            span,
            &mut prefix,
            &mut best,
        );
        best
    }

    /// The path of the `[table]` or `[[array]]` element whose header is
    /// exactly `span` (the empty path for the top level's empty span).
    pub fn table_at(&self, span: &Range<usize>) -> Option<Vec<Seg>> {
        if *span == self.root.span() {
            return Some(Vec::new());
        }
        let mut prefix = Vec::new();
        find_table(Node::Table(self.root.get_ref()), span, &mut prefix)
    }

    /// Remove the table entry or array element at `path`.
    pub fn remove(&mut self, path: &[Seg]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        if parents.is_empty() {
            return match last {
                Seg::Key(k) => self.root.get_mut().remove(k.as_str()).is_some(),
                Seg::Index(_) => false,
            };
        }
        let Some(parent) = self.value_mut(parents) else {
            return false;
        };
        match (last, parent) {
            (Seg::Key(k), DeValue::Table(t)) => t.remove(k.as_str()).is_some(),
            (Seg::Index(i), DeValue::Array(a)) if *i < a.len() => {
                let kept: DeArray<'i> = a
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| j != i)
                    .map(|(_, v)| v.clone())
                    .collect();
                *a = kept;
                true
            }
            _ => false,
        }
    }

    fn value_mut(&mut self, path: &[Seg]) -> Option<&mut DeValue<'i>> {
        let (Seg::Key(first), rest) = path.split_first()? else {
            return None;
        };
        let mut value = self.root.get_mut().get_mut(first.as_str())?.get_mut();
        for seg in rest {
            value = match (seg, value) {
                (Seg::Key(k), DeValue::Table(t)) => t.get_mut(k.as_str())?.get_mut(),
                (Seg::Index(i), DeValue::Array(a)) => a.get_mut(*i)?.get_mut(),
                _ => return None,
            };
        }
        Some(value)
    }
}

fn find_table(node: Node<'_, '_>, span: &Range<usize>, prefix: &mut Vec<Seg>) -> Option<Vec<Seg>> {
    let children: Vec<(Seg, &Spanned<DeValue<'_>>)> = match node {
        Node::Table(t) => t
            .iter()
            .map(|(k, v)| (Seg::Key(k.get_ref().to_string()), v))
            .collect(),
        Node::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (Seg::Index(i), v))
            .collect(),
        Node::Leaf => return None,
    };
    for (seg, v) in children {
        prefix.push(seg);
        if v.get_ref().is_table() && v.span() == *span {
            return Some(prefix.clone());
        }
        if let Some(found) = find_table(self::node(v.get_ref()), span, prefix) {
            return Some(found);
        }
        prefix.pop();
    }
    None
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

fn search<'a, 'i>(
    node: Node<'a, 'i>,
    span: &Range<usize>,
    prefix: &mut Vec<Seg>,
    best: &mut Option<Vec<Seg>>,
) {
    match node {
        Node::Table(t) => {
            for (k, v) in t.iter() {
                prefix.push(Seg::Key(k.get_ref().to_string()));
                let hit = k.span() == *span || contains(&v.span(), span);
                if hit && best.as_ref().is_none_or(|b| b.len() < prefix.len()) {
                    *best = Some(prefix.clone());
                }
                search(self::node(v.get_ref()), span, prefix, best);
                prefix.pop();
            }
        }
        Node::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                search(self::node(v.get_ref()), span, prefix, best);
                prefix.pop();
            }
        }
        Node::Leaf => {}
    }
}
