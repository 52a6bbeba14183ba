//! Strict checks of what practice software sends, at the API boundary (SPEC: the facts keep a
//! contact that does not parse as typed, `Contact::Invalid`, so that old records can be reported
//! on, but nothing new gets in unparsed except a patient's email, below).
//!
//! Contacts are parsed with the domain's parsers and stored in their normal form (an email with
//! its domain lower-cased, a phone number in E.164), so `PUT`ting the same patient twice in two
//! spellings is "unchanged". A landline is accepted as a number: the planner reports
//! `invalid_mobile` when it wants to send it an SMS, which is what the practice needs to see.

use jiff::civil::Date;
use rappel_domain::contact::{ContactError, CountryCode, EmailAddress, PhoneNumber, PostalAddress};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::extract::from_json;

/// The longest patient email kept as typed when it does not parse (RFC 5321's path limit).
const MAX_RAW_EMAIL: usize = 254;

/// Resource ids chosen by the practice software: 1 to 128 characters, no control characters.
/// The domain's one rule ([`rappel_domain::event::check_id`]), which event bodies follow too.
pub(crate) fn id(id: &str) -> Result<(), ApiError> {
    rappel_domain::event::check_id(id).map_err(|reason| ApiError::invalid("id", reason))
}

/// The body's `id`, when given, must be the path's.
pub(crate) fn same_id(path_id: &str, body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == path_id => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "id",
            format!("the body's id must be the path's (`{path_id}`) or be left out"),
        )),
    }
}

/// Checks and normalizes the contact fields of a patient object (a `PUT` body or the fields of
/// a `patient.updated` event) in place. `null` and blank strings mean "none". Errors name the
/// field with `prefix` before it (`events[2].mobile`).
pub(crate) fn patient_contacts(
    fields: &mut Map<String, Value>,
    prefix: &str,
) -> Result<(), ApiError> {
    let field = |name: &str| format!("{prefix}{name}");
    if let Some(value) = text_field(fields, "email", prefix)? {
        // A patient's email that does not parse is kept as the practice typed it, not refused:
        // the patient file belongs to the practice software, refusing the whole record would
        // lose the patient's other contacts, and SPEC.md decision 7 says what it means — no
        // email (SMS fallback, postal rules for documents), reported as `invalid_email` so the
        // practice sees what to correct. Only what cannot be an address at all is refused.
        let email = match EmailAddress::parse(&value) {
            Ok(email) => email.as_str().to_string(),
            Err(_)
                if value.chars().count() > MAX_RAW_EMAIL || value.chars().any(char::is_control) =>
            {
                return Err(ApiError::invalid(
                    field("email"),
                    format!(
                        "an email address has at most {MAX_RAW_EMAIL} characters and no control characters"
                    ),
                ));
            }
            Err(_) => value.trim().to_string(),
        };
        fields.insert("email".into(), Value::String(email));
    }
    if let Some(value) = text_field(fields, "mobile", prefix)? {
        let number = PhoneNumber::parse(&value).map_err(|e| contact_error(&field("mobile"), &e))?;
        fields.insert("mobile".into(), Value::String(number.e164().to_string()));
    }
    if let Some(value) = text_field(fields, "birth_date", prefix)? {
        let date: Date = value
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(field("birth_date"), "expected a date as YYYY-MM-DD"))?;
        fields.insert("birth_date".into(), Value::String(date.to_string()));
    }
    match fields.get("address") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let address = postal_address(value.clone(), &field("address"))?;
            let normal = serde_json::to_value(&address)
                .map_err(|e| ApiError::Internal(format!("an address does not serialize: {e}")))?;
            fields.insert("address".into(), normal);
        }
    }
    Ok(())
}

