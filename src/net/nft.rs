//! nf_tables over netlink, without the `nft` or `iptables` binaries:
//! pure encoders for tables, chains and rules (the expressions the NAT and
//! filter rules need), batched into one all-or-nothing transaction, plus
//! a dump of a chain's rules to find their handles.
//!
//! runway keeps its rules in its own table (family `inet`, so one table
//! serves IPv4 and later IPv6; NAT in an inet table needs Linux 5.2) and
//! never names another table. Numbers are from the kernel's uapi
//! `linux/netfilter/nf_tables.h` and `linux/netfilter/nfnetlink.h`.

use crate::error::{Error, Result};
use crate::net::netlink::{
    attrs, str_of, Msg, Socket, NETLINK_NETFILTER, NLA_F_NESTED, NLM_F_ACK, NLM_F_APPEND,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST,
};
use std::net::Ipv4Addr;

/// runway's one table.
pub const TABLE: &str = "runway";

/// Protocol families (nfgen_family).
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// Echo the created object back to us (a new rule's handle).
const NLM_F_ECHO: u16 = 0x8;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_GETTABLE: u16 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// Registers: the verdict register and the first two 16-byte ones.
pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;

/// Payload bases.
pub const BASE_NETWORK: u32 = 1;
pub const BASE_TRANSPORT: u32 = 2;

/// Comparison operators.
pub const CMP_EQ: u32 = 0;
pub const CMP_NEQ: u32 = 1;

/// Meta keys.
pub const META_IIFNAME: u32 = 6;
pub const META_OIFNAME: u32 = 7;
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;

/// Conntrack key and state bits (`ct state`).
pub const CT_STATE: u32 = 0;
/// NFT_CT_STATUS, and its IPS_DST_NAT bit: the connection was DNATed.
pub const CT_STATUS: u32 = 2;
pub const CT_STATUS_DNAT: u32 = 1 << 5;
pub const CT_ESTABLISHED: u32 = 1 << 1;
pub const CT_RELATED: u32 = 1 << 2;

/// fib: `fib daddr type` → address type; RTN_LOCAL.
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const RTN_LOCAL: u32 = 2;

const IFNAMSIZ: usize = 16;

/// Netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// Base chain types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
}

impl ChainType {
    fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// A base chain: where it hooks, its type and priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub name: &'static str,
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
}

/// runway's base chains: `dstnat` (-100) and `srcnat` (100) as nft names
/// them, and filter forward at 0.
pub const BASE_CHAINS: [BaseChain; 4] = [
    BaseChain {
        name: "prerouting",
        kind: ChainType::Nat,
        hook: Hook::Prerouting,
        priority: -100,
    },
    BaseChain {
        name: "output",
        kind: ChainType::Nat,
        hook: Hook::Output,
        priority: -100,
    },
    BaseChain {
        name: "postrouting",
        kind: ChainType::Nat,
        hook: Hook::Postrouting,
        priority: 100,
    },
    BaseChain {
        name: "forward",
        kind: ChainType::Filter,
        hook: Hook::Forward,
        priority: 0,
    },
];

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
        }
    }
}

/// NAT kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    Snat = 0,
    Dnat = 1,
}

/// Layer-4 protocols a published port can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp = 6,
    Udp = 17,
}

/// One expression of a rule, as the kernel knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` of header `base` into `dreg`.
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// Compare `sreg` with `data`; a mismatch ends the rule.
    Cmp {
        sreg: u32,
        op: u32,
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor` over `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    Meta {
        key: u32,
        dreg: u32,
    },
    /// Data (address, port) or a verdict into a register.
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    /// NAT to the address in `addr_reg` (and port in `port_reg`).
    Nat {
        kind: NatKind,
        addr_reg: u32,
        port_reg: Option<u32>,
    },
    Masq,
    Ct {
        key: u32,
        dreg: u32,
    },
    /// `fib daddr type` into `dreg`.
    FibDaddrType {
        dreg: u32,
    },
    Counter,
}

/// Starts a nested attribute the way libnftnl does (with NLA_F_NESTED).
fn nest(m: &mut Msg, ty: u16) -> usize {
    m.nest_start(ty | NLA_F_NESTED)
}

