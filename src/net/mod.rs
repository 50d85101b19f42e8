//! Networking for containers, in-process over netlink: links, addresses
//! and routes (rtnetlink), NAT and filtering (nf_tables), address
//! management, name resolution. This code knows links, addresses and
//! rules, not containers. Built only with the `full` feature.

pub mod dns;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod nft;
pub mod ports;
pub mod rtnl;
