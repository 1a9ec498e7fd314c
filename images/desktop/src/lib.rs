//! The desktop workspace image: a recipe (`images/desktop/recipe/`, embedded here) that builds a
//! Debian root file system with `debootstrap`, installs TigerVNC's Xvnc, the JWM window
//! manager, xterm, noVNC's web files and websockify, and `docker import`s it; and the builder
//! behind `atrium image build-desktop`, which labels the image with a hash of the recipe and
//! skips the build when an image with that hash exists. The image speaks Kasm's protocol:
//! HTTPS on 6901, basic auth `kasm_user:$VNC_PW` on the page and the WebSocket, uid 1000.
//!
//! What does not belong here: running sessions (the agent does that), the demo image
//! (`atrium-workspace`), and anything that needs a container registry.

mod builder;
pub mod recipe;

pub use builder::{
    BuildError, BuildOptions, BuiltImage, DEFAULT_CACHE_DIR, build_image, effective_uid, which,
};
pub use recipe::{DEFAULT_TAG, DESKTOP_LABEL, RECIPE_LABEL, Recipe};
