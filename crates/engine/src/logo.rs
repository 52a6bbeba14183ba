//! The practice's logo (SPEC.md `doctolib`: "a practice logo resized to fit 150×75 px in the
//! email header"): checked, resized and re-encoded once, when the practice uploads it, so that
//! every email and letter after that only copies a small PNG.
//!
//! The image is recognised by its first bytes, never by a file name or a Content-Type: PNG and
//! JPEG only. It is refused when larger than 2 MB or 16 megapixels (a decoded 16 MP image is
//! 64 MB of memory, and no logo needs more), decoded with the `image` crate's memory limits, shrunk
//! to fit within 150 × 75 px keeping its proportions (never enlarged), and stored as PNG, with its
//! transparency.
//!
//! What it deliberately does not do: decide where the logo is shown. Emails about appointments
//! booked by the practice's staff and the letterhead of letters ask for it (see `dispatch` and
//! `documents`).

use std::io::Cursor;
use std::sync::Arc;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use jiff::Timestamp;
use rappel_channels::LogoImage;
use rappel_domain::facts::{Appointment, Source};
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_store::{LogoRow, Tx};
use serde::Serialize;

use crate::practice::load_practice;
use crate::{Engine, EngineError, Result};

/// The largest logo, in pixels, once resized (SPEC.md).
pub const LOGO_MAX_WIDTH: u32 = 150;
pub const LOGO_MAX_HEIGHT: u32 = 75;
/// The largest upload accepted.
pub const LOGO_MAX_BYTES: usize = 2 * 1024 * 1024;
/// The largest image accepted, in pixels (width × height).
pub const LOGO_MAX_PIXELS: u64 = 16_000_000;

/// What [`Engine::set_logo`] stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogoInfo {
    pub width: u32,
    pub height: u32,
    pub updated_at: Timestamp,
}

/// A practice's logo as stored: a PNG that fits within 150 × 75 px.
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logo")
            .field("png_len", &self.png.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> EngineError {
    EngineError::invalid("logo", reason)
}

/// The format of `bytes` by its signature: PNG or JPEG, nothing else.
fn sniff(bytes: &[u8]) -> Result<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageFormat::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(ImageFormat::Jpeg)
    } else if bytes.is_empty() {
        Err(invalid("the image is empty"))
    } else {
        Err(invalid("expected a PNG or JPEG image"))
    }
}

/// The size that fits within 150 × 75 px with the same proportions; an image that already fits
/// keeps its size.
pub fn fitted_size(width: u32, height: u32) -> (u32, u32) {
    if width <= LOGO_MAX_WIDTH && height <= LOGO_MAX_HEIGHT {
        return (width, height);
    }
    let scale = f64::min(
        f64::from(LOGO_MAX_WIDTH) / f64::from(width),
        f64::from(LOGO_MAX_HEIGHT) / f64::from(height),
    );
    let side = |n: u32, max: u32| ((f64::from(n) * scale).round() as u32).clamp(1, max);
    (side(width, LOGO_MAX_WIDTH), side(height, LOGO_MAX_HEIGHT))
}

/// Checks, decodes, shrinks and re-encodes an uploaded logo: the PNG to store and its size.
pub fn prepare_logo(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32)> {
    if bytes.len() > LOGO_MAX_BYTES {
        return Err(invalid(format!(
            "the image is {} bytes; at most {LOGO_MAX_BYTES} (2 MB)",
            bytes.len()
        )));
    }
    let format = sniff(bytes)?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| invalid(format!("the image does not decode: {e}")))?;
    if u64::from(width) * u64::from(height) > LOGO_MAX_PIXELS {
        return Err(invalid(format!(
            "the image is {width} × {height} pixels; at most 16 megapixels"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(LOGO_MAX_PIXELS * 4 * 2);
    let mut decoder = reader();
    decoder.limits(limits);
    let image = decoder
        .decode()
        .map_err(|e| invalid(format!("the image does not decode: {e}")))?;
    let (new_width, new_height) = fitted_size(width, height);
    let image = if (new_width, new_height) == (width, height) {
        image
    } else {
        image.resize_exact(new_width, new_height, image::imageops::FilterType::Lanczos3)
    };
    // 8 bits per channel, with alpha only when the source can have it (a JPEG cannot).
    let image = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.to_rgb8())
    };
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| invalid(format!("cannot encode the image as PNG: {e}")))?;
    Ok((png.into_inner(), new_width, new_height))
}

