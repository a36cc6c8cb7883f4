//! Proves the S3 test infrastructure works: moto (tests/support/moto.rs) behaves like the
//! S3 features the crate relies on, and the fault proxy (tests/support/fault_proxy.rs)
//! injects its faults. Everything here speaks plain HTTP through the helpers, never the
//! crate's own S3 client.

use crate::fault_proxy;
use crate::moto;
use crate::support;

use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use moto::{Moto, deterministic_range, deterministic_sha256, http_request, sha256_base64, xml_tag_values};
use support::http::Request;
use support::server::free_port;

#[test]
fn moto_starts_answers_and_resets() {
    let started = Instant::now();
    let moto = Moto::start();
    eprintln!("moto answered after {:?}", started.elapsed());
    assert!(moto.endpoint.starts_with("http://127.0.0.1:"), "{}", moto.endpoint);

    let env = moto.env();
    let value = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(value("AWS_ENDPOINT_URL"), Some(moto.endpoint.as_str()));
    assert_eq!(value("AWS_ACCESS_KEY_ID"), Some("test"));
    assert_eq!(value("AWS_CONFIG_FILE"), Some("/dev/null"));

    moto.create_bucket("reset-me");
    assert_eq!(moto.request("GET", "/reset-me", &[], b"").status, 200);
    moto.reset();
    let gone = moto.request("GET", "/reset-me", &[], b"");
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(gone.text().contains("NoSuchBucket"), "{}", gone.text());
}

#[test]
#[should_panic(expected = "moto is not installed: run ./scripts/test")]
fn a_missing_venv_panics_with_the_install_hint() {
    let empty = tempfile::tempdir().expect("tempdir");
    Moto::start_with_venv(empty.path());
}

#[test]
fn versioned_bucket_lists_both_versions() {
    let moto = Moto::start();
    moto.create_bucket("versioned");
    moto.put_bucket_versioning("versioned", true);
    let first = moto.put_object("versioned", "db/dump.sql", b"first").expect("a version id for the first put");
    let second = moto.put_object("versioned", "db/dump.sql", b"second").expect("a version id for the second put");
    assert_ne!(first, second);

    let listed = moto.request("GET", "/versioned?versions", &[], b"");
    assert_eq!(xml_tag_values(&listed.text(), "Version").len(), 2, "{}", listed.text());
    let versions = moto.list_object_versions("versioned");
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.iter().all(|v| v.key == "db/dump.sql" && !v.delete_marker), "{versions:?}");
    let latest: Vec<_> = versions.iter().filter(|v| v.is_latest).collect();
    assert_eq!(latest.len(), 1, "{versions:?}");
    assert_eq!(latest[0].version_id, second);
    assert_eq!(latest[0].size, 6);

    assert_eq!(moto.get_object("versioned", "db/dump.sql"), b"second");
    assert_eq!(moto.get_object_version("versioned", "db/dump.sql", &first), b"first");

    let marker = moto.delete_object("versioned", "db/dump.sql").expect("a delete marker's version id");
    let versions = moto.list_object_versions("versioned");
    assert!(versions.iter().any(|v| v.delete_marker && v.is_latest && v.version_id == marker), "{versions:?}");
    assert_eq!(moto.request("GET", "/versioned/db/dump.sql", &[], b"").status, 404);
}

#[test]
fn sha256_checksums_round_trip_with_checksum_mode() {
    let moto = Moto::start();
    moto.create_bucket("checksums");
    let body = b"backup bytes \x00\xff with binary";
    moto.put_object_with_sha256_checksum("checksums", "a b/ünïcode.bin", body);

    let path = moto::object_path("checksums", "a b/ünïcode.bin");
    let with_mode = moto.request("GET", &path, &[("x-amz-checksum-mode", "ENABLED")], b"");
    assert_eq!(with_mode.status, 200);
    assert_eq!(with_mode.body, body);
    assert_eq!(with_mode.header("x-amz-checksum-sha256"), Some(sha256_base64(body).as_str()));
    let head = moto.request("HEAD", &path, &[("x-amz-checksum-mode", "ENABLED")], b"");
    assert_eq!(head.header("x-amz-checksum-sha256"), Some(sha256_base64(body).as_str()));

    // Like S3: no checksum without checksum mode, nor on a ranged GET.
    let without_mode = moto.request("GET", &path, &[], b"");
    assert_eq!(without_mode.header("x-amz-checksum-sha256"), None);
    let ranged = moto.request("GET", &path, &[("x-amz-checksum-mode", "ENABLED"), ("Range", "bytes=0-3")], b"");
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("x-amz-checksum-sha256"), None);

    // moto keeps a claimed checksum without checking it: corruption tests rely on that.
    let lie = sha256_base64(b"something else");
    moto.put_object_claiming_sha256("checksums", "corrupt", body, &lie);
    let corrupt = moto.request("GET", "/checksums/corrupt", &[("x-amz-checksum-mode", "ENABLED")], b"");
    assert_eq!(corrupt.body, body);
    assert_eq!(corrupt.header("x-amz-checksum-sha256"), Some(lie.as_str()));

    // The streamed upload sends the pattern's checksum, computed in a first pass.
    moto.put_large_object_with_sha256_checksum("checksums", "streamed", 1024 * 1024 + 1, 4);
    let head = moto.request("HEAD", "/checksums/streamed", &[("x-amz-checksum-mode", "ENABLED")], b"");
    let expected = moto::base64_encode(&deterministic_sha256(1024 * 1024 + 1, 4));
    assert_eq!(head.header("x-amz-checksum-sha256"), Some(expected.as_str()));

    assert_eq!(moto::base64_encode(b"fo"), "Zm8=");
    assert_eq!(moto::base64_encode(b"f"), "Zg==");
}

