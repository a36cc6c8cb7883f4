//! A real S3 API for integration tests: moto's server (Python, pinned in
//! `tests/servers/requirements.txt`) on a free loopback port, plus seeding helpers.
//!
//! The helpers speak plain HTTP/1.1 through the tests' own client (`support/http.rs`) on
//! purpose: the crate's own S3 client is what the tests exercise, so fixtures must not be
//! written through it. moto is started by `support/server.rs`.
//!
//! Include it with `#[path = "support/moto.rs"] mod moto;` next to `mod support;`.
//! It depends on `support`, `sha2` and `tempfile`.
//!
//! What moto 5.2.5 does, as checked by `tests/s3_infra.rs`:
//! - It needs an `Authorization` header shaped like SigV4 but never checks the signature;
//!   [`DUMMY_AUTHORIZATION`] is enough. Without one, object GETs answer 403; a header that
//!   is not SigV4-shaped makes it answer 500.
//! - A request whose `Content-Type` is `application/x-www-form-urlencoded` (curl's default
//!   for `-d`) has its body swallowed as a form: the object is stored empty. The helpers
//!   always send `application/octet-stream` unless told otherwise.
//! - Bucket names must be 3–63 characters (`InvalidBucketName` otherwise).
//! - Requests are path-style (`http://127.0.0.1:PORT/bucket/key`); the helpers use that.
//! - Versions, ranged GETs (206 + `Content-Range`), full-object SHA-256 checksums
//!   (returned only with `x-amz-checksum-mode: ENABLED`, never on ranged GETs), multipart
//!   uploads and the bucket configurations (encryption, public access block, replication,
//!   ownership controls, object lock) all work.
//! - It stores the checksum the client sends without verifying it, so
//!   [`Moto::put_object_claiming_sha256`] can plant a lying checksum for corruption tests.
//! - `LastModified` has one-second resolution (listings say `…:16.000Z`) and is set at
//!   upload time; there is no way to set it. Tests that need objects in a known time order
//!   upload them in that order with `std::thread::sleep(Duration::from_millis(1100))` between.
//! - Uploads to an object-lock bucket with a default retention need a checksum header:
//!   use [`Moto::put_object_with_sha256_checksum`] there.
//! - It keeps all state in memory: [`Moto::restart`] comes back empty.
//! - Every response carries `Connection: close`: one request per connection.
// Each test uses only some helpers. `unused` rather than `dead_code`: a test that includes
// this file with `#[allow(dead_code)] mod moto;` would otherwise trip
// clippy::duplicated_attributes.
#![allow(unused)]

use std::io::{self, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::http::{Request, Response, percent_encode};
use crate::support::server::{Launch, Server, test_venv};

/// What moto wants to see: a SigV4-shaped header. It does not verify the signature.
pub const DUMMY_AUTHORIZATION: &str =
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// Variables a test should remove from the environment of a process under test, next to
/// setting [`Moto::env`]: any of them would point the AWS SDK at a developer's real account,
/// profile or endpoint instead of moto.
pub const AWS_ENV_TO_REMOVE: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_CA_BUNDLE",
];

const INSTALL_HINT: &str =
    "moto is not installed: run ./scripts/test (it creates target/test-venv from tests/servers/requirements.txt)";
/// Python's import of moto takes about half a second; 15 s leaves room for a loaded CI box.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Streaming uploads and hashing work in pieces this big, never holding a whole object.
const CHUNK: usize = 64 * 1024;

