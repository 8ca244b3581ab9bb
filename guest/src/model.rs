//! What the mapping should contain: per page, the generation of the data
//! pattern last written to it, or zero fill. Every read (CPU or device) is
//! checked against it, so data lost or misplaced by a migration is caught.

use hmmlab_proto::scenario::{pattern_word, PageRange};

use crate::mapping::WORDS_PER_PAGE;

pub struct Model {
    /// `None`: never written, reads as zeros.
    pages: Vec<Option<u64>>,
    last_generation: u64,
}

impl Model {
    pub fn new(pages: u64) -> Model {
        Model {
            pages: vec![None; pages as usize],
            last_generation: 0,
        }
    }

    /// A copy for a forked child, whose writes get generations from
    /// `first_generation` on.
    pub fn fork_copy(&self, first_generation: u64) -> Model {
        Model {
            pages: self.pages.clone(),
            last_generation: first_generation - 1,
        }
    }

    /// A fresh generation for a write operation: 1, 2, 3, …
    pub fn next_generation(&mut self) -> u64 {
        self.last_generation += 1;
        self.last_generation
    }

    /// The words of generation `generation` for the pages of `range`, page
    /// numbers being mapping-relative.
    pub fn pattern(generation: u64, range: PageRange) -> Vec<u64> {
        let mut words = vec![0; range.len() as usize * WORDS_PER_PAGE];
        Self::fill_pattern(generation, range, &mut words);
        words
    }

    /// Write the pattern of `range` into `out` (at least `range.len()` pages long).
    pub fn fill_pattern(generation: u64, range: PageRange, out: &mut [u64]) {
        for (i, page) in (range.start()..range.end()).enumerate() {
            let words = &mut out[i * WORDS_PER_PAGE..(i + 1) * WORDS_PER_PAGE];
            for (w, word) in words.iter_mut().enumerate() {
                *word = pattern_word(generation, page, w as u64);
            }
        }
    }

    pub fn record_write(&mut self, range: PageRange, generation: u64) {
        for page in &mut self.pages[range.start() as usize..range.end() as usize] {
            *page = Some(generation);
        }
    }

    /// The pages of `range` were dropped: they read as zeros.
    pub fn forget(&mut self, range: PageRange) {
        for page in &mut self.pages[range.start() as usize..range.end() as usize] {
            *page = None;
        }
    }

    /// The word `word` of page `page` should hold now.
    pub fn expected(&self, page: u64, word: u64) -> u64 {
        match self.pages[page as usize] {
            Some(generation) => pattern_word(generation, page, word),
            None => 0,
        }
    }

    /// Check `words`, the content of whole pages starting at `first_page`.
    /// The error names the first differing word and counts the pages that
    /// differ.
    pub fn check(&self, first_page: u64, words: &[u64]) -> Result<(), String> {
        let mut first: Option<String> = None;
        let mut bad_pages = 0;
        for (i, page_words) in words.chunks(WORDS_PER_PAGE).enumerate() {
            let page = first_page + i as u64;
            let bad = page_words
                .iter()
                .enumerate()
                .find(|&(w, &got)| got != self.expected(page, w as u64));
            if let Some((w, &got)) = bad {
                bad_pages += 1;
                first.get_or_insert_with(|| {
                    let want = self.expected(page, w as u64);
                    format!(
                        "data mismatch at page {page} word {w}: expected {}, got {}",
                        describe_word(want),
                        describe_word(got)
                    )
                });
            }
        }
        match first {
            None => Ok(()),
            Some(msg) => {
                let total = words.len().div_ceil(WORDS_PER_PAGE);
                Err(format!("{msg} ({bad_pages} of {total} pages differ)"))
            }
        }
    }
}

/// `0x…` plus what the value looks like, so a stale generation, a page from
/// the wrong place or a zeroed page can be told apart from the message.
pub fn describe_word(value: u64) -> String {
    let generation = value >> 48;
    let page = (value >> 16) & 0xFFFF_FFFF;
    let word = value & 0xFFFF;
    if value == 0 {
        "0x0 (zero)".into()
    } else if generation > 0 && word < WORDS_PER_PAGE as u64 {
        format!("{value:#018x} (generation {generation}, page {page}, word {word})")
    } else {
        format!("{value:#018x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_count_from_one() {
        let mut m = Model::new(4);
        assert_eq!(m.next_generation(), 1);
        assert_eq!(m.next_generation(), 2);
    }

    #[test]
    fn written_and_zero_pages_check() {
        let mut m = Model::new(4);
        let g = m.next_generation();
        m.record_write(PageRange(1, 3), g);
        let mut words = vec![0u64; WORDS_PER_PAGE];
        words.extend(Model::pattern(g, PageRange(1, 3)));
        words.extend(vec![0u64; WORDS_PER_PAGE]);
        assert_eq!(m.check(0, &words), Ok(()));
        assert_eq!(
            m.check(1, &words[WORDS_PER_PAGE..3 * WORDS_PER_PAGE]),
            Ok(())
        );
    }

    #[test]
    fn mismatch_names_first_word_and_counts_pages() {
        let mut m = Model::new(4);
        let g1 = m.next_generation();
        m.record_write(PageRange(0, 4), g1);
        let g2 = m.next_generation();
        m.record_write(PageRange(3, 4), g2);
        // The device returns the old data for page 3 and zeros for page 2.
        let mut words = Model::pattern(g1, PageRange(0, 4));
        words[2 * WORDS_PER_PAGE..3 * WORDS_PER_PAGE].fill(0);
        let err = m.check(0, &words).unwrap_err();
        assert_eq!(
            err,
            "data mismatch at page 2 word 0: expected 0x0001000000020000 (generation 1, page 2, \
             word 0), got 0x0 (zero) (2 of 4 pages differ)"
        );
        let err = m.check(3, &words[3 * WORDS_PER_PAGE..]).unwrap_err();
        assert!(
            err.starts_with("data mismatch at page 3 word 0: expected 0x0002000000030000"),
            "{err}"
        );
        assert!(
            err.contains("got 0x0001000000030000 (generation 1, page 3, word 0)"),
            "{err}"
        );
    }
}
