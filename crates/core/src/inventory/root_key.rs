//! `[root_key]`: where the root key versions are held. The key file `root.key` in the data
//! directory by default, or the file `file = "PATH"` names; `env = "NAME"` reads the same text (one `custos-root-key-v1` line per
//! version) from an environment variable instead; `[root_key.pkcs11]` keeps them in a PKCS#11
//! token, where they wrap and unwrap and which they never leave. The inventory names the
//! variable, the module and the PIN's variable or file, never a key or a PIN.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;

/// Where the root key versions are held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKeyConfig {
    /// A key file, mode 0600: the one named (an absolute path, or relative to the data
    /// directory), else `root.key` in the data directory.
    File(Option<PathBuf>),
    /// The text of a key file in this environment variable, read once at start.
    Env(String),
    /// Secret keys in a PKCS#11 token, one per version.
    Pkcs11(TokenConfig),
}

impl Default for RootKeyConfig {
    fn default() -> Self {
        RootKeyConfig::File(None)
    }
}

impl RootKeyConfig {
    /// The key file, for a key held in one: the named path (a relative one in `dir`), else
    /// `default`.
    pub fn key_file(&self, dir: &std::path::Path, default: &std::path::Path) -> Option<PathBuf> {
        match self {
            RootKeyConfig::File(Some(p)) => Some(dir.join(p)),
            RootKeyConfig::File(None) => Some(default.to_owned()),
            _ => None,
        }
    }
}

/// `[root_key.pkcs11]`: the token and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// The PKCS#11 module (shared library), an absolute path.
    pub module: PathBuf,
    /// The token's label, as `softhsm2-util --init-token --label` gave it.
    pub token: String,
    /// Where the user PIN is read from.
    pub pin: PinSource,
    /// The keys' label before the version: `custos-root` makes `custos-root-1`, `custos-root-2`.
    pub label: String,
}

/// Where a token's PIN is read from; never the PIN itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// An environment variable, by name.
    Env(String),
    /// A file readable by its owner alone, by absolute path.
    File(PathBuf),
}

/// The keys' label before the version when `[root_key.pkcs11]` names none.
pub const DEFAULT_TOKEN_LABEL: &str = "custos-root";
/// PKCS#11 token labels are 32 bytes.
const TOKEN_LABEL_LEN: usize = 32;

/// `[root_key]` as the file says it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRootKey {
    file: Option<Spanned<String>>,
    env: Option<Spanned<String>>,
    pkcs11: Option<Spanned<RawToken>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    module: Spanned<String>,
    token: Spanned<String>,
    pin_env: Option<Spanned<String>>,
    pin_file: Option<Spanned<String>>,
    label: Option<Spanned<String>>,
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, ch)| ch == '_' || ch.is_ascii_uppercase() || (i > 0 && ch.is_ascii_digit()))
}

fn variable(c: &mut Checker<'_>, name: Spanned<String>, path: &str, what: &str) -> Option<String> {
    if is_variable_name(name.get_ref()) {
        Some(name.into_inner())
    } else {
        c.report(
            c.line(&name),
            path,
            format!(
                "is not an environment variable's name (upper-case letters, digits and _, as \
                 CUSTOS_ROOT_KEY); write the name, never the {what}"
            ),
        );
        None
    }
}

fn absolute(c: &mut Checker<'_>, path: Spanned<String>, at: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path.get_ref());
    if p.is_absolute() {
        Some(p)
    } else {
        c.report(c.line(&path), at, "must be an absolute path");
        None
    }
}

/// Reads `[root_key]`: the key file, a variable, or a token.
pub(super) fn root_key(c: &mut Checker<'_>, raw: Option<Spanned<RawRootKey>>) -> RootKeyConfig {
    let Some(raw) = raw else {
        return RootKeyConfig::default();
    };
    let line = c.line(&raw);
    let raw = raw.into_inner();
    match (raw.file, raw.env, raw.pkcs11) {
        (None, None, None) => RootKeyConfig::default(),
        (Some(file), None, None) => {
            if file.get_ref().trim().is_empty() {
                c.report(
                    c.line(&file),
                    "root_key.file",
                    "must be the key file's path",
                );
                RootKeyConfig::default()
            } else {
                RootKeyConfig::File(Some(PathBuf::from(file.into_inner())))
            }
        }
        (None, Some(name), None) => variable(c, name, "root_key.env", "key")
            .map_or_else(RootKeyConfig::default, RootKeyConfig::Env),
        (None, None, Some(token)) => {
            token_config(c, token).map_or_else(RootKeyConfig::default, RootKeyConfig::Pkcs11)
        }
        _ => {
            c.report(
                line,
                "root_key",
                "names more than one of file, env and pkcs11: the root key is held in one place",
            );
            RootKeyConfig::default()
        }
    }
}

