//! The test helpers every section's tests share: change the example, read the problems.

use super::{EXAMPLE, Inventory};

/// Replaces `from` in the example with `to`, and returns the messages of the problems.
pub(super) fn problems_after(from: &str, to: &str) -> Vec<String> {
    assert!(EXAMPLE.contains(from), "{from}");
    let text = EXAMPLE.replacen(from, to, 1);
    Inventory::from_toml(&text)
        .unwrap_err()
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// Replacing `from` with `to` in the example yields exactly the problems `expect`, in order,
/// each containing its expected text.
pub(super) fn check(from: &str, to: &str, expect: &[&str]) {
    let got = problems_after(from, to);
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expect) {
        assert!(g.contains(e), "{g:?} should contain {e:?}");
    }
}
