//! The real S3 API through aws-sdk-s3: the default credential chain,
//! profiles, regions, and any S3-compatible endpoint (path-style
//! addressing when an endpoint is set, so MinIO, Ceph and moto work).

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{ChecksumMode, ChecksumType};
use jiff::Timestamp;

use super::check::{BucketProperties, Prop, Wanted};
use super::{Body, Checksum, ObjectHead, ObjectInfo, S3Error};

#[derive(Clone)]
pub struct AwsStore {
    pub(super) client: Client,
    endpoint: Option<String>,
    region: Option<String>,
}

impl AwsStore {
    pub async fn connect(
        endpoint: Option<String>,
        profile: Option<String>,
        region: Option<String>,
    ) -> Result<AwsStore, S3Error> {
        AwsStore::connect_with_keys(endpoint, profile, region, None).await
    }

    /// [`AwsStore::connect`] with these access keys instead of the credential chain: the
    /// identity an `s3-check` probes.
    pub async fn connect_with_keys(
        endpoint: Option<String>,
        profile: Option<String>,
        region: Option<String>,
        keys: Option<(String, String)>,
    ) -> Result<AwsStore, S3Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some((access_key_id, secret_access_key)) = keys {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "drillbook s3-check `as`",
            ));
        }
        if let Some(profile) = &profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let region = shared.region().map(|r| r.to_string()).or(region);
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            // The SDK would otherwise print warnings about checksums into the TUI.
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
        if endpoint.is_some() {
            config = config.force_path_style(true);
        }
        if shared.region().is_none() {
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        Ok(AwsStore { client: Client::from_conf(config.build()), endpoint, region })
    }

    pub fn endpoint(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region.as_deref().unwrap_or("us-east-1")))
    }

    pub fn has_custom_endpoint(&self) -> bool {
        self.endpoint.is_some()
    }

    pub async fn list(&self, bucket: &str, prefix: &str, versions: bool) -> Result<Vec<ObjectInfo>, S3Error> {
        let mut objects = Vec::new();
        if versions {
            let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
            loop {
                let output = self
                    .client
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_key_marker(key_marker.clone())
                    .set_version_id_marker(version_marker.clone())
                    .send()
                    .await
                    .map_err(|e| self.error(e, bucket, "ListObjectVersions"))?;
                for version in output.versions() {
                    let Some(key) = version.key() else { continue };
                    objects.push(ObjectInfo {
                        key: key.to_string(),
                        version_id: version.version_id().filter(|v| *v != "null").map(str::to_string),
                        size: version.size().unwrap_or(0).max(0) as u64,
                        last_modified: timestamp(version.last_modified()),
                        etag: version.e_tag().map(str::to_string),
                        is_latest: version.is_latest().unwrap_or(true),
                    });
                }
                if output.is_truncated() != Some(true) {
                    break;
                }
                key_marker = output.next_key_marker().map(str::to_string);
                version_marker = output.next_version_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            }
        } else {
            // The same pages the replica check reads one at a time.
            let mut token = None;
            loop {
                let (page, next) = self.list_page(bucket, prefix, token.take()).await?;
                objects.extend(page);
                match next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
        }
        Ok(objects)
    }

    pub async fn head(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<ObjectHead, S3Error> {
        let output = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.object_error(e, bucket, key, "HeadObject"))?;
        let full_object = !matches!(output.checksum_type(), Some(ChecksumType::Composite));
        let checksum = full_object
            .then(|| {
                output
                    .checksum_sha256()
                    .filter(|v| !v.contains('-'))
                    .map(|v| Checksum::Sha256(v.to_string()))
                    .or_else(|| output.checksum_crc64_nvme().map(|v| Checksum::Crc64Nvme(v.to_string())))
                    .or_else(|| {
                        output.checksum_crc32_c().filter(|v| !v.contains('-')).map(|v| Checksum::Crc32c(v.to_string()))
                    })
            })
            .flatten();
        let kms = output.server_side_encryption().is_some_and(|e| e.as_str().starts_with("aws:kms"));
        Ok(ObjectHead {
            etag_is_not_md5: kms || output.sse_customer_algorithm().is_some(),
            size: output.content_length().unwrap_or(0).max(0) as u64,
            etag: output.e_tag().map(str::to_string),
            version_id: output.version_id().filter(|v| *v != "null").map(str::to_string),
            last_modified: output.last_modified().map(|t| timestamp(Some(t))),
            checksum,
        })
    }

    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        etag: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> Result<Body, S3Error> {
        let range = match (start, end) {
            (0, None) => None,
            (start, None) => Some(format!("bytes={start}-")),
            (start, Some(end)) => Some(format!("bytes={start}-{end}")),
        };
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .set_range(range)
            .set_if_match(etag.map(str::to_string))
            .send()
            .await
            .map_err(|e| self.object_error(e, bucket, key, "GetObject"))?;
        Ok(Body::Aws(output.body))
    }

    /// A client for the region the bucket lives in: the SDK does not follow
    /// S3's cross-region redirects, and `other_region_than` or
    /// `replicated_from` name buckets in other regions by design.
    async fn client_for(&self, bucket: &str) -> Result<Client, S3Error> {
        let region = match self.client.head_bucket().bucket(bucket).send().await {
            Ok(out) => out.bucket_region().map(str::to_string),
            Err(SdkError::ServiceError(service)) if service.raw().status().as_u16() == 301 => {
                service.raw().headers().get("x-amz-bucket-region").map(str::to_string)
            }
            Err(e) => return Err(self.error(e, bucket, "HeadBucket")),
        };
        match region {
            Some(region) if self.endpoint.is_none() && Some(&region) != self.region.as_ref() => {
                let config = self.client.config().to_builder().region(aws_config::Region::new(region)).build();
                Ok(Client::from_conf(config))
            }
            _ => Ok(self.client.clone()),
        }
    }

    pub async fn properties(&self, bucket: &str, wanted: &Wanted) -> Result<BucketProperties, S3Error> {
        // The bucket must exist and be reachable at all: that is an error,
        // not a row of "unknown".
        let regional = self.client_for(bucket).await?;
        let client = &regional;
        let region = match client.get_bucket_location().bucket(bucket).send().await {
            Ok(out) => Prop::Known(
                out.location_constraint()
                    .map(|c| c.as_str().to_string())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "us-east-1".into()),
            ),
            Err(e) => unknown(e),
        };
        let versioning = match client.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => Prop::Known(matches!(out.status(), Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled))),
            // Some S3-compatible servers (moto among them) name the XML root
            // differently, which the SDK refuses; read the status from the
            // answer itself.
            Err(e) if error_status(&e) == Some(200) => match raw_body(&e).and_then(|b| xml_value(&b, "Status")) {
                Some(status) => Prop::Known(status == "Enabled"),
                None if raw_body(&e).is_some() => Prop::Known(false),
                None => unknown(e),
            },
            Err(e) => unknown(e),
        };
        let (encryption, encryption_algorithm) = match client.get_bucket_encryption().bucket(bucket).send().await {
            Ok(out) => {
                let algorithm = out
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .map(|d| d.sse_algorithm().as_str().to_string());
                (Prop::Known(algorithm.is_some()), algorithm)
            }
            Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => (Prop::Known(false), None),
            Err(e) => (unknown(e), None),
        };
        let public_access_blocked = match client.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => Prop::Known(out.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            })),
            Err(e) if code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => Prop::Known(false),
            Err(e) => unknown(e),
        };
        let (replication, replication_destinations) = match client.get_bucket_replication().bucket(bucket).send().await
        {
            Ok(out) => {
                let destinations: Vec<String> = out
                    .replication_configuration()
                    .map(|c| c.rules())
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| matches!(r.status(), aws_sdk_s3::types::ReplicationRuleStatus::Enabled))
                    .filter_map(|r| r.destination())
                    .map(|d| d.bucket().trim_start_matches("arn:aws:s3:::").to_string())
                    .collect();
                (Prop::Known(!destinations.is_empty()), destinations)
            }
            Err(e) if code(&e) == Some("ReplicationConfigurationNotFoundError") => (Prop::Known(false), Vec::new()),
            Err(e) => (unknown(e), Vec::new()),
        };
        let (ownership_enforced, ownership) = match client.get_bucket_ownership_controls().bucket(bucket).send().await {
            Ok(out) => {
                let ownership = out
                    .ownership_controls()
                    .and_then(|c| c.rules().first())
                    .map(|r| r.object_ownership().as_str().to_string());
                (Prop::Known(ownership.as_deref() == Some("BucketOwnerEnforced")), ownership)
            }
            Err(e) if code(&e) == Some("OwnershipControlsNotFoundError") => (Prop::Known(false), None),
            Err(e) => (unknown(e), None),
        };
        let (object_lock, object_lock_retention) = if wanted.object_lock {
            match client.get_object_lock_configuration().bucket(bucket).send().await {
                Ok(out) => {
                    let config = out.object_lock_configuration();
                    let retention = config.and_then(|c| c.rule()).and_then(|r| r.default_retention()).map(|d| {
                        let mode = d.mode().map(|m| m.as_str().to_string()).unwrap_or_else(|| "no mode".into());
                        match (d.days(), d.years()) {
                            (Some(days), _) => format!("{mode}, {days} days"),
                            (_, Some(years)) => format!("{mode}, {years} years"),
                            _ => mode,
                        }
                    });
                    let enabled = config.and_then(|c| c.object_lock_enabled()).is_some_and(|e| e.as_str() == "Enabled");
                    (Prop::Known(enabled), retention)
                }
                Err(e) if code(&e) == Some("ObjectLockConfigurationNotFoundError") => (Prop::Known(false), None),
                Err(e) => (unknown(e), None),
            }
        } else {
            (Prop::Unknown("not read".into()), None)
        };
        Ok(BucketProperties {
            region,
            versioning,
            encryption,
            encryption_algorithm,
            public_access_blocked,
            replication,
            replication_destinations,
            ownership_enforced,
            ownership,
            object_lock,
            object_lock_retention,
        })
    }

    /// Uploads a small object (a report) in one request.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.object_error(e, bucket, key, "PutObject"))?;
        Ok(())
    }

    /// Uploads a file, streamed from disk (a log may be bigger than memory should hold).
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
            .await
            .map_err(|e| S3Error::Other(format!("cannot read {}: {e}", path.display())))?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.object_error(e, bucket, key, "PutObject"))?;
        Ok(())
    }

    /// A conditional PUT (`If-None-Match: *` or `If-Match: ETAG`); returns the new ETag.
    /// A condition that does not hold is [`S3Error::Changed`].
    pub async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: &super::PutCondition,
    ) -> Result<Option<String>, S3Error> {
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body));
        let request = match condition {
            super::PutCondition::Absent => request.if_none_match("*"),
            super::PutCondition::Matches(etag) => request.if_match(etag),
        };
        let output = request.send().await.map_err(|e| self.object_error(e, bucket, key, "PutObject"))?;
        Ok(output.e_tag().map(str::to_string))
    }

    pub(super) fn error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        &self,
        error: SdkError<E, R>,
        bucket: &str,
        operation: &str,
    ) -> S3Error {
        classify(error, bucket, None, operation, &self.endpoint())
    }

    pub(super) fn object_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        &self,
        error: SdkError<E, R>,
        bucket: &str,
        key: &str,
        operation: &str,
    ) -> S3Error {
        classify(error, bucket, Some(key), operation, &self.endpoint())
    }
}

