//! CPU time of the processes a benchmark involves, from /proc: Terraform (a child of
//! this process), the provider plugin (a child of Terraform) and the emulator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The kernel's clock ticks per second for /proc times (`getconf CLK_TCK`).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/PID/stat after the command name, so that `fields[k - 3]` is
/// field k of proc(5) (state is field 3).
fn stat_fields(pid: &str) -> Option<(String, Vec<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // State is a letter; read it as 0 so that the indices stay those of proc(5).
    let fields = stat.get(close + 1..)?.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    Some((name, fields))
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / ticks_per_second())
}

/// User + system CPU time of process `pid` so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let (_, f) = stat_fields(&pid.to_string())?;
    Some(ticks(f.get(11)? + f.get(12)?))
}

/// CPU time of this process's children that have exited and been waited for.
pub fn children_cpu() -> Duration {
    stat_fields("self").and_then(|(_, f)| Some(ticks(f.get(13)? + f.get(14)?))).unwrap_or_default()
}

/// Processes whose parent is `parent`, with their command names.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (name, f) = stat_fields(&pid.to_string())?;
            (*f.get(1)? == u64::from(parent)).then_some((pid, name))
        })
        .collect()
}

/// The emulator's server process: the child of this process running `python -m emulator`.
pub fn emulator_pid() -> Option<u32> {
    children_of(std::process::id()).into_iter().map(|(pid, _)| pid).find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("-m\0emulator"))
    })
}

/// Follows the provider plugins Terraform starts while it runs, and keeps the last
/// CPU time seen for each (a plugin's times vanish with it, so the sampling misses
/// at most its last few milliseconds).
pub struct PluginSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<u32, Duration>>>,
    thread: Option<JoinHandle<()>>,
}

impl PluginSampler {
    pub fn start() -> PluginSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop_flag, record) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let me = std::process::id();
            while !stop_flag.load(Ordering::Relaxed) {
                for (terraform, _) in children_of(me).into_iter().filter(|(_, name)| name == "terraform") {
                    for (plugin, name) in children_of(terraform) {
                        if !name.starts_with("terraform-provi") {
                            continue;
                        }
                        if let (Some(cpu), Ok(mut seen)) = (process_cpu(plugin), record.lock()) {
                            seen.insert(plugin, cpu);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PluginSampler { stop, seen, thread: Some(thread) }
    }

    /// Stops sampling; the CPU time of every plugin seen, summed.
    pub fn finish(mut self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.seen.lock().map(|seen| seen.values().sum()).unwrap_or_default()
    }
}
