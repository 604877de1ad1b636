//! Where a job's results go: one row per account, in input order, written as it comes (held
//! back a batch at a time while the progress bar shares the terminal, so the bar is not
//! redrawn under every row), and the counts that the summary and the exit code need.

use futures_util::StreamExt;
use indicatif::ProgressBar;
use timacct_client::{AccountStatus, BulkStream, ItemResult, OnlineDetail, Stopped};

use crate::output::{Row, RowWriter};

/// How the rows written so far came out.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    /// Rows written: accounts with a result.
    pub(super) done: usize,
    /// Of `done`, the failed ones.
    pub(super) failed: usize,
    /// Of `done`, those `delete --dry-run` would delete.
    pub(super) would_delete: usize,
}

/// Where results go: the row writer, the progress bar, the counts.
pub(super) struct Sink<'a> {
    writer: &'a mut RowWriter,
    bar: Option<&'a ProgressBar>,
    rows_on_terminal: bool,
    /// Rows held back while the bar is drawn on the same terminal, written a batch at a
    /// time so the bar is not redrawn under every row.
    pending: Vec<Row>,
    flush_every: usize,
    /// Input UserIDs skipped by `--resume-from`: added to each result's index.
    skip: usize,
    counts: Counts,
}

impl<'a> Sink<'a> {
    /// Rows to `writer` (under `bar`, if any, held back `flush_every` at a time when stdout
    /// is the bar's terminal too), numbered from `skip`.
    pub(super) fn new(
        writer: &'a mut RowWriter,
        bar: Option<&'a ProgressBar>,
        rows_on_terminal: bool,
        flush_every: usize,
        skip: usize,
    ) -> Self {
        Sink {
            writer,
            bar,
            rows_on_terminal,
            pending: Vec::new(),
            flush_every,
            skip,
            counts: Counts::default(),
        }
    }

    /// How the rows written so far came out.
    pub(super) fn counts(&self) -> Counts {
        self.counts
    }

    /// Write a row per item until the job ends; the reason it stopped early, if it did.
    pub(super) async fn drain<T>(
        &mut self,
        mut stream: BulkStream<T>,
        success: impl Fn(&T) -> (String, Option<Vec<OnlineDetail>>),
    ) -> anyhow::Result<Option<Stopped>> {
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(item) => item,
                Err(stopped) => {
                    self.flush_pending()?;
                    return Ok(Some(stopped));
                }
            };
            let row = self.row(item, &success);
            self.emit(&row)?;
        }
        self.flush_pending()?;
        Ok(None)
    }

    /// `delete --dry-run`: check, and call the imported accounts what would be deleted.
    pub(super) async fn drain_dry_run(
        &mut self,
        mut stream: BulkStream<AccountStatus>,
    ) -> anyhow::Result<Option<Stopped>> {
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(item) => item,
                Err(stopped) => {
                    self.flush_pending()?;
                    return Ok(Some(stopped));
                }
            };
            let mut row = self.row(item, |s| (status_name(*s).into(), None));
            if row.result == "Imported" {
                row.result = "WouldDelete".into();
                self.counts.would_delete += 1;
            } else if row.result == "NotImported" {
                row.info = "not imported: deleting it would fail with 70107".into();
            }
            self.emit(&row)?;
        }
        self.flush_pending()?;
        Ok(None)
    }

    fn row<T>(
        &self,
        item: ItemResult<T>,
        success: impl Fn(&T) -> (String, Option<Vec<OnlineDetail>>),
    ) -> Row {
        let index = self.skip + item.index;
        match item.outcome {
            Ok(value) => {
                let (result, detail) = success(&value);
                Row {
                    index,
                    user_id: item.user_id,
                    result,
                    code: Some(0),
                    info: String::new(),
                    random: None,
                    detail,
                }
            }
            Err(failure) => Row {
                index,
                user_id: item.user_id,
                result: "Failed".into(),
                code: failure.code,
                info: failure.info,
                random: failure.random,
                detail: None,
            },
        }
    }

    /// Write the rows held back for the bar.
    fn flush_pending(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let writer = &mut *self.writer;
        let mut write_all = || rows.iter().try_for_each(|row| writer.write(row));
        match self.bar {
            Some(bar) => bar.suspend(write_all),
            None => write_all(),
        }
    }

    fn emit(&mut self, row: &Row) -> anyhow::Result<()> {
        self.counts.done += 1;
        if row.failed() {
            self.counts.failed += 1;
        }
        match self.bar {
            // Rows and the bar share the screen only when stdout is a terminal too.
            Some(bar) if self.rows_on_terminal => {
                self.pending.push(row.clone());
                bar.inc(1);
                if self.pending.len() >= self.flush_every {
                    self.flush_pending()?;
                }
            }
            Some(bar) => {
                self.writer.write(row)?;
                bar.inc(1);
            }
            None => self.writer.write(row)?,
        }
        Ok(())
    }
}

/// An account status as a row's result.
pub(super) fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Imported => "Imported",
        AccountStatus::NotImported => "NotImported",
    }
}
