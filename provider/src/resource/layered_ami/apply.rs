//! What a layer's apply does in AWS: adopt the planned AMI or build one, prune the
//! layer's old AMIs, keep the tags the user decides in line, clean up after killed runs.

use super::desired::{self, Desired};
use super::model::Model;
use super::schema::TIMEOUTS;
use crate::aws::images::{self, Identity, Image};
use crate::aws::{Clients, instances};
use crate::builder::{AwsTarget, BuildError, BuildRequest};
use crate::wait::Limits;
use std::collections::BTreeMap;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::{Change, Context};
use tfplugin::schema::Timeouts;
use tfplugin::value::Val;

/// Create and update: adopt the planned AMI, or build one; then retention. Returns the
/// new model, or `None` with the failure in `diags`.
pub async fn converge(
    ctx: &Context,
    clients: &Clients,
    change: &Change,
    operation: &str,
    diags: &mut Diagnostics,
) -> Option<Model> {
    let config = change.config::<Model>(diags)?;
    let planned = change.planned::<Model>(diags)?;
    let prior = change.prior::<Model>(diags);
    if let (Some(layer), Some(commit)) = (config.layer.known(), config.commit.known()) {
        terminate_leftover_builders(clients, layer, commit, diags).await;
    }
    let mut state = planned.clone();
    // The planned AMI was adopted at plan time: nothing to build.
    if let Some(ami_id) = planned.ami.ami_id.known() {
        match images::find_image(&clients.ec2, ami_id).await {
            Ok(Some(image)) if image.is_available() => {}
            Ok(_) => {
                diags.error(
                    "Adopted AMI Vanished",
                    format!("AMI {ami_id}, adopted at plan time, is no longer available; plan again"),
                );
                return None;
            }
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        }
        sync_user_tags(clients, prior.as_ref(), &config, ami_id, diags).await;
        state.tags_all = Val::Known(config.user_tags(clients));
        tracing::info!(layer = ?config.layer.known(), ami = %ami_id, "layer adopted an existing AMI");
        return Some(state);
    }

    let want = desired::desired(clients, &config, diags).await?;
    let Desired { parent: Some(parent), fingerprint: Some(fingerprint), builder: Some(builder) } = &want
    else {
        diags.error("Provider Bug", "immutable_layered_ami: the configuration is not fully known at apply");
        return None;
    };
    let Some(identity) = want.identity(&config) else {
        diags.error("Provider Bug", "immutable_layered_ami: the configuration is not fully known at apply");
        return None;
    };
    if let Some(planned_fp) = planned.fingerprint.known()
        && planned_fp != fingerprint
    {
        diags.error_at(
            "build",
            "Layer Inputs Changed Since Plan",
            format!(
                "the layer's fingerprint was {planned_fp} at plan time and is {fingerprint} now; plan again"
            ),
        );
        return None;
    }
    let layer = identity.layer.clone();
    // An AMI built since the plan (or by CI) is adopted rather than built again.
    let adoptable = match desired::find_adoptable(clients, &identity, None).await {
        Ok(found) => found,
        Err(e) => {
            diags.push(e.diagnostic());
            return None;
        }
    };
    let image = match adoptable {
        Some(image) => {
            tracing::info!(layer, ami = %image.id, "adopting an AMI built since the plan");
            image
        }
        None => {
            let limit = Timeouts::limit(&config.timeouts, operation, &TIMEOUTS);
            let request = BuildRequest {
                layer: layer.clone(),
                commit: identity.commit.clone(),
                parent: parent.clone(),
                tags: config.ami_tags(clients, parent, fingerprint),
                explicit_name: config.display_name.is_known(),
                resource_tags: clients.default_tags.clone(),
                limits: Limits::new(limit, &ctx.stop),
            };
            tracing::info!(layer, commit = %identity.commit, parent = %parent.ami_id, fingerprint = %fingerprint, "building layer");
            let built = match builder.build(&clients.ec2, &AwsTarget::from(clients), &request).await {
                Ok(built) => built,
                Err(e) => {
                    build_failed(diags, &layer, &identity, &e);
                    return None;
                }
            };
            if let Some(manifest) = &built.from_manifest {
                diags.warning(
                    "AMI Read From The Packer Manifest",
                    format!(
                        "Packer printed no artifact for layer {layer} (the build command does not pass \
                         -machine-readable on to Packer), so its AMI {} is the newest build in the manifest \
                         {}. Builds of other layers that write the same file while this one runs can \
                         change what it names: pass the provider's arguments on to Packer, or give each \
                         template a manifest of its own.",
                        built.ami,
                        manifest.display()
                    ),
                );
            }
            built_image(clients, &layer, &built.ami, diags).await?
        }
    };
    state.parent_ami_id = Val::Known(parent.ami_id.clone());
    state.fingerprint = Val::Known(fingerprint.clone());
    state.tags_all = Val::Known(config.user_tags(clients));
    state.ami = match desired::describe(clients, &image).await {
        Ok(attributes) => attributes,
        Err(e) => {
            diags.push(e.diagnostic());
            return None;
        }
    };
    if let Some(&keep) = config.keep.known() {
        retain(clients, &layer, keep, &image.id, diags).await;
    }
    Some(state)
}

