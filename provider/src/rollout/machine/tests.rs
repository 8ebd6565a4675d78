use super::*;
use proptest::prelude::*;

fn settings(groups: &[&str], capacity: u32) -> Settings {
    Settings::all_at_once(
        groups.iter().map(|g| (*g).to_owned()).collect(),
        capacity,
        0,
        100,
        Duration::from_secs(1),
    )
}

fn blue() -> Blue {
    Blue {
        fleet_id: "sfr-blue".into(),
        instances: vec!["i-b1".into(), "i-b2".into()],
        capacity: 2,
        on_demand: 0,
    }
}

fn health(group: &str, states: &[(&str, &str)]) -> Observation {
    Observation::Health {
        instances: states.iter().map(|(i, _)| (*i).to_owned()).collect(),
        by_group: BTreeMap::from([(
            group.to_owned(),
            states
                .iter()
                .map(|(i, s)| TargetHealth {
                    instance_id: (*i).into(),
                    state: (*s).into(),
                    reason: (*s != "healthy").then(|| "Target.ResponseCodeMismatch".into()),
                    description: None,
                })
                .collect(),
        )]),
    }
}

fn fulfilled(instances: &[&str]) -> Observation {
    Observation::GreenStatus {
        state: FleetState::Open,
        instances: instances.iter().map(|i| (*i).to_owned()).collect(),
        fulfilled: true,
        error: None,
    }
}

#[test]
fn happy_rollout_switches_after_green_is_healthy() {
    let mut r = Rollout::new(settings(&["tg"], 2), Some(blue()));
    assert_eq!(r.next_action(), Action::RequestGreen { capacity: 2, on_demand: 0 });
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    assert_eq!(r.next_action(), Action::PollGreen { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    assert_eq!(r.next_action(), Action::Register { instances: vec!["i-g1".into(), "i-g2".into()] });
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g2", "initial")]));
    assert_eq!(r.next_action(), Action::PollHealth { fleet_id: "sfr-green".into() }, "1/2 is not enough");
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g2", "healthy")]));
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-b1".into(), "i-b2".into()] });
    r.observe(Observation::Deregistered);
    assert_eq!(
        r.next_action(),
        Action::WaitDrain { instances: vec!["i-b1".into(), "i-b2".into()], limit: Duration::from_secs(1) }
    );
    r.observe(Observation::DrainDone);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-blue".into() });
    r.observe(Observation::Cancelled { fleet_id: "sfr-blue".into() });
    assert_eq!(
        r.next_action(),
        Action::Finish(Outcome::Switched {
            fleet_id: "sfr-green".into(),
            instances: vec!["i-g1".into(), "i-g2".into()]
        })
    );
}

#[test]
fn unhealthy_green_times_out_and_rolls_back_naming_each_instance() {
    let mut r = Rollout::new(settings(&["tg"], 2), Some(blue()));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "unhealthy"), ("i-g2", "healthy")]));
    r.observe(Observation::DeadlinePassed);
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-g1".into(), "i-g2".into()] });
    r.observe(Observation::Deregistered);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-green".into() });
    r.observe(Observation::Cancelled { fleet_id: "sfr-green".into() });
    let Action::Finish(Outcome::RolledBack { failure }) = r.next_action() else { panic!("rolled back") };
    let text = failure.to_string();
    assert!(text.contains("i-g1 unhealthy in tg: Target.ResponseCodeMismatch"), "{text}");
    assert!(!text.contains("i-g2"), "healthy instances are not blamed: {text}");
}

#[test]
fn fleet_error_fails_fast_with_aws_reason() {
    let mut r = Rollout::new(settings(&["tg"], 1), None);
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(Observation::GreenStatus {
        state: FleetState::Open,
        instances: vec![],
        fulfilled: false,
        error: Some("iamFleetRoleInvalid: the fleet role is not valid".into()),
    });
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-green".into() }, "nothing registered yet");
    r.observe(Observation::Cancelled { fleet_id: "sfr-green".into() });
    let Action::Finish(Outcome::RolledBack { failure }) = r.next_action() else { panic!("rolled back") };
    assert!(failure.to_string().contains("iamFleetRoleInvalid"), "{failure}");
}