/// A running `moto_server`, killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`, stable across [`Moto::restart`].
    pub endpoint: String,
    /// Its stdout and stderr (werkzeug logs a line per request) go to `moto.log` in `_dir`,
    /// appended over restarts.
    server: Server,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto from the test venv: `$DRILLBOOK_TEST_VENV`, else `<crate>/target/test-venv`
    /// (both made by `./scripts/test`). Panics, never skips, when it is missing.
    pub fn start() -> Moto {
        Moto::start_with_venv(&test_venv())
    }

    /// [`Moto::start`] with IAM enforced after the first `unauthenticated` requests: moto then
    /// checks signatures against the access keys it issued and honours IAM policies (what
    /// `INITIAL_NO_AUTH_ACTION_COUNT` does). The first requests create the users and keys.
    pub fn start_with_iam(unauthenticated: u32) -> Moto {
        Moto::start_with(&test_venv(), Some(unauthenticated))
    }

    /// [`Moto::start`] with an explicit venv directory.
    pub fn start_with_venv(venv: &Path) -> Moto {
        Moto::start_with(venv, None)
    }

    fn start_with(venv: &Path, iam_after: Option<u32>) -> Moto {
        let program = venv.join("bin").join("moto_server");
        if !program.is_file() {
            panic!("{INSTALL_HINT} (looked for {})", program.display());
        }
        let dir =
            tempfile::Builder::new().prefix("drillbook-moto-").tempdir().expect("create a temp dir for moto's log");
        let server = Launch::new("moto_server", &dir.path().join("moto.log"), move |port| {
            let mut command = Command::new(&program);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // Unbuffered, so the log shows why it died even when it is killed.
                .env("PYTHONUNBUFFERED", "1");
            // A developer's MOTO_* settings (custom endpoints, IAM auth…) would change moto's
            // behaviour, and it needs no AWS_* settings of its own.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("MOTO_") || name.starts_with("AWS_") || name == "INITIAL_NO_AUTH_ACTION_COUNT" {
                    command.env_remove(&*name);
                }
            }
            if let Some(count) = iam_after {
                command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
            }
            command
        })
        .ready_when(|port| {
            let request = s3_request(Request::new("GET", "/moto-api/")).timeout(Duration::from_secs(5));
            request.send(&format!("http://127.0.0.1:{port}")).is_ok_and(|response| response.status == 200)
        })
        .timeout(START_TIMEOUT)
        .start();
        Moto { endpoint: format!("http://127.0.0.1:{}", server.port()), server, _dir: dir }
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Forgets every bucket and object (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let response = self.request("POST", "/moto-api/reset", &[], b"");
        expect_status(&response, 200, "reset moto");
    }

    /// Kills moto (SIGKILL, like a crashed server: open connections are cut) and waits for
    /// it. Does nothing when it is already stopped.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Kills moto and starts it again on the same port and endpoint, for "server died
    /// mid-transfer, then came back" tests. moto keeps no state across restarts: every
    /// bucket and object is gone, so re-seed after calling this.
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// moto's process id while it runs, e.g. to `SIGSTOP` it for a "server hangs" test
    /// (drop still kills a stopped process).
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Whether the moto process is running (false after [`Moto::stop`]).
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// The environment that points an AWS SDK process at this moto with fake credentials.
    /// Also remove [`AWS_ENV_TO_REMOVE`] from it.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(&self.endpoint)
    }

    /// The last part of moto's log (its stdout and stderr, over all restarts).
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    // --- plain HTTP -----------------------------------------------------------------------

    /// Sends one request to moto (see [`http_request`] for the defaults it adds). Panics on a
    /// connection error; a non-2xx status is returned, not a panic.
    pub fn request(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        http_request(&self.endpoint, method, path_and_query, headers, body)
            .unwrap_or_else(|err| panic!("{method} {path_and_query} to moto at {} failed: {err}", self.endpoint))
    }

    /// Any request, for what has no helper: bucket encryption, public access block,
    /// replication, ownership controls, object lock… (send XML with
    /// `("Content-Type", "application/xml")`). Returns status, headers and body.
    pub fn put_raw(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let response = self.request(method, path_and_query, headers, body);
        (response.status, response.headers, response.body)
    }

    /// Every key under `prefix` (ListObjectsV2, all pages), in key order.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = format!("/{bucket}?list-type=2&prefix={}", percent_encode(prefix, false));
            if let Some(token) = &token {
                query.push_str(&format!("&continuation-token={}", percent_encode(token, false)));
            }
            let response = self.request("GET", &query, &[], b"");
            expect_status(&response, 200, &format!("list s3://{bucket}/{prefix}"));
            let xml = String::from_utf8_lossy(&response.body).into_owned();
            keys.extend(xml_values(&xml, "Key"));
            token = xml_values(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
    }

    // --- seeding --------------------------------------------------------------------------

    pub fn create_bucket(&self, bucket: &str) {
        let response = self.request("PUT", &format!("/{bucket}"), &[], b"");
        expect_status(&response, 200, &format!("create bucket {bucket}"));
    }

    /// A bucket created with object lock enabled (which also turns versioning on).
    pub fn create_bucket_with_object_lock(&self, bucket: &str) {
        let response = self.request("PUT", &format!("/{bucket}"), &[("x-amz-bucket-object-lock-enabled", "true")], b"");
        expect_status(&response, 200, &format!("create object-lock bucket {bucket}"));
    }

    /// Turns versioning on, or suspends it (a bucket can never go back to unversioned).
    pub fn put_bucket_versioning(&self, bucket: &str, enabled: bool) {
        let status = if enabled { "Enabled" } else { "Suspended" };
        let xml = format!(
            r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>{status}</Status></VersioningConfiguration>"#
        );
        let response = self.request(
            "PUT",
            &format!("/{bucket}?versioning"),
            &[("Content-Type", "application/xml")],
            xml.as_bytes(),
        );
        expect_status(&response, 200, &format!("set versioning of {bucket} to {status}"));
    }

    /// Uploads an object; returns its version id (`None` when the bucket is unversioned).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Option<String> {
        self.put_object_with_headers(bucket, key, body, &[])
    }

    /// Uploads an object with extra headers (`x-amz-meta-*`, `x-amz-server-side-encryption`,
    /// `x-amz-object-lock-*`, `Content-Type`…); returns its version id.
    pub fn put_object_with_headers(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let response = self.request("PUT", &object_path(bucket, key), headers, body);
        expect_status(&response, 200, &format!("put s3://{bucket}/{key}"));
        response.header("x-amz-version-id").map(str::to_owned)
    }

    /// Uploads an object with its full-object SHA-256 checksum, which moto then returns on
    /// GET/HEAD with `x-amz-checksum-mode: ENABLED`; returns its version id.
    pub fn put_object_with_sha256_checksum(&self, bucket: &str, key: &str, body: &[u8]) -> Option<String> {
        self.put_object_claiming_sha256(bucket, key, body, &base64_encode(&Sha256::digest(body)))
    }

    /// Uploads `body` but records `claimed_sha256_base64` as its SHA-256 checksum. moto does
    /// not verify it, so this plants an object whose checksum does not match its data, as
    /// after silent corruption. Returns its version id.
    pub fn put_object_claiming_sha256(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        claimed_sha256_base64: &str,
    ) -> Option<String> {
        self.put_object_with_headers(
            bucket,
            key,
            body,
            &[("x-amz-checksum-sha256", claimed_sha256_base64), ("x-amz-sdk-checksum-algorithm", "SHA256")],
        )
    }

    /// Uploads `size` bytes of [`deterministic_bytes`]`(size, seed)` in one PUT, generating
    /// them while sending (never all in memory); returns its version id.
    pub fn put_large_object(&self, bucket: &str, key: &str, size: u64, seed: u8) -> Option<String> {
        self.put_pattern(bucket, key, size, seed, None)
    }

    /// [`Moto::put_large_object`] with the full-object SHA-256 checksum (computed in a first
    /// pass over the pattern); returns its version id.
    pub fn put_large_object_with_sha256_checksum(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        seed: u8,
    ) -> Option<String> {
        let checksum = base64_encode(&deterministic_sha256(size, seed));
        self.put_pattern(bucket, key, size, seed, Some(&checksum))
    }

    fn put_pattern(&self, bucket: &str, key: &str, size: u64, seed: u8, sha256: Option<&str>) -> Option<String> {
        let mut headers = vec![];
        if let Some(sha256) = sha256 {
            headers = vec![("x-amz-checksum-sha256", sha256), ("x-amz-sdk-checksum-algorithm", "SHA256")];
        }
        let path = object_path(bucket, key);
        let response = s3_request(
            Request::new("PUT", &path).headers(&headers).body_from(size, &mut |out| write_pattern(out, 0, size, seed)),
        )
        .send(&self.endpoint)
        .unwrap_or_else(|err| panic!("streaming {size} bytes to s3://{bucket}/{key} failed: {err}"));
        expect_status(&response, 200, &format!("put {size} bytes to s3://{bucket}/{key}"));
        response.header("x-amz-version-id").map(str::to_owned)
    }

    /// Uploads [`deterministic_bytes`]`(size, seed)` as a multipart upload of `part_size`
    /// parts (moto, like S3, rejects parts under 5 MiB except the last), so the object gets a
    /// `"…-N"` ETag. Returns its version id.
    pub fn put_multipart_object(&self, bucket: &str, key: &str, size: u64, part_size: u64, seed: u8) -> Option<String> {
        assert!(part_size > 0 && size > 0, "a multipart upload needs at least one non-empty part");
        let path = object_path(bucket, key);
        let what = format!("multipart upload to s3://{bucket}/{key}");
        let created = self.request("POST", &format!("{path}?uploads"), &[], b"");
        expect_status(&created, 200, &what);
        let upload_id = xml_tag_values(&created.text(), "UploadId")
            .pop()
            .unwrap_or_else(|| panic!("{what}: no UploadId in {}", created.text()));
        let mut parts = String::new();
        let mut offset = 0;
        for number in 1.. {
            let len = part_size.min(size - offset);
            let part_path = format!("{path}?partNumber={number}&uploadId={}", percent_encode(&upload_id, false));
            let response = s3_request(
                Request::new("PUT", &part_path).body_from(len, &mut |out| write_pattern(out, offset, len, seed)),
            )
            .send(&self.endpoint)
            .unwrap_or_else(|err| panic!("{what}: part {number} failed: {err}"));
            expect_status(&response, 200, &format!("{what}, part {number}"));
            let etag = response.header("etag").unwrap_or_else(|| panic!("{what}: part {number} has no ETag"));
            parts.push_str(&format!("<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"));
            offset += len;
            if offset == size {
                break;
            }
        }
        let xml = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        let completed = self.request(
            "POST",
            &format!("{path}?uploadId={}", percent_encode(&upload_id, false)),
            &[("Content-Type", "application/xml")],
            xml.as_bytes(),
        );
        expect_status(&completed, 200, &format!("complete {what}"));
        completed.header("x-amz-version-id").map(str::to_owned)
    }

    /// The object's bytes (latest version).
    pub fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let response = self.request("GET", &object_path(bucket, key), &[], b"");
        expect_status(&response, 200, &format!("get s3://{bucket}/{key}"));
        response.body
    }

    /// One version of an object.
    pub fn get_object_version(&self, bucket: &str, key: &str, version_id: &str) -> Vec<u8> {
        let path = format!("{}?versionId={}", object_path(bucket, key), percent_encode(version_id, false));
        let response = self.request("GET", &path, &[], b"");
        expect_status(&response, 200, &format!("get s3://{bucket}/{key} version {version_id}"));
        response.body
    }

    /// SHA-256 and length of the object's bytes, streamed (for objects too big to hold).
    pub fn get_object_sha256(&self, bucket: &str, key: &str) -> ([u8; 32], u64) {
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let path = object_path(bucket, key);
        let response = s3_request(Request::new("GET", &path))
            .send_to(&self.endpoint, &mut |bytes| {
                hasher.update(bytes);
                len += bytes.len() as u64;
            })
            .unwrap_or_else(|err| panic!("get s3://{bucket}/{key} failed: {err}"));
        expect_status(&response, 200, &format!("get s3://{bucket}/{key}"));
        assert!(response.complete, "get s3://{bucket}/{key}: the body ended early after {len} bytes");
        (hasher.finalize().into(), len)
    }

    /// Deletes an object; in a versioned bucket this adds a delete marker, whose version id
    /// is returned.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Option<String> {
        let response = self.request("DELETE", &object_path(bucket, key), &[], b"");
        expect_status(&response, 204, &format!("delete s3://{bucket}/{key}"));
        response.header("x-amz-version-id").map(str::to_owned)
    }

    /// Every version and delete marker in the bucket (first page, up to 1000), in moto's
    /// order: versions (newest first per key), then delete markers.
    pub fn list_object_versions(&self, bucket: &str) -> Vec<ObjectVersion> {
        let response = self.request("GET", &format!("/{bucket}?versions"), &[], b"");
        expect_status(&response, 200, &format!("list versions in {bucket}"));
        let xml = response.text();
        let mut versions = vec![];
        for (tag, delete_marker) in [("Version", false), ("DeleteMarker", true)] {
            for entry in xml_tag_values(&xml, tag) {
                let field = |name: &str| xml_tag_values(&entry, name).pop().unwrap_or_default();
                versions.push(ObjectVersion {
                    key: field("Key"),
                    version_id: field("VersionId"),
                    is_latest: field("IsLatest") == "true",
                    size: field("Size").parse().unwrap_or(0),
                    etag: field("ETag").replace("&#34;", "\"").replace("&quot;", "\""),
                    last_modified: field("LastModified"),
                    delete_marker,
                });
            }
        }
        versions
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One entry of `GET /bucket?versions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    /// `"null"` for an object written before versioning was enabled.
    pub version_id: String,
    pub is_latest: bool,
    pub size: u64,
    pub etag: String,
    pub last_modified: String,
    pub delete_marker: bool,
}

/// The environment that points an AWS SDK process at `endpoint` (moto, or a
/// `FaultProxy` in front of it) with fake credentials and no trace of `~/.aws`.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
        // No instance-metadata probe: it would wait for a timeout outside EC2.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        // An empty config: a developer's profiles, SSO or credential_process stay out.
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

fn expect_status(response: &Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: moto answered {} {}", response.status, response.text());
}

/// `/bucket/key` with the key percent-encoded (its slashes kept).
pub fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", percent_encode(key, true))
}

// --- HTTP with what moto needs --------------------------------------------------------------

/// Sends one HTTP/1.1 request to `endpoint` (`http://HOST:PORT`) with [`s3_request`]'s
/// defaults, and reads the response (see [`Request::send`] for what counts as an error).
pub fn http_request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    s3_request(Request::new(method, path_and_query).headers(headers).body(body)).send(endpoint)
}

