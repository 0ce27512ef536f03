//! What the proxy breaks and how: the fault kinds, the rules that pick requests, the record of
//! every request seen, and the answers sent instead of forwarding.

use std::fmt;

use anyhow::Context;
use regex::Regex;

/// What a matching request gets instead of being forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The TCP connection is closed with `SO_LINGER 0` once the request has
    /// been read, so the client sees "connection reset by peer".
    Reset,
    /// An HTTP `503 Service Unavailable` with a kube-style `Status` body and
    /// no `Retry-After` (client-go would otherwise retry it by itself).
    ServiceUnavailable,
    /// A real API server's answer, captured elsewhere (a fixture): its status
    /// code and JSON body, for a condition this bed's API server cannot
    /// produce.
    Replay { status: u16, body: &'static str },
}

/// Which requests to break, and when.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Exact HTTP method (e.g. `"POST"`, compared case-insensitively), or any.
    pub method: Option<String>,
    /// Matched against the request target: path plus query string.
    pub path: Regex,
    /// How many matching requests pass before faults start: `0` faults the
    /// first match, `2` lets two through and faults the third.
    pub after: usize,
    /// How many faults to inject at most; `None` = every later match.
    pub times: Option<usize>,
    pub fault: Fault,
}

impl Rule {
    /// A rule faulting every matching request from the first one on.
    pub fn new(method: Option<&str>, path: &str, fault: Fault) -> anyhow::Result<Rule> {
        Ok(Rule {
            method: method.map(str::to_owned),
            path: Regex::new(path).with_context(|| format!("bad path regex {path:?}"))?,
            after: 0,
            times: None,
            fault,
        })
    }

    pub fn after(mut self, after: usize) -> Rule {
        self.after = after;
        self
    }

    pub fn times(mut self, times: usize) -> Rule {
        self.times = Some(times);
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        let method_ok = match &self.method {
            Some(m) => m.eq_ignore_ascii_case(method),
            None => true,
        };
        method_ok && self.path.is_match(target)
    }
}

/// One request as the proxy saw it, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path plus query string, as sent by the client.
    pub path: String,
    /// The fault injected instead of forwarding, if any.
    pub fault: Option<Fault>,
}

impl fmt::Display for SeenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        match self.fault {
            Some(fault) => write!(f, " [{fault:?}]"),
            None => Ok(()),
        }
    }
}

/// A rule with the counts `after` and `times` are judged by.
pub(super) struct RuleState {
    rule: Rule,
    matched: usize,
    fired: usize,
}

impl RuleState {
    pub(super) fn new(rule: Rule) -> RuleState {
        RuleState {
            rule,
            matched: 0,
            fired: 0,
        }
    }
}

/// The fault for one request, counting it against every rule it reaches.
pub(super) fn decide(rules: &mut [RuleState], method: &str, target: &str) -> Option<Fault> {
    for state in rules.iter_mut() {
        if !state.rule.matches(method, target) {
            continue;
        }
        state.matched += 1;
        let past_after = state.matched > state.rule.after;
        let budget_left = match state.rule.times {
            Some(times) => state.fired < times,
            None => true,
        };
        if past_after && budget_left {
            state.fired += 1;
            // The first firing rule wins; later rules neither fire nor count
            // a request that never reached the server.
            return Some(state.rule.fault);
        }
    }
    None
}

/// A [`Fault::Replay`] answer as the captured server sent it.
pub(super) fn replayed(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Replayed\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Shaped like the apiserver's own 503s so client-go decodes it into a
/// `StatusError` and helm prints its message, exactly as in production.
pub(super) fn service_unavailable(method: &str, target: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server is currently unable to handle the request (injected by fault proxy)",
        "reason": "ServiceUnavailable",
        "details": { "causes": [{ "message": format!("{method} {target}") }] },
        "code": 503
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
