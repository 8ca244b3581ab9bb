//! Content hashing for the build cache.

use sha2::{Digest, Sha256};

/// Hex of the first 8 bytes of SHA-256: a short, stable cache-key component.
pub fn short_hash(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Accumulates named parts; the key changes when any part's name or content does.
#[derive(Default)]
pub struct KeyBuilder {
    hasher: Sha256,
    parts: Vec<String>,
}

impl KeyBuilder {
    pub fn add(&mut self, name: &str, content: &[u8]) {
        self.hasher.update((name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update((content.len() as u64).to_le_bytes());
        self.hasher.update(content);
        self.parts.push(name.to_string());
    }
    pub fn finish(self) -> String {
        let d = self.hasher.finalize();
        d[..10].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_names_content_and_order() {
        let k = |parts: &[(&str, &str)]| {
            let mut b = KeyBuilder::default();
            for (n, c) in parts {
                b.add(n, c.as_bytes());
            }
            b.finish()
        };
        let a = k(&[("x", "1"), ("y", "2")]);
        assert_eq!(a, k(&[("x", "1"), ("y", "2")]));
        assert_ne!(a, k(&[("y", "2"), ("x", "1")]));
        assert_ne!(a, k(&[("x", "1"), ("y", "3")]));
        assert_ne!(k(&[("ab", "c")]), k(&[("a", "bc")]));
    }
}
