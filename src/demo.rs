//! A realistic synthetic history for `serve --demo`: operators who learn at different rates,
//! sessions over 90 days, skill assessments, metrics and LLM usage. Deterministic: the same
//! `end` gives the same events (and the same ids), so seeding twice changes nothing.

use ats_events::cloudevents::event_id;
use ats_events::{
    Envelope, LlmUsage, MetricType, OperatorRegistered, Payload, SessionCompleted, SessionMetric,
    SkillAssessed, Timestamp,
};

/// splitmix64: a tiny deterministic generator (a crate would be more than these lines).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIRST: [&str; 12] = [
    "Ada", "Boris", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jade", "Kofi",
    "Lena",
];
const LAST: [&str; 6] = ["Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva"];
const TEAMS: [(&str, &[&str], &[&str]); 3] = [
    (
        "red",
        &[
            "reconnaissance",
            "exploitation",
            "post_exploitation",
            "lateral_movement",
            "privilege_escalation",
            "stealth_operations",
        ],
        &[
            "pentest_001",
            "red_team_op_02",
            "web_exploit_03",
            "ad_takeover_04",
        ],
    ),
    (
        "blue",
        &[
            "threat_detection",
            "incident_response",
            "log_analysis",
            "threat_hunting",
            "forensics",
        ],
        &["ir_drill_01", "soc_triage_02", "hunt_apt_03"],
    ),
    (
        "social",
        &[
            "social_engineering",
            "pretexting",
            "phishing",
            "vishing",
            "elicitation",
        ],
        &["phish_campaign_01", "vishing_02", "pretext_03"],
    ),
];
/// Models of the default price table (DOMAIN.md §B5.3), so demo usage is priced; the local
/// model is free.
const MODELS: [&str; 6] = [
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "anthropic/claude-3.5-haiku",
    "openrouter/google/gemini-1.5-flash",
    "ollama/llama3.1:8b",
];
const TASKS: [&str; 4] = ["reconnaissance", "exploitation", "analysis", "defense"];

fn envelope(id: String, at: Timestamp, payload: Payload) -> Envelope {
    Envelope::new(event_id(&id), at, "demo-orchestrator", payload)
}