fn data_value(m: &mut Msg, ty: u16, v: &[u8]) {
    let n = nest(m, ty);
    m.attr(NFTA_DATA_VALUE, v);
    m.nest_end(n);
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Meta { .. } => "meta",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Nat { .. } => "nat",
            Expr::Masq => "masq",
            Expr::Ct { .. } => "ct",
            Expr::FibDaddrType { .. } => "fib",
            Expr::Counter => "counter",
        }
    }

    /// Appends this expression as one NFTA_LIST_ELEM.
    pub fn encode(&self, m: &mut Msg) {
        let elem = nest(m, NFTA_LIST_ELEM);
        m.attr_str(NFTA_EXPR_NAME, self.name());
        let d = nest(m, NFTA_EXPR_DATA);
        match self {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                m.attr_be32(1, *dreg); // NFTA_PAYLOAD_DREG
                m.attr_be32(2, *base);
                m.attr_be32(3, *offset);
                m.attr_be32(4, *len);
            }
            Expr::Cmp { sreg, op, data } => {
                m.attr_be32(1, *sreg); // NFTA_CMP_SREG
                m.attr_be32(2, *op);
                data_value(m, 3, data);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                m.attr_be32(1, *sreg); // NFTA_BITWISE_SREG
                m.attr_be32(2, *dreg);
                m.attr_be32(3, mask.len() as u32);
                data_value(m, 4, mask);
                data_value(m, 5, xor);
            }
            Expr::Meta { key, dreg } => {
                m.attr_be32(2, *key); // NFTA_META_KEY
                m.attr_be32(1, *dreg);
            }
            Expr::Immediate { dreg, data } => {
                m.attr_be32(1, *dreg); // NFTA_IMMEDIATE_DREG
                data_value(m, 2, data);
            }
            Expr::Verdict(v) => {
                m.attr_be32(1, REG_VERDICT);
                let n = nest(m, 2); // NFTA_IMMEDIATE_DATA
                let vn = nest(m, NFTA_DATA_VERDICT);
                m.attr_be32(NFTA_VERDICT_CODE, v.code() as u32);
                if let Verdict::Jump(c) | Verdict::Goto(c) = v {
                    m.attr_str(NFTA_VERDICT_CHAIN, c);
                }
                m.nest_end(vn);
                m.nest_end(n);
            }
            Expr::Nat {
                kind,
                addr_reg,
                port_reg,
            } => {
                m.attr_be32(1, *kind as u32); // NFTA_NAT_TYPE
                m.attr_be32(2, NFPROTO_IPV4 as u32);
                m.attr_be32(3, *addr_reg); // REG_ADDR_MIN
                if let Some(p) = port_reg {
                    m.attr_be32(5, *p); // REG_PROTO_MIN
                }
            }
            Expr::Masq | Expr::Counter => {}
            Expr::Ct { key, dreg } => {
                m.attr_be32(2, *key); // NFTA_CT_KEY
                m.attr_be32(1, *dreg);
            }
            Expr::FibDaddrType { dreg } => {
                m.attr_be32(1, *dreg); // NFTA_FIB_DREG
                m.attr_be32(2, NFT_FIB_RESULT_ADDRTYPE);
                m.attr_be32(3, NFTA_FIB_F_DADDR);
            }
        }
        m.nest_end(d);
        m.nest_end(elem);
    }
}

/// An IPv4 prefix, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net4 {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Net4 {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Net4 {
        Net4 {
            addr,
            prefix: prefix.min(32),
        }
    }

    fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - p.min(32) as u32),
        }
    }
}

/// A rule being built from matches and a final statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub exprs: Vec<Expr>,
}

impl Rule {
    pub fn new() -> Rule {
        Rule::default()
    }

    pub fn push(mut self, e: Expr) -> Rule {
        self.exprs.push(e);
        self
    }

    /// `meta nfproto ipv4`: the network-header matches below read IPv4
    /// offsets, which in an inet table must not be applied to IPv6.
    pub fn ipv4(self) -> Rule {
        self.push(Expr::Meta {
            key: META_NFPROTO,
            dreg: REG_1,
        })
        .push(Expr::Cmp {
            sreg: REG_1,
            op: CMP_EQ,
            data: vec![NFPROTO_IPV4],
        })
    }

