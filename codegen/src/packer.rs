//! Packer templates, one per layer: legacy JSON (serde) or HCL2 ([`crate::hcl`]).
//!
//! Both formats say the same thing: an `amazon-ebs` builder whose source is the root
//! layer's filter or, for a child, the newest of our own AMIs tagged with the parent's
//! `Layer` and `Fingerprint`; the AMI tags (docs/design.md, "Tags") on the AMI and its snapshots;
//! the layer's provisioners; and a `manifest` post-processor carrying commit and
//! fingerprint, writing a file of the layer's own. Variables `commit` and `parent`
//! default to what generation knew; `region` (the layer's), `profile` and
//! `ec2_endpoint` (empty: Packer's defaults) are how `immutable_layered_ami` points
//! Packer at the AWS the provider uses. AMI names end in a timestamp and a UUID, so
//! two builds of one layer never collide; snapshots are encrypted unless the layer
//! says `encrypt_boot = false`.
//!
//! A layer that bakes `immutable-agent` also gets variables `agent_binary` and
//! `agent_unit` (where Packer finds the files), uploads of both and a shell step that
//! installs them and enables the service.
//!
//! The layers file's [`Target`] says which Packer runs the templates. For Packer 1.6
//! they use only keys Packer 1.6.6 knows. Current Packer (1.10 and later) has no
//! plugin built in, so its templates are HCL2 with a `packer` block that `packer init`
//! reads, and they use the plugin's newer keys: IMDSv2 required on the builder
//! instance (`metadata_options`) and on the image's instances (`imds_support`), and
//! `deprecate_at` for layers that set `deprecate_after_days`.
//!
//! SSH into the builder instance comes from the layer's `ssh_source_cidrs` when set
//! (`temporary_security_group_source_cidrs`, known to both targets); otherwise current
//! Packer lets in the public IP of the machine it runs on, and Packer 1.6 anyone (the
//! layers file's warning says so).

use crate::hcl::{Block, Expr, Item, Part};
use crate::layers::{Agent, Layer, Layers, Target};
use crate::model::ProvisionerDef;
use conventions::ami_tags;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Output format of the templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Packer's legacy JSON templates (`<layer>/packer.json`).
    #[default]
    Json,
    /// HCL2 (`<layer>/packer.pkr.hcl`).
    Hcl,
}

impl Format {
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "packer.json",
            Format::Hcl => "packer.pkr.hcl",
        }
    }
}

/// Where the manifest post-processor of a layer writes, relative to Packer's working
/// directory: a file per layer, so that layers built at once in one folder do not
/// write into each other's.
pub fn manifest_file(id: &str) -> String {
    format!("manifest-{id}.json")
}

/// Packer's AMI name of a layer's image, before its UUID (`{{uuid}}` in JSON,
/// `uuidv4()` in HCL2): `{{timestamp}}` alone collides when one layer is built twice
/// in a second.
fn ami_name_prefix(id: &str) -> String {
    format!("{id}-{{{{timestamp}}}}-")
}

/// Variables through which `immutable_layered_ami` points Packer at the provider's
/// AWS (it passes each one a template declares); their names are the provider's.
const REGION_HELP: &str = "AWS region to build in (immutable_layered_ami passes its provider's region).";
const PROFILE_HELP: &str = "AWS profile for Packer's AWS calls; empty: the default credential chain \
                            (immutable_layered_ami passes its provider's profile when set).";
const EC2_ENDPOINT_HELP: &str = "EC2 API endpoint, e.g. an emulator's; empty: AWS's \
                                 (immutable_layered_ami passes its provider's endpoints.ec2 when set).";

/// Where `packer init` finds the amazon plugin.
pub const AMAZON_PLUGIN_SOURCE: &str = "github.com/hashicorp/amazon";
/// The oldest amazon plugin with every key the templates for current Packer write:
/// `deprecate_at` (1.0.1), `temporary_security_group_source_public_ip` (1.1.4),
/// `imds_support` (1.1.6), and IPv6 blocks in `temporary_security_group_source_cidrs`
/// (1.5.0: before it every block went to AWS as an IPv4 range, which fails for an
/// IPv6 one).
pub const AMAZON_PLUGIN_VERSION: &str = ">= 1.5.0";
/// The AMI attribute that makes instances launched from the image require IMDSv2.
pub const IMDS_SUPPORT: &str = "v2.0";

/// Path of a layer's template inside the output folder.
pub fn template_path(id: &str, format: Format) -> PathBuf {
    Path::new(id).join(format.file_name())
}

