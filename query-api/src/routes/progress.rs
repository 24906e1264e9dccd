//! Progress: leaderboards, operator progress, goals, milestones and certifications
//! (DOMAIN.md §B11 rows 2, 10, 20–24; §B6).

use ats_events::{EventKind, Timestamp};
use ats_projections::progress::{
    self, Board, Certification, EarnedCertification, GoalDto, LeaderboardEntry, Milestone,
    ProgressReport, SkillLeaderboardEntry,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::params::{Params, ReadParams, MIN_POSITION_WAIT};
use crate::routes::events::{append_intent, ReceiptBody};
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/analytics/leaderboard", Access::READ, leaderboard)
        .get(
            "/api/analytics/operator/{id}/progress",
            Access::READ,
            operator_progress,
        )
        .get(
            "/api/analytics/operator/{id}/goals",
            Access::READ,
            list_goals,
        )
        .post(
            "/api/analytics/operator/{id}/goals",
            Access::INGEST,
            create_goal,
        )
        .post(
            "/api/analytics/goals/{goal_id}/progress",
            Access::INGEST,
            progress_goal,
        )
        .get("/api/analytics/milestones", Access::READ, list_milestones)
        .post(
            "/api/analytics/milestones",
            Access::INGEST,
            register_milestone,
        )
        .get(
            "/api/analytics/certifications",
            Access::READ,
            list_certifications,
        )
        .get(
            "/api/analytics/operator/{id}/certifications",
            Access::READ,
            operator_certifications,
        )
        .post(
            "/api/analytics/operator/{id}/certifications",
            Access::INGEST,
            award_certification,
        )
        .get(
            "/api/analytics/operator/{id}/certifications/{cert_id}/eligibility",
            Access::READ,
            eligibility,
        )
}

fn progress_tree(state: &AppState) -> Result<sled::Tree, ApiError> {
    state
        .runtime
        .handle(progress::NAME)
        .map(|h| h.tree())
        .ok_or_else(|| ApiError::Internal("progress projector missing".into()))
}

/// Waits for `min_position`, then returns the progress tree and the `as_of` instant.
async fn read_at(
    state: &AppState,
    as_of: Option<String>,
    min_position: Option<u64>,
) -> Result<(sled::Tree, Timestamp), ApiError> {
    let read = ReadParams {
        as_of,
        min_position,
    };
    read.settle(state).await?;
    Ok((progress_tree(state)?, read.as_of()?))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Operator not found: {id}"))
}

/// The seed's boolean query flags: only a literal `true` (any case) is true.
fn flag(value: Option<&str>, default: bool) -> bool {
    value.map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

/// Parameters of the leaderboard.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct LeaderboardParams {
    /// `xp` (default), `level`, `sessions`, `hours`, `average_score`, `achievements`,
    /// `activity`, or `skill` (with `skill_name`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub board: Option<String>,
    /// The skill of a `skill` leaderboard.
    pub skill_name: Option<String>,
    /// The category of a `custom` leaderboard (fed by `ats.leaderboard.scored`).
    pub category: Option<String>,
    /// Rows returned (default 10, at most 1,000).
    pub limit: Option<usize>,
    /// Only members of this team.
    pub team: Option<String>,
    /// Also return this operator's row and rank (even outside the top `limit`).
    pub operator_id: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 10's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Leaderboard {
    /// The leaderboard type.
    #[serde(rename = "type")]
    pub board: Board,
    /// The team filter, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Rows, best first; ties broken by operator id.
    pub entries: Vec<LeaderboardEntry>,
    /// The row of `operator_id`, when asked for (null when it is not on the board).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Option<LeaderboardEntry>>,
}

/// Seed endpoint 10's body for `type=skill`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkillLeaderboard {
    /// Always `skill`.
    #[serde(rename = "type")]
    pub board: &'static str,
    /// The skill.
    pub skill_name: String,
    /// The team filter, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Rows by proficiency, then average score; ties broken by operator id.
    pub entries: Vec<SkillLeaderboardEntry>,
}

/// The body for `type=custom`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomLeaderboard {
    /// Always `custom`.
    #[serde(rename = "type")]
    pub board: &'static str,
    /// The category.
    pub category: String,
    /// The team filter, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Rows by score, best first; ties broken by operator id.
    pub entries: Vec<progress::CustomLeaderboardEntry>,
}

/// Most rows one leaderboard request returns.
const MAX_LIMIT: usize = 1000;