    fn ifname(self, key: u32, op: u32, name: &str) -> Rule {
        // The kernel loads IFNAMSIZ bytes: compare the zero-padded name
        // (an exact match, not a prefix).
        let mut data = vec![0u8; IFNAMSIZ];
        let b = name.as_bytes();
        let n = b.len().min(IFNAMSIZ - 1);
        data[..n].copy_from_slice(&b[..n]);
        self.push(Expr::Meta { key, dreg: REG_1 }).push(Expr::Cmp {
            sreg: REG_1,
            op,
            data,
        })
    }

    /// `iifname [!=] NAME`.
    pub fn iifname(self, name: &str, eq: bool) -> Rule {
        self.ifname(META_IIFNAME, if eq { CMP_EQ } else { CMP_NEQ }, name)
    }

    /// `oifname [!=] NAME`.
    pub fn oifname(self, name: &str, eq: bool) -> Rule {
        self.ifname(META_OIFNAME, if eq { CMP_EQ } else { CMP_NEQ }, name)
    }

    fn ip_field(self, offset: u32, net: Net4, eq: bool) -> Rule {
        let r = self.push(Expr::Payload {
            base: BASE_NETWORK,
            offset,
            len: 4,
            dreg: REG_1,
        });
        let mask = net.mask();
        let r = if net.prefix < 32 {
            r.push(Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: mask.to_be_bytes().to_vec(),
                xor: vec![0; 4],
            })
        } else {
            r
        };
        let value = u32::from(net.addr) & mask;
        r.push(Expr::Cmp {
            sreg: REG_1,
            op: if eq { CMP_EQ } else { CMP_NEQ },
            data: value.to_be_bytes().to_vec(),
        })
    }

    /// `ip saddr [!=] NET`.
    pub fn saddr(self, net: Net4, eq: bool) -> Rule {
        self.ip_field(12, net, eq)
    }

    /// `ip daddr [!=] NET`.
    pub fn daddr(self, net: Net4, eq: bool) -> Rule {
        self.ip_field(16, net, eq)
    }

    /// `meta l4proto P th dport PORT`.
    pub fn dport(self, proto: Proto, port: u16) -> Rule {
        self.push(Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        })
        .push(Expr::Cmp {
            sreg: REG_1,
            op: CMP_EQ,
            data: vec![proto as u8],
        })
        .push(Expr::Payload {
            base: BASE_TRANSPORT,
            offset: 2,
            len: 2,
            dreg: REG_1,
        })
        .push(Expr::Cmp {
            sreg: REG_1,
            op: CMP_EQ,
            data: port.to_be_bytes().to_vec(),
        })
    }

    /// `ct state established,related`.
    pub fn ct_established(self) -> Rule {
        self.ct_any(CT_STATE, CT_ESTABLISHED | CT_RELATED)
    }

    /// `ct status dnat`: a connection to a published port.
    pub fn ct_dnat(self) -> Rule {
        self.ct_any(CT_STATUS, CT_STATUS_DNAT)
    }

    /// Conntrack `key` has any of the bits of `mask` set.
    fn ct_any(self, key: u32, mask: u32) -> Rule {
        self.push(Expr::Ct { key, dreg: REG_1 })
            .push(Expr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                mask: mask.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
            })
            .push(Expr::Cmp {
                sreg: REG_1,
                op: CMP_NEQ,
                data: vec![0; 4],
            })
    }

    /// `fib daddr type local`: the destination is one of this host's
    /// addresses (any, 127.0.0.1 included).
    pub fn daddr_local(self) -> Rule {
        self.push(Expr::FibDaddrType { dreg: REG_1 })
            .push(Expr::Cmp {
                sreg: REG_1,
                op: CMP_EQ,
                data: RTN_LOCAL.to_ne_bytes().to_vec(),
            })
    }

    pub fn counter(self) -> Rule {
        self.push(Expr::Counter)
    }

    pub fn verdict(self, v: Verdict) -> Rule {
        self.push(Expr::Verdict(v))
    }

    pub fn masquerade(self) -> Rule {
        self.push(Expr::Masq)
    }

    /// `dnat ip to ADDR:PORT` (or `snat`).
    pub fn nat(self, kind: NatKind, addr: Ipv4Addr, port: Option<u16>) -> Rule {
        let r = self.push(Expr::Immediate {
            dreg: REG_1,
            data: addr.octets().to_vec(),
        });
        let r = match port {
            Some(p) => r.push(Expr::Immediate {
                dreg: REG_2,
                data: p.to_be_bytes().to_vec(),
            }),
            None => r,
        };
        r.push(Expr::Nat {
            kind,
            addr_reg: REG_1,
            port_reg: port.map(|_| REG_2),
        })
    }
}

