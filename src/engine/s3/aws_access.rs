//! The requests of an `s3-check`'s permission probes and replica comparison on the real S3
//! API: one permission tried at a time (a denial is an answer, not an error), every version
//! of the probe object removed afterwards, listings a page at a time, an object's
//! replication status.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::aws::{AwsStore, code, error_status, timestamp};
use super::{ObjectInfo, ProbeAnswer, S3Error};
use crate::runbook::Permission;

/// S3's answers that mean "this identity may not": the permission probe's "denied".
const DENIALS: [&str; 3] = ["AccessDenied", "AllAccessDisabled", "AccessControlListNotSupported"];
/// S3's answers that mean the identity itself is wrong: an error, not a denial.
const BAD_KEYS: [&str; 3] = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"];

impl AwsStore {
    /// Tries one permission with a real request on `key` (a probe object; `list` lists
    /// `prefix` with one key). `Denied` carries S3's error code.
    pub async fn try_permission(
        &self,
        permission: Permission,
        bucket: &str,
        prefix: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ProbeAnswer, S3Error> {
        let client = &self.client;
        let operation = permission.operation();
        let answer = match permission {
            Permission::List => client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .max_keys(1)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.denial(e, bucket, operation)),
            Permission::Put => client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("text/plain")
                .body(aws_sdk_s3::primitives::ByteStream::from_static(PROBE_BODY))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.denial(e, bucket, operation)),
            Permission::Get => match client.get_object().bucket(bucket).key(key).send().await {
                // Reading the body is not needed: S3 decided when it answered 200.
                Ok(_) => Ok(()),
                Err(e) => Err(self.denial(e, bucket, operation)),
            },
            Permission::Delete => client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.denial(e, bucket, operation)),
            Permission::DeleteVersion => client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .version_id(version.unwrap_or("null"))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.denial(e, bucket, operation)),
        };
        match answer {
            Ok(()) => Ok(ProbeAnswer::Allowed),
            Err(Denial::Denied(code)) => Ok(ProbeAnswer::Denied(code)),
            Err(Denial::Error(error)) => Err(error),
        }
    }

    fn denial<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        &self,
        error: SdkError<E, R>,
        bucket: &str,
        operation: &str,
    ) -> Denial {
        let status = error_status(&error);
        match (code(&error), status) {
            (Some(code), _) if DENIALS.contains(&code) => Denial::Denied(code.to_string()),
            (Some(code), _) if BAD_KEYS.contains(&code) => Denial::Error(S3Error::Other(format!(
                "S3 does not accept the probed identity's keys ({code}): check `as` in the runbook"
            ))),
            (None, Some(403)) => Denial::Denied("403 Forbidden".into()),
            _ => Denial::Error(self.error(error, bucket, operation)),
        }
    }

    /// Removes every version and delete marker of `key` (or the object, in a bucket that never
    /// had versioning); returns those it could not remove.
    pub async fn purge(&self, bucket: &str, key: &str) -> Result<Vec<String>, S3Error> {
        let listed = self
            .client
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| self.error(e, bucket, "ListObjectVersions"))?;
        let mut versions: Vec<String> = listed
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .filter_map(|v| v.version_id().map(str::to_string))
            .chain(
                listed
                    .delete_markers()
                    .iter()
                    .filter(|m| m.key() == Some(key))
                    .filter_map(|m| m.version_id().map(str::to_string)),
            )
            .collect();
        if versions.is_empty() {
            versions.push("null".into());
        }
        let mut left = Vec::new();
        for version in versions {
            let deleted = self.client.delete_object().bucket(bucket).key(key).version_id(&version).send().await;
            if let Err(error) = deleted {
                left.push(format!(
                    "s3://{bucket}/{key} version {version} ({})",
                    self.error(error, bucket, "DeleteObject")
                ));
            }
        }
        Ok(left)
    }

    /// One page of a listing (at most 1,000 keys, in key order) and the token of the next.
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<ObjectInfo>, Option<String>), S3Error> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.error(e, bucket, "ListObjectsV2"))?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|object| {
                Some(ObjectInfo {
                    key: object.key()?.to_string(),
                    version_id: None,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    last_modified: timestamp(object.last_modified()),
                    etag: object.e_tag().map(str::to_string),
                    is_latest: true,
                })
            })
            .collect();
        let next =
            if page.is_truncated() == Some(true) { page.next_continuation_token().map(str::to_string) } else { None };
        Ok((objects, next))
    }

    /// `x-amz-replication-status` of an object (`COMPLETED`, `PENDING`, `FAILED`, `REPLICA`).
    pub async fn replication_status(&self, bucket: &str, key: &str) -> Result<Option<String>, S3Error> {
        let head = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.object_error(e, bucket, key, "HeadObject"))?;
        Ok(head.replication_status().map(|s| s.as_str().to_string()))
    }
}

enum Denial {
    Denied(String),
    Error(S3Error),
}

/// What a `put` probe writes: says what it is to anyone who finds it.
pub const PROBE_BODY: &[u8] = b"drillbook s3-check permission probe: safe to delete\n";
