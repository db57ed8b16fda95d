//! Validating a stack and resolving it into a plan: names, references, the dependency graph
//! (cycles are spelled out) and each member's depth in it, which orders teardown.

use std::collections::{HashMap, HashSet};

use super::{DependsOn, StackDefinition, StackMember, DEFAULT_NETWORK};
use crate::error::{Error, Result};
use crate::network::{NetworkDefinition, VolumeDefinition};

/// A validated stack: members by index, dependencies resolved, teardown levels computed.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) members: Vec<StackMember>,
    /// For each member, its dependencies (member index, condition), implied ones included.
    pub(crate) deps: Vec<Vec<(usize, DependsOn)>>,
    /// For each member, 0 without dependencies, else one more than its deepest dependency.
    pub(crate) levels: Vec<usize>,
    /// Network definitions to create (the default network only when a member uses it).
    pub(crate) networks: Vec<NetworkDefinition>,
    pub(crate) volumes: Vec<VolumeDefinition>,
}

impl StackDefinition {
    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::invalid("stack", &self.name, reason)
    }

    pub(crate) fn plan(&self) -> Result<Plan> {
        if let Some(reason) = &self.invalid {
            return Err(self.invalid(reason.clone()));
        }
        check_name("stack name", &self.name).map_err(|r| self.invalid(r))?;
        if self.members.is_empty() {
            return Err(self.invalid("the stack has no members"));
        }
        let index = self.check_names()?;
        let network_names: HashSet<&str> = self
            .networks
            .iter()
            .map(|n| n.name())
            .chain([DEFAULT_NETWORK])
            .collect();
        let volume_names: HashSet<&str> = self.volumes.iter().map(|v| v.name()).collect();
        let mut fronted: HashMap<&str, &str> = HashMap::new();
        let mut uses_default = false;
        for m in &self.members {
            let at = |reason: String| self.invalid(format!("member {}: {reason}", m.name));
            m.definition.validate().map_err(|e| at(e.to_string()))?;
            for (dep, _) in m.all_dependencies() {
                if dep == m.name {
                    return Err(at("it depends on itself".into()));
                }
                if !index.contains_key(dep) {
                    return Err(at(format!(
                        "it refers to an unknown member {dep:?} (members: {})",
                        self.member_list()
                    )));
                }
            }
            for (network, _) in &m.networks {
                if !network_names.contains(network.as_str()) {
                    return Err(at(format!(
                        "it joins an undeclared network {network:?} (declare it with StackDefinition::with_network)"
                    )));
                }
            }
            for v in &m.volumes {
                if !volume_names.contains(v.volume.as_str()) {
                    return Err(at(format!(
                        "it mounts an undeclared volume {:?} (declare it with StackDefinition::with_volume)",
                        v.volume
                    )));
                }
            }
            let own_namespace = m.network_of.is_none() && m.definition.network_mode.is_none();
            if !own_namespace && !m.networks.is_empty() {
                return Err(at(
                    "it shares another network namespace, so it cannot join networks".into(),
                ));
            }
            if own_namespace
                && (m.networks.is_empty() || m.networks.iter().any(|(n, _)| n == DEFAULT_NETWORK))
            {
                uses_default = true;
            }
            if let Some(target) = &m.ambassador_for {
                if !own_namespace {
                    return Err(at(
                        "an ambassador needs a network namespace of its own".into()
                    ));
                }
                let t = &self.members[index[target.as_str()]];
                if t.network_of.is_some() || t.definition.network_mode.is_some() {
                    return Err(at(format!(
                        "{target} shares another network namespace, so it cannot have an ambassador"
                    )));
                }
                if t.definition.hostname.as_deref() == Some(target.as_str()) {
                    return Err(at(format!(
                        "{target} has the host name {target:?}, which the engine would also resolve to it, not to the ambassador"
                    )));
                }
                if let Some(other) = fronted.insert(target.as_str(), m.name.as_str()) {
                    return Err(at(format!(
                        "{other} is already the ambassador for {target}"
                    )));
                }
            }
        }
        let deps: Vec<Vec<(usize, DependsOn)>> = self
            .members
            .iter()
            .map(|m| {
                m.all_dependencies()
                    .into_iter()
                    .map(|(d, c)| (index[d], c))
                    .collect()
            })
            .collect();
        let levels = self.levels(&deps)?;
        let mut networks: Vec<NetworkDefinition> = self
            .networks
            .iter()
            .filter(|n| n.name() != DEFAULT_NETWORK)
            .cloned()
            .collect();
        if uses_default {
            networks.push(
                self.networks
                    .iter()
                    .find(|n| n.name() == DEFAULT_NETWORK)
                    .cloned()
                    .unwrap_or_else(|| NetworkDefinition::new(DEFAULT_NETWORK)),
            );
        }
        Ok(Plan {
            members: self.members.clone(),
            deps,
            levels,
            networks,
            volumes: self.volumes.clone(),
        })
    }

    /// Checks every name is valid and unique; returns member name -> index.
    fn check_names(&self) -> Result<HashMap<&str, usize>> {
        let mut index = HashMap::new();
        for (i, m) in self.members.iter().enumerate() {
            check_name("member name", &m.name).map_err(|r| self.invalid(r))?;
            if index.insert(m.name.as_str(), i).is_some() {
                return Err(self.invalid(format!("two members are called {:?}", m.name)));
            }
        }
        let mut seen = HashSet::new();
        for n in &self.networks {
            check_name("network name", n.name()).map_err(|r| self.invalid(r))?;
            if !seen.insert(n.name()) {
                return Err(self.invalid(format!("two networks are called {:?}", n.name())));
            }
        }
        let mut seen = HashSet::new();
        for v in &self.volumes {
            check_name("volume name", v.name()).map_err(|r| self.invalid(r))?;
            if !seen.insert(v.name()) {
                return Err(self.invalid(format!("two volumes are called {:?}", v.name())));
            }
        }
        Ok(index)
    }

    /// Each member's depth in the dependency graph; a cycle is an error that spells it out.
    fn levels(&self, deps: &[Vec<(usize, DependsOn)>]) -> Result<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Visiting,
            Done,
        }
        fn visit(
            i: usize,
            deps: &[Vec<(usize, DependsOn)>],
            marks: &mut [Mark],
            levels: &mut [usize],
            path: &mut Vec<usize>,
        ) -> std::result::Result<(), Vec<usize>> {
            match marks[i] {
                Mark::Done => return Ok(()),
                Mark::Visiting => {
                    let start = path.iter().position(|&p| p == i).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(i);
                    return Err(cycle);
                }
                Mark::New => {}
            }
            marks[i] = Mark::Visiting;
            path.push(i);
            let mut level = 0;
            for &(d, _) in &deps[i] {
                visit(d, deps, marks, levels, path)?;
                level = level.max(levels[d] + 1);
            }
            path.pop();
            marks[i] = Mark::Done;
            levels[i] = level;
            Ok(())
        }
        let mut marks = vec![Mark::New; deps.len()];
        let mut levels = vec![0; deps.len()];
        for i in 0..deps.len() {
            if let Err(cycle) = visit(i, deps, &mut marks, &mut levels, &mut Vec::new()) {
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|&c| self.members[c].name.as_str())
                    .collect();
                return Err(self.invalid(format!(
                    "the members' dependencies form a cycle: {} (each waits for the next)",
                    names.join(" -> ")
                )));
            }
        }
        Ok(levels)
    }
}

