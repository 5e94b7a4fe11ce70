//! The memory budget of query execution: by default a spilling pool sized from the machine, so
//! that a query larger than memory spills or fails with a clear error instead of being killed.
//!
//! Semantics:
//! - [`MemoryLimit::Default`] is [`DEFAULT_MEMORY_PERCENT`] of the memory this process may use:
//!   the machine's physical memory (`MemTotal` of `/proc/meminfo`) or, when it is lower, the
//!   limit of the process's cgroup (`memory.max` in cgroup v2, `memory.limit_in_bytes` in v1).
//!   Where neither can be read (a system without `/proc`), there is no limit, and
//!   [`MemoryBudget::describe`] says so.
//! - [`MemoryLimit::Bytes`] is that many bytes; [`MemoryLimit::Unbounded`] is DataFusion's
//!   unbounded pool (nothing spills; the operating system may kill a process that runs out).
//! - A bounded pool is DataFusion's `GreedyMemoryPool` (first come, first served, as in
//!   datafusion-cli) wrapped in a `TrackConsumersPool`: an operator that can spill (sorts,
//!   aggregations, sessionlake's `SessionizeExec`) spills only when the whole budget is taken,
//!   and a query that cannot fit even after spilling fails with a resources-exhausted error
//!   naming its largest consumers. (A `FairSpillPool` splits the budget evenly between every
//!   operator that can spill, used or not: a 50M-event `sessions()` query with a dozen such
//!   operators spilled under a 17.7 GiB budget while it needed 2.3 GiB.)
//! - DataFusion's `RepartitionExec` is never refused memory (`RepartitionInMemory`): its bytes
//!   count against the budget, so the operators after it spill sooner, but it does not take its
//!   own spill path. At DataFusion 55 that path can deadlock when two input tasks spill at once
//!   (apache/datafusion#24883, fixed after 55): the query would neither return nor fail. Its
//!   buffers hold only the batches its consumers have not taken yet, but they are not bounded:
//!   a channel whose consumer is slow (a partition writing its spill files) grows while the
//!   other channels are drained.
//! - So that the shuffle's excess never starves the rest of the plan, a request the budget
//!   refuses is granted all the same when it is small and only the shuffle is over the limit:
//!   the consumer then holds at most [`MemoryBudget::floor`] (1/[`FLOOR_DIVISOR`] of the budget)
//!   and every consumer but the shuffle, together, at most the budget. A large consumer is
//!   refused as before and spills. (Without it, at 50M events with `-m 2g`, `by_country` failed
//!   one run in 28: a 240-byte request of a fresh partial aggregation was refused while a
//!   shuffle channel held 2.2 GB.)
//! - The budget bounds what operators account for (their buffers), not the process's whole
//!   resident memory: the remaining quarter is for what no pool sees (the allocator, Parquet
//!   reads in flight, the program itself).
//! - After a query, [`release_free_memory`] hands the memory the allocator keeps for reuse
//!   back to the operating system, so an idle shell does not hold a large query's peak.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::Result as DataFusionResult;
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryPool, MemoryReservation, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

/// The share of the available memory the default budget takes, in percent.
pub const DEFAULT_MEMORY_PERCENT: u64 = 75;

/// A consumer's request is granted, while only the shuffle is over the budget, as long as the
/// consumer holds at most 1/`FLOOR_DIVISOR` of the budget (see the module documentation).
pub const FLOOR_DIVISOR: usize = 64;

/// A resources-exhausted error names this many of the pool's largest consumers.
const NAMED_CONSUMERS: NonZeroUsize = NonZeroUsize::new(5).expect("5 is not 0");

/// How much memory query execution may use, as asked for (`-m SIZE`, `-m none`, or nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MemoryLimit {
    /// [`DEFAULT_MEMORY_PERCENT`] of the available memory.
    #[default]
    Default,
    /// This many bytes (more than 0).
    Bytes(usize),
    /// No limit: nothing spills.
    Unbounded,
}

