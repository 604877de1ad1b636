//! The real server, in process, on a loopback port, spoken to over real HTTP.
//!
//! [`TestServer::builder`] takes what `timacct serve` would be configured with — the apps,
//! the store (a fresh SQLite file in a temporary directory unless the test brings one),
//! [`ServerLimits`], TLS, Redis — and starts `timacct_server`'s own [`ServerBuilder`] on
//! `127.0.0.1:0`. The handle knows the base URL and the store, signs calls for the apps it
//! hosts, and stops the server when dropped.

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use timacct_server::{AppConfig, RedisRateLimiter, ServerBuilder, ServerLimits, TlsServerConfig};
use timacct_store::{Account, AccountStore, PostgresStore, SqliteStore, UserId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apps::{app_config, APP, CHECK, IMPORT, KEY};
use crate::envelope::{check_envelope, parse_answer, Reply};
use crate::usersig::{query, sig};

/// How long a handle's HTTP client waits for an answer by default: far above anything the
/// server takes, so that only a hang (never a slow machine) fails a test on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A store a [`TestServer`] can serve from.
pub trait TestStore: AccountStore + Clone {
    /// This kind of store over its files in `dir`, for a spawner that was given no store and
    /// for [`TestServer::restart`]; `None` for a kind that lives elsewhere (PostgreSQL), which
    /// a test opens itself and passes to [`Spawn::store`].
    fn open_in(dir: &Path) -> Option<Self> {
        let _ = dir;
        None
    }

    /// Let go of the store once the server has stopped (its writer, its pool), as
    /// `timacct serve` does on the way out.
    fn close(&self);
}

impl TestStore for SqliteStore {
    fn open_in(dir: &Path) -> Option<Self> {
        Some(SqliteStore::open(dir.join("timacct.db")).expect("open the SQLite store"))
    }

    fn close(&self) {
        SqliteStore::close(self);
    }
}

impl TestStore for PostgresStore {
    fn close(&self) {
        PostgresStore::close(self);
    }
}

/// The default app only, over a new SQLite file.
pub async fn spawn_app() -> TestServer {
    TestServer::builder().start().await
}

/// A server hosting these apps, over a new SQLite file.
pub async fn spawn_with(apps: Vec<AppConfig>) -> TestServer {
    TestServer::builder().apps(apps).start().await
}

/// The default app over a new SQLite file, with these server-wide limits (connection and
/// request caps, timeouts, UserSig age, busy polling).
pub async fn spawn_limited(limits: ServerLimits) -> TestServer {
    TestServer::builder().limits(limits).start().await
}

/// How a [`TestServer`] is set up; from [`TestServer::builder`].
pub struct Spawn<S = SqliteStore> {
    apps: Vec<AppConfig>,
    store: Option<S>,
    setup: Setup,
}

/// What a server is started with besides its store, kept for [`TestServer::restart`].
#[derive(Clone)]
struct Setup {
    limits: ServerLimits,
    tls: Option<(Arc<TlsServerConfig>, reqwest::Certificate)>,
    redis: Option<RedisRateLimiter>,
    timeout: Duration,
}

impl Setup {
    /// How a client reaches the server now listening on `addr`.
    fn reach(&self, addr: SocketAddr) -> Reach {
        Reach {
            addr,
            timeout: self.timeout,
            root: self.tls.as_ref().map(|(_, root)| root.clone()),
        }
    }
}

/// What an HTTP client needs to reach one running server.
#[derive(Clone)]
struct Reach {
    addr: SocketAddr,
    timeout: Duration,
    /// The certificate to trust, with TLS.
    root: Option<reqwest::Certificate>,
}

impl Reach {
    /// A new client (a new connection pool): `localhost` resolves to the server, and with
    /// TLS the test's certificate is trusted.
    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .resolve("localhost", self.addr);
        if let Some(root) = &self.root {
            builder = builder.use_rustls_tls().add_root_certificate(root.clone());
        }
        builder.build().expect("reqwest client")
    }
}

