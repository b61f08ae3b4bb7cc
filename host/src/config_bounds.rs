//! Ceilings on the knobs that bound what a guest or a team may cost: a typo in the
//! config (an extra zero or two) must not quietly reopen a hole the knob closes.

use crate::config::Config;
use crate::daemon::EmitBudget;
use crate::runtime::Limits;

/// Most documents (and event indices) one page's `slice` may name, whatever the config.
pub const MAX_DOCS_PER_PAGE: usize = 1_000_000;
/// Most events one page may emit, per event or per page.
pub const MAX_EMITS: usize = 100_000;
/// Most bytes one page may emit, per event or per page.
pub const MAX_EMIT_BYTES: usize = 64 << 20;
/// Largest outbox message body.
pub const MAX_OUTBOX_BYTES: usize = 64 << 20;
/// Most request-driven guest calls of one team at once.
pub const MAX_CONCURRENT_CALLS: usize = 64;
/// Largest `max_waiting_reads` of a team.
pub const MAX_WAITING_READS: usize = 4_096;
/// Most instances of all teams together (the pool is sized to their sum).
pub const MAX_INSTANCES_TOTAL: usize = 8_192;

/// Shortest lease: renewed every third of it, so below this a busy database or a
/// slow tick would lose leases of healthy nodes.
pub const MIN_LEASE_TTL_MS: usize = 1_000;
/// Longest lease: a dead node's agents wait this long to be taken over.
pub const MAX_LEASE_TTL_MS: usize = 60_000;

/// Checks every bounded knob of the daemon and of each team.
pub fn check(c: &Config) -> Result<(), String> {
    limits("[limits]", &c.limits)?;
    emits("[emits]", &c.emits)?;
    within(
        "max_outbox_bytes",
        c.max_outbox_bytes,
        1 << 10,
        MAX_OUTBOX_BYTES,
    )?;
    within(
        "[cluster] lease_ttl_ms",
        c.cluster.lease_ttl_ms as usize,
        MIN_LEASE_TTL_MS,
        MAX_LEASE_TTL_MS,
    )?;
    if let Some(id) = &c.cluster.node_id {
        crate::identity::validate_node_id(id)?;
    }
    let mut instances = 0usize;
    for (name, t) in &c.teams {
        if let Some(l) = &t.limits {
            limits(&format!("[teams.{name}] limits"), l)?;
        }
        if let Some(e) = &t.emits {
            emits(&format!("[teams.{name}] emits"), e)?;
        }
        within(
            &format!("[teams.{name}] max_concurrent_calls"),
            t.max_concurrent_calls,
            1,
            MAX_CONCURRENT_CALLS,
        )?;
        within(
            &format!("[teams.{name}] max_waiting_reads"),
            t.max_waiting_reads,
            1,
            MAX_WAITING_READS,
        )?;
        instances += t
            .max_instances
            .unwrap_or(crate::runtime::DEFAULT_TEAM_INSTANCES);
    }
    if instances > MAX_INSTANCES_TOTAL {
        return Err(format!(
            "the teams' max_instances add up to {instances}, above {MAX_INSTANCES_TOTAL} \
             (the instance pool is sized to their sum)"
        ));
    }
    Ok(())
}

fn limits(at: &str, l: &Limits) -> Result<(), String> {
    if let Some(d) = l.max_docs_per_page {
        within(&format!("{at} max_docs_per_page"), d, 1, MAX_DOCS_PER_PAGE)?;
    }
    Ok(())
}

fn emits(at: &str, e: &EmitBudget) -> Result<(), String> {
    within(
        &format!("{at} max_emits_per_event"),
        e.max_emits_per_event,
        1,
        MAX_EMITS,
    )?;
    within(
        &format!("{at} max_emits_per_page"),
        e.max_emits_per_page,
        1,
        MAX_EMITS,
    )?;
    within(
        &format!("{at} max_emit_bytes_per_event"),
        e.max_emit_bytes_per_event,
        1 << 10,
        MAX_EMIT_BYTES,
    )?;
    within(
        &format!("{at} max_emit_bytes_per_page"),
        e.max_emit_bytes_per_page,
        1 << 10,
        MAX_EMIT_BYTES,
    )
}

fn within(what: &str, value: usize, low: usize, high: usize) -> Result<(), String> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!("{what} = {value} is outside {low}..={high}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node id one byte past `MAX_NODE_ID_LEN`.
    const LONG_NODE_ID: &str = concat!(
        "[cluster]\nnode_id = \"",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "\"\n"
    );

    #[test]
    fn knobs_past_their_ceiling_are_refused_by_name() {
        let bad = [
            (
                "[limits]\nmax_docs_per_page = 100000000\n",
                "max_docs_per_page",
            ),
            ("[emits]\nmax_emits_per_page = 0\n", "max_emits_per_page"),
            (
                "[emits]\nmax_emit_bytes_per_page = 10000000000\n",
                "max_emit_bytes_per_page",
            ),
            ("max_outbox_bytes = 1000000000\n", "max_outbox_bytes"),
            ("[cluster]\nlease_ttl_ms = 999\n", "lease_ttl_ms"),
            ("[cluster]\nlease_ttl_ms = 60001\n", "lease_ttl_ms"),
            ("[cluster]\nnode_id = \"a\\u0007b\"\n", "node id"),
            (LONG_NODE_ID, "node id is 129 bytes"),
            (
                "[teams.a]\nmax_waiting_reads = 4097\n",
                "[teams.a] max_waiting_reads",
            ),
            (
                "[teams.a]\nmax_waiting_reads = 0\n",
                "[teams.a] max_waiting_reads",
            ),
            (
                "[teams.a]\nmax_concurrent_calls = 0\n",
                "[teams.a] max_concurrent_calls",
            ),
            (
                "[teams.a]\nmax_instances = 4096\n[teams.b]\nmax_instances = 4096\n[teams.c]\nmax_instances = 10\n",
                "add up to",
            ),
        ];
        for (text, named) in bad {
            let c: Config = toml::from_str(text).expect("parses");
            let err = c.teams().expect_err(text);
            assert!(err.contains(named), "{text}: {err}");
        }
        let ok: Config = toml::from_str("[teams.a]\nmax_instances = 100\n").expect("parses");
        ok.teams().expect("within every bound");
    }
}
