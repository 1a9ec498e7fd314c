//! `WatchRevocations`: the login sessions whose tokens services must refuse, for services that
//! verify access tokens locally. The first batches hold every revocation still relevant after
//! the caller's cursor; then each new one is pushed as the feed finds it.

use std::collections::HashMap;

use atrium_proto::identity::v1 as pb;
use atrium_service_kit::auth::Principal;
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::convert::timestamp;
use crate::core::SharedCore;
use crate::entity::revocation;
use crate::revocation_feed::{LOOK_BACK, unseen};

/// Revocations per message.
const BATCH: usize = 1_000;

pub type RevocationStream = ReceiverStream<Result<pb::RevocationBatch, Status>>;

pub async fn watch(
    core: SharedCore,
    principal: &Principal,
    req: pb::WatchRevocationsRequest,
) -> ApiResult<RevocationStream> {
    if !principal.is_service() {
        return Err(ApiError::PermissionDenied(
            "WatchRevocations is for Atrium's services".into(),
        ));
    }
    // Subscribe before reading, so nothing falls between the first batch and the live ones.
    let mut live = core.revocations.subscribe();
    let mut stopped = core.revocations.stopped();
    let mut sent: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let first = unseen(&core.repo, req.after, Utc::now(), &sent).await?;
    let (tx, rx) = mpsc::channel(16);
    let mut cursor = req.after;
    tokio::spawn(async move {
        if !send(&tx, first, &mut cursor, &mut sent, true).await {
            return;
        }
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                _ = tx.closed() => return,
                _ = async { stopped.wait_for(|stopped| *stopped).await.map(|_| ()) } => return,
            };
            let rows = match received {
                Ok(rows) => rows
                    .iter()
                    .filter(|r| !sent.contains_key(&r.id))
                    .cloned()
                    .collect(),
                // Fell behind the feed: read what was missed from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    match unseen(&core.repo, cursor, Utc::now(), &sent).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(e))).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let now = Utc::now();
            sent.retain(|_, at| *at >= now - LOOK_BACK * 2);
            if !send(&tx, rows, &mut cursor, &mut sent, false).await {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

/// Sends `rows` in batches (an empty first batch too: the caller is then in sync); false when
/// the caller has gone.
async fn send(
    tx: &mpsc::Sender<Result<pb::RevocationBatch, Status>>,
    rows: Vec<revocation::Model>,
    cursor: &mut u64,
    sent: &mut HashMap<i64, DateTime<Utc>>,
    first: bool,
) -> bool {
    if rows.is_empty() && !first {
        return true;
    }
    let mut chunks: Vec<&[revocation::Model]> = rows.chunks(BATCH).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for chunk in chunks {
        for row in chunk {
            *cursor = (*cursor).max(u64::try_from(row.id).unwrap_or_default());
            sent.insert(row.id, row.created_at);
        }
        let batch = pb::RevocationBatch {
            revocations: chunk
                .iter()
                .map(|r| pb::Revocation {
                    login_session_id: r.login_session_id.clone(),
                    user_id: r.user_id.clone(),
                    forget_after: Some(timestamp(r.forget_after)),
                })
                .collect(),
            cursor: *cursor,
        };
        if tx.send(Ok(batch)).await.is_err() {
            return false;
        }
    }
    true
}
