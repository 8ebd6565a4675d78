//! Reading a layers file: parse, check everything, resolve defaults, order the
//! layers parents first. Every problem found is reported, each with its line and key.

use crate::Error;
use crate::diag::{Diagnostic, KeyPath, Source};
use crate::model::{AgentDef, AgentSettings, LayerDef, LayersFile, ProvisionerDef, SourceDef};
use conventions::ami_tags;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

/// A checked layers file, layers in build order (every parent before its children,
/// otherwise in file order).
#[derive(Debug, Clone)]
pub struct Layers {
    /// The layers file, as given.
    pub file: PathBuf,
    /// Its folder: provisioned paths are relative to it.
    pub dir: PathBuf,
    pub project: String,
    pub layers: Vec<Layer>,
}

/// One layer with its defaults applied.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Layer {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub source: Option<SourceDef>,
    pub region: String,
    pub instance_type: String,
    pub ssh_username: String,
    /// Packer's `encrypt_boot`. Left out of the serialised settings when `false`: an
    /// unencrypted image is what every layer built before the option existed, so an
    /// opted-out layer keeps its fingerprint, and an encrypted one gets a new one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypt_boot: bool,
    /// Extra tags (defaults merged), never one of the reserved keys.
    pub tags: BTreeMap<String, String>,
    /// Provisioners, their paths normalised (relative, `/`-separated).
    pub provisioners: Vec<ProvisionerDef>,
    /// `immutable-agent`, when the layer bakes it. Left out of the serialised settings
    /// when absent, so the fingerprints of layers without it are what they were before
    /// the option existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// Distance from the root layer (0 for a root).
    #[serde(skip)]
    pub depth: usize,
}

/// `immutable-agent` as a layer bakes it, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Agent {
    /// The binary, relative to the layers file (normalised); it may not exist yet.
    pub binary: String,
    /// The systemd unit, relative to the layers file (normalised); it exists.
    pub unit: String,
    /// Command-line options, `None` when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// Where the agent's files are when neither the layer nor `defaults.agent` says.
pub const AGENT_BINARY_DEFAULT: &str = "immutable-agent";
pub const AGENT_UNIT_DEFAULT: &str = "immutable-agent.service";

/// Why the agent's options cannot be written as they are, or `None`. They go into a
/// shell command, a systemd environment file and a Packer template (where `{{` is
/// Packer's), so they keep to characters that need no quoting in any of them.
pub fn agent_options_problem(options: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || " -_.,:=/+@".contains(c);
    options.chars().find(|&c| !ok(c)).map(|c| {
        format!(
            "agent options may hold letters, digits, spaces and - _ . , : = / + @ (they are written \
             through a shell into a systemd environment file), not {c:?}"
        )
    })
}

impl Layers {
    pub fn get(&self, id: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id == id)
    }
}

/// Tag keys the generator writes itself; a layer may not set them.
pub const RESERVED_TAGS: [&str; 8] = [
    ami_tags::NAME,
    ami_tags::LAYER,
    ami_tags::COMMIT,
    ami_tags::FINGERPRINT,
    ami_tags::PARENT_LAYER,
    ami_tags::PARENT_AMI,
    ami_tags::PROJECT,
    ami_tags::MANAGED_BY,
];

/// Reads and checks a layers file.
pub fn load(file: &Path) -> Result<Layers, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Invalid(vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the layers file: {e}"),
        }])
    })?;
    parse(file, &text)
}

/// Checks the text of a layers file; provisioned paths are looked up next to `file`.
pub fn parse(file: &Path, text: &str) -> Result<Layers, Error> {
    let source = Source::new(file, text);
    let def: LayersFile = toml::from_str(text).map_err(|e| Error::Invalid(vec![source.from_toml(&e)]))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut check = Checker { source: &source, dir: &dir, problems: Vec::new() };
    let layers = check.layers(&def);
    if check.problems.is_empty() {
        Ok(Layers { file: file.to_path_buf(), dir, project: def.project, layers })
    } else {
        let mut problems = check.problems;
        problems.sort_by_key(|d| (d.line, d.column));
        problems.dedup();
        Err(Error::Invalid(problems))
    }
}

