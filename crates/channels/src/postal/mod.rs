//! Postal letters: the letter as a PDF (a cover page for a DL window envelope, then the
//! document's own pages), and two ways to post it — La Poste's Maileva API ([`PostalApi`]) or the
//! practice's own printer ([`PrintBatch`], one folder per practice and day, assembled by
//! `rappel print-batch`).
//!
//! The practice's logo, when it has one, heads the cover page at the top left (an image XObject,
//! RGB with its transparency as a soft mask), drawn at 96 dpi so that 150 × 75 px is about
//! 40 × 20 mm, above the letterhead's lines.
//!
//! What a letter costs comes from the configured [`PostalTariff`]: the calls of Maileva's
//! "courrier simple" API that a sending goes through (create, add the document and the recipient,
//! submit) answer ids and statuses, not a price, and a letter the practice posts itself costs its
//! stamp. Should a provider answer a price, its transport puts that in the [`Receipt`] instead.
//!
//! The cover page follows NF Z10-011 and La Poste's window-envelope rules: the recipient's block
//! starts 110 mm from the left and 45 mm from the top, at most 85 mm wide and 6 lines, so that it
//! shows through the window of a DL envelope (220 × 110 mm, window about 100 × 45 mm) once the A4
//! sheet is folded in three. The text uses the built-in Helvetica in WinAnsi encoding (French
//! accents, no embedded font).
//!
//! ```no_run
//! # fn demo(letter: &rappel_channels::Letter) -> Result<(), rappel_channels::ChannelError> {
//! let pdf = rappel_channels::postal::letter_pdf(letter, jiff::civil::date(2026, 3, 2))?;
//! # Ok(()) }
//! ```
//!
//! What it deliberately does not do: decide whether a letter goes (France only, an address on
//! file: that is the planner's business) or store anything but the print folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, ObjectId, Stream, StringFormat, dictionary};
use serde::Deserialize;

use crate::{ChannelError, Letter, OutboundMessage, Receipt, SendFuture, Transport};

/// Points per millimetre.
const MM: f32 = 72.0 / 25.4;
const A4_WIDTH_MM: f32 = 210.0;
const A4_HEIGHT_MM: f32 = 297.0;
/// Where the recipient's block starts (NF Z10-011, DL window envelope).
pub const ADDRESS_LEFT_MM: f32 = 110.0;
pub const ADDRESS_TOP_MM: f32 = 45.0;
pub const ADDRESS_MAX_WIDTH_MM: f32 = 85.0;
pub const ADDRESS_MAX_LINES: usize = 6;
const FONT_SIZE: f32 = 10.0;
const LEADING: f32 = 12.0;
/// The letterhead's left margin and the logo's top edge.
const MARGIN_LEFT_MM: f32 = 20.0;
const LOGO_TOP_MM: f32 = 10.0;
/// A logo pixel on paper: 1/96 inch, the size a browser gives it in the email header.
const LOGO_PIXEL_MM: f32 = 25.4 / 96.0;

/// What a letter costs, in euro cents: postage by weight step, plus printing and enveloping per
/// sheet (pages are printed on both sides, two to a sheet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostalTariff {
    /// Postage of a letter up to 20 g: an envelope and up to three sheets of 80 g/m² paper.
    pub postage_cents: u32,
    /// Postage of a heavier letter (21 to 100 g).
    pub postage_heavy_cents: u32,
    /// Printing, paper and enveloping, per sheet.
    pub per_sheet_cents: u32,
}

/// Sheets that still make a 20 g letter (5 g each, 5 g for the DL envelope).
const SHEETS_IN_20_GRAMS: u32 = 3;

impl PostalTariff {
    /// The default for letters the practice prints and stamps itself: La Poste's public price of
    /// a « Lettre verte » on 1 January 2026 (1.52 € up to 20 g, 3.04 € up to 100 g), paper and
    /// toner not counted. Set `RAPPEL_POSTAL_POSTAGE_CENTS`, `RAPPEL_POSTAL_POSTAGE_HEAVY_CENTS`
    /// and `RAPPEL_POSTAL_SHEET_CENTS` to your own figures.
    pub const PRINT: PostalTariff = PostalTariff {
        postage_cents: 152,
        postage_heavy_cents: 304,
        per_sheet_cents: 0,
    };

