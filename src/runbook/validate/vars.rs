//! Checks of the `[vars]` table: names, `env`, secrets and `choices`, and
//! defaults that refer to other variables without forming a cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::templates::TemplateUse;
use super::{BUILTIN_DRILL, Validator, is_env_name, is_identifier, template};
use crate::runbook::model::{RawVar, Sp};
use crate::runbook::types::VarDef;

impl Validator<'_> {
    pub(super) fn var(&mut self, name: &Sp<String>, var: &Sp<RawVar>) -> VarDef {
        if name.as_str() == BUILTIN_DRILL {
            self.error(
                name.span(),
                "`drill` is reserved (templates use `{{ drill.id }}`, `{{ drill.dir }}`, `{{ drill.downloads }}`)",
            );
        }
        if !is_identifier(name) {
            self.error(
                name.span(),
                format!("variable name `{}` must be letters, digits and `_`, not starting with a digit (templates use it as `{{{{ name }}}}`)", name.as_str()),
            );
        }
        if let Some(env) = &var.env
            && !is_env_name(env)
        {
            self.error(env.span(), format!("`env` = `{}` is not a valid environment variable name", env.as_str()));
        }
        if var.secret
            && let Some(default) = &var.default
        {
            self.error(
                default.span(),
                format!(
                    "secret `{}` cannot have a default: the value would sit in the runbook file; use `env` or a prompt",
                    name.as_str()
                ),
            );
        }
        let choices = var.choices.as_ref().map(|c| c.to_vec()).unwrap_or_default();
        if let Some(raw_choices) = &var.choices {
            if choices.is_empty() {
                self.error(raw_choices.span(), "`choices` is empty");
            }
            if var.secret {
                self.error(raw_choices.span(), "a secret cannot have `choices`");
            }
            if let Some(default) = &var.default
                && !default.contains("{{")
                && !choices.iter().any(|c| c == default.as_str())
            {
                self.error(default.span(), format!("default `{}` is not one of `choices`", default.as_str()));
            }
        }
        VarDef {
            name: name.to_string(),
            default: var.default.as_ref().map(template),
            prompt: var.prompt.as_ref().map(|p| p.to_string()),
            help: var.help.as_ref().map(|h| h.to_string()),
            secret: var.secret,
            env: var.env.as_ref().map(|e| e.to_string()),
            choices,
        }
    }

    /// Defaults may use other variables, but not secrets and not in a cycle.
    pub(super) fn check_var_defaults(&mut self, raw_vars: &[(&Sp<String>, &Sp<RawVar>)], vars: &[VarDef]) {
        let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for var in vars {
            let Some(default) = &var.default else { continue };
            let names = self.check_names(default, TemplateUse::Plain, vars, &HashMap::new(), &HashMap::new(), "");
            let deps = names
                .iter()
                .filter_map(|name| vars.iter().find(|v| &v.name == name).map(|v| v.name.as_str()))
                .collect();
            graph.insert(var.name.as_str(), deps);
        }
        for (name, raw) in raw_vars {
            if let Some(cycle) = find_cycle(name.as_str(), &graph) {
                let span = raw.default.as_ref().map_or(name.span(), |d| d.span());
                self.error(span, format!("variable defaults form a cycle: {}", cycle.join(" -> ")));
            }
        }
    }
}

fn find_cycle<'a>(start: &'a str, graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        start: &str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        for &next in graph.get(node).map(Vec::as_slice).unwrap_or(&[]) {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next) {
                path.push(next);
                if visit(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start];
    let mut seen = BTreeSet::new();
    visit(start, start, graph, &mut path, &mut seen).then(|| path.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found() {
        let mut graph = BTreeMap::new();
        graph.insert("a", vec!["b"]);
        graph.insert("b", vec!["a"]);
        graph.insert("c", vec!["a"]);
        assert_eq!(find_cycle("a", &graph), Some(vec!["a".into(), "b".into(), "a".into()]));
        assert_eq!(find_cycle("c", &graph), None);
    }
}
