//! Prints the single-core sha256 rate of `sha2` on this machine: 512 MiB
//! of in-memory bytes hashed in 256 KiB updates on one thread, as many
//! times as asked (default 3), after a short warm-up. For each pass it
//! prints bytes per second of wall time and, on Linux, per second of the
//! thread's own CPU time (`/proc/thread-self/schedstat`), which other
//! processes sharing the core slow down far less. The last line is the
//! fastest pass, for scripts:
//!
//!     rate <bytes per CPU second> <bytes per wall second> <sha extensions: yes|no>

use std::time::Instant;

use sha2::{Digest, Sha256};

const UPDATE: usize = 256 * 1024;
const PASS: usize = 512 * 1024 * 1024;

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("usage: sha256-rate [PASSES]"))
        .unwrap_or(3);
    // Bytes that are not all alike (sha256's speed does not depend on
    // them, but nothing can be folded away either).
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let buffer: Vec<u8> = (0..UPDATE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let extensions = if sha_extensions() { "yes" } else { "no" };
    println!("sha2 uses SHA extensions on this CPU: {extensions}");
    hash(&buffer, 32 * 1024 * 1024);
    let mut best: Option<(f64, f64)> = None;
    for pass in 1..=passes {
        let cpu_before = thread_cpu_seconds();
        let started = Instant::now();
        let digest = hash(&buffer, PASS);
        let wall = started.elapsed().as_secs_f64();
        let cpu = match (cpu_before, thread_cpu_seconds()) {
            (Some(before), Some(after)) if after > before => after - before,
            _ => wall,
        };
        let (per_cpu, per_wall) = (PASS as f64 / cpu, PASS as f64 / wall);
        println!(
            "pass {pass}: {PASS} bytes in {wall:.3} s wall, {cpu:.3} s CPU: \
             {:.0} MB/s of CPU, {:.0} MB/s of wall ({:02x}…)",
            per_cpu / 1e6,
            per_wall / 1e6,
            digest[0],
        );
        if best.is_none_or(|(fastest, _)| per_cpu > fastest) {
            best = Some((per_cpu, per_wall));
        }
    }
    if let Some((per_cpu, per_wall)) = best {
        println!("rate {per_cpu:.0} {per_wall:.0} {extensions}");
    }
}

fn hash(buffer: &[u8], bytes: usize) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for _ in 0..bytes / buffer.len() {
        hasher.update(std::hint::black_box(buffer));
    }
    hasher.finalize().to_vec()
}

/// The CPU this thread has run for, if the kernel says.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanoseconds as f64 / 1e9)
}

/// Whether `sha2` takes its SHA-extension path here: the same CPU
/// features it checks at run time, unless built with
/// `RUSTFLAGS='--cfg sha2_backend="soft"'` (the rate without them).
fn sha_extensions() -> bool {
    if cfg!(any(sha2_backend = "soft", sha2_256_backend = "soft")) {
        return false;
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse2")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}
