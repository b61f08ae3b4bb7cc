//! An agent's document cache, bounded by bytes.
//!
//! Every entry remembers the page that last touched it (read or written). The agent
//! evicts only between pages, only entries older than the page whose commit may be
//! in flight, and only after the commit before it has settled: an entry a commit in
//! flight writes is never evicted, so no page ever reloads a document from a
//! snapshot that lacks a write of an earlier page (the lost update of issue 10).

use std::collections::HashMap;

/// What one entry costs besides its id and body (map slot, `String` headers, page).
const ENTRY_OVERHEAD: usize = 64;

struct Entry {
    /// `None`: known not to exist.
    body: Option<String>,
    /// The page that last touched it.
    page: u64,
}

/// Documents an agent knows, with their size in bytes.
pub(crate) struct DocCache {
    entries: HashMap<String, Entry>,
    bytes: usize,
    budget: usize,
    page: u64,
    /// The cache holds every document of the table (it started empty and nothing
    /// was evicted since): a miss means "does not exist", with no query.
    whole: bool,
}

fn cost(id: &str, body: &Option<String>) -> usize {
    id.len() + body.as_ref().map_or(0, String::len) + ENTRY_OVERHEAD
}

impl DocCache {
    /// An empty cache that keeps about `budget` bytes between pages.
    pub fn new(budget: usize) -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            budget,
            page: 0,
            whole: false,
        }
    }

    /// Starts a new page: entries touched from now on belong to it.
    pub fn begin_page(&mut self) -> u64 {
        self.page += 1;
        self.page
    }

    /// Whether a miss means the document does not exist.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Marks the cache as holding every document (the table is empty).
    pub fn set_whole(&mut self, whole: bool) {
        self.whole = whole && self.entries.is_empty();
    }

    /// Whether the document's state is known.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    /// The size of a known document's body (0 if known not to exist).
    pub fn body_len(&self, id: &str) -> Option<usize> {
        self.entries
            .get(id)
            .map(|e| e.body.as_ref().map_or(0, String::len))
    }

    /// The known state of a document (`Some(None)`: known not to exist), touching it.
    pub fn get(&mut self, id: &str) -> Option<Option<String>> {
        let page = self.page;
        self.entries.get_mut(id).map(|e| {
            e.page = page;
            e.body.clone()
        })
    }

    /// Records a document's state as of the current page.
    pub fn put(&mut self, id: String, body: Option<String>) {
        let id_len = id.len();
        self.bytes += cost(&id, &body);
        let entry = Entry {
            body,
            page: self.page,
        };
        if let Some(old) = self.entries.insert(id, entry) {
            self.bytes -= id_len + old.body.as_ref().map_or(0, String::len) + ENTRY_OVERHEAD;
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Documents held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// When over budget, drops the least recently touched entries of pages before
    /// `keep_from` until half the budget is used. The caller guarantees that no
    /// commit in flight wrote an entry of a page before `keep_from`. The entries of
    /// later pages stay even if they alone exceed the budget (they are at most one
    /// page's documents, themselves bounded).
    pub fn evict_before(&mut self, keep_from: u64) {
        if self.bytes <= self.budget {
            return;
        }
        let target = self.budget / 2;
        let mut by_page: Vec<(u64, usize)> = Vec::new();
        {
            let mut totals: HashMap<u64, usize> = HashMap::new();
            for (id, e) in &self.entries {
                if e.page < keep_from {
                    *totals.entry(e.page).or_default() += cost(id, &e.body);
                }
            }
            by_page.extend(totals);
        }
        by_page.sort_unstable();
        let mut freed = 0;
        let mut cutoff = None;
        for (page, bytes) in by_page {
            if self.bytes - freed <= target {
                break;
            }
            freed += bytes;
            cutoff = Some(page);
        }
        let Some(cutoff) = cutoff else {
            return;
        };
        let mut bytes = self.bytes;
        self.entries.retain(|id, e| {
            let keep = e.page > cutoff;
            if !keep {
                bytes -= cost(id, &e.body);
            }
            keep
        });
        self.bytes = bytes;
        self.whole = false;
    }

    /// Forgets everything (after a failed commit: the store is the truth again).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.whole = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Option<String> {
        Some("x".repeat(n))
    }

    #[test]
    fn eviction_keeps_the_pages_a_commit_may_still_write() {
        let mut c = DocCache::new(10_000);
        for page in 0..20 {
            c.begin_page();
            for i in 0..10 {
                c.put(format!("p{page}-{i}"), doc(100));
            }
        }
        assert!(c.bytes() > 10_000);
        let current = c.begin_page();
        c.put("hot".into(), doc(100));
        c.evict_before(current - 1);
        assert!(c.bytes() <= 10_000, "{}", c.bytes());
        assert!(c.contains("hot"));
        for i in 0..10 {
            assert!(c.contains(&format!("p19-{i}")), "the page before is kept");
        }
        assert!(!c.contains("p0-0"), "the oldest go first");
        assert!(!c.is_whole());
    }

    #[test]
    fn touched_entries_survive_and_bytes_follow_replacements() {
        let mut c = DocCache::new(2_000);
        c.begin_page();
        c.put("a".into(), doc(500));
        c.put("b".into(), doc(500));
        let before = c.bytes();
        c.put("a".into(), doc(100));
        assert_eq!(c.bytes(), before - 400);
        for _ in 0..5 {
            c.begin_page();
            assert!(c.get("a").is_some());
            c.put(format!("n{}", c.len()), doc(600));
        }
        let p = c.begin_page();
        c.evict_before(p);
        assert!(c.contains("a"), "touched recently");
        assert!(!c.contains("b"));
    }

    #[test]
    fn one_page_over_budget_is_kept_whole() {
        let mut c = DocCache::new(100);
        let p = c.begin_page();
        for i in 0..10 {
            c.put(format!("{i}"), doc(100));
        }
        c.evict_before(p);
        assert_eq!(c.len(), 10);
    }
}
