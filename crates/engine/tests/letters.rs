//! Letters and the practice's logo through the engine's public API, on an in-memory SQLite store
//! and a simulated clock: the print batch's day and the month's postal spend follow the practice's
//! time zone, uploads leave no file without its row, and the logo is checked, resized, and shown
//! where SPEC.md says.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{ImageFormat, Rgba, RgbaImage};
use rappel_channels::postal::PrintBatch;
use rappel_channels::{Recorder, Transport};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, Source};
use rappel_domain::notification::Channel;
use rappel_engine::{DocumentsConfig, Engine, EngineConfig, EngineError, SimClock};
use rappel_test_support::engine::{self, Fixture, fixture};
use serde_json::json;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn temp_dir(name: &str) -> PathBuf {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    std::env::temp_dir().join(format!(
        "rappel-letters-{name}-{}-{}",
        std::process::id(),
        hex::encode(bytes)
    ))
}

struct Setup {
    engine: Engine,
    clock: SimClock,
    recorder: Recorder,
    practice: String,
    documents: PathBuf,
}

/// A practice of `preset` in `timezone`, emails to a recorder, letters to `postal` (the recorder
/// when `None`), and one patient `p1` with an address in France.
async fn setup(
    preset: &str,
    timezone: &str,
    now: &str,
    postal: Option<Arc<dyn Transport>>,
) -> Setup {
    let documents = temp_dir("documents");
    let Fixture {
        engine,
        clock,
        recorder,
        practice,
        ..
    } = fixture(engine::Setup {
        start: now.parse().unwrap(),
        config: EngineConfig {
            documents: DocumentsConfig::in_dir(&documents).with_key(KEY),
            ..EngineConfig::default()
        },
        postal,
        practice_name: "Cabinet des Lilas".into(),
        preset: preset.into(),
        timezone: timezone.into(),
        ..engine::Setup::default()
    })
    .await;
    let patient: Patient = serde_json::from_value(json!({
        "id": "p1",
        "first_name": "Jeanne",
        "last_name": "Dupont",
        "email": "jeanne@example.org",
        "birth_date": "1980-03-03",
        "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
    }))
    .unwrap();
    engine.put_patient(&practice, &patient).await.unwrap();
    Setup {
        engine,
        clock,
        recorder,
        practice,
        documents,
    }
}

/// A small real PDF of one page.
fn pdf(title: &str) -> Vec<u8> {
    rappel_channels::postal::letter_pdf(
        &rappel_channels::Letter {
            title: title.into(),
            address_block: vec!["x".into()],
            ..Default::default()
        },
        jiff::civil::date(2026, 1, 1),
    )
    .unwrap()
}

/// The files in a folder, by name (temporary files included).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- the print batch and the month, by the engine's clock in the practice's time zone ---------

#[tokio::test]
async fn a_letter_made_after_midnight_in_paris_is_dated_and_batched_on_the_paris_day() {
    let print = temp_dir("print");
    // 22:30 UTC on 31 March is 00:30 on 1 April in Paris: the machine's UTC date is the 31st.
    let s = setup(
        "lifen",
        "Europe/Paris",
        "2026-03-31T22:30:00Z",
        Some(Arc::new(PrintBatch::new(&print))),
    )
    .await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &pdf("Compte rendu"))
        .await
        .unwrap();
    engine.resend_postal(practice, "d1").await.unwrap();
    engine.dispatch_all_due().await.unwrap();

    let batch = engine.print_batch(&print, practice, None).await.unwrap();
    assert_eq!(batch.letters, 1);
    assert_eq!(batch.pages, 2, "the cover page and the document's page");
    assert_eq!(batch.cost_cents, 152);
    assert!(
        batch.pdf.parent().unwrap().ends_with("2026-04-01"),
        "{batch:?}"
    );
    let march = engine
        .print_batch(&print, practice, Some(jiff::civil::date(2026, 3, 31)))
        .await;
    assert!(
        matches!(march, Err(EngineError::Invalid { .. })),
        "nothing in the UTC day's batch: {march:?}"
    );

    // The letter's cost, on the document and in the Paris month it was posted in.
    let details = engine.document_details(practice, "d1").await.unwrap();
    let letter = details
        .deliveries
        .iter()
        .find(|d| d.entry.channel == "postal")
        .unwrap();
    assert_eq!(letter.cost_cents, Some(152));
    let spend = engine.postal_costs(practice, None).await.unwrap();
    assert_eq!(spend.month, "2026-04", "the engine clock's month in Paris");
    assert_eq!((spend.letters, spend.total_cents), (1, 152));
    assert_eq!(spend.items[0].document.as_deref(), Some("d1"));
    assert!(
        spend.items[0]
            .sent_at
            .starts_with("2026-04-01T00:30:00+02:00")
    );
    let utc_month = engine
        .postal_costs(practice, Some("2026-03"))
        .await
        .unwrap();
    assert_eq!((utc_month.letters, utc_month.total_cents), (0, 0));
    assert!(matches!(
        engine.postal_costs(practice, Some("avril")).await,
        Err(EngineError::Invalid { field, .. }) if field == "month"
    ));

    // At 20:30 UTC on 31 March it is still the 31st in Paris, already 1 April in Réunion (UTC+4).
    s.clock.set("2026-03-31T20:30:00Z".parse().unwrap());
    assert_eq!(
        engine.practice_today(practice).await.unwrap(),
        jiff::civil::date(2026, 3, 31)
    );
    let reunion = setup("lifen", "Indian/Reunion", "2026-03-31T20:30:00Z", None).await;
    assert_eq!(
        reunion
            .engine
            .practice_today(&reunion.practice)
            .await
            .unwrap(),
        jiff::civil::date(2026, 4, 1)
    );
    std::fs::remove_dir_all(&print).unwrap();
    let _ = std::fs::remove_dir_all(&s.documents);
}

