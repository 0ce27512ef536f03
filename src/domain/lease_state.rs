//! The Lease's content and what it means: who holds it, whether that holder is still alive (pure,
//! so it is tested without a cluster).

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody holds it (released, or never held).
    Free,
    /// We hold it already (our own create whose answer was lost, then retried).
    Ours,
    /// Its holder ran on this machine and is no longer running (it could not release the
    /// lease: killed outright, or the API server was lost when it ended).
    Gone { holder: String },
    /// Its holder stopped renewing it longer than its duration ago.
    Expired {
        holder: String,
        renewed_ago: Duration,
    },
    /// A live holder.
    Held {
        holder: String,
        held_for: Duration,
        renewed_ago: Duration,
    },
}

/// Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC.
pub fn micro_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn since(text: Option<&str>, now: Timestamp) -> Option<Duration> {
    let then: Timestamp = text?.parse().ok()?;
    let elapsed = now.duration_since(then);
    // A holder's clock ahead of ours reads as "just now", never as negative.
    Some(Duration::try_from(elapsed).unwrap_or(Duration::ZERO))
}

/// The annotation naming the holder's process so that a run on the same machine can tell it
/// is gone: `BOOT_ID/PID_NAMESPACE/PID`. A hostname would not do: containers share them.
pub const PROCESS_ANNOTATION: &str = "helm-safe-rollback/process";

/// What an existing Lease means to us, `me`, at `now`. `gone(process)` says whether the
/// holder's process (its [`PROCESS_ANNOTATION`]) ran on this machine and has ended.
pub fn evaluate(lease: &Value, me: &str, now: Timestamp, gone: &dyn Fn(&str) -> bool) -> Verdict {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
    if holder.is_empty() {
        return Verdict::Free;
    }
    if holder == me {
        return Verdict::Ours;
    }
    let process = lease["metadata"]["annotations"][PROCESS_ANNOTATION].as_str();
    if process.is_some_and(gone) {
        return Verdict::Gone {
            holder: holder.to_string(),
        };
    }
    let seconds = spec["leaseDurationSeconds"].as_u64().unwrap_or(0);
    let renewed = spec["renewTime"].as_str().or(spec["acquireTime"].as_str());
    // A lease without a renew time cannot be judged alive: it expires.
    let renewed_ago = since(renewed, now).unwrap_or(Duration::MAX);
    if renewed_ago > Duration::from_secs(seconds) {
        return Verdict::Expired {
            holder: holder.to_string(),
            renewed_ago,
        };
    }
    Verdict::Held {
        holder: holder.to_string(),
        held_for: since(spec["acquireTime"].as_str(), now).unwrap_or(renewed_ago),
        renewed_ago,
    }
}

/// Who holds a lease: `identity` for people, `process` for [`PROCESS_ANNOTATION`].
pub struct Holder<'a> {
    pub identity: &'a str,
    pub process: &'a str,
}

/// A new Lease held by `me`.
pub fn fresh(
    namespace: &str,
    release: &str,
    me: &Holder,
    duration: Duration,
    now: Timestamp,
) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": format!("helm-safe-rollback.{release}"),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "helm-safe-rollback"},
            "annotations": {PROCESS_ANNOTATION: me.process},
        },
        "spec": spec(me.identity, duration, now, 0),
    })
}

