//! Web Push subscriptions: a patient's browser subscribes (through the practice's web page and
//! the server) and unsubscribes; each change re-plans the patient, since whether they can be
//! reached by push decides which messages exist (`no_push_subscription`).
//!
//! The keys arrive here already checked by the server; a subscription the push service later
//! declares gone is dropped by the dispatcher (`ChannelError::Gone`).

use rappel_domain::facts::PushSubscription;

use crate::ingest::replan;
use crate::practice::load_practice;
use crate::{Engine, EngineError, PutOutcome, Result};

impl Engine {
    /// Adds a subscription to a patient, or replaces the one with the same endpoint (a browser
    /// that renewed its keys). Answers `Created` for a new endpoint.
    pub async fn put_push_subscription(
        &self,
        practice_id: &str,
        patient_id: &str,
        subscription: &PushSubscription,
    ) -> Result<PutOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.is_erased(practice_id, patient_id).await? {
            return Err(EngineError::not_found("patient", patient_id));
        }
        let mut patient = tx
            .patient_for_update(practice_id, patient_id)
            .await?
            .ok_or_else(|| EngineError::not_found("patient", patient_id))?;
        let outcome = match patient
            .push_subscriptions
            .iter_mut()
            .find(|s| s.endpoint == subscription.endpoint)
        {
            Some(existing) if existing == subscription => PutOutcome::Unchanged,
            Some(existing) => {
                *existing = subscription.clone();
                PutOutcome::Updated
            }
            None => {
                patient.push_subscriptions.push(subscription.clone());
                PutOutcome::Created
            }
        };
        if outcome != PutOutcome::Unchanged {
            tx.upsert_patient(practice_id, &patient, now).await?;
            replan(&mut tx, &ctx, patient_id, now).await?;
        }
        tx.commit().await?;
        self.signal();
        Ok(outcome)
    }

    /// Removes the subscription with this endpoint (the browser unsubscribed). An unknown
    /// patient or endpoint is `NotFound`.
    pub async fn delete_push_subscription(
        &self,
        practice_id: &str,
        patient_id: &str,
        endpoint: &str,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let mut patient = tx
            .patient_for_update(practice_id, patient_id)
            .await?
            .ok_or_else(|| EngineError::not_found("patient", patient_id))?;
        let before = patient.push_subscriptions.len();
        patient
            .push_subscriptions
            .retain(|s| s.endpoint != endpoint);
        if patient.push_subscriptions.len() == before {
            // The endpoint itself is a capability: it is not echoed back.
            return Err(EngineError::not_found("push subscription", "(endpoint)"));
        }
        tx.upsert_patient(practice_id, &patient, now).await?;
        replan(&mut tx, &ctx, patient_id, now).await?;
        tx.commit().await?;
        self.signal();
        Ok(())
    }
}
