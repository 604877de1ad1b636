//! A store decorator that times every call into the metrics, so `/metrics` shows the store's
//! latency and errors whatever backend is behind it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use timacct_store::{
    Account, AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, PushOnline,
    StoreError, UserId, UserIdRef,
};

use super::metrics::{Metrics, StoreOp};

/// A store that times every call into the metrics, then hands it to the real one.
pub(crate) struct TimedStore {
    pub inner: Arc<dyn AccountStore>,
    pub metrics: Arc<Metrics>,
}

impl TimedStore {
    fn record<T>(&self, op: StoreOp, started: Instant, result: &Result<T, StoreError>) {
        self.metrics.store(op, started.elapsed(), result.is_ok());
    }
}

#[async_trait]
impl AccountStore for TimedStore {
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let started = Instant::now();
        let result = self.inner.import(app, items, policy).await;
        self.record(StoreOp::Import, started, &result);
        result
    }

    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError> {
        let started = Instant::now();
        let result = self.inner.check(app, ids).await;
        self.record(StoreOp::Check, started, &result);
        result
    }

    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError> {
        let started = Instant::now();
        let result = self.inner.delete(app, ids, now).await;
        self.record(StoreOp::Delete, started, &result);
        result
    }

    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError> {
        let started = Instant::now();
        let result = self.inner.account(app, id).await;
        self.record(StoreOp::Account, started, &result);
        result
    }

    async fn account_count(&self, app: u32) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.inner.account_count(app).await;
        self.record(StoreOp::AccountCount, started, &result);
        result
    }

    async fn kick(&self, app: u32, id: UserId, at: i64) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.inner.kick(app, id, at).await;
        self.record(StoreOp::Kick, started, &result);
        result
    }

    async fn cutoff(&self, app: u32, id: UserId) -> Result<Option<i64>, StoreError> {
        let started = Instant::now();
        let result = self.inner.cutoff(app, id).await;
        self.record(StoreOp::Cutoff, started, &result);
        result
    }

    async fn cutoffs(&self, app: u32) -> Result<Vec<(UserId, i64)>, StoreError> {
        let started = Instant::now();
        let result = self.inner.cutoffs(app).await;
        self.record(StoreOp::Cutoffs, started, &result);
        result
    }

    async fn set_push_online(
        &self,
        app: u32,
        id: UserId,
        platform: String,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.set_push_online(app, id, platform, until).await;
        self.record(StoreOp::SetPushOnline, started, &result);
        result
    }

    async fn push_online(&self, app: u32) -> Result<Vec<PushOnline>, StoreError> {
        let started = Instant::now();
        let result = self.inner.push_online(app).await;
        self.record(StoreOp::PushOnline, started, &result);
        result
    }
}