/// The existing Lease (with its resourceVersion, so a concurrent writer makes ours fail with a
/// 409), now held by `me`.
pub fn claim(mut existing: Value, me: &Holder, duration: Duration, now: Timestamp) -> Value {
    let transitions = existing["spec"]["leaseTransitions"].as_u64().unwrap_or(0);
    existing["spec"] = spec(me.identity, duration, now, transitions + 1);
    let metadata = &mut existing["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][PROCESS_ANNOTATION] = json!(me.process);
    existing
}

fn spec(me: &str, duration: Duration, now: Timestamp, transitions: u64) -> Value {
    json!({
        "holderIdentity": me,
        "leaseDurationSeconds": duration.as_secs().max(1),
        "acquireTime": micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lease as the bed's API server (v1.20) answered its create (managedFields left out).
    const STORED: &str = r#"{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"helm-safe-rollback.web","namespace":"probe","uid":"194e2e60-8228-4818-91b0-a6bc788e979f","resourceVersion":"208","creationTimestamp":"2026-11-30T07:45:52Z","labels":{"app.kubernetes.io/managed-by":"helm-safe-rollback"}},"spec":{"holderIdentity":"ci@runner-1 (pid 42)","leaseDurationSeconds":30,"acquireTime":"2026-11-30T08:00:00.000000Z","renewTime":"2026-11-30T08:00:20.000000Z","leaseTransitions":0}}"#;

    fn alive(_process: &str) -> bool {
        false
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_renewed_lease_is_held_and_an_unrenewed_one_expires() {
        let lease: Value = serde_json::from_str(STORED).unwrap();
        assert_eq!(
            evaluate(
                &lease,
                "me@here (pid 1)",
                at("2026-11-30T08:00:45Z"),
                &alive
            ),
            Verdict::Held {
                holder: "ci@runner-1 (pid 42)".into(),
                held_for: Duration::from_secs(45),
                renewed_ago: Duration::from_secs(25),
            }
        );
        assert_eq!(
            evaluate(
                &lease,
                "me@here (pid 1)",
                at("2026-11-30T08:00:51Z"),
                &alive
            ),
            Verdict::Expired {
                holder: "ci@runner-1 (pid 42)".into(),
                renewed_ago: Duration::from_secs(31),
            }
        );
        assert_eq!(
            evaluate(
                &lease,
                "ci@runner-1 (pid 42)",
                at("2026-11-30T08:00:45Z"),
                &alive
            ),
            Verdict::Ours
        );
        // The holder's clock ahead of ours: held, renewed "just now".
        let early = evaluate(&lease, "me", at("2026-11-30T08:00:10Z"), &alive);
        assert!(matches!(early, Verdict::Held { renewed_ago, .. } if renewed_ago.is_zero()));
    }

    #[test]
    fn a_released_lease_is_free() {
        let mut lease: Value = serde_json::from_str(STORED).unwrap();
        lease["spec"]["holderIdentity"] = Value::Null;
        assert_eq!(
            evaluate(&lease, "me", at("2026-11-30T08:00:21Z"), &alive),
            Verdict::Free
        );
    }

    #[test]
    fn a_claim_keeps_the_resource_version_and_counts_the_transition() {
        let lease: Value = serde_json::from_str(STORED).unwrap();
        let now = at("2026-11-30T08:01:00.5Z");
        let me = Holder {
            identity: "me",
            process: "b00t/4026531836/7",
        };
        let claimed = claim(lease, &me, Duration::from_secs(3), now);
        assert_eq!(
            claimed["metadata"]["annotations"][PROCESS_ANNOTATION],
            "b00t/4026531836/7"
        );
        assert_eq!(claimed["metadata"]["resourceVersion"], "208");
        assert_eq!(claimed["spec"]["holderIdentity"], "me");
        assert_eq!(claimed["spec"]["leaseDurationSeconds"], 3);
        assert_eq!(claimed["spec"]["leaseTransitions"], 1);
        assert_eq!(claimed["spec"]["renewTime"], "2026-11-30T08:01:00.500000Z");
        let new = fresh("team", "web", &me, Duration::from_secs(30), now);
        let gone = |process: &str| process == "b00t/4026531836/7";
        assert_eq!(
            evaluate(&new, "other", now, &gone),
            Verdict::Gone {
                holder: "me".into()
            }
        );
        assert!(matches!(
            evaluate(&new, "other", now, &alive),
            Verdict::Held { .. }
        ));
        assert_eq!(new["metadata"]["name"], "helm-safe-rollback.web");
        assert_eq!(new["spec"]["leaseTransitions"], 0);
    }
}
