//! A small Chrome DevTools Protocol client, to drive a real page in headless Chromium the way a
//! person would: open a URL, type into fields, press buttons, wait for what the page shows, and
//! take a screenshot of each step.
//!
//! The browser is [`Browser`] (same flags, same SPKI pinning and host mapping, same log file)
//! started with `--remote-debugging-port=0`: Chromium picks a free port and writes
//! `DevTools listening on ws://127.0.0.1:PORT/devtools/browser/...` to its log, which is how
//! this client finds it. The page target's WebSocket comes from `GET /json/list`; the protocol is
//! plain JSON over a blocking WebSocket ([`tungstenite`]) to 127.0.0.1.
//!
//! Every call is bounded by a timeout and returns a [`CdpError`] (with the tail of Chromium's
//! log and the page's recent console messages) rather than hanging or panicking, so a failing
//! end-to-end test says what the page was doing.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::browser::{Browser, BrowserOptions, browser_available};

/// Default bound of one protocol call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Granularity of the socket reads (how often deadlines are checked).
const READ_SLICE: Duration = Duration::from_millis(100);
/// How many page messages are kept.
const CONSOLE_KEEP: usize = 500;

/// What went wrong, with what the browser said meanwhile.
#[derive(Debug, Clone)]
pub struct CdpError {
    /// What failed.
    pub message: String,
    /// The last lines of Chromium's log.
    pub log_tail: String,
    /// The page's last console messages, exceptions and log entries.
    pub console_tail: Vec<String>,
}

impl fmt::Display for CdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.console_tail.is_empty() {
            write!(
                f,
                "\n--- page messages ---\n{}",
                self.console_tail.join("\n")
            )?;
        }
        if !self.log_tail.is_empty() {
            write!(f, "\n--- Chromium log tail ---\n{}", self.log_tail)?;
        }
        Ok(())
    }
}

impl std::error::Error for CdpError {}

/// Result of a DevTools call.
pub type CdpResult<T> = Result<T, CdpError>;

/// A headless Chromium with one page, driven over the DevTools protocol. The browser (and its
/// whole process group) is killed on drop.
pub struct Page {
    browser: Browser,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Console messages, uncaught exceptions and browser log entries, oldest first.
    console: Vec<String>,
    /// `Page.loadEventFired` events seen so far.
    loads: u64,
    /// Bound of one call.
    timeout: Duration,
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("browser", &self.browser)
            .field("next_id", &self.next_id)
            .field("loads", &self.loads)
            .finish_non_exhaustive()
    }
}

/// A string as a JavaScript literal (JSON strings are valid JavaScript strings).
pub fn js_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