/// Checks a name usable in engine names and as a DNS name: a letter or digit, then letters,
/// digits, `_`, `.` or `-`.
pub(crate) fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the {what} {name:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::ContainerDefinition;

    fn member(name: &str) -> StackMember {
        StackMember::new(name, ContainerDefinition::new("busybox"))
    }

    #[test]
    fn levels_follow_the_dependencies() {
        let plan = StackDefinition::new("s")
            .with_member(member("app").depends_on("db", DependsOn::Healthy))
            .with_member(member("db"))
            .with_member(member("log").with_network_of("app"))
            .plan()
            .unwrap();
        assert_eq!(plan.levels, vec![1, 0, 2]);
        assert_eq!(plan.deps[2], vec![(0, DependsOn::Started)]);
        assert_eq!(plan.networks.len(), 1, "only the default network");
    }

    #[test]
    fn cycles_are_spelled_out() {
        let err = StackDefinition::new("s")
            .with_member(member("a").depends_on("b", DependsOn::Started))
            .with_member(member("b").depends_on("c", DependsOn::Ready))
            .with_member(member("c").depends_on("a", DependsOn::Started))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cycle: a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn unknown_references_are_named() {
        let cases = [
            (
                member("a").depends_on("nope", DependsOn::Started),
                "unknown member \"nope\"",
            ),
            (
                member("a").with_network("back", Vec::<String>::new()),
                "undeclared network \"back\"",
            ),
            (
                member("a").with_volume("data", "/d", false),
                "undeclared volume \"data\"",
            ),
            (member("a").with_network_of("a"), "depends on itself"),
        ];
        for (m, expected) in cases {
            let err = StackDefinition::new("s")
                .with_member(m)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("member a") && err.contains(expected), "{err}");
        }
        let err = StackDefinition::new("s")
            .with_member(member("a"))
            .configure("b", |m| m)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown member \"b\""), "{err}");
    }

    #[test]
    fn names_must_be_usable_by_the_engine() {
        for bad in ["", "-a", "a b", "a/b"] {
            let err = StackDefinition::new("s")
                .with_member(member(bad))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("member name"), "{err}");
        }
        let err = StackDefinition::new("s")
            .with_member(member("a"))
            .with_member(member("a"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("two members are called \"a\""), "{err}");
    }

    #[test]
    fn one_ambassador_per_member() {
        let err = StackDefinition::new("s")
            .with_member(member("api"))
            .with_member(member("p1").ambassador_for("api"))
            .with_member(member("p2").ambassador_for("api"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p1 is already the ambassador for api"),
            "{err}"
        );
    }
}
