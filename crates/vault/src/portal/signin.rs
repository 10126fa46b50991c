//! Signing in with a one-time code: asking for one (sent only to an address on file, within
//! the throttle, answered alike either way) and typing it (checked once, in constant time,
//! five wrong codes lock the address).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::{WrapContext, digests_equal};
use custos_core::fields;
use custos_core::ids::SubjectId;
use custos_core::inventory::FieldType;
use custos_core::mail::Mail;
use custos_core::personal::PersonalValue;
use custos_core::secret::Secret;
use custos_core::signin::{
    CODE_REQUEST_FLOOR_MS, CODE_VALID_MS, Challenge, LOCKOUT_MS, OneTimeCode, SigninRefusal,
    THROTTLE_WINDOW_MS, may_check_code, may_send_code,
};
use custos_store::{ChallengeRow, QueuedAudit, SessionRow, StoreError};

use super::{new_token, token_digest};
use crate::records::open_field;
use crate::{Principal, Vault, VaultError};

/// Who asks for codes before anyone has signed in, in audit entries.
const PORTAL_ACTOR: &str = "portal";

/// A sign-in under way, as the browser holds it: the token of its cookie. The same whether
/// or not the address was on file.
#[derive(Debug)]
pub struct SigninFlow {
    /// The cookie's value.
    pub token: Secret<String>,
}

/// A session just begun.
#[derive(Debug)]
pub struct NewSession {
    /// The session cookie's value.
    pub token: Secret<String>,
    /// Whose it is.
    pub subject: SubjectId,
}

fn audit(
    action: Action,
    outcome: Outcome,
    subject: Option<SubjectId>,
    detail: String,
) -> QueuedAudit {
    let actor = match subject {
        Some(s) if action == Action::Signin => Principal::Customer { subject: s }.actor(),
        _ => PORTAL_ACTOR.to_owned(),
    };
    let mut e = AuditEntry::new(actor, action, outcome);
    e.subject_id = subject;
    e.detail = Some(detail);
    QueuedAudit {
        subject_id: subject,
        entry: e.to_bytes(),
    }
}

/// An address's keyed digest as audit entries name it: its first 16 bytes, hex.
fn short(address_digest: &[u8]) -> String {
    hex::encode(&address_digest[..16.min(address_digest.len())])
}

impl Vault {
    /// A token for a new sign-in form, before any address is given: its CSRF token is
    /// [`Vault::csrf_token`] of it.
    ///
    /// # Errors
    /// When the system cannot supply randomness.
    pub fn new_signin_flow(&self) -> Result<SigninFlow, VaultError> {
        Ok(SigninFlow {
            token: new_token()?,
        })
    }

