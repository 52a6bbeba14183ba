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
//! stamp. Should a provider answer a price, its transport puts that in the [`Receipt`](crate::Receipt) instead.
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

mod maileva;
mod pdf;
mod print_batch;

pub use maileva::{MailevaConfig, PostalApi};
pub use pdf::{
    ADDRESS_LEFT_MM, ADDRESS_MAX_LINES, ADDRESS_MAX_WIDTH_MM, ADDRESS_TOP_MM, MAX_DECODED_BYTES,
    MAX_OBJECTS, check_document_pdf, letter_pdf, merge_pdfs, page_count, text_width_mm, win_ansi,
};
pub use print_batch::{Batch, PrintBatch, assemble_batch};

use crate::{ChannelError, Letter, OutboundMessage};

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
