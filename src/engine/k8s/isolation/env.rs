//! A container's environment resolved as the kubelet resolves it
//! (`makeEnvironmentVariables`): `envFrom` sources in order, each key with
//! its prefix (keys that are not valid variable names are skipped), then
//! `env` entries in order, a later definition replacing an earlier one;
//! `$(NAME)` in a value expands to a variable defined before it (`$$` is a
//! literal `$`, an unknown name stays as written); a missing optional
//! source or key defines nothing.

use std::collections::HashMap;

use super::config::{ContainerEnv, EnvValue, NamespaceConfig, SecretText, Source};

/// One variable of a container, as the process will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    /// `None` when the value cannot be known here (a missing required
    /// source: the container would not start; the pod's own fields).
    pub value: Option<SecretText>,
    /// Where the value came from: `Secret shop-env key DATABASE_URL`,
    /// `ConfigMap shop-config (envFrom, prefix APP_) key HOST`, `env value`.
    pub origin: String,
}

/// The container's variables, in the order they were first defined.
pub fn resolve(container: &ContainerEnv, config: &NamespaceConfig) -> Vec<Resolved> {
    let mut vars: Vec<Resolved> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut define = |vars: &mut Vec<Resolved>, var: Resolved| match index.get(&var.name) {
        Some(&at) => vars[at] = var,
        None => {
            index.insert(var.name.clone(), vars.len());
            vars.push(var);
        }
    };
    for from in &container.env_from {
        let entries: Vec<(String, String)> = match from.source {
            Source::ConfigMap => match config.config_maps.get(&from.name) {
                Some(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                None => {
                    missing_source(&mut vars, &mut define, from.optional, from.source, &from.name);
                    continue;
                }
            },
            Source::Secret => match config.secrets.get(&from.name) {
                Some(map) => map.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
                None => {
                    missing_source(&mut vars, &mut define, from.optional, from.source, &from.name);
                    continue;
                }
            },
        };
        for (key, value) in entries {
            let name = format!("{}{key}", from.prefix);
            if !is_env_var_name(&name) {
                continue;
            }
            let prefix = if from.prefix.is_empty() { String::new() } else { format!(", prefix {}", from.prefix) };
            let origin = format!("{} {} (envFrom{prefix}) key {key}", from.source.name(), from.name);
            define(&mut vars, Resolved { name, value: Some(SecretText(value)), origin });
        }
    }
    for entry in &container.env {
        let (value, origin) = match &entry.value {
            EnvValue::Literal(text) => {
                let known: HashMap<&str, &str> =
                    vars.iter().filter_map(|v| Some((v.name.as_str(), v.value.as_ref()?.0.as_str()))).collect();
                (Some(SecretText(expand(text, &known))), "env value".to_string())
            }
            EnvValue::Key { source, name, key, optional } => {
                let found = match source {
                    Source::ConfigMap => config.config_maps.get(name).and_then(|m| m.get(key)).cloned(),
                    Source::Secret => config.secrets.get(name).and_then(|m| m.get(key)).map(|v| v.0.clone()),
                };
                let origin = format!("{} {name} key {key}", source.name());
                match found {
                    Some(value) => (Some(SecretText(value)), origin),
                    None if *optional => continue,
                    None => (None, format!("{origin} (missing: the container would not start)")),
                }
            }
            EnvValue::Downward => (None, "the pod's own fields".to_string()),
        };
        define(&mut vars, Resolved { name: entry.name.clone(), value, origin });
    }
    vars
}

/// A required `envFrom` source that does not exist: the kubelet refuses to
/// start the container. Noted once, under the source's name.
fn missing_source(
    vars: &mut Vec<Resolved>,
    define: &mut impl FnMut(&mut Vec<Resolved>, Resolved),
    optional: bool,
    source: Source,
    name: &str,
) {
    if !optional {
        let origin = format!("{} {name} (envFrom; missing: the container would not start)", source.name());
        define(vars, Resolved { name: format!("({} {name})", source.name()), value: None, origin });
    }
}

/// `$(NAME)` → the value of NAME when defined, `$$` → `$`; anything else as written.
fn expand(text: &str, known: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let name = &inner[..close];
            match known.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The API server's rule for a variable name (`[-._a-zA-Z][-._a-zA-Z0-9]*`).
fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::config::{EnvEntry, EnvFrom};
    use super::*;

    fn config() -> NamespaceConfig {
        let mut config = NamespaceConfig::default();
        config.config_maps.insert(
            "app".into(),
            BTreeMap::from([
                ("DB_HOST".to_string(), "db.dr.internal".to_string()),
                ("MODE".to_string(), "dr".to_string()),
                ("bad key".to_string(), "x".to_string()),
            ]),
        );
        config.secrets.insert(
            "env".into(),
            BTreeMap::from([("DATABASE_URL".to_string(), SecretText("postgres://db.prod.internal/shop".into()))]),
        );
        config
    }

    fn container(env_from: Vec<EnvFrom>, env: Vec<EnvEntry>) -> ContainerEnv {
        ContainerEnv { name: "app".into(), init: false, env_from, env }
    }

    fn value<'a>(vars: &'a [Resolved], name: &str) -> Option<&'a str> {
        vars.iter().find(|v| v.name == name).and_then(|v| v.value.as_ref()).map(|v| v.0.as_str())
    }

    #[test]
    fn env_from_with_a_prefix_then_env_overriding_it() {
        let c = container(
            vec![
                EnvFrom { source: Source::ConfigMap, name: "app".into(), prefix: "APP_".into(), optional: false },
                EnvFrom { source: Source::Secret, name: "env".into(), prefix: String::new(), optional: false },
            ],
            vec![EnvEntry { name: "APP_MODE".into(), value: EnvValue::Literal("production".into()) }],
        );
        let vars = resolve(&c, &config());
        assert_eq!(value(&vars, "APP_DB_HOST"), Some("db.dr.internal"));
        assert_eq!(value(&vars, "APP_MODE"), Some("production"), "env replaces what envFrom set");
        assert_eq!(value(&vars, "DATABASE_URL"), Some("postgres://db.prod.internal/shop"));
        assert!(vars.iter().all(|v| !v.name.contains(' ')), "invalid names are skipped: {vars:?}");
        let origin = &vars.iter().find(|v| v.name == "APP_DB_HOST").unwrap().origin;
        assert_eq!(origin, "ConfigMap app (envFrom, prefix APP_) key DB_HOST");
        assert_eq!(vars.iter().find(|v| v.name == "APP_MODE").unwrap().origin, "env value");
    }

    #[test]
    fn key_references_expansion_and_missing_optional_sources() {
        let c = container(
            vec![EnvFrom { source: Source::Secret, name: "absent".into(), prefix: String::new(), optional: true }],
            vec![
                EnvEntry {
                    name: "URL".into(),
                    value: EnvValue::Key {
                        source: Source::Secret,
                        name: "env".into(),
                        key: "DATABASE_URL".into(),
                        optional: false,
                    },
                },
                EnvEntry { name: "COPY".into(), value: EnvValue::Literal("$(URL)?x=$$(URL)&$(NOPE)".into()) },
                EnvEntry {
                    name: "GONE".into(),
                    value: EnvValue::Key {
                        source: Source::ConfigMap,
                        name: "app".into(),
                        key: "NONE".into(),
                        optional: true,
                    },
                },
            ],
        );
        let vars = resolve(&c, &config());
        assert_eq!(value(&vars, "URL"), Some("postgres://db.prod.internal/shop"));
        assert_eq!(value(&vars, "COPY"), Some("postgres://db.prod.internal/shop?x=$(URL)&$(NOPE)"));
        assert!(vars.iter().all(|v| v.name != "GONE"));
        assert_eq!(vars.len(), 2, "an optional missing envFrom defines nothing: {vars:?}");
        assert_eq!(vars[0].origin, "Secret env key DATABASE_URL");
    }

    #[test]
    fn secret_values_never_show_in_debug_output() {
        let c = container(
            vec![EnvFrom { source: Source::Secret, name: "env".into(), prefix: String::new(), optional: false }],
            vec![],
        );
        let text = format!("{:?}", resolve(&c, &config()));
        assert!(!text.contains("db.prod.internal"), "{text}");
    }
}
