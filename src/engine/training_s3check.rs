//! The sandbox of an `s3-check` in training: every bucket it names exists and is provisioned
//! as the provisioning page asks (versioned, encrypted, public access blocked, ACLs disabled),
//! and two findings are planted so `drillbook demo` shows what one looks like: the probed
//! identity may also delete, and the replica misses two of its source's objects.

use std::path::Path;

use crate::runbook::S3CheckSpec;

/// Objects of a sandbox replica's source; the replica misses [`MISSING`] of them.
const ASSETS: [&str; 6] = [
    "images/hero.jpg",
    "images/logo.png",
    "media/2026/q3-report.pdf",
    "media/2026/team.jpg",
    "uploads/site-header.png",
    "uploads/pricing.png",
];
const MISSING: [&str; 2] = ["media/2026/team.jpg", "uploads/pricing.png"];

/// What the sandbox's probed identities may do: list and write, as they should, and delete,
/// as they should not.
const IDENTITY_RIGHTS: [&str; 3] = ["list", "put", "delete"];

/// Seeds what `spec` reads; `render` gives a template's value. Returns what it made.
pub fn seed(
    spec: &S3CheckSpec,
    render: &dyn Fn(&crate::runbook::Template) -> Option<String>,
    s3: &Path,
) -> std::io::Result<Vec<String>> {
    let mut made = Vec::new();
    let Some(bucket) = render(&spec.bucket) else { return Ok(made) };
    let mut settings = provisioned();
    if let Some(access) = &spec.access {
        let name = match &access.identity {
            crate::runbook::ProbeIdentity::Keys { access_key_id, .. } => render(access_key_id),
            crate::runbook::ProbeIdentity::Profile(profile) => render(profile),
        };
        if let Some(name) = name {
            settings["identities"] = serde_json::json!({ name.clone(): IDENTITY_RIGHTS });
            made.push(format!("sandbox identity `{name}` may {} (a finding to see)", IDENTITY_RIGHTS.join(", ")));
        }
    }
    let existed = s3.join(&bucket).exists();
    if write_settings(&s3.join(&bucket), &settings, false)? && !existed {
        made.push(format!("sandbox bucket `{bucket}`"));
    }
    for (other, role) in
        [(&spec.same_as, "same"), (&spec.other_region_than, "region"), (&spec.replicated_from, "source")]
    {
        let Some(other) = other.as_ref().and_then(render) else { continue };
        // The sandbox is provisioned as the page asks: the source in another region, with a
        // replication rule writing to this bucket.
        let mut settings = provisioned();
        if role != "same" {
            settings["region"] = serde_json::json!("sandbox-primary");
        }
        if role == "source" {
            settings["replication_destinations"] = serde_json::json!([bucket]);
        }
        let existed = s3.join(&other).join(".bucket.json").exists();
        if !existed {
            write_settings(&s3.join(&other), &settings, true)?;
            made.push(format!("sandbox bucket `{other}`"));
        }
    }
    if let Some(replica) = &spec.replica
        && let Some(source) = render(&replica.source)
    {
        let prefix = spec.prefix.as_ref().and_then(render).unwrap_or_default();
        let source_dir = s3.join(&source);
        let seeded = source_dir.join(format!("{prefix}{}", ASSETS[0])).exists();
        if !seeded {
            let mut source_settings = provisioned();
            source_settings["region"] = serde_json::json!("sandbox-primary");
            source_settings["replication_destinations"] = serde_json::json!([bucket]);
            write_settings(&source_dir, &source_settings, true)?;
            for key in ASSETS {
                put(&source_dir, &format!("{prefix}{key}"))?;
                if !MISSING.contains(&key) {
                    put(&s3.join(&bucket), &format!("{prefix}{key}"))?;
                }
            }
            made.push(format!(
                "sandbox replica `{bucket}` of `{source}`, missing {} objects (a finding to see)",
                MISSING.len()
            ));
        }
    }
    Ok(made)
}

fn provisioned() -> serde_json::Value {
    serde_json::json!({
        "versioning": true,
        "encryption": true,
        "public_access_blocked": true,
        "ownership_enforced": true,
        "ownership": "BucketOwnerEnforced",
    })
}

/// Writes the bucket's settings unless it has some (`replace`: always); true when written.
fn write_settings(dir: &Path, settings: &serde_json::Value, replace: bool) -> std::io::Result<bool> {
    let path = dir.join(".bucket.json");
    if path.exists() && !replace {
        // A bucket the sandbox already made (the backups): add the identities only.
        if let Some(identities) = settings.get("identities") {
            let mut current: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path)?).unwrap_or_else(|_| provisioned());
            current["identities"] = identities.clone();
            std::fs::write(&path, serde_json::to_vec_pretty(&current)?)?;
        }
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, serde_json::to_vec_pretty(settings)?)?;
    Ok(true)
}

/// Writes an object uploaded days ago: older than any `max_lag`, so what the replica misses
/// is missing, not in flight.
fn put(dir: &Path, key: &str) -> std::io::Result<()> {
    const AGE: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, format!("sandbox object {key}\n"))?;
    let uploaded = std::time::SystemTime::now().checked_sub(AGE).unwrap_or(std::time::UNIX_EPOCH);
    std::fs::File::options().write(true).open(&path)?.set_modified(uploaded)
}
