//! HTTP tests of the API through `oneshot`, without a socket.

mod api;
mod breach;
mod consents;
mod console;
mod console_breach;
mod erasure;
mod export;
mod openapi;
mod portal;
mod public;
mod refusals;
mod reports;
mod request_deadlines;
mod request_refusals;
mod requests;
mod retention;
mod visitor;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use custos_server::{AppState, Metrics, Scheme, app};
use custos_vault::{Clock, Paths, Principal, SystemClock, Vault};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) struct TestApp {
    pub(crate) app: Router,
    pub(crate) vault: Arc<Vault>,
    pub(crate) admin: String,
    pub(crate) support: String,
    pub(crate) marketer: String,
    pub(crate) billing: String,
    pub(crate) dir: tempfile::TempDir,
}

/// A clock the test moves by hand.
#[derive(Debug, Default)]
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn at(ms: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(ms)))
    }

    pub(crate) fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) async fn spawn() -> TestApp {
    spawn_with_clock(Arc::new(SystemClock)).await
}

pub(crate) async fn spawn_with_clock(clock: Arc<dyn Clock>) -> TestApp {
    spawn_with_inventory(clock, |s| s).await
}

/// A vault whose inventory is the example as `edit` changes it.
pub(crate) async fn spawn_with_inventory(
    clock: Arc<dyn Clock>,
    edit: impl FnOnce(String) -> String,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    custos_vault::init(&Paths::in_dir(dir.path()))
        .await
        .unwrap();
    let file = dir.path().join("custos.toml");
    let text = edit(std::fs::read_to_string(&file).unwrap());
    std::fs::write(&file, text).unwrap();
    let (vault, _) = Vault::open_with_clock(&Paths::in_dir(dir.path()), clock)
        .await
        .unwrap();
    let vault = Arc::new(vault);
    let key = |name: &'static str, role: &'static str| {
        let v = Arc::clone(&vault);
        async move {
            v.create_api_key(&Principal::Cli, name, role)
                .await
                .unwrap()
                .secret
                .expose_secret()
                .clone()
        }
    };
    let admin = key("admin", "admin").await;
    let support = key("support", "support_agent").await;
    let marketer = key("marketer", "marketer").await;
    let billing = key("billing", "billing_service").await;
    let app = app(AppState {
        vault: Arc::clone(&vault),
        metrics: Arc::new(Metrics::default()),
        scheme: Scheme::Http,
    });
    TestApp {
        app,
        vault,
        admin,
        support,
        marketer,
        billing,
        dir,
    }
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl TestApp {
    pub(crate) async fn raw(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    pub(crate) async fn create(&self, fields: Value) -> (String, String) {
        let r = self
            .call(
                "POST",
                "/v1/collections/customers/records",
                Some(&self.admin),
                Some(serde_json::json!({ "fields": fields })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["subject_id"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn count(&self) -> u64 {
        self.vault.count_records("customers").await.unwrap()
    }
}

pub(crate) fn assert_error(r: &Reply, status: StatusCode, code: &str, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"]["code"], code, "{}", r.text);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
    match field {
        Some(f) => assert_eq!(r.body["error"]["field"], f, "{}", r.text),
        None => assert!(r.body["error"].get("field").is_none(), "{}", r.text),
    }
}
