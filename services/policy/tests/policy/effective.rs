//! Effective policy and its explanation: priorities, ties, combined settings, defaults, and
//! changes taking effect at once.

use crate::common::{
    ALL_USERS_ID, Backend, Env, Kind, Outcome, both_backends, explained, json_of, kind, member, pb,
    ref_ids, setting,
};

both_backends!(
    strongest_group_wins_and_is_explained,
    equal_priorities_go_to_the_older_group,
    volume_mappings_are_combined,
    defaults_are_marked_as_defaults,
    changes_take_effect_at_once,
    concurrent_callers_share_one_resolution,
);

async fn strongest_group_wins_and_is_explained(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    // Created weakest first, so creation order and priority order disagree.
    let low = env.group("Low", 30).await;
    let mid = env.group("Mid", 20).await;
    let high = env.group("High", 10).await;
    for (group, n) in [(&low, 3), (&mid, 2), (&high, 1)] {
        env.add_member(&group.id, &user).await;
        env.set(&group.id, "max_kasms_per_user", Kind::IntValue(n))
            .await;
    }
    env.set(&mid.id, "keepalive_expiration", Kind::IntValue(60))
        .await;

    let policy = env.effective(&user).await;
    assert_eq!(policy.user_id, user);
    assert_eq!(
        kind(&setting(&policy, "max_kasms_per_user").value),
        Some(Kind::IntValue(1))
    );
    assert!(!setting(&policy, "max_kasms_per_user").is_default);
    assert_eq!(
        kind(&setting(&policy, "keepalive_expiration").value),
        Some(Kind::IntValue(60))
    );

    let explanation = env.explain(&user).await;
    assert_eq!(explanation.user_id, user);
    assert_eq!(
        ref_ids(&explanation.groups),
        vec![
            high.id.clone(),
            mid.id.clone(),
            low.id.clone(),
            ALL_USERS_ID.to_owned()
        ]
    );
    let kasms = explained(&explanation, "max_kasms_per_user");
    assert_eq!(kind(&kasms.value), Some(Kind::IntValue(1)));
    assert_eq!(ref_ids(&kasms.supplied_by), vec![high.id.clone()]);
    assert_eq!(kasms.supplied_by[0].name, "High");
    assert_eq!(kasms.supplied_by[0].priority, 10);
    let lost: Vec<(String, Option<Kind>)> = kasms
        .overridden
        .iter()
        .map(|o| (o.group.clone().unwrap_or_default().group_id, kind(&o.value)))
        .collect();
    assert_eq!(
        lost,
        vec![
            (mid.id.clone(), Some(Kind::IntValue(2))),
            (low.id.clone(), Some(Kind::IntValue(3))),
        ]
    );
    // The seeded All Users value lost to Mid.
    let keepalive = explained(&explanation, "keepalive_expiration");
    assert_eq!(ref_ids(&keepalive.supplied_by), vec![mid.id.clone()]);
    assert_eq!(keepalive.overridden.len(), 1);
    let seeded = &keepalive.overridden[0];
    assert_eq!(
        seeded.group.clone().unwrap_or_default().group_id,
        ALL_USERS_ID
    );
    assert_eq!(kind(&seeded.value), Some(Kind::IntValue(3600)));

    // The user reads the same explanation of their own policy.
    let mine = env
        .as_user(&user)
        .await
        .explain_effective_policy(pb::ResolveEffectivePolicyRequest::default())
        .await
        .must();
    assert_eq!(mine, explanation);
}

async fn equal_priorities_go_to_the_older_group(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    // The older group sorts last by name, so only age can make it win.
    let older = env.group("Zeta", 50).await;
    let newer = env.group("Alpha", 50).await;
    // Joined and set newest first, so neither order gives the answer away.
    env.add_member(&newer.id, &user).await;
    env.add_member(&older.id, &user).await;
    env.set(&newer.id, "max_kasms_per_user", Kind::IntValue(8))
        .await;
    env.set(&older.id, "max_kasms_per_user", Kind::IntValue(7))
        .await;

    assert_eq!(
        env.value(&user, "max_kasms_per_user").await,
        Some(Kind::IntValue(7))
    );
    let explanation = env.explain(&user).await;
    let kasms = explained(&explanation, "max_kasms_per_user");
    assert_eq!(ref_ids(&kasms.supplied_by), vec![older.id.clone()]);
    assert_eq!(kasms.overridden.len(), 1);
    assert_eq!(
        kasms.overridden[0]
            .group
            .clone()
            .unwrap_or_default()
            .group_id,
        newer.id
    );
    assert_eq!(
        ref_ids(&explanation.groups)[..2],
        [older.id.clone(), newer.id.clone()]
    );
    assert_eq!(env.user_groups(&user).await[..2], [older.id, newer.id]);
}