impl Page {
    /// Starts Chromium on `about:blank` with `options` plus the remote debugging port, and
    /// attaches to its page. Fails when Chromium is missing (check [`browser_available`] first
    /// to skip instead).
    pub fn launch(options: &BrowserOptions) -> CdpResult<Page> {
        let plain = |message: String| CdpError {
            message,
            log_tail: String::new(),
            console_tail: Vec::new(),
        };
        if !browser_available() {
            return Err(plain("Chromium is not available".into()));
        }
        let options = options
            .clone()
            .arg("--remote-debugging-port=0")
            .arg("--window-size=1000,900");
        let mut browser = Browser::open("about:blank", &options)
            .ok_or_else(|| plain("Chromium is not available".into()))?;
        let fail = |browser: &Browser, message: String| CdpError {
            message,
            log_tail: useful_log_tail(&browser.log(), 40),
            console_tail: Vec::new(),
        };

        // The DevTools address, from Chromium's log.
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Some(addr) = devtools_addr(&browser.log()) {
                break addr;
            }
            if !browser.running() {
                return Err(fail(
                    &browser,
                    "Chromium exited before DevTools listened".into(),
                ));
            }
            if Instant::now() > deadline {
                return Err(fail(&browser, "DevTools never listened (30 s)".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };

        // The page target (Chromium may list it a moment after it listens).
        let ws_url = loop {
            let found = http_get(addr, "/json/list").and_then(|body| {
                let targets: Value = serde_json::from_str(&body).map_err(io::Error::other)?;
                Ok(targets.as_array().and_then(|ts| {
                    ts.iter()
                        .find(|t| t["type"] == "page")
                        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                        .map(str::to_owned)
                }))
            });
            match found {
                Ok(Some(url)) => break url,
                Ok(None) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => return Err(fail(&browser, "Chromium lists no page target".into())),
                Err(e) => return Err(fail(&browser, format!("GET /json/list: {e}"))),
            }
        };

        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| fail(&browser, format!("connect to DevTools {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| fail(&browser, format!("socket options: {e}")))?;
        let (ws, _response) = tungstenite::client(ws_url.as_str(), stream)
            .map_err(|e| fail(&browser, format!("WebSocket handshake with {ws_url}: {e}")))?;
        ws.get_ref()
            .set_read_timeout(Some(READ_SLICE))
            .map_err(|e| fail(&browser, format!("socket options: {e}")))?;

        let mut page = Page {
            browser,
            ws,
            next_id: 1,
            console: Vec::new(),
            loads: 0,
            timeout: CALL_TIMEOUT,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({}))?;
        }
        Ok(page)
    }

    /// Changes the bound of each call (default 30 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The browser (its log, its process).
    pub fn browser(&mut self) -> &mut Browser {
        &mut self.browser
    }

    /// An error with the browser's log tail and the page's recent messages.
    pub fn error(&self, message: impl Into<String>) -> CdpError {
        CdpError {
            message: message.into(),
            log_tail: useful_log_tail(&self.browser.log(), 40),
            console_tail: self
                .console
                .get(self.console.len().saturating_sub(30)..)
                .unwrap_or_default()
                .to_vec(),
        }
    }

    /// The page's console messages (`console.<level>: text`), uncaught exceptions
    /// (`exception: ...`) and browser log entries (`log.<level>: ...`, e.g. CSP violations and
    /// failed requests), oldest first.
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// One protocol call: `method` with `params`, the `result` object back, within the page's
    /// timeout.
    pub fn call(&mut self, method: &str, params: Value) -> CdpResult<Value> {
        self.call_within(method, params, self.timeout)
    }

    /// [`Page::call`] with its own bound.
    pub fn call_within(
        &mut self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> CdpResult<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        if let Err(e) = self.ws.send(Message::text(request)) {
            return Err(self.error(format!("{method}: sending: {e}")));
        }
        let deadline = Instant::now() + limit;
        loop {
            let Some(message) = self.next_message(deadline)? else {
                return Err(self.error(format!("{method}: no answer within {limit:?}")));
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(self.error(format!("{method}: {error}")));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            self.note_event(&message)?;
        }
    }

    /// The next JSON message from the browser, `None` at `deadline`.
    fn next_message(&mut self, deadline: Instant) -> CdpResult<Option<Value>> {
        loop {
            if Instant::now() > deadline {
                return Ok(None);
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(|e| self.error(format!("DevTools sent bad JSON: {e}")));
                }
                Ok(Message::Close(frame)) => {
                    return Err(self.error(format!("DevTools closed the connection: {frame:?}")));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !self.browser.running() {
                        return Err(self.error("Chromium exited"));
                    }
                }
                Err(e) => return Err(self.error(format!("DevTools connection: {e}"))),
            }
        }
    }

    /// Records what an event says about the page; a crashed or detached page is an error.
    fn note_event(&mut self, message: &Value) -> CdpResult<()> {
        let params = &message["params"];
        let line = match message["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => {
                self.loads += 1;
                None
            }
            "Runtime.consoleAPICalled" => {
                let text: Vec<String> = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(remote_object_text).collect())
                    .unwrap_or_default();
                Some(format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("log"),
                    text.join(" ")
                ))
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("exception");
                Some(format!("exception: {text}"))
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                Some(format!(
                    "log.{}: {} {}",
                    entry["level"].as_str().unwrap_or("info"),
                    entry["text"].as_str().unwrap_or_default(),
                    entry["url"].as_str().unwrap_or_default()
                ))
            }
            "Inspector.targetCrashed" => return Err(self.error("the page crashed")),
            "Inspector.detached" => {
                return Err(self.error(format!("DevTools detached: {}", params["reason"])));
            }
            _ => None,
        };
        if let Some(line) = line {
            if self.console.len() >= CONSOLE_KEEP {
                self.console.remove(0);
            }
            self.console.push(line);
        }
        Ok(())
    }

    /// Reads the events that have arrived (console messages, loads) without waiting long.
    pub fn pump_events(&mut self) -> CdpResult<()> {
        let deadline = Instant::now() + Duration::from_millis(1);
        while let Some(message) = self.next_message(deadline)? {
            self.note_event(&message)?;
        }
        Ok(())
    }

    /// Opens `url` and waits (within the page's timeout) for its load event.
    pub fn navigate(&mut self, url: &str) -> CdpResult<()> {
        self.pump_events()?;
        let loads_before = self.loads;
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = result["errorText"].as_str() {
            return Err(self.error(format!("opening {url}: {error}")));
        }
        let deadline = Instant::now() + self.timeout;
        while self.loads == loads_before {
            let Some(message) = self.next_message(deadline)? else {
                return Err(self.error(format!("{url} did not load within {:?}", self.timeout)));
            };
            self.note_event(&message)?;
        }
        Ok(())
    }

