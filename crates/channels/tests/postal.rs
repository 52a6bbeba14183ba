//! Postal letters: the letter PDF parsed back (the address block inside the window zone of a DL
//! envelope, the content, the document's pages appended), Maileva emulated on loopback, and the
//! practice's own print batch assembling a day's letters.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use lopdf::content::Content;
use lopdf::{Document, Object};
use rappel_channels::postal::{
    ADDRESS_LEFT_MM, ADDRESS_MAX_WIDTH_MM, ADDRESS_TOP_MM, MailevaConfig, PostalApi, PostalTariff,
    PrintBatch, assemble_batch, letter_pdf, merge_pdfs, page_count,
};
use rappel_channels::{ChannelError, Letter, OutboundMessage, Transport};
use rappel_domain::notification::Channel;

const MM: f32 = 72.0 / 25.4;
const PAGE_HEIGHT: f32 = 297.0 * MM;

fn letter(document_pdf: Vec<u8>) -> Letter {
    Letter {
        document_id: "d1".into(),
        title: "Compte rendu opératoire".into(),
        address_block: vec![
            "Mme Hélène Lefèvre".into(),
            "Appartement 12, 3e étage".into(),
            "8 avenue Jean Jaurès".into(),
            "31000 TOULOUSE".into(),
        ],
        sender_block: vec!["Cabinet du Dr Martin".into(), "3 rue de la Paix".into()],
        date: jiff::civil::date(2026, 3, 2),
        logo: None,
        document_pdf,
    }
}

/// A document of `pages` pages (letters without a document of their own are one page each).
fn document(pages: usize) -> Vec<u8> {
    let one = letter_pdf(
        &Letter {
            title: "Page du document".into(),
            address_block: vec!["x".into()],
            ..Letter::default()
        },
        jiff::civil::date(2026, 1, 1),
    )
    .unwrap();
    merge_pdfs(&vec![one; pages]).unwrap()
}

