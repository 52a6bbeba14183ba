//! Reconciliation: the difference between what the planner wants and what is stored, as a list
//! of writes the store applies in the planning transaction (SPEC.md rule 1).
//!
//! Pure, so it is tested without a database. Rows already handed to a provider, or suppressed
//! for a final reason, are history and never touched; pending rows follow the plan; rows the plan
//! no longer wants become `superseded`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rappel_domain::notification::{Desired, DesiredState, Reason};
use rappel_store::{NotificationRow, Status};

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Insert(NotificationRow),
    Update(NotificationRow),
}

pub fn reconcile(
    practice_id: &str,
    existing: &[NotificationRow],
    desired: &[Desired],
    now: Timestamp,
) -> Vec<Write> {
    let by_key: BTreeMap<&str, &NotificationRow> =
        existing.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut writes = Vec::new();
    let mut wanted = std::collections::BTreeSet::new();
    for d in desired {
        wanted.insert(d.key.as_str());
        match by_key.get(d.key.as_str()) {
            None => writes.push(Write::Insert(new_row(practice_id, d, now))),
            Some(row) => {
                if let Some(updated) = revise(row, d, now) {
                    writes.push(Write::Update(updated));
                }
            }
        }
    }
    for row in existing {
        // Task messages and manual resends are not the planner's: it never cancels them.
        if !planner_owns(row) || wanted.contains(row.key.as_str()) {
            continue;
        }
        if row.status == Status::Pending {
            let mut r = row.clone();
            suppress(&mut r, Reason::Superseded, now);
            writes.push(Write::Update(r));
        }
    }
    writes
}

/// Rows the engine creates on request (a task run, a manual postal resend) rather than from the
/// policy's rules; their rule names say so (`task:ID`, `manual_…`).
pub(crate) fn planner_owns(row: &NotificationRow) -> bool {
    row.task.is_none() && !row.rule.starts_with("task:") && !row.rule.starts_with("manual_")
}

fn new_row(practice_id: &str, d: &Desired, now: Timestamp) -> NotificationRow {
    let mut row = NotificationRow {
        recipient: d.recipient.clone(),
        appointments: d.appointments.clone(),
        document: d.document.clone(),
        task: d.task.clone(),
        auto_resend: d.auto_resend,
        due_at: d.due,
        window_end: d.window_end,
        ..NotificationRow::pending(
            practice_id,
            d.key.clone(),
            &d.patient,
            &d.rule,
            d.kind,
            d.channel,
            now,
        )
    };
    if let DesiredState::Suppressed(reason) = d.state {
        suppress(&mut row, reason, now);
    }
    row
}

fn suppress(row: &mut NotificationRow, reason: Reason, now: Timestamp) {
    row.status = Status::Suppressed;
    row.reason = Some(reason);
    row.decided_at = Some(now);
    row.updated_at = now;
}

/// The update a stored row needs to match the plan, if any.
fn revise(row: &NotificationRow, d: &Desired, now: Timestamp) -> Option<NotificationRow> {
    let revisable = match row.status {
        Status::Pending => true,
        Status::Suppressed => row.reason.is_some_and(Reason::is_revisable),
        _ => false,
    };
    if !revisable {
        return None;
    }
    let mut r = row.clone();
    r.appointments = d.appointments.clone();
    r.recipient = d.recipient.clone();
    r.due_at = d.due;
    r.window_end = d.window_end;
    r.auto_resend = d.auto_resend;
    match d.state {
        DesiredState::Pending => {
            r.status = Status::Pending;
            r.reason = None;
            r.decided_at = None;
            // A message waiting to retry after a provider error keeps its later retry time:
            // re-planning the patient (any event about them, a push subscription forgotten)
            // must not undo the backoff and send again at once.
            if row.status == Status::Pending && row.attempts > 0 && row.last_error.is_some() {
                r.due_at = r.due_at.max(row.due_at);
            }
        }
        DesiredState::Suppressed(reason) => {
            if row.status != Status::Suppressed || row.reason != Some(reason) {
                r.status = Status::Suppressed;
                r.reason = Some(reason);
                r.decided_at = Some(now);
            }
        }
    }
    let changed = r.status != row.status
        || r.reason != row.reason
        || r.appointments != row.appointments
        || r.recipient != row.recipient
        || (r.status == Status::Pending
            && (r.due_at != row.due_at || r.window_end != row.window_end))
        || r.auto_resend != row.auto_resend;
    if !changed {
        return None;
    }
    if r.status == Status::Suppressed && row.status == Status::Suppressed {
        // Keep the original timing of a suppressed row: only its reason matters.
        r.due_at = row.due_at;
        r.window_end = row.window_end;
    }
    r.updated_at = now;
    Some(r)
}

#[cfg(test)]
mod tests {
    use rappel_domain::notification::{Channel, Kind, Recipient};

    use super::*;

    fn desired(due: Timestamp) -> Desired {
        Desired {
            key: "a:a1/reminder_email/email/patient".into(),
            patient: "p1".into(),
            rule: "reminder_email".into(),
            kind: Kind::Reminder,
            channel: Channel::Email,
            recipient: Recipient::Patient("p1".into()),
            appointments: vec!["a1".into()],
            document: None,
            task: None,
            auto_resend: false,
            due,
            window_end: None,
            state: DesiredState::Pending,
        }
    }

    #[test]
    fn a_row_waiting_to_retry_keeps_its_backoff_when_re_planned() {
        let planned: Timestamp = "2026-03-04T12:00:00Z".parse().unwrap();
        let retry: Timestamp = "2026-03-04T12:00:35Z".parse().unwrap();
        let now: Timestamp = "2026-03-04T12:00:01Z".parse().unwrap();
        let mut row = new_row("pr", &desired(planned), planned);
        row.attempts = 1;
        row.last_error = Some("SMTP 451: try again later".into());
        row.due_at = retry;
        assert!(
            reconcile("pr", std::slice::from_ref(&row), &[desired(planned)], now).is_empty(),
            "nothing to change: the retry time stands"
        );
        // The appointment moved: the plan's later time wins over the retry time.
        let later: Timestamp = "2026-03-05T12:00:00Z".parse().unwrap();
        let writes = reconcile("pr", std::slice::from_ref(&row), &[desired(later)], now);
        assert!(matches!(&writes[..], [Write::Update(r)] if r.due_at == later));
        // A row that never failed follows the plan, earlier or later.
        let fresh = new_row("pr", &desired(retry), planned);
        let writes = reconcile("pr", &[fresh], &[desired(planned)], now);
        assert!(matches!(&writes[..], [Write::Update(r)] if r.due_at == planned));
    }
}
