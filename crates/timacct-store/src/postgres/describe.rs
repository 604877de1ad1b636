//! Text about the database that is safe to show: errors as one line, and the database as a
//! URL without its password.

use tokio_postgres::config::Host;

use crate::StoreError;

/// A database error as one line: the driver's own `Display` omits the cause, which is where
/// the useful part (the server's message, the I/O error) is.
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A driver error as the store reports it: 70500, with the whole cause.
fn pg_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(&e))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        pg_error(e)
    }
}

/// `postgres://user@host:port/dbname` from a parsed config; the password is never included.
pub(super) fn describe_config(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            // libpq's rule: one port for all hosts, or one per host; 5432 when none is given.
            let port = ports.get(i).or_else(|| ports.first()).copied();
            format!("{host}:{}", port.unwrap_or(5432))
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn descriptions_never_carry_the_password() {
        let url: tokio_postgres::Config =
            "postgres://app:s3cret@db.internal:5433/timacct?sslmode=disable"
                .parse()
                .unwrap();
        assert_eq!(
            describe_config(&url),
            "postgres://app@db.internal:5433/timacct"
        );
        let kv: tokio_postgres::Config = "host=10.0.0.9 user=app password='s3cret' dbname=t"
            .parse()
            .unwrap();
        assert_eq!(describe_config(&kv), "postgres://app@10.0.0.9:5432/t");
    }
}