/// Whether an email shows the practice's logo: confirmations and reminders to the patient of
/// appointments booked by the practice's staff. Online bookings carry the booking platform's
/// header (SPEC.md `doctolib`, the seed's « Personnaliser l'entête des emails »).
pub(crate) fn email_shows_logo(
    channel: Channel,
    kind: Kind,
    recipient: &Recipient,
    appointments: &[Appointment],
) -> bool {
    channel == Channel::Email
        && matches!(kind, Kind::Confirmation | Kind::Reminder)
        && matches!(recipient, Recipient::Patient(_))
        && !appointments.is_empty()
        && appointments.iter().all(|a| a.source == Source::Staff)
}

/// The stored logo, ready for a message or a letter.
pub(crate) async fn logo_image(tx: &mut Tx, practice_id: &str) -> Result<Option<Arc<LogoImage>>> {
    Ok(tx.logo(practice_id).await?.map(|row| {
        Arc::new(LogoImage {
            png: row.png,
            width: row.width,
            height: row.height,
        })
    }))
}

impl Engine {
    /// `PUT /v1/settings/logo`: checks and resizes the image (see the module's documentation)
    /// and stores it, replacing the practice's previous logo. A refused image changes nothing.
    pub async fn set_logo(&self, practice_id: &str, bytes: &[u8]) -> Result<LogoInfo> {
        let owned = bytes.to_vec();
        // Decoding and resizing are CPU work of tens of milliseconds: off the async threads.
        let (png, width, height) = tokio::task::spawn_blocking(move || prepare_logo(&owned))
            .await
            .map_err(|e| invalid(format!("the image could not be processed: {e}")))??;
        let updated_at = self.now();
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        tx.put_logo(&LogoRow {
            practice_id: practice_id.to_string(),
            png,
            width,
            height,
            updated_at,
        })
        .await?;
        tx.commit().await?;
        tracing::info!(
            practice = practice_id,
            width,
            height,
            "practice logo updated"
        );
        Ok(LogoInfo {
            width,
            height,
            updated_at,
        })
    }

    /// `GET /v1/settings/logo`.
    pub async fn logo(&self, practice_id: &str) -> Result<Option<Logo>> {
        let mut tx = self.store().begin_read().await?;
        load_practice(&mut tx, practice_id).await?;
        let row = tx.logo(practice_id).await?;
        tx.commit().await?;
        Ok(row.map(|row| Logo {
            png: row.png,
            width: row.width,
            height: row.height,
            updated_at: row.updated_at,
        }))
    }

    /// `DELETE /v1/settings/logo`: returns whether there was one. Messages already sent keep the
    /// logo they carried; the next ones go without.
    pub async fn delete_logo(&self, practice_id: &str) -> Result<bool> {
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let deleted = tx.delete_logo(practice_id).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logo_is_shrunk_to_fit_keeping_its_proportions_and_never_enlarged() {
        assert_eq!(fitted_size(300, 150), (150, 75));
        assert_eq!(fitted_size(600, 100), (150, 25));
        assert_eq!(fitted_size(100, 400), (19, 75));
        assert_eq!(fitted_size(10_000, 1), (150, 1), "never a zero side");
        assert_eq!(fitted_size(40, 20), (40, 20));
        assert_eq!(fitted_size(150, 75), (150, 75));
    }
}
