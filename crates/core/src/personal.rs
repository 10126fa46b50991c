//! Personal values in memory. A field's value travels from the request body to the cipher and
//! from the cipher to the response in a [`PersonalValue`], which has no `Display`, a `Debug`
//! that prints `PersonalValue([redacted])`, and wipes its strings when dropped; reading it is
//! one explicit call, [`PersonalValue::expose_secret`]. So one `{:?}` in a log line cannot leak
//! a customer's email, and a new use of the value is a visible line in review.
//!
//! It serialises as the plain JSON value it holds: what an API answer returns is exactly the
//! customer's data, and nothing else in the answer can carry it by accident.
//!
//! ```
//! let v = custos_core::personal::PersonalValue::new(serde_json::json!("ada@example.com"));
//! assert_eq!(format!("{v:?}"), "PersonalValue([redacted])");
//! ```
//!
//! ```compile_fail
//! // A personal value cannot be formatted for people: there is no `Display`.
//! let v = custos_core::personal::PersonalValue::new(serde_json::json!("ada@example.com"));
//! println!("{v}");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroize;

/// One personal value: a field's content as JSON.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonalValue(Value);

/// A record's fields by name. Names are declared in the inventory and are not personal; the
/// values are.
pub type PersonalFields = BTreeMap<String, PersonalValue>;

impl PersonalValue {
    /// Wraps a value.
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// A text value, such as a search term from a query string.
    pub fn text(s: impl Into<String>) -> Self {
        Self(Value::String(s.into()))
    }

    /// The value. Every call is a place where a personal value leaves its wrapper: keep them
    /// few, and never pass the result to a log, a metric or an error message.
    pub fn expose_secret(&self) -> &Value {
        &self.0
    }

    /// Whether the value is JSON `null` (a field being removed), which holds nothing personal.
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

impl From<Value> for PersonalValue {
    fn from(value: Value) -> Self {
        Self(value)
    }
}

impl fmt::Debug for PersonalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalValue([redacted])")
    }
}

/// Overwrites every string in a value; numbers and booleans are held inline by `serde_json`
/// and cannot be reached, and are short.
fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(members) => members.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

impl Drop for PersonalValue {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Wraps every value of a JSON object.
pub fn fields_of(map: serde_json::Map<String, Value>) -> PersonalFields {
    map.into_iter()
        .map(|(k, v)| (k, PersonalValue::new(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CANARY: &str = "canary-7f3a@example.com";

    #[test]
    fn debug_never_shows_the_value_however_deep() {
        let v = PersonalValue::new(json!({"lines": [CANARY], "n": 7}));
        let fields: PersonalFields = [("email".to_owned(), v.clone())].into();
        for shown in [format!("{v:?}"), format!("{v:#?}"), format!("{fields:?}")] {
            assert!(!shown.contains("canary"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        // Field names are declared, not personal, and help whoever reads a log.
        assert!(format!("{fields:?}").contains("email"));
    }

    #[test]
    fn it_serialises_as_the_value_and_reads_back() {
        let v = PersonalValue::new(json!({"a": [CANARY, 1, true]}));
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, format!(r#"{{"a":["{CANARY}",1,true]}}"#));
        let back: PersonalValue = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.expose_secret()["a"][0], CANARY);
    }

    #[test]
    fn wiping_clears_every_string() {
        let mut v = json!({"a": [CANARY, {"b": CANARY}], "c": CANARY});
        wipe(&mut v);
        assert!(!v.to_string().contains("canary"), "{v}");
    }
}