/// What a template needs besides the layer.
pub struct Context<'a> {
    pub layers: &'a Layers,
    pub fingerprints: &'a BTreeMap<String, String>,
    pub commit: &'a str,
    /// From a template's folder to the layers file's folder, `/`-separated (e.g. `../..`).
    pub up: &'a str,
}

impl Context<'_> {
    fn fingerprint(&self, id: &str) -> &str {
        self.fingerprints.get(id).map_or("", String::as_str)
    }

    /// A provisioned path as seen from the template's folder.
    fn seen_from_template(&self, rel: &str) -> String {
        match (self.up, rel) {
            (".", rel) => rel.to_owned(),
            (up, ".") => up.to_owned(),
            (up, rel) => format!("{up}/{rel}"),
        }
    }

    fn file_name(&self) -> String {
        self.layers
            .file
            .file_name()
            .map_or_else(|| "layers.toml".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// Tags of Packer's builder instance: which layer and commit it builds, so that the
/// provider can terminate it when a killed run left it behind.
fn run_tags(layer: &Layer, commit: String) -> BTreeMap<String, String> {
    BTreeMap::from([
        (conventions::BUILDER_TAG.to_owned(), layer.id.clone()),
        (ami_tags::LAYER.to_owned(), layer.id.clone()),
        (ami_tags::COMMIT.to_owned(), commit),
    ])
}

/// The AMI tags (docs/design.md, "Tags") plus the layer's own, with the commit and parent AMI
/// given as the format writes them.
fn tags(cx: &Context<'_>, layer: &Layer, commit: String, source_ami: String) -> BTreeMap<String, String> {
    let mut tags = layer.tags.clone();
    tags.insert(ami_tags::NAME.into(), layer.name.clone());
    tags.insert(ami_tags::LAYER.into(), layer.id.clone());
    tags.insert(ami_tags::COMMIT.into(), commit);
    tags.insert(ami_tags::FINGERPRINT.into(), cx.fingerprint(&layer.id).to_owned());
    if let Some(parent) = &layer.parent {
        tags.insert(ami_tags::PARENT_LAYER.into(), parent.clone());
    }
    tags.insert(ami_tags::PARENT_AMI.into(), source_ami);
    tags.insert(ami_tags::PROJECT.into(), cx.layers.project.clone());
    tags.insert(ami_tags::MANAGED_BY.into(), ami_tags::MANAGED_BY_VALUE.into());
    tags
}

/// Packer's own placeholder for the AMI the build started from.
const SOURCE_AMI: &str = "{{ .SourceAMI }}";

struct Filter {
    filters: BTreeMap<String, String>,
    owners: Vec<String>,
}

fn filter(cx: &Context<'_>, layer: &Layer) -> Filter {
    match (&layer.parent, &layer.source) {
        (Some(parent), _) => Filter {
            filters: BTreeMap::from([
                (format!("tag:{}", ami_tags::LAYER), parent.clone()),
                (format!("tag:{}", ami_tags::FINGERPRINT), cx.fingerprint(parent).to_owned()),
                ("state".into(), "available".into()),
            ]),
            owners: vec!["self".into()],
        },
        (None, Some(source)) => {
            let mut filters: BTreeMap<String, String> =
                source.tags.iter().map(|(k, v)| (format!("tag:{k}"), v.clone())).collect();
            filters.insert("name".into(), source.name.clone());
            filters.insert("state".into(), "available".into());
            Filter { filters, owners: source.owners.clone() }
        }
        (None, None) => Filter { filters: BTreeMap::new(), owners: Vec::new() },
    }
}

fn custom_data(cx: &Context<'_>, layer: &Layer, commit: String) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        ("commit".to_owned(), commit),
        ("fingerprint".to_owned(), cx.fingerprint(&layer.id).to_owned()),
        ("layer".to_owned(), layer.id.clone()),
    ]);
    if let Some(parent) = &layer.parent {
        data.insert("parent_layer".into(), parent.clone());
    }
    data
}

/// In every template's description (JSON) or first comment (HCL): how a later run
/// tells its own files from hand-written ones.
pub const GENERATED_MARK: &str = "generated by immutable-codegen";

fn description(cx: &Context<'_>, layer: &Layer) -> String {
    format!(
        "Layer {} ({}), {GENERATED_MARK} from {}: edit that file, not this template.",
        layer.id,
        layer.name,
        cx.file_name()
    )
}