    /// The default for Maileva: the same postage plus an estimate of 0.40 € per printed and
    /// enveloped sheet. Maileva prices by contract: put yours in the same variables.
    pub const MAILEVA: PostalTariff = PostalTariff {
        postage_cents: 152,
        postage_heavy_cents: 304,
        per_sheet_cents: 40,
    };

    /// The cost of a letter of `pages` pages.
    pub fn cost_cents(&self, pages: usize) -> u32 {
        let sheets = u32::try_from(pages.div_ceil(2)).unwrap_or(u32::MAX);
        let postage = if sheets <= SHEETS_IN_20_GRAMS {
            self.postage_cents
        } else {
            self.postage_heavy_cents
        };
        postage.saturating_add(self.per_sheet_cents.saturating_mul(sheets))
    }
}

/// The letter as one PDF: the cover page, then every page of the document.
pub fn letter_pdf(letter: &Letter, date: Date) -> Result<Vec<u8>, ChannelError> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let bold_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica-Bold",
        "Encoding" => "WinAnsiEncoding",
    });
    let mut resources = dictionary! {
        "Font" => dictionary! { "F1" => font_id, "F2" => bold_id },
    };
    let logo = match &letter.logo {
        Some(logo) => {
            let image_id = logo_xobject(&mut doc, logo)?;
            resources.set("XObject", dictionary! { "Logo" => image_id });
            Some((logo.width, logo.height))
        }
        None => None,
    };
    let resources_id = doc.add_object(resources);
    let content = cover_content(letter, date, logo);
    let content_id = doc.add_object(Stream::new(
        dictionary! {},
        content.encode().map_err(pdf_error)?,
    ));
    let cover_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
        "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), (A4_WIDTH_MM * MM).into(), (A4_HEIGHT_MM * MM).into()],
    });
    let mut kids: Vec<Object> = vec![cover_id.into()];
    if !letter.document_pdf.is_empty() {
        // Documents stored before uploads were checked get the same bound here.
        check_document_pdf(&letter.document_pdf).map_err(|reason| {
            ChannelError::Permanent(format!("the document cannot be printed: {reason}"))
        })?;
        let source = load_bounded(&letter.document_pdf).map_err(|e| {
            ChannelError::Permanent(format!("the document is not a readable PDF: {e}"))
        })?;
        kids.extend(append_pages(&mut doc, source, pages_id)?);
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(pdf_error)?;
    Ok(out)
}

/// The most a document's streams may decode to, all together: a letter is built in memory from
/// them, and real documents (scans included) decode to a few megabytes.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// The most objects a document may hold; real ones have hundreds to a few thousand.
pub const MAX_OBJECTS: usize = 100_000;

/// Loads an untrusted PDF within the memory budget: no stream may decode past
/// [`MAX_DECODED_BYTES`] while lopdf reads the object and cross-reference streams it must.
fn load_bounded(pdf: &[u8]) -> lopdf::Result<Document> {
    Document::load_mem_with_options(
        pdf,
        lopdf::LoadOptions {
            max_decompressed_size: Some(MAX_DECODED_BYTES),
            ..Default::default()
        },
    )
}

/// Checks that a document can be made into a letter within the memory budget: it reads as a
/// PDF, has at most [`MAX_OBJECTS`] objects, and its streams decode to at most
/// [`MAX_DECODED_BYTES`] together. Each stream is decoded with the budget left as its bound, so
/// a decompression bomb (a few hundred kilobytes of compressed zeros that would inflate to
/// gigabytes) is stopped at the budget, never inflated whole. The reason names no internals.
pub fn check_document_pdf(pdf: &[u8]) -> Result<(), String> {
    let doc = load_bounded(pdf).map_err(|e| match e {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            over_budget()
        }
        other => format!("not a readable PDF ({other})"),
    })?;
    if doc.objects.len() > MAX_OBJECTS {
        return Err(format!(
            "the PDF holds {} objects; at most {MAX_OBJECTS} are accepted",
            doc.objects.len()
        ));
    }
    let mut total = 0usize;
    for object in doc.objects.values() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let left = MAX_DECODED_BYTES - total;
        let decoded = match stream.decompressed_content_with_limit(left) {
            Ok(content) => content.len(),
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                ..
            })) => return Err(over_budget()),
            // Image codecs lopdf does not decode (JPEG, JBIG2, CCITT) are left to the printer:
            // their compressed size is what the letter carries.
            Err(_) => stream.content.len(),
        };
        total += decoded;
        if total > MAX_DECODED_BYTES {
            return Err(over_budget());
        }
    }
    Ok(())
}

