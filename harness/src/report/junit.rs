//! junit.xml for CI systems, via quick-junit (the writer nextest uses).

use std::time::Duration;

use anyhow::Result;
use hmmlab_proto::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::model::RunReport;

pub fn render(r: &RunReport) -> Result<String> {
    let mut report = Report::new(format!("hmmlab {}", r.run_id));
    let mut suite = TestSuite::new(format!("hmmlab.{}", r.default_thp));
    for sc in &r.scenarios {
        let status = match sc.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Skip => {
                let mut s = TestCaseStatus::skipped();
                if let Some(m) = &sc.message {
                    s.set_message(m.clone());
                }
                s
            }
            o => {
                let kind = if o == Outcome::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_type(o.as_str());
                s.set_message(sc.message.clone().unwrap_or_else(|| o.as_str().to_string()));
                let mut desc = String::new();
                for f in &sc.console_findings {
                    desc.push_str(&f.excerpt);
                    desc.push('\n');
                }
                desc.push_str(&format!("reproduce: {}\n", sc.reproduce));
                s.set_description(desc);
                s
            }
        };
        let mut tc = TestCase::new(sc.name.clone(), status);
        tc.set_classname(format!("hmmlab.{}", sc.thp));
        tc.set_time(Duration::from_nanos(sc.duration_ns));
        suite.add_test_case(tc);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
