//! The letter as a PDF: the cover page for a DL window envelope, then the document's own pages;
//! and the checks a document's PDF passes before it is accepted.

use jiff::civil::Date;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, ObjectId, Stream, StringFormat, dictionary};

use crate::{ChannelError, Letter};

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