/// The demo history ending at `end`, in time order.
pub fn history(operators: usize, days: i64, end: Timestamp) -> Vec<Envelope> {
    let mut rng = Rng(0x00A7_5AFA);
    let start = end.plus_seconds(-days * 86_400);
    let mut events = Vec::new();
    for n in 0..operators {
        let op = format!("op_{:03}", n + 1);
        let (team, skills, scenarios) = TEAMS[n % TEAMS.len()];
        let name = format!(
            "{} {}",
            FIRST[n % FIRST.len()],
            LAST[(n / FIRST.len() + n) % LAST.len()]
        );
        let joined = start.plus_seconds(rng.below(20) as i64 * 86_400);
        events.push(envelope(
            format!("demo-{op}-registered"),
            joined,
            Payload::OperatorRegistered(OperatorRegistered {
                operator_id: op.clone(),
                name,
                team: Some(team.to_owned()),
                specializations: vec![skills[0].to_owned()],
                metadata: Default::default(),
            }),
        ));
        // Each operator has a talent (starting score) and a learning rate per session.
        let talent = 0.35 + 0.3 * rng.unit();
        let rate = 0.002 + 0.012 * rng.unit();
        let sessions = 40 + rng.below(70);
        let span = end.micros() - joined.micros();
        for k in 0..sessions {
            let session_id = format!("{op}-s{k:03}");
            let offset = span / sessions as i64 * k as i64 + (rng.unit() * 3.6e9) as i64;
            let begin = Timestamp::from_micros(joined.micros() + offset);
            let duration = 1800 + rng.below(9000) as i64;
            let finish = begin.plus_seconds(duration);
            let difficulty = 0.2 + 0.7 * rng.unit();
            let skill_mean = (talent + rate * k as f64 - 0.15 * (difficulty - 0.5)).min(0.97);
            let score = (skill_mean + 0.12 * (rng.unit() - 0.5)).clamp(0.0, 1.0);
            let success = score + 0.1 * (rng.unit() - 0.5) >= 0.6;
            let practiced: Vec<String> = (0..2 + rng.below(2))
                .map(|_| rng.pick(skills).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let objectives_total = 5 + rng.below(8) as u32;
            let objectives_completed =
                ((f64::from(objectives_total) * score).round() as u32).min(objectives_total);
            let scenario = rng.pick(scenarios).to_string();
            let requests = 2 + rng.below(4);
            for r in 0..requests {
                let model = rng.pick(&MODELS).to_string();
                let input = 500 + rng.below(6000) as u64;
                let output = 100 + rng.below(2000) as u64;
                let failed = rng.unit() < 0.03;
                let at = begin.plus_seconds((duration / requests as i64) * r as i64);
                events.push(envelope(
                    format!("demo-{session_id}-llm{r}"),
                    at,
                    Payload::LlmUsage(LlmUsage {
                        model,
                        profile_id: op.clone(),
                        session_id: session_id.clone(),
                        task_type: rng.pick(&TASKS).to_string(),
                        input_tokens: input,
                        output_tokens: output,
                        cached_input_tokens: if rng.unit() < 0.3 { input / 2 } else { 0 },
                        latency_ms: Some(300.0 + 2500.0 * rng.unit()),
                        success: !failed,
                        error_message: failed.then(|| "rate limited".to_owned()),
                        scenario_id: Some(scenario.clone()),
                        phase: Some(["planning", "execution", "reporting"][r % 3].to_owned()),
                        cost: None,
                    }),
                ));
            }
            events.push(envelope(
                format!("demo-{session_id}-done"),
                finish,
                Payload::SessionCompleted(SessionCompleted {
                    session_id: session_id.clone(),
                    operator_id: op.clone(),
                    scenario_id: scenario,
                    start_time: begin,
                    end_time: finish,
                    duration_seconds: duration as f64,
                    success,
                    score,
                    cost: 0.5 + 2.0 * rng.unit(),
                    skills_practiced: practiced.clone(),
                    objectives_completed,
                    objectives_total,
                    metrics: vec![
                        SessionMetric {
                            metric_type: MetricType::StealthRating,
                            value: (score + 0.2 * (rng.unit() - 0.5)).clamp(0.0, 1.0),
                        },
                        SessionMetric {
                            metric_type: MetricType::DecisionQuality,
                            value: (score + 0.2 * (rng.unit() - 0.5)).clamp(0.0, 1.0),
                        },
                    ],
                    difficulty: Some(difficulty),
                }),
            ));
            if k % 5 == 4 {
                let skill = rng.pick(&practiced).clone();
                events.push(envelope(
                    format!("demo-{session_id}-assess"),
                    finish.plus_seconds(600),
                    Payload::SkillAssessed(SkillAssessed {
                        operator_id: op.clone(),
                        skill,
                        score: (skill_mean + 0.08 * (rng.unit() - 0.5)).clamp(0.0, 1.0),
                    }),
                ));
            }
        }
    }
    events.sort_by(|a, b| a.occurred_at.cmp(&b.occurred_at).then(a.id.cmp(&b.id)));
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use ats_events::Validate;

    #[test]
    fn demo_is_deterministic_valid_and_sizeable() {
        let end = Timestamp::parse_rfc3339("2026-11-27T00:00:00Z").unwrap();
        let a = history(36, 90, end);
        assert_eq!(a, history(36, 90, end));
        assert!(a.len() > 5_000, "{}", a.len());
        for e in &a {
            e.payload.validate().unwrap();
            assert!(e.occurred_at <= end.plus_seconds(86_400));
        }
        let sessions = a
            .iter()
            .filter(|e| matches!(e.payload, Payload::SessionCompleted(_)))
            .count();
        assert!(sessions > 1_000, "{sessions}");
    }
}