async fn built_image(clients: &Clients, layer: &str, ami: &str, diags: &mut Diagnostics) -> Option<Image> {
    match images::find_image(&clients.ec2, ami).await {
        Ok(Some(image)) => Some(image),
        Ok(None) => {
            diags.error(
                "Built AMI Vanished",
                format!("AMI {ami} of layer {layer} disappeared right after its build"),
            );
            None
        }
        Err(e) => {
            diags.push(e.diagnostic());
            None
        }
    }
}

async fn retain(clients: &Clients, layer: &str, keep: i64, current: &str, diags: &mut Diagnostics) {
    let keep = usize::try_from(keep).unwrap_or(1).max(1);
    match images::prune_layer(&clients.ec2, layer, keep, current).await {
        Ok(pruned) => tracing::info!(
            layer,
            keep,
            deregistered = pruned.deregistered.len(),
            kept_in_use = pruned.kept_in_use.len(),
            "retention done"
        ),
        Err(e) => diags.warning(
            "Retention Incomplete",
            format!("layer {layer} was built, but pruning its old AMIs (keep = {keep}) failed: {e}"),
        ),
    }
}

/// Applies changes of `tags`, `default_tags` and `display_name` to an adopted AMI, and
/// repairs those changed outside Terraform: sets what differs, removes what the
/// configuration decided before (as last read) and no longer does.
async fn sync_user_tags(
    clients: &Clients,
    prior: Option<&Model>,
    config: &Model,
    ami_id: &str,
    diags: &mut Diagnostics,
) {
    let wanted = config.user_tags(clients);
    let removed: Vec<String> = prior
        .and_then(|p| p.tags_all.known().or(p.tags.known()))
        .map(|old| old.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect())
        .unwrap_or_default();
    let image = match images::find_image(&clients.ec2, ami_id).await {
        Ok(Some(image)) => image,
        Ok(None) => return,
        Err(e) => return diags.push(e.diagnostic()),
    };
    let changed: BTreeMap<String, String> =
        wanted.into_iter().filter(|(k, v)| image.tags.get(k) != Some(v)).collect();
    if let Err(e) = images::tag_image(&clients.ec2, ami_id, &changed).await {
        return diags.push(e.diagnostic_at("tags"));
    }
    if let Err(e) = images::untag_image(&clients.ec2, ami_id, &removed).await {
        diags.push(e.diagnostic_at("tags"));
    }
}

/// Terminates the builder instances a killed run of this layer and commit left behind
/// (its guard died with it), whether this run adopts the image that run made or builds
/// anew. Builders of other commits may belong to another run building at the same
/// time, and are left alone.
async fn terminate_leftover_builders(clients: &Clients, layer: &str, commit: &str, diags: &mut Diagnostics) {
    let leftovers = match instances::leftover_builders(&clients.ec2, layer, commit).await {
        Ok(ids) => ids,
        Err(e) => return diags.warning("Cleanup Incomplete", e.to_string()),
    };
    for id in leftovers {
        tracing::warn!(layer, instance = %id, "terminating a builder instance left by an interrupted build");
        if let Err(e) = instances::terminate(&clients.ec2, &id).await {
            diags.warning("Cleanup Incomplete", e.to_string());
        }
    }
}

fn build_failed(diags: &mut Diagnostics, layer: &str, identity: &Identity, e: &BuildError) {
    let summary = if e.is_cancelled() { "Layer Build Cancelled" } else { "Layer Build Failed" };
    diags.error_at(
        "build",
        summary,
        format!("building layer {layer} at commit {} from {}: {e}", identity.commit, identity.parent_ami),
    );
}

/// Deregisters the layer's current AMI (and its snapshots) unless the configuration of
/// the last apply said to leave it. An AMI that instances run or live Spot Fleets
/// launch is left, with an error naming them, unless `force_deregister` was applied.
pub async fn delete(ctx: &Context, clients: &Clients, prior: &Model, diags: &mut Diagnostics) {
    let Some(ami_id) = prior.ami.ami_id.known() else { return };
    if prior.deregister_on_destroy.known() == Some(&false) {
        tracing::info!(ami = %ami_id, "deregister_on_destroy = false: leaving the AMI");
        return;
    }
    if prior.force_deregister.known() != Some(&true) {
        let users = match images::image_runners(&clients.ec2, ami_id).await {
            Ok(users) => users,
            Err(e) => return diags.push(e.diagnostic()),
        };
        if !users.is_empty() {
            let layer = prior.layer.known().map_or("", String::as_str);
            return diags.error(
                "AMI In Use",
                format!(
                    "AMI {ami_id} of layer {layer} is in use ({}), so it was not deregistered. Replace or destroy \
                     what runs it first; or set deregister_on_destroy = false to leave the AMI, or \
                     force_deregister = true to deregister it anyway, and apply that before destroying.",
                    users.join("; ")
                ),
            );
        }
    }
    let limits = Limits::new(Timeouts::limit(&prior.timeouts, "delete", &TIMEOUTS), &ctx.stop);
    match limits
        .run(&format!("deregistering AMI {ami_id}"), images::deregister_with_snapshots(&clients.ec2, ami_id))
        .await
    {
        Ok(Ok(snapshots)) => tracing::info!(ami = %ami_id, ?snapshots, "deregistered layer AMI"),
        Ok(Err(e)) => diags.push(e.diagnostic()),
        Err(e) => diags.error("Delete Incomplete", e.to_string()),
    }
}
