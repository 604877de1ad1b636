//! The accounts a command works on: from the arguments, a file or stdin; one UserID per
//! line, or CSV with a header row.

use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context};

/// One input account. Nick and FaceUrl come only from a CSV file and are used only by
/// `import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputAccount {
    pub user_id: String,
    pub nick: Option<String>,
    pub face_url: Option<String>,
}

impl InputAccount {
    fn id(user_id: String) -> Self {
        InputAccount {
            user_id,
            nick: None,
            face_url: None,
        }
    }
}

/// The accounts named by `ids` or in `file` (`-` is stdin); exactly one of them.
pub fn read(ids: &[String], file: Option<&Path>) -> anyhow::Result<Vec<InputAccount>> {
    match (ids.is_empty(), file) {
        (false, Some(_)) => bail!("give UserIDs as arguments or with --file, not both"),
        (true, None) => {
            bail!("no UserIDs: give them as arguments, or with --file PATH (- for stdin)")
        }
        (false, None) => Ok(ids.iter().cloned().map(InputAccount::id).collect()),
        (true, Some(path)) => {
            let text = if path == Path::new("-") {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading UserIDs from stdin")?;
                text
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            parse(&text).with_context(|| format!("in {}", display_name(path)))
        }
    }
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// One UserID per line (blank lines skipped, surrounding whitespace removed), or, when the
/// first line is a CSV header naming a `UserID` column, CSV with optional `Nick` and
/// `FaceUrl` columns (quoted fields may hold commas, quotes and newlines).
pub fn parse(text: &str) -> anyhow::Result<Vec<InputAccount>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if is_csv_header(first) {
        parse_csv(text)
    } else {
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| InputAccount::id(l.to_owned()))
            .collect())
    }
}

fn is_csv_header(line: &str) -> bool {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .is_some_and(|r| r.iter().any(|f| f.trim().eq_ignore_ascii_case("UserID")))
}

fn parse_csv(text: &str) -> anyhow::Result<Vec<InputAccount>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    let (mut user_id, mut nick, mut face_url) = (None, None, None);
    for (i, name) in headers.iter().enumerate() {
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "userid" => &mut user_id,
            "nick" => &mut nick,
            "faceurl" => &mut face_url,
            _ => bail!("unknown CSV column {name:?}; the columns are UserID, Nick, FaceUrl"),
        };
        if slot.is_some() {
            bail!("the CSV header names {name:?} twice");
        }
        *slot = Some(i);
    }
    let Some(user_id) = user_id else {
        bail!("the CSV header has no UserID column");
    };
    let field = |record: &csv::StringRecord, column: Option<usize>| {
        column
            .and_then(|c| record.get(c))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut accounts = Vec::new();
    for record in reader.records() {
        let record = record.context("reading CSV")?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let id = record.get(user_id).map(str::trim).unwrap_or("");
        if id.is_empty() {
            bail!("line {line}: the UserID is empty");
        }
        accounts.push(InputAccount {
            user_id: id.to_owned(),
            nick: field(&record, nick),
            face_url: field(&record, face_url),
        });
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_user_id_per_line() {
        let got = parse("alice\r\n  bob \n\n carol\n").unwrap();
        let ids: Vec<_> = got.iter().map(|a| a.user_id.as_str()).collect();
        assert_eq!(ids, ["alice", "bob", "carol"]);
    }

    #[test]
    fn csv_with_quoted_commas_and_optional_columns() {
        let got = parse(
            "\u{feff}UserID,Nick,FaceUrl\n\
             a,\"Smith, Ann\",\"https://x/a.png?x=1,2\"\n\
             b,,\n\
             \"c \"\"q\"\"\",Bo,\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                InputAccount {
                    user_id: "a".into(),
                    nick: Some("Smith, Ann".into()),
                    face_url: Some("https://x/a.png?x=1,2".into()),
                },
                InputAccount::id("b".into()),
                InputAccount {
                    user_id: "c \"q\"".into(),
                    nick: Some("Bo".into()),
                    face_url: None,
                },
            ]
        );
        let only_ids = parse("FaceUrl,UserID\nu1,x\n").unwrap();
        assert_eq!(only_ids[0].user_id, "x");
        assert_eq!(only_ids[0].face_url.as_deref(), Some("u1"));
    }

    #[test]
    fn csv_mistakes_are_reported_with_where() {
        let e = parse("UserID,Nickname\na,b\n").unwrap_err().to_string();
        assert!(e.contains("Nickname"), "{e}");
        let e = parse("UserID,Nick\na,b\n,c\n").unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = format!("{:#}", parse("UserID,Nick\na,b,c\n").unwrap_err());
        assert!(e.contains("CSV"), "{e}");
    }
}
