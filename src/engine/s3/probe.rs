//! Least privilege, by probe: an `s3-check` with `as`, `can` and `cannot` tries every
//! permission with a real request as that identity, and only ever on a probe object the step
//! owns (`PREFIX.drillbook-probe/DRILL-ID`). No real backup is read, overwritten or deleted:
//! `get` and the deletes target the probe (written with the step's own credentials first when
//! the identity may not write it), `list` lists the prefix with one key. Afterwards the step
//! removes the probe and every version of it with its own credentials.

use super::aws_access::PROBE_BODY;
use super::{ProbeAnswer, S3Error, Store, StoreConfig};
use crate::drill::evidence::ProbeResult;
use crate::runbook::Permission;

/// Whose permissions are probed. The secret never leaves this value but for the S3 client:
/// its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub enum Identity {
    Keys { access_key_id: String, secret_access_key: String },
    Profile(String),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Identity {
    /// How evidence names it: the access key id masked to its last 4 characters, or the profile.
    pub fn label(&self) -> String {
        match self {
            Identity::Keys { access_key_id, .. } => {
                let chars: Vec<char> = access_key_id.chars().collect();
                let last: String = chars[chars.len().saturating_sub(4)..].iter().collect();
                format!("key …{last}")
            }
            Identity::Profile(profile) => format!("profile {profile}"),
        }
    }
}

/// `as` + `can` + `cannot`, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub identity: Identity,
    pub can: Vec<Permission>,
    pub cannot: Vec<Permission>,
}

/// The probe object of a drill.
pub fn probe_key(prefix: &str, drill_id: &str) -> String {
    format!("{prefix}.drillbook-probe/{drill_id}")
}

/// The order permissions are tried in: reads before deletes, so every delete has a probe.
fn order(permission: Permission) -> u8 {
    match permission {
        Permission::List => 0,
        Permission::Put => 1,
        Permission::Get => 2,
        Permission::DeleteVersion => 3,
        Permission::Delete => 4,
    }
}

/// Probes every permission of `access`, then removes the probe. Returns each probe's result
/// and what could not be removed.
pub async fn run(
    owner: &Store,
    config: &StoreConfig,
    bucket: &str,
    prefix: &str,
    drill_id: &str,
    access: &Access,
) -> Result<(Vec<ProbeResult>, Vec<String>), S3Error> {
    let (keys, profile) = match &access.identity {
        Identity::Keys { access_key_id, secret_access_key } => {
            (Some((access_key_id.clone(), secret_access_key.clone())), None)
        }
        Identity::Profile(profile) => (None, Some(profile.clone())),
    };
    let identity = Store::connect_as(config, keys, profile).await?;
    let key = probe_key(prefix, drill_id);
    let mut wanted: Vec<(Permission, bool)> =
        access.can.iter().map(|p| (*p, true)).chain(access.cannot.iter().map(|p| (*p, false))).collect();
    wanted.sort_by_key(|(p, _)| order(*p));
    let mut results = Vec::new();
    let probed = async {
        for (permission, should_allow) in wanted {
            let mut version = None;
            if matches!(permission, Permission::Get | Permission::Delete | Permission::DeleteVersion) {
                version = ensure_probe(owner, bucket, &key).await?;
            }
            let answer = identity.try_permission(permission, bucket, prefix, &key, version.as_deref()).await?;
            results.push(judge(permission, should_allow, &answer, &access.identity, bucket, prefix, &key));
        }
        Ok::<(), S3Error>(())
    }
    .await;
    // Always clean up, also after an error: the probe must not outlive the step.
    let left = owner.purge(bucket, &key).await.unwrap_or_else(|error| vec![format!("s3://{bucket}/{key} ({error})")]);
    match probed {
        Ok(()) => Ok((results, left)),
        Err(error) if left.is_empty() => Err(error),
        Err(error) => Err(S3Error::Other(format!("{error}; probe left behind: {}", left.join(", ")))),
    }
}

