//! `custos subject export`: everything held about one subject, written to a file only its
//! owner can read, and a line saying what was written (never a value).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use custos_core::ids::SubjectId;
use custos_vault::{ExportFormat, Paths, Principal, Vault};

/// The format `--format` names, else the one `out`'s extension says: zip for `.zip`, JSON
/// otherwise.
fn format_for(out: &Path, format: Option<&str>) -> Result<ExportFormat> {
    match format {
        Some(f) => ExportFormat::parse("--format", f).map_err(|e| anyhow!("--format: {e}")),
        None => Ok(match out.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("zip") => ExportFormat::Zip,
            _ => ExportFormat::Json,
        }),
    }
}

/// Writes `bytes` to `out` with mode 0600: into a new file beside it, then renamed over it,
/// so the export is never readable by others, not even for a moment, whatever was there.
pub(crate) fn write_private(out: &Path, bytes: &[u8]) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} names no file", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", out.display()))
}

/// `custos subject export ID --out FILE [--format json|zip]`.
///
/// # Errors
/// A malformed id, an unknown subject, a vault that cannot be opened, a file that cannot be
/// written.
pub(crate) async fn export(
    paths: &Paths,
    id: &str,
    out: &Path,
    format: Option<&str>,
) -> Result<ExitCode> {
    let subject: SubjectId = id
        .trim()
        .parse()
        .map_err(|_| anyhow!("ID: {id:?} is not a subject id (a UUID)"))?;
    let format = format_for(out, format)?;
    let vault = Vault::open(paths)
        .await
        .with_context(|| format!("opening the vault in {}", paths.dir.display()))?;
    let export = vault
        .export_subject(&Principal::Cli, subject)
        .await
        .with_context(|| format!("exporting subject {subject}"))?;
    let bytes = export.render(format)?;
    write_private(out, bytes.expose_secret())?;
    let records: usize = export.collections.iter().map(|c| c.records.len()).sum();
    println!(
        "wrote {} ({}, {} bytes, mode 0600): subject {subject}, {records} record(s) in {} \
         collection(s), {} consent event(s), {} read(s), {} other act(s)",
        out.display(),
        format.extension(),
        bytes.len(),
        export.collections.len(),
        export.consent_history.len(),
        export.reads.len(),
        export.activity.len(),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_unless_the_format_is_given() {
        let f = |out: &str, given| format_for(Path::new(out), given).unwrap();
        assert_eq!(f("a.zip", None), ExportFormat::Zip);
        assert_eq!(f("A.ZIP", None), ExportFormat::Zip);
        assert_eq!(f("a.json", None), ExportFormat::Json);
        assert_eq!(f("export", None), ExportFormat::Json);
        assert_eq!(f("a.json", Some("zip")), ExportFormat::Zip);
        assert!(format_for(Path::new("a"), Some("xml")).is_err());
    }
}
