//! `immutable-agent`: see the library and docs/agent.md.

use std::process::ExitCode;

use agent::{Command, Config, Log, Stop, signals};

/// A configuration that cannot work (options, or an IMDSv1-only endpoint): systemd's
/// unit does not restart on it (`RestartPreventExitStatus=2`).
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::from_args(std::env::args().skip(1), &env) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", agent::config::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("immutable-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("immutable-agent: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let log = Log::stdout();
    let stop = Stop::new();
    if let Err(e) = signals::stop_on_signals(&stop, &log) {
        eprintln!("immutable-agent: cannot handle SIGTERM: {e}");
        return ExitCode::FAILURE;
    }
    match agent::run(&config, &stop, &log) {
        Ok(_) => ExitCode::SUCCESS,
        // Already logged.
        Err(_) => ExitCode::from(CONFIG_ERROR),
    }
}
