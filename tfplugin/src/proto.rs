//! Generated protocol types. Nothing outside this crate sees them.

#![allow(dead_code, clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

pub(crate) mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

pub(crate) mod plugin {
    tonic::include_proto!("plugin");
}

pub(crate) mod health {
    tonic::include_proto!("grpc.health.v1");
}
