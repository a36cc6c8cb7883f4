//! The sandbox bucket: a local directory that behaves like a versioned S3
//! bucket, for `demo` and training. `<root>/<bucket>/<key>` is the current
//! version of a key; older versions live in
//! `<root>/<bucket>/.versions/<key>/<version-id>`; a version id is the
//! file's modification time in nanoseconds; bucket settings (for
//! `s3-check`) come from `<root>/<bucket>/.bucket.json`, which may also
//! say what each probed identity may do (`"identities": {"KEY-ID or
//! profile": ["list", "put"]}`; an identity it does not name may do all).

use std::path::{Path, PathBuf};

use base64::Engine;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::check::{BucketProperties, Prop};
use super::{Body, Checksum, ObjectHead, ObjectInfo, ProbeAnswer, S3Error};
use crate::runbook::Permission;

const VERSIONS: &str = ".versions";
const SETTINGS: &str = ".bucket.json";

#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
    /// The identity requests are made as (an `s3-check`'s `as`); `None`: the owner.
    identity: Option<String>,
}

impl DirStore {
    pub fn new(root: PathBuf) -> Self {
        DirStore { root, identity: None }
    }

    /// The same sandbox, with requests made as `identity` (an access key id or a profile).
    pub fn as_identity(&self, identity: &str) -> Self {
        DirStore { root: self.root.clone(), identity: Some(identity.to_string()) }
    }

    fn settings(&self, bucket: &str) -> Result<serde_json::Value, S3Error> {
        let dir = self.bucket_dir(bucket)?;
        Ok(std::fs::read_to_string(dir.join(SETTINGS))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// The sandbox's answer to one permission probe, doing what the request would.
    pub fn try_permission(
        &self,
        permission: Permission,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ProbeAnswer, S3Error> {
        let settings = self.settings(bucket)?;
        let allowed = match (&self.identity, settings.get("identities")) {
            (Some(identity), Some(identities)) => identities
                .get(identity)
                .and_then(|list| list.as_array())
                .is_none_or(|list| list.iter().any(|p| p.as_str() == Some(permission.name()))),
            _ => true,
        };
        if !allowed {
            return Ok(ProbeAnswer::Denied("AccessDenied".into()));
        }
        match permission {
            Permission::List => {}
            Permission::Put => self.put(bucket, key, super::aws_access::PROBE_BODY)?,
            Permission::Get => drop(self.path_of(bucket, key, None)?),
            Permission::Delete => self.remove(bucket, key, None),
            Permission::DeleteVersion => self.remove(bucket, key, version),
        }
        Ok(ProbeAnswer::Allowed)
    }

    fn remove(&self, bucket: &str, key: &str, version: Option<&str>) {
        if let Ok(path) = self.path_of(bucket, key, version) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Removes `key` and all its versions; returns what could not be removed.
    pub fn purge(&self, bucket: &str, key: &str) -> Result<Vec<String>, S3Error> {
        let dir = self.bucket_dir(bucket)?;
        let mut left = Vec::new();
        for path in [dir.join(key), dir.join(VERSIONS).join(key)] {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    left.push(format!("{} ({error})", path.display()))
                }
                _ => {}
            }
        }
        Ok(left)
    }

    /// One page of a listing in key order: the token is the last key of the page before.
    pub fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<ObjectInfo>, Option<String>), S3Error> {
        const PAGE: usize = 1000;
        let mut objects: Vec<ObjectInfo> = self
            .list(bucket, prefix, false)?
            .into_iter()
            .filter(|o| token.as_ref().is_none_or(|after| o.key.as_str() > after.as_str()))
            .collect();
        let next = (objects.len() > PAGE).then(|| objects[PAGE - 1].key.clone());
        objects.truncate(PAGE);
        Ok((objects, next))
    }

    /// The sandbox's replication status of an object: `"replication_failed": [KEY…]` in the
    /// source bucket's settings says which failed; the others completed.
    pub fn replication_status(&self, bucket: &str, key: &str) -> Result<Option<String>, S3Error> {
        self.path_of(bucket, key, None)?;
        let failed = self
            .settings(bucket)?
            .get("replication_failed")
            .and_then(|f| f.as_array())
            .is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(key)));
        Ok(Some(if failed { "FAILED" } else { "COMPLETED" }.into()))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, S3Error> {
        let dir = self.root.join(bucket);
        if bucket.contains('/') || bucket.starts_with('.') || !dir.is_dir() {
            return Err(S3Error::NoSuchBucket(bucket.to_string()));
        }
        Ok(dir)
    }

