//! [`ContainerRuntime`] on a Docker Engine, through bollard. The API version is negotiated on
//! first use, so the agent starts (and reports itself unhealthy) while the engine is down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptions, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::sync::OnceCell;

use super::convert::{from_inspect, from_summary, image_reference, pull_event};
use super::{
    ContainerInfo, ContainerRuntime, ContainerSpec, EXEC_OUTPUT_LIMIT, ExecOutput, ExecSpec,
    FileEntry, ImageInfo, NodeInfo, PullEvent, RuntimeError, RuntimeResult, archive,
};

/// Requests (a pull included) give up after this long.
const REQUEST_TIMEOUT_SECS: u64 = 900;

#[derive(Clone)]
pub struct DockerRuntime {
    host: Arc<str>,
    tls: Option<crate::config::DockerTls>,
    client: Arc<OnceCell<Docker>>,
    exec_timeout: Duration,
}

impl DockerRuntime {
    /// Does not dial: the engine may come up after the agent.
    /// The engine at `host`: a unix socket, or TLS (`tcp://`/`https://` with `tls`). Plain
    /// TCP is refused: whoever reaches an unencrypted Docker port owns the node.
    pub fn connect(
        host: &str,
        tls: Option<&crate::config::DockerTls>,
        exec_timeout: Duration,
    ) -> anyhow::Result<Self> {
        if !crate::config::docker_host_is_secure(host, tls.is_some()) {
            anyhow::bail!(
                "docker_host {host}: must be unix:///path, or tcp:// / https:// with docker_tls"
            );
        }
        Ok(Self {
            tls: tls.cloned(),
            host: host.into(),
            client: Arc::new(OnceCell::new()),
            exec_timeout,
        })
    }

