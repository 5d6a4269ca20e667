use clap::Parser;

fn main() -> std::process::ExitCode {
    heterolora::device::configure_process();
    let cli = heterolora::cli::Cli::parse();
    match heterolora::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(heterolora::cli::exit_status(&e))
        }
    }
}