    /// Evaluates `js` in the page (promises awaited) and returns its value as JSON
    /// (`undefined` is `null`). A thrown exception is an error carrying its text.
    pub fn eval(&mut self, js: &str) -> CdpResult<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({
                "expression": js,
                "returnByValue": true,
                "awaitPromise": true,
                "userGesture": true,
            }),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("exception");
            return Err(self.error(format!("evaluating {js}: {text}")));
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Polls `predicate` (a JavaScript expression) until it is truthy; its value is returned.
    /// Evaluation errors (e.g. during a navigation) count as "not yet". On timeout, the error
    /// says what the expression last gave.
    pub fn wait_for(&mut self, predicate: &str, limit: Duration) -> CdpResult<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let last = match self.eval(predicate) {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(value) => value.to_string(),
                Err(e) => e.message,
            };
            if Instant::now() > deadline {
                return Err(self.error(format!("waited {limit:?} for {predicate}; last: {last}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `selector` names, as a user would: it must exist, be visible and be
    /// enabled.
    pub fn click(&mut self, selector: &str) -> CdpResult<()> {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel});
               if (!e) throw new Error('no element ' + {sel});
               if (!e.checkVisibility()) throw new Error({sel} + ' is not visible');
               if (e.disabled) throw new Error({sel} + ' is disabled');
               e.scrollIntoView({{ block: 'center' }});
               e.click(); return true; }})()",
            sel = js_string(selector)
        );
        self.eval(&js).map(|_| ())
    }

    /// Types `text` into the input `selector` names: focus, value set, `input` and `change`
    /// events dispatched (what the page's listeners see from a keyboard).
    pub fn type_into(&mut self, selector: &str, text: &str) -> CdpResult<()> {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel});
               if (!e) throw new Error('no element ' + {sel});
               if (!e.checkVisibility()) throw new Error({sel} + ' is not visible');
               e.focus(); e.value = {text};
               e.dispatchEvent(new Event('input', {{ bubbles: true }}));
               e.dispatchEvent(new Event('change', {{ bubbles: true }}));
               return true; }})()",
            sel = js_string(selector),
            text = js_string(text)
        );
        self.eval(&js).map(|_| ())
    }

    /// The text of the element `selector` names (`None` when there is none).
    pub fn text(&mut self, selector: &str) -> CdpResult<Option<String>> {
        let js = format!(
            "document.querySelector({})?.textContent ?? null",
            js_string(selector)
        );
        Ok(self.eval(&js)?.as_str().map(|s| s.trim().to_owned()))
    }

    /// Saves a PNG of the whole page (beyond the viewport) to `path`, creating its directory.
    pub fn screenshot(&mut self, path: &Path) -> CdpResult<()> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(1000.0).max(1.0);
        let height = size["height"].as_f64().unwrap_or(900.0).max(1.0);
        let result = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
            }),
        )?;
        let data = result["data"]
            .as_str()
            .ok_or_else(|| self.error("Page.captureScreenshot gave no data"))?;
        let png = openssl::base64::decode_block(data)
            .map_err(|e| self.error(format!("screenshot is not base64: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| self.error(format!("creating {}: {e}", dir.display())))?;
        }
        std::fs::write(path, png)
            .map_err(|e| self.error(format!("writing {}: {e}", path.display())))
    }
}

/// The last `n` lines of Chromium's log, without the D-Bus complaints of a machine with no
/// session bus (they say nothing about the page).
pub fn useful_log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("dbus/") && !l.contains("unexpected operator"))
        .collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

