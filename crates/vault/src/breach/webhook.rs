//! Webhook deliveries: the outbox's other kind of message. Each is posted with its
//! HMAC-SHA256 signature over the timestamp and the body (`core::breach::webhook`), retried
//! with the mail schedule until a 2xx answer or the expiry, and every attempt is an audit
//! entry. The secret is read from the environment variable `[[webhooks]]` names at each
//! attempt, never stored.

use std::sync::Arc;
use std::time::Duration;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::breach::webhook::{Delivery, SIGNATURE_HEADER, sign};
use custos_core::ids::MailId;
use custos_store::QueuedAudit;
use zeroize::Zeroizing;

use crate::{Vault, VaultError};

/// How long one delivery may take.
pub(crate) const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of one attempt.
pub(crate) enum Posted {
    /// Acknowledged with a 2xx answer.
    Delivered,
    /// Not acknowledged: try again later, for this reason.
    Again(String),
    /// Never deliverable (the webhook is no longer configured).
    Never(String),
}

/// `https://host[:port]` of a URL, without its path, query or anything before an `@`.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

impl Vault {
    async fn http(&self) -> Result<&reqwest::Client, VaultError> {
        self.http
            .get_or_try_init(|| async {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| VaultError::Internal(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                reqwest::Client::builder()
                    .use_preconfigured_tls(tls)
                    .timeout(WEBHOOK_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| VaultError::Internal(e.to_string()))
            })
            .await
    }

    /// Posts one delivery, signed, and audits the attempt.
    pub(crate) async fn post_webhook(&self, id: MailId, d: &Delivery, attempt: i64) -> Posted {
        let posted = self.try_post(id, d).await;
        let (outcome, answer) = match &posted {
            Posted::Delivered => (Outcome::Ok, "acknowledged".to_owned()),
            Posted::Again(why) => (Outcome::Failed, format!("{why}; will retry")),
            Posted::Never(why) => (Outcome::Failed, format!("{why}; given up")),
        };
        let mut e = AuditEntry::new("outbox", Action::WebhookDeliver, outcome);
        // The URL's scheme and host only: a webhook's path may carry its token.
        e.detail = Some(format!(
            "alert {} to {} (delivery {id}, attempt {attempt}): {answer}",
            d.alert,
            origin(&d.url)
        ));
        let queued = QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        };
        if let Err(err) = self.store.append_audit(vec![queued]).await {
            tracing::warn!(delivery = %id, error = %err, "auditing a webhook delivery failed");
        }
        posted
    }

    async fn try_post(&self, id: MailId, d: &Delivery) -> Posted {
        let Some(w) = self.inventory.webhooks.iter().find(|w| w.url == d.url) else {
            return Posted::Never("the webhook is no longer in custos.toml".into());
        };
        let Ok(secret) = std::env::var(&w.secret_env).map(Zeroizing::new) else {
            return Posted::Again(format!(
                "the environment variable {} holding the webhook's secret is not set",
                w.secret_env
            ));
        };
        let client = match self.http().await {
            Ok(c) => c,
            Err(e) => return Posted::Again(format!("no HTTP client: {e}")),
        };
        let timestamp = self.now_ms().div_euclid(1000);
        let signature = sign(secret.as_bytes(), timestamp, d.body.as_bytes());
        let sent = client
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("Custos-Delivery", id.to_string())
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Posted::Delivered,
            Ok(r) => Posted::Again(format!("answered {}", r.status().as_u16())),
            // reqwest's error names the URL and the cause, nothing personal: the body is ids.
            Err(e) if e.is_timeout() => Posted::Again("timed out".into()),
            Err(e) if e.is_connect() => Posted::Again("could not connect".into()),
            Err(_) => Posted::Again("the request failed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_origin_of_a_webhook_is_named() {
        assert_eq!(
            super::origin("https://hooks.example.com/services/T000/B000/XXXX?x=1"),
            "https://hooks.example.com"
        );
        assert_eq!(
            super::origin("http://127.0.0.1:9000/custos"),
            "http://127.0.0.1:9000"
        );
    }
}