    pub fn list(&self, bucket: &str, prefix: &str, versions: bool) -> Result<Vec<ObjectInfo>, S3Error> {
        let dir = self.bucket_dir(bucket)?;
        let mut objects = Vec::new();
        walk(&dir, &dir, &mut |key, path| {
            if key.starts_with(prefix) {
                objects.push(info(key, path, true)?);
            }
            Ok(())
        })?;
        if versions {
            let versions_dir = dir.join(VERSIONS);
            if versions_dir.is_dir() {
                walk(&versions_dir, &versions_dir, &mut |relative, path| {
                    // `<key>/<version-id>`
                    let Some((key, _)) = relative.rsplit_once('/') else { return Ok(()) };
                    if key.starts_with(prefix) {
                        objects.push(info(key, path, false)?);
                    }
                    Ok(())
                })?;
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key).then(b.last_modified.cmp(&a.last_modified)));
        Ok(objects)
    }

    fn path_of(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<PathBuf, S3Error> {
        let dir = self.bucket_dir(bucket)?;
        if key.split('/').any(|part| part == ".." || part.is_empty()) || key.starts_with(VERSIONS) {
            return Err(S3Error::NoSuchKey { bucket: bucket.into(), key: key.into() });
        }
        let current = dir.join(key);
        let path = match version {
            Some(version) if current.is_file() && version_id(&current).as_deref() == Some(version) => current,
            Some(version) => dir.join(VERSIONS).join(key).join(version),
            None => current,
        };
        if path.is_file() { Ok(path) } else { Err(S3Error::NoSuchKey { bucket: bucket.into(), key: key.into() }) }
    }

    pub fn head(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<ObjectHead, S3Error> {
        let path = self.path_of(bucket, key, version)?;
        let object = info(key, &path, version.is_none())?;
        // A sandbox object carries a full-object SHA-256, like an upload
        // made with `--checksum-algorithm SHA256`.
        let mut hasher = Sha256::new();
        let mut file = std::fs::File::open(&path).map_err(|source| S3Error::Io { path: path.clone(), source })?;
        std::io::copy(&mut file, &mut hasher).map_err(|source| S3Error::Io { path: path.clone(), source })?;
        let checksum = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
        Ok(ObjectHead {
            size: object.size,
            etag: None,
            version_id: object.version_id,
            last_modified: Some(object.last_modified),
            checksum: Some(Checksum::Sha256(checksum)),
            etag_is_not_md5: false,
        })
    }

    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> Result<Body, S3Error> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(bucket, key, version)?;
        let mut file =
            tokio::fs::File::open(&path).await.map_err(|source| S3Error::Io { path: path.clone(), source })?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|source| S3Error::Io { path: path.clone(), source })?;
        // Streamed in chunks either way, so memory stays bounded for any range.
        let limit = end.map_or(u64::MAX, |end| (end + 1).saturating_sub(start));
        Ok(Body::File(file.take(limit)))
    }

