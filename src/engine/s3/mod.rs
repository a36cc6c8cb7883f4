//! S3: find, pick, download and verify backups (`s3-backup`), and check
//! how a bucket is provisioned (`s3-check`). The bucket sits behind
//! [`Store`]: the real S3 API (aws-sdk-s3, any S3-compatible endpoint) or a
//! local directory that behaves like a versioned bucket (`file://` endpoint:
//! the sandbox for demo and training). Both pass the same tests.

pub mod aws;
mod aws_access;
pub mod backup;
pub mod check;
pub mod dir;
pub mod download;
pub mod probe;
pub mod replica;

use std::path::PathBuf;

use bytes::Bytes;
use jiff::Timestamp;

/// One object (or one version of one) in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub version_id: Option<String>,
    pub size: u64,
    pub last_modified: Timestamp,
    pub etag: Option<String>,
    /// False for older versions of a key.
    pub is_latest: bool,
}

/// A full-object checksum S3 stores with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha256(String),
    Crc32c(String),
    Crc64Nvme(String),
}

impl Checksum {
    pub fn name(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "SHA-256",
            Checksum::Crc32c(_) => "CRC32C",
            Checksum::Crc64Nvme(_) => "CRC64NVME",
        }
    }

    pub fn expected(&self) -> &str {
        match self {
            Checksum::Sha256(v) | Checksum::Crc32c(v) | Checksum::Crc64Nvme(v) => v,
        }
    }
}

/// What HEAD says about the object to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub last_modified: Option<Timestamp>,
    /// Only full-object checksums: a composite (multipart) checksum does not
    /// describe the file as a whole.
    pub checksum: Option<Checksum>,
    /// Encrypted with SSE-KMS or SSE-C: then the ETag is not an MD5 of the data.
    pub etag_is_not_md5: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(
        "no AWS credentials found ({0}): set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
    )]
    NoCredentials(String),
    #[error("access denied: {operation} on s3://{bucket}")]
    AccessDenied { bucket: String, operation: String },
    #[error("no such bucket: s3://{0}")]
    NoSuchBucket(String),
    #[error("no such object: s3://{bucket}/{key}")]
    NoSuchKey { bucket: String, key: String },
    #[error(
        "the object s3://{bucket}/{key} changed while it was being downloaded (its ETag no longer matches); run the step again"
    )]
    Changed { bucket: String, key: String },
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// An object's bytes stopped coming mid-stream.
    #[error("cannot reach {endpoint}: {source}")]
    Body {
        endpoint: String,
        #[source]
        source: BodyError,
    },
    #[error("{operation} on s3://{bucket} failed: {detail}")]
    Service { bucket: String, operation: String, detail: String },
    #[error("s3://{bucket}/{key} is archived ({detail}): restore it from Glacier first, or choose another backup")]
    Archived { bucket: String, key: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

impl S3Error {
    /// Worth trying again (the server or network hiccuped).
    pub fn is_transient(&self) -> bool {
        matches!(self, S3Error::Unreachable { .. } | S3Error::Body { .. } | S3Error::Service { .. })
    }
}

/// Why reading an object's bytes failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Aws(#[from] aws_sdk_s3::primitives::ByteStreamError),
    #[error(transparent)]
    File(#[from] std::io::Error),
}

/// A stream of an object's bytes.
pub enum Body {
    Aws(aws_sdk_s3::primitives::ByteStream),
    File(tokio::io::Take<tokio::fs::File>),
    Memory(Option<Bytes>),
}

impl Body {
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        match self {
            Body::Aws(stream) => Ok(stream.next().await.transpose()?),
            Body::Memory(bytes) => Ok(bytes.take()),
            Body::File(file) => {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 256 * 1024];
                let read = file.read(&mut buf).await?;
                if read == 0 {
                    return Ok(None);
                }
                buf.truncate(read);
                Ok(Some(Bytes::from(buf)))
            }
        }
    }
}

/// How S3 answered one permission probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    Allowed,
    /// With S3's error code (`AccessDenied`).
    Denied(String),
}

/// The condition of a conditional PUT (coordination through the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object's ETag is this one (`If-Match`).
    Matches(String),
}

/// Where the objects are.
#[derive(Clone)]
pub enum Store {
    Aws(aws::AwsStore),
    Dir(dir::DirStore),
}

