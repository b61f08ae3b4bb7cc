//! PostgreSQL: the event store (appends, stream and page reads, the head).

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder, Row};
use tokio::sync::watch;

use super::PgStore;
use super::append::{append_in, first_use};
use super::convert::{EVENT_COLUMNS, EVENT_FROM, event_from_row};
use super::reads::{self, SNAPSHOT, Scan, head_in};
use crate::store::checks::validate;
use crate::store::{
    AppendRequest, AppendResult, EventStore, OrderHold, Page, Position, ReadBudget, RecordedEvent,
    StoreError, StreamId, UNORDERED_COUNTED,
};

/// Sequences per `ANY(...)` list.
const ID_LIST_CHUNK: usize = 1000;

#[async_trait]
impl EventStore for PgStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendResult, StoreError> {
        validate(&req, self.max_event_bytes)?;
        let mut tx = self.pool.begin().await?;
        let appended = append_in(&mut tx, &req).await?;
        tx.commit().await?;
        self.sequence.notify_one();
        let mut results = self.results(&[appended]).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Corrupt("an append without a result".into()))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        reads::committed_version(&mut conn, stream.as_str()).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        // The committed version, as appends check it: events of it still waiting
        // behind the fence are not listed yet, but an emit pinned to it holds.
        let version = reads::committed_version(&mut tx, stream.as_str()).await?;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {EVENT_FROM} WHERE e.stream_id = $1 \
             AND e.stream_version >= $2 AND e.stream_version <= $3 ORDER BY e.stream_version"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.as_str())
            .bind(i64::try_from(from_version).unwrap_or(i64::MAX))
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((version, events))
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        self.stream_page(stream, from_version, limit).await
    }

    async fn read_page(
        &self,
        after: Position,
        types: Option<&[String]>,
        budget: ReadBudget,
    ) -> Result<Page, StoreError> {
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let head = head_in(&mut tx).await?;
        let scan = Scan {
            after,
            upto: head,
            types,
            stream: None,
        };
        let page = reads::page_in(&mut tx, scan, budget.events, budget.bytes).await?;
        tx.commit().await?;
        Ok(Page::scanned(page.events, page.exhausted, head, after))
    }

    async fn read_events(
        &self,
        sequences: &[Position],
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut sorted = sequences.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.truncate(ID_LIST_CHUNK);
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let sizes: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT l.seq, (octet_length(e.data) + octet_length(e.metadata))::bigint \
             FROM log l JOIN events e ON e.position = l.position \
             WHERE l.seq = ANY($1) ORDER BY l.seq",
        )
        .bind(&sorted)
        .fetch_all(&mut *tx)
        .await?;
        let (count, _) = crate::store::page_cut(&sizes, max_bytes);
        let fitting: Vec<i64> = sizes[..count].iter().map(|&(seq, _)| seq).collect();
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {EVENT_COLUMNS} FROM {EVENT_FROM} WHERE l.seq = ANY("
        ));
        qb.push_bind(fitting).push(") ORDER BY l.seq");
        let rows = qb.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.stored_head().await
    }

    async fn idempotency_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, AppendResult)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some((stream, appended)) = first_use(&mut conn, team, key).await? else {
            return Ok(None);
        };
        drop(conn);
        let mut results = self.results(&[appended]).await?;
        Ok(results.pop().map(|r| (stream, r)))
    }

    async fn position_at_time(&self, micros: i64) -> Result<Position, StoreError> {
        // A scan, but once per deploy of a subscription that starts at a time.
        let first: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM log WHERE created_at >= $1")
                .bind(micros)
                .fetch_one(&self.pool)
                .await?;
        match first {
            Some(seq) => Ok(seq - 1),
            None => self.head().await,
        }
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.heads.subscribe()
    }

    async fn order_held(&self) -> Result<Option<OrderHold>, StoreError> {
        self.fence_holder().await
    }

    async fn head_and_unordered(&self) -> Result<(Position, u64), StoreError> {
        let mut conn = self.pool.acquire().await?;
        head_and_unordered(&mut conn).await
    }

    fn watch_types(&self, types: &[String]) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(self.heads.watcher(types))
    }

    fn last_of_types(&self, types: &[String]) -> Option<Position> {
        Some(self.heads.last_of_types(types))
    }
}

impl PgStore {
    /// [`EventStore::order_held`]: the oldest transaction with an id, when committed
    /// events wait behind the fence.
    pub(super) async fn fence_holder(&self) -> Result<Option<OrderHold>, StoreError> {
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let (_, waiting) = head_and_unordered(&mut tx).await?;
        if waiting == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        // Only this database's transactions hold its order (see the sequencer's fence).
        let row = sqlx::query(
            "SELECT pid, (extract(epoch FROM xact_start) * 1000000)::bigint, state \
             FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() \
               AND datid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             ORDER BY age(backend_xid) DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else {
            // Ended between the two reads: the next pass orders its events.
            return Ok(None);
        };
        Ok(Some(OrderHold {
            events_waiting: waiting,
            backend_pid: row.try_get(0)?,
            since: row.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
            state: row.try_get(2)?,
        }))
    }
}

/// The head and the committed events after the sequencer's cursor (not numbered
/// yet, counted up to [`UNORDERED_COUNTED`]), in one statement: one snapshot, so a
/// pass between two reads cannot count its events twice.
async fn head_and_unordered(conn: &mut sqlx::PgConnection) -> Result<(Position, u64), StoreError> {
    let (head, waiting): (i64, i64) = sqlx::query_as(
        "SELECT s.seq, (SELECT COUNT(*) FROM (SELECT 1 FROM events e \
             WHERE (e.transaction_id, e.position) > (s.transaction_id, s.position) \
             LIMIT $1) w) \
         FROM sequencer s WHERE s.id = 1",
    )
    .bind(UNORDERED_COUNTED as i64)
    .fetch_one(conn)
    .await?;
    Ok((head, u64::try_from(waiting).unwrap_or(0)))
}