pub(super) fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// A property that could not be read: says why (access denied is not a pass).
fn unknown<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(error: SdkError<E, R>) -> Prop<T> {
    let status = error_status(&error);
    let code = code(&error).map(str::to_string);
    Prop::Unknown(match (code.as_deref(), status) {
        (Some("AccessDenied"), _) | (_, Some(403)) => "access denied".to_string(),
        (Some(code), _) => code.to_string(),
        (None, Some(status)) => {
            tracing::warn!(?error, "bucket property unreadable");
            format!("HTTP {status}")
        }
        (None, None) => "unreachable".to_string(),
    })
}

/// The body of a response the SDK could not deserialize.
fn raw_body<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<String> {
    match error {
        SdkError::ServiceError(service) => {
            service.raw().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned())
        }
        SdkError::ResponseError(response) => {
            response.raw().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

/// The text of the first `<name>` element.
fn xml_value(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_string())
}

pub(super) fn error_status<E, R: std::fmt::Debug>(error: &SdkError<E, R>) -> Option<u16> {
    match error {
        SdkError::ServiceError(service) => {
            let raw = format!("{:?}", service.raw());
            raw.split("StatusCode(").nth(1).and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
        }
        _ => None,
    }
}

/// Turns an SDK error into one line that names the bucket and operation.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    error: SdkError<E, R>,
    bucket: &str,
    key: Option<&str>,
    operation: &str,
    endpoint: &str,
) -> S3Error {
    let status = error_status(&error);
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            match (code, status) {
                ("InvalidObjectState", _) => S3Error::Archived {
                    bucket: bucket.to_string(),
                    key: key.unwrap_or_default().to_string(),
                    detail: message.to_string(),
                },
                ("AccessDenied" | "AllAccessDisabled", _) | (_, Some(403)) => {
                    S3Error::AccessDenied { bucket: bucket.to_string(), operation: operation.to_string() }
                }
                ("NoSuchBucket", _) => S3Error::NoSuchBucket(bucket.to_string()),
                ("NoSuchKey" | "NotFound", _) | (_, Some(404)) if key.is_some() => {
                    S3Error::NoSuchKey { bucket: bucket.to_string(), key: key.unwrap_or_default().to_string() }
                }
                (_, Some(404)) => S3Error::NoSuchBucket(bucket.to_string()),
                ("PreconditionFailed", _) | (_, Some(412)) => {
                    S3Error::Changed { bucket: bucket.to_string(), key: key.unwrap_or_default().to_string() }
                }
                _ => S3Error::Service {
                    bucket: bucket.to_string(),
                    operation: operation.to_string(),
                    detail: match status {
                        Some(status) => format!("HTTP {status} {code} {message}").trim().to_string(),
                        None => format!("{code} {message}").trim().to_string(),
                    },
                },
            }
        }
        SdkError::DispatchFailure(failure) => {
            let detail = format!("{failure:?}");
            if detail.to_lowercase().contains("credential") {
                S3Error::NoCredentials(short(&detail))
            } else {
                // The cause ("tcp connect error: Connection refused (os error 111)") reads
                // better than the SDK's debug dump; the dump is kept when there is none.
                let cause = failure.as_connector_error().and_then(std::error::Error::source).map(error_chain);
                S3Error::Unreachable { endpoint: endpoint.to_string(), detail: short(&cause.unwrap_or(detail)) }
            }
        }
        SdkError::TimeoutError(_) => {
            S3Error::Unreachable { endpoint: endpoint.to_string(), detail: "timed out".into() }
        }
        other => {
            let detail = format!("{other:?}");
            if detail.to_lowercase().contains("credential") {
                S3Error::NoCredentials(short(&detail))
            } else {
                S3Error::Service {
                    bucket: bucket.to_string(),
                    operation: operation.to_string(),
                    detail: short(&detail),
                }
            }
        }
    }
}

/// An error and its sources as one line, skipping a source its parent already shows.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(error) = source {
        let text = error.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = error.source();
    }
    parts.join(": ")
}

/// The useful end of a long debug string.
fn short(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 240 { format!("{}…", text.chars().take(240).collect::<String>()) } else { text }
}

pub(super) fn timestamp(time: Option<&aws_sdk_s3::primitives::DateTime>) -> Timestamp {
    time.and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()).unwrap_or(Timestamp::UNIX_EPOCH)
}
