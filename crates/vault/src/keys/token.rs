//! A root key held in a PKCS#11 token (`[root_key.pkcs11]`): one AES-256 secret key per
//! version, labelled `custos-root-N`, generated inside the token as sensitive and not
//! extractable. Wrapping and unwrapping are AES-GCM inside the token (`CKM_AES_GCM`), in the
//! same format as a root key in memory ([`custos_core::crypto::wrap_with`]); the key's bytes
//! never reach this process.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use custos_core::crypto::{
    CryptoError, DataKey, KEY_LEN, NONCE_LEN, SealingKey, WrapContext, ciphertext_key_version,
    unwrap_with, wrap_with,
};
use custos_core::inventory::{PinSource, TokenConfig};
use custos_core::secret::Secret;

use crate::VaultError;

/// Sessions kept open for reuse; more are opened under load and closed after.
const POOLED_SESSIONS: usize = 8;

/// A PKCS#11 token holding the root key versions, logged in as its user.
pub(crate) struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    config: TokenConfig,
    /// Kept to log in again should the token forget this process (zeroised on drop).
    pin: AuthPin,
    sessions: Mutex<Vec<Session>>,
    state: RwLock<TokenState>,
}

struct TokenState {
    keys: BTreeMap<u32, ObjectHandle>,
    checked: Instant,
}

/// One version, used through the token.
struct TokenKey<'a> {
    token: &'a Token,
    handle: ObjectHandle,
    version: u32,
}

/// The module's context, initialised once per process: a module is initialised only once,
/// and several vaults in one process (a restore opens two) share it.
fn context(module: &Path) -> Result<Pkcs11, VaultError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .expect("PKCS#11 contexts lock");
    if let Some(c) = map.get(module) {
        return Ok(c.clone());
    }
    let fail = |e: P11Error| {
        VaultError::Setup(format!(
            "loading the PKCS#11 module {} ([root_key.pkcs11] module): {e}",
            module.display()
        ))
    };
    let c = Pkcs11::new(module).map_err(fail)?;
    match c.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(e)),
    }
    map.insert(module.to_owned(), c.clone());
    Ok(c)
}

fn read_pin(source: &PinSource) -> Result<AuthPin, VaultError> {
    let text = match source {
        PinSource::Env(name) => zeroize::Zeroizing::new(std::env::var(name).map_err(|_| {
            VaultError::Setup(format!(
                "the token's PIN is read from the environment variable {name} \
                 ([root_key.pkcs11] pin_env), and {name} is not set"
            ))
        })?),
        PinSource::File(path) => {
            let fail = |e: std::io::Error| {
                VaultError::Setup(format!(
                    "reading the token PIN file {}: {e}",
                    path.display()
                ))
            };
            let mode = std::fs::metadata(path).map_err(fail)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(VaultError::Setup(format!(
                    "the token PIN file {} has mode {mode:o}, so other users can read it: run \
                     `chmod 600 {}`",
                    path.display(),
                    path.display()
                )));
            }
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(fail)?)
        }
    };
    let pin = text.trim_end_matches(['\n', '\r']);
    if pin.is_empty() {
        return Err(VaultError::Setup(format!(
            "the token's PIN ({}) is empty",
            describe_pin(source)
        )));
    }
    Ok(AuthPin::from(pin.to_owned()))
}

fn describe_pin(source: &PinSource) -> String {
    match source {
        PinSource::Env(name) => format!("the environment variable {name}"),
        PinSource::File(path) => path.display().to_string(),
    }
}

