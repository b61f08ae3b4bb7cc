//! Team namespaces: a component's internal name is `<team>.<name>`, or the plain name
//! for the implicit `default` team; a candidate build adds [`SHADOW_SUFFIX`]. One
//! rule, read by the API (who owns a name), the runtime (whose CPU turn a call takes)
//! and the store (the candidate's tables).

/// The implicit team of a daemon without teams (and of the admin's deploys).
pub const DEFAULT_TEAM: &str = "default";

/// What a candidate's internal name ends with: two dots, so it can neither be named
/// by a caller nor collide with a deployed component.
pub const SHADOW_SUFFIX: &str = "..shadow";

/// The team whose component (or candidate of one) has the internal name `internal`.
pub fn team_of(internal: &str) -> &str {
    let name = internal.strip_suffix(SHADOW_SUFFIX).unwrap_or(internal);
    split(name).0
}

/// The internal name of `team`'s component `name`.
pub fn qualified(team: &str, name: &str) -> String {
    if team == DEFAULT_TEAM {
        name.to_owned()
    } else {
        format!("{team}.{name}")
    }
}

/// The team an internal name belongs to, and the name the team knows it by.
pub fn split(internal: &str) -> (&str, &str) {
    internal.split_once('.').unwrap_or((DEFAULT_TEAM, internal))
}
