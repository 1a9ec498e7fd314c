//! Atrium's gRPC API as Rust types: the messages, clients and servers generated from
//! `proto/atrium/**.proto`, plus the descriptor set for reflection. Generated code only; domain
//! conversions belong to the services that own the types.

#![allow(clippy::all, clippy::unwrap_used)]

/// Encoded `FileDescriptorSet` of every Atrium proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/atrium_descriptor.bin"));

pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.common.v1.rs"));
    }
}

pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.identity.v1.rs"));
    }
}

pub mod policy {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.policy.v1.rs"));
    }
}

pub mod agent {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.agent.v1.rs"));
    }
}

pub mod session {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.session.v1.rs"));
    }
}

pub mod usage {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atrium.usage.v1.rs"));
    }
}
