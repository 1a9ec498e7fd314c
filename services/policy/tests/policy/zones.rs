//! Zones: create, rename, list, and no deleting a zone a workspace uses.

use crate::common::{Backend, Code, Env, Outcome, both_backends, pb, stranger, workspace};

both_backends!(
    zones_are_managed_and_protected_while_used,
    a_zone_is_never_deleted_under_a_new_workspace,
);

/// Deleting a zone while workspaces are being pointed at it: each race ends with either the
/// zone kept (and used) or the workspace refused, never a workspace in a zone that is gone.
async fn a_zone_is_never_deleted_under_a_new_workspace(backend: Backend) {
    let env = Env::start(backend).await;
    let (mut deleted, mut refused) = (0, 0);
    for round in 0..20 {
        let zone = env
            .admin()
            .create_zone(pb::Zone {
                name: format!("zone-{round}"),
                ..Default::default()
            })
            .await
            .must();
        let mut pinned = workspace(&format!("kasmweb/race-{round}:1.0"));
        pinned.zone_id = zone.id.clone();
        let (mut a, mut b) = (env.admin(), env.admin());
        let (created, removed) = tokio::join!(
            a.create_workspace(pb::CreateWorkspaceRequest {
                workspace: Some(pinned),
                assign_to_all_users: None,
            }),
            b.delete_zone(pb::DeleteZoneRequest {
                zone_id: zone.id.clone(),
            }),
        );
        match (created, removed) {
            (Ok(_), Err(status)) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                refused += 1;
            }
            (Err(_), Ok(_)) => {
                created_in_gone_zone_is_refused(&env, &zone.id).await;
                deleted += 1;
            }
            (created, removed) => panic!("round {round}: {created:?} / {removed:?}"),
        }
        assert_eq!(
            env.count("workspaces", "zone_id", &zone.id).await,
            i64::from(removed_kept(&env, &zone.id).await),
            "round {round}: workspaces in the zone"
        );
    }
    assert_eq!(deleted + refused, 20);
}

/// A workspace refused because its zone went away says so on the field.
async fn created_in_gone_zone_is_refused(env: &Env, zone_id: &str) {
    let mut late = workspace("kasmweb/late:1.0");
    late.zone_id = zone_id.into();
    env.admin()
        .create_workspace(pb::CreateWorkspaceRequest {
            workspace: Some(late),
            assign_to_all_users: None,
        })
        .await
        .invalid("workspace.zone_id");
}

/// 1 if the zone still exists, else 0.
async fn removed_kept(env: &Env, zone_id: &str) -> i32 {
    let zones = env.admin().list_zones(pb::ListZonesRequest {}).await.must();
    i32::from(zones.zones.iter().any(|z| z.id == zone_id))
}

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
