//! `IpLookup`'s tables: what its replicas share (the IPv4 and IPv6 tables,
//! the next-hop table, the writers' bookkeeping), and how routes are added
//! to and removed from them.

use super::*;

/// Where the packets of one next-hop value go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Hop {
    pub(super) output: u16,
    pub(super) via: Option<IpAddr>,
}

/// Slots of the next-hop table: one per table value `1..=MAX_VALUE`.
pub(super) const HOPS: usize = MAX_VALUE as usize;

/// The next-hop table every replica reads: the slot of value `v` is
/// `v - 1`, written once (append-only) before any table entry holding `v`
/// is stored, so that whoever loads the entry (`Acquire`) sees the slot.
/// Full capacity from the start, on pages touched only as slots are used.
pub(super) struct HopTable {
    /// Annotation words 2 (low half) and 3 (high half).
    pub(super) words: AtomicArray<AtomicU64, HOPS>,
    pub(super) outputs: AtomicArray<AtomicU16, HOPS>,
}

/// The next-hop table as the data path reads it.
#[derive(Clone, Copy)]
pub(super) struct HopsView<'a> {
    pub(super) words: &'a [AtomicU64; HOPS],
    pub(super) outputs: &'a [AtomicU16; HOPS],
}

/// What the replicas of one configured IpLookup share.
pub(super) struct Shared {
    /// The IPv4 table all workers read, created with the first IPv4 route.
    pub(super) v4: OnceLock<Lpm4>,
    /// The IPv6 table all workers read, created with the first IPv6 route.
    pub(super) v6: OnceLock<Lpm6>,
    pub(super) hops: HopTable,
    /// The writers' side.
    pub(super) ctl: Mutex<Ctl>,
    /// The workers' grace-period domain, for the tables.
    pub(super) grace: Arc<Grace>,
}

/// What only writers (handlers, configure, a reload) use.
pub(super) struct Ctl {
    pub(super) hop_ids: HashMap<Hop, u16>,
    /// The hop of each value, by value - 1.
    pub(super) hop_list: Vec<Hop>,
    /// The configured routes and the run-time changes, for a hot reload.
    pub(super) log: RouteLog,
    /// Whether a reload has replayed the old changes into the shared
    /// tables (the first replica's `give_state` does; the others skip it).
    pub(super) replayed: bool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn hops(&self) -> HopsView<'_> {
        HopsView {
            words: &self.hops.words,
            outputs: &self.hops.outputs,
        }
    }

    /// The table value of `hop`, interned: a new one's slot is written here,
    /// before the value is stored into any table.
    pub(super) fn hop_id(&self, ctl: &mut Ctl, hop: Hop) -> Result<u16, String> {
        if let Some(&id) = ctl.hop_ids.get(&hop) {
            return Ok(id);
        }
        let i = ctl.hop_list.len();
        if i >= HOPS {
            return Err(format!("too many distinct next hops (at most {MAX_VALUE})"));
        }
        let [lo, hi] = next_hop_words(hop.via);
        self.hops.words[i].store(u64::from(lo) | u64::from(hi) << 32, Relaxed);
        self.hops.outputs[i].store(hop.output, Relaxed);
        ctl.hop_list.push(hop);
        let id = ctl.hop_list.len() as u16;
        ctl.hop_ids.insert(hop, id);
        Ok(id)
    }
}

/// A replica: the same shared tables.
impl Clone for IpLookup {
    fn clone(&self) -> IpLookup {
        IpLookup {
            outputs: self.outputs,
            no_route: self.no_route,
            shared: Arc::clone(&self.shared),
            loading: self.loading,
        }
    }
}

impl IpLookup {
    /// An empty table with `outputs` outputs, read by the runtime's workers.
    #[cfg(test)]
    pub(crate) fn new(outputs: usize, no_route: Option<usize>) -> IpLookup {
        IpLookup::with_grace(outputs, no_route, Grace::global())
    }

