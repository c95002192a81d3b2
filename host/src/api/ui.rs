//! The web page: the static files of `host/ui/` (plain HTML, CSS and ES modules, no build
//! step), embedded in the binary when it is compiled, so a host serves its page with nothing
//! beside it and `just run` needs no Node.js.
//!
//! Every answer carries an ETag (the file's sha256) and `Cache-Control: no-cache`: a browser
//! keeps its copy but asks each time, and a 304 costs a few bytes. File names carry no hash
//! (there is no build step to add one), so a longer `max-age` could serve an old `app.js` with
//! a new `index.html` after an upgrade.

use super::error::ApiError;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// `debug-embed` makes debug builds embed the files too: the binary the tests run serves
/// exactly what a release would, never files read from the source tree.
#[derive(Embed)]
#[folder = "ui/"]
struct Assets;

/// Same origin only: the page talks to this host and nothing else. Without inline scripts or
/// styles, an injected `<script>` in a task title could not run even if one were rendered as
/// HTML (the page only ever sets text).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{path}`: its scripts, styles and icons.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found(format!("no such file: /ui/{path}")).into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header value"),
    );
    if path.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mime = file.metadata.mimetype();
    // Text types without a charset are read as windows-1252 by some browsers.
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("a mime type is a valid header value"),
    );
    (headers, file.data.into_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(tag) = if_none_match {
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(tag).unwrap());
        }
        serve(path, &headers)
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers()[name].to_str().unwrap()
    }

    #[test]
    fn serves_the_page_with_its_type_policy_and_etag() {
        let page = get("index.html", None);
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            header_of(&page, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(header_of(&page, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        assert_eq!(header_of(&page, header::CACHE_CONTROL), "no-cache");

        let script = get("app.js", None);
        assert!(header_of(&script, header::CONTENT_TYPE).contains("javascript"));
        let css = get("style.css", None);
        assert_eq!(
            header_of(&css, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );
    }

    #[test]
    fn answers_304_to_a_matching_etag_and_404_to_an_unknown_file() {
        let etag = header_of(&get("app.js", None), header::ETAG).to_owned();
        assert_eq!(
            get("app.js", Some(&etag)).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(get("app.js", Some("\"stale\"")).status(), StatusCode::OK);
        assert_eq!(get("../Cargo.toml", None).status(), StatusCode::NOT_FOUND);
        assert_eq!(get("nope.js", None).status(), StatusCode::NOT_FOUND);
    }
}