fn over_budget() -> String {
    format!(
        "the PDF's content decompresses to more than {} MB; a document for patients is far smaller",
        MAX_DECODED_BYTES / (1024 * 1024)
    )
}

fn pdf_error(e: impl std::fmt::Display) -> ChannelError {
    ChannelError::Permanent(format!("cannot build the letter: {e}"))
}

/// The logo as a PDF image: its RGB samples, and its alpha channel as a soft mask when it has
/// transparency (a PNG logo on a transparent background stays so on the paper).
fn logo_xobject(doc: &mut Document, logo: &crate::LogoImage) -> Result<ObjectId, ChannelError> {
    let image = image::load_from_memory_with_format(&logo.png, image::ImageFormat::Png)
        .map_err(|e| ChannelError::Permanent(format!("the practice's logo does not decode: {e}")))?
        .to_rgba8();
    let (width, height) = image.dimensions();
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    let mut alpha = Vec::with_capacity((width * height) as usize);
    for pixel in image.pixels() {
        rgb.extend_from_slice(&pixel.0[..3]);
        alpha.push(pixel.0[3]);
    }
    let mut dict = dictionary! {
        "Type" => "XObject",
        "Subtype" => "Image",
        "Width" => i64::from(width),
        "Height" => i64::from(height),
        "ColorSpace" => "DeviceRGB",
        "BitsPerComponent" => 8,
    };
    if alpha.iter().any(|&a| a < 255) {
        let mask_id = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject",
                "Subtype" => "Image",
                "Width" => i64::from(width),
                "Height" => i64::from(height),
                "ColorSpace" => "DeviceGray",
                "BitsPerComponent" => 8,
            },
            alpha,
        ));
        dict.set("SMask", mask_id);
    }
    Ok(doc.add_object(Stream::new(dict, rgb)))
}

/// One line of text at `(x, y)` millimetres from the top-left corner.
fn text_line(ops: &mut Vec<Operation>, font: &str, size: f32, x_mm: f32, top_mm: f32, text: &str) {
    ops.push(Operation::new("BT", vec![]));
    ops.push(Operation::new("Tf", vec![font.into(), size.into()]));
    ops.push(Operation::new(
        "Tm",
        vec![
            1.into(),
            0.into(),
            0.into(),
            1.into(),
            (x_mm * MM).into(),
            ((A4_HEIGHT_MM - top_mm) * MM).into(),
        ],
    ));
    ops.push(Operation::new(
        "Tj",
        vec![Object::String(win_ansi(text), StringFormat::Literal)],
    ));
    ops.push(Operation::new("ET", vec![]));
}