    /// An empty table with `outputs` outputs whose readers are the
    /// participants of `grace`.
    pub fn with_grace(outputs: usize, no_route: Option<usize>, grace: Arc<Grace>) -> IpLookup {
        IpLookup {
            outputs,
            no_route,
            shared: Arc::new(Shared {
                v4: OnceLock::new(),
                v6: OnceLock::new(),
                hops: HopTable {
                    words: AtomicArray::zeroed(),
                    outputs: AtomicArray::zeroed(),
                },
                ctl: Mutex::new(Ctl {
                    hop_ids: HashMap::new(),
                    hop_list: Vec::new(),
                    log: RouteLog::default(),
                    replayed: false,
                }),
                grace,
            }),
            loading: false,
        }
    }

    /// Adds `r`, replacing the route of the same prefix.
    pub fn add(&mut self, r: Route) -> Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let mut ctl = lock(&shared.ctl);
        self.add_locked(&mut ctl, r)
    }

    /// Adds `r` with the writers' lock held, to the shared table of its family.
    pub(super) fn add_locked(&mut self, ctl: &mut Ctl, r: Route) -> Result<(), String> {
        let hop = Hop {
            output: r.output,
            via: r.via,
        };
        let id = self.shared.hop_id(ctl, hop)?;
        if self.loading {
            ctl.log.configure(&r);
        }
        match r.prefix {
            IpAddr::V4(a) => {
                let loading = self.loading;
                let t = self.shared.v4.get_or_init(|| {
                    let t = Lpm4::with_grace(self.shared.grace.clone());
                    if loading {
                        t.defer();
                    }
                    t
                });
                t.insert(u32::from(a), r.len, id)
                    .map_err(|e| e.to_string())?;
            }
            IpAddr::V6(a) => {
                let loading = self.loading;
                let t = self.shared.v6.get_or_init(|| {
                    let t = Lpm6::with_grace(self.shared.grace.clone());
                    if loading {
                        t.defer();
                    }
                    t
                });
                t.insert(u128::from(a), r.len, id);
            }
        }
        Ok(())
    }

    /// Removes the route of `prefix/len`; whether there was one.
    pub fn remove(&mut self, prefix: IpAddr, len: u8) -> bool {
        match prefix {
            IpAddr::V4(a) => self
                .shared
                .v4
                .get()
                .and_then(|t| t.remove(a.into(), len))
                .is_some(),
            IpAddr::V6(a) => self
                .shared
                .v6
                .get()
                .and_then(|t| t.remove(a.into(), len))
                .is_some(),
        }
    }

    pub(super) fn add_file(&mut self, path: &str) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            parse_route(line, self.outputs)
                .and_then(|r| self.add(r))
                .map_err(|e| format!("{path}:{}: {e}", n + 1))?;
        }
        Ok(())
    }

    /// Every route, shortest prefixes first (IPv4, then IPv6).
    pub fn routes(&self) -> Vec<Route> {
        let ctl = lock(&self.shared.ctl);
        let route = |prefix: IpAddr, len: u8, v: u16| {
            let h = ctl.hop_list[usize::from(v) - 1];
            Route {
                prefix,
                len,
                output: h.output,
                via: h.via,
            }
        };
        let mut out: Vec<Route> = Vec::new();
        if let Some(t) = self.shared.v4.get() {
            out.extend(
                t.routes()
                    .into_iter()
                    .map(|(p, l, v)| route(IpAddr::V4(p.into()), l, v)),
            );
        }
        if let Some(t) = self.shared.v6.get() {
            out.extend(
                t.routes()
                    .into_iter()
                    .map(|(p, l, v)| route(IpAddr::V6(p.into()), l, v)),
            );
        }
        out.sort_by_key(|r| (r.prefix.is_ipv6(), r.len, r.prefix));
        out
    }

    /// The table value for the destination of the IP packet at `l3` in `data`
    /// (`v6`: the IPv6 table's reader, `None` when there is no IPv6 table).
    #[inline(always)]
    pub(super) fn lookup(
        &self,
        v6: Option<&Lpm6Reader<'_>>,
        l3: L3Kind,
        data: &[u8],
        off: usize,
    ) -> u16 {
        match l3 {
            L3Kind::Ipv4 => match self.shared.v4.get() {
                Some(t) => {
                    let d = &data[off + 16..off + 20];
                    t.lookup(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
                }
                None => 0,
            },
            _ => match v6 {
                Some(t) => {
                    let mut d = [0u8; 16];
                    d.copy_from_slice(&data[off + 24..off + 40]);
                    t.lookup(u128::from_be_bytes(d))
                }
                None => 0,
            },
        }
    }
}