#[test]
fn large_and_multipart_objects_support_ranged_gets_and_hash_as_expected() {
    const SIZE: u64 = 64 * 1024 * 1024;
    let moto = Moto::start();
    moto.create_bucket("large");
    let started = Instant::now();
    moto.put_large_object("large", "disk.img", SIZE, 7);
    eprintln!("uploaded 64 MiB in {:?}", started.elapsed());

    let ranged = moto.request("GET", "/large/disk.img", &[("Range", "bytes=1000-1999")], b"");
    assert_eq!(ranged.status, 206, "{}", ranged.text());
    assert_eq!(ranged.header("content-range"), Some(format!("bytes 1000-1999/{SIZE}").as_str()));
    assert_eq!(ranged.body, deterministic_range(1000, 1000, 7));
    // A different seed or offset gives different bytes, so the comparison means something.
    assert_ne!(ranged.body, deterministic_range(1000, 1000, 8));
    assert_ne!(ranged.body, deterministic_range(1001, 1000, 7));
    let tail = moto.request("GET", "/large/disk.img", &[("Range", "bytes=-5")], b"");
    assert_eq!(tail.body, deterministic_range(SIZE - 5, 5, 7));
    assert_eq!(deterministic_range(3, 5, 7), moto::deterministic_bytes(8, 7).skip(3).collect::<Vec<_>>());

    let (sha256, len) = moto.get_object_sha256("large", "disk.img");
    assert_eq!(len, SIZE);
    assert_eq!(moto::hex(&sha256), moto::hex(&deterministic_sha256(SIZE, 7)));
    eprintln!("uploaded, fetched and hashed 64 MiB in {:?}", started.elapsed());

    // Multipart: 5 + 5 MiB + 1 byte, so a "…-3" ETag like S3's.
    const MIB: u64 = 1024 * 1024;
    moto.put_multipart_object("large", "multi", 10 * MIB + 1, 5 * MIB, 3);
    let head = moto.request("HEAD", "/large/multi", &[], b"");
    assert_eq!(head.header("content-length"), Some((10 * MIB + 1).to_string().as_str()));
    assert!(head.header("etag").is_some_and(|etag| etag.ends_with("-3\"")), "{:?}", head.header("etag"));
    assert_eq!(moto.get_object_sha256("large", "multi"), (deterministic_sha256(10 * MIB + 1, 3), 10 * MIB + 1));
}

