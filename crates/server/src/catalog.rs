//! `daojia.v1.Catalog`: the service catalogue built into the binary and the vocabularies other
//! calls use (categories, units, skills, review tags). Every authenticated role may read it;
//! it needs no event store.

use daojia_domain::{Catalog, Category, PricingUnit, ServiceType};
use tonic::{Request, Response, Status};

use crate::interceptor::caller;
use crate::pb;
use crate::status::ApiError;

/// The `daojia.v1.Catalog` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatalogService;

/// The review tags the API accepts, in enum order.
pub const REVIEW_TAGS: [pb::ReviewTag; 7] = [
    pb::ReviewTag::Late,
    pb::ReviewTag::ToolsNotDisinfected,
    pb::ReviewTag::Careless,
    pb::ReviewTag::Rude,
    pb::ReviewTag::Excellent,
    pb::ReviewTag::Punctual,
    pb::ReviewTag::Professional,
];

fn service_view(service: &ServiceType) -> pb::CatalogService {
    pb::CatalogService {
        code: service.code.to_string(),
        category: service.category.key().to_owned(),
        name_zh: service.name_zh.clone(),
        name_en: service.name_en.clone(),
        unit: service.unit.as_str().to_owned(),
        unit_price_fen: service.base_price.0,
        max_quantity: service.unit.max_quantity(),
        required_certificates: service
            .certificates
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        typical_minutes: service.typical_duration.0,
    }
}

/// The reply to `ListServices` for `category` (empty for all).
pub fn list_services(category: &str) -> Result<pb::ListServicesReply, ApiError> {
    let only = if category.is_empty() {
        None
    } else {
        let keys: Vec<&str> = Category::ALL.iter().map(|c| c.key()).collect();
        Some(category.parse::<Category>().map_err(|()| {
            ApiError::invalid_field(
                "category",
                format!(
                    "unknown category {:?}: one of {}, or empty for all",
                    category.chars().take(40).collect::<String>(),
                    keys.join(", ")
                ),
            )
        })?)
    };
    let catalog = Catalog::builtin()?;
    Ok(pb::ListServicesReply {
        services: catalog
            .services()
            .iter()
            .filter(|s| only.is_none_or(|c| s.category == c))
            .map(service_view)
            .collect(),
        categories: Category::ALL
            .iter()
            .map(|c| pb::CatalogCategory {
                key: c.key().to_owned(),
                name_zh: c.name_zh().to_owned(),
                name_en: c.name_en().to_owned(),
            })
            .collect(),
        skills: catalog
            .skills()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        units: PricingUnit::ALL
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        review_tags: REVIEW_TAGS.iter().map(|t| *t as i32).collect(),
    })
}

#[tonic::async_trait]
impl pb::catalog_server::Catalog for CatalogService {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesReply>, Status> {
        // Any authenticated role: the catalogue is public reference data.
        caller(&request)?;
        Ok(Response::new(list_services(
            &request.into_inner().category,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_is_listed_and_a_category_filters() {
        let all = list_services("").unwrap();
        assert_eq!(all.services.len(), 48);
        assert_eq!(all.categories.len(), 6);
        let elder = list_services("eldercare").unwrap();
        assert!(!elder.services.is_empty());
        assert!(elder.services.iter().all(|s| s.category == "eldercare"));
        match list_services("elder") {
            Err(ApiError::InvalidArgument(v)) => assert_eq!(v[0].field, "category"),
            other => panic!("{other:?}"),
        }
    }
}