// --- The rules the porcelain needs. ---

/// `ip saddr SUBNET ip daddr != SUBNET oifname != BRIDGE masquerade`.
pub fn masquerade_rule(subnet: Net4, bridge: &str) -> Rule {
    Rule::new()
        .ipv4()
        .saddr(subnet, true)
        .daddr(subnet, false)
        .oifname(bridge, false)
        .counter()
        .masquerade()
}

/// `iifname BRIDGE accept`: containers may send anywhere (isolation drops
/// come first in the chain).
pub fn forward_from_rule(bridge: &str) -> Rule {
    Rule::new()
        .iifname(bridge, true)
        .counter()
        .verdict(Verdict::Accept)
}

/// `oifname BRIDGE ct state established,related accept`: replies back in.
pub fn forward_to_rule(bridge: &str) -> Rule {
    Rule::new()
        .oifname(bridge, true)
        .ct_established()
        .counter()
        .verdict(Verdict::Accept)
}

/// `oifname BRIDGE accept`: to a bridge whatever the state (published
/// ports arrive DNATed as new connections).
pub fn forward_into_rule(bridge: &str) -> Rule {
    Rule::new()
        .oifname(bridge, true)
        .counter()
        .verdict(Verdict::Accept)
}

/// `ct state established,related accept`.
pub fn established_rule() -> Rule {
    Rule::new().ct_established().verdict(Verdict::Accept)
}

/// `iifname A oifname B drop`: isolation between two bridges.
pub fn isolate_rule(a: &str, b: &str) -> Rule {
    Rule::new()
        .iifname(a, true)
        .oifname(b, true)
        .counter()
        .verdict(Verdict::Drop)
}

/// `jump CHAIN` (from a base chain to a per-network/per-container one).
pub fn jump_rule(chain: &str) -> Rule {
    Rule::new().verdict(Verdict::Jump(chain.to_string()))
}

/// A published port, the same rule in prerouting (from elsewhere) and
/// output (from the host itself):
/// `meta l4proto P th dport HOSTPORT ip daddr HOSTIP dnat ip to CTRIP:CTRPORT`,
/// or without a HOSTIP `fib daddr type local` in its place: every address
/// of this host (127.0.0.1 too), never a connection the host or a
/// container makes to port HOSTPORT somewhere else.
pub fn dnat_rule(
    proto: Proto,
    host_port: u16,
    host_ip: Option<Ipv4Addr>,
    ctr_ip: Ipv4Addr,
    ctr_port: u16,
) -> Rule {
    let mut r = Rule::new().ipv4();
    if host_ip.is_none() {
        r = r.daddr_local();
    }
    r = r.dport(proto, host_port);
    if let Some(h) = host_ip {
        r = r.daddr(Net4::new(h, 32), true);
    }
    r.counter().nat(NatKind::Dnat, ctr_ip, Some(ctr_port))
}

/// Hairpin: `ip saddr SUBNET ip daddr CTRIP meta l4proto P th dport CTRPORT masquerade`
/// (a container reaching a published port through the host's address is
/// answered through the host, not directly).
pub fn hairpin_rule(subnet: Net4, proto: Proto, ctr_ip: Ipv4Addr, ctr_port: u16) -> Rule {
    Rule::new()
        .ipv4()
        .saddr(subnet, true)
        .daddr(Net4::new(ctr_ip, 32), true)
        .dport(proto, ctr_port)
        .counter()
        .masquerade()
}

// --- Messages. ---

fn nfgen(m: &mut Msg, family: u8) {
    m.header(&[family, 0, 0, 0]);
}

fn nft_msg(ty: u16, flags: u16) -> Msg {
    Msg::new((NFNL_SUBSYS_NFTABLES << 8) | ty, NLM_F_REQUEST | flags)
}

