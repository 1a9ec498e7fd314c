//! An in-memory [`ContainerRuntime`] with the engine's semantics, for tests of the code that
//! drives a runtime (the agent's API, the session-manager's fakes). Not for production: nothing
//! runs. Tests can take the engine "down", seed images, and read back what was created.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::{
    ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, ExecOutput, ExecSpec,
    ImageInfo, NodeInfo, PullEvent, RuntimeError, RuntimeResult,
};

struct Stored {
    info: ContainerInfo,
    spec: ContainerSpec,
}

struct State {
    containers: HashMap<String, Stored>,
    images: BTreeSet<String>,
    pullable: BTreeSet<String>,
    available: bool,
    node: NodeInfo,
    next_id: u64,
    next_port: u16,
    execs: Vec<(String, ExecSpec)>,
    create_delay: Duration,
}

pub struct MemoryRuntime {
    state: Mutex<State>,
}

impl Default for MemoryRuntime {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                containers: HashMap::new(),
                images: BTreeSet::new(),
                pullable: BTreeSet::new(),
                available: true,
                node: NodeInfo {
                    cpus: 8.0,
                    memory_bytes: 16 << 30,
                    version: "memory".into(),
                },
                next_id: 1,
                next_port: 40000,
                execs: Vec::new(),
                create_delay: Duration::ZERO,
            }),
        }
    }
}

impl MemoryRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An image already on the "node".
    pub fn add_image(&self, image: &str) {
        self.state().images.insert(image.to_owned());
    }

    /// An image a pull can fetch.
    pub fn add_pullable(&self, image: &str) {
        self.state().pullable.insert(image.to_owned());
    }

    /// Takes the "engine" down (every call fails with `Unavailable`) or brings it back.
    pub fn set_available(&self, available: bool) {
        self.state().available = available;
    }

    /// Makes every `create` take `delay` before the container exists, as a real engine's does:
    /// long enough for concurrent calls to interleave.
    pub fn set_create_delay(&self, delay: Duration) {
        self.state().create_delay = delay;
    }

    pub fn set_node(&self, node: NodeInfo) {
        self.state().node = node;
    }

    /// What a container was created from.
    pub fn spec_of(&self, id_or_name: &str) -> Option<ContainerSpec> {
        let state = self.state();
        find(&state, id_or_name).map(|id| state.containers[&id].spec.clone())
    }

    /// Commands run so far, with the container they ran in.
    pub fn execs(&self) -> Vec<(String, ExecSpec)> {
        self.state().execs.clone()
    }

    /// Locks the state if the engine is up.
    fn up(&self) -> RuntimeResult<std::sync::MutexGuard<'_, State>> {
        let state = self.state();
        if state.available {
            Ok(state)
        } else {
            Err(RuntimeError::Unavailable("memory runtime is down".into()))
        }
    }

    fn transition(
        &self,
        id: &str,
        change: impl FnOnce(&mut State, &str) -> RuntimeResult<()>,
    ) -> RuntimeResult<()> {
        let mut state = self.up()?;
        let id = find(&state, id).ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        change(&mut state, &id)
    }
}

fn find(state: &State, id_or_name: &str) -> Option<String> {
    state
        .containers
        .values()
        .find(|c| c.info.id == id_or_name || c.info.name == id_or_name)
        .map(|c| c.info.id.clone())
}

fn set_state(state: &mut State, id: &str, to: ContainerState) {
    if let Some(c) = state.containers.get_mut(id) {
        c.info.state = to;
        if to == ContainerState::Stopped {
            c.info.ports.clear();
        }
    }
}

fn current(state: &State, id: &str) -> ContainerState {
    state
        .containers
        .get(id)
        .map(|c| c.info.state)
        .unwrap_or(ContainerState::Dead)
}

#[async_trait]
impl ContainerRuntime for MemoryRuntime {
    async fn node_info(&self) -> RuntimeResult<NodeInfo> {
        Ok(self.up()?.node.clone())
    }