impl FromStr for MemoryLimit {
    type Err = String;

    /// `none` (also `unbounded`), `default`, or a size: `1048576`, `512k`, `512m`, `2g`, `1t`
    /// (binary units, case-insensitive, an optional trailing `b` or `ib`: `2GiB`, `512mb`).
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "unbounded" => Ok(Self::Unbounded),
            "default" => Ok(Self::Default),
            _ => parse_size(text).map(Self::Bytes),
        }
    }
}

/// Parses a byte count with an optional binary suffix, as [`MemoryLimit`]'s sizes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let invalid = || format!("'{text}' is not a size such as 2g, 512m or 1048576, or none");
    let lower = text.trim().to_ascii_lowercase();
    let unit_part = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match unit_part.chars().last() {
        Some('k') => (&unit_part[..unit_part.len() - 1], 10),
        Some('m') => (&unit_part[..unit_part.len() - 1], 20),
        Some('g') => (&unit_part[..unit_part.len() - 1], 30),
        Some('t') => (&unit_part[..unit_part.len() - 1], 40),
        _ => (unit_part, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let bytes = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1_usize << shift))
        .ok_or_else(invalid)?;
    if bytes == 0 {
        return Err(format!(
            "'{text}': the memory limit must be more than 0 bytes"
        ));
    }
    Ok(bytes)
}

/// A resolved budget: the pool's size, if bounded, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The pool's size in bytes; `None`: unbounded.
    pub bytes: Option<usize>,
    /// Where the size came from, for [`MemoryBudget::describe`].
    origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Default(Available),
    DefaultUnknown,
    Asked,
    Unbounded,
}

/// The memory this process may use, and which limit that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// The cgroup's limit is lower than the physical memory.
    pub cgroup: bool,
}

impl MemoryLimit {
    /// The budget on this machine.
    pub fn resolve(self) -> MemoryBudget {
        self.resolve_with(available_memory())
    }

    /// The budget with `available` as the memory this process may use.
    pub fn resolve_with(self, available: Option<Available>) -> MemoryBudget {
        match (self, available) {
            (Self::Bytes(bytes), _) => MemoryBudget {
                bytes: Some(bytes),
                origin: Origin::Asked,
            },
            (Self::Unbounded, _) => MemoryBudget {
                bytes: None,
                origin: Origin::Unbounded,
            },
            (Self::Default, Some(available)) => {
                let share = u128::from(available.bytes) * u128::from(DEFAULT_MEMORY_PERCENT) / 100;
                MemoryBudget {
                    bytes: Some(usize::try_from(share).unwrap_or(usize::MAX).max(1)),
                    origin: Origin::Default(available),
                }
            }
            (Self::Default, None) => MemoryBudget {
                bytes: None,
                origin: Origin::DefaultUnknown,
            },
        }
    }
}

impl MemoryBudget {
    /// The pool for this budget: `None` for DataFusion's default (unbounded) pool.
    pub fn pool(&self) -> Option<Arc<dyn MemoryPool>> {
        let (limit, floor) = (self.bytes?, self.floor()?);
        Some(Arc::new(RepartitionInMemory {
            inner: TrackConsumersPool::new(GreedyMemoryPool::new(limit), NAMED_CONSUMERS),
            shuffle: AtomicUsize::new(0),
            limit,
            floor,
        }))
    }

    /// The most a consumer may hold through requests granted beyond a budget that only the
    /// shuffle overran: 1/[`FLOOR_DIVISOR`] of the budget (`None` when unbounded).
    pub fn floor(&self) -> Option<usize> {
        self.bytes.map(|bytes| bytes / FLOOR_DIVISOR)
    }

    /// `builder` with this budget's pool.
    pub fn apply(&self, builder: RuntimeEnvBuilder) -> RuntimeEnvBuilder {
        match self.pool() {
            Some(pool) => builder.with_memory_pool(pool),
            None => builder,
        }
    }