/// NEWTABLE (creates it if absent; an existing one is left as it is).
pub fn new_table(table: &str) -> Msg {
    let mut m = nft_msg(NFT_MSG_NEWTABLE, NLM_F_ACK | NLM_F_CREATE);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_TABLE_NAME, table);
    m
}

pub fn del_table(table: &str) -> Msg {
    let mut m = nft_msg(NFT_MSG_DELTABLE, NLM_F_ACK);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_TABLE_NAME, table);
    m
}

/// NEWCHAIN of a base chain (policy accept: runway's chains add to what
/// the host does, they do not decide for it).
pub fn new_base_chain(table: &str, c: &BaseChain) -> Msg {
    let mut m = nft_msg(NFT_MSG_NEWCHAIN, NLM_F_ACK | NLM_F_CREATE);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_CHAIN_TABLE, table);
    m.attr_str(NFTA_CHAIN_NAME, c.name);
    let h = nest(&mut m, NFTA_CHAIN_HOOK);
    m.attr_be32(NFTA_HOOK_HOOKNUM, c.hook as u32);
    m.attr_be32(NFTA_HOOK_PRIORITY, c.priority as u32);
    m.nest_end(h);
    m.attr_be32(NFTA_CHAIN_POLICY, 1); // NF_ACCEPT
    m.attr_str(NFTA_CHAIN_TYPE, c.kind.name());
    m
}

/// NEWCHAIN of a regular chain (a jump target).
pub fn new_chain(table: &str, chain: &str) -> Msg {
    let mut m = nft_msg(NFT_MSG_NEWCHAIN, NLM_F_ACK | NLM_F_CREATE);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_CHAIN_TABLE, table);
    m.attr_str(NFTA_CHAIN_NAME, chain);
    m
}

/// DELCHAIN (the chain must be empty and no rule may jump to it).
pub fn del_chain(table: &str, chain: &str) -> Msg {
    let mut m = nft_msg(NFT_MSG_DELCHAIN, NLM_F_ACK);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_CHAIN_TABLE, table);
    m.attr_str(NFTA_CHAIN_NAME, chain);
    m
}

/// NEWRULE appended to `chain`, echoed back so its handle can be read.
pub fn new_rule(table: &str, chain: &str, rule: &Rule) -> Msg {
    let mut m = nft_msg(
        NFT_MSG_NEWRULE,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO,
    );
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_RULE_TABLE, table);
    m.attr_str(NFTA_RULE_CHAIN, chain);
    let l = nest(&mut m, NFTA_RULE_EXPRESSIONS);
    for e in &rule.exprs {
        e.encode(&mut m);
    }
    m.nest_end(l);
    m
}

/// DELRULE by handle.
pub fn del_rule(table: &str, chain: &str, handle: u64) -> Msg {
    let mut m = nft_msg(NFT_MSG_DELRULE, NLM_F_ACK);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_RULE_TABLE, table);
    m.attr_str(NFTA_RULE_CHAIN, chain);
    m.attr_be64(NFTA_RULE_HANDLE, handle);
    m
}

/// DELRULE without a handle: every rule of the chain.
pub fn flush_chain(table: &str, chain: &str) -> Msg {
    let mut m = nft_msg(NFT_MSG_DELRULE, NLM_F_ACK);
    nfgen(&mut m, NFPROTO_INET);
    m.attr_str(NFTA_RULE_TABLE, table);
    m.attr_str(NFTA_RULE_CHAIN, chain);
    m
}

fn batch_marker(ty: u16) -> Msg {
    let mut m = Msg::new(ty, NLM_F_REQUEST);
    // AF_UNSPEC, version 0, res_id = the nf_tables subsystem (big-endian).
    let r = NFNL_SUBSYS_NFTABLES.to_be_bytes();
    m.header(&[0, 0, r[0], r[1]]);
    m
}

