//! The restore plan: what `ckpt restart` hands to the `ckpt-restorer` binary.
//!
//! This library is shared by the std CLI (which writes a plan into a memfd)
//! and by the `no_std` restorer binary (which reads it). It holds only the
//! `#[repr(C)]` record types, their constants, a validating reader
//! ([`plan::Plan::parse`]) and a writer ([`plan::write_plan`]). No allocation.
#![cfg_attr(not(test), no_std)]

pub mod plan;