async fn volume_mappings_are_combined(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, _) = env.user().await;
    let strong = env.group("Strong", 10).await;
    let weak = env.group("Weak", 20).await;
    let outsider = env.group("Outsider", 1).await;
    env.add_member(&strong.id, &user).await;
    env.add_member(&weak.id, &user).await;
    env.set(
        &strong.id,
        "volume_mapping",
        Kind::JsonValue(
            serde_json::json!({
                "/data/a": {"bind": "/mnt/a", "mode": "rw"},
                "/shared": {"bind": "/mnt/strong", "mode": "ro"},
            })
            .to_string(),
        ),
    )
    .await;
    env.set(
        &weak.id,
        "volume_mapping",
        Kind::JsonValue(
            serde_json::json!({
                "/data/b": {"bind": "/mnt/b", "mode": "ro"},
                "/shared": {"bind": "/mnt/weak", "mode": "rw"},
            })
            .to_string(),
        ),
    )
    .await;
    // A group the user is not in contributes nothing.
    env.set(
        &outsider.id,
        "volume_mapping",
        Kind::JsonValue(serde_json::json!({"/secret": {"bind": "/s", "mode": "rw"}}).to_string()),
    )
    .await;

    let combined = json_of(&env.value(&user, "volume_mapping").await);
    assert_eq!(
        combined,
        serde_json::json!({
            "/data/a": {"bind": "/mnt/a", "mode": "rw"},
            "/data/b": {"bind": "/mnt/b", "mode": "ro"},
            "/shared": {"bind": "/mnt/strong", "mode": "ro"},
        })
    );
    let explanation = env.explain(&user).await;
    let volumes = explained(&explanation, "volume_mapping");
    assert!(!volumes.is_default);
    assert_eq!(
        ref_ids(&volumes.supplied_by),
        vec![strong.id.clone(), weak.id.clone()]
    );
    assert_eq!(volumes.overridden.len(), 1);
    let lost = &volumes.overridden[0];
    assert_eq!(lost.group.clone().unwrap_or_default().group_id, weak.id);
    assert_eq!(
        json_of(&kind(&lost.value)),
        serde_json::json!({"/shared": {"bind": "/mnt/weak", "mode": "rw"}})
    );
}

async fn defaults_are_marked_as_defaults(backend: Backend) {
    let env = Env::start(backend).await;
    let (user, client) = env.user().await;
    let policy = client
        .clone()
        .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
        .await
        .must();
    // Every catalogued setting, in catalogue order.
    let catalogue: Vec<String> = client
        .clone()
        .list_setting_definitions(pb::ListSettingDefinitionsRequest {})
        .await
        .must()
        .settings
        .into_iter()
        .map(|d| d.name)
        .collect();
    let names: Vec<String> = policy.settings.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, catalogue);

    let kasms = setting(&policy, "max_kasms_per_user");
    assert_eq!(kind(&kasms.value), Some(Kind::IntValue(5)));
    assert!(kasms.is_default);
    let admin = setting(&policy, "administrator");
    assert_eq!(kind(&admin.value), Some(Kind::BoolValue(false)));
    assert!(admin.is_default);
    let usage = setting(&policy, "usage_limit");
    assert_eq!(usage.value, None);
    assert!(usage.is_default);
    // Seeded in All Users: not a default.
    let audio = setting(&policy, "allow_kasm_audio");
    assert_eq!(kind(&audio.value), Some(Kind::BoolValue(true)));
    assert!(!audio.is_default);

    let explanation = env.explain(&user).await;
    assert_eq!(ref_ids(&explanation.groups), vec![ALL_USERS_ID.to_owned()]);
    let kasms = explained(&explanation, "max_kasms_per_user");
    assert!(kasms.is_default);
    assert!(kasms.supplied_by.is_empty());
    assert!(kasms.overridden.is_empty());
    let audio = explained(&explanation, "allow_kasm_audio");
    assert_eq!(ref_ids(&audio.supplied_by), vec![ALL_USERS_ID.to_owned()]);

    // The administrator's administrator flag comes from Administrators.
    let admin = env.explain(&env.admin_id).await;
    let flag = explained(&admin, "administrator");
    assert_eq!(kind(&flag.value), Some(Kind::BoolValue(true)));
    assert_eq!(flag.supplied_by[0].name, "Administrators");
}