/// Names a message in errors: "add rule to runway/postrouting".
fn describe(m: &Msg) -> String {
    let ty = m.ty() & 0xff;
    let verb = match ty {
        NFT_MSG_NEWTABLE => "add table",
        NFT_MSG_DELTABLE => "delete table",
        NFT_MSG_NEWCHAIN => "add chain",
        NFT_MSG_DELCHAIN => "delete chain",
        NFT_MSG_NEWRULE => "add rule to",
        NFT_MSG_DELRULE => "delete rule from",
        _ => "nf_tables batch",
    };
    let bytes = m.finish(0);
    let body = bytes.get(16 + 4..).unwrap_or(&[]);
    let mut table = "";
    let mut name = "";
    for (t, p) in attrs(body) {
        match (ty, t) {
            // NFTA_TABLE_NAME, NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are all 1.
            (_, 1) => table = str_of(p).unwrap_or(""),
            (NFT_MSG_NEWCHAIN | NFT_MSG_DELCHAIN, 3) => name = str_of(p).unwrap_or(""),
            (NFT_MSG_NEWRULE | NFT_MSG_DELRULE, 2) => name = str_of(p).unwrap_or(""),
            _ => {}
        }
    }
    if name.is_empty() {
        format!("{verb} {table}")
    } else {
        format!("{verb} {table}/{name}")
    }
}

/// A transaction: messages applied all together or not at all.
#[derive(Debug, Default)]
pub struct Batch {
    pub msgs: Vec<Msg>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, m: Msg) -> &mut Self {
        self.msgs.push(m);
        self
    }

    /// runway's table and its base chains (idempotent).
    pub fn skeleton(&mut self, table: &str) -> &mut Self {
        self.push(new_table(table));
        for c in &BASE_CHAINS {
            self.push(new_base_chain(table, c));
        }
        self
    }

    /// The wire form: BATCH_BEGIN, the messages, BATCH_END, with
    /// sequence numbers from `seq`.
    pub fn encode(&self, seq: u32) -> Vec<u8> {
        let mut out = batch_marker(NFNL_MSG_BATCH_BEGIN).finish(seq);
        for (i, m) in self.msgs.iter().enumerate() {
            out.extend_from_slice(&m.finish(seq.wrapping_add(1 + i as u32)));
        }
        out.extend_from_slice(
            &batch_marker(NFNL_MSG_BATCH_END).finish(seq.wrapping_add(1 + self.msgs.len() as u32)),
        );
        out
    }
}

/// A rule as a dump or an echo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub table: String,
    pub chain: String,
    pub handle: u64,
}

fn parse_rule(body: &[u8]) -> Option<RuleInfo> {
    let mut r = RuleInfo {
        table: String::new(),
        chain: String::new(),
        handle: 0,
    };
    for (t, p) in attrs(body.get(4..)?) {
        match t {
            NFTA_RULE_TABLE => r.table = str_of(p)?.to_string(),
            NFTA_RULE_CHAIN => r.chain = str_of(p)?.to_string(),
            NFTA_RULE_HANDLE => r.handle = u64::from_be_bytes(p.get(..8)?.try_into().ok()?),
            _ => {}
        }
    }
    Some(r)
}

/// The nf_tables netlink socket of the calling thread's namespace.
pub struct Nft {
    sock: Socket,
}

impl Nft {
    pub fn open() -> Result<Nft> {
        Ok(Nft {
            sock: Socket::open(NETLINK_NETFILTER).map_err(|e| e.wrap("nf_tables"))?,
        })
    }

    /// Applies `batch` as one transaction. Returns the rules it added (in
    /// order), with the handles the kernel gave them. An error names the
    /// first object the kernel refused; nothing of the batch is applied.
    pub fn apply(&mut self, batch: &Batch) -> Result<Vec<RuleInfo>> {
        if batch.msgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut all = Vec::with_capacity(batch.msgs.len() + 2);
        all.push(batch_marker(NFNL_MSG_BATCH_BEGIN));
        all.extend(batch.msgs.iter().cloned());
        all.push(batch_marker(NFNL_MSG_BATCH_END));
        let names = |i: usize| match i.checked_sub(1).and_then(|i| batch.msgs.get(i)) {
            Some(m) => describe(m),
            None => "nf_tables batch".to_string(),
        };
        let replies = self.sock.transact_named(&all, &names)?;
        let newrule = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE;
        Ok(replies
            .iter()
            .filter(|(ty, _)| *ty == newrule)
            .filter_map(|(_, b)| parse_rule(b))
            .collect())
    }

