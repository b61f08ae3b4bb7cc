//! `group-lookup`: custom grouping with lookups (seed 004's "custom groupers may look
//! up existing data"). Users join groups (`UserJoined { user, group, name }`) and are
//! renamed (`UserRenamed { user, name }`). Collection `user` keeps each user's name
//! and groups; collection `group` each group's members by name. A rename names no
//! group: its routing looks the user's own document up and sends it to every group
//! listed there.

use std::collections::{BTreeMap, BTreeSet};

use refract_guest::lookup::lookup;
use refract_guest::{DocRef, Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The events.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Membership {
    UserJoined {
        user: String,
        group: String,
        name: String,
    },
    UserRenamed {
        user: String,
        name: String,
    },
}

/// A document of either collection (stored untagged).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Doc {
    /// `user/{id}`.
    User {
        /// The user's name now.
        name: String,
        /// The groups the user joined.
        groups: BTreeSet<String>,
    },
    /// `group/{id}`.
    Group {
        /// Members by id, with their names now.
        members: BTreeMap<String, String>,
    },
}

/// The projection.
pub struct GroupLookup;

impl Projection for GroupLookup {
    type Event = Membership;
    type Doc = Doc;
    const NAME: &'static str = "group-lookup";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const COLLECTIONS: &'static [&'static str] = &["user", "group"];
    const LOOKUPS: bool = true;

    fn doc_refs(event: &Envelope<Membership>) -> Vec<DocRef> {
        match &event.event {
            Membership::UserJoined { user, group, .. } => vec![
                DocRef::in_collection("user", user.clone()),
                DocRef::in_collection("group", group.clone()),
            ],
            Membership::UserRenamed { user, .. } => {
                let me = DocRef::in_collection("user", user.clone());
                let groups = match lookup::<Doc>(&me) {
                    Some(Doc::User { groups, .. }) => groups,
                    _ => BTreeSet::new(),
                };
                std::iter::once(me)
                    .chain(
                        groups
                            .into_iter()
                            .map(|g| DocRef::in_collection("group", g)),
                    )
                    .collect()
            }
        }
    }

    fn create(_id: &str, _event: &Envelope<Membership>) -> Option<Doc> {
        None
    }

    fn create_in(doc: &DocRef, event: &Envelope<Membership>) -> Option<Doc> {
        let mut new = match doc.collection() {
            Some("user") => Doc::User {
                name: String::new(),
                groups: BTreeSet::new(),
            },
            Some("group") => Doc::Group {
                members: BTreeMap::new(),
            },
            _ => return None,
        };
        Self::apply(&mut new, event);
        Some(new)
    }

    fn apply(doc: &mut Doc, event: &Envelope<Membership>) {
        match (doc, &event.event) {
            (Doc::User { name, groups }, Membership::UserJoined { group, name: n, .. }) => {
                *name = n.clone();
                groups.insert(group.clone());
            }
            (Doc::User { name, .. }, Membership::UserRenamed { name: n, .. }) => *name = n.clone(),
            (Doc::Group { members }, Membership::UserJoined { user, name, .. }) => {
                members.insert(user.clone(), name.clone());
            }
            (Doc::Group { members }, Membership::UserRenamed { user, name }) => {
                if let Some(known) = members.get_mut(user) {
                    *known = name.clone();
                }
            }
        }
    }
}

refract_guest::export_projection!(GroupLookup);

#[cfg(test)]
mod tests {
    use refract_guest::DocRef;
    use refract_guest::testing::{given, project_all_in_pages};
    use serde_json::json;

    use super::GroupLookup as P;

    fn joined(user: &str, group: &str, name: &str) -> serde_json::Value {
        json!({"user": user, "group": group, "name": name})
    }

    #[test]
    fn a_rename_reaches_every_group_the_users_document_lists() {
        let events = given()
            .event("m-1", "UserJoined", joined("u1", "red", "Ann"))
            .event("m-2", "UserJoined", joined("u1", "blue", "Ann"))
            .event("m-3", "UserJoined", joined("u2", "red", "Bob"))
            .event("u-1", "UserRenamed", json!({"user": "u1", "name": "Anna"}));
        // A page an event: the rename's lookup sees the joins.
        let docs = project_all_in_pages::<P>(events.events(), 1).expect("fold");
        let doc = |c: &str, id: &str| docs.get(&DocRef::in_collection(c, id)).cloned();
        assert_eq!(
            doc("group", "red"),
            Some(json!({"members": {"u1": "Anna", "u2": "Bob"}}))
        );
        assert_eq!(
            doc("group", "blue"),
            Some(json!({"members": {"u1": "Anna"}}))
        );
        assert_eq!(
            doc("user", "u1"),
            Some(json!({"name": "Anna", "groups": ["blue", "red"]}))
        );
        // One page: the rename looked up a document the page writes, so the page is
        // narrowed: the same documents, whatever the page size.
        assert_eq!(
            events.doc_in::<P>("group", "red"),
            Some(json!({"members": {"u1": "Anna", "u2": "Bob"}}))
        );
    }

    #[test]
    fn a_rename_of_a_user_with_no_document_reaches_no_group() {
        let events = given().event("u-1", "UserRenamed", json!({"user": "u1", "name": "A"}));
        let docs = project_all_in_pages::<P>(events.events(), 1).expect("fold");
        assert_eq!(docs.len(), 1, "only the user's own document: {docs:?}");
    }
}