// ---------------------------------------------------------------------------------
// immutable-agent

/// Where the agent and its unit are installed on the image.
const AGENT_INSTALLED: &str = "/usr/local/bin/immutable-agent";
const AGENT_UNIT_INSTALLED: &str = "/etc/systemd/system/immutable-agent.service";
/// The environment file the unit reads (`EnvironmentFile=-`), and the variable in it
/// that the unit passes to the agent as its options.
const AGENT_DEFAULTS: &str = "/etc/default/immutable-agent";
const AGENT_OPTIONS_VAR: &str = "IMMUTABLE_AGENT_OPTIONS";
/// Where the file provisioners put the agent's files for the install step.
const AGENT_UPLOAD: &str = "/tmp/immutable-agent";
const AGENT_UNIT_UPLOAD: &str = "/tmp/immutable-agent.service";
/// The install step runs as root; `-e` stops it at the first failing command (the
/// shebang Packer writes for `inline` is not used when `sh` runs the file).
const AGENT_EXECUTE: &str = "sudo sh -e '{{ .Path }}'";

/// The install step: the binary and the unit in place, the options written (or an
/// inherited file removed, so the image has exactly this layer's options), the
/// uploads removed, the service enabled at boot. It is not started: the build
/// instance is no fleet member.
fn agent_commands(agent: &Agent) -> Vec<String> {
    let options = match &agent.options {
        // The options hold no quote, `$` or backslash (checked on load).
        Some(options) => {
            format!("mkdir -p /etc/default && echo '{AGENT_OPTIONS_VAR}=\"{options}\"' > {AGENT_DEFAULTS}")
        }
        None => format!("rm -f {AGENT_DEFAULTS}"),
    };
    vec![
        format!("install -D -m 0755 {AGENT_UPLOAD} {AGENT_INSTALLED}"),
        format!("install -D -m 0644 {AGENT_UNIT_UPLOAD} {AGENT_UNIT_INSTALLED}"),
        options,
        format!("rm -f {AGENT_UPLOAD} {AGENT_UNIT_UPLOAD}"),
        "systemctl enable immutable-agent".to_owned(),
    ]
}

const AGENT_BINARY_HELP: &str =
    "The immutable-agent binary to install (build it first: cargo build --release -p agent).";
const AGENT_UNIT_HELP: &str = "The systemd unit of immutable-agent.";

// ---------------------------------------------------------------------------------
// Legacy JSON

#[derive(Serialize)]
struct JsonTemplate<'a> {
    description: String,
    variables: BTreeMap<&'static str, String>,
    builders: [JsonBuilder<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provisioners: Vec<ProvisionerDef>,
    #[serde(rename = "post-processors")]
    post_processors: [JsonManifest; 1],
}

#[derive(Serialize)]
struct JsonBuilder<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    region: &'static str,
    profile: &'static str,
    custom_endpoint_ec2: &'static str,
    instance_type: &'a str,
    ssh_username: &'a str,
    /// Only when set: without it the template is what it was before the setting existed.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    temporary_security_group_source_cidrs: &'a [String],
    ami_name: String,
    ami_description: &'a str,
    encrypt_boot: bool,
    source_ami: &'static str,
    source_ami_filter: JsonFilter,
    tags: BTreeMap<String, String>,
    snapshot_tags: BTreeMap<String, String>,
    run_tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct JsonFilter {
    filters: BTreeMap<String, String>,
    owners: Vec<String>,
    most_recent: bool,
}

#[derive(Serialize)]
struct JsonManifest {
    #[serde(rename = "type")]
    kind: &'static str,
    output: String,
    strip_path: bool,
    custom_data: BTreeMap<String, String>,
}

const JSON_COMMIT: &str = "{{user `commit`}}";
const JSON_PARENT: &str = "{{user `parent`}}";

