//! The Packer builder: runs the configured command (default `packer build`) on the
//! layer's template with `-machine-readable`, `-var commit=...` and `-var parent=...`
//! (and the provider's region, profile and EC2 endpoint for a template that declares
//! `region`, `profile` or `ec2_endpoint`), streams what Packer says into the provider
//! log, and takes the AMI id from the artifacts this run of Packer listed
//! (`artifact,<n>,id,<region>:<ami-id>`). A run that listed none (a wrapper that drops
//! `-machine-readable`) falls back to the manifest post-processor's output (the last
//! build of the run, `artifact_id` = `region:ami-id`).

use super::{AwsTarget, BuildError, BuildRequest};
use crate::wait::WaitError;
use serde::Deserialize;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

pub const DEFAULT_COMMAND: &str = "packer build";
/// Where Packer's manifest post-processor writes when its `output` is not set.
pub const DEFAULT_MANIFEST: &str = "packer-manifest.json";
/// How long Packer may clean up after an interrupt before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(120);
/// Lines of Packer's output quoted in an error.
const TAIL_LINES: usize = 15;

/// Template variables the provider sets when the template declares them
/// (`immutable-codegen` declares all three): the provider's region, and its profile
/// and EC2 endpoint when it has them.
pub const VAR_REGION: &str = "region";
pub const VAR_PROFILE: &str = "profile";
pub const VAR_EC2_ENDPOINT: &str = "ec2_endpoint";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackerSpec {
    pub template: PathBuf,
    /// Program and leading arguments, e.g. `["packer", "build"]`.
    pub command: Vec<String>,
    /// The manifest file; `None`: as the template's manifest post-processor says.
    pub manifest: Option<PathBuf>,
}

/// The program and arguments of a `build.command` string (split on whitespace, no shell).
pub fn split_command(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_owned).collect()
}

impl PackerSpec {
    pub fn read_template(&self) -> Result<Vec<u8>, BuildError> {
        std::fs::read(&self.template)
            .map_err(|e| BuildError::Template(format!("{}: {e}", self.template.display())))
    }

    /// The manifest path: configured, else the template's manifest post-processor
    /// `output`, else Packer's default.
    pub fn manifest_path(&self) -> Result<PathBuf, BuildError> {
        if let Some(path) = &self.manifest {
            return Ok(path.clone());
        }
        let template = self.read_template()?;
        let text = String::from_utf8_lossy(&template);
        Ok(PathBuf::from(manifest_output(&text).unwrap_or_else(|| DEFAULT_MANIFEST.to_owned())))
    }

