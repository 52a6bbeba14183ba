//! The practice's own printer: one folder per practice and day, assembled into one PDF and a CSV
//! list by `rappel print-batch`.

use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::pdf::{letter_pdf, merge_pdfs, page_count};
use super::{PostalTariff, letter_of};
use crate::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};

/// For practices that post their letters themselves: each letter is written to its practice's
/// folder of the letter's date (`<dir>/<practice>/YYYY-MM-DD/`), and [`assemble_batch`] makes one
/// PDF to print and a CSV list of it. The date is the letter's own ([`Letter::date`](crate::Letter::date), the
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
