//! Websites: a publishable key per declared site, subject tokens the business hands its pages,
//! and the public consent endpoint's use case, with Global Privacy Control.
//!
//! A site key is public: it names the site and carries a MAC so that a typo or a guess is
//! refused, but it authorises nothing alone. What authorises a choice is a subject token:
//! minted by the business's backend (with an API key) for one subject and one site, it expires,
//! and its MAC is checked in constant time.

use custos_core::consent::{Choice, ConsentEvent, ConsentStatus, Source};
use custos_core::crypto::digests_equal;
use custos_core::ids::SubjectId;
use custos_core::inventory::Site;
use serde::Serialize;

use crate::consent::NewChoice;
use custos_core::principal::Act;

use crate::{Principal, Vault, VaultError};

/// How long a subject token is accepted.
const TOKEN_TTL_MS: i64 = 30 * 86_400_000;
const KEY_PREFIX: &str = "custos_pk_";

/// A subject token for a site's pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteToken {
    /// The token: embed it in the page of this customer.
    pub token: String,
    /// The site's publishable key.
    pub site_key: String,
    /// When the token stops being accepted, RFC 3339.
    pub expires: String,
}

/// A choice sent by a site's page.
#[derive(Debug, Clone)]
pub struct PublicChoice {
    /// The site's publishable key.
    pub site_key: String,
    /// The subject token the page was given.
    pub subject_token: String,
    /// `grant` or `withdraw`, if the page sends a choice (it may send only the GPC signal).
    pub choice: Option<String>,
    /// The purpose.
    pub purpose: Option<String>,
    /// The notice version the banner showed.
    pub notice_version: Option<String>,
    /// The request's `Origin`.
    pub origin: Option<String>,
    /// Whether the request carried `Sec-GPC: 1`.
    pub gpc: bool,
    /// The browser's user agent.
    pub user_agent: Option<String>,
    /// The address the request came from (hashed in the event, never stored).
    pub ip: Option<String>,
}

/// What a public request recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicOutcome {
    /// The events recorded, in order.
    pub recorded: Vec<ConsentEvent>,
    /// Whether a Global Privacy Control signal was honoured.
    pub gpc_applied: bool,
    /// The purposes the signal opts out of (every purpose marked `sale_or_sharing`).
    pub gpc_purposes: Vec<String>,
    /// A grant the signal overrode, if the page asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

impl Vault {
    fn site_mac(&self, site: &str) -> String {
        hex::encode(&self.keys.marks.digest("site", "key", site)[..8])
    }

    fn token_mac(&self, site: &str, subject: SubjectId, expires: i64) -> String {
        hex::encode(
            self.keys
                .marks
                .digest("site", "token", &format!("{site}.{subject}.{expires}")),
        )
    }

