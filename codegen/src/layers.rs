//! Reading a layers file: parse, check everything, resolve defaults, order the
//! layers parents first. Every problem found is reported, each with its line and key.

use crate::Error;
use crate::diag::{Diagnostic, KeyPath, Source};
use crate::model::{AgentDef, AgentSettings, LayerDef, LayersFile, ProvisionerDef, SourceDef};
use crate::packer::Format;
use conventions::ami_tags;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// The Packer the templates are written for (`packer`).
    pub target: Target,
    pub layers: Vec<Layer>,
    /// What loads but deserves attention (an SSH port open to anyone); the command
    /// line prints them and goes on.
    pub warnings: Vec<Diagnostic>,
    /// Where `packer` is written (line, column; 1:1 when it is not), for a problem
    /// found after loading.
    target_position: (usize, usize),
}

/// The Packer that runs the templates, from `packer` in the layers file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// Packer 1.6, whose amazon builder is built in (`packer = "1.6"`, the default):
    /// JSON or HCL2, and only keys that Packer 1.6.6 knows.
    #[default]
    Packer16,
    /// Packer 1.10 or later (`packer = ">= 1.10"`), which bundles no plugin: HCL2 that
    /// declares the amazon plugin for `packer init`, and the plugin's newer keys.
    Current {
        /// The templates' `required_version`, e.g. `>= 1.10.0`.
        required_version: String,
    },
}

/// The lowest minimum `packer` may name: 1.10 is the first Packer without plugins
/// of its own, the one whose templates must say which plugin they use.
const CURRENT_FLOOR: (u32, u32) = (1, 10);

impl Target {
    pub fn is_current(&self) -> bool {
        matches!(self, Target::Current { .. })
    }
}

