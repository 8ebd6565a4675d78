//! SIGTERM and SIGINT set the stop flag (systemd stops a service with SIGTERM).

use std::io;
use std::thread;

use serde_json::json;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::log::Log;
use crate::stop::Stop;

/// Sets `stop` on SIGTERM or SIGINT, from a thread that waits for them.
pub fn stop_on_signals(stop: &Stop, log: &Log) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let (stop, log) = (stop.clone(), log.clone());
    thread::Builder::new().name("signals".into()).stack_size(64 * 1024).spawn(move || {
        for signal in signals.forever() {
            let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
            log.info("signal", format!("{name}: stopping"), json!({"signal": name}));
            stop.trigger();
        }
    })?;
    Ok(())
}
