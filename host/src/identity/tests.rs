use super::*;

fn refused(r: Result<(), Invalid>) -> String {
    r.expect_err("refused").0
}

#[test]
fn text_ids_are_bounded_and_free_of_control_characters() {
    for ok in ["a", "order-1/line 2", "Ünïcode ✓", &"x".repeat(256)] {
        assert_eq!(check_text("stream id", ok, 256), Ok(()), "{ok:?}");
        assert!(is_text(ok, 256), "{ok:?}");
    }
    assert_eq!(
        refused(check_text("stream id", "", 256)),
        "stream id is empty"
    );
    assert_eq!(
        refused(check_text("stream id", &"x".repeat(257), 256)),
        "stream id is 257 bytes long; the limit is 256"
    );
    assert_eq!(
        refused(check_text("event_type", "a\nERROR", 256)),
        "event_type \"a\\nERROR\" contains a control character"
    );
    for bad in ["", "a\u{7}", "tab\there", &"x".repeat(257)] {
        assert!(!is_text(bad, 256), "{bad:?}");
    }
    // The limit is in bytes: 128 two-byte characters fit, 129 do not.
    assert!(is_text(&"é".repeat(128), MAX_STREAM_ID_LEN));
    assert!(check_stream_id(&"é".repeat(129)).is_err());
    assert_eq!(check_stream_id("account-42"), Ok(()));
}

#[test]
fn component_names_start_with_a_letter_and_hold_no_dot() {
    for ok in ["p", "incident-details", "a_1", &"a".repeat(MAX_NAME_LEN)] {
        assert_eq!(check_component_name(ok), Ok(()), "{ok:?}");
    }
    for bad in ["1st", "-x", "_x", "Upper", "ops.x", "a b", "é"] {
        let e = refused(check_component_name(bad));
        assert!(
            e.contains("must start with a-z and hold only"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(
        refused(check_component_name("")),
        "name \"\" (0 bytes) must be 1 to 48 characters"
    );
    // A guest's long name is clipped in the message.
    assert_eq!(
        refused(check_component_name(&"n".repeat(10_000))),
        format!(
            "name \"{}\"… (10000 bytes) must be 1 to 48 characters",
            "n".repeat(64)
        )
    );
}

#[test]
fn team_names_allow_a_leading_digit_but_no_dot_or_upper_case() {
    for ok in ["ops", "1team", "-", "a_b-c", &"t".repeat(MAX_TEAM_NAME_LEN)] {
        assert_eq!(check_team_name(ok), Ok(()), "{ok:?}");
    }
    for bad in ["", "Ops", "ops.eu", "a b", &"t".repeat(33)] {
        assert_eq!(
            refused(check_team_name(bad)),
            format!("team name {bad:?} must be 1 to 32 of a-z, 0-9, '-' and '_'")
        );
    }
}

#[test]
fn tenants_allow_upper_case_dots_and_nothing_else() {
    for ok in ["acme", "Acme.EU-1_x", &"t".repeat(MAX_TENANT_LEN)] {
        assert_eq!(check_tenant(ok), Ok(()), "{ok:?}");
    }
    assert_eq!(
        refused(check_tenant("")),
        "tenant must be 1 to 64 characters (got 0 bytes)"
    );
    assert!(refused(check_tenant(&"t".repeat(65))).contains("(got 65 bytes)"));
    assert_eq!(
        refused(check_tenant("a b")),
        "tenant \"a b\" holds ' '; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
    );
    assert!(check_tenant("a\nERROR").is_err());
}

#[test]
fn the_expected_version_rule() {
    use ExpectedVersion::*;
    assert!(Any.accepts(0) && Any.accepts(7));
    assert!(NoStream.accepts(0) && !NoStream.accepts(1));
    assert!(Exact(3).accepts(3) && !Exact(3).accepts(2) && !Exact(3).accepts(0));
    assert_eq!(
        [None, Some(0), Some(5)].map(ExpectedVersion::from_option),
        [Any, NoStream, Exact(5)]
    );
    assert_eq!(
        [Any, NoStream, Exact(5)].map(ExpectedVersion::describe),
        ["any", "no stream (0)", "5"]
    );
}

#[test]
fn an_invalid_reads_as_its_message() {
    let e = Invalid("tenant is bad".into());
    assert_eq!(e.to_string(), "tenant is bad");
    assert_eq!(String::from(e), "tenant is bad");
}