// ---- uploads: no file without its row, no row without its file ---------------------------------

#[tokio::test]
async fn an_upload_the_database_refuses_leaves_no_file_and_no_row() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    let error = engine
        .upload_document(practice, "d1", "nobody", "Compte rendu", &pdf("A"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Invalid { reason, .. } if reason.contains("nobody")),
        "{error:?}"
    );
    assert_eq!(
        files(&s.documents),
        Vec::<String>::new(),
        "no file left behind"
    );
    // No row either: the same id takes another file afterwards.
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &pdf("B"))
        .await
        .unwrap();
    let stored = files(&s.documents);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].ends_with(".bin") && !stored[0].starts_with('.'));
    let _ = std::fs::remove_dir_all(&s.documents);
}

#[tokio::test]
async fn a_refused_upload_of_a_document_known_from_an_event_attaches_no_file_to_it() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    engine
        .ingest(
            practice,
            &[Event {
                at: None,
                body: EventBody::DocumentSent {
                    id: "d1".into(),
                    patient: "p1".into(),
                    title: "Compte rendu".into(),
                },
            }],
        )
        .await
        .unwrap();
    let error = engine
        .upload_document(practice, "d1", "p1", "Another title", &pdf("A"))
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Invalid { .. }), "{error:?}");
    assert_eq!(files(&s.documents), Vec::<String>::new());
    let details = engine.document_details(practice, "d1").await.unwrap();
    assert!(
        details.file.is_none(),
        "the refused file is not the document's"
    );
    let _ = std::fs::remove_dir_all(&s.documents);
}

#[tokio::test]
async fn uploading_a_document_again_never_touches_the_stored_file() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    let original = pdf("Original");
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &original)
        .await
        .unwrap();
    let stored = files(&s.documents);
    let sealed = std::fs::read(s.documents.join(&stored[0])).unwrap();

    // The same file again: accepted, nothing new on disk.
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &original)
        .await
        .unwrap();
    // Another file under the same id: refused, the stored one intact.
    let error = engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &pdf("Another"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Invalid { field, .. } if field == "file"),
        "{error:?}"
    );
    assert_eq!(files(&s.documents), stored);
    assert_eq!(std::fs::read(s.documents.join(&stored[0])).unwrap(), sealed);
    let details = engine.document_details(practice, "d1").await.unwrap();
    assert_eq!(details.file.unwrap().size, original.len() as i64);
    let _ = std::fs::remove_dir_all(&s.documents);
}

#[tokio::test]
async fn simultaneous_uploads_of_one_document_leave_exactly_one_file_and_its_row() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    let same = pdf("Same");
    let (a, b) = tokio::join!(
        engine.upload_document(practice, "d1", "p1", "Compte rendu", &same),
        engine.upload_document(practice, "d1", "p1", "Compte rendu", &same),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(files(&s.documents).len(), 1, "{:?}", files(&s.documents));

    // Two different files at once: whichever comes second is refused, and only the first's
    // file is on disk, named by the row.
    let (one, two) = (pdf("One"), pdf("Two"));
    let (a, b) = tokio::join!(
        engine.upload_document(practice, "d2", "p1", "Ordonnance", &one),
        engine.upload_document(practice, "d2", "p1", "Ordonnance", &two),
    );
    assert!(a.is_ok() != b.is_ok(), "one wins: {a:?} / {b:?}");
    let kept = if a.is_ok() { &one } else { &two };
    let details = engine.document_details(practice, "d2").await.unwrap();
    assert_eq!(details.file.unwrap().size, kept.len() as i64);
    assert_eq!(files(&s.documents).len(), 2, "{:?}", files(&s.documents));
    let _ = std::fs::remove_dir_all(&s.documents);
}