impl<S: TestStore> Spawn<S> {
    /// The apps to host (by default the one app [`APP`] with [`KEY`], rate limits off). The
    /// first is the one [`Caller::call`] calls.
    pub fn apps(mut self, apps: Vec<AppConfig>) -> Self {
        assert!(!apps.is_empty(), "a server hosts at least one app");
        self.apps = apps;
        self
    }

    /// Serve from this store instead of a new SQLite file.
    pub fn store<T: TestStore>(self, store: T) -> Spawn<T> {
        Spawn {
            apps: self.apps,
            store: Some(store),
            setup: self.setup,
        }
    }

    /// The server-wide bounds (connections, queue, timeouts, UserSig age, busy polling).
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.setup.limits = limits;
        self
    }

    /// Serve HTTPS with `config`; the handle's client trusts `root_pem` (the certificate, or
    /// its issuer) and reaches the server as `https://localhost:PORT`.
    pub fn tls(mut self, config: Arc<TlsServerConfig>, root_pem: &str) -> Self {
        let root = reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("a PEM certificate");
        self.setup.tls = Some((config, root));
        self
    }

    /// Keep the rate-limit buckets in this Redis (see [`crate::TestRedis::limiter`]).
    pub fn redis(mut self, redis: RedisRateLimiter) -> Self {
        self.setup.redis = Some(redis);
        self
    }

    /// How long the handle's HTTP client waits for an answer before the test fails
    /// ([`DEFAULT_TIMEOUT`] unless set): a test that detects hangs sets its own bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.setup.timeout = timeout;
        self
    }

    /// Start the server and wait until it listens.
    pub async fn start(self) -> TestServer<S> {
        let (store, dir) = match self.store {
            Some(store) => (store, None),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let store = S::open_in(dir.path())
                    .expect("this kind of store must be opened by the test and given to store()");
                (store, Some(dir))
            }
        };
        let apps: Arc<[AppConfig]> = self.apps.into();
        let running = serve(&apps, &self.setup, store.clone()).await;
        TestServer {
            caller: Caller::new(running.base.clone(), apps, self.setup.reach(running.addr)),
            addr: running.addr,
            store,
            setup: self.setup,
            shutdown: Some(running.shutdown),
            task: Some(running.task),
            dir,
        }
    }
}

/// A running server; stopped when dropped (without waiting: [`TestServer::stop`] waits).
///
/// Calls go through the [`Caller`] it dereferences to.
pub struct TestServer<S = SqliteStore> {
    caller: Caller,
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// The store it serves from (a clone sharing its state), for a test to read or write
    /// behind the API's back.
    pub store: S,
    setup: Setup,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// The SQLite file's directory when the spawner made it; kept last so that it outlives
    /// the store.
    dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server hosting the default app over a new SQLite file, HTTP, default limits, no
    /// Redis, until told otherwise.
    pub fn builder() -> Spawn<SqliteStore> {
        Spawn {
            apps: vec![app_config(APP, KEY)],
            store: None,
            setup: Setup {
                limits: ServerLimits::default(),
                tls: None,
                redis: None,
                timeout: DEFAULT_TIMEOUT,
            },
        }
    }
}

impl<S> Deref for TestServer<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