/// The legacy JSON template of one layer.
pub fn json(cx: &Context<'_>, layer: &Layer) -> Result<String, serde_json::Error> {
    let tags = tags(cx, layer, JSON_COMMIT.into(), SOURCE_AMI.into());
    let Filter { filters, owners } = filter(cx, layer);
    let from_template = |rel: &str| format!("{{{{template_dir}}}}/{}", cx.seen_from_template(rel));
    let mut variables = BTreeMap::from([
        ("commit", cx.commit.to_owned()),
        ("parent", String::new()),
        ("region", layer.region.clone()),
        ("profile", String::new()),
        ("ec2_endpoint", String::new()),
    ]);
    let mut provisioners: Vec<ProvisionerDef> =
        layer.provisioners.iter().map(|p| with_paths(p, from_template)).collect();
    if let Some(agent) = &layer.agent {
        // Legacy JSON interpolates `template_dir` in variable defaults.
        variables.insert("agent_binary", from_template(&agent.binary));
        variables.insert("agent_unit", from_template(&agent.unit));
        provisioners.extend([
            ProvisionerDef::File {
                source: "{{user `agent_binary`}}".into(),
                destination: AGENT_UPLOAD.into(),
            },
            ProvisionerDef::File {
                source: "{{user `agent_unit`}}".into(),
                destination: AGENT_UNIT_UPLOAD.into(),
            },
            ProvisionerDef::Shell {
                inline: agent_commands(agent),
                scripts: Vec::new(),
                environment_vars: Vec::new(),
                execute_command: Some(AGENT_EXECUTE.into()),
            },
        ]);
    }
    let template = JsonTemplate {
        description: description(cx, layer),
        variables,
        builders: [JsonBuilder {
            kind: "amazon-ebs",
            name: &layer.id,
            region: "{{user `region`}}",
            profile: "{{user `profile`}}",
            // An empty endpoint is no endpoint: Packer uses AWS's.
            custom_endpoint_ec2: "{{user `ec2_endpoint`}}",
            instance_type: &layer.instance_type,
            ssh_username: &layer.ssh_username,
            temporary_security_group_source_cidrs: &layer.ssh_source_cidrs,
            ami_name: format!("{}{{{{uuid}}}}", ami_name_prefix(&layer.id)),
            ami_description: &layer.name,
            encrypt_boot: layer.encrypt_boot,
            source_ami: JSON_PARENT,
            source_ami_filter: JsonFilter { filters, owners, most_recent: true },
            snapshot_tags: tags.clone(),
            tags,
            run_tags: run_tags(layer, JSON_COMMIT.into()),
        }],
        provisioners,
        post_processors: [JsonManifest {
            kind: "manifest",
            output: manifest_file(&layer.id),
            strip_path: true,
            custom_data: custom_data(cx, layer, JSON_COMMIT.into()),
        }],
    };
    let mut text = serde_json::to_string_pretty(&template)?;
    text.push('\n');
    Ok(text)
}

/// A provisioner with every path rewritten by `map` (a trailing `/` kept).
fn with_paths(p: &ProvisionerDef, map: impl Fn(&str) -> String) -> ProvisionerDef {
    let keep_slash = |rel: &str| {
        let mapped = map(rel.trim_end_matches('/'));
        if rel.ends_with('/') { format!("{mapped}/") } else { mapped }
    };
    match p {
        ProvisionerDef::File { source, destination } => {
            ProvisionerDef::File { source: keep_slash(source), destination: destination.clone() }
        }
        ProvisionerDef::Shell { inline, scripts, environment_vars, execute_command } => {
            ProvisionerDef::Shell {
                inline: inline.clone(),
                scripts: scripts.iter().map(|s| keep_slash(s)).collect(),
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
            local_state_tree: keep_slash(local_state_tree),
            local_pillar_roots: local_pillar_roots.as_deref().map(keep_slash),
            skip_bootstrap: *skip_bootstrap,
            bootstrap_args: bootstrap_args.clone(),
        },
    }
}

// ---------------------------------------------------------------------------------
// HCL2

fn str(s: &str) -> Expr {
    Expr::Str(s.to_owned())
}

fn map_expr(map: &BTreeMap<String, String>, special: &BTreeMap<&str, Expr>) -> Expr {
    Expr::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), special.get(k.as_str()).cloned().unwrap_or_else(|| str(v))))
            .collect(),
    )
}