#[test]
fn reclaimed_instance_is_replaced_not_blamed() {
    let mut r = Rollout::new(settings(&["tg"], 2), None);
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    r.observe(Observation::Registered);
    // i-g2 vanished from the fleet: Spot took it back.
    r.observe(health("tg", &[("i-g1", "healthy")]));
    assert_eq!(r.next_action(), Action::PollGreen { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g3"]));
    assert_eq!(r.next_action(), Action::Register { instances: vec!["i-g1".into(), "i-g3".into()] });
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g3", "healthy")]));
    assert!(matches!(r.next_action(), Action::Finish(Outcome::Switched { .. })));
}

#[test]
fn stop_after_green_is_healthy_completes_the_switch() {
    let mut r = Rollout::new(settings(&["tg"], 1), Some(blue()));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1"]));
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy")]));
    r.observe(Observation::Deregistered);
    r.observe(Observation::StopRequested);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-blue".into() });
}

#[test]
fn required_healthy_rounds_up() {
    assert_eq!(required_healthy(2, 100), 2);
    assert_eq!(required_healthy(3, 50), 2);
    assert_eq!(required_healthy(10, 0), 1, "at least one healthy instance");
    assert_eq!(required_healthy(1, 100), 1);
}

fn waves(groups: &[&str], steps: &[u32], bake: Duration) -> Settings {
    Settings {
        target_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        min_healthy_percent: 100,
        drain: Duration::from_secs(1),
        steps: steps.to_vec(),
        on_demand: 0,
        bake,
    }
}

fn blue_of(n: usize) -> Blue {
    Blue {
        fleet_id: "sfr-blue".into(),
        instances: (1..=n).map(|i| format!("i-b{i:02}")).collect(),
        capacity: u32::try_from(n).unwrap_or(0),
        on_demand: 0,
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:02}")).collect()
}

fn all_healthy(instances: &[String]) -> Observation {
    let states: Vec<(&str, &str)> = instances.iter().map(|i| (i.as_str(), "healthy")).collect();
    health("tg", &states)
}

/// Green grows 1 -> 2 -> 4, each step healthy and baked before blue gives up the
/// same share: deregistered, drained, then terminated with its capacity lowered.
#[test]
fn waves_shrink_blue_by_each_healthy_step() {
    let bake = Duration::from_secs(30);
    let mut r = Rollout::new(waves(&["tg"], &[1, 2, 4], bake), Some(blue_of(4)));
    assert_eq!(r.next_action(), Action::RequestGreen { capacity: 1, on_demand: 0 }, "the first step's size");
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g01"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 1)));
    assert_eq!(r.next_action(), Action::Bake { fleet_id: "sfr-green".into(), duration: bake });
    r.observe(Observation::Baked);
    assert_eq!(r.next_action(), Action::ListBlue { fleet_id: "sfr-blue".into() });
    r.observe(Observation::BlueInstances { instances: ids("i-b", 4) });
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-b04".into()] }, "one share of blue");
    r.observe(Observation::Deregistered);
    assert!(matches!(r.next_action(), Action::WaitDrain { .. }));
    r.observe(Observation::DrainDone);
    assert_eq!(
        r.next_action(),
        Action::Retire {
            fleet_id: "sfr-blue".into(),
            instances: vec!["i-b04".into()],
            capacity: 3,
            on_demand: 0
        }
    );
    r.observe(Observation::Retired);
    assert_eq!(
        r.next_action(),
        Action::GrowGreen { fleet_id: "sfr-green".into(), capacity: 2, on_demand: 0 },
        "step 2"
    );
    assert_eq!(r.step(), (1, 2));
    r.observe(Observation::Grown);
    r.observe(fulfilled(&["i-g01", "i-g02"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 2)));
    r.observe(Observation::Baked);
    r.observe(Observation::BlueInstances { instances: ids("i-b", 3) });
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-b03".into()] });
    r.observe(Observation::Deregistered);
    r.observe(Observation::DrainDone);
    r.observe(Observation::Retired);
    r.observe(Observation::Grown);
    r.observe(fulfilled(&["i-g01", "i-g02", "i-g03", "i-g04"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 4)));
    assert!(!r.green_is_healthy(), "the last step still bakes");
    r.observe(Observation::Baked);
    assert!(r.green_is_healthy());
    assert_eq!(r.next_action(), Action::Deregister { instances: ids("i-b", 2) }, "the rest of blue");
    r.observe(Observation::Deregistered);
    r.observe(Observation::DrainDone);
    r.observe(Observation::Cancelled { fleet_id: "sfr-blue".into() });
    assert!(matches!(r.next_action(), Action::Finish(Outcome::Switched { .. })));
}

/// An alarm during the second step's bake: blue is restored to full capacity before
/// green is drained and cancelled, and the failure names the alarm and the step.
#[test]
fn an_alarm_rolls_back_restoring_blue_first() {
    let mut r = Rollout::new(waves(&["tg"], &[1, 2, 4], Duration::from_secs(30)), Some(blue_of(4)));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g01"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 1)));
    r.observe(Observation::Baked);
    r.observe(Observation::BlueInstances { instances: ids("i-b", 4) });
    r.observe(Observation::Deregistered);
    r.observe(Observation::DrainDone);
    r.observe(Observation::Retired);
    r.observe(Observation::Grown);
    r.observe(fulfilled(&["i-g01", "i-g02"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 2)));
    r.observe(Observation::Alarms { firing: vec!["web-5xx".into()] });
    assert_eq!(
        r.next_action(),
        Action::RestoreBlue { fleet_id: "sfr-blue".into(), capacity: 4, on_demand: 0 },
        "blue back to full first"
    );
    r.observe(Observation::StopRequested);
    assert!(matches!(r.next_action(), Action::RestoreBlue { .. }), "a stop does not cut the rollback short");
    r.observe(Observation::BlueRestored { incomplete: None });
    assert_eq!(r.next_action(), Action::Deregister { instances: ids("i-g", 2) });
    r.observe(Observation::Deregistered);
    assert!(matches!(r.next_action(), Action::WaitDrain { .. }), "green served: it drains");
    r.observe(Observation::DrainDone);
    r.observe(Observation::Cancelled { fleet_id: "sfr-green".into() });
    let Action::Finish(Outcome::RolledBack { failure }) = r.next_action() else { panic!("rolled back") };
    let text = failure.to_string();
    assert!(text.contains("CloudWatch alarm web-5xx in ALARM"), "{text}");
    assert!(text.contains("step 2 of 3 at 2 of 4 instances"), "{text}");
}

/// A green instance reclaimed while baking: the step waits for the replacement (a
/// fresh health wait), registers it and bakes again.
#[test]
fn a_reclaim_while_baking_awaits_the_replacement() {
    let mut r = Rollout::new(waves(&["tg"], &[2, 4], Duration::from_secs(30)), Some(blue_of(4)));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g01", "i-g02"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 2)));
    let epoch = r.health_epoch();
    assert!(matches!(r.next_action(), Action::Bake { .. }));
    r.observe(all_healthy(&["i-g01".to_owned()]));
    assert_eq!(r.next_action(), Action::PollGreen { fleet_id: "sfr-green".into() });
    assert_ne!(r.health_epoch(), epoch, "the replacement gets its own health timeout");
    r.observe(fulfilled(&["i-g01", "i-g03"]));
    assert_eq!(r.next_action(), Action::Register { instances: vec!["i-g01".into(), "i-g03".into()] });
    r.observe(Observation::Registered);
    r.observe(all_healthy(&["i-g01".to_owned(), "i-g03".to_owned()]));
    assert!(matches!(r.next_action(), Action::Bake { .. }), "bakes again");
}

/// A blue instance reclaimed before a shrink is not retired twice: blue gives up only
/// what it has above its share.
#[test]
fn a_reclaimed_blue_instance_counts_towards_its_shrink() {
    let mut r = Rollout::new(waves(&["tg"], &[2, 4], Duration::ZERO), Some(blue_of(4)));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g01", "i-g02"]));
    r.observe(Observation::Registered);
    r.observe(all_healthy(&ids("i-g", 2)));
    r.observe(Observation::BlueInstances { instances: ids("i-b", 3) });
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-b03".into()] }, "3 live, 2 stay");
}

/// What the world answers when the machine acts; `Chaos` values perturb it.
#[derive(Clone, Debug)]
enum Chaos {
    Nothing,
    NotYetFulfilled,
    FleetError,
    FleetClosed,
    Unhealthy,
    Reclaim,
    BlueReclaim,
    Alarm,
    Stop,
    Deadline,
    RequestFails,
    ActionFails,
}

fn chaos() -> impl Strategy<Value = Chaos> {
    prop_oneof![
        8 => Just(Chaos::Nothing),
        2 => Just(Chaos::NotYetFulfilled),
        1 => Just(Chaos::FleetError),
        1 => Just(Chaos::FleetClosed),
        3 => Just(Chaos::Unhealthy),
        2 => Just(Chaos::Reclaim),
        2 => Just(Chaos::BlueReclaim),
        1 => Just(Chaos::Alarm),
        1 => Just(Chaos::Stop),
        1 => Just(Chaos::Deadline),
        1 => Just(Chaos::RequestFails),
        1 => Just(Chaos::ActionFails),
    ]
}

#[derive(Clone, Debug, Default)]
struct Fleet {
    capacity: u32,
    instances: Vec<String>,
}

#[derive(Default, Debug)]
struct World {
    open: BTreeMap<String, Fleet>,
    requested: Vec<String>,
    cancelled: Vec<String>,
    /// Instances registered in the target groups.
    registered: std::collections::BTreeSet<String>,
    /// Green instances the world last reported healthy.
    healthy: std::collections::BTreeSet<String>,
    blue_reclaimed: u32,
    next_instance: u32,
    peak: usize,
}

impl World {
    fn instances(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.next_instance += 1;
                format!("i-{:04}", self.next_instance)
            })
            .collect()
    }

    fn fill(&mut self, id: &str) {
        let Some(fleet) = self.open.get(id).cloned() else { return };
        let missing = (fleet.capacity as usize).saturating_sub(fleet.instances.len());
        let fresh = self.instances(missing);
        if let Some(fleet) = self.open.get_mut(id) {
            fleet.instances.extend(fresh);
        }
    }

    fn total(&self) -> usize {
        self.open.values().map(|f| f.instances.len()).sum()
    }

    /// Healthy green plus registered blue.
    fn serving(&self, green: Option<&str>) -> usize {
        let blue = self
            .open
            .get("sfr-blue")
            .map_or(0, |b| b.instances.iter().filter(|i| self.registered.contains(*i)).count());
        let green = green.and_then(|g| self.open.get(g)).map_or(0, |g| {
            g.instances.iter().filter(|i| self.healthy.contains(*i) && self.registered.contains(*i)).count()
        });
        blue + green
    }
}

