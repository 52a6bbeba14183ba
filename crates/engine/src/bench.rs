//! What `rappel bench` needs beyond the engine's API, kept narrow so that nothing else reaches
//! the store: throw-away PostgreSQL databases for a run, the rows each table of that throw-away
//! database holds (to count what a phase wrote), and the hand-off lateness of sent messages to
//! the millisecond (the sent box shows instants to the second). Nothing but the benchmarks uses
//! it.

use jiff::Timestamp;
use rappel_domain::notification::Kind;
pub use rappel_store::admin::{
    create_postgres_database, create_postgres_database_in, drop_postgres_database, table_rows,
};
use rappel_store::{NotificationFilter, Status};

use crate::{Engine, Result};

impl Engine {
    /// How late each message of `kind` due since `since` was handed off (decision instant minus
    /// due instant, in ms), sorted, read page by page.
    pub async fn bench_handoff_lateness_ms(
        &self,
        practice_id: &str,
        kind: Kind,
        since: Timestamp,
    ) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut tx = self.store().begin_read().await?;
            let page = tx
                .list_notifications(
                    practice_id,
                    &NotificationFilter {
                        status: Some(Status::Sent),
                        kind: Some(kind),
                        since: Some(since),
                        cursor: cursor.clone(),
                        limit: 1000,
                        ..NotificationFilter::default()
                    },
                )
                .await?;
            tx.commit().await?;
            let Some(last) = page.last() else { break };
            cursor = Some((last.due_at, last.key.clone()));
            for row in &page {
                if let Some(at) = row.decided_at {
                    out.push(at.duration_since(row.due_at).as_millis().max(0) as u32);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}