#[tokio::test]
async fn a_documents_folder_that_cannot_be_written_refuses_the_upload_and_records_nothing() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    // A file where the folder should be: nothing can be written under it.
    std::fs::create_dir_all(s.documents.parent().unwrap()).unwrap();
    std::fs::write(&s.documents, b"not a folder").unwrap();
    let error = s
        .engine
        .upload_document(&s.practice, "d1", "p1", "Compte rendu", &pdf("A"))
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Store(_)), "{error:?}");
    assert!(
        matches!(
            s.engine.document_details(&s.practice, "d1").await,
            Err(EngineError::NotFound { .. })
        ),
        "no document, so no email announcing a file that is not there"
    );
    std::fs::remove_file(&s.documents).unwrap();
}

// ---- the logo ----------------------------------------------------------------------------------

fn encode(image: image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A `width` × `height` PNG whose left half is transparent.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, _| {
        Rgba([10, 80, 160, if x < width / 2 { 0 } else { 255 }])
    });
    encode(image.into(), ImageFormat::Png)
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 40]));
    encode(image.into(), ImageFormat::Jpeg)
}

fn decoded(png: &[u8]) -> image::DynamicImage {
    image::load_from_memory_with_format(png, ImageFormat::Png).expect("stored as PNG")
}

fn logo_error(result: Result<rappel_engine::LogoInfo, EngineError>) -> String {
    match result {
        Err(EngineError::Invalid { field, reason }) if field == "logo" => reason,
        other => panic!("expected an invalid logo, got {other:?}"),
    }
}