    /// One line for users: `17.6 GiB (75% of 23.5 GiB of physical memory; -m SIZE or -m none
    /// to change)`.
    pub fn describe(&self) -> String {
        let change = "-m SIZE or -m none to change";
        match (&self.origin, self.bytes) {
            (Origin::Default(available), Some(bytes)) => format!(
                "{} ({DEFAULT_MEMORY_PERCENT}% of {} of {}; {change})",
                Bytes(bytes as u64),
                Bytes(available.bytes),
                if available.cgroup {
                    "memory, the cgroup's limit"
                } else {
                    "physical memory"
                }
            ),
            (Origin::DefaultUnknown, _) => {
                format!("unbounded (this system's memory size is unknown; {change})")
            }
            (Origin::Unbounded, _) | (_, None) => {
                "unbounded (-m none: nothing spills, the system may stop the process when \
                 memory runs out)"
                    .to_string()
            }
            (Origin::Asked, Some(bytes)) => format!("{} (-m)", Bytes(bytes as u64)),
        }
    }
}

impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A byte count in binary units with one decimal: `17.6 GiB`, `512.0 MiB`, `100 B`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// The memory this process may use: physical memory, or the cgroup's limit when lower; `None`
/// where `/proc/meminfo` cannot be read.
pub fn available_memory() -> Option<Available> {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_limit(&text, Path::new("/sys/fs/cgroup")));
    Some(match cgroup {
        Some(limit) if limit < physical => Available {
            bytes: limit,
            cgroup: true,
        },
        _ => Available {
            bytes: physical,
            cgroup: false,
        },
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The memory limit of the cgroup `proc_cgroup` (the text of `/proc/self/cgroup`) names, under
/// the cgroup file system mounted at `root`: v2 (`0::/path` and `root/path/memory.max`) or v1
/// (`N:memory:/path` and `root/memory/path/memory.limit_in_bytes`). Inside a container the
/// named path may not exist; the limit at the mount's top is then the container's. "No limit"
/// (`max`, or v1's huge number) is `None`.
fn cgroup_limit(proc_cgroup: &str, root: &Path) -> Option<u64> {
    let mut candidates = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            candidates.push(root.join(path).join("memory.max"));
            candidates.push(root.join("memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            let v1 = root.join("memory");
            candidates.push(v1.join(path).join("memory.limit_in_bytes"));
            candidates.push(v1.join("memory.limit_in_bytes"));
        }
    }
    candidates
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| parse_limit(&text))
        .min()
}

/// A cgroup memory limit file's value; `max` and v1's "no limit" (near `i64::MAX`) are `None`.
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let value: u64 = text.parse().ok()?;
    // v1 writes "no limit" as the largest page-aligned i64
    (value < (1 << 60)).then_some(value)
}

/// A pool that grants DataFusion's `RepartitionExec` every reservation (counted, never
/// refused) and passes every other consumer's requests to the pool it wraps, granting a small
/// one the wrapped pool refuses when only the shuffle overran the limit; see the module
/// documentation for why.
#[derive(Debug)]
struct RepartitionInMemory<P> {
    inner: P,
    /// Bytes the `RepartitionExec` channels hold.
    shuffle: AtomicUsize,
    /// The wrapped pool's limit.
    limit: usize,
    /// [`MemoryBudget::floor`].
    floor: usize,
}

/// Whether `consumer` is a `RepartitionExec` output channel (`RepartitionExec[3]`).
fn is_repartition(consumer: &MemoryConsumer) -> bool {
    consumer.name().starts_with("RepartitionExec")
}

