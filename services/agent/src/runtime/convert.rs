//! Docker's answers in the runtime's terms.

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, CreateImageInfo, PortSummaryTypeEnum,
};

use super::{ContainerInfo, ContainerState, PullEvent};

pub fn container_state(status: Option<ContainerStateStatusEnum>) -> ContainerState {
    use ContainerStateStatusEnum as S;
    match status {
        Some(S::CREATED) | Some(S::EMPTY) | None => ContainerState::Created,
        Some(S::RUNNING) | Some(S::STOPPING) => ContainerState::Running,
        Some(S::PAUSED) => ContainerState::Paused,
        Some(S::RESTARTING) => ContainerState::Restarting,
        Some(S::REMOVING) => ContainerState::Removing,
        Some(S::EXITED) => ContainerState::Stopped,
        Some(S::DEAD) => ContainerState::Dead,
    }
}

pub fn summary_state(state: Option<ContainerSummaryStateEnum>) -> ContainerState {
    use ContainerSummaryStateEnum as S;
    match state {
        Some(S::CREATED) | Some(S::EMPTY) | None => ContainerState::Created,
        Some(S::RUNNING) | Some(S::STOPPING) => ContainerState::Running,
        Some(S::PAUSED) => ContainerState::Paused,
        Some(S::RESTARTING) => ContainerState::Restarting,
        Some(S::REMOVING) => ContainerState::Removing,
        Some(S::EXITED) => ContainerState::Stopped,
        Some(S::DEAD) => ContainerState::Dead,
    }
}

/// Splits an image reference for the pull endpoint: `(fromImage, tag)`. A reference without a
/// tag or digest means `:latest` (the engine would otherwise pull every tag).
pub fn image_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &image[..image.len() - tag.len() - 1];
            (repo.to_owned(), Some(tag.to_owned()))
        }
        None => (image.to_owned(), Some("latest".to_owned())),
    }
}

/// One line of the engine's pull progress.
pub fn pull_event(info: CreateImageInfo) -> PullEvent {
    let status = info.status.unwrap_or_default();
    let percent = info
        .progress_detail
        .as_ref()
        .and_then(|p| match (p.current, p.total) {
            (Some(current), Some(total)) if total > 0 => {
                Some(((current.clamp(0, total) * 100) / total) as u32)
            }
            _ => None,
        })
        .unwrap_or(0);
    let detail = info.id.unwrap_or_default();
    PullEvent {
        status,
        detail,
        percent,
    }
}

pub fn from_inspect(c: ContainerInspectResponse) -> ContainerInfo {
    let config = c.config.unwrap_or_default();
    let ports = c
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(port, bindings)| {
            let host_port = bindings?
                .into_iter()
                .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()))?;
            Some((port, host_port))
        })
        .collect();
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        state: container_state(c.state.and_then(|s| s.status)),
        labels: config.labels.unwrap_or_default(),
        created_at: c
            .created
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.to_utc()),
        ports,
        env: config.env.unwrap_or_default(),
    }
}

pub fn from_summary(c: ContainerSummary) -> ContainerInfo {
    let ports = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let kind = match p.typ {
                Some(PortSummaryTypeEnum::UDP) => "udp",
                Some(PortSummaryTypeEnum::SCTP) => "sctp",
                _ => "tcp",
            };
            Some((format!("{}/{kind}", p.private_port), p.public_port?))
        })
        .collect();
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .unwrap_or_default()
            .into_iter()
            .next()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: c.image.unwrap_or_default(),
        state: summary_state(c.state),
        labels: c.labels.unwrap_or_default(),
        created_at: c
            .created
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
        ports,
        env: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_get_a_tag() {
        let cases = [
            ("alpine", ("alpine", Some("latest"))),
            ("alpine:3.20", ("alpine", Some("3.20"))),
            (
                "registry:5000/team/app",
                ("registry:5000/team/app", Some("latest")),
            ),
            (
                "registry:5000/team/app:1",
                ("registry:5000/team/app", Some("1")),
            ),
            ("app@sha256:abcd", ("app@sha256:abcd", None)),
        ];
        for (input, (repo, tag)) in cases {
            let (r, t) = image_reference(input);
            assert_eq!((r.as_str(), t.as_deref()), (repo, tag), "{input}");
        }
    }
}