#[test]
fn bucket_configurations_round_trip() {
    let moto = Moto::start();
    moto.create_bucket("configured");
    moto.create_bucket("replica");
    moto.put_bucket_versioning("configured", true);
    moto.put_bucket_versioning("replica", true);
    let ns = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
    let configs = [
        (
            "encryption",
            format!(
                "<ServerSideEncryptionConfiguration {ns}><Rule><ApplyServerSideEncryptionByDefault>\
                 <SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>arn:aws:kms:us-east-1:123456789012:key/k</KMSMasterKeyID>\
                 </ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>\
                 </ServerSideEncryptionConfiguration>"
            ),
            "<SSEAlgorithm>aws:kms</SSEAlgorithm>",
        ),
        (
            "publicAccessBlock",
            format!(
                "<PublicAccessBlockConfiguration {ns}><BlockPublicAcls>true</BlockPublicAcls>\
                 <IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>\
                 <RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
            ),
            "<RestrictPublicBuckets>false</RestrictPublicBuckets>",
        ),
        (
            "ownershipControls",
            format!(
                "<OwnershipControls {ns}><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule>\
                 </OwnershipControls>"
            ),
            "<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>",
        ),
        (
            "replication",
            format!(
                "<ReplicationConfiguration {ns}><Role>arn:aws:iam::123456789012:role/replication</Role>\
                 <Rule><ID>all</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix></Prefix></Filter>\
                 <DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication>\
                 <Destination><Bucket>arn:aws:s3:::replica</Bucket></Destination></Rule></ReplicationConfiguration>"
            ),
            "<Bucket>arn:aws:s3:::replica</Bucket>",
        ),
    ];
    for (query, xml, expected) in &configs {
        let path = format!("/configured?{query}");
        let (status, _, body) = moto.put_raw("PUT", &path, &[("Content-Type", "application/xml")], xml.as_bytes());
        assert_eq!(status, 200, "PUT {path}: {}", String::from_utf8_lossy(&body));
        let (status, _, body) = moto.put_raw("GET", &path, &[], b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "GET {path}: {body}");
        assert!(body.contains(expected), "GET {path}: {body}");
    }

    moto.create_bucket_with_object_lock("locked");
    let lock = format!(
        "<ObjectLockConfiguration {ns}><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
         <Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
    );
    let (status, _, _) =
        moto.put_raw("PUT", "/locked?object-lock", &[("Content-Type", "application/xml")], lock.as_bytes());
    assert_eq!(status, 200);
    let (_, _, body) = moto.put_raw("GET", "/locked?object-lock", &[], b"");
    assert!(String::from_utf8_lossy(&body).contains("<Mode>GOVERNANCE</Mode>"));
    let (_, _, body) = moto.put_raw("GET", "/locked?versioning", &[], b"");
    assert!(String::from_utf8_lossy(&body).contains("<Status>Enabled</Status>"));
    // With a default retention moto, like S3, wants a checksum on every upload.
    let (status, _, _) = moto.put_raw("PUT", "/locked/plain", &[], b"data");
    assert_eq!(status, 400);
    assert!(moto.put_object_with_sha256_checksum("locked", "checked", b"data").is_some());
}

#[test]
fn restart_keeps_the_port_and_forgets_everything() {
    let mut moto = Moto::start();
    let endpoint = moto.endpoint.clone();
    moto.create_bucket("before");
    moto.put_object("before", "k", b"v");

    moto.stop();
    assert!(!moto.is_running());
    assert!(http_request(&endpoint, "GET", "/moto-api/", &[], b"").is_err(), "nothing should answer while stopped");

    let started = Instant::now();
    moto.restart();
    eprintln!("moto restarted in {:?}", started.elapsed());
    assert_eq!(moto.endpoint, endpoint);
    assert_eq!(moto.request("GET", "/before/k", &[], b"").status, 404, "moto keeps nothing across a restart");
    moto.create_bucket("before");
    moto.put_object("before", "k", b"v again");
    assert_eq!(moto.get_object("before", "k"), b"v again");
}

#[test]
fn proxy_passes_requests_through_and_counts_them() {
    let moto = Moto::start();
    moto.create_bucket("proxied");
    let proxy = FaultProxy::start(&moto.endpoint);

    let put = http_request(&proxy.endpoint, "PUT", "/proxied/k", &[], b"through the proxy").expect("PUT via proxy");
    assert_eq!(put.status, 200, "{}", put.text());
    let get = http_request(&proxy.endpoint, "GET", "/proxied/k", &[], b"").expect("GET via proxy");
    assert_eq!((get.status, get.body.as_slice(), get.complete), (200, &b"through the proxy"[..], true));
    assert_eq!(get.header("connection"), Some("close"));
    let head = http_request(&proxy.endpoint, "HEAD", "/proxied/k", &[], b"").expect("HEAD via proxy");
    assert_eq!((head.status, head.header("content-length")), (200, Some("17")));

    // A chunked upload with Expect: 100-continue, as some SDK uploads are sent, using a
    // keep-alive request: the proxy must answer the 100 itself and close after the response.
    let chunked = Request::new("PUT", "/proxied/chunked")
        .headers(&[
            ("Host", "x"),
            ("Authorization", moto::DUMMY_AUTHORIZATION),
            ("Content-Type", "application/octet-stream"),
            ("Transfer-Encoding", "chunked"),
            ("Expect", "100-continue"),
            ("Connection", "keep-alive"),
        ])
        .chunked(&[b"chunky", b" body!!"])
        .timeout(Duration::from_secs(10))
        .send(&proxy.endpoint)
        .expect("PUT a chunked body via the proxy");
    assert_eq!(chunked.interim, ["HTTP/1.1 100 Continue"]);
    assert!(chunked.closed, "the proxy closes the connection after the response");
    assert_eq!(chunked.status, 200, "{}", chunked.text());
    assert_eq!(moto.get_object("proxied", "chunked"), b"chunky body!!");

    assert_eq!(proxy.requests(), 4);
    assert_eq!(proxy.faults_injected(), 0);
}

