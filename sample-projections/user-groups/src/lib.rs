//! `user-groups`: the groups of each user, folded from the user's own stream and from
//! the streams of the groups that assign them (seed 004's `UserGroupsAssignment`).
//!
//! It shows *identities*: a document per user id, not per stream, and one
//! `MultipleUsersAssignedToGroup` event folded into the document of every user it
//! names. A user assigned to a group before registering still gets a document (with
//! no email yet), so no assignment is lost to the order streams were written in.

use std::fmt;

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
mod workload;

pub use workload::{WorkloadEvent, workload};

/// The longest user id accepted: the host's limit on a document id.
pub const MAX_USER_ID_LEN: usize = 256;

/// A user's id, which names the user's document.
///
/// Checked when the event is decoded, so a bad one is an error naming the event: left
/// to the host, an empty or overlong id (or one with control characters) would only be
/// refused as a document id, with no event to blame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UserId(String);

impl UserId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        if id.is_empty() || id.len() > MAX_USER_ID_LEN || id.chars().any(char::is_control) {
            return Err(format!(
                "user id {id:?} must be 1 to {MAX_USER_ID_LEN} bytes without control characters"
            ));
        }
        Ok(Self(id))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The events handled; each variant name is an event type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum UserEvent {
    /// A user signed up (usually the first event of the user's own stream).
    UserRegistered {
        /// Whose document this goes to.
        user_id: UserId,
        /// The address the user registered with.
        email: String,
    },
    /// A group took one member (an event of the group's stream).
    SingleUserAssignedToGroup {
        /// The group.
        group_id: String,
        /// The member.
        user_id: UserId,
    },
    /// A group took several members at once: folded into each member's document.
    MultipleUsersAssignedToGroup {
        /// The group.
        group_id: String,
        /// The members; one listed twice is assigned once.
        user_ids: Vec<UserId>,
    },
}

/// One user's document: the id is the user id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupsAssignment {
    /// The user id.
    pub id: String,
    /// The email the user registered with; `None` until `UserRegistered` is seen.
    pub email: Option<String>,
    /// The groups the user was assigned to, each once, in order of first assignment.
    pub groups: Vec<String>,
}

impl UserGroupsAssignment {
    fn join(&mut self, group_id: &str) {
        if !self.groups.iter().any(|g| g == group_id) {
            self.groups.push(group_id.to_owned());
        }
    }
}

/// The projection.
pub struct UserGroups;

impl Projection for UserGroups {
    type Event = UserEvent;
    type Doc = UserGroupsAssignment;
    const NAME: &'static str = "user-groups";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_ids(event: &Envelope<UserEvent>) -> Vec<String> {
        match &event.event {
            UserEvent::UserRegistered { user_id, .. }
            | UserEvent::SingleUserAssignedToGroup { user_id, .. } => vec![user_id.to_string()],
            // Duplicates are left in on purpose: the SDK folds an event into a
            // document once however often it is named.
            UserEvent::MultipleUsersAssignedToGroup { user_ids, .. } => {
                user_ids.iter().map(UserId::to_string).collect()
            }
        }
    }

    fn create(id: &str, event: &Envelope<UserEvent>) -> Option<UserGroupsAssignment> {
        let mut doc = UserGroupsAssignment {
            id: id.to_owned(),
            ..UserGroupsAssignment::default()
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut UserGroupsAssignment, event: &Envelope<UserEvent>) {
        match &event.event {
            // A second registration corrects the address rather than being refused:
            // a projection reports what the streams say.
            UserEvent::UserRegistered { email, .. } => doc.email = Some(email.clone()),
            UserEvent::SingleUserAssignedToGroup { group_id, .. }
            | UserEvent::MultipleUsersAssignedToGroup { group_id, .. } => doc.join(group_id),
        }
    }
}

refract_guest::export_projection!(UserGroups);
