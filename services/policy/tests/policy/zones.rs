//! Zones: create, rename, list, and no deleting a zone a workspace uses.

use crate::common::{Backend, Code, Env, Outcome, both_backends, pb, stranger, workspace};

both_backends!(zones_are_managed_and_protected_while_used);

async fn zones_are_managed_and_protected_while_used(backend: Backend) {
    let env = Env::start(backend).await;
    let zone = |name: &str, strategy: &str| pb::Zone {
        id: String::new(),
        name: name.into(),
        search_alternate_zones: true,
        load_strategy: strategy.into(),
    };
    let west = env.admin().create_zone(zone("west", "")).await.must();
    assert_eq!(west.load_strategy, "least_loaded");
    assert!(west.search_alternate_zones);
    let east = env
        .admin()
        .create_zone(zone("east", "most_loaded"))
        .await
        .must();
    env.admin()
        .create_zone(zone("west", ""))
        .await
        .fails(Code::AlreadyExists);
    env.admin()
        .create_zone(zone("north", "random"))
        .await
        .invalid("load_strategy");
    env.admin().create_zone(zone(" ", "")).await.invalid("name");
    let listed = env
        .admin()
        .list_zones(pb::ListZonesRequest {})
        .await
        .must()
        .zones;
    assert_eq!(listed, vec![east.clone(), west.clone()]);

    let mut renamed = west.clone();
    renamed.name = "far west".into();
    renamed.search_alternate_zones = false;
    let updated = env.admin().update_zone(renamed.clone()).await.must();
    assert_eq!(updated, renamed);
    let mut clash = east.clone();
    clash.name = "far west".into();
    env.admin()
        .update_zone(clash)
        .await
        .fails(Code::AlreadyExists);
    let mut ghost = east.clone();
    ghost.id = stranger();
    env.admin().update_zone(ghost).await.fails(Code::NotFound);

    let mut pinned = workspace("kasmweb/pinned:1.0");
    pinned.zone_id = west.id.clone();
    let ws = env
        .admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(pinned),
            assign_to_all_users: None,
        })
        .await
        .must();
    assert_eq!(ws.zone_id, west.id);
    let status = env
        .admin()
        .delete_zone(pb::DeleteZoneRequest {
            zone_id: west.id.clone(),
        })
        .await
        .fails(Code::FailedPrecondition);
    assert!(status.message().contains(&ws.id), "{status:?}");
    // Still there.
    assert_eq!(
        env.admin()
            .list_zones(pb::ListZonesRequest {})
            .await
            .must()
            .zones
            .len(),
        2
    );

    let mut unpinned = ws.clone();
    unpinned.zone_id = String::new();
    env.admin()
        .update_workspace(pb::UpdateWorkspaceRequest {
            workspace: Some(unpinned),
        })
        .await
        .must();
    env.admin()
        .delete_zone(pb::DeleteZoneRequest {
            zone_id: west.id.clone(),
        })
        .await
        .must();
    assert_eq!(
        env.admin()
            .list_zones(pb::ListZonesRequest {})
            .await
            .must()
            .zones,
        vec![east]
    );
    env.admin()
        .delete_zone(pb::DeleteZoneRequest {
            zone_id: west.id.clone(),
        })
        .await
        .fails(Code::NotFound);

    let (_, client) = env.user().await;
    client
        .clone()
        .create_zone(zone("mine", ""))
        .await
        .fails(Code::PermissionDenied);
    client
        .clone()
        .list_zones(pb::ListZonesRequest {})
        .await
        .fails(Code::PermissionDenied);
}
