//! What a configuration value points at, as SHA-256 fingerprints: two
//! values are the same target when they name the same service, however
//! spelled. `postgres://dr:pw@db.prod.internal/shop` and
//! `postgresql://app:other@DB.prod.internal:5432/shop?sslmode=require` are
//! one database (credentials, options and the scheme's spelling do not
//! matter; the default port is filled in). A bare host (`db.prod.internal`,
//! `db.prod.internal:5432`) is compared with the hosts of URLs. Other values
//! are compared as written only when they name a bucket or are a credential;
//! a port, a flag or a class name points at nothing.
//!
//! A cluster-local name means a different service in each namespace and
//! cluster: `postgres` in the DR namespace is DR's own Service, so it is
//! qualified with the namespace (and the cluster) before hashing, and
//! `postgres.shop-production` from DR is production's. Loopback names are
//! the pod itself: never a shared target.
//!
//! Only fingerprints are kept; values are dropped as soon as they are hashed.

use sha2::{Digest, Sha256};

/// Where a value lives, for qualifying cluster-local names.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub namespace: &'a str,
    /// The API server: the same Service name in two clusters is two services.
    pub cluster: &'a str,
    /// Namespaces a two-label name (`postgres.shop-production`) may refer to.
    pub namespaces: &'a [&'a str],
}

/// The fingerprints of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The whole target: a URL's scheme, host, port and database or bucket;
    /// a bare value as written (trimmed; case-folded when it is a host).
    pub whole: [u8; 32],
    /// The host it names, if any.
    pub host: Option<[u8; 32]>,
    /// A bare host (not inside a URL).
    pub bare_host: bool,
}

/// The target of `value` (the value of variable `key`), or `None` when it
/// points at nothing shared (empty, loopback).
pub fn target(key: &str, value: &str, scope: Scope<'_>) -> Option<Target> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.contains("://")
        && let Ok(url) = url::Url::parse(value)
        && let Some(host) = url.host_str().filter(|h| !h.is_empty())
    {
        let scheme = canonical_scheme(url.scheme());
        // An `s3://` host is a bucket, not a Service.
        let host =
            if matches!(scheme.as_str(), "s3" | "gs") { host.to_ascii_lowercase() } else { qualify(host, scope)? };
        let port = url.port().or_else(|| default_port(&scheme));
        // The database (postgres://…/shop), bucket (s3://bucket), vhost
        // (amqp://…/vhost) or Redis database number: the first path segment.
        // `s3://bucket/prefix`: the bucket is the host, a prefix is not another target.
        let path = match scheme.as_str() {
            "s3" | "gs" => "",
            _ => url.path().trim_start_matches('/').split('/').next().unwrap_or_default(),
        };
        let whole = format!("url\0{scheme}\0{host}\0{}\0{path}", port.map(|p| p.to_string()).unwrap_or_default());
        return Some(Target { whole: hash(&whole), host: Some(hash(&format!("host\0{host}"))), bare_host: false });
    }
    // A single word is a Service name only where a host is expected
    // (`DB_HOST=postgres`); elsewhere (`BUCKET=shop-media`) it is a name.
    // Elsewhere a host has a dot or a port and is written in lower case
    // (`myapp.mail.EmailBackend` is a class name, not a host).
    let upper = key.to_ascii_uppercase();
    let names_a_host = upper.ends_with("HOST")
        || upper.ends_with("HOSTNAME")
        || (value.contains(['.', ':']) && !value.chars().any(|c| c.is_ascii_uppercase()));
    if let Some(host) = bare_host(value).filter(|_| names_a_host) {
        let host = qualify(&host, scope)?;
        let host_hash = hash(&format!("host\0{host}"));
        // `db.prod.internal:5432` and `db.prod.internal` share the host; the
        // whole value keeps the port.
        let port = value.rsplit_once(':').map(|(_, p)| p).filter(|p| p.chars().all(|c| c.is_ascii_digit()));
        let whole = hash(&format!("bare\0{host}\0{}", port.unwrap_or_default()));
        return Some(Target { whole, host: Some(host_hash), bare_host: true });
    }
    // Other values point at something only when they name a bucket or are
    // a credential (the same key is the same account); a port, a flag or a
    // backend's class name shared with production reaches nothing.
    let key = key.to_ascii_uppercase();
    let identifies =
        ["BUCKET", "PASSWORD", "SECRET", "TOKEN", "KEY", "USER", "ACCOUNT"].iter().any(|w| key.contains(w));
    identifies.then(|| Target { whole: hash(&format!("text\0{value}")), host: None, bare_host: false })
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// `postgresql` is `postgres`, `rediss` is Redis over TLS: the same server.
fn canonical_scheme(scheme: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "postgresql" | "postgis" | "pgsql" => "postgres".into(),
        "rediss" => "redis".into(),
        "amqps" => "amqp".into(),
        "mysql2" | "mariadb" => "mysql".into(),
        "mongodb+srv" => "mongodb".into(),
        "smtps" => "smtp".into(),
        _ => scheme,
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "amqp" => 5672,
        "mongodb" => 27017,
        "http" => 80,
        "https" => 443,
        "smtp" => 25,
        _ => return None,
    })
}

