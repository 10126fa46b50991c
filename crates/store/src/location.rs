//! Where a store lives: [`Location`] parsed from a URL, shown without its password.

use crate::error::StoreError;

/// Where a store lives, parsed from a URL. An unknown scheme is an error, never a silently
/// created file.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL (which may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Shows the location with any password in a URL replaced by `***`.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// A `scheme://[userinfo@]host[/path][?query]` URL cut into its parts, without decoding.
pub(crate) struct UrlParts<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host: &'a str,
    /// The path and query, from the first `/` or `?` on.
    pub(crate) tail: &'a str,
}

impl<'a> UrlParts<'a> {
    pub(crate) fn split(url: &'a str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        Self {
            scheme,
            userinfo,
            host,
            tail,
        }
    }
}

/// `scheme://user:secret@host/db` becomes `scheme://user:***@host/db`; a `password=`
/// query parameter is hidden too.
fn redact_password(url: &str) -> String {
    let u = UrlParts::split(url);
    let userinfo = match u.userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{info}@"),
        },
        None => String::new(),
    };
    let tail = match u.tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => u.tail.to_owned(),
    };
    format!("{}://{userinfo}{}{tail}", u.scheme, u.host)
}

impl Location {
    /// Parses `sqlite://PATH` (or `sqlite:PATH`), or `postgres://...` / `postgresql://...`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] naming the schemes understood.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::Backend("the sqlite URL names no file".into()));
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        Err(StoreError::Backend(format!(
            "unknown database URL scheme {:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE",
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                scheme
            } else {
                "?"
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("sqlite://data/custos.db").unwrap(),
            Location::Sqlite("data/custos.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:/tmp/x.db").unwrap(),
            Location::Sqlite("/tmp/x.db".into())
        );
        let e = Location::parse("mysql://localhost/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown database URL scheme \"mysql\""), "{e}");
        assert!(Location::parse("custos.db").is_err());
        assert!(Location::parse("sqlite://").is_err());
        assert_eq!(
            Location::parse("postgres://u@h/db").unwrap(),
            Location::Postgres("postgres://u@h/db".into())
        );
    }

    #[test]
    fn a_location_never_shows_its_password() {
        for (url, shown) in [
            (
                "postgres://u:s3cret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgresql://u:s3cret@h", "postgresql://u:***@h"),
            (
                "postgres://u@h/db?password=s3cret&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
        ] {
            let l = Location::parse(url).unwrap();
            assert_eq!(l.to_string(), shown);
            assert!(!format!("{l:?}").contains("s3cret"));
        }
    }
}