fn token_config(c: &mut Checker<'_>, raw: Spanned<RawToken>) -> Option<TokenConfig> {
    let line = c.line(&raw);
    let raw = raw.into_inner();
    let module = absolute(c, raw.module, "root_key.pkcs11.module");
    let token = {
        let t = raw.token;
        if t.get_ref().is_empty() || t.get_ref().len() > TOKEN_LABEL_LEN {
            c.report(
                c.line(&t),
                "root_key.pkcs11.token",
                format!("must be the token's label, 1 to {TOKEN_LABEL_LEN} bytes"),
            );
            None
        } else {
            Some(t.into_inner())
        }
    };
    let pin = match (raw.pin_env, raw.pin_file) {
        (Some(name), None) => {
            variable(c, name, "root_key.pkcs11.pin_env", "PIN").map(PinSource::Env)
        }
        (None, Some(path)) => absolute(c, path, "root_key.pkcs11.pin_file").map(PinSource::File),
        _ => {
            c.report(
                line,
                "root_key.pkcs11",
                "names the user PIN's place with exactly one of pin_env (a variable's name) or \
                 pin_file (an absolute path), never the PIN",
            );
            None
        }
    };
    let label = match raw.label {
        None => Some(DEFAULT_TOKEN_LABEL.to_owned()),
        Some(l) => {
            let ok = !l.get_ref().is_empty()
                && l.get_ref().len() <= 24
                && l.get_ref()
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if ok {
                Some(l.into_inner())
            } else {
                c.report(
                    c.line(&l),
                    "root_key.pkcs11.label",
                    "must be 1 to 24 letters, digits, '-', '_' or '.'",
                );
                None
            }
        }
    };
    Some(TokenConfig {
        module: module?,
        token: token?,
        pin: pin?,
        label: label?,
    })
}

#[cfg(test)]
mod tests {
    use super::{PinSource, RootKeyConfig};
    use crate::inventory::{EXAMPLE, Inventory};

    #[test]
    fn the_variable_is_named_and_a_key_is_refused() {
        assert_eq!(
            Inventory::from_toml(EXAMPLE).unwrap().root_key,
            RootKeyConfig::File(None)
        );
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nfile = \"/etc/custos/root.key\"\n"
        ))
        .unwrap();
        let dir = std::path::Path::new("/data");
        assert_eq!(
            inv.root_key.key_file(dir, &dir.join("root.key")),
            Some("/etc/custos/root.key".into())
        );
        assert_eq!(
            RootKeyConfig::File(None).key_file(dir, &dir.join("root.key")),
            Some("/data/root.key".into())
        );
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nenv = \"CUSTOS_ROOT_KEY\"\n"
        ))
        .unwrap();
        assert_eq!(inv.root_key, RootKeyConfig::Env("CUSTOS_ROOT_KEY".into()));
        let e = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nenv = \"custos-root-key-v1 1 00ff\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.problems[0].path, "root_key.env");
        assert!(!e.to_string().contains("00ff"), "{e}");
    }

    #[test]
    fn a_token_is_named_by_module_label_and_the_pins_place() {
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key.pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
             token = \"custos\"\npin_env = \"CUSTOS_TOKEN_PIN\"\n"
        ))
        .unwrap();
        let RootKeyConfig::Pkcs11(t) = inv.root_key else {
            panic!("a token")
        };
        assert_eq!(t.token, "custos");
        assert_eq!(t.label, "custos-root");
        assert_eq!(t.pin, PinSource::Env("CUSTOS_TOKEN_PIN".into()));
        for (body, path) in [
            (
                "module = \"libsofthsm2.so\"\ntoken = \"custos\"\npin_env = \"PIN\"\n",
                "root_key.pkcs11.module",
            ),
            (
                "module = \"/m.so\"\ntoken = \"custos\"\npin_env = \"1234\"\n",
                "root_key.pkcs11.pin_env",
            ),
            (
                "module = \"/m.so\"\ntoken = \"custos\"\n",
                "root_key.pkcs11",
            ),
            (
                "module = \"/m.so\"\ntoken = \"custos\"\npin_env = \"PIN\"\npin_file = \"/p\"\n",
                "root_key.pkcs11",
            ),
            (
                "module = \"/m.so\"\ntoken = \"\"\npin_env = \"PIN\"\n",
                "root_key.pkcs11.token",
            ),
            (
                "module = \"/m.so\"\ntoken = \"t\"\npin_env = \"PIN\"\nlabel = \"a b\"\n",
                "root_key.pkcs11.label",
            ),
        ] {
            let e =
                Inventory::from_toml(&format!("{EXAMPLE}\n[root_key.pkcs11]\n{body}")).unwrap_err();
            assert_eq!(e.problems[0].path, path, "{body}");
            assert!(!e.to_string().contains("1234"), "{e}");
        }
        let e = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nenv = \"K\"\n[root_key.pkcs11]\nmodule = \"/m.so\"\n\
             token = \"t\"\npin_env = \"PIN\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.problems[0].path, "root_key");
        // A PIN written as a number where the variable's name belongs is not repeated.
        let e = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key.pkcs11]\nmodule = \"/m.so\"\ntoken = \"t\"\npin_env = 987654\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("[root_key]"), "{e}");
        assert!(!e.to_string().contains("987654"), "{e}");
    }
}