/// A value that is a host name, with or without a port: letters, digits,
/// dots and dashes, and at least one letter (a number is not a host), or an
/// IPv4 address.
fn bare_host(value: &str) -> Option<String> {
    let host = match value.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => value,
    };
    let ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && (host.chars().any(|c| c.is_ascii_alphabetic()) || host.parse::<std::net::Ipv4Addr>().is_ok())
        && !host.starts_with(['.', '-']);
    ok.then(|| host.to_ascii_lowercase())
}

/// The host as one string for every spelling of it; `None` for loopback.
fn qualify(host: &str, scope: Scope<'_>) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host == "localhost" || host.starts_with("127.") || host == "::1" || host == "0.0.0.0" {
        return None;
    }
    let local = |name: &str, namespace: &str| format!("{name}.{namespace}.svc@{}", scope.cluster);
    if let Some(rest) = host.strip_suffix(".svc.cluster.local").or_else(|| host.strip_suffix(".svc")) {
        return Some(match rest.split_once('.') {
            Some((name, namespace)) => local(name, namespace),
            None => local(rest, scope.namespace),
        });
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] if name.parse::<u8>().is_err() => Some(local(name, scope.namespace)),
        [name, namespace] if scope.namespaces.contains(namespace) => Some(local(name, namespace)),
        _ => Some(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DR: Scope<'static> =
        Scope { namespace: "shop-dr", cluster: "https://k8s", namespaces: &["shop-dr", "shop-production"] };
    const PROD: Scope<'static> =
        Scope { namespace: "shop-production", cluster: "https://k8s", namespaces: &["shop-dr", "shop-production"] };

    fn same(a: &str, sa: Scope<'_>, b: &str, sb: Scope<'_>) -> bool {
        target("DB_HOST", a, sa).map(|t| t.whole) == target("DB_HOST", b, sb).map(|t| t.whole)
    }

    #[test]
    fn urls_are_the_same_target_whatever_the_credentials_scheme_spelling_and_port() {
        assert!(same(
            "postgres://dr:pw@db.prod.internal/shop",
            DR,
            "postgresql://app:other@DB.prod.internal:5432/shop?sslmode=require",
            PROD
        ));
        assert!(!same("postgres://db.prod.internal/shop", DR, "postgres://db.prod.internal/shop_dr", PROD));
        assert!(!same("postgres://db.prod.internal:6432/shop", DR, "postgres://db.prod.internal/shop", PROD));
        assert!(same("rediss://:pw@cache.internal:6379/0", DR, "redis://cache.internal/0", PROD));
        assert!(same("s3://shop-backups/daily", DR, "s3://shop-backups/", PROD));
    }

    #[test]
    fn a_bare_host_shares_the_host_of_a_url() {
        let bare = target("DB_HOST", "DB.prod.internal:5432", DR).unwrap();
        let url = target("DATABASE_URL", "postgres://db.prod.internal/shop", PROD).unwrap();
        assert!(bare.bare_host && !url.bare_host);
        assert_eq!(bare.host, url.host);
    }

    #[test]
    fn cluster_local_names_are_qualified_by_namespace_and_cluster() {
        assert!(!same("postgres", DR, "postgres", PROD), "each namespace's own Service");
        assert!(same("postgres.shop-production", DR, "postgres", PROD));
        assert!(same("postgres.shop-production.svc.cluster.local:5432", DR, "postgres:5432", PROD));
        let other = Scope { cluster: "https://other", ..PROD };
        assert!(!same("postgres.shop-production", DR, "postgres", other), "another cluster's Service");
        assert!(target("DATABASE_URL", "postgres://localhost/shop", DR).is_none());
        assert!(target("DB_HOST", "127.0.0.1:5432", DR).is_none());
        assert!(target("DB_HOST", "  ", DR).is_none());
    }

    #[test]
    fn other_values_compare_as_written() {
        let bucket = |value: &str, scope| target("AWS_STORAGE_BUCKET_NAME", value, scope).map(|t| t.whole);
        assert_eq!(bucket("shop-media", DR), bucket("shop-media", PROD), "a bucket name is not a Service");
        assert_ne!(bucket("shop-media", DR), bucket("shop-media-dr", PROD));
        assert!(target("DB_PORT", "5432", DR).is_none(), "a port points at nothing");
        assert!(target("EMAIL_BACKEND", "smtp", DR).is_none());
        assert!(target("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend", DR).is_none());
        let password = |scope| target("EMAIL_HOST_PASSWORD", "s3cret-pw", scope).map(|t| t.whole);
        assert_eq!(password(DR), password(PROD), "the same credential is the same account");
    }
}
