//! The process's own metrics under the names every Prometheus client uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from `/proc/self`
//! at each scrape. Only Linux has them: elsewhere, and whenever `/proc` cannot be read, the
//! metrics are left out rather than shown as zero.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// The collector registered in every server's registry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Process;

#[cfg(target_os = "linux")]
impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        let Some(sample) = linux::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(sample.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                Some(sample.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                Some(sample.virtual_bytes),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                sample.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                sample.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                Some(sample.threads),
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
impl Collector for Process {
    fn encode(&self, _: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// One reading of `/proc/self`; the parts that could not be read are `None`.
    #[derive(Debug)]
    pub(super) struct Sample {
        pub(super) cpu_seconds: f64,
        pub(super) resident_bytes: f64,
        pub(super) virtual_bytes: f64,
        pub(super) threads: f64,
        pub(super) start_time_seconds: Option<f64>,
        pub(super) open_fds: Option<f64>,
        pub(super) max_fds: Option<f64>,
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "tick rates, page sizes and descriptor counts are far below 2^52"
    )]
    pub(super) fn read() -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        let mut sample = parse_stat(&stat, ticks, page)?;
        if let Some(start) = sample.start_time_seconds {
            sample.start_time_seconds = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| boot_time(&text))
                .map(|boot| boot + start);
        }
        sample.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as f64);
        sample.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| max_open_files(&text));
        Some(sample)
    }

    /// `/proc/self/stat` (proc(5)); `start_time_seconds` is since boot here.
    fn parse_stat(stat: &str, ticks: f64, page: f64) -> Option<Sample> {
        // The command name in parentheses may itself hold spaces and parentheses: the fields
        // are counted after the last `)`, from field 3 (state) on.
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse::<f64>().ok() };
        Some(Sample {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            threads: field(20)?,
            start_time_seconds: Some(field(22)? / ticks),
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            open_fds: None,
            max_fds: None,
        })
    }

    /// The boot time (`btime`) of `/proc/stat`, in seconds since the epoch.
    fn boot_time(text: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|value| value.trim().parse().ok())
    }

    /// The soft limit of open files in `/proc/self/limits` (`None` when unlimited).
    fn max_open_files(text: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse().ok())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn proc_files_are_read_by_field() {
            let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 \
                        7 0 12000 104857600 2560 18446744073709551615";
            let sample = super::parse_stat(stat, 100.0, 4096.0).unwrap();
            assert!((sample.cpu_seconds - 3.0).abs() < 1e-9, "{sample:?}");
            assert!((sample.threads - 7.0).abs() < 1e-9, "{sample:?}");
            assert_eq!(sample.start_time_seconds, Some(120.0));
            assert!((sample.virtual_bytes - 104_857_600.0).abs() < 1e-9);
            assert!((sample.resident_bytes - 2560.0 * 4096.0).abs() < 1e-9);
            assert_eq!(
                super::parse_stat("garbage", 100.0, 4096.0).map(|_| ()),
                None
            );
            assert_eq!(
                super::boot_time("cpu  1 2 3\nbtime 1795000000\nprocesses 9\n"),
                Some(1_795_000_000.0)
            );
            let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max open files            1024                 524288               files\n";
            assert_eq!(super::max_open_files(limits), Some(1024.0));
            assert_eq!(
                super::max_open_files(
                    "Max open files            unlimited            unlimited            files\n"
                ),
                None
            );
        }

        #[test]
        fn this_process_reads() {
            let sample = super::read().unwrap();
            assert!(sample.resident_bytes > 0.0);
            assert!(sample.open_fds.unwrap() >= 3.0);
            assert!(sample.start_time_seconds.unwrap() > 1.0e9);
        }
    }
}
