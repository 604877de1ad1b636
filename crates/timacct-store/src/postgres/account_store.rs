//! [`AccountStore`] for [`PostgresStore`]: every call checks a connection out, runs its SQL
//! ([`super::reads`], [`super::writes`]) under the call timeout, and gives the connection back
//! only on success.

use async_trait::async_trait;

use super::reads::{account_in, check_in, count_in};
use super::sessions::{cutoff_in, cutoffs_in, kick_in, push_online_in, set_push_in};
use super::writes::delete_in;
use super::PostgresStore;
use crate::{
    Account, AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, PushOnline,
    StoreError, UserId, UserIdRef,
};

/// Each call: check a connection out, run, and give the connection back only on success.
macro_rules! call {
    ($store:expr, |$client:ident| $body:expr) => {
        $store
            .bounded(async {
                let mut conn = $store.checkout().await?;
                let $client = conn.client()?;
                let out = $body.await?;
                conn.keep();
                Ok(out)
            })
            .await
    };
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        // Folded with the other calls to the app waiting in this instance (see `group`).
        self.shared
            .groups
            .import(&self.pool, &self.options, app, items, policy)
            .await
    }

    /// From this instance's in-memory index, once a round of the change feed that started
    /// after this call has been applied: another instance may have written a moment ago (see
    /// `feed` for why that is enough). The database answers while the index is loading.
    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError> {
        if let Some(answer) = self
            .shared
            .feeds
            .check(app, ids, &self.pool, &self.options)
            .await
        {
            return answer;
        }
        call!(self, |client| check_in(client, app, ids))
    }

    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError> {
        call!(self, |client| delete_in(client, app, &ids, now))
    }

    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError> {
        call!(self, |client| account_in(client, app, id))
    }

    async fn account_count(&self, app: u32) -> Result<u64, StoreError> {
        call!(self, |client| count_in(client, app))
    }

    async fn kick(&self, app: u32, id: UserId, at: i64) -> Result<bool, StoreError> {
        call!(self, |client| kick_in(client, app, &id, at))
    }

    async fn cutoff(&self, app: u32, id: UserId) -> Result<Option<i64>, StoreError> {
        call!(self, |client| cutoff_in(client, app, &id))
    }

    async fn cutoffs(&self, app: u32) -> Result<Vec<(UserId, i64)>, StoreError> {
        call!(self, |client| cutoffs_in(client, app))
    }

    async fn set_push_online(
        &self,
        app: u32,
        id: UserId,
        platform: String,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        call!(self, |client| set_push_in(
            client, app, &id, &platform, until
        ))
    }

    async fn push_online(&self, app: u32) -> Result<Vec<PushOnline>, StoreError> {
        call!(self, |client| push_online_in(client, app))
    }
}