/// The target a `packer` value names, or why it names none: `1.6`, or `>= X.Y[.Z]`
/// from 1.10 up (written back as `>= X.Y.Z`).
pub fn parse_target(raw: &str) -> Result<Target, String> {
    let unsupported = || {
        format!(
            "unsupported Packer version {raw:?}: write \"1.6\" (the default: templates for Packer 1.6) or \
             \">= 1.10\" (templates for Packer 1.10 and later, whose amazon plugin `packer init` \
             installs; a higher minimum such as \">= 1.11.2\" works too)"
        )
    };
    let raw_trimmed = raw.trim();
    if raw_trimmed == "1.6" {
        return Ok(Target::Packer16);
    }
    let version = raw_trimmed.strip_prefix(">=").ok_or_else(unsupported)?.trim();
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| if p.bytes().all(|b| b.is_ascii_digit()) { p.parse().ok() } else { None })
        .collect::<Option<_>>()
        .ok_or_else(unsupported)?;
    match parts[..] {
        [major, minor] | [major, minor, _] if major == CURRENT_FLOOR.0 && minor >= CURRENT_FLOOR.1 => {
            let patch = parts.get(2).copied().unwrap_or(0);
            Ok(Target::Current { required_version: format!(">= {major}.{minor}.{patch}") })
        }
        _ => Err(unsupported()),
    }
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
    /// Who may reach the build instance over SSH (CIDR blocks); empty: the target's
    /// default. Not in the fingerprint: who could connect while the image was built
    /// changes nothing in it.
    #[serde(skip)]
    pub ssh_source_cidrs: Vec<String>,
    /// Days from the build to the AMI's deprecation. Not in the fingerprint: when an
    /// image is marked old says nothing of its content, and a new retention should not
    /// rebuild the lineage.
    #[serde(skip)]
    pub deprecate_after_days: Option<u32>,
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

    /// Refuses a format the target cannot be written in, with a diagnostic at `packer`:
    /// a JSON template cannot declare the plugin that current Packer must install.
    pub fn check_format(&self, format: Format) -> Result<(), Error> {
        if format != Format::Json || !self.target.is_current() {
            return Ok(());
        }
        let (line, column) = self.target_position;
        Err(Error::Invalid(vec![Diagnostic {
            file: self.file.clone(),
            line,
            column,
            key: "packer".into(),
            message: "templates for Packer 1.10 and later are HCL2 only: a JSON template cannot declare \
                      the amazon plugin (`required_plugins`) that this Packer no longer bundles; use \
                      --format hcl (the default with this setting)"
                .into(),
        }]))
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
    let mut check =
        Checker { source: &source, dir: &dir, target: None, problems: Vec::new(), warnings: Vec::new() };
    let target_at = KeyPath::default().key("packer");
    check.target = match def.packer.as_deref().map(parse_target) {
        None => Some(Target::default()),
        Some(Ok(target)) => Some(target),
        Some(Err(problem)) => {
            check.problem(&target_at, problem);
            None
        }
    };
    let layers = check.layers(&def);
    if check.problems.is_empty() {
        let position = source.at(&target_at, "");
        let (target, warnings) = (check.target.unwrap_or_default(), check.warnings);
        Ok(Layers {
            file: file.to_path_buf(),
            dir,
            project: def.project,
            target,
            layers,
            warnings,
            target_position: (position.line, position.column),
        })
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
    /// `None` when `packer` is wrong (reported): checks that depend on it are skipped.
    target: Option<Target>,
    problems: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
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
        let defaults_at = KeyPath::default().key("defaults");
        self.tags(&defaults_at.clone().key("tags"), &def.defaults.tags);
        // Checked once, where written; layers that inherit them are not told again.
        let cidrs_at = defaults_at.clone().key("ssh_source_cidrs");
        let default_cidrs = self.ssh_source_cidrs(&cidrs_at, def.defaults.ssh_source_cidrs.as_deref());
        let default_days = self.deprecate_after_days(
            &defaults_at.clone().key("deprecate_after_days"),
            def.defaults.deprecate_after_days,
        );
        let inherited = Inherited { ssh_source_cidrs: default_cidrs, deprecate_after_days: default_days };

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
            resolved.push(self.layer(i, layer, def, &inherited, &first_seen));
        }
        self.cycles(def, &first_seen);
        if !self.problems.is_empty() {
            return Vec::new();
        }
        let open: Vec<String> = resolved
            .iter()
            .filter(|l| l.ssh_source_cidrs.is_empty())
            .map(|l| format!("{:?}", l.id))
            .collect();
        if self.target == Some(Target::Packer16) && !open.is_empty() {
            let (whose, which) = match open.as_slice() {
                [one] => (format!("instance of layer {one}"), "layer"),
                many => (format!("instances of layers {}", many.join(", ")), "layers"),
            };
            let warning = self.source.at(
                &cidrs_at,
                format!(
                    "Packer 1.6 opens SSH on the build {whose} to anyone (0.0.0.0/0): set ssh_source_cidrs \
                     to the addresses Packer connects from (here or on the {which}), or packer = \">= 1.10\" \
                     to let in only the public IP of the machine running Packer"
                ),
            );
            self.warnings.push(warning);
        }
        order(resolved)
    }

    /// A list of CIDR blocks as written at `at`: each a network (no bits past its
    /// prefix), none twice, and none IPv6 for Packer 1.6, which hands every block to
    /// AWS as an IPv4 range.
    fn ssh_source_cidrs(&mut self, at: &KeyPath, cidrs: Option<&[String]>) -> Option<Vec<String>> {
        let cidrs = cidrs?;
        if cidrs.is_empty() {
            self.problem(
                at,
                "list at least one CIDR block, e.g. [\"10.0.0.0/8\"] (leave the setting out for the default)",
            );
        }
        let mut seen: HashMap<(IpAddr, u8), usize> = HashMap::new();
        for (n, raw) in cidrs.iter().enumerate() {
            let here = at.clone().index(n);
            match cidr(raw) {
                Err(problem) => self.problem(&here, problem),
                Ok(block) => {
                    if let Some(first) = seen.insert(block, n) {
                        self.problem(&here, format!("{raw:?} repeats the block of {:?}", cidrs[first]));
                    } else if block.0.is_ipv6() && self.target == Some(Target::Packer16) {
                        self.problem(
                            &here,
                            format!(
                                "{raw:?} is an IPv6 block: Packer 1.6 hands every block to AWS as an IPv4 \
                                 range, so the build would fail; list IPv4 blocks, or set packer = \">= 1.10\""
                            ),
                        );
                    }
                }
            }
        }
        Some(cidrs.to_vec())
    }

    /// `deprecate_after_days` as written at `at`: 1 to 3650 days, and a target whose
    /// amazon-ebs can deprecate.
    fn deprecate_after_days(&mut self, at: &KeyPath, days: Option<i64>) -> Option<u32> {
        let days = days?;
        let valid = u32::try_from(days).ok().filter(|d| (1..=MAX_DEPRECATE_AFTER_DAYS).contains(d));
        if valid.is_none() {
            self.problem(
                at,
                format!(
                    "deprecate_after_days is a number of days from 1 to {MAX_DEPRECATE_AFTER_DAYS} \
                     (AWS deprecates at most 10 years ahead), not {days}"
                ),
            );
        }
        if self.target == Some(Target::Packer16) {
            self.problem(
                at,
                "deprecate_after_days needs packer = \">= 1.10\": the amazon-ebs builder of Packer 1.6 \
                 cannot deprecate an AMI (it has no deprecate_at)",
            );
        }
        valid
    }

    fn line_of(&self, path: &KeyPath) -> (usize, usize) {
        let d = self.source.at(path, "");
        (d.line, d.column)
    }

    fn layer(
        &mut self,
        i: usize,
        layer: &LayerDef,
        def: &LayersFile,
        inherited: &Inherited,
        ids: &HashMap<&str, usize>,
    ) -> Layer {
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
        let ssh_source_cidrs =
            self.ssh_source_cidrs(&at.clone().key("ssh_source_cidrs"), layer.ssh_source_cidrs.as_deref());
        let deprecate_after_days =
            self.deprecate_after_days(&at.clone().key("deprecate_after_days"), layer.deprecate_after_days);
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
            ssh_source_cidrs: ssh_source_cidrs
                .or_else(|| inherited.ssh_source_cidrs.clone())
                .unwrap_or_default(),
            deprecate_after_days: deprecate_after_days.or(inherited.deprecate_after_days),
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

/// Settings of `[defaults]` that are checked before the layers inherit them.
struct Inherited {
    ssh_source_cidrs: Option<Vec<String>>,
    deprecate_after_days: Option<u32>,
}

/// The furthest `deprecate_after_days`: AWS takes a deprecation time up to 10 years
/// ahead.
pub const MAX_DEPRECATE_AFTER_DAYS: u32 = 3650;

/// A CIDR block's network address and prefix length, or why `raw` is not one: an
/// IPv4 or IPv6 address, `/`, a prefix length, and no address bits past the prefix (AWS
/// would silently widen `10.1.2.3/8` to `10.0.0.0/8`).
pub fn cidr(raw: &str) -> Result<(IpAddr, u8), String> {
    let not_a_block = |why: String| format!("{raw:?} is not a CIDR block: {why}");
    let Some((address, prefix)) = raw.split_once('/') else {
        return Err(not_a_block(match raw.parse::<IpAddr>() {
            Ok(one) => format!("it lacks the prefix length (\"{raw}/{}\" is this one address)", width(one)),
            Err(_) => "write an address and a prefix length, e.g. \"10.0.0.0/8\"".into(),
        }));
    };
    let address: IpAddr =
        address.parse().map_err(|_| not_a_block(format!("{address:?} is no IPv4 or IPv6 address")))?;
    let max = width(address);
    let prefix = Some(prefix)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u8>().ok())
        .filter(|p| *p <= max)
        .ok_or_else(|| {
            not_a_block(format!("the prefix length of this address is 0 to {max}, not {prefix:?}"))
        })?;
    let network = match address {
        IpAddr::V4(a) => IpAddr::from(Ipv4Addr::from(
            u32::from(a) & u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0),
        )),
        IpAddr::V6(a) => IpAddr::from(Ipv6Addr::from(
            u128::from(a) & u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0),
        )),
    };
    if network != address {
        return Err(format!(
            "{raw:?} has address bits set past its /{prefix} prefix: the block is \"{network}/{prefix}\" \
             (write that, or \"{address}/{max}\" for the one address)"
        ));
    }
    Ok((network, prefix))
}

