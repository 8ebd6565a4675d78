//! The Spot Fleet backend: one Spot Fleet request (type `maintain`) per generation,
//! from the generation's launch template, with the target groups in its load balancer
//! configuration.

use super::{Capacity, Group, GroupSpec, Status, digest};
use crate::aws::AwsError;
use crate::aws::fleets::{self, Fleet, FleetRequest};
use async_trait::async_trait;

/// Spot Fleet requests of one account and region.
#[derive(Clone, Debug)]
pub struct SpotFleet {
    ec2: aws_sdk_ec2::Client,
    /// The role Spot Fleet assumes to launch and tag instances; needed to request.
    fleet_role_arn: Option<String>,
    /// RFC 3339; the request expires then (its instances are terminated).
    valid_until: Option<String>,
    /// Listings and descriptions of the account's fleets shared with the run's other
    /// resources; without it, each [`Capacity::find`] lists them itself and each
    /// [`Capacity::status`] describes its fleet alone.
    reads: Option<std::sync::Arc<crate::aws::reads::Reads>>,
}

impl SpotFleet {
    /// A backend for requesting fleets needs the fleet role; one for the fleets that
    /// exist (status, resize, cancel) does not.
    pub fn new(
        ec2: aws_sdk_ec2::Client,
        fleet_role_arn: Option<String>,
        valid_until: Option<String>,
    ) -> Self {
        Self { ec2, fleet_role_arn, valid_until, reads: None }
    }

    /// Looks for fleets through `reads`' shared listing ([`Reads::fleets_now`]) and
    /// describes them for their status together with the other rollouts' fleets
    /// ([`Reads::fleet_now`]).
    ///
    /// [`Reads::fleets_now`]: crate::aws::reads::Reads::fleets_now
    /// [`Reads::fleet_now`]: crate::aws::reads::Reads::fleet_now
    #[must_use]
    pub fn listing_through(mut self, reads: std::sync::Arc<crate::aws::reads::Reads>) -> Self {
        self.reads = Some(reads);
        self
    }
}

fn group(fleet: Fleet) -> Group {
    Group {
        generation: fleet.generation(),
        token: fleet.config_token().map(str::to_owned),
        launch_template_id: fleet.launch_template_id.clone(),
        owner: fleet.owner().map(str::to_owned),
        committed: fleet.is_committed(),
        id: fleet.id,
    }
}

#[async_trait]
impl Capacity for SpotFleet {
    fn kind(&self) -> &'static str {
        "Spot Fleet"
    }

    fn token(&self, spec: &GroupSpec) -> String {
        let canonical = format!("{spec:?} {:?} {:?}", self.fleet_role_arn, self.valid_until);
        let app: String = spec.app.chars().take(30).collect();
        format!("{app}-g{}-{}", spec.generation, digest(&canonical))
    }

    async fn find(&self, app: &str, generation: u64) -> Result<Option<Group>, AwsError> {
        let Some(reads) = &self.reads else {
            return Ok(fleets::find_open_fleet(&self.ec2, app, generation).await?.map(group));
        };
        let generation = generation.to_string();
        let listing = reads.fleets_now().await?;
        Ok(listing
            .iter()
            .find(|f| {
                f.is_open_of(app) && f.tags.get(conventions::fleet_tags::GENERATION) == Some(&generation)
            })
            .cloned()
            .map(group))
    }

    async fn request(&self, spec: &GroupSpec, template_id: &str, token: &str) -> Result<String, AwsError> {
        let mut tags = spec.tags.clone();
        tags.insert(conventions::fleet_tags::CONFIG.to_owned(), token.to_owned());
        let action = format!("requesting Spot Fleet for app {} (generation {})", spec.app, spec.generation);
        let Some(fleet_role_arn) = &self.fleet_role_arn else {
            return Err(AwsError::plain(action, "no fleet role to request it with"));
        };
        let request = FleetRequest {
            action,
            template_id,
            fleet_role_arn,
            client_token: token,
            instance_types: &spec.instance_types,
            subnet_ids: &spec.subnet_ids,
            availability_zones: &spec.availability_zones,
            target_capacity: spec.target_capacity,
            on_demand_capacity: spec.on_demand_capacity,
            spot: &spec.spot,
            valid_until: self.valid_until.as_deref(),
            target_group_arns: &spec.target_group_arns,
            tags: &tags,
        };
        fleets::request(&self.ec2, &request).await
    }

    async fn status(&self, id: &str) -> Result<Status, AwsError> {
        let found = match &self.reads {
            // Described together with the fleets other rollouts of the run poll meanwhile.
            Some(reads) => reads.fleet_now(id).await?,
            None => fleets::find_fleet(&self.ec2, id).await?,
        };
        let Some(fleet) = found.filter(Fleet::is_open) else {
            return Ok(Status::closed());
        };
        let error = fleets::fleet_error(&self.ec2, &fleet).await?;
        let instances = fleets::fleet_instances(&self.ec2, id).await?;
        let target = usize::try_from(fleet.target_capacity).unwrap_or(usize::MAX);
        let fulfilled = instances.len() >= target && fleet.activity.as_deref() != Some("pending_fulfillment");
        Ok(Status { open: true, instances, target_capacity: fleet.target_capacity, fulfilled, error })
    }

    async fn instances(&self, id: &str) -> Result<Vec<String>, AwsError> {
        fleets::fleet_instances(&self.ec2, id).await
    }

    async fn commit(&self, id: &str, owner: &str) -> Result<(), AwsError> {
        use conventions::fleet_tags::{COMMITTED, OWNER};
        let tags = [(COMMITTED.to_owned(), "true".to_owned()), (OWNER.to_owned(), owner.to_owned())].into();
        fleets::tag_fleet(&self.ec2, id, &tags).await
    }

    async fn resize(&self, id: &str, target: u32, on_demand: u32) -> Result<(), AwsError> {
        fleets::modify_capacity(&self.ec2, id, target, on_demand).await
    }

    async fn retire(
        &self,
        id: &str,
        instances: &[String],
        target: u32,
        on_demand: u32,
    ) -> Result<(), AwsError> {
        fleets::shrink(&self.ec2, id, target, on_demand, instances).await
    }

    async fn cancel(&self, id: &str) -> Result<(), AwsError> {
        fleets::cancel_fleet(&self.ec2, id).await
    }
}