/// `limit` (default 10), refused above [`MAX_LIMIT`].
fn checked_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(10);
    if limit > MAX_LIMIT {
        return Err(ApiError::BadRequest {
            code: "invalid_parameter",
            message: format!("limit: {limit} is above the maximum {MAX_LIMIT}"),
        });
    }
    Ok(limit)
}

/// Seed endpoint 10: the top operators by XP (the seed's shape: `rank`, `operator_id`, `name`,
/// `xp`, `level`), by activity (`total_sessions`, `total_hours` rounded to 0.1), or by level,
/// sessions, hours, average score or achievements (with the value as `score`); `skill` ranks
/// those who practised `skill_name` by proficiency, then average score.
#[utoipa::path(get, path = "/api/analytics/leaderboard", tag = "progress",
    params(LeaderboardParams),
    responses((status = 200, body = Leaderboard), (status = 400, body = ErrorBody)))]
pub async fn leaderboard(
    State(state): State<AppState>,
    Params(params): Params<LeaderboardParams>,
) -> Result<Response, ApiError> {
    let name = params.board.as_deref().unwrap_or("xp");
    let board = match Board::parse(name) {
        Some(board) => Some(board),
        None if name == "skill" || name == "custom" => None,
        None => {
            return Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: format!(
                    "type: Invalid leaderboard type: {name} (expected one of {}, skill, custom)",
                    Board::ALL.map(Board::as_str).join(", ")
                ),
            })
        }
    };
    if name == "custom" {
        return custom_leaderboard(&state, &params).await;
    }
    let skill = match (board, params.skill_name) {
        (None, None) => {
            return Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: "skill_name: required for skill leaderboard".into(),
            })
        }
        (_, skill) => skill.unwrap_or_default(),
    };
    let limit = checked_limit(params.limit)?;
    ReadParams {
        as_of: None,
        min_position: params.min_position,
    }
    .settle(&state)
    .await?;
    let tree = progress_tree(&state)?;
    let team = params.team.as_deref();
    let Some(board) = board else {
        return Ok(Json(SkillLeaderboard {
            board: "skill",
            entries: progress::skill_leaderboard(&tree, &skill, team, limit),
            skill_name: skill,
            team: params.team,
        })
        .into_response());
    };
    Ok(Json(Leaderboard {
        board,
        entries: progress::leaderboard(&tree, board, team, limit),
        operator: params
            .operator_id
            .as_deref()
            .map(|op| progress::rank(&tree, board, team, op)),
        team: params.team,
    })
    .into_response())
}

/// `type=custom&category=…`: a category fed by `ats.leaderboard.scored`.
async fn custom_leaderboard(
    state: &AppState,
    params: &LeaderboardParams,
) -> Result<Response, ApiError> {
    let category = params
        .category
        .clone()
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_parameter",
            message: "category: required for a custom leaderboard".into(),
        })?;
    let limit = checked_limit(params.limit)?;
    ReadParams {
        as_of: None,
        min_position: params.min_position,
    }
    .settle(state)
    .await?;
    let tree = progress_tree(state)?;
    let entries = progress::custom_leaderboard(&tree, &category, params.team.as_deref(), limit);
    Ok(Json(CustomLeaderboard {
        board: "custom",
        category,
        team: params.team.clone(),
        entries,
    })
    .into_response())
}

/// Seed endpoint 2: the summary (level, XP, achievements, valid certifications, active goals,
/// sessions, hours), achievements, progress paths, plus goals (`overdue` at `as_of`) and
/// certifications valid at `as_of`.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/progress", tag = "progress",
    params(("id" = String, Path, description = "Operator id"), ReadParams),
    responses((status = 200, body = ProgressReport), (status = 404, body = ErrorBody)))]
pub async fn operator_progress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<ProgressReport>, ApiError> {
    let (tree, as_of) = read_at(&state, read.as_of, read.min_position).await?;
    progress::progress(&tree, &id, as_of)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// `include_completed`, `as_of`, `min_position`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct GoalParams {
    /// `true` (default) lists completed goals too; anything else hides them.
    pub include_completed: Option<String>,
    /// Evaluate `overdue` as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 20's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GoalList {
    /// Operator id.
    pub operator_id: String,
    /// Goals in creation order.
    pub goals: Vec<GoalDto>,
    /// How many.
    pub count: usize,
}

/// Seed endpoint 20: an operator's goals (no existence check, as the seed).
#[utoipa::path(get, path = "/api/analytics/operator/{id}/goals", tag = "progress",
    params(("id" = String, Path, description = "Operator id"), GoalParams),
    responses((status = 200, body = GoalList)))]