    /// The rules of `table`/`chain`, in order.
    pub fn list_rules(&mut self, table: &str, chain: &str) -> Result<Vec<RuleInfo>> {
        let mut m = nft_msg(NFT_MSG_GETRULE, NLM_F_DUMP);
        nfgen(&mut m, NFPROTO_INET);
        m.attr_str(NFTA_RULE_TABLE, table);
        m.attr_str(NFTA_RULE_CHAIN, chain);
        let what = format!("list rules of {table}/{chain}");
        let newrule = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE;
        Ok(self
            .sock
            .dump(m, &what)?
            .iter()
            .filter(|(ty, _)| *ty == newrule)
            .filter_map(|(_, b)| parse_rule(b))
            .filter(|r| r.table == table && r.chain == chain)
            .collect())
    }

    /// Names of the inet tables.
    pub fn list_tables(&mut self) -> Result<Vec<String>> {
        let mut m = nft_msg(NFT_MSG_GETTABLE, NLM_F_DUMP);
        nfgen(&mut m, NFPROTO_INET);
        let newtable = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE;
        Ok(self
            .sock
            .dump(m, "list tables")?
            .iter()
            .filter(|(ty, _)| *ty == newtable)
            .filter_map(|(_, b)| {
                attrs(b.get(4..)?)
                    .find(|(t, _)| *t == NFTA_TABLE_NAME)
                    .and_then(|(_, p)| str_of(p).map(str::to_string))
            })
            .collect())
    }