/// A server just started.
struct Running {
    addr: SocketAddr,
    base: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn serve<S: TestStore>(apps: &[AppConfig], setup: &Setup, store: S) -> Running {
    let store: Arc<dyn AccountStore> = Arc::new(store);
    let mut builder = ServerBuilder::new(apps.to_vec(), store).limits(setup.limits.clone());
    if let Some(redis) = &setup.redis {
        builder = builder.redis(redis.clone());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local addr");
    let base = match &setup.tls {
        Some((config, _)) => {
            builder = builder.tls(config.clone());
            // The name a test certificate is made for; the client resolves it to `addr`.
            format!("https://localhost:{}", addr.port())
        }
        None => format!("http://{addr}"),
    };
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(builder.build().serve(listener, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        base,
        shutdown,
        task,
    }
}

impl<S: TestStore> TestServer<S> {
    /// A caller of its own (with a fresh HTTP client, so a fresh connection pool), for a task
    /// that calls the server concurrently with others.
    pub fn caller(&self) -> Caller {
        self.caller.fresh()
    }

    /// Whether the server is still serving (it has not stopped by itself).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// The stored account (read from the store directly: profiles have no HTTP read API).
    pub async fn account(&self, sdkappid: u32, id: &str) -> Option<Account> {
        self.store
            .account(sdkappid, UserId::parse(id).expect("valid UserID"))
            .await
            .expect("store read")
    }

    /// How many accounts the app holds, per the store.
    pub async fn account_count(&self, sdkappid: u32) -> u64 {
        self.store
            .account_count(sdkappid)
            .await
            .expect("store read")
    }

    /// Send raw bytes over a fresh TCP connection (for requests an HTTP client refuses to
    /// build, e.g. a URL over 64 KiB), read until the server closes it, and check the
    /// envelope of the answer.
    pub async fn raw_tcp(&self, request: &[u8]) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .expect("answer in time")
            .expect("read answer");
        parse_answer(&answer)
    }

    /// Stop the server, close the store, and start a new server (on a new port) over the
    /// same files, as an operator restarting `timacct serve` would.
    pub async fn restart(&mut self) {
        self.stop().await;
        let dir = self
            .dir
            .as_ref()
            .expect("restart needs the store the spawner opened itself");
        self.store = S::open_in(dir.path()).expect("reopen the store");
        let running = serve(&self.caller.apps, &self.setup, self.store.clone()).await;
        self.caller = Caller::new(
            running.base.clone(),
            self.caller.apps.clone(),
            self.setup.reach(running.addr),
        );
        self.addr = running.addr;
        self.shutdown = Some(running.shutdown);
        self.task = Some(running.task);
    }

    /// Graceful shutdown (requests in flight finish), then close the store. Fails the test
    /// if the server does not stop in time or stops with an error.
    pub async fn stop(&mut self) {
        // Drop pooled keep-alive connections so nothing holds the server open.
        self.caller = self.caller.fresh();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("serve returns Ok");
        }
        self.store.close();
    }

    /// [`Self::stop`], for a server the test is done with.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }
}

impl<S> Drop for TestServer<S> {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Signed calls to a running server's apps. Cheap to clone (clones share the HTTP client);
/// [`Caller::fresh`] makes one with a client of its own.
#[derive(Clone)]
pub struct Caller {
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` with TLS).
    pub base: String,
    /// The HTTP client every call goes through.
    pub client: reqwest::Client,
    apps: Arc<[AppConfig]>,
    reach: Reach,
}

impl Caller {
    fn new(base: String, apps: Arc<[AppConfig]>, reach: Reach) -> Caller {
        Caller {
            base,
            client: reach.client(),
            apps,
            reach,
        }
    }

    /// The same caller with an HTTP client of its own: new connections, as a separate
    /// client process would open.
    pub fn fresh(&self) -> Caller {
        Caller::new(self.base.clone(), self.apps.clone(), self.reach.clone())
    }

    /// The config of a hosted app.
    pub fn config(&self, sdkappid: u32) -> &AppConfig {
        self.apps
            .iter()
            .find(|c| c.sdkappid == sdkappid)
            .unwrap_or_else(|| panic!("no app {sdkappid} in this test"))
    }

    /// The first app's SDKAppID.
    pub fn app(&self) -> u32 {
        self.apps[0].sdkappid
    }

    /// A fresh admin UserSig for a hosted app.
    pub fn admin_sig(&self, sdkappid: u32) -> String {
        let config = self.config(sdkappid);
        sig(sdkappid, config.key.expose(), &config.admins[0])
    }

    /// The full query string of an admin call to a hosted app.
    pub fn admin_query(&self, sdkappid: u32) -> String {
        let config = self.config(sdkappid);
        query(sdkappid, &config.admins[0], &self.admin_sig(sdkappid))
    }

    /// `base + path + ? + query`.
    pub fn url(&self, path: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        }
    }

    /// Send a request as built, and check the envelope.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            // The URL holds a UserSig: keep it out of the failure message.
            .map_err(reqwest::Error::without_url)
            .expect("HTTP exchange");
        let status: StatusCode = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body");
        let (text, json) = check_envelope(status, &headers, &body);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Any method, any URL, any body bytes (no Content-Type header is set).
    pub async fn raw(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> Reply {
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.body(body);
        }
        self.send(request).await
    }

    /// POST raw body bytes to `path` of a hosted app, signed by its admin.
    pub async fn post_bytes(&self, sdkappid: u32, path: &str, body: Vec<u8>) -> Reply {
        let url = self.url(path, &self.admin_query(sdkappid));
        self.raw(Method::POST, &url, Some(body)).await
    }

    /// POST a JSON body to `path` of a hosted app with a fresh admin UserSig.
    pub async fn call_app(&self, sdkappid: u32, path: &str, body: &Value) -> Reply {
        self.post_bytes(sdkappid, path, body.to_string().into_bytes())
            .await
    }

    /// POST a JSON body to `path` of the first app with a fresh admin UserSig.
    pub async fn call(&self, path: &str, body: &Value) -> Reply {
        self.call_app(self.app(), path, body).await
    }

    /// POST with this query string to `path`.
    pub async fn call_with_query(&self, path: &str, query: &str, body: &Value) -> Reply {
        let url = self.url(path, query);
        self.raw(Method::POST, &url, Some(body.to_string().into_bytes()))
            .await
    }

    /// The text of `/metrics` (Prometheus exposition format).
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.expect("the /metrics text")
    }

    /// Import accounts one by one with `account_import`, each expected to succeed.
    pub async fn import(&self, sdkappid: u32, ids: &[&str]) {
        for id in ids {
            self.call_app(sdkappid, IMPORT, &json!({ "UserID": id }))
                .await
                .assert_ok();
        }
    }

    /// `AccountStatus` of each id, via `account_check` (batches of 100).
    pub async fn statuses(&self, sdkappid: u32, ids: &[&str]) -> Vec<String> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let items: Vec<Value> = chunk.iter().map(|id| json!({ "UserID": id })).collect();
            let reply = self
                .call_app(sdkappid, CHECK, &json!({ "CheckItem": items }))
                .await;
            reply.assert_ok();
            let result = reply.json["ResultItem"]
                .as_array()
                .expect("ResultItem array");
            assert_eq!(result.len(), chunk.len(), "{}", reply.text);
            for (item, id) in result.iter().zip(chunk) {
                assert_eq!(item["UserID"], json!(id), "{}", reply.text);
                assert_eq!(item["ResultCode"], json!(0), "{}", reply.text);
                out.push(item["AccountStatus"].as_str().unwrap_or("?").to_owned());
            }
        }
        out
    }

    /// Assert every id is `Imported`.
    pub async fn assert_imported(&self, sdkappid: u32, ids: &[&str]) {
        let statuses = self.statuses(sdkappid, ids).await;
        for (id, status) in ids.iter().zip(&statuses) {
            assert_eq!(status, "Imported", "{id:?} in app {sdkappid}");
        }
    }

    /// Assert every id is `NotImported`.
    pub async fn assert_not_imported(&self, sdkappid: u32, ids: &[&str]) {
        let statuses = self.statuses(sdkappid, ids).await;
        for (id, status) in ids.iter().zip(&statuses) {
            assert_eq!(status, "NotImported", "{id:?} in app {sdkappid}");
        }
    }
}
