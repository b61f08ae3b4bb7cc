//! The address filter, the grant rules and the resolver, directly.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::Resolve;

use super::guard::{GuardedResolver, forbidden, is_own, screen};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP")
}

#[test]
fn internal_addresses_are_refused_and_public_ones_pass() {
    for (addr, kind) in [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("100.64.0.1", "shared"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("64:ff9b:1::a9fe:a9fe", "link-local"),
        ("2002:a00:1::1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("fec0::1", "site-local"),
        ("192.0.0.8", "IETF"),
        ("198.18.0.1", "benchmarking"),
        ("240.0.0.1", "reserved"),
    ] {
        let why = forbidden(ip(addr)).unwrap_or_else(|| panic!("{addr} passed"));
        assert!(why.contains(kind), "{addr}: {why}");
    }
    for addr in [
        "93.184.216.34",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert_eq!(forbidden(ip(addr)), None, "{addr}");
    }
}

#[test]
fn refracts_own_listen_address_is_never_a_target() {
    let listen: SocketAddr = "127.0.0.1:4300".parse().expect("addr");
    assert!(is_own("127.0.0.1:4300".parse().expect("a"), Some(listen)));
    assert!(is_own("127.0.0.2:4300".parse().expect("a"), Some(listen)));
    assert!(is_own("[::1]:4300".parse().expect("a"), Some(listen)));
    assert!(!is_own("127.0.0.1:4301".parse().expect("a"), Some(listen)));
    let all: SocketAddr = "0.0.0.0:4300".parse().expect("addr");
    assert!(is_own("203.0.113.7:4300".parse().expect("a"), Some(all)));
    // A public listen IP is refused to names whatever the port.
    let public: SocketAddr = "203.0.113.7:4300".parse().expect("addr");
    let (ok, refused) = screen(&["203.0.113.7:0".parse().expect("a")], Some(public));
    assert!(
        ok.is_empty() && refused[0].contains("own listen"),
        "{refused:?}"
    );

    let g = Grants::new(BTreeMap::from([(
        "ops".into(),
        vec!["127.0.0.1:4300".into(), "127.0.0.1:9000".into()],
    )]))
    .with_listen(listen);
    let why = g
        .refusal("ops", "http://127.0.0.1:4300/streams/x/events")
        .expect("refused");
    assert!(why.contains("own API"), "{why}");
    assert_eq!(g.refusal("ops", "http://127.0.0.1:9000/hook"), None);
}

#[test]
fn a_grant_without_a_port_allows_only_the_schemes_port() {
    let g = Grants::new(BTreeMap::from([(
        "ops".into(),
        vec![
            "hooks.example.com".into(),
            "api.example.com:8443".into(),
            "[2606:4700::1111]:8080".into(),
            "203.0.113.9".into(),
        ],
    )]));
    assert_eq!(g.validate(), Ok(()));
    assert_eq!(g.refusal("ops", "http://hooks.example.com/x"), None);
    assert_eq!(g.refusal("ops", "https://HOOKS.example.com/x"), None);
    assert_eq!(g.refusal("ops", "http://hooks.example.com:80/x"), None);
    for url in [
        "http://hooks.example.com:6379/",
        "http://hooks.example.com:443/",
        "https://hooks.example.com:80/",
        "http://api.example.com/",
        "http://203.0.113.9:22/",
        "http://user:pw@hooks.example.com/",
    ] {
        assert!(g.refusal("ops", url).is_some(), "{url} passed");
    }
    let why = g
        .refusal("ops", "http://hooks.example.com:6379/")
        .expect("refused");
    assert!(
        why.contains("hooks.example.com:6379") && why.contains("80 for http"),
        "{why}"
    );
    assert_eq!(g.refusal("ops", "http://api.example.com:8443/"), None);
    assert_eq!(g.refusal("ops", "http://[2606:4700::1111]:8080/"), None);
    assert_eq!(g.refusal("ops", "http://203.0.113.9/"), None);
    let bad = Grants::new(BTreeMap::from([("ops".into(), vec!["h:http".into()])]));
    let e = bad.validate().expect_err("bad port");
    assert!(e.contains("team ops") && e.contains("h:http"), "{e}");
}

#[test]
fn a_body_over_the_limit_is_refused_naming_both_sizes() {
    let g = Grants::default().with_max_body_bytes(1000);
    assert_eq!(g.body_refusal(1000), None);
    let why = g.body_refusal(1001).expect("refused");
    assert!(
        why.contains("1001") && why.contains("1000") && why.contains("max_outbox_bytes"),
        "{why}"
    );
    assert!(Grants::default().body_refusal(40 << 20).is_some());
    let page = Grants::default().page_refusal(40_000_000).expect("refused");
    assert!(page.contains("33554432 bytes per page"), "{page}");
    assert_eq!(Grants::default().page_refusal(32 << 20), None);
    let long = format!("http://hooks.example.com/{}", "a".repeat(10_000));
    let g = Grants::new(BTreeMap::from([(
        "ops".into(),
        vec!["hooks.example.com".into()],
    )]));
    assert!(g.refusal("ops", &long).expect("refused").contains("URL"));
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_by_the_resolver() {
    let r = GuardedResolver { listen: None };
    let err = match r.resolve("localhost".parse().expect("name")).await {
        Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("localhost") && err.contains("loopback"),
        "{err}"
    );
}

#[tokio::test]
async fn a_delivery_to_a_granted_name_for_loopback_fails_and_reaches_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "ok" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let g = Grants::new(BTreeMap::from([(
        "ops".into(),
        vec![format!("localhost:{port}")],
    )]));
    let url = format!("http://localhost:{port}/hook");
    assert_eq!(g.refusal("ops", &url), None, "granted by name");
    let m = OutboxMessage {
        seq: 1,
        id: "n/1".into(),
        subscription: crate::store::ProjectionKey {
            name: "n".into(),
            version: 1,
        },
        team: "ops".into(),
        url,
        body: "{}".into(),
        attempts: 0,
        last_error: None,
    };
    let err = post(&client(&g, DEFAULT_REQUEST_TIMEOUT), &m)
        .await
        .expect_err("refused");
    assert!(err.contains("loopback"), "{err}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The same receiver named by its IP in the grant is reached.
    let by_ip = Grants::new(BTreeMap::from([(
        "ops".into(),
        vec![format!("127.0.0.1:{port}")],
    )]));
    let m = OutboxMessage {
        url: format!("http://127.0.0.1:{port}/hook"),
        ..m
    };
    post(&client(&by_ip, DEFAULT_REQUEST_TIMEOUT), &m)
        .await
        .expect("delivered");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
