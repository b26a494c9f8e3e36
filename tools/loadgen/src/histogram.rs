//! Latency histogram in bounded memory: 1 µs buckets below 1 s, 1 ms buckets up to
//! 100 s (anything slower lands in the last one), plus the exact maximum and sum.

const FINE_BUCKETS: usize = 1_000_000;
const COARSE_BUCKETS: usize = 100_000;

pub struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    sum_us: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { fine: vec![0; FINE_BUCKETS], coarse: vec![0; COARSE_BUCKETS], count: 0, sum_us: 0, max_us: 0 }
    }
}

impl Histogram {
    pub fn record_us(&mut self, us: u64) {
        match usize::try_from(us).unwrap_or(usize::MAX) {
            fine if fine < FINE_BUCKETS => self.fine[fine] += 1,
            coarse => self.coarse[(coarse / 1000).min(COARSE_BUCKETS - 1)] += 1,
        }
        self.count += 1;
        self.sum_us += us;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The nearest-rank `q` quantile in milliseconds (NaN when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return self.max_us as f64 / 1000.0;
        }
        let fine = self.fine.iter().enumerate().map(|(us, &n)| (us as u64, n));
        let coarse = self.coarse.iter().enumerate().map(|(ms, &n)| (ms as u64 * 1000, n));
        let mut seen = 0;
        for (us, n) in fine.chain(coarse) {
            seen += n;
            if seen >= rank {
                return us as f64 / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        self.sum_us as f64 / self.count.max(1) as f64 / 1000.0
    }

    /// `{prefix}_p50_ms=`, `_p99_ms=` and `_max_ms=` lines (with `_p90_ms=` and `_mean_ms=` if `more`).
    pub fn print(&self, prefix: &str, more: bool) {
        println!("{prefix}_p50_ms={:.3}", self.quantile_ms(0.5));
        if more {
            println!("{prefix}_p90_ms={:.3}", self.quantile_ms(0.9));
        }
        println!("{prefix}_p99_ms={:.3}", self.quantile_ms(0.99));
        println!("{prefix}_max_ms={:.3}", self.quantile_ms(1.0));
        if more {
            println!("{prefix}_mean_ms={:.3}", self.mean_ms());
        }
    }
}
