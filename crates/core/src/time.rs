//! Instants as the vault writes them: milliseconds since the Unix epoch, shown as RFC 3339
//! UTC with milliseconds. One formatter, so every entry, receipt and answer agrees.

/// An instant (ms since the epoch) as RFC 3339 UTC with milliseconds; a number out of
/// chrono's range is written as the number itself rather than lost.
pub fn format_time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_time_ms(i64::MAX), i64::MAX.to_string());
    }
}
