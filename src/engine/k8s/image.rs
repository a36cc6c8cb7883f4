//! Container image references as the registry grammar defines them:
//! `[registry[:port]/]repository[:tag][@digest]`. `localhost:5000/app:v1`
//! has a registry with a port (the colon is not a tag), `app` alone means
//! `app:latest`, and `app@sha256:…` is pinned by digest with no tag.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// `registry.example.com:5000`, or `None` for Docker Hub shorthand.
    pub registry: Option<String>,
    /// Path within the registry: `team/app`.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:…`.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{image}` is not a valid image reference: {why}")]
pub struct ImageRefError {
    pub image: String,
    pub why: &'static str,
}

impl ImageRef {
    pub fn parse(image: &str) -> Result<ImageRef, ImageRefError> {
        let fail = |why| ImageRefError { image: image.to_string(), why };
        if image.is_empty() {
            return Err(fail("it is empty"));
        }
        if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains whitespace"));
        }
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => {
                let (algorithm, hex) = digest.split_once(':').ok_or_else(|| fail("the digest has no algorithm"))?;
                if algorithm.is_empty() || hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(fail("the digest is not ALGORITHM:HEX"));
                }
                (name, Some(digest.to_string()))
            }
            None => (image, None),
        };
        // The registry is the first component when it looks like a host.
        let (registry, rest) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        // A tag can only follow the last path component.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                (&rest[..colon], Some(rest[colon + 1..].to_string()))
            }
            None => (rest, None),
        };
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(fail("the repository path is empty"));
        }
        if let Some(tag) = &tag
            && (tag.is_empty()
                || tag.len() > 128
                || !tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(fail("the tag may only hold letters, digits, `_`, `.` and `-` (at most 128)"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Ok(ImageRef { registry, path: path.to_string(), tag, digest })
    }

    /// `registry/path` without tag or digest: what two deployments must
    /// share to run "the same image".
    pub fn repository(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag, or the short digest when the image is pinned by digest only.
    pub fn tag_or_digest(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => tag.clone(),
            (None, Some(digest)) => {
                let short: String = digest.chars().take("sha256:".len() + 12).collect();
                format!("@{short}")
            }
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(image: &str) -> ImageRef {
        ImageRef::parse(image).unwrap()
    }

    #[test]
    fn registry_with_port_is_not_a_tag() {
        let image = parse("localhost:5000/team/app:v2.14.1");
        assert_eq!(image.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(image.path, "team/app");
        assert_eq!(image.tag.as_deref(), Some("v2.14.1"));
        assert_eq!(image.repository(), "localhost:5000/team/app");

        let untagged = parse("registry.example.com:443/app");
        assert_eq!(untagged.registry.as_deref(), Some("registry.example.com:443"));
        assert_eq!(untagged.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn no_tag_means_latest_and_hub_shorthand_has_no_registry() {
        let image = parse("nginx");
        assert_eq!((image.registry, image.path.as_str(), image.tag.as_deref()), (None, "nginx", Some("latest")));
        let image = parse("library/nginx:1.27");
        assert_eq!(image.registry, None);
        assert_eq!(image.repository(), "library/nginx");
    }

    #[test]
    fn digests_with_and_without_tags() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = parse(&format!("ghcr.io/acme/web@{digest}"));
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(pinned.tag_or_digest(), "@sha256:abababababab");
        let both = parse(&format!("ghcr.io/acme/web:main-1a2b3c4@{digest}"));
        assert_eq!(both.tag.as_deref(), Some("main-1a2b3c4"));
        assert_eq!(both.to_string(), format!("ghcr.io/acme/web:main-1a2b3c4@{digest}"));
    }

    #[test]
    fn dirty_branch_tags_parse() {
        assert_eq!(parse("acme/web:release-1a2b3c4-dirty").tag.as_deref(), Some("release-1a2b3c4-dirty"));
    }

    #[test]
    fn bad_references_say_why() {
        for bad in ["", "app:", "app@sha256:", "app@nothex:zz", "a b", "/app", "reg.io//app:v1", "app:v1/x:y:"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let error = ImageRef::parse("app:bad*tag").unwrap_err();
        assert!(error.to_string().contains("`app:bad*tag`"), "{error}");
    }

    #[test]
    fn display_round_trips() {
        for image in ["nginx:latest", "localhost:5000/a/b:c", "quay.io/x/y:1.0"] {
            assert_eq!(parse(image).to_string(), image);
        }
    }
}