/// Adds what moto needs unless the request has it: `Authorization: `[`DUMMY_AUTHORIZATION`],
/// and `Content-Type: application/octet-stream` when there is a body (see the module docs
/// for why).
fn s3_request(request: Request<'_>) -> Request<'_> {
    let mut request = request;
    if !request.has_header("authorization") {
        request = request.header("Authorization", DUMMY_AUTHORIZATION);
    }
    if request.has_body() && !request.has_header("content-type") {
        request = request.header("Content-Type", "application/octet-stream");
    }
    request
}

// --- the deterministic pattern ------------------------------------------------------------

/// The 8 bytes at `8 * block` of a pattern: SplitMix64 of the block index, so every offset
/// holds different bytes and a download shifted by a few bytes cannot match.
fn pattern_block(block: u64, seed: u8) -> [u8; 8] {
    let mut z = (block ^ (u64::from(seed) << 56)).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fills `buf` with the pattern's bytes from `offset` on.
pub fn fill_deterministic(offset: u64, buf: &mut [u8], seed: u8) {
    let mut position = offset;
    let mut filled = 0;
    while filled < buf.len() {
        let block = pattern_block(position / 8, seed);
        let within = (position % 8) as usize;
        let n = (8 - within).min(buf.len() - filled);
        buf[filled..filled + n].copy_from_slice(&block[within..within + n]);
        filled += n;
        position += n as u64;
    }
}

/// The first `size` bytes of the pattern for `seed`, lazily.
pub fn deterministic_bytes(size: u64, seed: u8) -> impl Iterator<Item = u8> {
    (0..size).map(move |i| pattern_block(i / 8, seed)[(i % 8) as usize])
}

/// Bytes `start..start + len` of the pattern, e.g. to compare with a ranged GET.
pub fn deterministic_range(start: u64, len: usize, seed: u8) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill_deterministic(start, &mut buf, seed);
    buf
}

/// SHA-256 of the first `size` bytes of the pattern, without holding them.
pub fn deterministic_sha256(size: u64, seed: u8) -> [u8; 32] {
    let mut hasher = Sha256::new();
    write_pattern(&mut HashWriter(&mut hasher), 0, size, seed).expect("hashing never fails");
    hasher.finalize().into()
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_pattern(out: &mut dyn Write, offset: u64, len: u64, seed: u8) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    let mut done = 0;
    while done < len {
        let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        fill_deterministic(offset + done, &mut buf[..n], seed);
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

// --- small encoders -----------------------------------------------------------------------

/// Standard base64 with padding, the form of `x-amz-checksum-*` headers.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SHA-256 of `bytes`, base64-encoded as in `x-amz-checksum-sha256`.
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64_encode(&Sha256::digest(bytes))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The contents of every `<tag>…</tag>` in `xml`, in order (not nested in themselves, no
/// attributes on the tag, entities left as they are: enough for S3's responses).
/// A self-closing `<tag/>` gives an empty string.
pub fn xml_tag_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close, empty) = (format!("<{tag}>"), format!("</{tag}>"), format!("<{tag}/>"));
    let mut values = vec![];
    let mut rest = xml;
    loop {
        let next_open = rest.find(&open);
        let next_empty = rest.find(&empty);
        match (next_open, next_empty) {
            (Some(o), e) if e.is_none_or(|e| o < e) => {
                let after = &rest[o + open.len()..];
                let Some(end) = after.find(&close) else { break };
                values.push(after[..end].to_owned());
                rest = &after[end + close.len()..];
            }
            (_, Some(e)) => {
                values.push(String::new());
                rest = &rest[e + empty.len()..];
            }
            _ => break,
        }
    }
    values
}

/// The text of every `<TAG>…</TAG>` in `xml`, unescaped.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        let text = &after[..end];
        values.push(
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    values
}
