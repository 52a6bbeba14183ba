//! The parameters operations take, as `#[utoipa::path(params(…))]` names them. The handlers read
//! them through [`crate::extract::PathId`] and [`crate::extract::QueryParams`], which check them
//! as these schemas say (an id of 1 to 128 characters without control characters, a bounded
//! `limit`); what a schema cannot say is a 422 naming the parameter.

use utoipa::IntoParams;

/// An id chosen by the practice software, as `validate::id` checks it: Rust's `char::is_control`
/// is Unicode's Cc category, C0, DEL and C1.
macro_rules! path_ids {
    ($($name:ident: $doc:literal,)*) => {$(
        #[derive(IntoParams)]
        #[into_params(parameter_in = Path)]
        #[allow(dead_code)] // Read by `PathId`; this type only describes it.
        pub(crate) struct $name {
            #[doc = $doc]
            #[param(min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
            id: String,
        }
    )*};
}

path_ids!(
    PractitionerId: "The practitioner's id in the practice software (1 to 128 characters, no control characters).",
    MotiveId: "The visit reason's id in the practice software (1 to 128 characters, no control characters).",
    PatientId: "The patient's id in the practice software (1 to 128 characters, no control characters).",
    AppointmentId: "The appointment's id in the practice software (1 to 128 characters, no control characters).",
    DocumentId: "The document's id in the practice software (1 to 128 characters, no control characters).",
    InboxEntryId: "The inbox entry's id in the practice software (1 to 128 characters, no control characters).",
    ReceivedMessageId: "The received message's id in the practice software (1 to 128 characters, no control characters).",
    TaskId: "The task's id in the practice software (1 to 128 characters, no control characters).",
);

/// The sent box's statuses as the timeline shows them (`planned`: waiting in the queue), which
/// `routes::facts` maps to the store's.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum NotificationStatus {
    Planned,
    Sending,
    Sent,
    Delivered,
    Failed,
    Suppressed,
}

/// The channels a template exists for (an inbox entry has none).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum TemplateChannel {
    Email,
    Sms,
    Push,
    Postal,
}

/// The channels a test message can go by, now.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum TestSendChannel {
    Email,
    Sms,
    Push,
}

/// The two boxes of the inbox.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum InboxBox {
    ToVerify,
    Notifications,
}