fn cover_content(letter: &Letter, date: Date, logo: Option<(u32, u32)>) -> Content {
    let mut ops = Vec::new();
    let line_mm = LEADING / MM;
    // The logo, top left, then the letterhead's lines below it.
    let mut head_top_mm = 20.0;
    if let Some((width, height)) = logo {
        let (w_mm, h_mm) = (width as f32 * LOGO_PIXEL_MM, height as f32 * LOGO_PIXEL_MM);
        let bottom = (A4_HEIGHT_MM - LOGO_TOP_MM - h_mm) * MM;
        ops.push(Operation::new("q", vec![]));
        ops.push(Operation::new(
            "cm",
            vec![
                (w_mm * MM).into(),
                0.into(),
                0.into(),
                (h_mm * MM).into(),
                (MARGIN_LEFT_MM * MM).into(),
                bottom.into(),
            ],
        ));
        ops.push(Operation::new("Do", vec!["Logo".into()]));
        ops.push(Operation::new("Q", vec![]));
        head_top_mm = LOGO_TOP_MM + h_mm + 3.0;
    }
    for (i, line) in letter.sender_block.iter().enumerate() {
        let font = if i == 0 { "F2" } else { "F1" };
        text_line(
            &mut ops,
            font,
            FONT_SIZE,
            MARGIN_LEFT_MM,
            head_top_mm + FONT_SIZE / MM + i as f32 * line_mm,
            line,
        );
    }
    // The recipient, in the window zone: the first baseline one font size below its top edge.
    for (i, line) in letter
        .address_block
        .iter()
        .take(ADDRESS_MAX_LINES)
        .enumerate()
    {
        let line = fit_width(line, ADDRESS_MAX_WIDTH_MM);
        text_line(
            &mut ops,
            "F1",
            FONT_SIZE,
            ADDRESS_LEFT_MM,
            ADDRESS_TOP_MM + FONT_SIZE / MM + i as f32 * line_mm,
            &line,
        );
    }
    text_line(
        &mut ops,
        "F1",
        FONT_SIZE,
        ADDRESS_LEFT_MM,
        100.0,
        &format!("Le {}", french_date(date)),
    );
    text_line(
        &mut ops,
        "F2",
        FONT_SIZE,
        20.0,
        115.0,
        &format!("Objet : {}", letter.title),
    );
    let body = [
        "Madame, Monsieur,".to_string(),
        String::new(),
        format!(
            "Veuillez trouver ci-joint le document « {} ».",
            letter.title
        ),
        String::new(),
        "Nous vous prions d’agréer nos salutations distinguées.".to_string(),
    ];
    for (i, line) in body.iter().enumerate() {
        text_line(
            &mut ops,
            "F1",
            FONT_SIZE,
            20.0,
            130.0 + i as f32 * line_mm,
            line,
        );
    }
    if let Some(name) = letter.sender_block.first() {
        text_line(
            &mut ops,
            "F1",
            FONT_SIZE,
            ADDRESS_LEFT_MM,
            130.0 + 7.0 * line_mm,
            name,
        );
    }
    Content { operations: ops }
}

fn french_date(date: Date) -> String {
    let day = if date.day() == 1 {
        "1er".to_string()
    } else {
        date.day().to_string()
    };
    format!(
        "{day} {} {}",
        rappel_domain::template::MONTHS_FR[(date.month() - 1) as usize],
        date.year()
    )
}

/// Helvetica's advance widths (1/1000 em) for the printable ASCII range, from the standard AFM.
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// The width of `text` in millimetres at the cover's font size (accented letters as their base).
pub fn text_width_mm(text: &str) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| {
            let base = match c {
                'à' | 'â' | 'ä' | 'á' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'î' | 'ï' => 'i',
                'ô' | 'ö' => 'o',
                'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                'À' | 'Â' => 'A',
                'É' | 'È' | 'Ê' | 'Ë' => 'E',
                'Ç' => 'C',
                other => other,
            };
            match base as u32 {
                0x20..=0x7e => u32::from(HELVETICA_WIDTHS[(base as u32 - 0x20) as usize]),
                _ => 556,
            }
        })
        .sum();
    units as f32 / 1000.0 * FONT_SIZE / MM
}

/// Shortens a line that would overflow the window (the domain already caps lines at 38
/// characters; wide capitals can still exceed 85 mm).
fn fit_width(line: &str, max_mm: f32) -> String {
    let mut out = line.to_string();
    while text_width_mm(&out) > max_mm && !out.is_empty() {
        out.pop();
    }
    out
}

/// Encodes text for a WinAnsi (Windows-1252) font; what it cannot show becomes `?`.
pub fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{202f}' => 0xa0,
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            _ => b'?',
        })
        .collect()
}