impl<P: MemoryPool> MemoryPool for RepartitionInMemory<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        if is_repartition(reservation.consumer()) {
            self.shuffle.fetch_add(additional, Ordering::Relaxed);
        }
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        if is_repartition(reservation.consumer()) {
            self.shuffle.fetch_sub(shrink, Ordering::Relaxed);
        }
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DataFusionResult<()> {
        if is_repartition(reservation.consumer()) {
            self.grow(reservation, additional);
            return Ok(());
        }
        match self.inner.try_grow(reservation, additional) {
            Err(_) if self.within_floor(reservation, additional) => {
                // only the shuffle overran the budget, and the request is small: see the module
                // documentation
                self.inner.grow(reservation, additional);
                Ok(())
            }
            other => other,
        }
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> datafusion::execution::memory_pool::MemoryLimit {
        self.inner.memory_limit()
    }
}

impl<P: MemoryPool> RepartitionInMemory<P> {
    /// Whether `reservation` may grow by `additional` although the budget is taken: it would
    /// hold at most [`Self::floor`], and every consumer but the shuffle would hold at most the
    /// budget.
    fn within_floor(&self, reservation: &MemoryReservation, additional: usize) -> bool {
        let others = self
            .inner
            .reserved()
            .saturating_sub(self.shuffle.load(Ordering::Relaxed));
        reservation.size().saturating_add(additional) <= self.floor
            && others.saturating_add(additional) <= self.limit
    }
}

