//! `[root_key]`: where the root key comes from. The key file `root.key` in the data directory
//! by default; `env = "NAME"` reads the same text (one `custos-root-key-v1` line per version)
//! from an environment variable instead, for platforms that hand secrets to a process that
//! way. The inventory names the variable, never the key.

use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;

/// `[root_key]` as the file says it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRootKey {
    env: Option<Spanned<String>>,
}

/// Reads `[root_key]`: the environment variable's name, when one is given.
pub(super) fn root_key_env(
    c: &mut Checker<'_>,
    raw: Option<Spanned<RawRootKey>>,
) -> Option<String> {
    let name = raw?.into_inner().env?;
    let ok = name
        .get_ref()
        .chars()
        .enumerate()
        .all(|(i, ch)| ch == '_' || ch.is_ascii_uppercase() || (i > 0 && ch.is_ascii_digit()))
        && !name.get_ref().is_empty();
    if ok {
        Some(name.into_inner())
    } else {
        c.report(
            c.line(&name),
            "root_key.env",
            "is not an environment variable's name (upper-case letters, digits and _, as CUSTOS_ROOT_KEY); write the name, never the key",
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::inventory::{EXAMPLE, Inventory};

    #[test]
    fn the_variable_is_named_and_a_key_is_refused() {
        assert_eq!(Inventory::from_toml(EXAMPLE).unwrap().root_key_env, None);
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nenv = \"CUSTOS_ROOT_KEY\"\n"
        ))
        .unwrap();
        assert_eq!(inv.root_key_env.as_deref(), Some("CUSTOS_ROOT_KEY"));
        let e = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[root_key]\nenv = \"custos-root-key-v1 1 00ff\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.problems[0].path, "root_key.env");
        assert!(!e.to_string().contains("00ff"), "{e}");
    }
}
