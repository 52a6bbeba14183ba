//! The problem answers operations share (`#/components/responses/…`): an operation lists the
//! ones it can give (`(status = 404, response = NotFound)`), each a `problem+json` body.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder, schema::Type};

const PROBLEM_JSON: &str = crate::error::PROBLEM_JSON;

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

macro_rules! problem_responses {
    ($($name:ident => $description:literal,)*) => {$(
        pub(crate) struct $name;

        impl<'s> utoipa::ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                (stringify!($name), problem($description).build().into())
            }
        }
    )*};
}

problem_responses!(
    BadRequest => "Malformed JSON, query string or header, or a path that is not valid percent-encoded UTF-8.",
    Unauthorized => "Missing or invalid API key.",
    NotFound => "No such resource in this practice.",
    PayloadTooLarge => "The body is over the limit (1 MiB by default).",
    UnsupportedMediaType => "The body is not JSON.",
    Unprocessable => "A value is wrong; `field` names it.",
    InternalError => "A failure on the server; its cause is logged, not sent.",
);

/// The API key's rate is exceeded: the problem, and when to try again.
pub(crate) struct TooManyRequests;

impl<'s> utoipa::ToResponse<'s> for TooManyRequests {
    fn response() -> (&'s str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait."))
            .build();
        (
            "TooManyRequests",
            problem("The API key's rate is exceeded.")
                .header("Retry-After", retry_after)
                .build()
                .into(),
        )
    }
}