    /// Writes a small object (a report) as the current version of `key`.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), S3Error> {
        let path = self.bucket_dir(bucket)?.join(key);
        let io = |source| S3Error::Io { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, body).map_err(io)
    }

    /// Copies a file in.
    pub fn put_file(&self, bucket: &str, key: &str, source: &Path) -> Result<(), S3Error> {
        let path = self.bucket_dir(bucket)?.join(key);
        let io = |e| S3Error::Io { path: path.clone(), source: e };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::copy(source, &path).map(|_| ()).map_err(io)
    }

    /// A conditional PUT; the sandbox's ETag is the SHA-256 of the content. Checked, then
    /// written: good enough for a sandbox one machine uses, not a lock between processes.
    pub fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        condition: &super::PutCondition,
    ) -> Result<Option<String>, S3Error> {
        let path = self.bucket_dir(bucket)?.join(key);
        let current = std::fs::read(&path).ok().map(|bytes| content_etag(&bytes));
        let holds = match condition {
            super::PutCondition::Absent => current.is_none(),
            super::PutCondition::Matches(etag) => current.as_deref() == Some(etag.trim_matches('"')),
        };
        if !holds {
            return Err(S3Error::Changed { bucket: bucket.to_string(), key: key.to_string() });
        }
        self.put(bucket, key, body)?;
        Ok(Some(content_etag(body)))
    }

    /// The sandbox's ETag of an object.
    pub fn etag(&self, bucket: &str, key: &str) -> Option<String> {
        let path = self.bucket_dir(bucket).ok()?.join(key);
        std::fs::read(path).ok().map(|bytes| content_etag(&bytes))
    }

    pub fn properties(&self, bucket: &str) -> Result<BucketProperties, S3Error> {
        let dir = self.bucket_dir(bucket)?;
        let settings: serde_json::Value = std::fs::read_to_string(dir.join(SETTINGS))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let flag = |name: &str| Prop::Known(settings.get(name).and_then(|v| v.as_bool()).unwrap_or(false));
        let destinations: Vec<String> = settings
            .get("replication_destinations")
            .and_then(|v| v.as_array())
            .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok(BucketProperties {
            region: Prop::Known(settings.get("region").and_then(|v| v.as_str()).unwrap_or("sandbox").to_string()),
            versioning: Prop::Known(
                settings.get("versioning").and_then(|v| v.as_bool()).unwrap_or_else(|| dir.join(VERSIONS).is_dir()),
            ),
            encryption: flag("encryption"),
            encryption_algorithm: None,
            public_access_blocked: flag("public_access_blocked"),
            replication: Prop::Known(!destinations.is_empty()),
            replication_destinations: destinations,
            ownership_enforced: flag("ownership_enforced"),
            ownership: settings.get("ownership").and_then(|v| v.as_str()).map(str::to_string),
            object_lock: flag("object_lock"),
            object_lock_retention: settings.get("object_lock_retention").and_then(|v| v.as_str()).map(str::to_string),
        })
    }
}

fn version_id(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let nanos = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(nanos.to_string())
}

fn info(key: &str, path: &Path, is_latest: bool) -> Result<ObjectInfo, S3Error> {
    let metadata = std::fs::metadata(path).map_err(|source| S3Error::Io { path: path.to_path_buf(), source })?;
    let modified = metadata.modified().map_err(|source| S3Error::Io { path: path.to_path_buf(), source })?;
    let last_modified = Timestamp::try_from(modified).unwrap_or(Timestamp::UNIX_EPOCH);
    let version_id =
        if is_latest { version_id(path) } else { path.file_name().map(|n| n.to_string_lossy().into_owned()) };
    Ok(ObjectInfo { key: key.to_string(), version_id, size: metadata.len(), last_modified, etag: None, is_latest })
}

/// Calls `visit(key, path)` for every file below `dir`, skipping the
/// versions and settings entries at the top.
fn walk(top: &Path, dir: &Path, visit: &mut dyn FnMut(&str, &Path) -> Result<(), S3Error>) -> Result<(), S3Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| S3Error::Io { path: dir.to_path_buf(), source })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(top) else { continue };
        let key = relative.to_string_lossy().replace('\\', "/");
        if dir == top && (key == VERSIONS || key == SETTINGS) {
            continue;
        }
        if path.is_dir() {
            walk(top, &path, visit)?;
        } else {
            visit(&key, &path)?;
        }
    }
    Ok(())
}

fn content_etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
