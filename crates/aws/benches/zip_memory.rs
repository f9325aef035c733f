//! Memory and speed of the streaming zipper: zips about 1 GiB of generated files (half
//! incompressible, half text; a few big files and many small ones) through
//! [`pipewright_aws::artifacts::zip_to_writer`] into a sink that counts bytes, and prints bytes,
//! seconds, MB/s and the process's peak RSS (VmHWM) before and after.
//!
//! `cargo bench -p pipewright-aws --bench zip_memory` (`PIPEWRIGHT_BENCH_MIB` changes the size).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use pipewright_aws::artifacts::{zip_to_writer, DEFLATE_LEVEL};

const MIB: u64 = 1024 * 1024;

fn main() -> io::Result<()> {
    // `cargo test` runs bench targets without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("zip_memory: run it with `cargo bench -p pipewright-aws --bench zip_memory`");
        return Ok(());
    }
    let total_mib: u64 = std::env::var("PIPEWRIGHT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir()?;
    let generated = generate(dir.path(), total_mib * MIB)?;
    println!(
        "generated {} files, {} bytes in {}",
        generated.0,
        generated.1,
        dir.path().display()
    );

    let before = peak_rss_kib();
    let mut sink = CountingSink::default();
    let start = Instant::now();
    let stats =
        zip_to_writer(dir.path(), &["**/*".to_string()], &mut sink).map_err(io::Error::other)?;
    let seconds = start.elapsed().as_secs_f64();
    let after = peak_rss_kib();

    println!("deflate level       {DEFLATE_LEVEL}");
    println!("entries             {}", stats.entries);
    println!(
        "bytes in            {} ({:.1} MiB)",
        stats.bytes_in,
        stats.bytes_in as f64 / MIB as f64
    );
    println!(
        "bytes out (zip)     {} ({:.1} MiB)",
        sink.bytes,
        sink.bytes as f64 / MIB as f64
    );
    println!("seconds             {seconds:.2}");
    println!(
        "throughput in       {:.1} MB/s",
        stats.bytes_in as f64 / 1e6 / seconds
    );
    println!(
        "peak RSS before     {} KiB",
        before.map_or("?".into(), |k| k.to_string())
    );
    println!(
        "peak RSS after      {} KiB",
        after.map_or("?".into(), |k| k.to_string())
    );
    Ok(())
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct CountingSink {
    bytes: u64,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Half random bytes (`.bin`, deflated like any unknown file), half text: two 128 MiB files of
/// each kind, the rest in 256 KiB files spread over directories. Written 1 MiB at a time.
fn generate(root: &Path, total: u64) -> io::Result<(u64, u64)> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut files = 0u64;
    let mut written = 0u64;
    let half = total / 2;
    for (kind, budget) in [("random", half), ("text", total - half)] {
        let big = (budget / 4).min(128 * MIB);
        let mut sizes = vec![big, big];
        let mut rest = budget.saturating_sub(2 * big);
        while rest > 0 {
            let size = rest.min(256 * 1024);
            sizes.push(size);
            rest -= size;
        }
        for (i, size) in sizes.into_iter().enumerate() {
            let dir = root.join(kind).join(format!("d{:03}", i / 100));
            fs::create_dir_all(&dir)?;
            let ext = if kind == "random" { "bin" } else { "txt" };
            let mut out = BufWriter::new(File::create(dir.join(format!("f{i:05}.{ext}")))?);
            let mut left = size;
            let mut line = 0u64;
            while left > 0 {
                let chunk = left.min(MIB) as usize;
                let mut buf = Vec::with_capacity(chunk);
                if kind == "random" {
                    while buf.len() < chunk {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        buf.extend_from_slice(&rng.to_le_bytes());
                    }
                } else {
                    while buf.len() < chunk {
                        line += 1;
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        writeln!(
                            buf,
                            "{line:08} INFO build step {} finished in {} ms: ok",
                            rng % 977,
                            rng % 10_000
                        )?;
                    }
                }
                buf.truncate(chunk);
                out.write_all(&buf)?;
                left -= chunk as u64;
            }
            out.flush()?;
            files += 1;
            written += size;
        }
    }
    Ok((files, written))
}

/// VmHWM of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