    async fn create(&self, spec: &ContainerSpec) -> RuntimeResult<String> {
        let delay = self.state().create_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.up()?;
        if find(&state, &spec.name).is_some() {
            return Err(RuntimeError::Conflict(format!(
                "name {} is taken",
                spec.name
            )));
        }
        let image = spec.body.image.clone().unwrap_or_default();
        if !state.images.contains(&image) {
            return Err(RuntimeError::NoSuchImage(image));
        }
        let id = format!("{:064x}", state.next_id);
        state.next_id += 1;
        let info = ContainerInfo {
            id: id.clone(),
            name: spec.name.clone(),
            image,
            state: ContainerState::Created,
            labels: spec.body.labels.clone().unwrap_or_default(),
            created_at: Some(chrono::Utc::now()),
            ports: HashMap::new(),
            env: spec.body.env.clone().unwrap_or_default(),
        };
        let stored = Stored {
            info,
            spec: spec.clone(),
        };
        state.containers.insert(id.clone(), stored);
        Ok(id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.transition(id, |state, id| match current(state, id) {
            ContainerState::Running => Ok(()),
            ContainerState::Paused => Err(RuntimeError::Conflict("container is paused".into())),
            _ => {
                let port = state.next_port;
                state.next_port = state.next_port.wrapping_add(1).max(40000);
                set_state(state, id, ContainerState::Running);
                let exposed = state.containers[id].spec.body.exposed_ports.clone();
                if let Some(c) = state.containers.get_mut(id) {
                    for (i, p) in exposed.unwrap_or_default().into_iter().enumerate() {
                        c.info.ports.insert(p, port.wrapping_add(i as u16 * 1000));
                    }
                }
                Ok(())
            }
        })
    }

    async fn stop(&self, id: &str, _timeout_secs: u32) -> RuntimeResult<()> {
        self.transition(id, |state, id| {
            set_state(state, id, ContainerState::Stopped);
            Ok(())
        })
    }

    async fn pause(&self, id: &str) -> RuntimeResult<()> {
        self.transition(id, |state, id| match current(state, id) {
            ContainerState::Running => {
                set_state(state, id, ContainerState::Paused);
                Ok(())
            }
            other => Err(RuntimeError::Conflict(format!("container is {other:?}"))),
        })
    }

    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.transition(id, |state, id| match current(state, id) {
            ContainerState::Paused => {
                set_state(state, id, ContainerState::Running);
                Ok(())
            }
            other => Err(RuntimeError::Conflict(format!("container is {other:?}"))),
        })
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        self.transition(id, |state, id| {
            state.containers.remove(id);
            Ok(())
        })
    }

    async fn inspect(&self, id_or_name: &str) -> RuntimeResult<Option<ContainerInfo>> {
        let state = self.up()?;
        Ok(find(&state, id_or_name).map(|id| state.containers[&id].info.clone()))
    }

    async fn list(&self, labels: &[(&str, &str)]) -> RuntimeResult<Vec<ContainerInfo>> {
        let state = self.up()?;
        let mut found: Vec<ContainerInfo> = state
            .containers
            .values()
            .filter(|c| {
                labels
                    .iter()
                    .all(|(k, v)| c.info.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|c| ContainerInfo {
                env: Vec::new(),
                ..c.info.clone()
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> RuntimeResult<ExecOutput> {
        let mut state = self.up()?;
        let id = find(&state, id).ok_or_else(|| RuntimeError::NoSuchContainer(id.to_owned()))?;
        if current(&state, &id) != ContainerState::Running {
            return Err(RuntimeError::Conflict("container is not running".into()));
        }
        state.execs.push((id, spec.clone()));
        Ok(ExecOutput {
            exit_code: 0,
            output: spec.cmd.join(" "),
        })
    }

    async fn list_images(&self) -> RuntimeResult<Vec<ImageInfo>> {
        let state = self.up()?;
        Ok(state
            .images
            .iter()
            .enumerate()
            .map(|(i, tag)| ImageInfo {
                id: format!("sha256:{i:064x}"),
                tags: vec![tag.clone()],
                size_bytes: 1 << 20,
            })
            .collect())
    }

    fn pull(&self, image: &str) -> BoxStream<'static, RuntimeResult<PullEvent>> {
        let result = self.up().and_then(|mut state| {
            if state.pullable.contains(image) {
                state.images.insert(image.to_owned());
                Ok(())
            } else {
                Err(RuntimeError::Other(format!(
                    "pull access denied for {image}: no registry can be reached"
                )))
            }
        });
        let events = match result {
            Ok(()) => vec![
                Ok(PullEvent {
                    status: "Downloading".into(),
                    detail: "layer".into(),
                    percent: 50,
                }),
                Ok(PullEvent {
                    status: format!("Downloaded newer image for {image}"),
                    detail: String::new(),
                    percent: 100,
                }),
            ],
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(events).boxed()
    }
}