struct Checker<'a> {
    source: &'a Source<'a>,
    dir: &'a Path,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn problem(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.problems.push(self.source.at(path, message));
    }

    fn layers(&mut self, def: &LayersFile) -> Vec<Layer> {
        if def.project.trim().is_empty() {
            self.problem(&KeyPath::default().key("project"), "the project name is empty");
        }
        if def.layers.is_empty() {
            self.problem(&KeyPath::default(), "the file defines no layer (add a [[layer]] table)");
        }
        self.tags(&KeyPath::default().key("defaults").key("tags"), &def.defaults.tags);

        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, layer) in def.layers.iter().enumerate() {
            let at = KeyPath::layer(i);
            if let Some(problem) = id_problem(&layer.id) {
                self.problem(&at.clone().key("id"), problem);
            }
            if let Some(&first) = first_seen.get(layer.id.as_str()) {
                let (line, _) = self.line_of(&KeyPath::layer(first).key("id"));
                self.problem(
                    &at.clone().key("id"),
                    format!("duplicate layer id {:?} (first defined on line {line})", layer.id),
                );
            } else {
                first_seen.insert(&layer.id, i);
            }
        }

        let mut resolved = Vec::new();
        for (i, layer) in def.layers.iter().enumerate() {
            resolved.push(self.layer(i, layer, def, &first_seen));
        }
        self.cycles(def, &first_seen);
        if !self.problems.is_empty() {
            return Vec::new();
        }
        order(resolved)
    }

    fn line_of(&self, path: &KeyPath) -> (usize, usize) {
        let d = self.source.at(path, "");
        (d.line, d.column)
    }

    fn layer(&mut self, i: usize, layer: &LayerDef, def: &LayersFile, ids: &HashMap<&str, usize>) -> Layer {
        let at = KeyPath::layer(i);
        match (&layer.parent, &layer.source) {
            (Some(_), Some(_)) => self.problem(
                &at.clone().key("source"),
                format!(
                    "layer {:?} has both `parent` and `source`: a child layer is built from its parent",
                    layer.id
                ),
            ),
            (None, None) => self.problem(
                &at.clone().key("id"),
                format!("layer {:?} has neither `parent` nor `source`", layer.id),
            ),
            (Some(parent), None) if !ids.contains_key(parent.as_str()) => self.problem(
                &at.clone().key("parent"),
                format!("unknown parent {parent:?}: no layer has this id"),
            ),
            (None, Some(source)) => self.source_filter(&at.clone().key("source"), source),
            _ => {}
        }
        let mut missing = Vec::new();
        let mut setting = |key: &'static str, own: &Option<String>, default: &Option<String>| -> String {
            match own.as_ref().or(default.as_ref()) {
                Some(v) if !v.trim().is_empty() => v.clone(),
                _ => {
                    missing.push(key);
                    String::new()
                }
            }
        };
        let region = setting("region", &layer.region, &def.defaults.region);
        let instance_type = setting("instance_type", &layer.instance_type, &def.defaults.instance_type);
        let ssh_username = setting("ssh_username", &layer.ssh_username, &def.defaults.ssh_username);
        if !missing.is_empty() {
            let list = missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            self.problem(
                &at.clone().key("id"),
                format!(
                    "layer {:?} has no {list}: set {} on the layer or in [defaults]",
                    layer.id,
                    if missing.len() > 1 { "them" } else { "it" }
                ),
            );
        }
        self.tags(&at.clone().key("tags"), &layer.tags);
        let mut tags = def.defaults.tags.clone();
        tags.extend(layer.tags.iter().map(|(k, v)| (k.clone(), v.clone())));

        let provisioners = layer
            .provisioners
            .iter()
            .enumerate()
            .map(|(n, p)| self.provisioner(&at.clone().key("provisioner").index(n), p))
            .collect();
        let agent = self.agent(&at, layer.agent.as_ref(), def.defaults.agent.as_ref());
        Layer {
            id: layer.id.clone(),
            name: layer.name.clone().unwrap_or_else(|| layer.id.clone()),
            parent: layer.parent.clone(),
            source: layer.source.clone(),
            region,
            instance_type,
            ssh_username,
            encrypt_boot: layer.encrypt_boot.or(def.defaults.encrypt_boot).unwrap_or(true),
            tags,
            provisioners,
            agent,
            depth: 0,
        }
    }

    /// The layer's agent with `defaults.agent` and the built-in defaults applied, each
    /// setting checked where it was written.
    fn agent(
        &mut self,
        at: &KeyPath,
        own: Option<&AgentDef>,
        defaults: Option<&AgentSettings>,
    ) -> Option<Agent> {
        let none = AgentSettings::default();
        let own = match own? {
            AgentDef::Enabled(false) => return None,
            AgentDef::Enabled(true) => &none,
            AgentDef::With(settings) => settings,
        };
        let defaults = defaults.unwrap_or(&none);
        let own_at = at.clone().key("agent");
        let defaults_at = KeyPath::default().key("defaults").key("agent");
        // Each setting with the key path it was written at (a built-in default: the
        // layer's `agent`), where a problem with it is reported.
        let pick = |key: &str, own: &Option<String>, default: &Option<String>| match (own, default) {
            (Some(v), _) => Some((v.clone(), own_at.clone().key(key))),
            (None, Some(v)) => Some((v.clone(), defaults_at.clone().key(key))),
            (None, None) => None,
        };
        let (binary, binary_at) = pick("binary", &own.binary, &defaults.binary)
            .unwrap_or_else(|| (AGENT_BINARY_DEFAULT.to_owned(), own_at.clone()));
        let (unit, unit_at) = pick("unit", &own.unit, &defaults.unit)
            .unwrap_or_else(|| (AGENT_UNIT_DEFAULT.to_owned(), own_at.clone()));
        let (options, options_at) = pick("options", &own.options, &defaults.options).unwrap_or_default();

        let relative = |raw: &str, what: &str| {
            format!("the agent {what} {raw:?} must be a relative path (from the layers file's folder)")
        };
        let binary = match normalise(&binary) {
            Some(normal) => {
                // It is built later, so it need not exist; but a folder there is a mistake.
                if std::fs::metadata(self.dir.join(&normal)).is_ok_and(|m| m.is_dir()) {
                    self.problem(&binary_at, format!("the agent binary {binary:?} is a directory"));
                }
                normal
            }
            None => {
                self.problem(
                    &binary_at,
                    format!(
                        "{}; at build time, -var agent_binary=PATH takes any path",
                        relative(&binary, "binary")
                    ),
                );
                binary
            }
        };
        let unit = match normalise(&unit) {
            Some(normal) => {
                match std::fs::metadata(self.dir.join(&normal)) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => self.problem(&unit_at, format!("the agent unit {unit:?} is not a file")),
                    Err(_) => self.problem(
                        &unit_at,
                        format!(
                            "the agent unit {unit:?} does not exist (paths are relative to the layers file; \
                             the unit is agent/immutable-agent.service in the provider's sources)"
                        ),
                    ),
                }
                normal
            }
            None => {
                self.problem(&unit_at, relative(&unit, "unit"));
                unit
            }
        };
        let options = options.trim();
        if let Some(problem) = agent_options_problem(options) {
            self.problem(&options_at, problem);
        }
        Some(Agent { binary, unit, options: (!options.is_empty()).then(|| options.to_owned()) })
    }

    fn source_filter(&mut self, at: &KeyPath, source: &SourceDef) {
        if source.owners.is_empty() || source.owners.iter().any(|o| o.trim().is_empty()) {
            self.problem(&at.clone().key("owners"), "list at least one AMI owner (an account id or alias)");
        }
        if source.name.trim().is_empty() {
            self.problem(&at.clone().key("name"), "the AMI name filter is empty");
        }
        self.tags(&at.clone().key("tags"), &source.tags);
    }

    fn tags(&mut self, at: &KeyPath, tags: &BTreeMap<String, String>) {
        for (key, value) in tags {
            let here = at.clone().key(key);
            if RESERVED_TAGS.contains(&key.as_str()) {
                self.problem(&here, format!("tag {key:?} is written by immutable-codegen and cannot be set"));
            } else if key.to_ascii_lowercase().starts_with("aws:") {
                self.problem(
                    &here,
                    format!("tag keys starting with \"aws:\" are reserved by AWS, not {key:?}"),
                );
            } else if key.is_empty() || key.chars().count() > 128 {
                self.problem(&here, "tag keys have 1 to 128 characters");
            } else if value.chars().count() > 256 {
                self.problem(&here, "tag values have at most 256 characters");
            }
        }
    }

    fn provisioner(&mut self, at: &KeyPath, p: &ProvisionerDef) -> ProvisionerDef {
        match p {
            ProvisionerDef::File { source, destination } => {
                let source = self.path(&at.clone().key("source"), source, Kind::Any);
                if destination.trim().is_empty() {
                    self.problem(&at.clone().key("destination"), "the destination is empty");
                }
                ProvisionerDef::File { source, destination: destination.clone() }
            }
            ProvisionerDef::Shell { inline, scripts, environment_vars, execute_command } => {
                if inline.is_empty() == scripts.is_empty() {
                    self.problem(
                        &at.clone().key("type"),
                        "a shell provisioner has either `inline` or `scripts`",
                    );
                }
                for (n, var) in environment_vars.iter().enumerate() {
                    if !var.contains('=') {
                        self.problem(
                            &at.clone().key("environment_vars").index(n),
                            format!("{var:?} is not of the form KEY=value"),
                        );
                    }
                }
                let scripts = scripts
                    .iter()
                    .enumerate()
                    .map(|(n, s)| self.path(&at.clone().key("scripts").index(n), s, Kind::File))
                    .collect();
                ProvisionerDef::Shell {
                    inline: inline.clone(),
                    scripts,
                    environment_vars: environment_vars.clone(),
                    execute_command: execute_command.clone(),
                }
            }
            ProvisionerDef::SaltMasterless {
                local_state_tree,
                local_pillar_roots,
                skip_bootstrap,
                bootstrap_args,
            } => ProvisionerDef::SaltMasterless {
                local_state_tree: self.path(&at.clone().key("local_state_tree"), local_state_tree, Kind::Dir),
                local_pillar_roots: local_pillar_roots
                    .as_ref()
                    .map(|p| self.path(&at.clone().key("local_pillar_roots"), p, Kind::Dir)),
                skip_bootstrap: *skip_bootstrap,
                bootstrap_args: bootstrap_args.clone(),
            },
        }
    }

    /// Normalises a provisioned path and checks it exists with the right kind.
    fn path(&mut self, at: &KeyPath, raw: &str, kind: Kind) -> String {
        let Some(normal) = normalise(raw) else {
            self.problem(
                at,
                format!("{raw:?} must be a relative path (from the layers file's folder) to a file in the image sources"),
            );
            return raw.to_owned();
        };
        let on_disk = self.dir.join(&normal);
        match (std::fs::metadata(&on_disk), kind) {
            (Err(_), _) => self.problem(
                at,
                format!("provisioned file {raw:?} does not exist (paths are relative to the layers file)"),
            ),
            (Ok(m), Kind::File) if !m.is_file() => self.problem(at, format!("{raw:?} is not a file")),
            (Ok(m), Kind::Dir) if !m.is_dir() => self.problem(at, format!("{raw:?} is not a directory")),
            _ => {}
        }
        if raw.ends_with('/') && normal != "." { format!("{normal}/") } else { normal }
    }

    fn cycles(&mut self, def: &LayersFile, ids: &HashMap<&str, usize>) {
        let parent_of = |i: usize| -> Option<usize> {
            def.layers.get(i)?.parent.as_deref().and_then(|p| ids.get(p).copied())
        };
        let mut reported = vec![false; def.layers.len()];
        for start in 0..def.layers.len() {
            if reported[start] {
                continue;
            }
            let mut chain = vec![start];
            let mut at = start;
            while let Some(next) = parent_of(at) {
                if let Some(pos) = chain.iter().position(|&c| c == next) {
                    let cycle = &chain[pos..];
                    if cycle.iter().any(|&c| reported[c]) {
                        break;
                    }
                    for &c in cycle {
                        reported[c] = true;
                    }
                    let first = cycle.iter().copied().min().unwrap_or(next);
                    let mut names: Vec<&str> = Vec::new();
                    let mut walk = first;
                    loop {
                        names.push(&def.layers[walk].id);
                        match parent_of(walk) {
                            Some(p) if p != first => walk = p,
                            _ => break,
                        }
                    }
                    names.push(&def.layers[first].id);
                    self.problem(
                        &KeyPath::layer(first).key("parent"),
                        format!("parent cycle: {}", names.join(" -> ")),
                    );
                    break;
                }
                chain.push(next);
                at = next;
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Any,
    File,
    Dir,
}

/// A UUID as Packer writes it into the AMI name (`{{uuid}}`, `uuidv4()`), for the
/// length check of a layer's AMI names.
const AMI_NAME_UUID: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

/// Why a layer id is not usable, or `None`. The id becomes the AMI name prefix (AWS
/// rules), a folder name and an HCL source name, so it is an identifier.
pub fn id_problem(id: &str) -> Option<String> {
    let ami_name = format!("{id}-1700000000-{AMI_NAME_UUID}");
    if let Some(problem) = conventions::ami_name_problem(&ami_name) {
        return Some(format!("invalid AMI name {id}-{{{{timestamp}}}}-{{{{uuid}}}}: {problem}"));
    }
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!ok).then(|| format!("layer id {id:?} must be a letter followed by letters, digits, '-' or '_'"))
}

/// A clean relative path with `/` separators, or `None` for an absolute or empty one.
pub fn normalise(raw: &str) -> Option<String> {
    let path = Path::new(raw);
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.last().is_some_and(|p| p != "..") {
                    parts.pop();
                } else {
                    parts.push("..".into());
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if raw.trim().is_empty() {
        return None;
    }
    Some(if parts.is_empty() { ".".into() } else { parts.join("/") })
}

/// Parents first: by depth in the lineage, then file order.
fn order(mut layers: Vec<Layer>) -> Vec<Layer> {
    let index: HashMap<String, usize> = layers.iter().enumerate().map(|(i, l)| (l.id.clone(), i)).collect();
    let depths: Vec<usize> = (0..layers.len())
        .map(|i| {
            let mut depth = 0;
            let mut at = i;
            while let Some(p) = layers[at].parent.as_ref().and_then(|p| index.get(p)) {
                depth += 1;
                at = *p;
                if depth > layers.len() {
                    break; // cycles were reported already
                }
            }
            depth
        })
        .collect();
    for (layer, depth) in layers.iter_mut().zip(depths) {
        layer.depth = depth;
    }
    layers.sort_by_key(|l| l.depth);
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_absolute_ones_refused() {
        assert_eq!(normalise("./scripts//a.sh").as_deref(), Some("scripts/a.sh"));
        assert_eq!(normalise("salt/../files/x").as_deref(), Some("files/x"));
        assert_eq!(normalise("../shared/x").as_deref(), Some("../shared/x"));
        assert_eq!(normalise("/etc/passwd"), None);
        assert_eq!(normalise(""), None);
    }

    #[test]
    fn layer_ids_are_identifiers_with_valid_ami_names() {
        assert_eq!(id_problem("ubuntu-1804"), None);
        assert!(id_problem("1804").is_some());
        assert!(id_problem("web/app").is_some());
        assert!(id_problem("web:app").is_some_and(|p| p.contains("invalid AMI name")));
        // `<id>-<unix time>-<uuid>` has at most 128 characters.
        assert!(id_problem(&"a".repeat(81)).is_some_and(|p| p.contains("invalid AMI name")));
        assert_eq!(id_problem(&"a".repeat(80)), None);
    }
}
