//! Push messages: every device of the patient, and the subscriptions the push service says are
//! gone.

use std::sync::Arc;

use jiff::Timestamp;
use rappel_channels::{ChannelError, Receipt, Transport};
use rappel_store::Tx;

use super::Ready;
use crate::Result;
use crate::ingest::replan;
use crate::practice::PracticeCtx;

/// Hands a push message to each of the patient's devices, concurrently.
///
/// The message is sent when one device accepted it: a device that failed meanwhile is not
/// tried again, since the patient has it on another. Subscriptions the push service says are
/// gone are forgotten whatever the others answered (`Ready::gone`). When no device accepted
/// it, a transient error wins (the message is retried later, on the devices left), then a
/// permanent one, and only when every device is gone does the message fail as gone.
pub(super) async fn send_to_every_device(
    transport: &Arc<dyn Transport>,
    item: &mut Ready,
) -> std::result::Result<Receipt, ChannelError> {
    let mut tasks = tokio::task::JoinSet::new();
    for device in &item.devices {
        let mut message = item.message.clone();
        message.to = device.endpoint.clone();
        message.push = Some(Box::new(device.clone()));
        let transport = transport.clone();
        tasks.spawn(async move {
            let outcome = transport.send(&message).await;
            (message.to, outcome)
        });
    }
    let mut accepted = None;
    let mut transient = None;
    let mut permanent = None;
    let mut gone = None;
    while let Some(joined) = tasks.join_next().await {
        let (endpoint, outcome) = match joined {
            Ok(done) => done,
            Err(error) => (
                String::new(),
                Err(ChannelError::Transient {
                    reason: format!("the push channel panicked: {error}"),
                    retry_after: None,
                }),
            ),
        };
        match outcome {
            Ok(receipt) => {
                accepted.get_or_insert(receipt);
            }
            Err(error @ ChannelError::Transient { .. }) => {
                transient.get_or_insert(error);
            }
            Err(error @ ChannelError::Permanent(_)) => {
                permanent.get_or_insert(error);
            }
            Err(error @ ChannelError::Gone(_)) => {
                item.gone.push(endpoint);
                gone.get_or_insert(error);
            }
        }
    }
    item.gone.sort_unstable();
    match (accepted, transient, permanent, gone) {
        (Some(receipt), ..) => Ok(receipt),
        (None, Some(error), ..)
        | (None, None, Some(error), _)
        | (None, None, None, Some(error)) => Err(error),
        (None, None, None, None) => Err(ChannelError::Transient {
            reason: "no device answered".into(),
            retry_after: None,
        }),
    }
}

/// The push service says this subscription no longer exists: the patient forgets it and is
/// re-planned, so their later push messages go to their next subscription or, with none left,
/// are re-planned for a patient without push instead of failing one by one.
pub(super) async fn forget_push_subscription(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    patient_id: &str,
    endpoint: &str,
    now: Timestamp,
) -> Result<()> {
    let pid = ctx.row.id.as_str();
    let Some(mut patient) = tx.patient_for_update(pid, patient_id).await? else {
        return Ok(());
    };
    let before = patient.push_subscriptions.len();
    patient
        .push_subscriptions
        .retain(|s| s.endpoint != endpoint);
    if patient.push_subscriptions.len() != before {
        tx.upsert_patient(pid, &patient, now).await?;
        replan(tx, ctx, patient_id, now).await?;
    }
    Ok(())
}
