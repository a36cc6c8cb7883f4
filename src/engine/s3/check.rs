//! `s3-check`: read how a bucket is provisioned and compare it with what
//! the runbook expects, property by property. A property that cannot be
//! read (access denied) is "unknown", never a pass. The same step probes an
//! identity's permissions ([`super::probe`]) and compares a replica with its
//! source ([`super::replica`]).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop<T> {
    Known(T),
    Unknown(String),
}

impl<T: Clone> Prop<T> {
    pub fn known(&self) -> Option<T> {
        match self {
            Prop::Known(value) => Some(value.clone()),
            Prop::Unknown(_) => None,
        }
    }
}

/// What to read beyond the usual properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub object_lock: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketProperties {
    pub region: Prop<String>,
    pub versioning: Prop<bool>,
    pub encryption: Prop<bool>,
    pub encryption_algorithm: Option<String>,
    pub public_access_blocked: Prop<bool>,
    pub replication: Prop<bool>,
    /// Buckets that enabled replication rules write to.
    pub replication_destinations: Vec<String>,
    pub ownership_enforced: Prop<bool>,
    pub ownership: Option<String>,
    pub object_lock: Prop<bool>,
    /// The default retention (`GOVERNANCE, 30 days`), when object lock has one.
    pub object_lock_retention: Option<String>,
}

impl BucketProperties {
    pub fn flag(&self, name: &str) -> Option<&Prop<bool>> {
        Some(match name {
            "versioning" => &self.versioning,
            "encryption" => &self.encryption,
            "public_access_blocked" => &self.public_access_blocked,
            "replication" => &self.replication,
            "ownership_enforced" => &self.ownership_enforced,
            "object_lock" => &self.object_lock,
            _ => return None,
        })
    }
}

pub use crate::drill::evidence::CheckRow;

/// The settings "same as the source bucket" compares, as provisioning pages list them.
pub const SAME_AS_PROPERTIES: [&str; 4] = ["ownership_enforced", "public_access_blocked", "versioning", "encryption"];

/// A rendered `s3-check` with the properties of every bucket it names.
pub struct CheckInput<'a> {
    pub bucket: &'a str,
    pub properties: &'a BucketProperties,
    pub expect: &'a BTreeMap<String, bool>,
    /// `object_ownership = "BucketOwnerEnforced"`.
    pub expect_values: &'a BTreeMap<String, String>,
    pub same_as: Option<(&'a str, &'a BucketProperties)>,
    pub other_region_than: Option<(&'a str, &'a BucketProperties)>,
    pub replicated_from: Option<(&'a str, &'a BucketProperties)>,
}

fn show(prop: &Prop<bool>) -> String {
    match prop {
        Prop::Known(true) => "yes".into(),
        Prop::Known(false) => "no".into(),
        Prop::Unknown(why) => format!("unknown ({why})"),
    }
}

pub fn evaluate(input: &CheckInput<'_>) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    let mut expected: BTreeMap<String, (bool, String)> =
        input.expect.iter().map(|(k, v)| (k.clone(), (*v, "expect".to_string()))).collect();
    if let Some((source, props)) = input.same_as {
        for name in SAME_AS_PROPERTIES {
            if expected.contains_key(name) {
                continue;
            }
            match props.flag(name) {
                Some(Prop::Known(value)) => {
                    expected.insert(name.to_string(), (*value, format!("same as {source}")));
                }
                Some(Prop::Unknown(why)) => rows.push(CheckRow {
                    property: name.to_string(),
                    expected: format!("same as {source} (unknown: {why})"),
                    actual: input.properties.flag(name).map(show).unwrap_or_default(),
                    ok: false,
                }),
                None => {}
            }
        }
    }
    for (name, (want, why)) in &expected {
        let Some(actual) = input.properties.flag(name) else { continue };
        let mut shown = show(actual);
        if let (true, Some(retention)) = (name == "object_lock", &input.properties.object_lock_retention) {
            shown = format!("{shown} (default retention {retention})");
        }
        rows.push(CheckRow {
            property: name.clone(),
            expected: if why == "expect" { yes_no(*want) } else { format!("{} ({why})", yes_no(*want)) },
            actual: shown,
            ok: actual.known() == Some(*want),
        });
    }
    if let Some(want) = input.expect_values.get("object_ownership") {
        let (actual, ok) = match (&input.properties.ownership_enforced, &input.properties.ownership) {
            (Prop::Unknown(why), _) => (format!("unknown ({why})"), false),
            (Prop::Known(_), Some(ownership)) => (ownership.clone(), ownership == want),
            // No ownership controls: objects belong to their writers and ACLs apply.
            (Prop::Known(_), None) => ("none set (ObjectWriter)".to_string(), want == "ObjectWriter"),
        };
        rows.push(CheckRow { property: "object_ownership".into(), expected: want.clone(), actual, ok });
    }
    if let Some((source, props)) = input.other_region_than {
        let (mine, theirs) = (input.properties.region.known(), props.region.known());
        rows.push(CheckRow {
            property: "region".into(),
            expected: format!("not {} (the region of {source})", theirs.clone().unwrap_or_else(|| "unknown".into())),
            actual: mine.clone().unwrap_or_else(|| "unknown".into()),
            ok: matches!((&mine, &theirs), (Some(a), Some(b)) if a != b),
        });
    }
    if let Some((source, props)) = input.replicated_from {
        let ok = props.replication_destinations.iter().any(|d| d == input.bucket);
        rows.push(CheckRow {
            property: "replicated from".into(),
            expected: format!("{source} has an enabled rule writing here"),
            actual: match &props.replication {
                Prop::Unknown(why) => format!("unknown ({why})"),
                Prop::Known(_) if props.replication_destinations.is_empty() => format!("{source} replicates nowhere"),
                Prop::Known(_) => format!("{source} replicates to {}", props.replication_destinations.join(", ")),
            },
            ok,
        });
    }
    rows
}

