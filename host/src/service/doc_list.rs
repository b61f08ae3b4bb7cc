//! Listing a version's documents without knowing their ids (keyset pages by id
//! prefix and a field's value; see [`crate::store::doc_list`]).

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Refract, ServiceError};
use crate::identity::doc_key::{DEFAULT_COLLECTION_FLOOR, collection_prefix, split_key};
use crate::store::{DocQuery, Position, StoreError};

/// One page of a listing, as the API answers it.
#[derive(Debug, Serialize)]
pub struct DocPage {
    /// The version listed: pass it as `version` for the next pages, so a promote
    /// between them does not mix two versions' documents.
    pub version: u32,
    /// The documents, in id order.
    pub documents: Vec<ListedDoc>,
    /// The `after` of the next page; null when nothing is left.
    pub next: Option<String>,
    /// Documents this request scanned (a rare filter may scan many, find few).
    pub scanned: usize,
}

/// One listed document.
#[derive(Debug, Serialize)]
pub struct ListedDoc {
    /// Its id.
    pub id: String,
    /// Its JSON, as stored.
    pub document: Box<RawValue>,
}

impl Refract {
    /// One page of the live version's (or `version`'s) documents of `name`; with
    /// `wait`, once that version has projected the sequence (read your writes).
    /// `collection` lists a named collection instead of the default one: its ids
    /// (prefix, after, next) are the ids within it.
    pub async fn list_docs(
        &self,
        name: &str,
        version: Option<u32>,
        collection: Option<&str>,
        q: &DocQuery,
        wait: Option<(Position, Duration)>,
    ) -> Result<DocPage, ServiceError> {
        let key = self.resolve_projection(name, version).await?;
        if self.is_live(&key) {
            return Err(ServiceError::CustomDocuments(format!(
                "{key} is live: it stores no documents to list; read one by its stream's id"
            )));
        }
        self.check_collection(&key, collection)?;
        let q = &in_collection(q, collection);
        if let Some((after, timeout)) = wait {
            self.wait_projected(&key, after, timeout).await?;
        }
        // Bounded like the other reads that may bring megabytes: the team's share
        // of the read permits, and a few store reads at once.
        let team_permit = self.team_permit(&key.name)?;
        let read = self.store.list_docs(&key, q);
        let (_permit, list) = self.guest_reads.read(&key, team_permit, read).await?;
        let documents = list
            .docs
            .into_iter()
            .map(|(id, body)| {
                let document = RawValue::from_string(body).map_err(|e| {
                    StoreError::Corrupt(format!("document {id:?} of {key} is not JSON: {e}"))
                })?;
                Ok(ListedDoc {
                    id: split_key(&id).1.to_owned(),
                    document,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(DocPage {
            version: key.version,
            documents,
            next: list.next.map(|next| split_key(&next).1.to_owned()),
            scanned: list.scanned,
        })
    }
}

/// The store's query for `q` within `collection`: a named collection's keys share
/// a prefix; the default collection's ids all sort above every named one's.
fn in_collection(q: &DocQuery, collection: Option<&str>) -> DocQuery {
    let mut q = q.clone();
    match collection {
        Some(c) => {
            let start = collection_prefix(c);
            q.after = q.after.map(|after| format!("{start}{after}"));
            q.prefix = format!("{start}{}", q.prefix);
        }
        None => {
            let floor = DEFAULT_COLLECTION_FLOOR;
            if q.after.as_deref().is_none_or(|after| after < floor) {
                q.after = Some(floor.to_owned());
            }
        }
    }
    q
}