async fn changes_take_effect_at_once(backend: Backend) {
    // A long cache TTL: only invalidation can make changes visible in time.
    let env = Env::start_with(backend, |config| config.cache_ttl_ms = 60_000).await;
    let (user, client) = env.user().await;
    let own = || {
        let mut client = client.clone();
        async move {
            let policy = client
                .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
                .await
                .must();
            kind(&setting(&policy, "max_kasms_per_user").value)
        }
    };
    let first = env.group("First", 10).await;
    let second = env.group("Second", 20).await;
    assert_eq!(own().await, Some(Kind::IntValue(5)));

    env.set(&first.id, "max_kasms_per_user", Kind::IntValue(1))
        .await;
    env.set(&second.id, "max_kasms_per_user", Kind::IntValue(2))
        .await;
    assert_eq!(own().await, Some(Kind::IntValue(5)), "not a member yet");

    env.add_member(&second.id, &user).await;
    assert_eq!(own().await, Some(Kind::IntValue(2)), "membership added");
    env.add_member(&first.id, &user).await;
    assert_eq!(own().await, Some(Kind::IntValue(1)), "stronger membership");

    env.set(&first.id, "max_kasms_per_user", Kind::IntValue(3))
        .await;
    assert_eq!(own().await, Some(Kind::IntValue(3)), "setting changed");

    env.set_priority(&second.id, 5).await;
    assert_eq!(own().await, Some(Kind::IntValue(2)), "priority changed");

    env.unset(&second.id, "max_kasms_per_user").await;
    assert_eq!(own().await, Some(Kind::IntValue(3)), "setting unset");

    env.admin()
        .remove_group_member(member(&first.id, &user))
        .await
        .must();
    assert_eq!(own().await, Some(Kind::IntValue(5)), "membership removed");

    env.add_member(&first.id, &user).await;
    assert_eq!(own().await, Some(Kind::IntValue(3)));
    env.admin()
        .delete_group(pb::DeleteGroupRequest {
            group_id: first.id.clone(),
        })
        .await
        .must();
    assert_eq!(own().await, Some(Kind::IntValue(5)), "group deleted");

    // Permissions are cached with the policy: a grant opens the door at once.
    client
        .clone()
        .list_zones(pb::ListZonesRequest {})
        .await
        .fails(crate::common::Code::PermissionDenied);
    env.grant(&second.id, "zones.view").await;
    client
        .clone()
        .list_zones(pb::ListZonesRequest {})
        .await
        .must();
    env.admin()
        .revoke_permission(crate::common::permission_request(&second.id, "zones.view"))
        .await
        .must();
    client
        .clone()
        .list_zones(pb::ListZonesRequest {})
        .await
        .fails(crate::common::Code::PermissionDenied);
}

async fn concurrent_callers_share_one_resolution(backend: Backend) {
    let env = Env::start_with(backend, |config| config.cache_ttl_ms = 60_000).await;
    let (_, client) = env.user().await;
    let group = env.group("Busy", 10).await;
    env.set(&group.id, "max_kasms_per_user", Kind::IntValue(4))
        .await;
    // A write empties the cache; 50 callers then miss together.
    let before = env.server.core.cache.resolutions();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .resolve_effective_policy(pb::ResolveEffectivePolicyRequest::default())
                    .await
                    .must()
            })
        })
        .collect();
    for call in calls {
        let policy = call.await.unwrap();
        assert_eq!(
            kind(&setting(&policy, "max_kasms_per_user").value),
            Some(Kind::IntValue(5)),
            "not a member: the default"
        );
    }
    assert_eq!(env.server.core.cache.resolutions() - before, 1);
}
