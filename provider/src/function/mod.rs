//! Provider-defined functions, one module each, listed in `ImmutableProvider::functions`.

mod manifest_ami;

pub use manifest_ami::ManifestAmi;