pub async fn list_goals(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<GoalParams>,
) -> Result<Json<GoalList>, ApiError> {
    let (tree, as_of) = read_at(&state, params.as_of, params.min_position).await?;
    let include = flag(params.include_completed.as_deref(), true);
    let goals = progress::goals(&tree, &id, include, as_of);
    Ok(Json(GoalList {
        operator_id: id,
        count: goals.len(),
        goals,
    }))
}

/// A created goal and the log position of its event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedGoal {
    /// The goal as the read model holds it.
    #[serde(flatten)]
    pub goal: GoalDto,
    /// Log position of the `ats.goal.created` event.
    pub position: u64,
}

/// Appends the intent `body` (an object) with `extra` fields set, as an event of `kind`.
async fn append_with(
    state: &AppState,
    kind: EventKind,
    headers: &HeaderMap,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Result<ReceiptBody, ApiError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("malformed JSON: {e}"),
        })?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ApiError::InvalidEvent("the body must be a JSON object".into()))?;
    for (field, text) in extra {
        if object.contains_key(*field) {
            return Err(ApiError::InvalidEvent(format!(
                "{field}: is set by the path, not the body"
            )));
        }
        object.insert((*field).to_owned(), (*text).into());
    }
    let body = serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
    append_intent(state, kind, headers, &body).await
}

fn last_position(receipt: &ReceiptBody) -> u64 {
    receipt.positions.last().copied().unwrap_or(0)
}

/// Seed endpoint 21: creates a goal (`{name, target_value, description?, unit?, deadline?}`) by
/// appending `ats.goal.created`; 201 with the goal once the read model holds it. With an
/// `Idempotency-Key` header, a retry creates nothing new.
#[utoipa::path(post, path = "/api/analytics/operator/{id}/goals", tag = "progress",
    params(("id" = String, Path, description = "Operator id")),
    request_body(content = Object, description = "name, target_value, description, unit, deadline"),
    responses((status = 201, body = CreatedGoal), (status = 400, body = ErrorBody),
        (status = 422, description = "A field breaks a rule; the message names it", body = ErrorBody)))]
pub async fn create_goal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedGoal>), ApiError> {
    // With a key, the goal id is derived from it so that a retry is the same event.
    let goal_id = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) => ats_events::cloudevents::event_id(&format!("goal/{id}/{key}")),
        None => ats_events::EventId::now_v7(),
    }
    .to_string();
    let extra = [("goal_id", goal_id.as_str()), ("operator_id", id.as_str())];
    let receipt = append_with(&state, EventKind::GoalCreated, &headers, &body, &extra).await?;
    let position = last_position(&receipt);
    let handle = state
        .runtime
        .handle(progress::NAME)
        .ok_or_else(|| ApiError::Internal("progress projector missing".into()))?;
    if !handle.wait_for(position, MIN_POSITION_WAIT).await {
        return Err(ApiError::Timeout(format!(
            "goal {goal_id} was appended at position {position} but is not readable yet"
        )));
    }
    let goal = progress::goal(&handle.tree(), &goal_id)
        .ok_or_else(|| ApiError::Internal(format!("goal {goal_id} missing after its fold")))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedGoal {
            goal: GoalDto::new(goal, Timestamp::now()),
            position,
        }),
    ))
}

/// Sets a goal's current value (`{value}`) by appending `ats.goal.progressed`.
#[utoipa::path(post, path = "/api/analytics/goals/{goal_id}/progress", tag = "progress",
    params(("goal_id" = String, Path, description = "Goal id")),
    request_body(content = Object, description = "value"),
    responses((status = 200, body = ReceiptBody), (status = 422, body = ErrorBody)))]
pub async fn progress_goal(
    State(state): State<AppState>,
    Path(goal_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    let extra = [("goal_id", goal_id.as_str())];
    append_with(&state, EventKind::GoalProgressed, &headers, &body, &extra)
        .await
        .map(Json)
}

/// Every milestone in force.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MilestoneList {
    /// Defaults, then registered ones, in evaluation order.
    pub milestones: Vec<Milestone>,
    /// How many.
    pub count: usize,
}

/// The milestones in force: the nine defaults, then the registered ones.
#[utoipa::path(get, path = "/api/analytics/milestones", tag = "progress",
    params(ReadParams), responses((status = 200, body = MilestoneList)))]
pub async fn list_milestones(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<MilestoneList>, ApiError> {
    read.settle(&state).await?;
    let milestones = progress::milestones(&progress_tree(&state)?);
    Ok(Json(MilestoneList {
        count: milestones.len(),
        milestones,
    }))
}

/// Registers a custom milestone (`ats.milestone.registered` data); it applies from its log
/// position on.
#[utoipa::path(post, path = "/api/analytics/milestones", tag = "progress",
    request_body(content = Object, description = "id, name, milestone_type, requirements, xp_reward, description, badge_icon"),
    responses((status = 200, body = ReceiptBody), (status = 422, body = ErrorBody)))]