fn yes_no(value: bool) -> String {
    if value { "yes".into() } else { "no".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(versioning: bool, region: &str) -> BucketProperties {
        BucketProperties {
            region: Prop::Known(region.into()),
            versioning: Prop::Known(versioning),
            encryption: Prop::Known(true),
            encryption_algorithm: Some("AES256".into()),
            public_access_blocked: Prop::Unknown("access denied".into()),
            replication: Prop::Known(false),
            replication_destinations: Vec::new(),
            ownership_enforced: Prop::Known(true),
            ownership: Some("BucketOwnerEnforced".into()),
            object_lock: Prop::Unknown("not read".into()),
            object_lock_retention: None,
        }
    }

    #[test]
    fn expect_compares_and_unknown_is_never_a_pass() {
        let bucket = props(false, "eu-west-1");
        let expect = BTreeMap::from([("versioning".to_string(), true), ("public_access_blocked".to_string(), true)]);
        let rows = evaluate(&CheckInput {
            bucket: "b",
            properties: &bucket,
            expect: &expect,
            expect_values: &BTreeMap::new(),
            same_as: None,
            other_region_than: None,
            replicated_from: None,
        });
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| !r.ok));
        assert_eq!(rows[0].actual, "unknown (access denied)");
        assert_eq!(rows[1].actual, "no");
    }

    #[test]
    fn same_as_other_region_and_replicated_from() {
        let mut source = props(true, "eu-west-1");
        source.public_access_blocked = Prop::Known(true);
        source.replication = Prop::Known(true);
        source.replication_destinations = vec!["b".into()];
        let mut bucket = props(true, "eu-central-1");
        bucket.public_access_blocked = Prop::Known(true);
        let expect = BTreeMap::new();
        let rows = evaluate(&CheckInput {
            bucket: "b",
            properties: &bucket,
            expect: &expect,
            expect_values: &BTreeMap::new(),
            same_as: Some(("src", &source)),
            other_region_than: Some(("src", &source)),
            replicated_from: Some(("src", &source)),
        });
        assert_eq!(rows.len(), 6, "{rows:?}");
        assert!(rows.iter().all(|r| r.ok), "{rows:?}");
    }
}

/// An `s3-check` step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStep {
    pub bucket: String,
    pub prefix: String,
    pub expect: BTreeMap<String, bool>,
    pub expect_values: BTreeMap<String, String>,
    pub same_as: Option<String>,
    pub other_region_than: Option<String>,
    pub replicated_from: Option<String>,
    pub access: Option<super::probe::Access>,
    pub replica: Option<super::replica::Replica>,
    pub store: super::StoreConfig,
}

