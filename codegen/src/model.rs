//! The layers file as written (TOML), and its JSON Schema.
//!
//! These types mirror the file one to one; [`crate::layers`] checks them and resolves
//! defaults into [`crate::Layer`]s. Spans are not kept here: diagnostics name a key path
//! and [`crate::diag`] finds its line in the source.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One layers file: the project, defaults, and the layers of the AMI lineage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "immutable-codegen layers file")]
pub struct LayersFile {
    /// Project name, written to the `Project` tag of every AMI (cost allocation).
    pub project: String,
    /// The Packer that runs the templates: `"1.6"` (the default: Packer 1.6 with its
    /// bundled amazon builder) or a minimum version from `">= 1.10"` up, which becomes
    /// the templates' `required_version`: HCL2 templates that `packer init` readies
    /// (they declare the amazon plugin) and that require IMDSv2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packer: Option<String>,
    /// Settings every layer inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The layers, as `[[layer]]` tables. A layer has either `source` (a root layer) or
    /// `parent` (the id of another layer).
    #[serde(default, rename = "layer")]
    pub layers: Vec<LayerDef>,
}

/// Settings inherited by every layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// AWS region the image is built in, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// EC2 instance type of the build instance, e.g. `t3.small`.
    pub instance_type: Option<String>,
    /// User Packer connects as over SSH, e.g. `ubuntu`.
    pub ssh_username: Option<String>,
    /// Encrypt the image's EBS snapshots (Packer's `encrypt_boot`, with the account's
    /// default KMS key). Default: `true`.
    pub encrypt_boot: Option<bool>,
    /// Extra tags on every AMI and snapshot (a layer's own `tags` win).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The IPv4 or IPv6 CIDR blocks that may reach the build instance over SSH (Packer's
    /// `temporary_security_group_source_cidrs`), e.g. `["10.0.0.0/8"]`. Unset: with
    /// `packer = ">= 1.10"`, the public IP of the machine running Packer; with Packer
    /// 1.6, anywhere (0.0.0.0/0), with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_source_cidrs: Option<Vec<String>>,
    /// Deprecate each AMI this many days after its build (Packer's `deprecate_at`), 1 to
    /// 3650. Needs `packer = ">= 1.10"`. Unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = crate::layers::MAX_DEPRECATE_AFTER_DAYS))]
    pub deprecate_after_days: Option<i64>,
    /// Where `immutable-agent` comes from, and its options, for the layers that bake it
    /// (`agent = true` or a table on the layer). This alone bakes it into no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSettings>,
}

/// One layer of the lineage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerDef {
    /// Layer id: the `Layer` tag, the AMI name prefix and the output folder. A letter, then
    /// letters, digits, `-` or `_`.
    pub id: String,
    /// Human name: the `Name` tag. Defaults to the id.
    pub name: Option<String>,
    /// Id of the layer this one is built from. Exclusive with `source`.
    pub parent: Option<String>,
    /// Where a root layer's source AMI comes from. Exclusive with `parent`.
    pub source: Option<SourceDef>,
    /// AWS region (default: `defaults.region`).
    pub region: Option<String>,
    /// Build instance type (default: `defaults.instance_type`).
    pub instance_type: Option<String>,
    /// SSH user (default: `defaults.ssh_username`).
    pub ssh_username: Option<String>,
    /// Encrypt the image's EBS snapshots (default: `defaults.encrypt_boot`, else `true`).
    /// `false` keeps them unencrypted, e.g. for an image shared with other accounts.
    pub encrypt_boot: Option<bool>,
    /// Extra tags on this layer's AMI and snapshots, on top of `defaults.tags`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Who may reach the build instance over SSH (default: `defaults.ssh_source_cidrs`);
    /// replaces the default's list, is not added to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_source_cidrs: Option<Vec<String>>,
    /// Days until this layer's AMIs are deprecated (default:
    /// `defaults.deprecate_after_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = crate::layers::MAX_DEPRECATE_AFTER_DAYS))]
    pub deprecate_after_days: Option<i64>,
    /// Provisioners, run in order, as `[[layer.provisioner]]` tables.
    #[serde(default, rename = "provisioner")]
    pub provisioners: Vec<ProvisionerDef>,
    /// Bake `immutable-agent` into this image (installed after the provisioners, enabled
    /// at boot): `true`, or a table whose settings override `defaults.agent`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentDef>,
}

/// A layer's `agent`: `true` or `false`, or a table (which means `true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AgentDef {
    /// `true`: bake the agent with the settings of `defaults.agent`; `false`: do not.
    Enabled(bool),
    /// Bake the agent; settings not given here come from `defaults.agent`.
    With(AgentSettings),
}

/// Where the agent's files are, and how it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The `immutable-agent` binary (default: `immutable-agent` next to the layers file).
    /// Need not exist yet: build it before Packer runs. The template's `agent_binary`
    /// variable overrides it.
    pub binary: Option<String>,
    /// Its systemd unit (default: `immutable-agent.service` next to the layers file).
    /// Its content is part of the layer's fingerprint.
    pub unit: Option<String>,
    /// Command-line options, written to `/etc/default/immutable-agent`, e.g.
    /// `--poll-interval 5s`. Empty: none.
    pub options: Option<String>,
}

/// By hand, because an untagged enum's error would say only "did not match any
/// variant"; this one keeps toml's own errors inside the table (unknown key, wrong
/// type) and their positions.
impl<'de> Deserialize<'de> for AgentDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AgentDef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table with `binary`, `unit`, `options`")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AgentDef, E> {
                Ok(AgentDef::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AgentDef, A::Error> {
                AgentSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(AgentDef::With)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The source AMI of a root layer: the newest image matching all of these.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// AMI owners (account ids or aliases such as `amazon`), e.g. Canonical's `099720109477`.
    pub owners: Vec<String>,
    /// Image name filter, with `*` wildcards.
    pub name: String,
    /// Tag filters: each tag must have this value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A Packer provisioner. Paths are relative to the layers file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProvisionerDef {
    /// Upload a file or a directory to the build instance.
    File {
        /// File or directory to upload (a trailing `/` uploads a directory's contents).
        source: String,
        /// Path on the build instance.
        destination: String,
    },
    /// Run shell commands or scripts on the build instance.
    Shell {
        /// Commands, run in one shell. Exclusive with `scripts`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        inline: Vec<String>,
        /// Script files, uploaded and run in order. Exclusive with `inline`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scripts: Vec<String>,
        /// `KEY=value` pairs in the scripts' environment.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        environment_vars: Vec<String>,
        /// How to run each script, e.g. `sudo -E sh '{{ .Path }}'`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execute_command: Option<String>,
    },
    /// Apply Salt states locally (`salt-call --local`).
    SaltMasterless {
        /// Directory of Salt states (with its `top.sls`).
        local_state_tree: String,
        /// Directory of pillar data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local_pillar_roots: Option<String>,
        /// Do not install Salt (the image already has it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skip_bootstrap: bool,
        /// Arguments to the Salt bootstrap script.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bootstrap_args: Option<String>,
    },
}

/// The JSON Schema of the layers file, for editors (e.g. with taplo's `#:schema`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(LayersFile)).unwrap_or_default()
}