    fn site(&self, id: &str) -> Result<&Site, VaultError> {
        self.inventory
            .sites
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| {
                VaultError::invalid(
                    "site",
                    "unknown_site",
                    "no such site is declared under [[sites]] in the inventory",
                )
            })
    }

    /// A site's publishable key: safe to embed in its pages.
    ///
    /// # Errors
    /// `Invalid` for a site the inventory does not declare.
    pub fn site_key(&self, site: &str) -> Result<String, VaultError> {
        let s = self.site(site)?;
        Ok(format!("{KEY_PREFIX}{}_{}", s.id, self.site_mac(&s.id)))
    }

    /// Whether `origin` is one a declared site's pages are served from: for CORS.
    pub fn allowed_origin(&self, origin: &str) -> bool {
        self.inventory
            .sites
            .iter()
            .any(|s| s.origins.iter().any(|o| o == origin))
    }

    /// Mints a token with which `site`'s pages may record `subject`'s choices for 30 days.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write; `Invalid` for an unknown site; `NotFound`
    /// for an unknown subject.
    pub async fn site_token(
        &self,
        p: &Principal,
        site: &str,
        subject: SubjectId,
    ) -> Result<SiteToken, VaultError> {
        self.authorize(p, &Act::MintSiteToken)?;
        let site_key = self.site_key(site)?;
        if self.store.subject_key(subject).await?.is_none() {
            return Err(VaultError::NotFound("subject"));
        }
        let expires = self.now_ms() + TOKEN_TTL_MS;
        Ok(SiteToken {
            token: format!(
                "{site}.{subject}.{expires}.{}",
                self.token_mac(site, subject, expires)
            ),
            site_key,
            expires: custos_core::time::format_time_ms(expires),
        })
    }

    /// Records what a site's page sends: a grant or withdrawal for one of the site's purposes,
    /// and, when the request carries Global Privacy Control, a withdrawal of every purpose
    /// marked `sale_or_sharing` (GPC wins over any grant, earlier or in the same request).
    ///
    /// # Errors
    /// `Forbidden` for a key that is no site's, an origin the site does not declare, or a
    /// token that is not valid for this site now; `Invalid` naming the field.
    pub async fn public_choice(&self, req: PublicChoice) -> Result<PublicOutcome, VaultError> {
        let site = req
            .site_key
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.rsplit_once('_'))
            .and_then(|(id, mac)| {
                let site = self.inventory.sites.iter().find(|s| s.id == id)?;
                digests_equal(mac.as_bytes(), self.site_mac(id).as_bytes()).then_some(site)
            })
            .ok_or_else(|| {
                VaultError::Forbidden("the site key is not the key of a site of this vault".into())
            })?;
        if !req
            .origin
            .as_deref()
            .is_some_and(|o| site.origins.iter().any(|s| s == o))
        {
            return Err(VaultError::Forbidden(format!(
                "requests for site {:?} must come from one of its declared origins",
                site.id
            )));
        }
        let subject = self.check_token(site, &req.subject_token)?;
        let actor = format!("site:{}", site.id);
        let mut outcome = PublicOutcome {
            recorded: Vec::new(),
            gpc_applied: false,
            gpc_purposes: Vec::new(),
            overridden: None,
        };
        let asked = match (req.choice.as_deref(), req.purpose.as_deref()) {
            (None, None) if req.gpc => None,
            (None, _) => {
                return Err(VaultError::bad_request(
                    "choice",
                    "send a choice (grant or withdraw) and its purpose, or a Sec-GPC: 1 signal",
                ));
            }
            (Some(c), purpose) => {
                let choice = match c {
                    "grant" => Choice::Grant,
                    "withdraw" => Choice::Withdraw,
                    _ => {
                        return Err(VaultError::invalid(
                            "choice",
                            "one_of",
                            "a site records grant or withdraw",
                        ));
                    }
                };
                let purpose = purpose.filter(|p| !p.is_empty()).ok_or_else(|| {
                    VaultError::bad_request("purpose", "name the purpose the choice is about")
                })?;
                if !site.purposes.iter().any(|p| p == purpose) {
                    return Err(VaultError::invalid(
                        "purpose",
                        "not_for_this_site",
                        format!(
                            "site {:?} does not ask for consent to this purpose: see its purposes in the inventory",
                            site.id
                        ),
                    ));
                }
                Some((choice, purpose.to_owned()))
            }
        };
        let evidence = |source: Source, choice: Choice, purpose: &str| NewChoice {
            choice,
            purpose: Some(purpose.to_owned()),
            source,
            notice_version: req.notice_version.clone(),
            collection_point: req.origin.clone(),
            user_agent: req.user_agent.clone(),
            ip: req.ip.clone(),
            expires_at: None,
            reason: (source == Source::Gpc)
                .then(|| "Global Privacy Control signal (Sec-GPC: 1)".to_owned()),
        };
        if req.gpc {
            let state = self.subject_state(subject).await?;
            outcome.gpc_applied = true;
            for p in self.inventory.purposes.iter().filter(|p| p.sale_or_sharing) {
                outcome.gpc_purposes.push(p.id.clone());
                // Already opted out: the signal changes nothing, and the ledger is not
                // repeated on every page view.
                if state.purpose(&p.id).consent == ConsentStatus::Withdrawn {
                    continue;
                }
                let e = self
                    .append_choice(
                        &actor,
                        subject,
                        evidence(Source::Gpc, Choice::Withdraw, &p.id),
                    )
                    .await?;
                outcome.recorded.push(e);
            }
            tracing::info!(site = %site.id, purposes = ?outcome.gpc_purposes, "global privacy control signal applied");
        }
        if let Some((choice, purpose)) = asked {
            let gpc_covers = req.gpc && outcome.gpc_purposes.contains(&purpose);
            if gpc_covers && choice == Choice::Grant {
                outcome.overridden = Some(purpose);
            } else if !gpc_covers {
                let e = self
                    .append_choice(&actor, subject, evidence(Source::WebForm, choice, &purpose))
                    .await?;
                outcome.recorded.push(e);
            }
        }
        Ok(outcome)
    }

    fn check_token(&self, site: &Site, token: &str) -> Result<SubjectId, VaultError> {
        let refused = || {
            VaultError::Forbidden(format!(
                "the subject token is not valid for site {:?} now: ask the site's backend for a fresh one",
                site.id
            ))
        };
        let parts: Vec<&str> = token.split('.').collect();
        let [id, subject, expires, mac] = parts.as_slice() else {
            return Err(refused());
        };
        let subject: SubjectId = subject.parse().map_err(|_| refused())?;
        let expires: i64 = expires.parse().map_err(|_| refused())?;
        let good = *id == site.id
            && digests_equal(
                mac.as_bytes(),
                self.token_mac(&site.id, subject, expires).as_bytes(),
            );
        if !good || expires <= self.now_ms() {
            return Err(refused());
        }
        Ok(subject)
    }
}