/// The version a key's label names, when it is one of ours: `custos-root-7` is 7.
fn version_of(prefix: &str, label: &[u8]) -> Option<u32> {
    let digits = std::str::from_utf8(label)
        .ok()?
        .strip_prefix(prefix)?
        .strip_prefix('-')?;
    // Canonical digits only: `-03` or `-+3` would name version 3 twice.
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

fn token_error(e: P11Error) -> CryptoError {
    CryptoError::Token(e.to_string())
}

/// Whether a session is gone (closed, or the token forgot this process's login).
fn session_lost(e: &P11Error) -> bool {
    matches!(
        e,
        P11Error::Pkcs11(
            RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn,
            _
        )
    )
}

impl Token {
    /// Opens the token the configuration names and logs in with its PIN.
    pub(crate) fn open(config: &TokenConfig) -> Result<Self, VaultError> {
        let pkcs11 = context(&config.module)?;
        let slot = find_slot(&pkcs11, config)?;
        let token = Self {
            pkcs11,
            slot,
            config: config.clone(),
            pin: read_pin(&config.pin)?,
            sessions: Mutex::new(Vec::new()),
            state: RwLock::new(TokenState {
                keys: BTreeMap::new(),
                checked: Instant::now(),
            }),
        };
        let session = token.new_session()?;
        token.sessions.lock().expect("sessions lock").push(session);
        let keys = token.find_versions()?;
        token.state.write().expect("token state lock").keys = keys;
        Ok(token)
    }

    /// The token and the module, for messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "the PKCS#11 token \"{}\" ({})",
            self.config.token,
            self.config.module.display()
        )
    }

    /// The label version `version` has in the token.
    pub(crate) fn label_of(&self, version: u32) -> String {
        format!("{}-{version}", self.config.label)
    }

    /// The versions held, oldest first.
    pub(crate) fn versions(&self) -> Vec<u32> {
        let st = self.state.read().expect("token state lock");
        st.keys.keys().copied().collect()
    }

    /// Looks for versions added or removed by another process (at once with `force`, else at
    /// most once per `recheck`). A token that cannot be read keeps what is held.
    pub(crate) fn refresh(&self, force: bool, recheck: Duration) {
        {
            let st = self.state.read().expect("token state lock");
            if !force && st.checked.elapsed() < recheck {
                return;
            }
        }
        let found = self.find_versions();
        let mut st = self.state.write().expect("token state lock");
        st.checked = Instant::now();
        match found {
            // Every version gone at once, or the newest one: not a retirement (which never
            // takes the newest) but a lost login or a token in trouble. The versions held are
            // kept, and the sessions dropped, so the next one logs in again.
            Ok(keys)
                if st
                    .keys
                    .keys()
                    .next_back()
                    .is_some_and(|newest| !keys.contains_key(newest)) =>
            {
                self.sessions.lock().expect("sessions lock").clear();
                tracing::error!(
                    "the token no longer shows the newest root key version; keeping the versions held"
                );
            }
            Ok(keys) => {
                if !st.keys.is_empty() && keys.keys().ne(st.keys.keys()) {
                    tracing::debug!(versions = ?keys.keys().collect::<Vec<_>>(), "root key versions in the token looked up again");
                }
                st.keys = keys;
            }
            Err(e) => {
                tracing::error!(error = %e, "looking up the root key versions in the token failed; keeping the versions held");
            }
        }
    }

    /// Wraps a key under the newest version, inside the token.
    pub(crate) fn wrap(&self, ctx: WrapContext<'_>, key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        let (version, handle) = {
            let st = self.state.read().expect("token state lock");
            let (v, h) = st
                .keys
                .iter()
                .next_back()
                .ok_or_else(|| CryptoError::Token("the token holds no root key".into()))?;
            (*v, *h)
        };
        wrap_with(
            &TokenKey {
                token: self,
                handle,
                version,
            },
            ctx,
            key,
        )
    }

    /// Unwraps a key under the version it names, inside the token.
    pub(crate) fn unwrap(
        &self,
        ctx: WrapContext<'_>,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        let version = ciphertext_key_version(wrapped)?;
        let handle = *self
            .state
            .read()
            .expect("token state lock")
            .keys
            .get(&version)
            .ok_or(CryptoError::UnknownKeyVersion(version))?;
        unwrap_with(
            &TokenKey {
                token: self,
                handle,
                version,
            },
            ctx,
            wrapped,
        )
    }

    /// Generates version `version` inside the token: AES-256, sensitive, never extractable,
    /// for encryption and decryption only.
    pub(crate) fn generate(&self, version: u32) -> Result<(), VaultError> {
        let label = self.label_of(version);
        if self.find_versions()?.contains_key(&version) {
            return Err(VaultError::Conflict(format!(
                "{} holds a key labelled {label} already",
                self.describe()
            )));
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen((KEY_LEN as u64).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.clone().into_bytes()),
        ];
        self.with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &template))?
            .map_err(|e| {
                VaultError::Setup(format!("generating {label} in {}: {e}", self.describe()))
            })?;
        self.refresh(true, Duration::ZERO);
        Ok(())
    }

    /// Destroys version `version` in the token; `false` when it is not there.
    pub(crate) fn destroy(&self, version: u32) -> Result<bool, VaultError> {
        let Some(handle) = self.find_versions()?.get(&version).copied() else {
            return Ok(false);
        };
        self.with_session(|s| s.destroy_object(handle))?
            .map_err(|e| {
                VaultError::Setup(format!(
                    "destroying {} in {}: {e}",
                    self.label_of(version),
                    self.describe()
                ))
            })?;
        self.refresh(true, Duration::ZERO);
        Ok(true)
    }

    /// Whether version `version` was generated in the token and has never left it, as the
    /// token reports: local, sensitive and always so, not extractable and never so.
    pub(crate) fn never_left(&self, version: u32) -> Result<bool, VaultError> {
        let Some(handle) = self.find_versions()?.get(&version).copied() else {
            return Ok(false);
        };
        let asked = [
            AttributeType::Local,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
        ];
        let attrs = self
            .with_session(|s| s.get_attributes(handle, &asked))?
            .map_err(|e| VaultError::Setup(format!("reading {}: {e}", self.describe())))?;
        let mut kept = 0;
        for a in attrs {
            match a {
                Attribute::Local(true)
                | Attribute::Sensitive(true)
                | Attribute::AlwaysSensitive(true)
                | Attribute::Extractable(false)
                | Attribute::NeverExtractable(true) => kept += 1,
                _ => {}
            }
        }
        Ok(kept == asked.len())
    }

    /// Every key of ours in the token, by version; two keys with one label are refused.
    fn find_versions(&self) -> Result<BTreeMap<u32, ObjectHandle>, VaultError> {
        let found = self
            .with_session(|s| {
                // Only private, sensitive, unextractable AES keys: a public object or one
                // whose value can be read is never taken for a root key version.
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                ];
                let mut out = Vec::new();
                for h in s.find_objects(&template)? {
                    let asked = [
                        AttributeType::Label,
                        AttributeType::Local,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                    ];
                    let (mut version, mut kept) = (None, 0);
                    for a in s.get_attributes(h, &asked)? {
                        match a {
                            Attribute::Label(l) => version = version_of(&self.config.label, &l),
                            Attribute::Local(true)
                            | Attribute::AlwaysSensitive(true)
                            | Attribute::NeverExtractable(true) => kept += 1,
                            _ => {}
                        }
                    }
                    match version {
                        // Generated in the token and never out of it, or not ours to use.
                        Some(v) if kept == 3 => out.push((v, h)),
                        Some(v) => tracing::error!(
                            version = v,
                            "a key labelled as a root key version was not generated in the token or was once extractable; it is not used"
                        ),
                        None => {}
                    }
                }
                Ok(out)
            })?
            .map_err(|e| {
                VaultError::Setup(format!("looking for keys in {}: {e}", self.describe()))
            })?;
        let mut keys = BTreeMap::new();
        for (v, h) in found {
            if keys.insert(v, h).is_some() {
                return Err(VaultError::Integrity(format!(
                    "{} holds two keys labelled {}: which one wraps is not known",
                    self.describe(),
                    self.label_of(v)
                )));
            }
        }
        Ok(keys)
    }

    /// A new read-write session, logged in (once per process: later sessions share it).
    fn new_session(&self) -> Result<Session, VaultError> {
        let fail = |e: P11Error| {
            VaultError::Setup(format!("opening a session on {}: {e}", self.describe()))
        };
        let session = self.pkcs11.open_rw_session(self.slot).map_err(fail)?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(VaultError::Setup(format!(
                "{} refused the PIN read from {}",
                self.describe(),
                describe_pin(&self.config.pin)
            ))),
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => Err(VaultError::Setup(format!(
                "the user PIN of {} is locked after too many wrong tries: its security officer \
                 unlocks it",
                self.describe()
            ))),
            Err(e) => Err(VaultError::Setup(format!(
                "logging in to {}: {e}",
                self.describe()
            ))),
        }
    }

    /// Runs `f` on a pooled session (a new one when none is free, and once more on a new one
    /// when the session was lost).
    /// The outer error is opening a session; the inner one is `f`'s.
    fn with_session<T>(
        &self,
        f: impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<cryptoki::error::Result<T>, VaultError> {
        let pooled = self.sessions.lock().expect("sessions lock").pop();
        let session = match pooled {
            Some(s) => s,
            None => self.new_session()?,
        };
        let (session, result) = match f(&session) {
            Err(e) if session_lost(&e) => {
                drop(session);
                let fresh = self.new_session()?;
                let r = f(&fresh);
                (fresh, r)
            }
            r => (session, r),
        };
        // A session that saw an error may have an operation left active: it is closed, never
        // pooled.
        if result.is_ok() {
            let mut pool = self.sessions.lock().expect("sessions lock");
            if pool.len() < POOLED_SESSIONS {
                pool.push(session);
            }
        }
        Ok(result)
    }
}

