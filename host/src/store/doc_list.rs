//! Listing a version's documents without knowing their ids: keyset pages in id
//! order (bytes, on both stores), by id prefix and by the text of one top-level
//! field, within budgets of documents scanned, bytes scanned and bytes returned.
//!
//! A listing reads in two steps inside one read transaction: the ids and sizes
//! after the cursor (never a body) fix the range this request may scan; then the
//! bodies in that range that match are read one by one until the page is full.
//! A filter that matches rarely therefore answers a page with few (or no)
//! documents and a `next` cursor, instead of scanning a whole set in one request.

use super::StoreError;

/// Documents a listing returns when the caller does not say.
pub const DEFAULT_DOC_LIST: usize = 100;
/// Most documents one listing returns (a larger `limit` is lowered to it).
pub const MAX_DOC_LIST: usize = 1_000;
/// Most documents one listing scans (read by id and size; bodies only for a filter).
pub const DOC_SCAN_DOCS: usize = 10_000;
/// Most bytes of document bodies one listing scans (the first always is).
pub const DOC_SCAN_BYTES: u64 = 64 << 20;
/// Most bytes of document bodies one listing returns (the first always is).
pub const DOC_RESULT_BYTES: u64 = 16 << 20;
/// Longest field name a filter may name.
pub const MAX_FIELD_NAME: usize = 64;

/// A listing's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListBudget {
    /// Documents scanned, at most.
    pub scan_docs: usize,
    /// Bytes of bodies scanned, at most (the first document always is).
    pub scan_bytes: u64,
    /// Bytes of bodies returned, at most (the first match always is).
    pub result_bytes: u64,
}

impl Default for ListBudget {
    fn default() -> Self {
        Self {
            scan_docs: DOC_SCAN_DOCS,
            scan_bytes: DOC_SCAN_BYTES,
            result_bytes: DOC_RESULT_BYTES,
        }
    }
}

/// A filter: the top-level field `field` holds `value`: the string `value`, a
/// number equal to it (if it is a number), or the boolean (if it is `true` or
/// `false`); null, objects, arrays and a missing field never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIs {
    field: String,
    value: String,
}

impl FieldIs {
    /// A filter on `field`: letters, digits, `_` and `-`, at most
    /// [`MAX_FIELD_NAME`] bytes (it is put in a JSON path).
    pub fn new(field: &str, value: &str) -> Result<Self, StoreError> {
        let ok = !field.is_empty()
            && field.len() <= MAX_FIELD_NAME
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(StoreError::Invalid(format!(
                "where: field {field:?} must be 1 to {MAX_FIELD_NAME} letters, digits, '_' or '-'"
            )));
        }
        Ok(Self {
            field: field.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The field's name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The text it must hold.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The field as a SQLite JSON path.
    pub fn json_path(&self) -> String {
        format!("$.\"{}\"", self.field)
    }

    /// The value as a JSON string, as a string field's JSON text would read.
    pub fn as_json_string(&self) -> String {
        serde_json::Value::String(self.value.clone()).to_string()
    }

    /// The value if it is a finite number (then it also matches a number field
    /// equal to it: `5` matches `5`, `5.0` and `5e0`).
    pub fn as_number(&self) -> Option<String> {
        self.value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|_| self.value.clone())
    }

    /// The value if it is `true` or `false` (then it also matches that boolean).
    pub fn as_boolean(&self) -> Option<&'static str> {
        match self.value.as_str() {
            "true" => Some("true"),
            "false" => Some("false"),
            _ => None,
        }
    }
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocQuery {
    /// Only ids starting with this.
    pub prefix: String,
    /// Only ids after this one (the `next` of the page before).
    pub after: Option<String>,
    /// Documents returned, at most.
    pub limit: usize,
    /// Only documents whose field holds the value.
    pub filter: Option<FieldIs>,
    /// The request's budgets.
    pub budget: ListBudget,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocList {
    /// Ids and bodies, in id order.
    pub docs: Vec<(String, String)>,
    /// The `after` of the next page; `None` when nothing is left.
    pub next: Option<String>,
    /// Documents this request scanned.
    pub scanned: usize,
}

/// The range a listing may scan, cut from ids and sizes read in id order (at
/// most `scan_docs + 1` of them, from the cursor on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanRange {
    /// The last id in the range (`None`: nothing to scan).
    pub last: Option<String>,
    /// Documents in the range.
    pub count: usize,
    /// Whether documents past the range may match (it was cut by a budget).
    pub more: bool,
}

impl DocQuery {
    /// Documents this request may scan: without a filter every one scanned is
    /// returned, so one past the page's limit is enough to know there are more.
    pub(crate) fn scan_docs(&self) -> usize {
        match self.filter {
            Some(_) => self.budget.scan_docs,
            None => self.budget.scan_docs.min(self.limit.saturating_add(1)),
        }
    }