    pub(super) async fn build(
        &self,
        ec2: &aws_sdk_ec2::Client,
        aws: &AwsTarget,
        request: &BuildRequest,
    ) -> Result<super::Built, BuildError> {
        let layer = request.layer.as_str();
        let region = aws.region.as_str();
        let template = self.read_template()?;
        let aws_vars = aws_vars(&declared_variables(&String::from_utf8_lossy(&template)), aws);
        let manifest = self.manifest_path()?;
        let previous_run = read_manifest(&manifest).ok().and_then(|m| m.last_run_uuid);
        let Some((program, leading)) = self.command.split_first() else {
            return Err(BuildError::Packer("build.command is empty".to_owned()));
        };
        request.limits.check(&format!("starting Packer for layer {layer}"))?;
        let mut command = Command::new(program);
        command
            .args(leading)
            .arg("-machine-readable")
            .arg("-color=false")
            .arg("-var")
            .arg(format!("commit={}", request.commit))
            .arg("-var")
            .arg(format!("parent={}", request.parent.ami_id));
        for var in &aws_vars {
            command.arg("-var").arg(var);
        }
        command.arg(&self.template).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::info!(layer, command = ?self.command, template = %self.template.display(), parent = %request.parent.ami_id, vars = ?aws_vars, "running Packer");
        let mut running = Running(Some(
            command.spawn().map_err(|e| BuildError::Packer(format!("starting {program:?}: {e}")))?,
        ));
        let Some(child) = running.0.as_mut() else {
            return Err(BuildError::Packer("Packer was not started".to_owned()));
        };
        let tail = Arc::new(Mutex::new(Output::default()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(stream_lines(stdout, layer.to_owned(), tail.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(stream_lines(stderr, layer.to_owned(), tail.clone())));
        }
        let limits = &request.limits;
        let interrupted: Result<_, WaitError> =
            limits.run(&format!("Packer was building layer {layer}"), child.wait()).await;
        let status = match interrupted {
            Ok(status) => status,
            Err(why) => {
                interrupt(child).await;
                running.0 = None;
                return Err(why.into());
            }
        };
        running.0 = None;
        for reader in readers {
            let _ = reader.await;
        }
        let status = status.map_err(|e| BuildError::Packer(format!("waiting for Packer: {e}")))?;
        if !status.success() {
            let (errors, lines): (Vec<String>, Vec<String>) =
                tail.lock().map(|t| (t.errors.clone(), t.tail.iter().cloned().collect())).unwrap_or_default();
            let said = if errors.is_empty() { String::new() } else { format!("; {}", errors.join("; ")) };
            return Err(BuildError::Packer(format!(
                "{} exited with {status}{said}; its last lines:\n{}",
                self.command.join(" "),
                lines.join("\n")
            )));
        }
        let artifacts = tail.lock().map(|t| t.artifacts.clone()).unwrap_or_default();
        let listed = ami_from_artifacts(&artifacts, region).map_err(BuildError::Packer)?;
        let built = match listed {
            Some(ami) => {
                tracing::info!(layer, ami = %ami, "Packer built the image");
                super::Built { ami, from_manifest: None }
            }
            None => {
                let ami = artifact_from_manifest(&manifest, previous_run.as_deref(), region)?;
                tracing::warn!(layer, ami = %ami, manifest = %manifest.display(), "Packer printed no artifact: the image is the manifest's newest build");
                super::Built { ami, from_manifest: Some(manifest) }
            }
        };
        crate::aws::images::wait_image_available(ec2, &built.ami, limits).await?;
        Ok(built)
    }
}

/// Packer while it runs. Dropped before Packer exits (the build abandoned because
/// Terraform is gone), it interrupts Packer rather than killing it, so that Packer
/// still terminates its builder instance and deletes its temporary key and group;
/// the process waits for that before it exits (`tfplugin::cleanup`).
struct Running(Option<tokio::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else { return };
        let spawned = tfplugin::cleanup::spawn(async move {
            interrupt(&mut child).await;
        });
        if !spawned {
            tracing::error!("no runtime to interrupt Packer; it may leave its builder instance running");
        }
    }
}

/// Interrupts Packer as Ctrl-C would (it then cleans up its own instance and key),
/// and kills it if it has not exited after a grace period.
async fn interrupt(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        tracing::warn!(pid, "interrupting Packer");
        let _ = Command::new("kill").arg("-INT").arg(pid.to_string()).status().await;
        if tokio::time::timeout(INTERRUPT_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// What an error quotes of Packer's output: its last lines, and every line saying a
/// build errored (Packer's reason, which a long dump of the source AMI filters can
/// push out of the last lines).
#[derive(Default)]
struct Output {
    tail: VecDeque<String>,
    errors: Vec<String>,
    /// The artifacts this run listed (`-machine-readable`).
    artifacts: Vec<Artifact>,
}

impl Output {
    /// One line of what a person would have read.
    fn said(&mut self, line: &str) {
        let trimmed = line.trim();
        if is_build_error(trimmed)
            && !self.errors.iter().any(|e| e == trimmed)
            && self.errors.len() < TAIL_LINES
        {
            self.errors.push(trimmed.to_owned());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
    }
}

/// The lines in which Packer says why a build failed: `Build 'amazon-ebs' errored
/// after 210 milliseconds: No AMI was found matching filters: ...` (a reason that
/// quotes the filters over several lines keeps its first).
fn is_build_error(line: &str) -> bool {
    line.contains("Build '") && line.contains("' errored")
}

async fn stream_lines(reader: impl tokio::io::AsyncRead + Unpin, layer: String, tail: Arc<Mutex<Output>>) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(raw)) = lines.next_line().await {
        let Some(line) = MachineLine::parse(&raw) else {
            // Not machine-readable: a command that does not pass the flag on, or a
            // plugin writing to stderr.
            tracing::info!(layer = %layer, "packer: {raw}");
            if let Ok(mut output) = tail.lock() {
                output.said(&raw);
            }
            continue;
        };
        if let Some(text) = line.ui_text() {
            for said in text.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(layer = %layer, "packer: {said}");
                if let Ok(mut output) = tail.lock() {
                    output.said(said);
                }
            }
        } else if let Some(artifact) = line.artifact() {
            tracing::debug!(layer = %layer, build = %artifact.build, id = %artifact.id, "packer artifact");
            if let Ok(mut output) = tail.lock() {
                output.artifacts.push(artifact);
            }
        } else {
            tracing::debug!(layer = %layer, "packer: {raw}");
        }
    }
}

/// One line of `packer -machine-readable`: `timestamp,target,type,data...`, with the
/// commas inside a field written `%!(PACKER_COMMA)` and its newlines `\n`.
#[derive(Debug, PartialEq, Eq)]
pub struct MachineLine {
    /// The build the line is about (the builder's name); empty for `ui` lines.
    pub target: String,
    pub kind: String,
    pub data: Vec<String>,
}

impl MachineLine {
    /// The line, or `None` when it is not machine-readable output.
    pub fn parse(line: &str) -> Option<Self> {
        let mut fields = line.trim_end_matches('\r').split(',');
        let timestamp = fields.next()?;
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let target = unescape(fields.next()?);
        let kind = unescape(fields.next()?);
        if kind.is_empty() {
            return None;
        }
        Some(Self { target, kind, data: fields.map(unescape).collect() })
    }