/// A practitioner's contacts: the same rules as a patient's.
pub(crate) fn practitioner_contacts(fields: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(value) = text_field(fields, "email", "")? {
        let email = EmailAddress::parse(&value).map_err(|e| contact_error("email", &e))?;
        fields.insert("email".into(), Value::String(email.as_str().to_string()));
    }
    if let Some(value) = text_field(fields, "mobile", "")? {
        let number = PhoneNumber::parse(&value).map_err(|e| contact_error("mobile", &e))?;
        fields.insert("mobile".into(), Value::String(number.e164().to_string()));
    }
    Ok(())
}

/// The string value of an optional text field; a blank string becomes `null` (none).
fn text_field(
    fields: &mut Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            fields.insert(name.to_string(), Value::Null);
            Ok(None)
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(
            format!("{prefix}{name}"),
            "expected a string or null",
        )),
    }
}

fn contact_error(field: &str, error: &ContactError) -> ApiError {
    ApiError::invalid(field, error.to_string())
}

/// The wire shape of a postal address, read field by field so that an error names the part.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressFields {
    lines: Vec<String>,
    postal_code: String,
    city: String,
    #[serde(default)]
    country: Option<String>,
}

fn postal_address(value: Value, field: &str) -> Result<PostalAddress, ApiError> {
    let parts: AddressFields = from_json(value, &format!("{field}."))?;
    let country = match parts.country.as_deref().map(str::trim) {
        None | Some("") => CountryCode::default(),
        Some(code) => {
            CountryCode::parse(code).map_err(|e| contact_error(&format!("{field}.country"), &e))?
        }
    };
    PostalAddress::new(parts.lines, &parts.postal_code, &parts.city, country).map_err(|error| {
        let part = match &error {
            ContactError::PostalCodeInvalid => "postal_code",
            ContactError::CountryInvalid => "country",
            ContactError::AddressInvalid { reason } if reason.contains("postal code") => {
                "postal_code"
            }
            ContactError::AddressInvalid { reason } if reason.contains("city") => "city",
            _ => "lines",
        };
        contact_error(&format!("{field}.{part}"), &error)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn field_of(error: ApiError) -> Option<String> {
        match error {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn contacts_are_stored_in_their_normal_form() {
        let mut f = fields(json!({
            "email": " Jeanne@Example.ORG ",
            "mobile": "06 12 34 56 78",
            "birth_date": "1980-03-02",
            "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
        }));
        patient_contacts(&mut f, "").unwrap();
        assert_eq!(f["email"], "Jeanne@example.org");
        assert_eq!(f["mobile"], "+33612345678");
        assert_eq!(f["address"]["country"], "FR");
    }

    #[test]
    fn a_landline_is_a_valid_number_but_garbage_is_refused_naming_mobile() {
        let mut landline = fields(json!({"mobile": "01 23 45 67 89"}));
        patient_contacts(&mut landline, "").unwrap();
        assert_eq!(landline["mobile"], "+33123456789");
        let mut garbage = fields(json!({"mobile": "call me maybe"}));
        let error = patient_contacts(&mut garbage, "events[1].").unwrap_err();
        assert_eq!(field_of(error).as_deref(), Some("events[1].mobile"));
    }

    #[test]
    fn a_bad_postal_code_names_address_postal_code() {
        let mut f = fields(json!({
            "address": {"lines": ["12 rue des Lilas"], "postal_code": "7501", "city": "Paris"}
        }));
        let error = patient_contacts(&mut f, "").unwrap_err();
        assert_eq!(field_of(error).as_deref(), Some("address.postal_code"));
    }

    #[test]
    fn a_missing_city_names_address_city() {
        let mut f =
            fields(json!({"address": {"lines": ["12 rue des Lilas"], "postal_code": "75011"}}));
        let error = patient_contacts(&mut f, "").unwrap_err();
        assert_eq!(field_of(error).as_deref(), Some("address.city"));
    }

    #[test]
    fn blank_contacts_mean_none() {
        let mut f = fields(json!({"email": "  ", "mobile": ""}));
        patient_contacts(&mut f, "").unwrap();
        assert_eq!(f["email"], Value::Null);
        assert_eq!(f["mobile"], Value::Null);
    }
}
