use std::process::ExitCode;

fn main() -> ExitCode {
    tfplugin::plugin::serve(provider::ImmutableProvider::default(), provider::SERVE_OPTIONS)
}