    /// What Packer would have printed without `-machine-readable` (`ui` lines:
    /// `say`, `message`, `error`), possibly several lines.
    pub fn ui_text(&self) -> Option<&str> {
        match (self.kind.as_str(), self.data.as_slice()) {
            ("ui", [level, text, ..]) if matches!(level.as_str(), "say" | "message" | "error") => Some(text),
            _ => None,
        }
    }

    /// An artifact's id: `artifact,<n>,id,<id>`.
    pub fn artifact(&self) -> Option<Artifact> {
        match (self.kind.as_str(), self.data.as_slice()) {
            ("artifact", [index, key, id, ..])
                if key == "id" && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(Artifact { build: self.target.clone(), id: id.clone() })
            }
            _ => None,
        }
    }
}

fn unescape(field: &str) -> String {
    field.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")
}

/// An artifact Packer listed at the end of a run: the build that made it and its id
/// (for `amazon-ebs`, `region:ami-id`, comma-separated when copied to other regions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub build: String,
    pub id: String,
}

/// The AMI in `region` among the artifacts of this run: `Ok(None)` when none names
/// an AMI (the manifest then says), an error when they name several. Packer lists an
/// artifact once per post-processor that keeps it (e.g. `manifest`), so the same AMI
/// counts once.
/// An AMI built only in other regions is an error: the layer would never be found in
/// the provider's region.
pub fn ami_from_artifacts(artifacts: &[Artifact], region: &str) -> Result<Option<String>, String> {
    let mut found: Vec<(&str, String)> = Vec::new();
    let mut elsewhere = Vec::new();
    for artifact in artifacts {
        for (in_region, ami) in amis_of_artifact(&artifact.id) {
            if in_region != region {
                let pair = (in_region.to_owned(), ami.to_owned());
                if !elsewhere.contains(&pair) {
                    elsewhere.push(pair);
                }
            } else if !found.iter().any(|(_, seen)| seen == ami) {
                found.push((&artifact.build, ami.to_owned()));
            }
        }
    }
    match found.as_slice() {
        [] if elsewhere.is_empty() => Ok(None),
        [] => Err(built_elsewhere(&elsewhere, region)),
        [(_, ami)] => Ok(Some(ami.clone())),
        several => Err(format!(
            "the Packer run built several AMIs in {region} ({}); the template must build one image",
            several
                .iter()
                .map(|(build, ami)| format!("{ami} by build {build:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Why an image built in other regions only is refused, and what to change.
fn built_elsewhere(elsewhere: &[(String, String)], region: &str) -> String {
    let list: Vec<String> = elsewhere.iter().map(|(r, ami)| format!("{ami} in {r}")).collect();
    format!(
        "Packer built {}, not in {region}, the provider's region, where the layer is looked for: have the \
         template build in the region it is given (declare a `region` variable and use it as the builder's \
         region: the provider passes -var region={region}), or copy the image there with ami_regions",
        list.join(", ")
    )
}

/// The variables a template declares: JSON `variables`, HCL2 `variable "name"`
/// blocks (read line by line, as `immutable-codegen` and `packer fmt` write them).
pub fn declared_variables(template: &str) -> BTreeSet<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(template) {
        return json
            .get("variables")
            .and_then(|v| v.as_object())
            .map(|vars| vars.keys().cloned().collect())
            .unwrap_or_default();
    }
    template
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("variable")?;
            if !rest.starts_with([' ', '\t', '"']) {
                return None;
            }
            let rest = rest.trim_start();
            let name = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next()?,
                None => rest.split(|c: char| c.is_whitespace() || c == '{').next()?,
            };
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// The `-var` values for the provider's AWS settings that the template declares:
/// Packer refuses an undeclared variable in HCL2 templates.
pub fn aws_vars(declared: &BTreeSet<String>, aws: &AwsTarget) -> Vec<String> {
    [
        (VAR_REGION, Some(aws.region.as_str()).filter(|r| !r.is_empty())),
        (VAR_PROFILE, aws.profile.as_deref()),
        (VAR_EC2_ENDPOINT, aws.ec2_endpoint.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some(format!("{name}={}", value?)).filter(|_| declared.contains(name)))
    .collect()
}

/// Packer's manifest post-processor output.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub builds: Vec<ManifestBuild>,
    pub last_run_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ManifestBuild {
    #[serde(default)]
    pub artifact_id: String,
    pub packer_run_uuid: Option<String>,
}

pub fn read_manifest(path: &Path) -> Result<Manifest, BuildError> {
    let manifest_error = |message: String| BuildError::Manifest { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| manifest_error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| manifest_error(e.to_string()))
}

impl Manifest {
    /// The `artifact_id` of the last build of the newest run (`region:ami-id`, or
    /// several comma-separated).
    pub fn last_artifact(&self) -> Result<&str, String> {
        let newest = self.last_run_uuid.as_ref();
        self.builds
            .iter()
            .rev()
            .find(|b| newest.is_none() || b.packer_run_uuid.as_ref() == newest)
            .map(|b| b.artifact_id.as_str())
            .ok_or_else(|| "no build of the last run".to_owned())
    }
}

/// The AMI id of the last build of the newest run in the manifest, in `region`.
/// `previous_run` is the run the manifest named before the build: finding it again
/// means Packer recorded nothing.
pub fn artifact_from_manifest(
    path: &Path,
    previous_run: Option<&str>,
    region: &str,
) -> Result<String, BuildError> {
    let manifest_error = |message: String| BuildError::Manifest { path: path.display().to_string(), message };
    let manifest = read_manifest(path)?;
    if manifest.last_run_uuid.is_some() && manifest.last_run_uuid.as_deref() == previous_run {
        return Err(manifest_error(
            "Packer recorded no new run (last_run_uuid is unchanged); does the template have a manifest \
             post-processor writing this file?"
                .to_owned(),
        ));
    }
    let artifact = manifest.last_artifact().map_err(manifest_error)?;
    let amis = amis_of_artifact(artifact);
    match amis.iter().find(|(r, _)| *r == region) {
        Some((_, ami)) => Ok((*ami).to_owned()),
        None if amis.is_empty() => Err(manifest_error(format!("artifact_id {artifact:?} names no AMI"))),
        None => {
            let elsewhere: Vec<_> =
                amis.iter().map(|(r, ami)| ((*r).to_owned(), (*ami).to_owned())).collect();
            Err(manifest_error(built_elsewhere(&elsewhere, region)))
        }
    }
}

/// The `(region, AMI)` pairs of an amazon-ebs artifact id: `eu-west-1:ami-1` or, for an
/// image copied to other regions, `eu-west-1:ami-1,us-east-1:ami-2`.
pub fn amis_of_artifact(artifact_id: &str) -> Vec<(&str, &str)> {
    artifact_id
        .split(',')
        .filter_map(|p| p.trim().split_once(':'))
        .filter(|(_, ami)| ami.starts_with("ami-"))
        .collect()
}

/// The literal `Fingerprint` tag of a template (JSON: `builders[].tags`; HCL2: a
/// `Fingerprint = "..."` line), as `immutable-codegen` writes it; `None` when the
/// template has none; an error when its builders disagree. Filters such as
/// `"tag:Fingerprint"` (the parent's) do not count.
pub fn template_fingerprint(template: &[u8]) -> Result<Option<String>, String> {
    let text = String::from_utf8_lossy(template);
    let key = conventions::ami_tags::FINGERPRINT;
    let candidates: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json
            .get("builders")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("tags")?.get(key)?.as_str().map(str::to_owned))
            .collect(),
        Err(_) => text
            .lines()
            .filter_map(|line| {
                let line = line.trim_start();
                let rest = line.strip_prefix(key).or_else(|| line.strip_prefix(&format!("\"{key}\"")))?;
                let rest = rest.trim_start().strip_prefix('=')?.trim();
                Some(rest.strip_prefix('"')?.split('"').next()?.to_owned())
            })
            .collect(),
    };
    let mut found: Option<String> = None;
    for value in candidates {
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        match &found {
            Some(first) if *first != value => {
                return Err(format!("the template has two Fingerprint tags, {first} and {value}"));
            }
            _ => found = Some(value),
        }
    }
    Ok(found)
}

/// The `output` of the template's manifest post-processor, if the template says.
pub fn manifest_output(template: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(template) {
        let post_processors = json.get("post-processors")?.as_array()?;
        // Entries are post-processors, or arrays of them (a sequence).
        return post_processors
            .iter()
            .flat_map(|p| p.as_array().cloned().unwrap_or_else(|| vec![p.clone()]))
            .find(|p| p.get("type").and_then(|t| t.as_str()) == Some("manifest"))
            .and_then(|p| p.get("output").and_then(|o| o.as_str()).map(str::to_owned));
    }
    // HCL2: post-processor "manifest" { output = "..." }
    let at = template.find("post-processor \"manifest\"")?;
    let block = &template[at..];
    let block = &block[..block.find('}').unwrap_or(block.len())];
    let line = block.lines().find(|l| l.trim_start().starts_with("output"))?;
    let value = line.split_once('=')?.1.trim();
    Some(value.trim_matches('"').to_owned()).filter(|v| !v.is_empty() && !v.contains("${"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packer_s_reason_is_picked_out_of_its_output() {
        assert!(is_build_error(
            "Build 'amazon-ebs' errored after 212 milliseconds: No AMI was found matching filters: {"
        ));
        assert!(!is_build_error("==> Some builds didn't complete successfully and had errors:"));
        assert!(!is_build_error("    amazon-ebs: Found Image ID: ami-1"));
        assert!(!is_build_error("--> amazon-ebs: Build 'x' finished."));
    }

    /// What `packer -machine-readable build` printed for a template with an
    /// `amazon-ebs` build, a `null` build and a manifest post-processor (Packer 1.6.6
    /// lists each artifact once more for the post-processor that kept it).
    const RUN: &str = "\
1795975282,,ui,say,==> web: Creating AMI web-1795975282 from instance i-1
1795975282,,ui,message,    web: AMI: ami-0123%!(PACKER_COMMA) tagged
1795975282,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:
1795975282,web,artifact-count,2
1795975282,web,artifact,0,builder-id,mitchellh.amazonebs
1795975282,web,artifact,0,id,eu-west-1:ami-0123
1795975282,web,artifact,0,string,AMIs were created:\\neu-west-1: ami-0123\\n
1795975282,web,artifact,0,files-count,0
1795975282,web,artifact,0,end
1795975282,web,artifact,1,id,eu-west-1:ami-0123
1795975282,other,artifact,0,id,Null
1795975282,,ui,say,--> web: AMIs were created:
";

    fn lines(text: &str) -> Vec<MachineLine> {
        text.lines().filter_map(MachineLine::parse).collect()
    }

    fn artifacts(text: &str) -> Vec<Artifact> {
        lines(text).iter().filter_map(MachineLine::artifact).collect()
    }

    #[test]
    fn machine_readable_lines_carry_what_packer_said() {
        let parsed = lines(RUN);
        assert_eq!(parsed.len(), 12);
        let said: Vec<&str> = parsed.iter().filter_map(MachineLine::ui_text).collect();
        assert_eq!(
            said,
            [
                "==> web: Creating AMI web-1795975282 from instance i-1",
                "    web: AMI: ami-0123, tagged",
                "\n==> Builds finished. The artifacts of successful builds are:",
                "--> web: AMIs were created:",
            ]
        );
        let error = MachineLine::parse(
            "1,,ui,error,Build 'web' errored after 2 seconds: No AMI%!(PACKER_COMMA) sorry\\n",
        );
        let text = error.as_ref().and_then(MachineLine::ui_text);
        assert_eq!(text, Some("Build 'web' errored after 2 seconds: No AMI, sorry\n"));
        assert!(text.is_some_and(|t| is_build_error(t.trim())));
    }

    #[test]
    fn other_output_is_not_machine_readable() {
        for line in [
            "==> amazon-ebs: Creating AMI",
            "",
            "1795975282",
            "1795975282,web",
            "1795975282,web,",
            "17959x5282,web,artifact,0,id,eu-west-1:ami-1",
            ",web,artifact,0,id,eu-west-1:ami-1",
        ] {
            assert_eq!(MachineLine::parse(line), None, "{line:?}");
        }
        // Machine-readable, but no artifact id.
        for line in [
            "1,web,artifact,0,id",
            "1,web,artifact,x,id,eu-west-1:ami-1",
            "1,web,artifact,0,builder-id,eu-west-1:ami-1",
            "1,web,artifact-count,1",
            "1,,ui,say",
        ] {
            let parsed = MachineLine::parse(line);
            assert!(parsed.is_some(), "{line:?}");
            assert_eq!(parsed.as_ref().and_then(MachineLine::artifact), None, "{line:?}");
        }
    }

    #[test]
    fn the_run_s_own_artifact_names_the_ami() {
        let found = artifacts(RUN);
        assert_eq!(found.len(), 3);
        assert_eq!(found[2], Artifact { build: "other".into(), id: "Null".into() });
        assert_eq!(ami_from_artifacts(&found, "eu-west-1"), Ok(Some("ami-0123".to_owned())));
        // Copied to other regions: the one in the provider's region.
        let copied = artifacts("1,web,artifact,0,id,us-east-1:ami-2%!(PACKER_COMMA)eu-west-1:ami-1\n");
        assert_eq!(ami_from_artifacts(&copied, "eu-west-1"), Ok(Some("ami-1".to_owned())));
        // Nothing that names an AMI: the manifest decides.
        assert_eq!(ami_from_artifacts(&artifacts("1,n,artifact,0,id,Null\n"), "eu-west-1"), Ok(None));
        assert_eq!(ami_from_artifacts(&[], "eu-west-1"), Ok(None));
    }

    #[test]
    fn several_amis_in_one_run_are_an_error() {
        let two = artifacts("1,a,artifact,0,id,eu-west-1:ami-1\n1,b,artifact,0,id,eu-west-1:ami-2\n");
        let error = ami_from_artifacts(&two, "eu-west-1").expect_err("two AMIs");
        assert!(error.contains("ami-1 by build \"a\"") && error.contains("ami-2 by build \"b\""), "{error}");
        // A build in the provider's region wins over one elsewhere.
        let elsewhere = artifacts("1,a,artifact,0,id,us-east-1:ami-1\n1,b,artifact,0,id,eu-west-1:ami-2\n");
        assert_eq!(ami_from_artifacts(&elsewhere, "eu-west-1"), Ok(Some("ami-2".to_owned())));
    }

    #[test]
    fn declared_variables_of_json_and_hcl_templates() {
        let json = r#"{"variables":{"commit":"","region":"eu-west-1"},"builders":[]}"#;
        assert_eq!(declared_variables(json), BTreeSet::from(["commit".into(), "region".into()]));
        assert!(declared_variables(r#"{"builders":[]}"#).is_empty());
        let hcl = "variable \"commit\" {\n  type = string\n}\n\nvariable profile {}\n  variable   \"ec2_endpoint\"{\n}\nvariables {\n}\nsource \"amazon-ebs\" \"x\" {\n  region = var.region\n}\n";
        assert_eq!(
            declared_variables(hcl),
            BTreeSet::from(["commit".into(), "profile".into(), "ec2_endpoint".into()])
        );
    }

    #[test]
    fn only_declared_aws_variables_are_passed() {
        let all = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<String>>();
        let aws = AwsTarget {
            region: "eu-west-1".into(),
            profile: Some("ops".into()),
            ec2_endpoint: Some("http://127.0.0.1:5000".into()),
        };
        assert_eq!(
            aws_vars(&all(&["commit", "parent", "region", "profile", "ec2_endpoint"]), &aws),
            ["region=eu-west-1", "profile=ops", "ec2_endpoint=http://127.0.0.1:5000"]
        );
        assert_eq!(aws_vars(&all(&["commit", "parent"]), &aws), Vec::<String>::new());
        assert_eq!(
            aws_vars(&all(&["region", "ec2_endpoint"]), &aws),
            ["region=eu-west-1", "ec2_endpoint=http://127.0.0.1:5000"]
        );
        // Unset settings are not passed: the template's defaults stand.
        let region_only = AwsTarget { region: "eu-west-1".into(), ..AwsTarget::default() };
        assert_eq!(
            aws_vars(&all(&["region", "profile", "ec2_endpoint"]), &region_only),
            ["region=eu-west-1"]
        );
    }

    const FP: &str = "5736a4ecb4d1114b73a8df798dddce6fe381a25d5cbbbc213b4e30d87183acab";

    #[test]
    fn fingerprint_is_read_from_json_and_hcl_templates() {
        let parent = "0".repeat(64);
        let json = format!(
            r#"{{"builders":[{{"source_ami_filter":{{"filters":{{"tag:Fingerprint":"{parent}"}}}},"tags":{{"Layer":"web","Fingerprint": "{FP}"}}}}]}}"#
        );
        assert_eq!(template_fingerprint(json.as_bytes()), Ok(Some(FP.to_owned())));
        let hcl =
            format!("source \"amazon-ebs\" \"web\" {{\n  tags = {{\n    Fingerprint = \"{FP}\"\n  }}\n}}\n");
        assert_eq!(template_fingerprint(hcl.as_bytes()), Ok(Some(FP.to_owned())));
        let hcl_filter = format!("filters = {{\n  \"tag:Fingerprint\" = \"{parent}\"\n}}\n{hcl}");
        assert_eq!(template_fingerprint(hcl_filter.as_bytes()), Ok(Some(FP.to_owned())));
        assert_eq!(
            template_fingerprint(br#"{"builders":[{"tags":{"Fingerprint":"{{user `fp`}}"}}]}"#),
            Ok(None)
        );
        let two = format!("Fingerprint = \"{FP}\"\n  Fingerprint = \"{parent}\"\n");
        assert!(template_fingerprint(two.as_bytes()).is_err());
    }

    /// A template as `immutable-codegen` writes it pins its parent by the parent's
    /// Fingerprint in `source_ami_filter`; only its own tag counts.
    #[test]
    fn generated_templates_have_one_fingerprint() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/out/rails-base/packer.json");
        let Ok(template) = std::fs::read(&path) else { return };
        let found = template_fingerprint(&template);
        assert!(matches!(found, Ok(Some(_))), "{found:?}");
    }

    /// `immutable-codegen` declares every variable the provider may pass, and writes
    /// a manifest of the layer's own.
    #[test]
    fn generated_templates_declare_the_aws_variables() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/images/out/rails-base/packer.json");
        let Ok(template) = std::fs::read_to_string(&path) else { return };
        let declared = declared_variables(&template);
        for name in ["commit", "parent", VAR_REGION, VAR_PROFILE, VAR_EC2_ENDPOINT] {
            assert!(declared.contains(name), "{name}: {declared:?}");
        }
        assert_eq!(manifest_output(&template).as_deref(), Some("manifest-rails-base.json"));
    }

    #[test]
    fn manifest_output_from_json_and_hcl() {
        let json =
            r#"{"post-processors":[[{"type":"shell-local"},{"type":"manifest","output":"out/m.json"}]]}"#;
        assert_eq!(manifest_output(json).as_deref(), Some("out/m.json"));
        assert_eq!(manifest_output(r#"{"post-processors":[{"type":"manifest"}]}"#), None);
        let hcl = "build {\n  post-processor \"manifest\" {\n    output     = \"m.json\"\n    strip_path = true\n  }\n}\n";
        assert_eq!(manifest_output(hcl).as_deref(), Some("m.json"));
    }

    #[test]
    fn artifact_ids_name_the_region() {
        assert_eq!(amis_of_artifact("eu-west-1:ami-1"), [("eu-west-1", "ami-1")]);
        assert_eq!(
            amis_of_artifact("us-east-1:ami-2,eu-west-1:ami-1"),
            [("us-east-1", "ami-2"), ("eu-west-1", "ami-1")]
        );
        assert!(amis_of_artifact("nonsense").is_empty());
        assert!(amis_of_artifact("Null").is_empty());
    }

    #[test]
    fn an_image_built_in_another_region_only_is_refused_at_once() {
        // Listed twice, as with a manifest post-processor: named once.
        let elsewhere =
            artifacts("1,web,artifact,0,id,us-west-2:ami-2\n1,web,artifact,1,id,us-west-2:ami-2\n");
        let error = ami_from_artifacts(&elsewhere, "eu-west-1").expect_err("built elsewhere");
        assert!(
            error.starts_with("Packer built ami-2 in us-west-2, not in eu-west-1, the provider's region,")
                && error.contains("-var region=eu-west-1"),
            "{error}"
        );
        let copies = artifacts("1,web,artifact,0,id,us-east-1:ami-2%!(PACKER_COMMA)us-west-2:ami-3\n");
        let error = ami_from_artifacts(&copies, "eu-west-1").expect_err("built elsewhere");
        assert!(error.contains("ami-2 in us-east-1, ami-3 in us-west-2"), "{error}");
    }

    #[test]
    fn the_last_build_of_the_last_run_wins() {
        let dir = std::env::temp_dir().join(format!("immutable-manifest-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("manifest.json");
        let manifest = r#"{
  "builds": [
    {"name": "a", "builder_type": "amazon-ebs", "build_time": 1, "files": null, "artifact_id": "eu-west-1:ami-old", "packer_run_uuid": "run-1", "custom_data": null},
    {"name": "a", "builder_type": "amazon-ebs", "build_time": 2, "files": null, "artifact_id": "eu-west-1:ami-new", "packer_run_uuid": "run-2", "custom_data": null}
  ],
  "last_run_uuid": "run-2"
}"#;
        std::fs::write(&path, manifest).expect("write manifest");
        assert_eq!(
            artifact_from_manifest(&path, Some("run-1"), "eu-west-1").ok().as_deref(),
            Some("ami-new")
        );
        assert!(matches!(
            artifact_from_manifest(&path, Some("run-2"), "eu-west-1"),
            Err(BuildError::Manifest { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
