//! Huge pages for the heap of the command-line programs.
//!
//! At hundreds of millions of events a query's hash tables and buffers span gigabytes. With the
//! kernel's 4 KiB pages, touching them costs a page fault per page and a TLB miss on most
//! lookups; with transparent huge pages (2 MiB) both almost vanish. Where the system's policy is
//! `madvise` (Debian's and many distributions' default), the kernel only backs memory that asked
//! for them, and glibc's `malloc` asks for every heap and large block it maps when its tunable
//! `glibc.malloc.hugetlb=1` is set. glibc reads tunables once, when a process starts, so
//! [`reexec_with_huge_pages`] starts the program again, in place (same process id, arguments,
//! standard streams), with the tunable added to `GLIBC_TUNABLES`.
//!
//! It does nothing when:
//! - `GLIBC_TUNABLES` already names `glibc.malloc.hugetlb`: the user chose (set it to `0` to
//!   keep 4 KiB pages), or this is the program started again;
//! - the kernel's policy (`/sys/kernel/mm/transparent_hugepage/enabled`) is `always`, where
//!   every large block gets huge pages anyway, or `never`, or cannot be read;
//! - the target is not Linux with glibc.
//!
//! If starting again fails, the program goes on as it is.

/// The glibc tunable that makes `malloc` ask for transparent huge pages.
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// The kernel's transparent huge page policy: `always [madvise] never`, the chosen one bracketed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const POLICY: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// Starts this program again with glibc's huge-page tunable set, when that helps (see the
/// module's documentation). Call it first in `main`, before an async runtime starts its threads
/// (their work would be thrown away). It returns only when it does nothing or cannot start the
/// program again.
pub fn reexec_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        let current = std::env::var("GLIBC_TUNABLES").ok();
        let Ok(policy) = std::fs::read_to_string(POLICY) else {
            return;
        };
        let Some(tunables) = tunables_with_huge_pages(current.as_deref(), &policy) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        // `exec` returns only on failure; the program then goes on with 4 KiB pages.
        let _ = command.args(args).env("GLIBC_TUNABLES", tunables).exec();
    }
}

/// The `heap` line of `\memory`: whether the heap gets huge pages, and why.
pub fn describe() -> String {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let policy = std::fs::read_to_string(POLICY).ok();
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let policy: Option<String> = None;
    describe_with(
        std::env::var("GLIBC_TUNABLES").ok().as_deref(),
        policy.as_deref(),
    )
}

fn describe_with(tunables: Option<&str>, policy: Option<&str>) -> String {
    let chosen = policy.and_then(chosen_policy);
    let setting = tunables.and_then(|tunables| {
        tunables
            .split(':')
            .find_map(|t| t.strip_prefix(TUNABLE)?.strip_prefix('='))
    });
    match (chosen, setting) {
        (Some("always"), _) => "transparent huge pages (the kernel's policy is always)".into(),
        (Some("madvise"), Some(value)) if value != "0" => {
            format!("transparent huge pages ({TUNABLE}={value})")
        }
        (Some("madvise"), Some(value)) => format!("4 KiB pages ({TUNABLE}={value})"),
        (Some(policy), _) => format!("4 KiB pages (the kernel's transparent huge pages: {policy})"),
        (None, _) => "4 KiB pages".into(),
    }
}

/// The value `GLIBC_TUNABLES` should have to use huge pages, given its value now and the
/// kernel's policy as its file reads; `None` when the program should stay as it is.
fn tunables_with_huge_pages(current: Option<&str>, policy: &str) -> Option<String> {
    if chosen_policy(policy)? != "madvise" {
        return None;
    }
    match current {
        Some(current) if current.contains(TUNABLE) => None,
        Some(current) if !current.is_empty() => Some(format!("{current}:{TUNABLE}=1")),
        _ => Some(format!("{TUNABLE}=1")),
    }
}

/// The bracketed word of the kernel's policy file (`always [madvise] never`).
fn chosen_policy(policy: &str) -> Option<&str> {
    policy
        .split_whitespace()
        .find_map(|p| p.strip_prefix('[')?.strip_suffix(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADVISE: &str = "always [madvise] never\n";

    #[test]
    fn asks_for_huge_pages_only_where_the_policy_is_madvise() {
        assert_eq!(
            tunables_with_huge_pages(None, MADVISE).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(None, "[always] madvise never\n"),
            None
        );
        assert_eq!(
            tunables_with_huge_pages(None, "always madvise [never]\n"),
            None
        );
        assert_eq!(tunables_with_huge_pages(None, ""), None);
        assert_eq!(tunables_with_huge_pages(None, "madvise\n"), None);
    }

    #[test]
    fn describes_what_the_heap_gets() {
        assert_eq!(
            describe_with(Some("glibc.malloc.hugetlb=1"), Some(MADVISE)),
            "transparent huge pages (glibc.malloc.hugetlb=1)"
        );
        assert_eq!(
            describe_with(Some("a.b=1:glibc.malloc.hugetlb=0"), Some(MADVISE)),
            "4 KiB pages (glibc.malloc.hugetlb=0)"
        );
        assert_eq!(
            describe_with(None, Some(MADVISE)),
            "4 KiB pages (the kernel's transparent huge pages: madvise)"
        );
        assert_eq!(
            describe_with(None, Some("[always] madvise never")),
            "transparent huge pages (the kernel's policy is always)"
        );
        assert_eq!(
            describe_with(
                Some("glibc.malloc.hugetlb=1"),
                Some("always madvise [never]")
            ),
            "4 KiB pages (the kernel's transparent huge pages: never)"
        );
        assert_eq!(describe_with(None, None), "4 KiB pages");
    }

    #[test]
    fn keeps_other_tunables_and_a_users_choice() {
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.arena_max=2"), MADVISE).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some(""), MADVISE).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        // A choice of the user's, or the program already started again: no loop.
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.hugetlb=0"), MADVISE),
            None
        );
        assert_eq!(
            tunables_with_huge_pages(
                Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
                MADVISE
            ),
            None
        );
    }
}