    /// The client, connected and speaking the engine's API version.
    async fn client(&self) -> RuntimeResult<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let version = bollard::API_DEFAULT_VERSION;
                let docker = match (self.host.strip_prefix("unix://"), &self.tls) {
                    (Some(path), _) => {
                        Docker::connect_with_socket(path, REQUEST_TIMEOUT_SECS, version)
                    }
                    (None, Some(tls)) => {
                        // bollard's TLS client takes the process-wide rustls provider.
                        let _ = rustls::crypto::ring::default_provider().install_default();
                        Docker::connect_with_ssl(
                            &self.host,
                            &tls.key,
                            &tls.cert,
                            &tls.ca,
                            REQUEST_TIMEOUT_SECS,
                            version,
                        )
                    }
                    (None, None) => {
                        return Err(RuntimeError::Unavailable(
                            "docker_host is neither a unix socket nor TLS".into(),
                        ));
                    }
                }
                .map_err(|e| unavailable(&e))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| unavailable(&e))
            })
            .await
    }

    /// Reads files back out of a container (tests check modes and contents this way).
    pub async fn download(&self, id: &str, path: &str) -> RuntimeResult<Vec<FileEntry>> {
        let docker = self.client().await?;
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let chunks: Vec<bytes::Bytes> = docker
            .download_from_container(id, Some(options))
            .try_collect()
            .await
            .map_err(|e| map_error(e, id))?;
        let archive = chunks.concat();
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        archive::unpack(&archive, parent).map_err(|e| RuntimeError::Other(e.to_string()))
    }

    async fn upload(&self, id: &str, files: &[FileEntry]) -> RuntimeResult<()> {
        let archive = archive::pack(files).map_err(|e| RuntimeError::Rejected(e.to_string()))?;
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.client()
            .await?
            .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|e| map_error(e, id))
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn node_info(&self) -> RuntimeResult<NodeInfo> {
        let docker = self.client().await?;
        let info = docker.info().await.map_err(|e| unavailable(&e))?;
        Ok(NodeInfo {
            cpus: info.ncpu.unwrap_or(0) as f64,
            memory_bytes: info.mem_total.unwrap_or(0),
            version: info.server_version.unwrap_or_default(),
        })
    }

    async fn create(&self, spec: &ContainerSpec) -> RuntimeResult<String> {
        let docker = self.client().await?;
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = docker
            .create_container(Some(options), spec.body.clone())
            .await
            .map_err(|e| match map_error(e, &spec.name) {
                RuntimeError::NoSuchContainer(message) => RuntimeError::NoSuchImage(message),
                other => other,
            })?;
        if !spec.files.is_empty()
            && let Err(e) = self.upload(&created.id, &spec.files).await
        {
            if let Err(cleanup) = self.remove(&created.id).await {
                tracing::warn!(container = %created.id, error = %cleanup, "could not remove a half-created container");
            }
            return Err(e);
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        let docker = self.client().await?;
        docker
            .start_container(id, None)
            .await
            .map_err(|e| map_error(e, id))
    }

    async fn stop(&self, id: &str, timeout_secs: u32) -> RuntimeResult<()> {
        let docker = self.client().await?;
        let t = i32::try_from(timeout_secs).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(t).build();
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| map_error(e, id))
    }

    async fn pause(&self, id: &str) -> RuntimeResult<()> {
        let docker = self.client().await?;
        docker
            .pause_container(id)
            .await
            .map_err(|e| map_error(e, id))
    }

    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        let docker = self.client().await?;
        docker
            .unpause_container(id)
            .await
            .map_err(|e| map_error(e, id))
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        let docker = self.client().await?;
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        docker
            .remove_container(id, Some(options))
            .await
            .map_err(|e| map_error(e, id))
    }

    async fn inspect(&self, id_or_name: &str) -> RuntimeResult<Option<ContainerInfo>> {
        let docker = self.client().await?;
        match docker.inspect_container(id_or_name, None).await {
            Ok(inspected) => Ok(Some(from_inspect(inspected))),
            Err(e) => match map_error(e, id_or_name) {
                RuntimeError::NoSuchContainer(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, labels: &[(&str, &str)]) -> RuntimeResult<Vec<ContainerInfo>> {
        let docker = self.client().await?;
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let filters = HashMap::from([("label", wanted)]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let found = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| map_error(e, "containers"))?;
        Ok(found.into_iter().map(from_summary).collect())
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> RuntimeResult<ExecOutput> {
        let docker = self.client().await?;
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.clone()),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            privileged: Some(spec.privileged),
            ..Default::default()
        };
        let created = docker
            .create_exec(id, config)
            .await
            .map_err(|e| map_error(e, id))?;
        let run = async {
            let started = docker
                .start_exec(&created.id, None::<StartExecOptions>)
                .await
                .map_err(|e| map_error(e, id))?;
            let mut output = Vec::new();
            let mut truncated = false;
            if let StartExecResults::Attached {
                output: mut out, ..
            } = started
            {
                while let Some(chunk) = out.next().await {
                    let bytes = match chunk.map_err(|e| map_error(e, id))? {
                        LogOutput::StdOut { message }
                        | LogOutput::StdErr { message }
                        | LogOutput::Console { message } => message,
                        LogOutput::StdIn { .. } => continue,
                    };
                    let room = EXEC_OUTPUT_LIMIT.saturating_sub(output.len());
                    truncated |= bytes.len() > room;
                    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            Ok::<_, RuntimeError>((output, truncated))
        };
        let (output, truncated) = tokio::time::timeout(self.exec_timeout, run)
            .await
            .map_err(|_| {
                RuntimeError::Timeout(format!("exec still running after {:?}", self.exec_timeout))
            })??;
        let inspected = docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| map_error(e, id))?;
        let mut text = String::from_utf8_lossy(&output).into_owned();
        if truncated {
            text.push_str("\n[output truncated]");
        }
        Ok(ExecOutput {
            exit_code: inspected.exit_code.unwrap_or(-1),
            output: text,
        })
    }

    async fn list_images(&self) -> RuntimeResult<Vec<ImageInfo>> {
        let docker = self.client().await?;
        let images = docker
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|e| map_error(e, "images"))?;
        Ok(images
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                size_bytes: i.size,
            })
            .collect())
    }

    fn pull(&self, image: &str) -> BoxStream<'static, RuntimeResult<PullEvent>> {
        let this = self.clone();
        let (from_image, tag) = image_reference(image);
        let image = image.to_owned();
        let stream = async_stream(move || async move {
            let docker = this.client().await?.clone();
            let mut options = CreateImageOptionsBuilder::new().from_image(&from_image);
            if let Some(tag) = &tag {
                options = options.tag(tag);
            }
            Ok(docker
                .create_image(Some(options.build()), None, None)
                .map(move |step| step.map(pull_event).map_err(|e| map_error(e, &image))))
        });
        stream.boxed()
    }
}

/// A stream produced by an async set-up step (which may fail) followed by the stream it
/// returns.
fn async_stream<F, Fut, S>(setup: F) -> impl futures::Stream<Item = RuntimeResult<PullEvent>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = RuntimeResult<S>>,
    S: futures::Stream<Item = RuntimeResult<PullEvent>>,
{
    futures::stream::once(setup()).flat_map(|result| match result {
        Ok(stream) => stream.left_stream(),
        Err(e) => futures::stream::iter([Err(e)]).right_stream(),
    })
}

fn unavailable(e: &BollardError) -> RuntimeError {
    RuntimeError::Unavailable(e.to_string())
}

fn map_error(e: BollardError, what: &str) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            404 => RuntimeError::NoSuchContainer(format!("{what}: {message}")),
            409 => RuntimeError::Conflict(message),
            400 => RuntimeError::Rejected(message),
            _ => RuntimeError::Other(format!("{status_code}: {message}")),
        },
        BollardError::DockerStreamError { error } => RuntimeError::Other(error),
        BollardError::RequestTimeoutError => RuntimeError::Timeout(what.to_owned()),
        BollardError::IOError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::SocketNotFoundError(_) => unavailable(&e),
        other => RuntimeError::Other(other.to_string()),
    }
}