/// Writes the probe with the step's own credentials when it is not there; returns its version.
async fn ensure_probe(owner: &Store, bucket: &str, key: &str) -> Result<Option<String>, S3Error> {
    match owner.head(bucket, key, None).await {
        Ok(head) => return Ok(head.version_id),
        Err(S3Error::NoSuchKey { .. }) => {}
        Err(error) => return Err(error),
    }
    owner.put(bucket, key, PROBE_BODY.to_vec(), "text/plain").await?;
    Ok(owner.head(bucket, key, None).await?.version_id)
}

fn judge(
    permission: Permission,
    should_allow: bool,
    answer: &ProbeAnswer,
    identity: &Identity,
    bucket: &str,
    prefix: &str,
    key: &str,
) -> ProbeResult {
    let target = match permission {
        Permission::List => format!("s3://{bucket}/{prefix}"),
        _ => format!("s3://{bucket}/{key}"),
    };
    let (allowed, outcome) = match answer {
        ProbeAnswer::Allowed => (true, "allowed".to_string()),
        ProbeAnswer::Denied(code) => (false, format!("denied ({code})")),
    };
    let who = format!("the probed identity ({})", identity.label());
    let place = format!("{bucket}/{prefix}");
    let finding = match (should_allow, allowed) {
        (true, false) => {
            Some(format!("{who} cannot {}: {} on {target} was {outcome}", permission.name(), permission.operation()))
        }
        (false, true) => Some(match permission {
            Permission::Delete => {
                format!("{who} can delete backups: DeleteObject is allowed on {place} — a leaked key can destroy them")
            }
            Permission::DeleteVersion => format!(
                "{who} can delete old versions: DeleteObject with a versionId is allowed on {place} — a leaked key \
                 can destroy backups for good, versioning does not protect them"
            ),
            Permission::Get => {
                format!("{who} can read backups: GetObject is allowed on {place} — a leaked key exposes every dump")
            }
            Permission::Put => {
                format!(
                    "{who} can write: PutObject is allowed on {place} — a leaked key can plant or overwrite backups"
                )
            }
            Permission::List => format!(
                "{who} can list: ListObjectsV2 is allowed on {place} — a leaked key shows what the bucket holds"
            ),
        }),
        _ => None,
    };
    ProbeResult {
        permission: permission.name().to_string(),
        identity: identity.label(),
        request: format!("{} {target}", permission.operation()),
        expected: if should_allow { "allowed" } else { "denied" }.to_string(),
        outcome,
        ok: finding.is_none(),
        finding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_shows_only_the_last_four_characters_of_its_key() {
        let identity =
            Identity::Keys { access_key_id: "AKIAEXAMPLEKEY1234".into(), secret_access_key: "s3cr3t-value".into() };
        assert_eq!(identity.label(), "key …1234");
        assert!(!format!("{identity:?}").contains("s3cr3t"));
        assert!(!format!("{identity:?}").contains("AKIAEXAMPLE"));
    }

    #[test]
    fn a_cannot_that_is_allowed_is_a_finding_in_words() {
        let identity = Identity::Profile("shop-backup".into());
        let key = probe_key("shop/", "d1");
        assert_eq!(key, "shop/.drillbook-probe/d1");
        let result =
            judge(Permission::Delete, false, &ProbeAnswer::Allowed, &identity, "shop-hosting-services", "shop/", &key);
        assert!(!result.ok);
        assert_eq!(
            result.finding.as_deref(),
            Some(
                "the probed identity (profile shop-backup) can delete backups: DeleteObject is allowed on \
                 shop-hosting-services/shop/ — a leaked key can destroy them"
            )
        );
        let denied =
            judge(Permission::List, true, &ProbeAnswer::Denied("AccessDenied".into()), &identity, "b", "shop/", &key);
        assert_eq!(
            denied.finding.as_deref(),
            Some(
                "the probed identity (profile shop-backup) cannot list: ListObjectsV2 on s3://b/shop/ was denied (AccessDenied)"
            )
        );
        let fine = judge(Permission::Get, false, &ProbeAnswer::Denied("AccessDenied".into()), &identity, "b", "", &key);
        assert!(fine.ok && fine.finding.is_none());
    }
}
