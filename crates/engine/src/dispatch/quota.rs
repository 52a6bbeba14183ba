//! The monthly SMS quota: the one in force, and the notification centre's alerts as it is spent.

use jiff::Timestamp;
use rappel_domain::policy::InboxBox;
use rappel_domain::template::MONTHS_FR;
use rappel_store::{InboxRow, Tx};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::practice::PracticeCtx;

/// The monthly SMS quota in force, if any (`[quota]` of the policy).
pub(crate) fn sms_quota(ctx: &PracticeCtx) -> Option<i64> {
    let spec = ctx.policy.quota.as_ref()?;
    if !spec
        .when
        .iter()
        .all(|(o, values)| ctx.settings.is_one_of(o, values))
    {
        return None;
    }
    ctx.settings.integer(&spec.sms_per_month)
}

/// Tells the notification centre, once a month each, when 80 % of the monthly SMS quota is
/// spent and when it is spent entirely (an SMS was not sent for it). Entries have one id per
/// practice, month and threshold, so the many SMS of a busy month add each entry once.
pub(super) async fn sms_quota_alert(
    tx: &mut Tx,
    practice_id: &str,
    month: &str,
    limit: i64,
    exhausted: bool,
    now: Timestamp,
) -> Result<()> {
    // The quota counts billed SMS (segments, SPEC.md decision 9).
    let (_, billed) = tx.sms_usage(practice_id, month).await?;
    let of_month = french_month_complement(month);
    // Spent entirely (the last SMS of the quota went, or one was refused): one entry; 80 %
    // spent: another, before it.
    let (threshold, title, text) = if exhausted || billed >= limit {
        (
            "100",
            "Quota de SMS atteint".to_string(),
            format!(
                "Les {limit} SMS du forfait {of_month} sont envoyés : les SMS suivants ne partent \
                 pas (motif « quota épuisé ») jusqu'au 1er du mois prochain. Les emails \
                 continuent de partir."
            ),
        )
    } else if billed * 5 >= limit * 4 {
        (
            "80",
            "Quota de SMS bientôt atteint".to_string(),
            format!(
                "{billed} SMS sur les {limit} du forfait {of_month} sont envoyés. Une fois le \
                 quota atteint, les SMS ne partent plus jusqu'au 1er du mois prochain."
            ),
        )
    } else {
        return Ok(());
    };
    let id = hex::encode(&Sha256::digest(format!("sms_quota/{month}/{threshold}").as_bytes())[..8]);
    tx.insert_inbox(&InboxRow {
        practice_id: practice_id.to_string(),
        id,
        inbox: InboxBox::Notifications.as_str().to_string(),
        document: None,
        patient_id: None,
        title,
        text,
        created_at: now,
        resolved_at: None,
    })
    .await?;
    Ok(())
}

/// `2026-03` → « de mars 2026 », `2026-04` → « d'avril 2026 ».
fn french_month_complement(month: &str) -> String {
    let name = month
        .split_once('-')
        .and_then(|(year, m)| match m.parse::<usize>() {
            Ok(n @ 1..=12) => Some(format!("{} {year}", MONTHS_FR[n - 1])),
            _ => None,
        })
        .unwrap_or_else(|| month.to_string());
    if name.starts_with(['a', 'o']) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}