fn find_slot(pkcs11: &Pkcs11, config: &TokenConfig) -> Result<Slot, VaultError> {
    let module = config.module.display();
    let slots = pkcs11.get_slots_with_token().map_err(|e| {
        VaultError::Setup(format!(
            "listing the tokens of the PKCS#11 module {module}: {e}"
        ))
    })?;
    let mut labels = Vec::new();
    let mut found = Vec::new();
    for slot in slots {
        let Ok(info) = pkcs11.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim_end().to_owned();
        if label == config.token {
            found.push(slot);
        }
        labels.push(label);
    }
    match found[..] {
        [slot] => return Ok(slot),
        [] => {}
        _ => {
            return Err(VaultError::Setup(format!(
                "the PKCS#11 module {module} has {} tokens labelled \"{}\": which one holds \
                 the root key is not known; relabel all but one",
                found.len(),
                config.token
            )));
        }
    }
    Err(VaultError::Setup(format!(
        "the PKCS#11 module {module} has no token labelled \"{}\" ([root_key.pkcs11] token); \
         it has {labels:?}",
        config.token
    )))
}

impl SealingKey for TokenKey<'_> {
    fn version(&self) -> u32 {
        self.version
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.token
            .with_session(|s| {
                let mut iv = *nonce;
                let params = GcmParams::new(&mut iv, aad, 128.into())?;
                let sealed = s.encrypt(&Mechanism::AesGcm(params), self.handle, plaintext)?;
                Ok((sealed, iv))
            })
            .map_err(|e| CryptoError::Token(e.to_string()))?
            .map_err(token_error)
            .and_then(|(sealed, iv)| {
                // A token that makes its own IV (as FIPS tokens do) writes it back; the header
                // names the nonce given, so such a token cannot be used.
                if iv == *nonce {
                    Ok(sealed)
                } else {
                    Err(CryptoError::Token(
                        "the token chose its own AES-GCM IV; Custos gives the IV and needs a token that takes it".into(),
                    ))
                }
            })
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        self.token
            .with_session(|s| {
                let mut iv = *nonce;
                let params = GcmParams::new(&mut iv, aad, 128.into())?;
                s.decrypt(&Mechanism::AesGcm(params), self.handle, sealed)
            })
            .map_err(|e| CryptoError::Token(e.to_string()))?
            .map(Secret::new)
            .map_err(|e| match e {
                // SoftHSM 2.6 answers a tag that does not verify with CKR_GENERAL_ERROR.
                P11Error::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                    cryptoki::context::Function::Decrypt,
                ) => CryptoError::Decrypt,
                e => token_error(e),
            })
    }
}
