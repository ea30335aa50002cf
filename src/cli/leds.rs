//! `emotiond leds test`: lights each LED in turn, for checking the wiring.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use emotiond::signal::open_leds;

use super::run::ConfigArgs;

#[derive(Debug, Args)]
pub struct LedsArgs {
    #[command(subcommand)]
    command: LedsCommand,
}

#[derive(Debug, Subcommand)]
enum LedsCommand {
    /// Light each LED alone in turn, printing which, then turn all off.
    Test(TestArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// How long each LED stays on, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    step_ms: u64,
    /// How many times to go round.
    #[arg(long, default_value_t = 1, value_name = "N")]
    cycles: u32,
}

pub fn run(args: LedsArgs) -> Result<()> {
    let LedsCommand::Test(args) = args.command;
    let cfg = args.config.load()?;
    let mut leds = open_leds(&cfg.leds)?
        .context("leds.backend is none: there are no LEDs to test (pass --leds BACKEND)")?;
    let lines = leds.lines().to_vec();
    println!(
        "{}: {} line(s), {}",
        leds.describe(),
        lines.len(),
        if cfg.leds.active_low {
            "active-low"
        } else {
            "active-high"
        }
    );
    for cycle in 0..args.cycles {
        for (i, line) in lines.iter().enumerate() {
            println!("cycle {}: {} (line {}) on", cycle + 1, line.name, line.pin);
            leds.light_only(i)?;
            std::thread::sleep(Duration::from_millis(args.step_ms));
        }
    }
    leds.show(emotiond::signal::LedState::Off, Duration::ZERO)?;
    println!("all off");
    Ok(())
}
