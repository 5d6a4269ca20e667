use clap::Parser;

fn main() -> std::process::ExitCode {
    heterolora::device::tune_allocator();
    let cli = heterolora::cli::Cli::parse();
    match heterolora::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(heterolora::cli::exit_status(&e))
        }
    }
}
