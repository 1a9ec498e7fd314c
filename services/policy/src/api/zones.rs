//! Zones: where sessions may be placed.

use atrium_proto::policy::v1 as pb;
use atrium_service_kit::auth::{Principal, permissions};
use atrium_service_kit::{ApiError, ApiResult};
use serde_json::json;

use crate::convert;
use crate::core::Core;
use crate::entity::zone;
use crate::repo::Change;

fn change(principal: &Principal, kind: &'static str, z: &zone::Model) -> Change {
    Change::new(principal, kind, format!("zone:{}", z.id)).detail(json!({
        "name": z.name,
        "search_alternate_zones": z.search_alternate_zones,
        "load_strategy": z.load_strategy,
    }))
}

fn zone_row(z: &pb::Zone, id: String) -> ApiResult<zone::Model> {
    let strategy = match z.load_strategy.as_str() {
        "" | "least_loaded" => "least_loaded",
        "most_loaded" => "most_loaded",
        _ => {
            return Err(ApiError::invalid(
                "load_strategy",
                "must be least_loaded or most_loaded",
            ));
        }
    };
    Ok(zone::Model {
        id,
        name: convert::required_text("name", &z.name, 128)?,
        search_alternate_zones: z.search_alternate_zones,
        load_strategy: strategy.to_owned(),
    })
}

fn zone_to_proto(z: &zone::Model) -> pb::Zone {
    pb::Zone {
        id: z.id.clone(),
        name: z.name.clone(),
        search_alternate_zones: z.search_alternate_zones,
        load_strategy: z.load_strategy.clone(),
    }
}

pub async fn create_zone(core: &Core, principal: &Principal, req: pb::Zone) -> ApiResult<pb::Zone> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    let row = zone_row(&req, uuid::Uuid::now_v7().hyphenated().to_string())?;
    let change = change(principal, "zone.create", &row);
    core.repo.insert_zone(row.clone(), change).await?;
    Ok(zone_to_proto(&row))
}

pub async fn update_zone(core: &Core, principal: &Principal, req: pb::Zone) -> ApiResult<pb::Zone> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    let current = core.repo.zone(&convert::uuid("id", &req.id)?).await?;
    let row = zone_row(&req, current.id)?;
    let change = change(principal, "zone.update", &row);
    Ok(zone_to_proto(&core.repo.replace_zone(row, change).await?))
}

pub async fn delete_zone(
    core: &Core,
    principal: &Principal,
    req: pb::DeleteZoneRequest,
) -> ApiResult<pb::DeleteZoneResponse> {
    core.require(principal, permissions::ZONES_MODIFY).await?;
    let zone_id = convert::uuid("zone_id", &req.zone_id)?;
    let change = Change::new(principal, "zone.delete", format!("zone:{zone_id}"));
    core.repo.delete_zone(&zone_id, change).await?;
    Ok(pb::DeleteZoneResponse {})
}

pub async fn list_zones(
    core: &Core,
    principal: &Principal,
    _req: pb::ListZonesRequest,
) -> ApiResult<pb::ListZonesResponse> {
    core.require(principal, permissions::ZONES_VIEW).await?;
    Ok(pb::ListZonesResponse {
        zones: core.repo.zones().await?.iter().map(zone_to_proto).collect(),
    })
}
