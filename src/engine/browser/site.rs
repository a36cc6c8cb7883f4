//! The training sandbox's web site: what a `browser-check` drives in
//! training (and what the tests and the benchmark drive on loopback). It
//! looks like the admin of the site the reference drill restores: a login
//! form with a CSRF token in a hidden field and a cookie, a dashboard, the
//! Site object to update, a page editor that saves, an image upload that
//! reports the uploaded file's size, and a page that answers 500. It listens
//! on 127.0.0.1 only and keeps everything in memory.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The largest request body the site reads (an uploaded image).
const MAX_BODY: usize = 32 << 20;

/// Who may log in. `None`: any non-empty user name and password (training:
/// the trainee has no credentials for a site that does not exist).
#[derive(Clone, Default)]
pub struct SiteOptions {
    pub credentials: Option<(String, String)>,
}

/// A running site; stopped when dropped.
pub struct Site {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct State {
    csrf: HashSet<String>,
    sessions: HashSet<String>,
    site_name: String,
    pages: Vec<(String, String)>,
    uploads: Vec<(String, usize)>,
}

impl Site {
    /// Serves the site on 127.0.0.1, on a port the system picks.
    pub async fn start(options: SiteOptions) -> std::io::Result<Site> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State { site_name: "example.com".into(), ..State::default() }));
        let options = Arc::new(options);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, options) = (state.clone(), options.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (state, options) = (state.clone(), options.clone());
                        async move { Ok::<_, Infallible>(handle(request, &state, &options).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Site { addr, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(request: Request<Incoming>, state: &Mutex<State>, options: &SiteOptions) -> Reply {
    let (parts, body) = request.into_parts();
    let cookies = cookies(&parts.headers);
    let logged_in = cookies.get("sessionid").is_some_and(|id| lock(state).sessions.contains(id));
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return page(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "<p>The request is too large.</p>"),
    };
    let path = parts.uri.path();
    let post = parts.method == hyper::Method::POST;
    match path {
        "/" => redirect("/admin/"),
        "/error/" | "/admin/error/" => {
            page(StatusCode::INTERNAL_SERVER_ERROR, "Server Error (500)", "<h1>Server Error (500)</h1>")
        }
        "/admin/login/" if post => {
            let form = urlencoded(&body);
            let token = form.get("csrfmiddlewaretoken");
            let known = token.is_some_and(|t| lock(state).csrf.contains(t));
            if !known || cookies.get("csrftoken") != token {
                return page(
                    StatusCode::FORBIDDEN,
                    "403 Forbidden",
                    "<h1>Forbidden (403)</h1><p>CSRF verification failed. Request aborted.</p>",
                );
            }
            let user = form.get("username").map(String::as_str).unwrap_or_default();
            let password = form.get("password").map(String::as_str).unwrap_or_default();
            let accepted = match &options.credentials {
                Some((u, p)) => user == u && password == p,
                None => !user.is_empty() && !password.is_empty(),
            };
            if !accepted {
                return login_form(
                    state,
                    "<p class=\"errornote\">Please enter the correct username and password for a staff account.</p>",
                );
            }
            let session = uuid::Uuid::now_v7().simple().to_string();
            lock(state).sessions.insert(session.clone());
            let mut reply = redirect("/admin/");
            set_cookie(&mut reply, &format!("sessionid={session}; Path=/; HttpOnly"));
            reply
        }
        "/admin/login/" => login_form(state, ""),
        _ if !logged_in && path.starts_with("/admin/") => redirect("/admin/login/"),
        "/admin/" => {
            let state = lock(state);
            let pages: String = state.pages.iter().map(|(title, _)| format!("<li>{}</li>", esc(title))).collect();
            let uploads: String =
                state.uploads.iter().map(|(name, size)| format!("<li>{} ({size} bytes)</li>", esc(name))).collect();
            let content = format!(
                "<h1>Dashboard</h1><p>Site: <span id=\"site-name\">{}</span></p>\
                 <ul><li><a href=\"/admin/sites/site/1/change/\">Site</a></li>\
                 <li><a href=\"/admin/pages/add/\">Add page</a></li>\
                 <li><a href=\"/admin/images/add/\">Upload image</a></li></ul>\
                 <h2>Pages</h2><ul id=\"pages\">{pages}</ul><h2>Images</h2><ul id=\"images\">{uploads}</ul>",
                esc(&state.site_name)
            );
            page(StatusCode::OK, "Site administration", &content)
        }
        "/admin/sites/site/1/change/" if post => {
            let form = urlencoded(&body);
            let name = form.get("name").cloned().unwrap_or_default();
            lock(state).site_name = name.clone();
            page(
                StatusCode::OK,
                "Site saved",
                &format!("<p class=\"success\">The site “{}” was changed successfully.</p>", esc(&name)),
            )
        }
        "/admin/sites/site/1/change/" => {
            let name = lock(state).site_name.clone();
            page(
                StatusCode::OK,
                "Change site",
                &format!(
                    "<h1>Change site</h1><form method=\"post\"><label>Display name <input id=\"id_name\" name=\"name\" \
                     value=\"{}\"></label><button type=\"submit\">Save</button></form>",
                    esc(&name)
                ),
            )
        }
        "/admin/pages/add/" if post => {
            let form = urlencoded(&body);
            let title = form.get("title").cloned().unwrap_or_default();
            if title.trim().is_empty() {
                return page(StatusCode::OK, "Add page", "<p class=\"errornote\">This field is required.</p>");
            }
            lock(state).pages.push((title.clone(), form.get("body").cloned().unwrap_or_default()));
            page(
                StatusCode::OK,
                "Page saved",
                &format!("<p class=\"success\">The page “{}” was added successfully.</p>", esc(&title)),
            )
        }
        "/admin/pages/add/" => page(
            StatusCode::OK,
            "Add page",
            "<h1>Add page</h1><form method=\"post\"><label>Title <input id=\"id_title\" name=\"title\"></label>\
             <label>Body <textarea id=\"id_body\" name=\"body\"></textarea></label>\
             <button type=\"submit\">Save</button></form>",
        ),
        "/admin/images/add/" if post => {
            let content_type = parts.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            match content_type.and_then(|t| multipart_file(t, &body, "image")) {
                Some((name, size)) => {
                    lock(state).uploads.push((name.clone(), size));
                    page(
                        StatusCode::OK,
                        "Image uploaded",
                        &format!("<p class=\"success\" id=\"uploaded\">Uploaded {} ({size} bytes)</p>", esc(&name)),
                    )
                }
                None => page(StatusCode::BAD_REQUEST, "Upload image", "<p class=\"errornote\">No file was sent.</p>"),
            }
        }
        "/admin/images/add/" => page(
            StatusCode::OK,
            "Upload image",
            "<h1>Upload image</h1><form method=\"post\" enctype=\"multipart/form-data\">\
             <input type=\"file\" id=\"id_image\" name=\"image\"><button type=\"submit\">Upload</button></form>",
        ),
        _ => page(StatusCode::NOT_FOUND, "Not found", "<h1>Not Found</h1>"),
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic elsewhere left the lock poisoned; the data is still usable for a sandbox.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn login_form(state: &Mutex<State>, error: &str) -> Reply {
    let token = uuid::Uuid::now_v7().simple().to_string();
    lock(state).csrf.insert(token.clone());
    let content = format!(
        "<h1>Sandbox site administration</h1>{error}<form method=\"post\" id=\"login-form\">\
         <input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{token}\">\
         <label>Username <input id=\"id_username\" name=\"username\" autocomplete=\"off\"></label>\
         <label>Password <input type=\"password\" id=\"id_password\" name=\"password\" autocomplete=\"off\"></label>\
         <button type=\"submit\">Log in</button></form>"
    );
    let mut reply = page(StatusCode::OK, "Log in", &content);
    set_cookie(&mut reply, &format!("csrftoken={token}; Path=/; SameSite=Lax"));
    reply
}

fn page(status: StatusCode, title: &str, content: &str) -> Reply {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} | Sandbox site</title></head>\
         <body><div id=\"header\">Sandbox site (drillbook training)</div><div id=\"content\">{content}</div></body></html>"
    );
    let mut reply = Response::new(Full::new(Bytes::from(html)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/html; charset=utf-8"));
    reply
}

fn redirect(to: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::FOUND;
    if let Ok(location) = to.parse() {
        reply.headers_mut().insert(hyper::header::LOCATION, location);
    }
    reply
}

fn set_cookie(reply: &mut Reply, cookie: &str) {
    if let Ok(value) = cookie.parse() {
        reply.headers_mut().append(hyper::header::SET_COOKIE, value);
    }
}

fn cookies(headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `a=1&b=x+y` → its fields, percent-decoded.
fn urlencoded(body: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file named `field` in a `multipart/form-data` body: its file name and size.
fn multipart_file(content_type: &str, body: &[u8], field: &str) -> Option<(String, usize)> {
    let boundary = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary="))?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let parts = split_bytes(body, delimiter.as_bytes());
    for part in parts {
        let header_end = memchr::memmem::find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&part[..header_end]);
        if !headers.contains(&format!("name=\"{field}\"")) {
            continue;
        }
        let name =
            headers.split("filename=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_string();
        let content = &part[header_end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        if name.is_empty() && content.is_empty() {
            return None;
        }
        return Some((name, content.len()));
    }
    None
}

fn split_bytes<'a>(hay: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = hay;
    while let Some(at) = memchr::memmem::find(rest, needle) {
        parts.push(&rest[..at]);
        rest = &rest[at + needle.len()..];
    }
    parts.push(rest);
    parts.into_iter().filter(|p| !p.is_empty() && *p != b"--\r\n" && *p != b"--").collect()
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_uploads_are_read() {
        let form = urlencoded(b"username=ann&password=p%40ss+word&x=%zz");
        assert_eq!(form["password"], "p@ss word");
        assert_eq!(form["x"], "%zz");
        let body = b"--XYZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n12345\r\n--XYZ--\r\n";
        assert_eq!(multipart_file("multipart/form-data; boundary=XYZ", body, "image"), Some(("a.png".into(), 5)));
    }
}