impl CheckStep {
    pub fn render(
        spec: &crate::runbook::S3CheckSpec,
        context: &crate::runbook::template::TemplateContext,
        templater: &crate::runbook::template::Templater,
    ) -> Result<CheckStep, crate::engine::render::RenderError> {
        let render = |t: &crate::runbook::Template| {
            templater.render_plain(&t.text, context).map_err(crate::engine::render::RenderError::Unnamed)
        };
        let optional = |t: &Option<crate::runbook::Template>| t.as_ref().map(render).transpose();
        // Keys may be secrets: rendered with their values, for the S3 client only.
        let secret = |t: &crate::runbook::Template| {
            templater.render_env(&t.text, context).map_err(crate::engine::render::RenderError::Unnamed)
        };
        let access = match &spec.access {
            None => None,
            Some(access) => Some(super::probe::Access {
                identity: match &access.identity {
                    crate::runbook::ProbeIdentity::Keys { access_key_id, secret_access_key } => {
                        super::probe::Identity::Keys {
                            access_key_id: secret(access_key_id)?,
                            secret_access_key: secret(secret_access_key)?,
                        }
                    }
                    crate::runbook::ProbeIdentity::Profile(profile) => {
                        super::probe::Identity::Profile(render(profile)?)
                    }
                },
                can: access.can.clone(),
                cannot: access.cannot.clone(),
            }),
        };
        let replica = match &spec.replica {
            None => None,
            Some(replica) => Some(super::replica::Replica {
                source: render(&replica.source)?,
                max_missing: replica.max_missing,
                max_lag: replica.max_lag,
                sample: replica.sample,
            }),
        };
        Ok(CheckStep {
            bucket: render(&spec.bucket)?,
            prefix: optional(&spec.prefix)?.unwrap_or_default(),
            expect: spec.expect.clone(),
            expect_values: spec.expect_values.clone(),
            same_as: optional(&spec.same_as)?,
            other_region_than: optional(&spec.other_region_than)?,
            replicated_from: optional(&spec.replicated_from)?,
            access,
            replica,
            store: super::StoreConfig {
                endpoint: optional(&spec.endpoint)?,
                profile: optional(&spec.profile)?,
                region: optional(&spec.region)?,
            },
        })
    }

    /// Whether any bucket setting is checked (not only permissions or the replica).
    fn checks_settings(&self) -> bool {
        !self.expect.is_empty()
            || !self.expect_values.is_empty()
            || self.same_as.is_some()
            || self.other_region_than.is_some()
            || self.replicated_from.is_some()
    }
}

/// Reads every bucket the check names and compares.
pub async fn settings(store: &super::Store, step: &CheckStep) -> Result<Vec<CheckRow>, super::S3Error> {
    if !step.checks_settings() {
        return Ok(Vec::new());
    }
    let wanted = Wanted { object_lock: step.expect.contains_key("object_lock") };
    let mine = store.properties(&step.bucket, &wanted).await?;
    let mut others: BTreeMap<String, BucketProperties> = BTreeMap::new();
    for source in [&step.same_as, &step.other_region_than, &step.replicated_from].into_iter().flatten() {
        if !others.contains_key(source) {
            others.insert(source.clone(), store.properties(source, &Wanted::default()).await?);
        }
    }
    fn pick<'a>(
        others: &'a BTreeMap<String, BucketProperties>,
        name: &'a Option<String>,
    ) -> Option<(&'a str, &'a BucketProperties)> {
        name.as_ref().and_then(|n| others.get(n).map(|p| (n.as_str(), p)))
    }
    Ok(evaluate(&CheckInput {
        bucket: &step.bucket,
        properties: &mine,
        expect: &step.expect,
        expect_values: &step.expect_values,
        same_as: pick(&others, &step.same_as),
        other_region_than: pick(&others, &step.other_region_than),
        replicated_from: pick(&others, &step.replicated_from),
    }))
}

/// One line naming everything the check found wrong, or `None` when all is well.
pub fn failures(result: &crate::drill::evidence::BucketResult) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    let bad: Vec<String> = result
        .rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{} (expected {}, actual {})", r.property, r.expected, r.actual))
        .collect();
    if !bad.is_empty() {
        found.push(format!("bucket differs: {}", bad.join("; ")));
    }
    found.extend(result.probes.iter().filter(|p| !p.ok).filter_map(|p| p.finding.clone()));
    if !result.probes_left.is_empty() {
        found.push(format!("probe objects left behind: {}", result.probes_left.join(", ")));
    }
    if let Some(replica) = &result.replica {
        found.extend(super::replica::failures(replica));
    }
    (!found.is_empty()).then(|| found.join("; "))
}