#[derive(Debug)]
struct Case {
    with_blue: bool,
    blue_capacity: u32,
    groups: usize,
    target: u32,
    percents: Vec<u32>,
    surge: Option<u32>,
    bake: bool,
}

fn run(case: &Case, script: Vec<Chaos>) -> (World, Outcome, Rollout) {
    let group_names: Vec<String> = (0..case.groups).map(|g| format!("tg{g}")).collect();
    let plan = plan_steps(case.target, &case.percents, case.surge);
    let mut world = World::default();
    let blue = case.with_blue.then(|| {
        let instances = world.instances(case.blue_capacity as usize);
        world.registered.extend(instances.iter().cloned());
        world
            .open
            .insert("sfr-blue".into(), Fleet { capacity: case.blue_capacity, instances: instances.clone() });
        Blue { fleet_id: "sfr-blue".into(), instances, capacity: case.blue_capacity, on_demand: 0 }
    });
    let settings = Settings {
        target_groups: group_names.clone(),
        min_healthy_percent: 100,
        drain: Duration::from_millis(10),
        steps: plan.sizes.clone(),
        on_demand: 0,
        bake: if case.bake { Duration::from_secs(5) } else { Duration::ZERO },
    };
    let peak_bound = case.target.max(if case.with_blue { case.blue_capacity } else { 0 }) + plan.surge;
    let mut rollout = Rollout::new(settings, blue);
    // After the script, the deadline passes once and the world cooperates.
    let mut script = script.into_iter().chain(std::iter::once(Chaos::Deadline));
    for _ in 0..20_000 {
        let chaos = script.next().unwrap_or(Chaos::Nothing);
        let action = rollout.next_action();
        let green = rollout.green_fleet().map(str::to_owned);
        let health_of = |world: &World, instances: &[String], state: &str| -> Observation {
            let by_group = group_names
                .iter()
                .map(|g| {
                    let targets = instances
                        .iter()
                        .filter(|i| world.registered.contains(*i))
                        .map(|i| TargetHealth {
                            instance_id: i.clone(),
                            state: state.into(),
                            reason: None,
                            description: None,
                        })
                        .collect();
                    (g.clone(), targets)
                })
                .collect();
            Observation::Health { instances: instances.to_vec(), by_group }
        };
        let observation = match (&action, &chaos) {
            (Action::Finish(outcome), _) => return (world, outcome.clone(), rollout),
            // Stop and deadline arrive between actions, as the runner checks them.
            (_, Chaos::Stop) => Observation::StopRequested,
            (_, Chaos::Deadline) => Observation::DeadlinePassed,
            (Action::RequestGreen { .. }, Chaos::RequestFails) => {
                Observation::RequestFailed { reason: "nope".into() }
            }
            (
                Action::GrowGreen { .. } | Action::ListBlue { .. } | Action::Retire { .. },
                Chaos::ActionFails,
            ) => Observation::Failed { reason: "InternalError".into() },
            (Action::RequestGreen { capacity, .. }, _) => {
                let id = format!("sfr-green{}", world.requested.len());
                let instances = world.instances(*capacity as usize);
                world.open.insert(id.clone(), Fleet { capacity: *capacity, instances });
                world.requested.push(id.clone());
                Observation::GreenRequested { fleet_id: id }
            }
            (Action::GrowGreen { fleet_id, capacity, .. }, _) => {
                if let Some(fleet) = world.open.get_mut(fleet_id) {
                    assert!(*capacity > fleet.capacity, "green only grows");
                    fleet.capacity = *capacity;
                }
                world.fill(fleet_id);
                Observation::Grown
            }
            (Action::PollGreen { fleet_id }, c) => {
                let fleet = world.open.get(fleet_id).cloned();
                match (fleet, c) {
                    (None, _) | (_, Chaos::FleetClosed) => {
                        world.open.remove(fleet_id);
                        world.cancelled.push(fleet_id.clone());
                        Observation::GreenStatus {
                            state: FleetState::Closed,
                            instances: vec![],
                            fulfilled: false,
                            error: None,
                        }
                    }
                    (Some(fleet), Chaos::FleetError) => Observation::GreenStatus {
                        state: FleetState::Open,
                        instances: fleet.instances,
                        fulfilled: false,
                        error: Some("capacity-not-available".into()),
                    },
                    (Some(fleet), Chaos::NotYetFulfilled) => Observation::GreenStatus {
                        state: FleetState::Open,
                        instances: fleet.instances,
                        fulfilled: false,
                        error: None,
                    },
                    (Some(_), _) => {
                        world.fill(fleet_id);
                        Observation::GreenStatus {
                            state: FleetState::Open,
                            instances: world.open[fleet_id].instances.clone(),
                            fulfilled: true,
                            error: None,
                        }
                    }
                }
            }
            (Action::Register { instances }, _) => {
                world.registered.extend(instances.iter().cloned());
                Observation::Registered
            }
            (Action::PollHealth { fleet_id } | Action::Bake { fleet_id, .. }, c) => {
                let Some(mut fleet) = world.open.get(fleet_id).cloned() else { continue };
                match c {
                    Chaos::Alarm => Observation::Alarms { firing: vec!["alarm".into()] },
                    Chaos::Reclaim if !fleet.instances.is_empty() => {
                        let gone = fleet.instances.remove(0);
                        world.registered.remove(&gone);
                        world.healthy.remove(&gone);
                        world.open.insert(fleet_id.clone(), fleet.clone());
                        health_of(&world, &fleet.instances, "healthy")
                    }
                    Chaos::Unhealthy => {
                        world.healthy.clear();
                        health_of(&world, &fleet.instances, "unhealthy")
                    }
                    _ if matches!(action, Action::Bake { .. }) => Observation::Baked,
                    _ => {
                        world.healthy = fleet.instances.iter().cloned().collect();
                        health_of(&world, &fleet.instances, "healthy")
                    }
                }
            }
            (Action::ListBlue { fleet_id }, c) => {
                let Some(fleet) = world.open.get_mut(fleet_id) else { continue };
                if matches!(c, Chaos::BlueReclaim) && !fleet.instances.is_empty() {
                    let gone = fleet.instances.remove(0);
                    world.registered.remove(&gone);
                    world.blue_reclaimed += 1;
                }
                Observation::BlueInstances { instances: world.open[fleet_id].instances.clone() }
            }
            (Action::Deregister { instances }, _) => {
                let of_blue = world
                    .open
                    .get("sfr-blue")
                    .is_some_and(|b| instances.iter().any(|i| b.instances.contains(i)));
                for i in instances {
                    world.registered.remove(i);
                }
                if of_blue && !group_names.is_empty() {
                    let floor =
                        case.target.min(case.blue_capacity).saturating_sub(world.blue_reclaimed) as usize;
                    assert!(
                        world.serving(green.as_deref()) >= floor,
                        "serving capacity {} fell below {floor} when blue was deregistered: {world:?}",
                        world.serving(green.as_deref())
                    );
                }
                Observation::Deregistered
            }
            (Action::WaitDrain { .. }, _) => Observation::DrainDone,
            (Action::Retire { fleet_id, instances, capacity, .. }, _) => {
                for i in instances {
                    assert!(
                        group_names.is_empty() || !world.registered.contains(i),
                        "{i} retired while registered"
                    );
                }
                if let Some(fleet) = world.open.get_mut(fleet_id) {
                    fleet.instances.retain(|i| !instances.contains(i));
                    fleet.capacity = *capacity;
                }
                Observation::Retired
            }
            (Action::RestoreBlue { fleet_id, capacity, .. }, _) => {
                if let Some(fleet) = world.open.get_mut(fleet_id) {
                    fleet.capacity = *capacity;
                }
                world.fill(fleet_id);
                let all = world.open.get(fleet_id).map(|f| f.instances.clone()).unwrap_or_default();
                world.registered.extend(all);
                Observation::BlueRestored { incomplete: None }
            }
            (Action::Cancel { fleet_id }, _) => {
                if fleet_id == "sfr-blue" {
                    assert!(rollout.green_is_healthy(), "blue cancelled before the last step passed");
                }
                if let Some(fleet) = world.open.remove(fleet_id) {
                    for i in &fleet.instances {
                        world.registered.remove(i);
                    }
                }
                world.cancelled.push(fleet_id.clone());
                Observation::Cancelled { fleet_id: fleet_id.clone() }
            }
        };
        rollout.observe(observation);
        world.peak = world.peak.max(world.total());
        if !rollout.is_rolling_back() && !rollout.is_done() {
            assert!(
                world.total() <= peak_bound as usize,
                "{} instances, more than {peak_bound} ({:?})",
                world.total(),
                plan
            );
        }
    }
    panic!("rollout did not finish in 20,000 steps: {rollout:?}");
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        1u32..8,
        0usize..3,
        1u32..10,
        proptest::collection::btree_set(1u32..100, 0..3),
        proptest::option::of(10u32..60),
        any::<bool>(),
    )
        .prop_map(|(with_blue, blue_capacity, groups, target, percents, surge, bake)| Case {
            with_blue,
            blue_capacity,
            groups,
            target,
            percents: percents.into_iter().collect(),
            surge,
            bake,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn every_rollout_ends_with_exactly_one_serving_fleet(
        case in case(),
        script in proptest::collection::vec(chaos(), 0..60),
    ) {
        let (world, outcome, _) = run(&case, script);
        // Every fleet requested is serving or cancelled; nothing else is open.
        let serving: Vec<&String> = world.open.keys().collect();
        match &outcome {
            Outcome::Switched { fleet_id, instances } => {
                prop_assert_eq!(serving, vec![fleet_id], "only green serves");
                prop_assert!(world.requested.contains(fleet_id));
                prop_assert_eq!(&world.open[fleet_id].instances, instances, "state names green's current instances");
                prop_assert_eq!(world.open[fleet_id].capacity, case.target, "green at full capacity");
                if case.groups > 0 {
                    prop_assert!(instances.iter().all(|i| world.registered.contains(i)), "green stays registered");
                }
            }
            Outcome::RolledBack { .. } => {
                if case.with_blue {
                    prop_assert_eq!(serving, vec!["sfr-blue"], "blue still serves");
                    let blue = &world.open["sfr-blue"];
                    prop_assert_eq!(blue.capacity, case.blue_capacity, "blue back at full capacity");
                    if case.groups > 0 {
                        prop_assert!(blue.instances.iter().all(|i| world.registered.contains(i)),
                            "blue registered after a rollback");
                    }
                } else {
                    prop_assert!(serving.is_empty(), "a failed first deploy leaves nothing: {:?}", serving);
                }
            }
        }
        for fleet in &world.requested {
            prop_assert!(world.open.contains_key(fleet) || world.cancelled.contains(fleet),
                "fleet {} neither serving nor cancelled", fleet);
        }
    }
}