/// The bits of an address: the prefix length of a block of one.
fn width(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
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
    fn packer_names_version_1_6_or_a_minimum_from_1_10() {
        let current = |v: &str| Ok(Target::Current { required_version: v.to_owned() });
        assert_eq!(parse_target("1.6"), Ok(Target::Packer16));
        assert_eq!(parse_target(">= 1.10"), current(">= 1.10.0"));
        assert_eq!(parse_target(">=1.11.2"), current(">= 1.11.2"));
        assert_eq!(parse_target(" >= 1.12 "), current(">= 1.12.0"));
        assert_eq!(parse_target(">= 1.100.0"), current(">= 1.100.0"));
        for wrong in [
            "",
            "1.10",
            "1.6.6",
            ">= 1.6",
            ">= 1.9.5",
            ">= 2.0",
            "~> 1.10",
            "> 1.10",
            ">= 1.10.0.1",
            ">= 1.x",
            ">= 1.+10",
            ">= 1..10",
            ">= 1.10, < 2.0",
        ] {
            let problem = parse_target(wrong).expect_err(wrong);
            assert!(
                problem.contains("write \"1.6\"") && problem.contains("\">= 1.10\""),
                "{wrong}: {problem}"
            );
        }
    }

    #[test]
    fn cidr_blocks_are_networks_of_either_family() {
        let block = |raw: &str| cidr(raw).map(|(net, prefix)| format!("{net}/{prefix}"));
        assert_eq!(block("10.0.0.0/8").as_deref(), Ok("10.0.0.0/8"));
        assert_eq!(block("203.0.113.7/32").as_deref(), Ok("203.0.113.7/32"));
        assert_eq!(block("0.0.0.0/0").as_deref(), Ok("0.0.0.0/0"));
        assert_eq!(block("2001:db8::/32").as_deref(), Ok("2001:db8::/32"));
        assert_eq!(block("2001:0db8:0::/32").as_deref(), Ok("2001:db8::/32"));
        assert_eq!(block("::/0").as_deref(), Ok("::/0"));
        let problem = |raw: &str| cidr(raw).expect_err(raw);
        assert!(problem("10.0.0.1").contains("\"10.0.0.1/32\" is this one address"));
        assert!(problem("2001:db8::1").contains("\"2001:db8::1/128\" is this one address"));
        assert!(problem("10.0.0.0/33").contains("0 to 32"));
        assert!(problem("2001:db8::/129").contains("0 to 128"));
        for wrong in ["10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/ 8", " 10.0.0.0/8", "10.0.0/8", "host/8", "/8"] {
            assert!(problem(wrong).contains("is not a CIDR block"), "{wrong}");
        }
        assert!(problem("10.1.2.3/8").contains("the block is \"10.0.0.0/8\""));
        assert!(problem("2001:db8::1/32").contains("the block is \"2001:db8::/32\""));
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
