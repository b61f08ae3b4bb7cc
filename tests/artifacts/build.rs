//! Compiles every guest the tests use to a wasm32-wasip2 component, with a nested
//! cargo in its own target directory (the outer build holds the main one's lock).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, constant name) of each guest.
const GUESTS: &[(&str, &str)] = &[
    ("legacy-counter", "LEGACY_COUNTER"),
    ("capped-counter", "CAPPED_COUNTER"),
    ("word-counter", "WORD_COUNTER"),
    ("incident-details", "INCIDENT_DETAILS_V1"),
    ("incident-details-v2", "INCIDENT_DETAILS_V2"),
    ("stream-counter", "STREAM_COUNTER"),
    ("incident-details-edited", "INCIDENT_DETAILS_EDITED"),
    ("incident-details-panicky", "INCIDENT_DETAILS_PANICKY"),
    ("money-transfer", "MONEY_TRANSFER"),
    ("account-balance", "ACCOUNT_BALANCE"),
    ("incident-notifier", "INCIDENT_NOTIFIER"),
    ("incident-notifier-v2", "INCIDENT_NOTIFIER_V2"),
    ("hot-notifier", "HOT_NOTIFIER"),
    ("hostile-loop", "HOSTILE_LOOP"),
    ("hostile-alloc", "HOSTILE_ALLOC"),
    ("hostile-recursion", "HOSTILE_RECURSION"),
    ("hostile-big-result", "HOSTILE_BIG_RESULT"),
    ("hostile-panic", "HOSTILE_PANIC"),
    ("hostile-wasi", "HOSTILE_WASI"),
    ("value-sum", "VALUE_SUM"),
    ("value-sum-fixed", "VALUE_SUM_FIXED"),
    ("value-sum-doubled", "VALUE_SUM_DOUBLED"),
    ("live-sum", "LIVE_SUM"),
    ("live-custom", "LIVE_CUSTOM"),
    ("emit-probe", "EMIT_PROBE"),
    ("emit-probe-v100", "EMIT_PROBE_V100"),
    ("outbox-probe", "OUTBOX_PROBE"),
    ("hostile-bounds", "HOSTILE_BOUNDS"),
    ("hostile-types", "HOSTILE_TYPES"),
    ("hostile-emits", "HOSTILE_EMITS"),
    ("hostile-sleep", "HOSTILE_SLEEP"),
    ("hostile-sleep-describe", "HOSTILE_SLEEP_DESCRIBE"),
    ("bulk-counter", "BULK_COUNTER"),
    ("user-groups", "USER_GROUPS"),
    ("day-travel", "DAY_TRAVEL"),
    ("monthly-allocation", "MONTHLY_ALLOCATION"),
    ("tenant-rollup", "TENANT_ROLLUP"),
    ("word-count", "WORD_COUNT"),
    ("hostile-collections", "HOSTILE_COLLECTIONS"),
    ("group-lookup", "GROUP_LOOKUP"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .expect("tests/artifacts sits two levels below the workspace root")
        .to_owned();
    for dir in ["guest-sdk", "sample-projections", "tests/guests", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest"])
        .env("CARGO_TARGET_DIR", &target_dir);
    for (package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // The outer build's settings are for the host, not for wasm guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo to build the guests");
    assert!(
        status.success(),
        "building the guests failed; is the wasm target installed? \
         (`rustup target add wasm32-wasip2`)"
    );
    let mut consts = String::new();
    for (package, name) in GUESTS {
        let file = target_dir
            .join("wasm32-wasip2")
            .join("guest")
            .join(format!("{}.wasm", package.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        consts.push_str(&format!(
            "/// The compiled `{package}` component.\npub const {name}: &str = {:?};\n",
            file.display().to_string()
        ));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("guests.rs");
    std::fs::write(out, consts).expect("cannot write guests.rs");
}
