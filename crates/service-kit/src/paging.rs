//! Paging helpers for List calls: page-size validation and opaque keyset page tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page request: how many rows, and the key to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub size: u64,
    pub after: Option<String>,
}

impl Page {
    /// Validates `page_size` (0 = default, max 1000) and decodes `page_token`.
    pub fn from_request(
        request: Option<&atrium_proto::common::v1::PageRequest>,
    ) -> Result<Self, ApiError> {
        let (size, token) = request
            .map(|p| (p.page_size, p.page_token.as_str()))
            .unwrap_or((0, ""));
        let size = match size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(ApiError::invalid(
                    "page.page_size",
                    format!("must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        };
        let after = if token.is_empty() {
            None
        } else {
            let bytes = B64.decode(token).map_err(|_| {
                ApiError::invalid("page.page_token", "is not a token this service issued")
            })?;
            Some(String::from_utf8(bytes).map_err(|_| {
                ApiError::invalid("page.page_token", "is not a token this service issued")
            })?)
        };
        Ok(Self {
            size: u64::from(size),
            after,
        })
    }

    /// Fetch this many rows: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Trims `rows` to the page and builds the response, keyed by `key` of the last row kept.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, atrium_proto::common::v1::PageResponse) {
        let more = rows.len() as u64 > self.size;
        rows.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => B64.encode(key(last)),
            _ => String::new(),
        };
        (
            rows,
            atrium_proto::common::v1::PageResponse { next_page_token },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atrium_proto::common::v1::PageRequest;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(Page::from_request(None).map(|p| p.size).ok(), Some(50));
        let too_big = PageRequest {
            page_size: 1001,
            page_token: String::new(),
        };
        let err = Page::from_request(Some(&too_big))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("page.page_size"), "{err}");
        let bad = PageRequest {
            page_size: 2,
            page_token: "!!".into(),
        };
        assert!(Page::from_request(Some(&bad)).is_err());
        let page = Page::from_request(Some(&PageRequest {
            page_size: 2,
            page_token: String::new(),
        }))
        .expect("page");
        let (rows, resp) = page.finish(vec![1, 2, 3], |n| n.to_string());
        assert_eq!(rows, vec![1, 2]);
        let next = Page::from_request(Some(&PageRequest {
            page_size: 2,
            page_token: resp.next_page_token,
        }))
        .expect("next");
        assert_eq!(next.after.as_deref(), Some("2"));
        let (_, last) = next.finish(vec![3], |n| n.to_string());
        assert!(last.next_page_token.is_empty());
    }
}
