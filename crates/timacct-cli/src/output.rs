//! One row per account, as a table (for people), JSON lines or CSV (for programs).

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;
use timacct_client::OnlineDetail;

/// How rows are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line.
    Json,
    /// CSV with a header row.
    Csv,
}

/// One account's result.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Position in the input (counting the UserIDs skipped by --resume-from).
    #[serde(rename = "Index")]
    pub index: usize,
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// e.g. `Imported`, `NotImported`, `Deleted`, `Online`, or `Failed`.
    #[serde(rename = "Result")]
    pub result: String,
    /// 0 on success; the service's code on failure, `null` when it gives none.
    #[serde(rename = "ResultCode")]
    pub code: Option<u32>,
    #[serde(rename = "ResultInfo")]
    pub info: String,
    /// The `random` of the call, on failures, to trace it.
    #[serde(rename = "Random", skip_serializing_if = "Option::is_none")]
    pub random: Option<u32>,
    /// Per-platform online states (`online --detail`).
    #[serde(rename = "Detail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<OnlineDetail>>,
}

impl Row {
    /// Whether this row counts as a failed item for the exit code.
    pub fn failed(&self) -> bool {
        self.code != Some(0)
    }
}

/// Writes rows to stdout in one format.
pub struct RowWriter {
    format: Format,
    out: Box<dyn Write>,
    csv: Option<csv::Writer<Box<dyn Write>>>,
    header_written: bool,
    index_width: usize,
    id_width: usize,
}

const RESULT_WIDTH: usize = 11;
const CODE_WIDTH: usize = 5;

impl RowWriter {
    /// A writer for rows whose indexes go up to `max_index` and whose UserIDs are up to
    /// `id_width` characters (for the table's columns).
    pub fn new(format: Format, out: Box<dyn Write>, max_index: usize, id_width: usize) -> Self {
        let (out, csv) = match format {
            Format::Csv => (
                Box::new(std::io::sink()) as Box<dyn Write>,
                Some(csv::Writer::from_writer(out)),
            ),
            _ => (out, None),
        };
        RowWriter {
            format,
            out,
            csv,
            header_written: false,
            index_width: max_index.to_string().len().max(1),
            id_width: id_width.clamp(6, 32),
        }
    }

    pub fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, row)?;
                self.out.write_all(b"\n")?;
            }
            Format::Csv => {
                if let Some(csv) = &mut self.csv {
                    if !self.header_written {
                        csv.write_record([
                            "Index",
                            "UserID",
                            "Result",
                            "ResultCode",
                            "ResultInfo",
                            "Random",
                        ])?;
                    }
                    csv.write_record([
                        row.index.to_string(),
                        row.user_id.clone(),
                        row.result.clone(),
                        row.code.map(|c| c.to_string()).unwrap_or_default(),
                        info_with_detail(row),
                        row.random.map(|r| r.to_string()).unwrap_or_default(),
                    ])?;
                }
            }
            Format::Table => {
                if !self.header_written {
                    writeln!(
                        self.out,
                        "{:>iw$}  {:<uw$}  {:<RESULT_WIDTH$}  {:>CODE_WIDTH$}  Info",
                        "#",
                        "UserID",
                        "Result",
                        "Code",
                        iw = self.index_width,
                        uw = self.id_width,
                    )?;
                }
                let mut info = info_with_detail(row);
                if let Some(random) = row.random {
                    info.push_str(&format!(" (random {random})"));
                }
                let line = format!(
                    "{:>iw$}  {:<uw$}  {:<RESULT_WIDTH$}  {:>CODE_WIDTH$}  {}",
                    row.index,
                    printable(&row.user_id),
                    printable(&row.result),
                    row.code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    printable(info.trim()),
                    iw = self.index_width,
                    uw = self.id_width,
                );
                writeln!(self.out, "{}", line.trim_end())?;
            }
        }
        self.header_written = true;
        Ok(())
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(csv) = &mut self.csv {
            csv.flush()?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Text for a terminal: control characters (which a UserID read from a file, or a
/// service's answer, may hold) are shown escaped, never sent to the terminal raw.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// The info text, with `online --detail`'s platforms appended for formats without a
/// nested field.
fn info_with_detail(row: &Row) -> String {
    match &row.detail {
        Some(detail) if !detail.is_empty() => {
            let platforms: Vec<String> = detail
                .iter()
                .map(|d| format!("{}:{}", d.platform, d.status))
                .collect();
            if row.info.is_empty() {
                platforms.join(", ")
            } else {
                format!("{} {}", row.info, platforms.join(", "))
            }
        }
        _ => row.info.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_table_never_sends_control_characters_to_the_terminal() {
        let out = Buffer::default();
        let mut w = RowWriter::new(Format::Table, Box::new(out.clone()), 0, 8);
        w.write(&Row {
            index: 0,
            user_id: "evil\u{1b}[2J".into(),
            result: "Failed".into(),
            code: Some(70402),
            info: "bad\nid".into(),
            random: Some(7),
            detail: None,
        })
        .unwrap();
        w.flush().unwrap();
        let text = String::from_utf8(out.0.borrow().clone()).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2J"), "{text:?}");
        assert!(text.contains("bad\\nid (random 7)"), "{text:?}");
        assert_eq!(text.lines().count(), 2, "{text:?}");
    }
}