    /// Deletes runway's table with everything in it; absent is fine.
    pub fn remove_table(&mut self, table: &str) -> Result<()> {
        let mut b = Batch::new();
        b.push(del_table(table));
        match self.apply(&b) {
            Err(Error {
                errno: Some(libc::ENOENT),
                ..
            }) => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

#[cfg(test)]
#[cfg(target_endian = "little")]
mod tests {
    use super::*;

    // An independent attribute writer for the expected bytes (not Msg).
    fn a(ty: u16, p: &[u8]) -> Vec<u8> {
        let mut v = ((4 + p.len()) as u16).to_le_bytes().to_vec();
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(p);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }
    fn n(ty: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        a(ty | 0x8000, &parts.concat())
    }
    fn be(v: u32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn hdr(len: usize, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = (len as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v
    }

    #[test]
    fn table_message_bytes() {
        // As `nft --debug=mnl add table inet runway` shows it, minus the
        // flags attribute: type 0x0a00, family inet, name "runway\0".
        let want: Vec<u8> = [
            &[32, 0, 0, 0, 0x00, 0x0a, 0x05, 0x04, 7, 0, 0, 0, 0, 0, 0, 0][..],
            &[1, 0, 0, 0],
            &[11, 0, 1, 0, b'r', b'u', b'n', b'w', b'a', b'y', 0, 0],
        ]
        .concat();
        assert_eq!(new_table("runway").finish(7), want);
    }

    #[test]
    fn base_chain_message_bytes() {
        // The attributes `nft --debug=mnl add chain inet runway postrouting
        // { type nat hook postrouting priority 100; policy accept; }` sends
        // (84 bytes there too), in our order.
        let body = [
            vec![1, 0, 0, 0],
            a(1, b"runway\0"),
            a(3, b"postrouting\0"),
            vec![
                20, 0, 4, 0x80, 8, 0, 1, 0, 0, 0, 0, 4, 8, 0, 2, 0, 0, 0, 0, 0x64,
            ],
            vec![8, 0, 5, 0, 0, 0, 0, 1],
            vec![8, 0, 7, 0, b'n', b'a', b't', 0],
        ]
        .concat();
        assert_eq!(body.len() + 16, 84);
        let want = [hdr(84, 0x0a03, 0x0405, 3), body].concat();
        assert_eq!(new_base_chain("runway", &BASE_CHAINS[2]).finish(3), want);
        // dstnat is -100: two's complement, big-endian.
        let pre = new_base_chain("runway", &BASE_CHAINS[0]).finish(1);
        let prio = [8u8, 0, 2, 0, 0xff, 0xff, 0xff, 0x9c];
        assert!(pre.windows(8).any(|w| w == prio));
    }

    #[test]
    fn masquerade_rule_message_bytes() {
        // ip saddr 10.99.0.0/24 ip daddr != 10.99.0.0/24 oifname != "rw0"
        // counter masquerade, as the kernel's expressions (`nft
        // --debug=netlink` shows the same chain of loads and compares; it
        // folds the /24 mask into a 3-byte load, we use bitwise).
        let expr = |name: &str, data: Vec<Vec<u8>>| {
            let mut nm = name.as_bytes().to_vec();
            nm.push(0);
            n(1, &[a(1, &nm), n(2, &data)])
        };
        let value = |ty: u16, v: &[u8]| n(ty, &[a(1, v)]);
        let meta = |key| expr("meta", vec![a(2, &be(key)), a(1, &be(1))]);
        let cmp = |op, v: &[u8]| expr("cmp", vec![a(1, &be(1)), a(2, &be(op)), value(3, v)]);
        let load = |off| {
            expr(
                "payload",
                vec![a(1, &be(1)), a(2, &be(1)), a(3, &be(off)), a(4, &be(4))],
            )
        };
        let mask = expr(
            "bitwise",
            vec![
                a(1, &be(1)),
                a(2, &be(1)),
                a(3, &be(4)),
                value(4, &[255, 255, 255, 0]),
                value(5, &[0, 0, 0, 0]),
            ],
        );
        let mut rw0 = [0u8; 16];
        rw0[..3].copy_from_slice(b"rw0");
        let exprs = vec![
            meta(15),
            cmp(0, &[2]),
            load(12),
            mask.clone(),
            cmp(0, &[10, 99, 0, 0]),
            load(16),
            mask,
            cmp(1, &[10, 99, 0, 0]),
            meta(7),
            cmp(1, &rw0),
            expr("counter", vec![]),
            expr("masq", vec![]),
        ];
        let body = [
            vec![1, 0, 0, 0],
            a(1, b"runway\0"),
            a(2, b"postrouting\0"),
            n(4, &exprs),
        ]
        .concat();
        let want = [hdr(16 + body.len(), 0x0a06, 0x0c0d, 5), body].concat();
        let rule = masquerade_rule(Net4::new(Ipv4Addr::new(10, 99, 0, 9), 24), "rw0");
        assert_eq!(new_rule("runway", "postrouting", &rule).finish(5), want);
    }

    #[test]
    fn batch_is_framed_by_begin_and_end() {
        let mut b = Batch::new();
        b.push(del_table("runway"));
        let bytes = b.encode(1);
        let msgs: Vec<_> = crate::net::netlink::messages(&bytes).collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!((msgs[0].ty, msgs[0].seq), (0x10, 1));
        assert_eq!(msgs[0].body, &[0, 0, 0, 10]);
        assert_eq!((msgs[1].ty, msgs[1].seq), (0x0a02, 2));
        assert_eq!((msgs[2].ty, msgs[2].seq), (0x11, 3));
    }

    #[test]
    fn errors_name_the_object() {
        let r = jump_rule("x");
        assert_eq!(
            describe(&new_rule("runway", "postrouting", &r)),
            "add rule to runway/postrouting"
        );
        assert_eq!(describe(&new_table("runway")), "add table runway");
        assert_eq!(
            describe(&new_chain("runway", "net-a")),
            "add chain runway/net-a"
        );
        assert_eq!(
            describe(&del_rule("runway", "forward", 3)),
            "delete rule from runway/forward"
        );
    }

    #[test]
    fn prefixes_and_verdicts() {
        assert_eq!(Net4::new(Ipv4Addr::UNSPECIFIED, 0).mask(), 0);
        assert_eq!(Net4::new(Ipv4Addr::UNSPECIFIED, 40).mask(), u32::MAX);
        assert_eq!(Net4::new(Ipv4Addr::UNSPECIFIED, 8).mask(), 0xff00_0000);
        // A /32 needs no mask.
        let r = Rule::new().daddr(Net4::new(Ipv4Addr::new(1, 2, 3, 4), 32), true);
        assert_eq!(r.exprs.len(), 2);
        let mut m = Msg::new(0, 0);
        Expr::Verdict(Verdict::Jump("net-a".into())).encode(&mut m);
        let b = m.finish(0);
        assert!(b
            .windows(8)
            .any(|w| w == [8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfd]));
        assert!(b.windows(6).any(|w| w == b"net-a\0"));
    }
}