/// JavaScript truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// How a console argument reads: its value, else its description.
fn remote_object_text(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => object["description"]
            .as_str()
            .or_else(|| object["type"].as_str())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `127.0.0.1:PORT` from Chromium's `DevTools listening on ws://127.0.0.1:PORT/...` line.
fn devtools_addr(log: &str) -> Option<SocketAddr> {
    let line = log
        .lines()
        .find(|l| l.contains("DevTools listening on ws://"))?;
    let rest = line.split("ws://").nth(1)?;
    rest.split('/').next()?.parse().ok()
}

/// A plain HTTP/1.1 GET to the DevTools port (loopback only), the body back.
fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    // Chromium keeps the connection open: read the head, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(
                "connection closed before the response ended",
            ));
        }
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        if raw.len() > 16 << 20 {
            return Err(io::Error::other("response too large"));
        }
        let text = String::from_utf8_lossy(&raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        if !head.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!(
                "status {}",
                head.lines().next().unwrap_or_default()
            )));
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
            .ok_or_else(|| io::Error::other("no Content-Length"))?;
        if body.len() >= length {
            return Ok(body.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::PageServer;

    #[test]
    fn devtools_address_is_read_from_the_log_line() {
        let log = "x\nDevTools listening on ws://127.0.0.1:41235/devtools/browser/ab-cd\ny";
        assert_eq!(devtools_addr(log), Some("127.0.0.1:41235".parse().unwrap()));
        assert_eq!(devtools_addr("nothing here"), None);
        assert_eq!(js_string("a'\"\n"), r#""a'\"\n""#);
    }

    /// The client drives a data: page: eval, typing, clicking, waiting, console, screenshot.
    #[test]
    fn drives_a_data_url_page() {
        if !browser_available() {
            return;
        }
        let mut page = Page::launch(&BrowserOptions::default()).unwrap();
        let html = "<!doctype html><title>t</title><input id=name>\
            <button id=go hidden>Go</button><button id=shown>Shown</button><p id=out></p>\
            <script>document.getElementById('name').addEventListener('input', e => {\
            document.getElementById('go').hidden = e.target.value.length === 0; });\
            document.getElementById('go').addEventListener('click', () => {\
            console.log('clicked', document.getElementById('name').value);\
            setTimeout(() => { document.getElementById('out').textContent = 'hello ' +\
            document.getElementById('name').value; }, 300); });</script>";
        let url = format!(
            "data:text/html;base64,{}",
            openssl::base64::encode_block(html.as_bytes())
        );
        page.navigate(&url).unwrap();
        assert_eq!(page.eval("1 + 2").unwrap(), json!(3));
        assert_eq!(
            page.eval("Promise.resolve({a: [1, 'x']})").unwrap(),
            json!({"a": [1, "x"]})
        );
        assert_eq!(page.eval("undefined").unwrap(), Value::Null);
        let err = page
            .eval("(() => { throw new Error('boom') })()")
            .unwrap_err();
        assert!(err.message.contains("boom"), "{err}");

        let hidden = page.click("#go").unwrap_err();
        assert!(hidden.message.contains("not visible"), "{hidden}");
        assert!(page.click("#missing").is_err());
        page.type_into("#name", "Ana 'O\"Neil'").unwrap();
        page.click("#go").unwrap();
        let shown = page
            .wait_for(
                "document.getElementById('out').textContent || null",
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(shown, json!("hello Ana 'O\"Neil'"));
        assert_eq!(
            page.text("#out").unwrap().as_deref(),
            Some("hello Ana 'O\"Neil'")
        );
        let timeout = page
            .wait_for("false", Duration::from_millis(300))
            .unwrap_err();
        assert!(timeout.message.contains("waited"), "{timeout}");
        page.pump_events().unwrap();
        assert!(
            page.console()
                .iter()
                .any(|l| l == "console.log: clicked Ana 'O\"Neil'"),
            "{:?}",
            page.console()
        );

        let dir = crate::browser::TempDir::new("eid-cdp-shot");
        let shot = dir.path().join("a/b/page.png");
        page.screenshot(&shot).unwrap();
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        assert!(png.len() > 1000);
    }

    /// Over HTTPS with a pinned certificate and a mapped host name, as the end-to-end tests use.
    #[test]
    fn drives_a_page_server_page_over_pinned_https() {
        if !browser_available() {
            return;
        }
        let server = PageServer::start(&["rp.example.test"]);
        let options = BrowserOptions::default()
            .pin(server.spki_pin())
            .map_host("rp.example.test", "127.0.0.1");
        let mut page = Page::launch(&options).unwrap();
        // The test page asks a bridge that is not there; it posts the outcome and shows it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        page.navigate(&server.url(
            "rp.example.test",
            &format!("/?action=status&bridge=https://127.0.0.1:{closed}"),
        ))
        .unwrap();
        assert_eq!(
            page.eval("location.origin").unwrap(),
            json!(server.origin("rp.example.test"))
        );
        let out = page
            .wait_for(
                "document.getElementById('out').textContent.includes('agent-not-running') \
                 && document.getElementById('out').textContent",
                Duration::from_secs(60),
            )
            .unwrap();
        assert!(out.as_str().unwrap().contains("AgentNotRunningError"));
        let result = server.wait_result(Duration::from_secs(10)).unwrap();
        assert_eq!(result.body["error"]["code"], "agent-not-running");
        // A bad address is an error, not a hang.
        let bad = page.navigate("https://rp.example.test:1/");
        assert!(bad.is_err(), "{bad:?}");
    }
}