impl<P: MemoryPool> fmt::Display for RepartitionInMemory<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// Returns the heap memory the allocator holds free back to the operating system (glibc's
/// `malloc_trim`: it keeps freed memory of every thread's arena for reuse otherwise). Call it
/// when a query has ended; it costs a few milliseconds for a large heap. Elsewhere than glibc
/// it does nothing.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; it takes no
    // pointers from the caller and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repartition_is_never_refused_and_still_counted() {
        let Some(pool) = MemoryLimit::Bytes(1000).resolve().pool() else {
            panic!("a bounded budget has a pool");
        };
        let repartition = MemoryConsumer::new("RepartitionExec[0]")
            .with_can_spill(true)
            .register(&pool);
        repartition
            .try_grow(1500)
            .expect("a repartition channel is never refused");
        assert_eq!(pool.reserved(), 1500);
        let sort = MemoryConsumer::new("ExternalSorter[0]")
            .with_can_spill(true)
            .register(&pool);
        let refused = sort.try_grow(100).expect_err("the budget is taken");
        assert!(
            refused.to_string().contains("ExternalSorter[0]"),
            "{refused}"
        );
        drop(repartition);
        sort.try_grow(900)
            .expect("the repartition's bytes were returned");
    }

    /// Regression: at 50M events with `-m 2g`, a fresh partial aggregation's 240-byte request was
    /// refused while a shuffle channel held 2.2 GB of a 2 GB budget, and the query failed.
    #[test]
    fn a_small_request_is_granted_when_only_the_shuffle_overran_the_budget() {
        let budget = MemoryLimit::Bytes(6400).resolve();
        assert_eq!(budget.floor(), Some(100));
        let Some(pool) = budget.pool() else {
            panic!("a bounded budget has a pool");
        };
        let register = |name: &str| {
            MemoryConsumer::new(name)
                .with_can_spill(true)
                .register(&pool)
        };
        let shuffle = register("RepartitionExec[0]");
        shuffle.grow(7000);
        let aggregate = register("PartialHashAggregateStream[1]");
        aggregate
            .try_grow(60)
            .expect("small, and only the shuffle overran");
        aggregate.try_grow(40).expect("up to the floor");
        assert_eq!(pool.reserved(), 7100, "granted bytes are counted");
        let refused = aggregate.try_grow(1).expect_err("past the floor");
        assert!(
            refused
                .to_string()
                .contains("PartialHashAggregateStream[1]"),
            "{refused}"
        );
        let sort = register("ExternalSorter[0]");
        sort.try_grow(101).expect_err("larger than the floor");

        // once the shuffle's bytes are taken, its channel's shrink is counted
        shuffle.shrink(7000);
        let big = register("SessionizeExec[0]");
        big.try_grow(6300).expect("within the budget");
        sort.try_grow(1)
            .expect_err("the budget is taken by consumers other than the shuffle");
    }

    #[test]
    fn limits_parse() {
        assert_eq!("2g".parse(), Ok(MemoryLimit::Bytes(2 << 30)));
        assert_eq!("512M".parse(), Ok(MemoryLimit::Bytes(512 << 20)));
        assert_eq!("2GiB".parse(), Ok(MemoryLimit::Bytes(2 << 30)));
        assert_eq!("64kb".parse(), Ok(MemoryLimit::Bytes(64 << 10)));
        assert_eq!("1048576".parse(), Ok(MemoryLimit::Bytes(1 << 20)));
        assert_eq!("none".parse(), Ok(MemoryLimit::Unbounded));
        assert_eq!(" Default ".parse(), Ok(MemoryLimit::Default));
        for bad in ["", "g", "2x", "-1g", "0", "1.5g", "99999999999999999999t"] {
            assert!(bad.parse::<MemoryLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_is_three_quarters_of_what_is_available() {
        let available = Available {
            bytes: 24 << 30,
            cgroup: false,
        };
        let budget = MemoryLimit::Default.resolve_with(Some(available));
        assert_eq!(budget.bytes, Some(18 << 30));
        assert_eq!(
            budget.describe(),
            "18.0 GiB (75% of 24.0 GiB of physical memory; -m SIZE or -m none to change)"
        );
        assert!(budget.pool().is_some());
        let in_cgroup = MemoryLimit::Default.resolve_with(Some(Available {
            bytes: 4 << 30,
            cgroup: true,
        }));
        assert_eq!(in_cgroup.bytes, Some(3 << 30));
        assert!(in_cgroup.describe().contains("the cgroup's limit"));
        let unknown = MemoryLimit::Default.resolve_with(None);
        assert_eq!(unknown.bytes, None);
        assert!(unknown.pool().is_none());
        assert!(unknown.describe().starts_with("unbounded"));
        // an explicit choice wins over what is available
        let asked = MemoryLimit::Bytes(1 << 30).resolve_with(Some(available));
        assert_eq!(
            (asked.bytes, asked.describe().as_str()),
            (Some(1 << 30), "1.0 GiB (-m)")
        );
        assert_eq!(
            MemoryLimit::Unbounded.resolve_with(Some(available)).bytes,
            None
        );
    }

    #[test]
    fn meminfo_and_cgroup_files_parse() -> std::io::Result<()> {
        assert_eq!(
            mem_total("MemTotal:       24684096 kB\nMemFree: 1 kB\n"),
            Some(24_684_096 * 1024)
        );
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);

        let root = std::env::temp_dir().join(format!("sessionlake-cgroup-{}", std::process::id()));
        // v2: the process's own cgroup
        std::fs::create_dir_all(root.join("app"))?;
        std::fs::write(root.join("app/memory.max"), "4294967296\n")?;
        assert_eq!(cgroup_limit("0::/app\n", &root), Some(4 << 30));
        std::fs::write(root.join("app/memory.max"), "max\n")?;
        assert_eq!(cgroup_limit("0::/app\n", &root), None);
        // v1, with the named path absent (a container) and the top's limit "none"
        std::fs::create_dir_all(root.join("memory"))?;
        std::fs::write(
            root.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )?;
        assert_eq!(cgroup_limit("4:memory:/docker/abc\n", &root), None);
        std::fs::write(root.join("memory/memory.limit_in_bytes"), "2147483648\n")?;
        assert_eq!(
            cgroup_limit("4:cpu,memory:/docker/abc\n1:cpu:/\n", &root),
            Some(2 << 30)
        );
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }

    #[test]
    fn bytes_display_in_binary_units() {
        assert_eq!(Bytes(100).to_string(), "100 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(18 << 30).to_string(), "18.0 GiB");
    }
}
