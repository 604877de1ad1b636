//! The client a job calls through, made from the connection arguments: where (the endpoint
//! and its backup), as whom (the app, its key, the admin), and how (the pace of the job's API,
//! retries, timeouts, UserSig lifetime).

use std::time::Duration;

use anyhow::bail;
use timacct_client::{Api, Client, Endpoint, Pacing, RetryPolicy, SigLifetime};

use super::ConnectionArgs;

/// `--endpoint`, with `--backup-endpoint` in place of a region's documented backup host.
pub(super) fn endpoint(connection: &ConnectionArgs) -> anyhow::Result<Endpoint> {
    let mut endpoint = Endpoint::parse(&connection.endpoint)?;
    if let Some(backup) = &connection.backup_endpoint {
        endpoint = endpoint.with_backup(backup)?;
    }
    Ok(endpoint)
}

/// The client for a job calling `api`: `--rate` paces that API, the others keep Tencent's
/// documented limits.
pub(super) fn client(
    connection: &ConnectionArgs,
    endpoint: Endpoint,
    api: Api,
) -> anyhow::Result<Client> {
    let mut pacing = Pacing::documented();
    if let Some(rate) = connection.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of calls per second");
        }
        pacing = pacing.with(api, rate);
    }
    Ok(
        Client::builder(endpoint, connection.sdkappid, connection.key.clone())
            .admin(connection.admin.clone())
            .sig_lifetime(SigLifetime::new(Duration::from_secs(connection.sig_expire)))
            .pacing(pacing)
            .retry(RetryPolicy {
                max_attempts: connection.attempts,
                ..RetryPolicy::default()
            })
            .timeout(Duration::from_secs(connection.timeout.max(1)))
            .build()?,
    )
}
