//! The suites that exercise execution run once per executor: a test per executor,
//! made by [`on_both_executors!`], rather than the whole CI twice.

use probe_core::{ExecutorChoice, ProbeBuilder, Report};

/// The executor a parameterised test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// The portable one, forced.
    Tokio,
    /// The default where the kernel allows it, which this suite's machines do: a run
    /// that fell back fails the test rather than pass on the other executor.
    IoUring,
}

impl Exec {
    /// `builder` set to this executor.
    pub fn on(self, builder: ProbeBuilder) -> ProbeBuilder {
        match self {
            Exec::Tokio => builder.executor(ExecutorChoice::Tokio),
            Exec::IoUring => builder.executor(ExecutorChoice::Auto),
        }
    }

    /// The name report.json gives it.
    pub fn name(self) -> &'static str {
        match self {
            Exec::Tokio => "tokio",
            Exec::IoUring => "io_uring",
        }
    }

    /// Runs `builder` (made with [`Exec::on`]) to the end of its schedule and returns
    /// its report, which must say this executor sent the requests.
    pub async fn run(self, builder: ProbeBuilder) -> Report {
        let probe = builder.start().await.expect("probe starts");
        probe.schedule_finished().await;
        let report = probe.stop().await.expect("probe stops");
        self.assert_ran(&report);
        report
    }

    /// Asserts that `report` was sent by this executor.
    pub fn assert_ran(self, report: &Report) {
        let used = report
            .probe
            .executor
            .as_ref()
            .expect("a live run names its executor");
        assert_eq!(used.name, self.name(), "{used:?}");
    }
}

/// For each `async fn name(exec: Exec)` listed, a module `name` with the tests
/// `tokio` and `io_uring` (`multi_thread:` first: on a multi-thread runtime).
#[macro_export]
macro_rules! on_both_executors {
    (multi_thread: $($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn tokio() { super::$name(super::support::Exec::Tokio).await }
            #[tokio::test(flavor = "multi_thread")]
            async fn io_uring() { super::$name(super::support::Exec::IoUring).await }
        })*
    };
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test]
            async fn tokio() { super::$name(super::support::Exec::Tokio).await }
            #[tokio::test]
            async fn io_uring() { super::$name(super::support::Exec::IoUring).await }
        })*
    };
}