    /// Asks for a sign-in code for `address` from `client`. When the address is on file for
    /// one subject and the throttle allows (`core::signin::may_send_code`), a six-digit code
    /// is mailed to it through the outbox; otherwise nothing is sent. Either way the answer
    /// is the same new flow, given no sooner than [`CODE_REQUEST_FLOOR_MS`] after the call
    /// began, and an audit entry names the address by its keyed digest only.
    ///
    /// # Errors
    /// `Invalid` naming `email` when the address is not an email address at all (which
    /// says nothing about whether one is on file); store failures.
    pub async fn request_signin_code(
        &self,
        address: &PersonalValue,
        client: IpAddr,
    ) -> Result<SigninFlow, VaultError> {
        let began = Instant::now();
        let out = self.code_for(address, client).await;
        let floor = Duration::from_millis(CODE_REQUEST_FLOOR_MS);
        if let Some(rest) = floor.checked_sub(began.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        out
    }

    async fn code_for(
        &self,
        address: &PersonalValue,
        client: IpAddr,
    ) -> Result<SigninFlow, VaultError> {
        let invalid = |rule: &str| {
            VaultError::invalid("email", "email", format!("is not an email address: {rule}"))
        };
        let text = address
            .expose_secret()
            .as_str()
            .ok_or_else(|| invalid("it is not text"))?;
        // The blind index's form of an email address: as `core::fields` normalises it.
        let normal = Secret::new(fields::email(text).map_err(invalid)?.to_lowercase());
        let normal = normal.expose_secret();
        let now = self.now_ms();
        let address_digest = self.keys.mac.digest("address", &[normal.as_bytes()]);
        let client_digest = self
            .keys
            .mac
            .digest("client", &[client.to_string().as_bytes()]);
        let counts = self
            .store
            .signin_counts(
                &address_digest,
                &client_digest,
                now - THROTTLE_WINDOW_MS,
                now - LOCKOUT_MS,
            )
            .await?;
        let found = self.subject_with_address(normal).await?;
        let on_file = found.as_ref().map(|(s, _)| *s);
        let flow = self.new_signin_flow()?;
        let id = token_digest(flow.token.expose_secret());
        let code = OneTimeCode::generate()?;
        let sending = match (on_file, may_send_code(counts)) {
            (Some(s), Ok(())) => Ok(s),
            (None, _) => Err(SigninRefusal::NotOnFile),
            (Some(_), Err(why)) => Err(why),
        };
        let short = short(&address_digest);
        let detail = match sending {
            Ok(_) => format!("address {short}: code sent"),
            Err(why) => format!("address {short}: no code sent ({})", why.as_str()),
        };
        let row = ChallengeRow {
            id: id.clone(),
            address_digest: address_digest.to_vec(),
            client_digest: client_digest.to_vec(),
            subject_id: sending.ok(),
            code_digest: self.code_digest(&id, code.expose_secret()).to_vec(),
            created_ms: now,
            tries: 0,
            last_try_ms: None,
            used_ms: None,
        };
        let entry = audit(Action::SigninCode, Outcome::Ok, on_file, detail);
        self.store.insert_challenge(row, entry).await?;
        if let (Ok(subject), Some((_, stored))) = (sending, &found) {
            let mail = self.code_mail(stored, &code)?;
            self.enqueue_mail(Some(subject), mail, now + CODE_VALID_MS)
                .await?;
        }
        Ok(flow)
    }

    fn code_digest(&self, challenge: &[u8], code: &str) -> [u8; 32] {
        self.keys.mac.digest("code", &[challenge, code.as_bytes()])
    }

    fn code_mail(&self, to: &PersonalValue, code: &OneTimeCode) -> Result<Mail, VaultError> {
        let org = &self.inventory.organization.name;
        let minutes = CODE_VALID_MS / 60_000;
        let text = format!(
            "Your code to sign in to the privacy portal of {org} is:\n\n    {}\n\n\
             It works once, within {minutes} minutes. If you did not ask for it, you can \
             ignore this message: nobody can sign in without the code.\n",
            code.expose_secret()
        );
        Mail::new(to, format!("Your sign-in code for {org}"), text)
            .map_err(|e| VaultError::Internal(format!("composing the sign-in mail: {e}")))
    }

    /// The one subject whose records hold `normal` in a searchable email field, with the
    /// address as stored (the code goes there, not to the address as typed: the lookup
    /// ignores case, a mail server need not); none when no record holds it, or records of
    /// more than one subject do (the code would not say whose data to show).
    async fn subject_with_address(
        &self,
        normal: &str,
    ) -> Result<Option<(SubjectId, PersonalValue)>, VaultError> {
        let mut found: Option<(SubjectId, PersonalValue)> = None;
        for (cname, coll) in &self.inventory.collections {
            for (fname, decl) in &coll.fields {
                if decl.ty != FieldType::Email || !decl.searchable {
                    continue;
                }
                for r in self.find_by_value(cname, fname, normal).await? {
                    let subject = r.record.subject_id;
                    match &found {
                        Some((s, _)) if *s != subject => return Ok(None),
                        Some(_) => {}
                        None => {
                            let Some(ct) = r.record.fields.get(fname) else {
                                continue;
                            };
                            let key = self
                                .keys
                                .root
                                .unwrap(WrapContext::Subject(subject), &r.wrapped_key)?;
                            let stored = open_field(&key, &r.record, fname, ct)?;
                            found = Some((subject, stored));
                        }
                    }
                }
            }
        }
        match found {
            Some((s, _)) if self.store.erasure(s).await?.is_some() => Ok(None),
            other => Ok(other),
        }
    }

    /// Signs in with the code typed for the sign-in `flow`: the try is counted against the
    /// address first, then checked against `core::signin::may_check_code` and compared in
    /// constant time. A right code is used up and begins a session in one transaction (its
    /// try taken back). Each outcome is audited.
    ///
    /// # Errors
    /// `SigninRefused` saying why (the customer is told the same whatever it is).
    pub async fn verify_signin_code(
        &self,
        flow: &str,
        typed: &str,
    ) -> Result<NewSession, VaultError> {
        let id = token_digest(flow);
        let now = self.now_ms();
        let Some(ch) = self.store.challenge(&id).await? else {
            let e = audit(
                Action::SigninFailed,
                Outcome::Denied,
                None,
                SigninRefusal::NoChallenge.as_str().to_owned(),
            );
            self.store.append_audit(vec![e]).await?;
            return Err(VaultError::SigninRefused(SigninRefusal::NoChallenge));
        };
        let facts = Challenge {
            created_ms: ch.created_ms,
            used_ms: ch.used_ms,
        };
        let short = short(&ch.address_digest);
        let refuse = |why: SigninRefusal| {
            audit(
                Action::SigninFailed,
                Outcome::Denied,
                ch.subject_id,
                format!("address {short}: {}", why.as_str()),
            )
        };
        // The try is counted before the code is compared, in one transaction with reading
        // the address's count: tries sent at once cannot all see "none wrong yet".
        let tries = self
            .store
            .count_try(&id, now, now - LOCKOUT_MS)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::SigninRefused(SigninRefusal::NoChallenge),
                e => e.into(),
            })?;
        if let Err(why) = may_check_code(&facts, tries.saturating_sub(1), now) {
            self.store.append_audit(vec![refuse(why)]).await?;
            return Err(VaultError::SigninRefused(why));
        }
        let typed = OneTimeCode::parse(typed);
        let digest = self.code_digest(&id, typed.as_ref().map_or("", |c| c.expose_secret()));
        let right = digests_equal(&digest, &ch.code_digest);
        let subject = match (right, typed.is_some(), ch.subject_id) {
            (true, true, Some(s)) => s,
            _ => {
                let why = SigninRefusal::WrongCode;
                self.store.append_audit(vec![refuse(why)]).await?;
                return Err(VaultError::SigninRefused(why));
            }
        };
        let token = new_token()?;
        let session = SessionRow {
            id: token_digest(token.expose_secret()),
            subject_id: subject,
            created_ms: now,
            last_seen_ms: now,
            revoked_ms: None,
        };
        let entry = audit(
            Action::Signin,
            Outcome::Ok,
            Some(subject),
            format!("address {short}: signed in to the portal"),
        );
        match self.store.start_session(&id, session, entry).await {
            Ok(()) => Ok(NewSession { token, subject }),
            Err(StoreError::Conflict(_)) => {
                let why = SigninRefusal::Used;
                self.store.append_audit(vec![refuse(why)]).await?;
                Err(VaultError::SigninRefused(why))
            }
            Err(e) => Err(e.into()),
        }
    }
}
