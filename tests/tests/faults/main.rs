//! The pipeline under faults: short runs of each kind (`make chaos` makes long ones). A test
//! process of its own, because the fault proxy fails calls of every handler: the other
//! integration tests must not see its faults. Runs take turns (one proxy setting at a time).

use std::time::Duration;

use integration_tests::chaos::{self, Outcome, Plan};
use integration_tests::fault_proxy::Faults;
use integration_tests::receiver::Flaky;
use tokio::sync::Mutex;

static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn run(plan: Plan) -> Outcome {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let outcome = chaos::run(&plan).await;
    eprintln!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    outcome
}

fn plan(fault: &str, faults: Faults) -> Plan {
    Plan {
        fault: fault.into(),
        events: 20,
        webhooks: 2,
        faults,
        receivers: None,
        duplicate_messages: false,
        seed: 7,
        deadline: Duration::from_secs(150),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_before_the_call_lose_nothing() {
    let outcome = run(plan(
        "DynamoDB and SQS calls fail before taking effect",
        Faults {
            rate: 0.25,
            after_share: 0.0,
        },
    ))
    .await;
    outcome.assert_faults_injected();
    outcome.assert_clean();
    assert_eq!(outcome.succeeded, outcome.deliveries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_after_the_call_took_effect_send_nothing_twice() {
    let outcome = run(plan(
        "DynamoDB and SQS calls fail after taking effect",
        Faults {
            rate: 0.25,
            after_share: 1.0,
        },
    ))
    .await;
    outcome.assert_faults_injected();
    outcome.assert_clean();
    assert_eq!(outcome.succeeded, outcome.deliveries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_messages_send_each_attempt_once() {
    let outcome = run(Plan {
        duplicate_messages: true,
        ..plan("copies of every delivery message", Faults::NONE)
    })
    .await;
    outcome.assert_clean();
    assert_eq!(outcome.succeeded, outcome.deliveries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receivers_are_retried_and_logged_as_they_answered() {
    let outcome = run(Plan {
        receivers: Some(Flaky {
            seed: 11,
            fail: 0.3,
            hang: 0.03,
            reset: 0.07,
            hang_for: Duration::from_secs(11),
            dead: 0.1,
        }),
        ..plan(
            "receivers fail 30 %, hang 3 %, reset 7 %; 10 % always fail",
            Faults::NONE,
        )
    })
    .await;
    outcome.assert_clean();
    assert!(outcome.permanently_failed > 0, "the alert path ran");
    assert_eq!(
        outcome.succeeded + outcome.permanently_failed,
        outcome.deliveries
    );
}
