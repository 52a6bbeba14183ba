//! Who a run selects: the patients and appointments a task's message is about, and who it
//! leaves out and why.

use jiff::{Timestamp, civil::Date, tz::TimeZone};
use serde::{Deserialize, Serialize};

use super::{TaskDef, TaskType};
use crate::facts::{Appointment, AppointmentStatus, Patient};

/// One message a run wants: to a patient, about these appointments (missed ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub patient: String,
    pub appointments: Vec<String>,
}

/// Why a patient the task's criteria matched is left out by one of its exclusions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// `exclude_patients_with_later_appointment`: the patient has an appointment to come.
    LaterAppointment,
    /// `exclude_patients_seen_since`: the patient came to the practice after the missed one.
    SeenSince,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::LaterAppointment => "later_appointment",
            Exclusion::SeenSince => "seen_since",
        }
    }

    /// The explanation a practice manager reads, in French.
    pub fn french(self) -> &'static str {
        match self {
            Exclusion::LaterAppointment => "le patient a déjà un prochain rendez-vous",
            Exclusion::SeenSince => "le patient est venu au cabinet depuis",
        }
    }
}

/// A matched patient left out, with the appointments that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub patient: String,
    pub appointments: Vec<String>,
    pub reason: Exclusion,
}

/// What a run selects: the messages it wants, and the matched patients its exclusions leave
/// out (so that a run can say how many it matched and why it skipped some).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub selected: Vec<Selected>,
    pub excluded: Vec<Excluded>,
}

impl Selection {
    /// Every patient the criteria matched, selected or excluded.
    pub fn matched(&self) -> usize {
        self.selected.len() + self.excluded.len()
    }
}

/// Who an occurrence on `run_date` selects. `history` holds every appointment of the practice
/// that matters (at least the range and everything after it; all of them for recalls).
pub fn select(
    task: &TaskDef,
    tz: &TimeZone,
    run_date: Date,
    run_at: Timestamp,
    patients: &[Patient],
    history: &[Appointment],
) -> Vec<Selected> {
    select_explained(task, tz, run_date, run_at, patients, history).selected
}

/// [`select`], with the patients the exclusions leave out and why.
pub fn select_explained(
    task: &TaskDef,
    tz: &TimeZone,
    run_date: Date,
    run_at: Timestamp,
    patients: &[Patient],
    history: &[Appointment],
) -> Selection {
    let practitioner_ok = |a: &Appointment| {
        task.practitioners
            .as_ref()
            .is_none_or(|list| list.contains(&a.practitioner))
    };
    let date_of = |t: Timestamp| t.to_zoned(tz.clone()).date();
    // An appointment to come, booked and not cancelled.
    let has_later = |patient: &str, after: Timestamp| {
        history
            .iter()
            .any(|o| o.patient == patient && o.is_active() && o.start > after && o.start > run_at)
    };
    let mut out = Selection::default();
    match task.task_type {
        TaskType::MissedAppointments => {
            let [a, b] = task.range.unwrap_or([-1, -1]);
            let (Ok(from), Ok(to)) = (
                run_date.checked_add(jiff::Span::new().days(a)),
                run_date.checked_add(jiff::Span::new().days(b)),
            ) else {
                return out;
            };
            for appt in history {
                let d = date_of(appt.start);
                if !(matches!(appt.status, AppointmentStatus::NoShow { .. })
                    && d >= from
                    && d <= to
                    && practitioner_ok(appt))
                {
                    continue;
                }
                let seen = history.iter().any(|o| {
                    o.patient == appt.patient
                        && o.start > appt.start
                        && matches!(o.status, AppointmentStatus::Attended { .. })
                });
                let exclusion = if task.exclude_patients_with_later_appointment
                    && has_later(&appt.patient, appt.start)
                {
                    Some(Exclusion::LaterAppointment)
                } else if task.exclude_patients_seen_since && seen {
                    Some(Exclusion::SeenSince)
                } else {
                    None
                };
                match exclusion {
                    Some(reason) => {
                        add_excluded(&mut out.excluded, &appt.patient, &appt.id, reason)
                    }
                    None => match out.selected.iter_mut().find(|s| s.patient == appt.patient) {
                        Some(s) => s.appointments.push(appt.id.clone()),
                        None => out.selected.push(Selected {
                            patient: appt.patient.clone(),
                            appointments: vec![appt.id.clone()],
                        }),
                    },
                }
            }
            // A patient with one missed appointment kept and another excluded gets the message
            // about the one kept: they are selected, not excluded.
            let selected = &out.selected;
            out.excluded
                .retain(|e| !selected.iter().any(|s| s.patient == e.patient));
        }
        TaskType::Birthdays => {
            for p in patients {
                let Some(birth) = p.birth_date else { continue };
                // Born on 29 February: celebrated on 28 February in common years.
                let (m, d) = (birth.month(), birth.day());
                let hit = (run_date.month(), run_date.day()) == (m, d)
                    || (m == 2
                        && d == 29
                        && !run_date.in_leap_year()
                        && run_date.month() == 2
                        && run_date.day() == 28);
                let with_practitioner = task.practitioners.is_none()
                    || history
                        .iter()
                        .any(|a| a.patient == p.id && practitioner_ok(a));
                if !(hit && with_practitioner) {
                    continue;
                }
                if task.exclude_patients_with_later_appointment && has_later(&p.id, run_at) {
                    out.excluded.push(Excluded {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                        reason: Exclusion::LaterAppointment,
                    });
                } else {
                    out.selected.push(Selected {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                    });
                }
            }
        }
        TaskType::Recall => {
            let months = task.recall_months.unwrap_or(6);
            let Ok(limit) = run_date.checked_sub(jiff::Span::new().months(months)) else {
                return out;
            };
            for p in patients {
                let mine: Vec<&Appointment> =
                    history.iter().filter(|a| a.patient == p.id).collect();
                let last_seen = mine
                    .iter()
                    .filter(|a| {
                        matches!(a.status, AppointmentStatus::Attended { .. }) && practitioner_ok(a)
                    })
                    .map(|a| date_of(a.start))
                    .max();
                // "Nothing booked" is part of what a recall is, not an exclusion.
                let booked = mine.iter().any(|a| a.is_active() && a.start > run_at);
                if let Some(last) = last_seen
                    && last < limit
                    && !booked
                {
                    out.selected.push(Selected {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                    });
                }
            }
        }
    }
    out.selected.sort_by(|a, b| a.patient.cmp(&b.patient));
    out.excluded.sort_by(|a, b| a.patient.cmp(&b.patient));
    out
}