#[test]
fn proxy_answers_503_n_times_then_passes() {
    let moto = Moto::start();
    moto.create_bucket("throttled");
    moto.put_object("throttled", "k", b"ok");
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.set_fault(Fault::ServiceUnavailable { times: 2 });

    for attempt in 1..=2 {
        let response = http_request(&proxy.endpoint, "GET", "/throttled/k", &[], b"").expect("GET via proxy");
        assert_eq!(response.status, 503, "attempt {attempt}");
        assert_eq!(xml_tag_values(&response.text(), "Code"), ["SlowDown"], "attempt {attempt}");
    }
    // Bodies of throttled uploads are read and dropped, not forwarded.
    proxy.set_fault(Fault::ServiceUnavailable { times: 1 });
    let put = http_request(&proxy.endpoint, "PUT", "/throttled/k", &[], b"overwritten?").expect("PUT via proxy");
    assert_eq!(put.status, 503);
    assert_eq!(proxy.fault(), Fault::None);
    let response = http_request(&proxy.endpoint, "GET", "/throttled/k", &[], b"").expect("GET via proxy");
    assert_eq!((response.status, response.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(proxy.requests(), 4);
    assert_eq!(proxy.faults_injected(), 3);
}

#[test]
fn proxy_cuts_a_body_after_n_bytes() {
    let moto = Moto::start();
    moto.create_bucket("cut");
    moto.put_large_object("cut", "blob", 10_000, 1);
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.set_fault(Fault::CutAfterBytes { bytes: 1000, times: 1 });

    // A bodiless HEAD passes without using up the cut.
    let head = http_request(&proxy.endpoint, "HEAD", "/cut/blob", &[], b"").expect("HEAD via proxy");
    assert_eq!(head.status, 200);
    let short = http_request(&proxy.endpoint, "GET", "/cut/blob", &[], b"").expect("GET via proxy");
    assert_eq!(short.status, 200);
    assert_eq!(short.header("content-length"), Some("10000"));
    assert!(!short.complete, "the client must see a short read");
    assert_eq!(short.body, deterministic_range(0, 1000, 1));

    let whole = http_request(&proxy.endpoint, "GET", "/cut/blob", &[], b"").expect("GET via proxy");
    assert!(whole.complete);
    assert_eq!(whole.body, deterministic_range(0, 10_000, 1));
    // A ranged resume from where the cut happened, as a resuming downloader would do.
    let resumed = http_request(&proxy.endpoint, "GET", "/cut/blob", &[("Range", "bytes=1000-")], b"").expect("GET");
    assert_eq!((resumed.status, resumed.body.len()), (206, 9000));
    assert_eq!(resumed.body, deterministic_range(1000, 9000, 1));
    assert_eq!(proxy.requests(), 4);
    assert_eq!(proxy.faults_injected(), 1);
}

#[test]
fn proxy_refuses_connections_and_reports_a_dead_upstream() {
    // No moto needed: nothing listens upstream, which is the point of the 502 half.
    let dead_endpoint = format!("http://127.0.0.1:{}", free_port());
    let proxy = FaultProxy::start(&dead_endpoint);

    proxy.set_fault(Fault::Refuse);
    assert!(http_request(&proxy.endpoint, "GET", "/bucket", &[], b"").is_err(), "a refused connection has no answer");
    assert_eq!((proxy.connections(), proxy.requests()), (1, 0));

    proxy.set_fault(Fault::None);
    let response = http_request(&proxy.endpoint, "GET", "/bucket", &[], b"").expect("GET via proxy");
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("cannot reach upstream"), "{}", response.text());
    assert_eq!((proxy.connections(), proxy.requests()), (2, 1));
}

#[test]
fn deterministic_pattern_is_pinned_and_consistent() {
    // Pinned, so a change to the pattern (which would change what every test compares
    // against) is a visible decision rather than an accident.
    assert_eq!(moto::hex(&deterministic_range(0, 16, 0)), "afcd1d7b39a820e2f465b9a16a9e786e");
    assert_eq!(moto::hex(&deterministic_range(5, 8, 200)), "60868b7964a15c97");
    let whole: Vec<u8> = moto::deterministic_bytes(100, 9).collect();
    assert_eq!(whole[37..61], deterministic_range(37, 24, 9)[..]);
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&whole).into();
    assert_eq!(digest, deterministic_sha256(100, 9));
    assert_ne!(deterministic_range(0, 64, 1), deterministic_range(0, 64, 2));
}