    /// Rows the match query may read: one past the limit says the page is full.
    pub(crate) fn match_rows(&self) -> i64 {
        i64::try_from(self.limit.saturating_add(1)).unwrap_or(i64::MAX)
    }

    /// The first id past every id with the prefix (none for an empty prefix, or
    /// one of only `char::MAX`): ids with the prefix are one range in byte order,
    /// which is code point order for UTF-8.
    pub(crate) fn prefix_end(&self) -> Option<String> {
        let mut chars: Vec<char> = self.prefix.chars().collect();
        while let Some(last) = chars.pop() {
            let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
            if let Some(next) = next {
                chars.push(next);
                return Some(chars.into_iter().collect());
            }
        }
        None
    }

    /// The range this request scans, from the ids and sizes after the cursor.
    pub(crate) fn scan_range(&self, rows: &[(String, i64)]) -> ScanRange {
        let mut range = ScanRange {
            last: None,
            count: 0,
            more: false,
        };
        let mut bytes = 0u64;
        for (id, size) in rows {
            if !id.starts_with(&self.prefix) {
                break;
            }
            let size = u64::try_from(*size).unwrap_or(0);
            let full = range.count >= self.scan_docs()
                || (range.count > 0 && bytes.saturating_add(size) > self.budget.scan_bytes);
            if full {
                range.more = true;
                break;
            }
            bytes = bytes.saturating_add(size);
            range.count += 1;
            range.last = Some(id.clone());
        }
        range
    }