pub async fn register_milestone(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    append_intent(&state, EventKind::MilestoneRegistered, &headers, &body)
        .await
        .map(Json)
}

/// Seed endpoint 22's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CertificationList {
    /// The four default certifications.
    pub certifications: Vec<Certification>,
    /// How many.
    pub count: usize,
}

/// Seed endpoint 22: the certifications (fixed content; `min_position` is accepted as on every
/// read endpoint).
#[utoipa::path(get, path = "/api/analytics/certifications", tag = "progress",
    params(ReadParams), responses((status = 200, body = CertificationList)))]
pub async fn list_certifications(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<CertificationList>, ApiError> {
    read.settle(&state).await?;
    let certifications = progress::default_certifications();
    Ok(Json(CertificationList {
        count: certifications.len(),
        certifications,
    }))
}

/// `include_expired`, `as_of`, `min_position`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct CertificationParams {
    /// `true` lists expired certifications too (default `false`).
    pub include_expired: Option<String>,
    /// Validity is judged at this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 23's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EarnedList {
    /// Operator id.
    pub operator_id: String,
    /// Awards in award order.
    pub certifications: Vec<EarnedCertification>,
    /// How many.
    pub count: usize,
}

/// Seed endpoint 23: an operator's certifications (valid at `as_of` unless
/// `include_expired=true`; no existence check, as the seed).
#[utoipa::path(get, path = "/api/analytics/operator/{id}/certifications", tag = "progress",
    params(("id" = String, Path, description = "Operator id"), CertificationParams),
    responses((status = 200, body = EarnedList)))]
pub async fn operator_certifications(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<CertificationParams>,
) -> Result<Json<EarnedList>, ApiError> {
    let (tree, as_of) = read_at(&state, params.as_of, params.min_position).await?;
    let include_expired = flag(params.include_expired.as_deref(), false);
    let certifications: Vec<EarnedCertification> = progress::operator(&tree, &id)
        .map(|op| op.earned_certifications)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| include_expired || e.is_valid(as_of))
        .collect();
    Ok(Json(EarnedList {
        operator_id: id,
        count: certifications.len(),
        certifications,
    }))
}

/// Awards a certification (`{certification_id}`) by appending `ats.certification.awarded`.
/// As the seed, eligibility is not checked (see `…/eligibility`).
#[utoipa::path(post, path = "/api/analytics/operator/{id}/certifications", tag = "progress",
    params(("id" = String, Path, description = "Operator id")),
    request_body(content = Object, description = "certification_id"),
    responses((status = 200, body = ReceiptBody), (status = 422, body = ErrorBody)))]
pub async fn award_certification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    let extra = [("operator_id", id.as_str())];
    append_with(
        &state,
        EventKind::CertificationAwarded,
        &headers,
        &body,
        &extra,
    )
    .await
    .map(Json)
}

/// Seed endpoint 24's body.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Eligibility {
    /// Operator id.
    pub operator_id: String,
    /// Certification id.
    pub certification_id: String,
    /// No requirement is missing.
    pub eligible: bool,
    /// The seed's messages (`Missing skill: …`, `Need 5 total sessions`, …).
    pub missing_requirements: Vec<String>,
}

/// Seed endpoint 24: whether an operator meets a certification's requirements now
/// (prerequisites judged at `as_of`); an unknown certification is `["Certification not found"]`.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/certifications/{cert_id}/eligibility", tag = "progress",
    params(("id" = String, Path, description = "Operator id"),
        ("cert_id" = String, Path, description = "Certification id"), ReadParams),
    responses((status = 200, body = Eligibility), (status = 404, body = ErrorBody)))]
pub async fn eligibility(
    State(state): State<AppState>,
    Path((id, cert_id)): Path<(String, String)>,
    Params(read): Params<ReadParams>,
) -> Result<Json<Eligibility>, ApiError> {
    let (tree, as_of) = read_at(&state, read.as_of, read.min_position).await?;
    let op = progress::operator(&tree, &id).ok_or_else(|| not_found(&id))?;
    let (eligible, missing_requirements) = match progress::certification(&cert_id) {
        Some(cert) => cert.check_eligibility(&op, as_of),
        None => (false, vec!["Certification not found".to_owned()]),
    };
    Ok(Json(Eligibility {
        operator_id: id,
        certification_id: cert_id,
        eligible,
        missing_requirements,
    }))
}
