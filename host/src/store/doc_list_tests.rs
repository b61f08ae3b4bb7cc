//! The listing contract every store keeps (run by each backend's tests): keyset
//! pages in byte order, prefix and filter, each budget cut, other versions unseen.

use super::{DocList, DocQuery, DocWrite, FieldIs, ListBudget, PageCommit, ProjectionKey, Store};

fn key(name: &str) -> ProjectionKey {
    ProjectionKey {
        name: name.into(),
        version: 1,
    }
}

fn query(prefix: &str, limit: usize, filter: Option<(&str, &str)>, budget: ListBudget) -> DocQuery {
    DocQuery {
        prefix: prefix.into(),
        after: None,
        limit,
        filter: filter.map(|(f, v)| FieldIs::new(f, v).expect("field")),
        budget,
    }
}

/// Every page of `q`, following `next`; with the pages' sizes.
async fn all_pages(
    s: &dyn Store,
    k: &ProjectionKey,
    mut q: DocQuery,
) -> (Vec<String>, Vec<DocList>) {
    let (mut ids, mut pages) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        let page = s.list_docs(k, &q).await.expect("list");
        ids.extend(page.docs.iter().map(|(id, _)| id.clone()));
        let next = page.next.clone();
        pages.push(page);
        match next {
            Some(n) => q.after = Some(n),
            None => return (ids, pages),
        }
    }
    panic!("a listing that never ends");
}

/// The contract, on a fresh store.
pub(crate) async fn listing_contract(s: &dyn Store) {
    let k = key("lister");
    s.prepare_projection(&k).await.expect("prepare");
    let mut writes: Vec<DocWrite> = (0..120)
        .map(|i| DocWrite::Put {
            id: format!("a-{i:03}"),
            body: format!(
                "{{\"i\":{i},\"even\":{},\"name\":\"n{}\",\"nothing\":null}}",
                i % 2 == 0,
                i % 3
            ),
        })
        .collect();
    // One value, several kinds: only the string and the numbers equal to it match.
    for (id, v) in [
        ("v-1", "1e3"),
        ("v-2", "1000"),
        ("v-3", "\"1000\""),
        ("v-4", "[1000]"),
        ("v-5", "{\"a\":1000}"),
        // Never matched, by any field (PostgreSQL cannot extract from it).
        ("v-6", "\"a\\u0000b\",\"even\":true"),
        ("v-7", "true"),
        ("v-8", "\"true\""),
    ] {
        writes.push(DocWrite::Put {
            id: id.into(),
            body: format!("{{\"v\":{v}}}"),
        });
    }
    // Byte order, not a locale's: "B" < "a" < "b" < "é".
    for id in ["b-1", "B-1", "é-1", "b-0"] {
        writes.push(DocWrite::Put {
            id: id.into(),
            body: "{\"i\":-1}".into(),
        });
    }
    let page = PageCommit {
        writes,
        position: 1,
        applied: 1,
        ..Default::default()
    };
    s.commit_page(&k, &page).await.expect("commit");
    // Another version's documents are never listed.
    let other = key("other");
    s.prepare_projection(&other).await.expect("prepare other");
    let page = PageCommit {
        writes: vec![DocWrite::Put {
            id: "a-999".into(),
            body: "{}".into(),
        }],
        position: 1,
        applied: 1,
        ..Default::default()
    };
    s.commit_page(&other, &page).await.expect("commit other");

    let all = ListBudget::default();
    let (ids, pages) = all_pages(s, &k, query("", 50, None, all)).await;
    let mut expected: Vec<String> = (0..120).map(|i| format!("a-{i:03}")).collect();
    expected.insert(0, "B-1".into());
    expected.extend(["b-0", "b-1"].map(String::from));
    expected.extend((1..=8).map(|i| format!("v-{i}")));
    expected.push("é-1".into());
    assert_eq!(ids, expected, "every document once, in byte order");
    assert_eq!(pages.len(), 3);
    assert!(
        pages.iter().all(|p| p.scanned <= 51),
        "no filter: a page's worth"
    );
    let (ids, _) = all_pages(s, &k, query("a-", 1_000, None, all)).await;
    assert_eq!(ids.len(), 120);
    assert!(ids.iter().all(|i| i.starts_with("a-")));

    // Filters: a boolean, a string, a number, null and a missing field.
    let count = async |f: &str, v: &str| {
        all_pages(s, &k, query("", 1_000, Some((f, v)), all))
            .await
            .0
    };
    assert_eq!(count("even", "true").await.len(), 60);
    assert_eq!(count("name", "n1").await.len(), 40);
    assert_eq!(count("i", "7").await, ["a-007"]);
    assert_eq!(count("i", "-1").await.len(), 4);
    assert!(count("nothing", "null").await.is_empty());
    assert!(count("missing", "x").await.is_empty());
    assert_eq!(count("v", "1000").await, ["v-1", "v-2", "v-3"]);
    assert_eq!(count("v", "1e3").await, ["v-1", "v-2"]);
    assert_eq!(count("v", "true").await, ["v-7", "v-8"]);
    assert_eq!(count("v", "a").await.len(), 0);

    // Budgets: each cuts a request, and the cursor goes on past the cut.
    let scan = ListBudget {
        scan_docs: 25,
        ..all
    };
    let (ids, pages) = all_pages(s, &k, query("", 1_000, Some(("i", "100")), scan)).await;
    assert_eq!(ids, ["a-100"]);
    assert!(pages.iter().all(|p| p.scanned <= 25), "{pages:?}");
    assert!(
        pages.len() >= 5,
        "a rare match takes several scans: {}",
        pages.len()
    );
    let bodies = ListBudget {
        scan_bytes: 100,
        ..all
    };
    let (ids, pages) = all_pages(s, &k, query("a-", 1_000, None, bodies)).await;
    assert_eq!(ids.len(), 120);
    assert!(pages.iter().all(|p| p.scanned <= 3), "about 50 bytes each");
    let results = ListBudget {
        result_bytes: 1,
        ..all
    };
    let (ids, pages) = all_pages(s, &k, query("b-", 1_000, None, results)).await;
    assert_eq!(ids, ["b-0", "b-1"]);
    assert!(
        pages.iter().all(|p| p.docs.len() <= 1),
        "the first always comes"
    );
    // A prefix nothing has, and one no id can have.
    assert_eq!(
        all_pages(s, &k, query("zz", 10, None, all)).await.0.len(),
        0
    );
    assert_eq!(
        all_pages(s, &k, query("a\0", 10, None, all)).await.0.len(),
        0
    );
}