fn add_excluded(list: &mut Vec<Excluded>, patient: &str, appointment: &str, reason: Exclusion) {
    match list.iter_mut().find(|e| e.patient == patient) {
        Some(e) => e.appointments.push(appointment.to_string()),
        None => list.push(Excluded {
            patient: patient.to_string(),
            appointments: vec![appointment.to_string()],
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::facts::Source;
    use crate::task::fixtures::*;

    fn appointment(id: &str, patient: &str, start: &str, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: id.into(),
            patient: patient.into(),
            practitioner: "dr1".into(),
            motive: None,
            start: at(start),
            duration_minutes: 30,
            location: None,
            source: Source::Staff,
            booked_at: at("2026-02-01T10:00:00+01:00"),
            status,
            moves: Vec::new(),
            version: 1,
        }
    }

    fn no_show(id: &str, patient: &str, start: &str) -> Appointment {
        let status = AppointmentStatus::NoShow {
            at: at(start) + jiff::SignedDuration::from_mins(45),
        };
        appointment(id, patient, start, status)
    }

    fn attended(id: &str, patient: &str, start: &str) -> Appointment {
        let status = AppointmentStatus::Attended {
            at: at(start) + jiff::SignedDuration::from_mins(30),
        };
        appointment(id, patient, start, status)
    }

    #[test]
    fn exclusions_leave_out_patients_with_a_later_appointment_or_seen_since_and_say_why() {
        let history = vec![
            no_show("a1", "p1", "2026-03-02T09:00:00+01:00"),
            no_show("a2", "p2", "2026-03-02T10:00:00+01:00"),
            appointment(
                "a3",
                "p2",
                "2026-03-10T10:00:00+01:00",
                AppointmentStatus::Booked,
            ),
            no_show("a4", "p3", "2026-03-02T11:00:00+01:00"),
            attended("a5", "p3", "2026-03-02T16:00:00+01:00"),
            // Out of the range (two days before).
            no_show("a6", "p4", "2026-02-28T11:00:00+01:00"),
        ];
        let task = TaskDef {
            task_type: TaskType::MissedAppointments,
            range: Some([-1, -1]),
            exclude_patients_with_later_appointment: true,
            exclude_patients_seen_since: true,
            ..daily("08:00")
        };
        let run_at = at("2026-03-03T08:00:00+01:00");
        let selection = select_explained(&task, &paris(), date(2026, 3, 3), run_at, &[], &history);
        assert_eq!(
            selection.selected,
            [Selected {
                patient: "p1".into(),
                appointments: vec!["a1".into()]
            }]
        );
        assert_eq!(
            selection.excluded,
            [
                Excluded {
                    patient: "p2".into(),
                    appointments: vec!["a2".into()],
                    reason: Exclusion::LaterAppointment
                },
                Excluded {
                    patient: "p3".into(),
                    appointments: vec!["a4".into()],
                    reason: Exclusion::SeenSince
                },
            ]
        );
        assert_eq!(selection.matched(), 3);
        // Without the exclusions, all three get the message.
        let plain = TaskDef {
            exclude_patients_with_later_appointment: false,
            exclude_patients_seen_since: false,
            ..task
        };
        let all = select(&plain, &paris(), date(2026, 3, 3), run_at, &[], &history);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn a_recall_selects_patients_last_seen_more_than_n_months_ago_with_nothing_booked() {
        let patients: Vec<Patient> = ["p1", "p2", "p3", "p4"]
            .into_iter()
            .map(|id| Patient {
                id: id.into(),
                ..Patient::default()
            })
            .collect();
        let history = vec![
            attended("a1", "p1", "2025-08-20T09:00:00+02:00"),
            attended("a2", "p2", "2025-08-20T09:00:00+02:00"),
            appointment(
                "a3",
                "p2",
                "2026-04-01T09:00:00+02:00",
                AppointmentStatus::Booked,
            ),
            attended("a4", "p3", "2025-12-01T09:00:00+01:00"),
            // p4 never came.
            no_show("a5", "p4", "2025-06-01T09:00:00+02:00"),
        ];
        let task = TaskDef {
            task_type: TaskType::Recall,
            recall_months: Some(6),
            ..daily("08:00")
        };
        let selected = select(
            &task,
            &paris(),
            date(2026, 3, 1),
            at("2026-03-01T08:00:00+01:00"),
            &patients,
            &history,
        );
        let ids: Vec<&str> = selected.iter().map(|s| s.patient.as_str()).collect();
        assert_eq!(ids, ["p1"]);
    }
}