#[tokio::test]
async fn a_logo_is_shrunk_to_fit_150_by_75_kept_as_png_and_never_enlarged() {
    let s = setup(
        "doctolib",
        "Europe/Paris",
        "2026-03-02T09:00:00+01:00",
        None,
    )
    .await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    assert_eq!(engine.logo(practice).await.unwrap(), None);

    let info = engine.set_logo(practice, &png(600, 100)).await.unwrap();
    assert_eq!((info.width, info.height), (150, 25));
    assert_eq!(info.updated_at, "2026-03-02T08:00:00Z".parse().unwrap());
    let logo = engine.logo(practice).await.unwrap().unwrap();
    let image = decoded(&logo.png);
    assert_eq!((image.width(), image.height()), (150, 25));
    assert_eq!((logo.width, logo.height), (150, 25));
    let rgba = image.to_rgba8();
    assert_eq!(rgba.get_pixel(10, 10).0[3], 0, "transparency kept");
    assert_eq!(rgba.get_pixel(140, 10).0[3], 255);

    // A tall JPEG fits the height; a small one keeps its size.
    let info = engine.set_logo(practice, &jpeg(200, 400)).await.unwrap();
    assert_eq!((info.width, info.height), (38, 75));
    let info = engine.set_logo(practice, &jpeg(60, 30)).await.unwrap();
    assert_eq!((info.width, info.height), (60, 30));
    let logo = engine.logo(practice).await.unwrap().unwrap();
    assert!(logo.png.starts_with(b"\x89PNG"), "a JPEG is stored as PNG");
    assert_eq!(
        (decoded(&logo.png).width(), decoded(&logo.png).height()),
        (60, 30)
    );

    assert!(engine.delete_logo(practice).await.unwrap());
    assert!(!engine.delete_logo(practice).await.unwrap());
    assert_eq!(engine.logo(practice).await.unwrap(), None);
    assert!(matches!(
        engine.set_logo("no-such-practice", &png(10, 10)).await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_logo_that_is_not_a_png_or_jpeg_or_too_big_is_refused_and_the_old_one_stays() {
    let s = setup(
        "doctolib",
        "Europe/Paris",
        "2026-03-02T09:00:00+01:00",
        None,
    )
    .await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    engine.set_logo(practice, &png(100, 50)).await.unwrap();
    let before = engine.logo(practice).await.unwrap();

    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    assert!(logo_error(engine.set_logo(practice, gif).await).contains("PNG or JPEG"));
    assert!(logo_error(engine.set_logo(practice, b"<svg></svg>").await).contains("PNG or JPEG"));
    assert!(logo_error(engine.set_logo(practice, b"").await).contains("empty"));
    let mut truncated = png(100, 50);
    truncated.truncate(40);
    assert!(logo_error(engine.set_logo(practice, &truncated).await).contains("does not decode"));
    let mut big = jpeg(10, 10);
    big.resize(2 * 1024 * 1024 + 1, 0);
    assert!(logo_error(engine.set_logo(practice, &big).await).contains("at most 2097152"));
    // 16,008,001 pixels: small in bytes (one colour), too large once decoded.
    let huge = encode(image::GrayImage::new(4001, 4001).into(), ImageFormat::Png);
    assert!(huge.len() < 2 * 1024 * 1024);
    let reason = logo_error(engine.set_logo(practice, &huge).await);
    assert!(
        reason.contains("4001 × 4001") && reason.contains("16 megapixels"),
        "{reason}"
    );

    assert_eq!(
        engine.logo(practice).await.unwrap(),
        before,
        "nothing stored was damaged"
    );
}

async fn booked(engine: &Engine, practice: &str, id: &str, source: Source) {
    engine
        .ingest(
            practice,
            &[Event {
                at: None,
                body: EventBody::AppointmentBooked {
                    id: id.into(),
                    patient: "p1".into(),
                    practitioner: "dr1".into(),
                    motive: None,
                    start: "2026-03-20T10:00:00+01:00".parse().unwrap(),
                    duration_minutes: None,
                    location: None,
                    source,
                },
            }],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_logo_heads_the_emails_of_staff_bookings_only() {
    let s = setup(
        "doctolib",
        "Europe/Paris",
        "2026-03-02T09:00:00+01:00",
        None,
    )
    .await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    engine
        .put_practitioner(
            practice,
            &Practitioner {
                id: "dr1".into(),
                name: "Dr Martin".into(),
                email: None,
                mobile: None,
            },
        )
        .await
        .unwrap();
    engine.set_logo(practice, &png(300, 150)).await.unwrap();
    booked(engine, practice, "staff", Source::Staff).await;
    booked(engine, practice, "online", Source::Online).await;
    engine.dispatch_all_due().await.unwrap();
    let sent = s.recorder.sent();
    let confirmation = |appointment: &str| {
        sent.iter()
            .map(|r| &r.message)
            .find(|m| m.channel == Channel::Email && m.id.starts_with(&format!("a:{appointment}/")))
            .unwrap_or_else(|| panic!("a confirmation of {appointment}: {sent:?}"))
            .clone()
    };
    let staff = confirmation("staff");
    let logo = staff
        .logo
        .as_deref()
        .expect("the staff booking's email has the logo");
    assert_eq!((logo.width, logo.height), (150, 75));
    let email = String::from_utf8(rappel_channels::email_bytes(&staff).unwrap()).unwrap();
    assert!(email.contains("multipart/related"));
    assert!(email.contains("Content-ID: <logo@rappel>"), "{email}");
    let online = confirmation("online");
    assert!(
        online.logo.is_none(),
        "online bookings carry the platform's header"
    );
    assert!(
        !String::from_utf8(rappel_channels::email_bytes(&online).unwrap())
            .unwrap()
            .contains("Content-ID")
    );

    // The reminder of the staff booking has it too; SMS never do.
    s.clock.set("2026-03-19T14:30:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();
    let sent = s.recorder.sent();
    let reminder = sent
        .iter()
        .map(|r| &r.message)
        .find(|m| m.channel == Channel::Email && m.id.starts_with("a:staff/reminder"))
        .expect("the reminder email of the staff booking");
    assert!(reminder.logo.is_some());
    assert!(
        sent.iter()
            .filter(|r| r.message.channel != Channel::Email)
            .all(|r| r.message.logo.is_none())
    );
}

#[tokio::test]
async fn letters_carry_the_logo_in_their_letterhead() {
    let s = setup("lifen", "Europe/Paris", "2026-03-02T09:00:00+01:00", None).await;
    let (engine, practice) = (&s.engine, s.practice.as_str());
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &pdf("Compte rendu"))
        .await
        .unwrap();
    engine.set_logo(practice, &jpeg(150, 75)).await.unwrap();
    engine.resend_postal(practice, "d1").await.unwrap();
    engine.dispatch_all_due().await.unwrap();
    let sent = s.recorder.sent();
    let letter = sent
        .iter()
        .filter_map(|r| r.message.letter.as_deref())
        .next()
        .expect("a letter");
    let logo = letter.logo.as_deref().expect("the letterhead's logo");
    assert_eq!((logo.width, logo.height), (150, 75));
    assert_eq!(letter.date, jiff::civil::date(2026, 3, 2));
    // And the letter's PDF draws it.
    let pdf = rappel_channels::postal::letter_pdf(letter, letter.date).unwrap();
    assert!(
        pdf.windows(b"/Logo".len()).any(|w| w == b"/Logo"),
        "the cover page names the logo's image"
    );
    let _ = std::fs::remove_dir_all(&s.documents);
}
