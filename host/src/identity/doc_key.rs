//! Document keys: a document's collection and its id within it, joined into the one
//! text key the store, the agent's cache, shadows and rebuilds handle (they never
//! need to know about collections). A key in the default collection is the id
//! itself; one in collection `c` is `\x1f c \x1f id`. Ids and collection names hold
//! no control characters, so the join is one-to-one, a default id can never spell
//! another collection's key, and every named collection sorts before every default
//! id (below [`DEFAULT_COLLECTION_FLOOR`]), so a listing keeps them apart by range.

use super::Invalid;

/// Most named collections one projection may declare.
pub const MAX_COLLECTIONS: usize = 16;
/// Longest collection name accepted, in bytes.
pub const MAX_COLLECTION_LEN: usize = 64;
/// What joins a collection to an id (a control character no id or name holds).
const SEP: char = '\u{1f}';
/// Every key of a named collection sorts below this; every default id above it.
pub const DEFAULT_COLLECTION_FLOOR: &str = "\u{1f}\u{7f}";

/// A collection name: 1 to [`MAX_COLLECTION_LEN`] bytes of `a-z`, `0-9`, `-`, `_`.
pub fn check_collection(name: &str) -> Result<(), Invalid> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > MAX_COLLECTION_LEN || !name.chars().all(ok) {
        return Err(Invalid(format!(
            "collection {} must be 1 to {MAX_COLLECTION_LEN} bytes of a-z, 0-9, '-' and '_'",
            super::preview(name)
        )));
    }
    Ok(())
}

/// The key of document `id` in `collection` (none: the default collection).
pub fn doc_key(collection: Option<&str>, id: &str) -> String {
    match collection {
        None => id.to_owned(),
        Some(c) => format!("{SEP}{c}{SEP}{id}"),
    }
}

/// What every key of `collection` starts with.
pub fn collection_prefix(collection: &str) -> String {
    format!("{SEP}{collection}{SEP}")
}

/// A key's collection (none: the default one) and id.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    key.strip_prefix(SEP)
        .and_then(|rest| rest.split_once(SEP))
        .map_or((None, key), |(c, id)| (Some(c), id))
}

/// A key as people read it, quoted: `"id"` in the default collection, `"id" in
/// collection "c"` in a named one (never ambiguous with a default id holding `/`).
pub fn show_key(key: &str) -> String {
    match split_key(key) {
        (Some(c), id) => format!("{id:?} in collection {c:?}"),
        (None, id) => format!("{id:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_and_named_collections_sort_below_every_default_id() {
        for (c, id) in [
            (None, "a"),
            (Some("word"), "dictionary"),
            (Some("x_1-"), " "),
        ] {
            let key = doc_key(c, id);
            assert_eq!(split_key(&key), (c, id));
            assert_eq!(
                key.starts_with(&collection_prefix("word")),
                c == Some("word")
            );
            let below = key.as_str() < DEFAULT_COLLECTION_FLOOR;
            assert_eq!(below, c.is_some(), "{key:?}");
        }
        // The lowest id a default document can have still sorts above the floor.
        assert!(" " > DEFAULT_COLLECTION_FLOOR);
        let shown = show_key(&doc_key(Some("dictionary"), "all"));
        assert_eq!(shown, r#""all" in collection "dictionary""#);
        assert_eq!(show_key("a/b"), r#""a/b""#);
    }

    #[test]
    fn collection_names_are_plain_and_bounded() {
        assert!(check_collection("dictionary").is_ok());
        for bad in ["", "Word", "a b", "a\u{1f}b", "a/b", &"x".repeat(65)] {
            let e = check_collection(bad).expect_err(bad);
            assert!(e.0.contains("collection"), "{e}");
        }
    }
}