/// Page attributes a page may inherit from its ancestors (PDF 32000-1, 7.7.3.4).
const INHERITED: [&[u8]; 4] = [b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

/// Moves every page of `source` into `doc` under `parent`; returns the new pages' references.
fn append_pages(
    doc: &mut Document,
    mut source: Document,
    parent: ObjectId,
) -> Result<Vec<Object>, ChannelError> {
    source.renumber_objects_with(doc.max_id + 1);
    let pages: Vec<ObjectId> = source.get_pages().into_values().collect();
    // Inherited attributes are copied onto each page: the source's page tree is left behind.
    for &page in &pages {
        let mut found = Vec::new();
        for key in INHERITED {
            if source
                .get_dictionary(page)
                .map(|d| d.has(key))
                .unwrap_or(false)
            {
                continue;
            }
            let mut node = source
                .get_dictionary(page)
                .ok()
                .and_then(|d| d.get(b"Parent").ok())
                .and_then(|p| p.as_reference().ok());
            while let Some(id) = node {
                let Ok(dict) = source.get_dictionary(id) else {
                    break;
                };
                if let Ok(value) = dict.get(key) {
                    found.push((key, value.clone()));
                    break;
                }
                node = dict.get(b"Parent").ok().and_then(|p| p.as_reference().ok());
            }
        }
        let dict = source
            .get_dictionary_mut(page)
            .map_err(|e| ChannelError::Permanent(format!("the document has a broken page: {e}")))?;
        for (key, value) in found {
            dict.set(key.to_vec(), value);
        }
        dict.set("Parent", parent);
    }
    for (id, object) in source.objects {
        let skip = matches!(&object, Object::Dictionary(d) if d.has_type(b"Catalog") || d.has_type(b"Pages"));
        if !skip {
            doc.objects.insert(id, object);
        }
    }
    doc.max_id = doc
        .objects
        .keys()
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(doc.max_id);
    Ok(pages.into_iter().map(Object::Reference).collect())
}

/// Concatenates whole PDFs, page after page (the day's print batch).
pub fn merge_pdfs(pdfs: &[Vec<u8>]) -> Result<Vec<u8>, ChannelError> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut kids = Vec::new();
    for pdf in pdfs {
        let source = load_bounded(pdf)
            .map_err(|e| ChannelError::Permanent(format!("a letter is not a readable PDF: {e}")))?;
        kids.extend(append_pages(&mut doc, source, pages_id)?);
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(pdf_error)?;
    Ok(out)
}

/// How many pages a PDF has.
pub fn page_count(pdf: &[u8]) -> Result<usize, ChannelError> {
    load_bounded(pdf)
        .map(|d| d.get_pages().len())
        .map_err(|e| ChannelError::Permanent(format!("not a readable PDF: {e}")))
}

fn letter_of(message: &OutboundMessage) -> Result<&Letter, ChannelError> {
    let letter = message
        .letter
        .as_deref()
        .ok_or_else(|| ChannelError::Permanent("a postal message without its letter".into()))?;
    if letter.address_block.is_empty() {
        return Err(ChannelError::Permanent(
            "a letter without an address".into(),
        ));
    }
    // A cover page announcing a document that is not there would only puzzle the patient.
    if letter.document_pdf.is_empty() {
        return Err(ChannelError::Permanent(
            "no file for this document: upload it with POST /v1/documents".into(),
        ));
    }
    Ok(letter)
}

fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Maileva (La Poste)
// ---------------------------------------------------------------------------------------------

/// How to reach Maileva's "courrier simple" REST API (v2) and what a letter costs.
#[derive(Clone)]
pub struct MailevaConfig {
    /// `https://api.maileva.com` (or `https://api.sandbox.maileva.net`).
    pub api_url: String,
    /// The OAuth2 token endpoint (client credentials).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// What a letter costs: the API answers no price (see the module's documentation).
    pub tariff: PostalTariff,
    pub timeout: Duration,
}

impl std::fmt::Debug for MailevaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailevaConfig")
            .field("api_url", &self.api_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Sends letters through Maileva: an OAuth2 token (client credentials), then a sending is
/// created (`POST /mail/v2/sendings`), the letter's PDF added as its document, the recipient's
/// address lines added, and the sending submitted. The sending's id is the provider id.
pub struct PostalApi {
    config: MailevaConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl PostalApi {
    pub fn maileva(config: MailevaConfig) -> PostalApi {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .expect("a reqwest client with rustls builds");
        PostalApi { config, http }
    }

    /// The cost of a letter of `pages` pages, in cents.
    pub fn cost_cents(&self, pages: usize) -> u32 {
        self.config.tariff.cost_cents(pages)
    }

    async fn token(&self) -> Result<String, ChannelError> {
        let response = self
            .http
            .post(&self.config.token_url)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(transport_error)?;
        let response = classify(response).await?;
        let token: Token = response
            .json()
            .await
            .map_err(|e| ChannelError::Permanent(format!("Maileva token answer: {e}")))?;
        Ok(token.access_token)
    }

    async fn post_json(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ChannelError> {
        let url = format!(
            "{}/mail/v2{path}",
            self.config.api_url.trim_end_matches('/')
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        classify(response).await
    }
}

fn transport_error(e: reqwest::Error) -> ChannelError {
    ChannelError::Transient {
        reason: format!("Maileva unreachable: {e}"),
        retry_after: None,
    }
}

/// 2xx passes; 429 and 5xx are worth retrying; other 4xx are refusals for good.
async fn classify(response: reqwest::Response) -> Result<reqwest::Response, ChannelError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let reason = format!("Maileva answered {status}: {body}");
    if status.is_server_error() || status.as_u16() == 429 {
        Err(ChannelError::Transient {
            reason,
            retry_after: None,
        })
    } else {
        Err(ChannelError::Permanent(reason))
    }
}

impl Transport for PostalApi {
    fn letter_cost_cents(&self, pages: usize) -> Option<u32> {
        Some(self.config.tariff.cost_cents(pages))
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let letter = letter_of(message)?;
            let pdf = letter_pdf(letter, letter.date)?;
            let pages = page_count(&pdf)?;
            let token = self.token().await?;
            let sending: Created = self
                .post_json(
                    &token,
                    "/sendings",
                    &serde_json::json!({
                        "name": message.id,
                        "custom_id": message.id,
                        "color_printing": false,
                        "duplex_printing": true,
                        "optional_address_sheet": false,
                        "postage_type": "ECONOMIC",
                    }),
                )
                .await?
                .json()
                .await
                .map_err(|e| ChannelError::Permanent(format!("Maileva sending answer: {e}")))?;
            let base = format!(
                "{}/mail/v2/sendings/{}",
                self.config.api_url.trim_end_matches('/'),
                sending.id
            );
            let form = reqwest::multipart::Form::new()
                .part(
                    "document",
                    reqwest::multipart::Part::bytes(pdf)
                        .file_name("courrier.pdf")
                        .mime_str("application/pdf")
                        .expect("a valid MIME type"),
                )
                .text(
                    "metadata",
                    serde_json::json!({ "priority": 1, "name": "courrier.pdf" }).to_string(),
                );
            let response = self
                .http
                .post(format!("{base}/documents"))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .map_err(transport_error)?;
            classify(response).await?;
            let mut recipient = serde_json::Map::new();
            for (i, line) in letter
                .address_block
                .iter()
                .take(ADDRESS_MAX_LINES)
                .enumerate()
            {
                recipient.insert(format!("address_line_{}", i + 1), line.clone().into());
            }
            recipient.insert("country_code".into(), "FR".into());
            recipient.insert("custom_id".into(), message.id.clone().into());
            self.post_json(
                &token,
                &format!("/sendings/{}/recipients", sending.id),
                &serde_json::Value::Object(recipient),
            )
            .await?;
            self.post_json(
                &token,
                &format!("/sendings/{}/submit", sending.id),
                &serde_json::json!({}),
            )
            .await?;
            let cost_cents = self.cost_cents(pages);
            tracing::info!(
                sending = %sending.id,
                pages,
                cost_cents,
                "letter handed to Maileva"
            );
            Ok(Receipt {
                provider_id: Some(format!("maileva:{}", sending.id)),
                cost_cents: Some(cost_cents),
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Print batch
// ---------------------------------------------------------------------------------------------

/// For practices that post their letters themselves: each letter is written to its practice's
/// folder of the letter's date (`<dir>/<practice>/YYYY-MM-DD/`), and [`assemble_batch`] makes one
/// PDF to print and a CSV list of it. The date is the letter's own ([`Letter::date`], the
/// practice-local day of the engine's clock), so a letter made at 00:30 in Paris joins that
/// day's batch even though the machine's clock (UTC) still says the day before.
pub struct PrintBatch {
    dir: PathBuf,
    tariff: PostalTariff,
}

impl PrintBatch {
    pub fn new(dir: impl Into<PathBuf>) -> PrintBatch {
        PrintBatch {
            dir: dir.into(),
            tariff: PostalTariff::PRINT,
        }
    }

    /// The same batch with the practice's own postage prices.
    pub fn with_tariff(self, tariff: PostalTariff) -> PrintBatch {
        PrintBatch { tariff, ..self }
    }

    /// The folder of one practice's letters of one day.
    pub fn folder(dir: &Path, practice_id: &str, date: Date) -> PathBuf {
        dir.join(safe_name(practice_id)).join(date.to_string())
    }

    /// Writes one letter into its practice's folder of the letter's date; returns its path and
    /// its cost (the stamp, by the tariff).
    pub async fn add(&self, message: &OutboundMessage) -> Result<(PathBuf, u32), ChannelError> {
        let letter = letter_of(message)?;
        let pdf = letter_pdf(letter, letter.date)?;
        let pages = page_count(&pdf)?;
        let cost_cents = self.tariff.cost_cents(pages);
        let folder = PrintBatch::folder(&self.dir, &message.practice_id, letter.date);
        let name = safe_name(&message.id);
        let write = |e: std::io::Error| ChannelError::Transient {
            reason: format!("cannot write to the print folder: {e}"),
            retry_after: None,
        };
        tokio::fs::create_dir_all(&folder).await.map_err(write)?;
        let meta = serde_json::json!({
            "recipient": letter.address_block.first().cloned().unwrap_or_default(),
            "locality": letter.address_block.last().cloned().unwrap_or_default(),
            "title": letter.title,
            "pages": pages,
            "cost_cents": cost_cents,
        });
        tokio::fs::write(folder.join(format!("{name}.json")), meta.to_string())
            .await
            .map_err(write)?;
        let path = folder.join(format!("{name}.pdf"));
        tokio::fs::write(&path, pdf).await.map_err(write)?;
        Ok((path, cost_cents))
    }
}

impl Transport for PrintBatch {
    fn letter_cost_cents(&self, pages: usize) -> Option<u32> {
        Some(self.tariff.cost_cents(pages))
    }

    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let (path, cost_cents) = self.add(message).await?;
            Ok(Receipt {
                provider_id: Some(format!("print:{}", path.display())),
                cost_cents: Some(cost_cents),
            })
        })
    }
}

/// What [`assemble_batch`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub pdf: PathBuf,
    pub csv: PathBuf,
    pub letters: usize,
    pub pages: usize,
    /// The postage of the batch, by the tariff at the time each letter was made.
    pub cost_cents: u64,
}

/// Assembles one practice's letters of one day into `lettres.pdf` and `lettres.csv` in that
/// day's folder.
pub fn assemble_batch(dir: &Path, practice_id: &str, date: Date) -> Result<Batch, ChannelError> {
    let folder = PrintBatch::folder(dir, practice_id, date);
    let read = |e: std::io::Error| ChannelError::Permanent(format!("{}: {e}", folder.display()));
    if !folder.is_dir() {
        return Err(ChannelError::Permanent(format!(
            "no letters for {date}: {} does not exist",
            folder.display()
        )));
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(read)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "pdf")
                && p.file_stem().is_some_and(|s| s != "lettres")
        })
        .collect();
    names.sort();
    let mut pdfs = Vec::new();
    let mut csv = String::from("destinataire;localite;document;pages;affranchissement_centimes\n");
    let mut pages = 0;
    let mut cost_cents = 0;
    for path in &names {
        let pdf = std::fs::read(path).map_err(read)?;
        let meta: serde_json::Value = std::fs::read(path.with_extension("json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let count = page_count(&pdf)?;
        pages += count;
        let field = |k: &str| csv_field(meta.get(k).and_then(|v| v.as_str()).unwrap_or(""));
        let cost = meta.get("cost_cents").and_then(|v| v.as_u64()).unwrap_or(0);
        cost_cents += cost;
        csv.push_str(&format!(
            "{};{};{};{count};{cost}\n",
            field("recipient"),
            field("locality"),
            field("title")
        ));
        pdfs.push(pdf);
    }
    let merged = merge_pdfs(&pdfs)?;
    let batch = Batch {
        pdf: folder.join("lettres.pdf"),
        csv: folder.join("lettres.csv"),
        letters: names.len(),
        pages,
        cost_cents,
    };
    std::fs::write(&batch.pdf, merged).map_err(read)?;
    std::fs::write(&batch.csv, csv).map_err(read)?;
    Ok(batch)
}

fn csv_field(text: &str) -> String {
    if text.contains([';', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_french_accents_and_typographic_quotes() {
        assert_eq!(
            win_ansi("é à ç « » ’ œ €"),
            b"\xe9 \xe0 \xe7 \xab \xbb \x92 \x9c \x80"
        );
    }

    #[test]
    fn dates_are_written_the_french_way() {
        assert_eq!(french_date(jiff::civil::date(2026, 3, 1)), "1er mars 2026");
        assert_eq!(french_date(jiff::civil::date(2026, 8, 15)), "15 août 2026");
    }
}
