//! Teams: tokens, namespaces, stream access, config checks.
use super::*;

fn teams() -> Teams {
    let a = TeamConfig {
        token: Some("token-a".into()),
        ..TeamConfig::default()
    };
    let b = TeamConfig {
        token_sha256: Some(hex::encode(Sha256::digest(b"token-b"))),
        append: false,
        ..TeamConfig::default()
    };
    Teams::new(
        BTreeMap::from([("a".into(), a), ("b".into(), b)]),
        Some(hex::encode(Sha256::digest(b"root"))),
    )
}

#[test]
fn a_dotted_name_never_reaches_another_team() {
    let default = Caller::Team(DEFAULT_TEAM.into());
    assert_eq!(default.qualify("incident-details"), "incident-details");
    let probe = default.qualify("ops.incident-details");
    assert_ne!(probe, "ops.incident-details");
    assert_eq!(split(&probe).0, DEFAULT_TEAM, "{probe}");
    let a = Caller::Team("a".into());
    assert_eq!(a.qualify("x"), "a.x");
    assert_eq!(split(&a.qualify("b.x")).0, "a");
    assert_eq!(Caller::Admin.qualify("ops.x"), "ops.x");
}

#[test]
fn tokens_name_their_team_and_nothing_else_gets_in() {
    let t = teams();
    assert_eq!(
        t.authenticate(Some("Bearer token-a")),
        Ok(Caller::Team("a".into()))
    );
    assert_eq!(
        t.authenticate(Some("Bearer token-b")),
        Ok(Caller::Team("b".into()))
    );
    assert_eq!(t.authenticate(Some("Bearer root")), Ok(Caller::Admin));
    assert_eq!(t.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
    assert_eq!(t.authenticate(Some("token-a")), Err(AuthError::Missing));
    assert_eq!(t.authenticate(None), Err(AuthError::Missing));
    let open = Teams::default();
    assert_eq!(
        open.authenticate(None),
        Ok(Caller::Team(DEFAULT_TEAM.into()))
    );
}

#[test]
fn names_live_in_their_team_namespace() {
    let a = Caller::Team("a".into());
    assert_eq!(a.qualify("incident-details"), "a.incident-details");
    assert_eq!(a.sees("a.incident-details"), Some("incident-details"));
    assert_eq!(a.sees("b.incident-details"), None);
    assert_eq!(a.sees("incident-details"), None, "the default team's");
    let d = Caller::Team(DEFAULT_TEAM.into());
    assert_eq!(d.qualify("x"), "x");
    assert_eq!(Caller::Admin.sees("b.x"), Some("b.x"));
}

#[test]
fn a_team_caller_naming_a_dotted_name_reaches_nothing() {
    let d = Caller::Team(DEFAULT_TEAM.into());
    let e = d.resolve("ops.incident-details").unwrap_err();
    assert!(e.contains("never hold a '.'"), "{e}");
    assert!(Caller::Team("ops".into()).resolve("ops.x").is_err());
    assert_eq!(d.resolve("x"), Ok("x".to_owned()));
    assert_eq!(Caller::Admin.resolve("ops.x"), Ok("ops.x".to_owned()));
    assert_eq!(team_of("ops.x"), "ops");
    assert_eq!(team_of("x..shadow"), DEFAULT_TEAM);
    assert_eq!(team_of("ops.x..shadow"), "ops");
}

#[test]
fn stream_access_follows_the_globs_and_the_old_switches() {
    let t = teams();
    let a = t.access("a");
    assert!(a.may_append("anything") && a.may_read("anything"));
    let b = t.access("b");
    assert!(
        !b.may_append("anything"),
        "append = false overrides the globs"
    );
    let globbed = TeamConfig {
        append_streams: Some(vec!["orders-*".into()]),
        read_streams: Some(vec!["orders-*".into(), "audit".into()]),
        read_events: false,
        tenants: Some(vec!["acme".into()]),
        ..TeamConfig::default()
    };
    let t = Teams::new(BTreeMap::from([("c".into(), globbed)]), None);
    let c = t.access("c");
    assert!(c.may_append("orders-1") && !c.may_append("payroll-1"));
    assert!(c.may_feed("audit") && !c.may_feed("audit-2"));
    assert!(
        !c.may_read("orders-1"),
        "read_events = false: no direct reads"
    );
    assert!(c.check_tenant("acme").is_ok() && c.check_tenant("globex").is_err());
    assert_eq!(t.access(DEFAULT_TEAM), StreamAccess::everything());
    assert_eq!(t.access_of(&Caller::Admin), StreamAccess::everything());
}

#[test]
fn bad_team_configs_are_named() {
    let same = TeamConfig {
        token: Some("root".into()),
        ..TeamConfig::default()
    };
    let t = Teams::new(
        BTreeMap::from([("c".into(), same)]),
        Some(hex::encode(Sha256::digest(b"root"))),
    );
    assert!(t.validate().unwrap_err().contains("same token"));
    let bad = Teams::new(
        BTreeMap::from([("Ops!".into(), TeamConfig::default())]),
        None,
    );
    assert!(bad.validate().unwrap_err().contains("Ops!"));
    for (cfg, says) in [
        (
            TeamConfig {
                append_streams: Some(vec![String::new()]),
                ..TeamConfig::default()
            },
            "[teams.d] append_streams",
        ),
        (
            TeamConfig {
                tenants: Some(vec!["a b".into()]),
                ..TeamConfig::default()
            },
            "[teams.d] tenants",
        ),
    ] {
        let t = Teams::new(BTreeMap::from([("d".into(), cfg)]), None);
        let e = t.validate().unwrap_err();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn a_stream_pattern_past_its_length_is_refused_by_name() {
    let long = TeamConfig {
        append_streams: Some(vec!["x".repeat(257)]),
        ..TeamConfig::default()
    };
    let err = Teams::new(BTreeMap::from([("c".into(), long)]), None)
        .validate()
        .expect_err("257 characters");
    assert!(err.contains("must be 1 to 256 characters"), "{err}");
    let fits = TeamConfig {
        append_streams: Some(vec!["x".repeat(256)]),
        ..TeamConfig::default()
    };
    Teams::new(BTreeMap::from([("c".into(), fits)]), None)
        .validate()
        .expect("256 characters");
}