/// The HCL2 template of one layer, in `packer fmt` style.
pub fn hcl(cx: &Context<'_>, layer: &Layer) -> String {
    let commit_ref = Expr::Ref("var.commit".into());
    let tag_map = tags(cx, layer, String::new(), SOURCE_AMI.into());
    let tag_exprs = BTreeMap::from([(ami_tags::COMMIT, commit_ref.clone())]);
    let Filter { filters, owners } = filter(cx, layer);

    let variable = |name: &str, default: &str, description: &str| {
        Item::Block(
            Block::new("variable", &[name])
                .attr("type", Expr::Ref("string".into()))
                .attr("default", str(default))
                .attr("description", str(description)),
        )
    };
    let current = cx.layers.target.is_current();
    let mut source = Block::new("source", &["amazon-ebs", &layer.id])
        .attr("region", Expr::Ref("var.region".into()))
        .attr("profile", Expr::Ref("var.profile".into()))
        // An empty endpoint is no endpoint: Packer uses AWS's.
        .attr("custom_endpoint_ec2", Expr::Ref("var.ec2_endpoint".into()))
        .attr("instance_type", str(&layer.instance_type))
        .attr("ssh_username", str(&layer.ssh_username))
        .attr(
            "ami_name",
            Expr::Template(vec![Part::Lit(ami_name_prefix(&layer.id)), Part::Interp("uuidv4()".into())]),
        )
        .attr("ami_description", str(&layer.name))
        .attr("encrypt_boot", Expr::Bool(layer.encrypt_boot));
    if current {
        source = source.attr("imds_support", str(IMDS_SUPPORT));
        if let Some(days) = layer.deprecate_after_days {
            // Packer's clock at build time; `timeadd` takes hours, not days.
            let hours = u64::from(days) * 24;
            source = source.attr("deprecate_at", Expr::Ref(format!("timeadd(timestamp(), \"{hours}h\")")));
        }
    }
    source = source.attr("source_ami", Expr::Ref("var.parent".into()));
    if !layer.ssh_source_cidrs.is_empty() {
        let cidrs = Expr::List(layer.ssh_source_cidrs.iter().map(|c| str(c)).collect());
        source = source.blank().attr("temporary_security_group_source_cidrs", cidrs);
    } else if current {
        // The address https://checkip.amazonaws.com sees when Packer asks, as a /32
        // (or /128).
        source = source.blank().attr("temporary_security_group_source_public_ip", Expr::Bool(true));
    }
    if current {
        // No IMDSv1 on the builder instance either. One hop: the metadata answers the
        // instance itself, not containers behind a bridge on it.
        source = source.blank().block(
            Block::new("metadata_options", &[])
                .attr("http_endpoint", str("enabled"))
                .attr("http_tokens", str("required"))
                .attr("http_put_response_hop_limit", Expr::Int(1)),
        );
    }
    let source = source
        .blank()
        .block(
            Block::new("source_ami_filter", &[])
                .attr("filters", map_expr(&filters, &BTreeMap::new()))
                .attr("owners", Expr::List(owners.iter().map(|o| str(o)).collect()))
                .attr("most_recent", Expr::Bool(true)),
        )
        .blank()
        .attr("tags", map_expr(&tag_map, &tag_exprs))
        .attr("snapshot_tags", map_expr(&tag_map, &tag_exprs))
        .attr("run_tags", map_expr(&run_tags(layer, String::new()), &tag_exprs));

    let path_expr = |rel: &str| {
        let from_template = cx.seen_from_template(rel.trim_end_matches('/'));
        let slash = if rel.ends_with('/') { "/" } else { "" };
        Expr::Template(vec![Part::Interp("path.root".into()), Part::Lit(format!("/{from_template}{slash}"))])
    };
    let mut build = Block::new("build", &[])
        .attr("sources", Expr::List(vec![str(&format!("source.amazon-ebs.{}", layer.id))]));
    for p in &layer.provisioners {
        let block = match p {
            ProvisionerDef::File { source, destination } => Block::new("provisioner", &["file"])
                .attr("source", path_expr(source))
                .attr("destination", str(destination)),
            ProvisionerDef::Shell { inline, scripts, environment_vars, execute_command } => {
                let mut b = Block::new("provisioner", &["shell"]);
                if !inline.is_empty() {
                    b = b.attr("inline", Expr::List(inline.iter().map(|c| str(c)).collect()));
                }
                if !scripts.is_empty() {
                    b = b.attr("scripts", Expr::List(scripts.iter().map(|s| path_expr(s)).collect()));
                }
                if !environment_vars.is_empty() {
                    b = b.attr(
                        "environment_vars",
                        Expr::List(environment_vars.iter().map(|v| str(v)).collect()),
                    );
                }
                if let Some(command) = execute_command {
                    b = b.attr("execute_command", str(command));
                }
                b
            }
            ProvisionerDef::SaltMasterless {
                local_state_tree,
                local_pillar_roots,
                skip_bootstrap,
                bootstrap_args,
            } => {
                let mut b = Block::new("provisioner", &["salt-masterless"])
                    .attr("local_state_tree", path_expr(local_state_tree));
                if let Some(pillar) = local_pillar_roots {
                    b = b.attr("local_pillar_roots", path_expr(pillar));
                }
                if *skip_bootstrap {
                    b = b.attr("skip_bootstrap", Expr::Bool(true));
                }
                if let Some(args) = bootstrap_args {
                    b = b.attr("bootstrap_args", str(args));
                }
                b
            }
        };
        build = build.blank().block(block);
    }
    if let Some(agent) = &layer.agent {
        for (local, destination) in [("agent_binary", AGENT_UPLOAD), ("agent_unit", AGENT_UNIT_UPLOAD)] {
            build = build.blank().block(
                Block::new("provisioner", &["file"])
                    .attr("source", Expr::Ref(format!("local.{local}")))
                    .attr("destination", str(destination)),
            );
        }
        build = build.blank().block(
            Block::new("provisioner", &["shell"])
                .attr("inline", Expr::Lines(agent_commands(agent).iter().map(|c| str(c)).collect()))
                .attr("execute_command", str(AGENT_EXECUTE)),
        );
    }
    let custom = custom_data(cx, layer, String::new());
    build = build.blank().block(
        Block::new("post-processor", &["manifest"])
            .attr("output", str(&manifest_file(&layer.id)))
            .attr("strip_path", Expr::Bool(true))
            .attr("custom_data", map_expr(&custom, &BTreeMap::from([("commit", commit_ref)]))),
    );

    let mut items = vec![Item::Comment(description(cx, layer)), Item::Blank];
    if let Target::Current { required_version } = &cx.layers.target {
        let plugin = Expr::Object(vec![
            ("source".into(), str(AMAZON_PLUGIN_SOURCE)),
            ("version".into(), str(AMAZON_PLUGIN_VERSION)),
        ]);
        items.extend([
            Item::Block(
                Block::new("packer", &[])
                    .attr("required_version", str(required_version))
                    .block(Block::new("required_plugins", &[]).attr("amazon", plugin)),
            ),
            Item::Blank,
        ]);
    }
    items.extend([
        variable("commit", cx.commit, "Full git commit of the image sources (the Commit tag)."),
        Item::Blank,
        variable("parent", "", "AMI id to build from; empty: the newest AMI that matches source_ami_filter."),
        Item::Blank,
        variable("region", &layer.region, REGION_HELP),
        Item::Blank,
        variable("profile", "", PROFILE_HELP),
        Item::Blank,
        variable("ec2_endpoint", "", EC2_ENDPOINT_HELP),
        Item::Blank,
    ]);
    if let Some(agent) = &layer.agent {
        // HCL2 variable defaults are constants, so the path next to the template is
        // the fallback of a local.
        let mut locals = Block::new("locals", &[]);
        for (name, rel, help) in
            [("agent_binary", &agent.binary, AGENT_BINARY_HELP), ("agent_unit", &agent.unit, AGENT_UNIT_HELP)]
        {
            let from_template = cx.seen_from_template(rel);
            items.push(variable(
                name,
                "",
                &format!("{help} Empty: {from_template} from this template's folder."),
            ));
            items.push(Item::Blank);
            locals = locals.attr(
                name,
                Expr::Cond(
                    Box::new(Expr::Ref(format!("var.{name} != \"\""))),
                    Box::new(Expr::Ref(format!("var.{name}"))),
                    Box::new(path_expr(rel)),
                ),
            );
        }
        items.extend([Item::Block(locals), Item::Blank]);
    }
    items.extend([Item::Block(source), Item::Blank, Item::Block(build)]);
    crate::hcl::render(&items)
}

// ---------------------------------------------------------------------------------
// Paths

/// `to` relative to `from`, both made absolute against the current directory and
/// cleaned lexically; `/`-separated, `.` when equal.
pub fn relative(from: &Path, to: &Path) -> std::io::Result<String> {
    let from = clean(&std::path::absolute(from)?);
    let to = clean(&std::path::absolute(to)?);
    let common = from.iter().zip(to.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_owned(), from.len() - common).collect();
    parts.extend(to[common..].iter().cloned());
    Ok(if parts.is_empty() { ".".into() } else { parts.join("/") })
}

fn clean(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_between_folders() {
        let r = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).unwrap_or_default();
        assert_eq!(r("/repo/images/out/web", "/repo/images"), "../..");
        assert_eq!(r("/repo/images", "/repo/images"), ".");
        assert_eq!(r("/tmp/x/web", "/repo/images"), "../../../repo/images");
        assert_eq!(r("/repo/./images/out/../out/web", "/repo/images/"), "../..");
    }
}