    /// Collects matches read in id order within `range` into a page: stops before
    /// the match past `limit` or past the result bytes (the first always comes).
    pub(crate) fn collector(&self, range: ScanRange) -> Collector {
        Collector {
            limit: self.limit.max(1),
            result_bytes: self.budget.result_bytes,
            bytes: 0,
            range,
            list: DocList::default(),
            full: false,
        }
    }
}

/// A page being filled with matches.
#[derive(Debug)]
pub(crate) struct Collector {
    limit: usize,
    result_bytes: u64,
    bytes: u64,
    range: ScanRange,
    list: DocList,
    full: bool,
}

impl Collector {
    /// Takes one match; false once the page is full (stop reading).
    pub fn take(&mut self, id: String, body: String) -> bool {
        let size = body.len() as u64;
        let over = self.list.docs.len() >= self.limit
            || (!self.list.docs.is_empty() && self.bytes.saturating_add(size) > self.result_bytes);
        if over {
            self.full = true;
            return false;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.list.docs.push((id, body));
        true
    }

    /// Takes matches (id, body) from `rows`, in id order, until the page is full
    /// or they end; the caller then drops the stream, which stops the read.
    pub async fn fill<S>(&mut self, mut rows: S) -> Result<(), StoreError>
    where
        S: futures_util::Stream<Item = Result<(String, String), sqlx::Error>> + Unpin,
    {
        use futures_util::TryStreamExt;
        while let Some((id, body)) = rows.try_next().await? {
            if !self.take(id, body) {
                break;
            }
        }
        Ok(())
    }

    /// The page: `next` is the last match if it filled up, else the end of the
    /// range if the range was cut, else none.
    pub fn finish(mut self) -> DocList {
        self.list.scanned = self.range.count;
        self.list.next = if self.full {
            self.list.docs.last().map(|(id, _)| id.clone())
        } else if self.range.more {
            self.range.last.clone()
        } else {
            None
        };
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(prefix: &str, limit: usize, budget: ListBudget) -> DocQuery {
        DocQuery {
            prefix: prefix.into(),
            after: None,
            limit,
            filter: None,
            budget,
        }
    }

    fn rows(ids: &[(&str, i64)]) -> Vec<(String, i64)> {
        ids.iter().map(|(i, s)| ((*i).to_owned(), *s)).collect()
    }

    #[test]
    fn the_range_stops_at_the_prefix_the_count_and_the_bytes() {
        let budget = ListBudget {
            scan_docs: 2,
            scan_bytes: 100,
            result_bytes: 100,
        };
        let r = query("a", 10, budget).scan_range(&rows(&[("a1", 1), ("b1", 1)]));
        assert_eq!((r.last.as_deref(), r.count, r.more), (Some("a1"), 1, false));
        let r = query("", 10, budget).scan_range(&rows(&[("a", 1), ("b", 1), ("c", 1)]));
        assert_eq!((r.last.as_deref(), r.count, r.more), (Some("b"), 2, true));
        let r = query("", 10, budget).scan_range(&rows(&[("a", 60), ("b", 60)]));
        assert_eq!((r.last.as_deref(), r.count, r.more), (Some("a"), 1, true));
        // The first document is scanned whatever its size.
        let r = query("", 10, budget).scan_range(&rows(&[("a", 1_000)]));
        assert_eq!((r.count, r.more), (1, false));
    }

    #[test]
    fn a_page_is_cut_by_its_limit_and_its_bytes_and_says_where_to_go_on() {
        let budget = ListBudget {
            scan_docs: 10,
            scan_bytes: 1_000,
            result_bytes: 5,
        };
        let range = ScanRange {
            last: Some("z".into()),
            count: 9,
            more: true,
        };
        let mut c = query("", 2, budget).collector(range.clone());
        assert!(c.take("a".into(), "1".into()));
        assert!(c.take("b".into(), "2".into()));
        assert!(!c.take("c".into(), "3".into()));
        let page = c.finish();
        assert_eq!((page.docs.len(), page.next.as_deref()), (2, Some("b")));
        let mut c = query("", 10, budget).collector(range.clone());
        assert!(
            c.take("a".into(), "123456".into()),
            "the first always comes"
        );
        assert!(!c.take("b".into(), "1".into()));
        assert_eq!(c.finish().next.as_deref(), Some("a"));
        // Not full: on from the end of the range if it was cut, else done.
        let c = query("", 10, budget).collector(range);
        assert_eq!(c.finish().next.as_deref(), Some("z"));
        let done = ScanRange {
            last: Some("z".into()),
            count: 3,
            more: false,
        };
        assert_eq!(query("", 10, budget).collector(done).finish().next, None);
    }

    #[test]
    fn a_prefix_ends_where_the_next_code_point_starts() {
        let end = |p: &str| query(p, 1, ListBudget::default()).prefix_end();
        assert_eq!(end("ab").as_deref(), Some("ac"));
        assert_eq!(end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(end("\u{10FFFF}"), None);
        assert_eq!(end(""), None);
    }

    #[test]
    fn field_names_are_checked_before_they_reach_a_path() {
        assert!(FieldIs::new("status", "Closed").is_ok());
        for bad in ["", "a\"b", "a.b", "$", &"x".repeat(MAX_FIELD_NAME + 1)] {
            assert!(FieldIs::new(bad, "v").is_err(), "{bad:?}");
        }
    }
}