/// The text lines of a page: (x, y from the bottom, text decoded from WinAnsi).
fn lines(doc: &Document, page: lopdf::ObjectId) -> Vec<(f32, f32, String)> {
    let content = Content::decode(&doc.get_page_content(page)).unwrap();
    let mut out = Vec::new();
    let mut at = (0.0, 0.0);
    for op in content.operations {
        match op.operator.as_str() {
            "Tm" => {
                at = (
                    op.operands[4].as_float().unwrap(),
                    op.operands[5].as_float().unwrap(),
                )
            }
            "Tj" => {
                let Object::String(bytes, _) = &op.operands[0] else {
                    panic!("Tj without a string")
                };
                // WinAnsi's upper half is Latin-1 for the letters used here.
                let text: String = bytes.iter().map(|&b| b as char).collect();
                out.push((at.0, at.1, text));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_address_block_sits_in_the_window_of_a_dl_envelope_and_the_document_follows() {
    let pdf = letter_pdf(&letter(document(2)), jiff::civil::date(2026, 3, 2)).unwrap();
    let doc = Document::load_mem(&pdf).unwrap();
    let pages = doc.get_pages();
    assert_eq!(
        pages.len(),
        3,
        "the cover page and the document's two pages"
    );

    let cover = lines(&doc, pages[&1]);
    let address: Vec<_> = cover
        .iter()
        .filter(|(x, _, _)| (*x - ADDRESS_LEFT_MM * MM).abs() < 0.01)
        .filter(|(_, y, _)| *y > PAGE_HEIGHT - 95.0 * MM)
        .collect();
    let texts: Vec<&str> = address.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Mme Hélène Lefèvre",
            "Appartement 12, 3e étage",
            "8 avenue Jean Jaurès",
            "31000 TOULOUSE"
        ]
    );
    // Every line inside the window zone: from 45 mm below the top edge, at most 45 mm tall.
    for (x, y, text) in &address {
        let from_top_mm = (PAGE_HEIGHT - y) / MM;
        assert!(
            from_top_mm > ADDRESS_TOP_MM && from_top_mm < ADDRESS_TOP_MM + 45.0,
            "{text} at {from_top_mm} mm from the top"
        );
        assert!(
            *x >= 110.0 * MM
                && x + rappel_channels::postal::text_width_mm(text) * MM
                    <= (ADDRESS_LEFT_MM + ADDRESS_MAX_WIDTH_MM) * MM
        );
    }
    // The postal code and the city on the last line, below the others.
    assert!(address.windows(2).all(|w| w[0].1 > w[1].1));
    let all: Vec<&str> = cover.iter().map(|(_, _, t)| t.as_str()).collect();
    assert!(all.contains(&"Cabinet du Dr Martin"));
    assert!(all.contains(&"Le 2 mars 2026"));
    assert!(all.contains(&"Objet : Compte rendu opératoire"));
    // The appended pages are the document's.
    let second = lines(&doc, pages[&2]);
    assert!(
        second
            .iter()
            .any(|(_, _, t)| t == "Objet : Page du document")
    );
}

#[test]
fn a_letter_without_an_address_or_with_a_broken_document_is_refused() {
    let mut broken = letter(b"%PDF-1.4 garbage".to_vec());
    assert!(matches!(
        letter_pdf(&broken, jiff::civil::date(2026, 3, 2)),
        Err(ChannelError::Permanent(_))
    ));
    broken.document_pdf.clear();
    assert_eq!(
        page_count(&letter_pdf(&broken, jiff::civil::date(2026, 3, 2)).unwrap()).unwrap(),
        1
    );
}

fn message(id: &str, letter: Letter) -> OutboundMessage {
    OutboundMessage {
        id: id.into(),
        practice_id: "p".into(),
        channel: Channel::Postal,
        to: letter.address_block.join("\n"),
        subject: None,
        text: String::new(),
        sender_name: "Cabinet".into(),
        calendar: None,
        html: None,
        push: None,
        letter: Some(Box::new(letter)),
        logo: None,
    }
}

// ---- Maileva on loopback --------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    content_type: String,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Maileva {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Answer this status to the sending's creation (0: the documented 201).
    fail_with: u16,
}

async fn handle(State(state): State<Maileva>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let path = parts.uri.path().to_string();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    });
    let (status, body) = match path.as_str() {
        "/oauth2/token" => (
            200,
            r#"{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}"#.to_string(),
        ),
        "/mail/v2/sendings" if state.fail_with != 0 => {
            (state.fail_with, r#"{"code":"error"}"#.to_string())
        }
        "/mail/v2/sendings" => (201, r#"{"id":"snd-42","status":"DRAFT"}"#.to_string()),
        p if p.ends_with("/documents") => (201, r#"{"id":"doc-1"}"#.to_string()),
        p if p.ends_with("/recipients") => (201, r#"{"id":"rcp-1"}"#.to_string()),
        p if p.ends_with("/submit") => (202, String::new()),
        _ => (404, String::new()),
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn spawn_maileva(state: Maileva) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn maileva(addr: SocketAddr) -> PostalApi {
    PostalApi::maileva(MailevaConfig {
        api_url: format!("http://{addr}"),
        token_url: format!("http://{addr}/oauth2/token"),
        client_id: "client".into(),
        client_secret: "secret".into(),
        tariff: PostalTariff {
            postage_cents: 150,
            postage_heavy_cents: 300,
            per_sheet_cents: 45,
        },
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn maileva_gets_a_token_then_a_sending_with_the_letter_and_the_recipient_then_submit() {
    let state = Maileva::default();
    let addr = spawn_maileva(state.clone()).await;
    let api = maileva(addr);
    let receipt = api
        .send(&message(
            "d:d1/postal_on_failure/postal",
            letter(document(1)),
        ))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("maileva:snd-42"));
    // One sheet printed on both sides: the postage and one sheet, as the receipt says.
    assert_eq!(receipt.cost_cents, Some(150 + 45));
    assert_eq!(api.cost_cents(2), 150 + 45);
    assert_eq!(
        api.cost_cents(7),
        300 + 4 * 45,
        "four sheets weigh more than 20 g"
    );
    let seen = state.seen.lock().unwrap().clone();
    let paths: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/oauth2/token"),
            ("POST", "/mail/v2/sendings"),
            ("POST", "/mail/v2/sendings/snd-42/documents"),
            ("POST", "/mail/v2/sendings/snd-42/recipients"),
            ("POST", "/mail/v2/sendings/snd-42/submit"),
        ]
    );
    assert!(seen[0].authorization.starts_with("Basic "));
    assert_eq!(
        String::from_utf8_lossy(&seen[0].body),
        "grant_type=client_credentials"
    );
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.authorization == "Bearer tok-123")
    );
    assert!(seen[2].content_type.starts_with("multipart/form-data"));
    let upload = &seen[2].body;
    assert!(
        upload.windows(5).any(|w| w == b"%PDF-"),
        "the letter's PDF is uploaded"
    );
    let recipient: serde_json::Value = serde_json::from_slice(&seen[3].body).unwrap();
    assert_eq!(recipient["address_line_1"], "Mme Hélène Lefèvre");
    assert_eq!(recipient["address_line_4"], "31000 TOULOUSE");
    assert_eq!(recipient["country_code"], "FR");
}

#[tokio::test]
async fn maileva_refusals_are_permanent_and_its_outages_transient() {
    let addr = spawn_maileva(Maileva {
        fail_with: 400,
        ..Maileva::default()
    })
    .await;
    let error = maileva(addr)
        .send(&message("k", letter(document(1))))
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Permanent(_)), "{error:?}");

    let addr = spawn_maileva(Maileva {
        fail_with: 503,
        ..Maileva::default()
    })
    .await;
    let error = maileva(addr)
        .send(&message("k", letter(document(1))))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");

    // Nobody listening: retry later.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = maileva(closed)
        .send(&message("k", letter(document(1))))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
}

// ---- the print batch ------------------------------------------------------------------------------

#[tokio::test]
async fn the_print_batch_assembles_the_letters_of_a_day_into_one_pdf_and_a_list() {
    let dir = std::env::temp_dir().join(format!("rappel-print-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let batch = PrintBatch::new(&dir);
    let day = jiff::civil::date(2026, 3, 2);
    let receipt = batch
        .send(&message(
            "d:d1/postal_on_failure/postal",
            letter(document(2)),
        ))
        .await
        .unwrap();
    // Three pages on two sheets: a 20 g letter, one « Lettre verte » stamp by default.
    assert_eq!(receipt.cost_cents, Some(PostalTariff::PRINT.postage_cents));
    let mut second = letter(document(1));
    second.title = "Ordonnance; renouvellement".into();
    second.address_block = vec![
        "M. Éric Lambert".into(),
        "1 rue Nationale".into(),
        "59000 LILLE".into(),
    ];
    batch
        .add(&message("d:d2/postal_unread/postal", second))
        .await
        .unwrap();
    // A letter dated the next day joins the next day's batch, whatever the machine's clock says.
    let mut tomorrow = letter(document(1));
    tomorrow.date = day.tomorrow().unwrap();
    batch
        .add(&message("d:d4/postal_unread/postal", tomorrow))
        .await
        .unwrap();

    let made = assemble_batch(&dir, "p", day).unwrap();
    assert_eq!(made.letters, 2);
    assert_eq!(made.pages, 3 + 2);
    assert_eq!(made.cost_cents, 2 * 152);
    assert!(made.pdf.starts_with(dir.join("p").join("2026-03-02")));
    assert_eq!(page_count(&std::fs::read(&made.pdf).unwrap()).unwrap(), 5);
    let csv = std::fs::read_to_string(&made.csv).unwrap();
    assert_eq!(
        csv,
        "destinataire;localite;document;pages;affranchissement_centimes\n\
         Mme Hélène Lefèvre;31000 TOULOUSE;Compte rendu opératoire;3;152\n\
         M. Éric Lambert;59000 LILLE;\"Ordonnance; renouvellement\";2;152\n"
    );
    assert_eq!(
        assemble_batch(&dir, "p", day.tomorrow().unwrap())
            .unwrap()
            .letters,
        1
    );
    assert!(
        assemble_batch(&dir, "another-practice", day).is_err(),
        "each practice has its own batch"
    );
    // A letter whose document has no file is refused rather than posted as a bare cover page.
    let error = batch
        .add(&message("d:d3/manual_postal/postal/1", letter(Vec::new())))
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Permanent(_)), "{error:?}");
    // Assembling again gives the same batch (the batch files are not letters).
    assert_eq!(assemble_batch(&dir, "p", day).unwrap().letters, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_tariff_counts_sheets_printed_on_both_sides_and_the_weight_step() {
    let tariff = PostalTariff {
        postage_cents: 100,
        postage_heavy_cents: 200,
        per_sheet_cents: 10,
    };
    assert_eq!(tariff.cost_cents(1), 100 + 10);
    assert_eq!(tariff.cost_cents(2), 100 + 10);
    assert_eq!(
        tariff.cost_cents(6),
        100 + 30,
        "three sheets still weigh 20 g"
    );
    assert_eq!(tariff.cost_cents(7), 200 + 40);
    assert_eq!(PostalTariff::PRINT.cost_cents(3), 152);
}

// ---- the logo in the letterhead -----------------------------------------------------------------

/// A PNG of `width` × `height` pixels, half transparent.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, _| {
        image::Rgba([200, 30, 60, if x % 2 == 0 { 255 } else { 0 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn the_logo_is_an_image_at_the_top_left_of_the_cover_page_above_the_letterhead() {
    let mut with_logo = letter(document(1));
    with_logo.logo = Some(Arc::new(rappel_channels::LogoImage {
        png: png(150, 40),
        width: 150,
        height: 40,
    }));
    let pdf = letter_pdf(&with_logo, jiff::civil::date(2026, 3, 2)).unwrap();
    let doc = Document::load_mem(&pdf).unwrap();
    let cover = *doc.get_pages().get(&1).unwrap();

    // The page's resources name an image XObject of the logo's size, with its transparency.
    let resources = doc
        .get_dictionary(cover)
        .unwrap()
        .get(b"Resources")
        .unwrap()
        .as_reference()
        .unwrap();
    let xobjects = doc
        .get_dictionary(resources)
        .unwrap()
        .get(b"XObject")
        .unwrap();
    let xobjects = match xobjects {
        Object::Reference(id) => doc.get_dictionary(*id).unwrap(),
        Object::Dictionary(d) => d,
        other => panic!("XObject is {other:?}"),
    };
    let image_id = xobjects.get(b"Logo").unwrap().as_reference().unwrap();
    let image = doc.get_object(image_id).unwrap().as_stream().unwrap();
    assert_eq!(
        image.dict.get(b"Subtype").unwrap().as_name().unwrap(),
        b"Image"
    );
    assert_eq!(image.dict.get(b"Width").unwrap().as_i64().unwrap(), 150);
    assert_eq!(image.dict.get(b"Height").unwrap().as_i64().unwrap(), 40);
    assert!(
        image.dict.has(b"SMask"),
        "the transparent pixels stay transparent"
    );
    let samples = image
        .decompressed_content()
        .unwrap_or_else(|_| image.content.clone());
    assert_eq!(samples.len(), 150 * 40 * 3);
    assert_eq!(&samples[..3], &[200, 30, 60]);

    // It is drawn at the top left: 20 mm from the left edge, 10 mm from the top, 96 dpi.
    let content = Content::decode(&doc.get_page_content(cover)).unwrap();
    let at = content
        .operations
        .iter()
        .position(|op| op.operator == "Do")
        .expect("the logo is drawn");
    let cm = &content.operations[at - 1];
    assert_eq!(cm.operator, "cm");
    let n: Vec<f32> = cm.operands.iter().map(|o| o.as_float().unwrap()).collect();
    let px = 72.0 / 96.0;
    assert!(
        (n[0] - 150.0 * px).abs() < 0.1 && (n[3] - 40.0 * px).abs() < 0.1,
        "{n:?}"
    );
    assert!((n[4] - 20.0 * MM).abs() < 0.1, "{n:?}");
    assert!(
        (PAGE_HEIGHT - (n[5] + n[3]) - 10.0 * MM).abs() < 0.1,
        "{n:?}"
    );

    // The letterhead's first line comes below the logo, the address block has not moved.
    let text = lines(&doc, cover);
    let head = text
        .iter()
        .find(|(_, _, t)| t == "Cabinet du Dr Martin")
        .unwrap();
    assert!(head.1 < n[5], "the practice's name is below the logo");
    let name = text
        .iter()
        .find(|(_, _, t)| t.starts_with("Mme H"))
        .unwrap();
    let without = letter_pdf(&letter(document(1)), jiff::civil::date(2026, 3, 2)).unwrap();
    let without = Document::load_mem(&without).unwrap();
    let plain = lines(&without, *without.get_pages().get(&1).unwrap());
    assert!(
        plain.contains(name),
        "the address is where it was without a logo"
    );
}

#[test]
fn a_logo_that_is_not_a_png_makes_the_letter_fail_for_good() {
    let mut broken = letter(document(1));
    broken.logo = Some(Arc::new(rappel_channels::LogoImage {
        png: b"not a png".to_vec(),
        width: 10,
        height: 10,
    }));
    assert!(matches!(
        letter_pdf(&broken, jiff::civil::date(2026, 3, 2)),
        Err(ChannelError::Permanent(_))
    ));
}
