//! The `emotiond` command line: a thin layer over the library.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(args.default_log_level()),
    )
    .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`emotiond detect ... | head`) is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("emotiond: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