/// How to reach a store: endpoint (`file://…` is the sandbox), profile, region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Store {
    pub async fn connect(config: &StoreConfig) -> Result<Store, S3Error> {
        let endpoint =
            config.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty()));
        if let Some(path) = endpoint.as_deref().and_then(|e| e.strip_prefix("file://")) {
            return Ok(Store::Dir(dir::DirStore::new(PathBuf::from(path))));
        }
        Ok(Store::Aws(aws::AwsStore::connect(endpoint, config.profile.clone(), config.region.clone()).await?))
    }

    /// The same store with requests made as another identity: access keys (id, secret) or a
    /// profile. In the sandbox, the identity's name picks its rights from the bucket settings.
    pub async fn connect_as(
        config: &StoreConfig,
        keys: Option<(String, String)>,
        profile: Option<String>,
    ) -> Result<Store, S3Error> {
        match Store::connect(config).await? {
            Store::Dir(dir) => {
                let name = keys.map(|(id, _)| id).or(profile).unwrap_or_default();
                Ok(Store::Dir(dir.as_identity(&name)))
            }
            Store::Aws(_) => {
                let endpoint = config
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty()));
                let profile = profile.or(config.profile.clone());
                Ok(Store::Aws(aws::AwsStore::connect_with_keys(endpoint, profile, config.region.clone(), keys).await?))
            }
        }
    }

    /// Tries one permission with a real request (see [`probe`]).
    pub async fn try_permission(
        &self,
        permission: crate::runbook::Permission,
        bucket: &str,
        prefix: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ProbeAnswer, S3Error> {
        match self {
            Store::Aws(store) => store.try_permission(permission, bucket, prefix, key, version).await,
            Store::Dir(store) => store.try_permission(permission, bucket, key, version),
        }
    }

    /// Removes every version of `key`; returns what could not be removed.
    pub async fn purge(&self, bucket: &str, key: &str) -> Result<Vec<String>, S3Error> {
        match self {
            Store::Aws(store) => store.purge(bucket, key).await,
            Store::Dir(store) => store.purge(bucket, key),
        }
    }

    /// One page of a listing in key order, and the token of the next page.
    pub async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<ObjectInfo>, Option<String>), S3Error> {
        match self {
            Store::Aws(store) => store.list_page(bucket, prefix, token).await,
            Store::Dir(store) => store.list_page(bucket, prefix, token),
        }
    }

    /// An object's `x-amz-replication-status`.
    pub async fn replication_status(&self, bucket: &str, key: &str) -> Result<Option<String>, S3Error> {
        match self {
            Store::Aws(store) => store.replication_status(bucket, key).await,
            Store::Dir(store) => store.replication_status(bucket, key),
        }
    }

    /// Where requests go, for the status bar and the report.
    pub fn endpoint(&self) -> String {
        match self {
            Store::Aws(store) => store.endpoint(),
            Store::Dir(store) => format!("file://{}", store.root().display()),
        }
    }

    /// Whether the endpoint is custom (not AWS): many S3-compatible servers
    /// serve one stream faster than many ranges.
    pub fn is_custom_endpoint(&self) -> bool {
        match self {
            Store::Aws(store) => store.has_custom_endpoint(),
            Store::Dir(_) => true,
        }
    }

    pub async fn list(&self, bucket: &str, prefix: &str, versions: bool) -> Result<Vec<ObjectInfo>, S3Error> {
        match self {
            Store::Aws(store) => store.list(bucket, prefix, versions).await,
            Store::Dir(store) => store.list(bucket, prefix, versions),
        }
    }

    pub async fn head(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<ObjectHead, S3Error> {
        match self {
            Store::Aws(store) => store.head(bucket, key, version).await,
            Store::Dir(store) => store.head(bucket, key, version),
        }
    }

    /// The object's bytes from `start` (to `end`, inclusive, if given),
    /// failing with [`S3Error::Changed`] if its ETag is no longer `etag`.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        etag: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> Result<Body, S3Error> {
        match self {
            Store::Aws(store) => store.get(bucket, key, version, etag, start, end).await,
            Store::Dir(store) => store.get(bucket, key, version, start, end).await,
        }
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        match self {
            Store::Aws(store) => store.put(bucket, key, body, content_type).await,
            Store::Dir(store) => store.put(bucket, key, &body),
        }
    }

    /// Uploads a file, streamed from disk.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<(), S3Error> {
        match self {
            Store::Aws(store) => store.put_file(bucket, key, path, content_type).await,
            Store::Dir(store) => store.put_file(bucket, key, path),
        }
    }

    /// A conditional PUT; returns the new ETag. A condition that does not hold is
    /// [`S3Error::Changed`].
    pub async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: &PutCondition,
    ) -> Result<Option<String>, S3Error> {
        match self {
            Store::Aws(store) => store.put_if(bucket, key, body, content_type, condition).await,
            Store::Dir(store) => store.put_if(bucket, key, &body, condition),
        }
    }

    /// An object's ETag now (`None`: no such object).
    pub async fn etag(&self, bucket: &str, key: &str) -> Result<Option<String>, S3Error> {
        match self {
            Store::Aws(store) => match store.head(bucket, key, None).await {
                Ok(head) => Ok(head.etag),
                Err(S3Error::NoSuchKey { .. }) => Ok(None),
                Err(error) => Err(error),
            },
            Store::Dir(store) => Ok(store.etag(bucket, key)),
        }
    }

    pub async fn properties(&self, bucket: &str, wanted: &check::Wanted) -> Result<check::BucketProperties, S3Error> {
        match self {
            Store::Aws(store) => store.properties(bucket, wanted).await,
            Store::Dir(store) => store.properties(bucket),
        }
    }
}
