//! Documents looked at in a real browser: Debian's `chromium`, headless, driven over the
//! DevTools protocol (CDP) on a loopback WebSocket.
//!
//! Why our own CDP client rather than `headless_chrome` or `chromiumoxide`: both compile
//! the whole generated protocol (tens of thousands of lines, a few minutes of the CI's two
//! cores) for the six commands used here, and `headless_chrome`'s fetcher downloads a
//! browser build, which CI cannot. `tungstenite` (the WebSocket crate most of the ecosystem
//! sits on) and `serde_json` are all it takes.
//!
//! [`check_document`] opens an HTML string and returns every problem a reader or a printer
//! would meet ([`Problem`]): not right to left, Latin digits or a Latin decimal point in the
//! visible text (outside elements marked `data-latin`), list numbers in Latin digits, the
//! embedded Persian font not loaded or not what the text is drawn in, a printed page that is
//! not A4, content clipped at A4's printable width. [`Browser::qr_codes`] reads the QR codes
//! of a screenshot. Every wait is bounded; the browser only ever sees `data:` URIs, and
//! resolves no host name.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Cursor, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The Debian package the checks need.
pub const PACKAGE: &str = "chromium";
/// Overrides where the browser is (else `chromium` on `PATH`).
pub const CHROMIUM_ENV: &str = "MOSHAREKAT_CHROMIUM";
/// The longest any one step (start, a command, a page load) may take.
const WAIT: Duration = Duration::from_secs(60);
/// A4 in PostScript points, as a PDF's MediaBox gives it.
pub const A4_PT: (f64, f64) = (595.28, 841.89);

/// What went wrong driving the browser (not a problem with the document).
pub type Result<T> = std::result::Result<T, String>;

/// Headless Chromium with one page open, ended when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
    // Dropped after the browser has exited.
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish()
    }
}

fn chromium_path() -> Result<PathBuf> {
    find_chromium(
        std::env::var_os(CHROMIUM_ENV),
        std::env::var_os("PATH").unwrap_or_default(),
    )
}

/// The browser: `configured` (the environment's override) if set, else `chromium` on `path`.
fn find_chromium(configured: Option<OsString>, path: OsString) -> Result<PathBuf> {
    let missing = |what: String| {
        format!(
            "{what}: the document checks need headless Chromium, Debian's `{PACKAGE}` package \
             (apt-get install -y {PACKAGE}; .ci/run installs it), or {CHROMIUM_ENV} set to a \
             Chromium binary"
        )
    };
    if let Some(p) = configured {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(missing(format!(
                "{CHROMIUM_ENV}={} is not a file",
                p.display()
            )))
        };
    }
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .ok_or_else(|| missing("no `chromium` on PATH".into()))
}

/// Whether this process runs as root (Chromium's sandbox refuses root).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(true)
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens a blank page. Fails, naming
    /// the package, when Chromium is not installed.
    pub fn launch() -> Result<Self> {
        let binary = chromium_path()?;
        let profile = tempfile::tempdir().map_err(|e| format!("a profile directory: {e}"))?;
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--headless",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--mute-audio",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            // Nothing but `data:` pages: no host name resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ]);
        if is_root() {
            cmd.arg("--no-sandbox");
        }
        cmd.arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e} (Debian's `{PACKAGE}`)", binary.display()))?;
        // Chromium prints where DevTools listens on stderr; the reader drains it to the end
        // so that a chatty browser never blocks on a full pipe.
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut said = Vec::new();
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find("ws://") {
                        break line[i..].trim().to_owned();
                    }
                    said.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} did not open DevTools within {WAIT:?}: {}",
                        binary.display(),
                        said.join("\n")
                    ));
                }
            }
        };
        let ws = match connect(&url) {
            Ok(ws) => ws,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = b.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        for domain in ["Page.enable", "DOM.enable", "CSS.enable"] {
            b.call(domain, json!({}))?;
        }
        Ok(b)
    }

    fn send(&mut self, method: &str, params: Value) -> Result<u64> {
        self.next_id += 1;
        let mut msg = json!({ "id": self.next_id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("{method}: {e}"))?;
        Ok(self.next_id)
    }

    /// The next message from the browser, waiting until `deadline`.
    fn receive(&mut self, deadline: Instant, waiting_for: &str) -> Result<Value> {
        loop {
            if Instant::now() >= deadline {
                return Err(format!("{waiting_for}: no answer within {WAIT:?}"));
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| format!("{waiting_for}: {e}"));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(format!("{waiting_for}: {e}")),
            }
        }
    }

    /// Calls `method` on the page (on the browser before a page is attached).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.send(method, params)?;
        let deadline = Instant::now() + WAIT;
        loop {
            let msg = self.receive(deadline, method)?;
            if msg["id"].as_u64() == Some(id) {
                if let Some(err) = msg.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(msg["result"].clone());
            }
            if msg.get("method").is_some() {
                self.events.push_back(msg);
            }
        }
    }

    fn wait_event(&mut self, method: &str) -> Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i).unwrap_or_default());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let msg = self.receive(deadline, method)?;
            if msg["method"] == method {
                return Ok(msg);
            }
        }
    }

    /// Opens `html` (as a `data:` URI) and waits for it to load, and for its fonts.
    pub fn load(&mut self, html: &str) -> Result<()> {
        self.events.clear();
        let url = format!(
            "data:text/html;charset=utf-8;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(html)
        );
        let r = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(e) = r.get("errorText") {
            return Err(format!("loading the document: {e}"));
        }
        // A late load event of the blank page may come first: wait for the document's own.
        loop {
            self.wait_event("Page.loadEventFired")?;
            let state = self.eval("location.protocol + document.readyState")?;
            if state == "data:complete" {
                break;
            }
        }
        self.eval("document.fonts.ready.then(() => document.fonts.status)")?;
        Ok(())
    }

    /// The value of the JavaScript expression `js` (a promise is awaited).
    pub fn eval(&mut self, js: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("script failed: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// The page's visible text, as a reader sees it (`innerText`).
    pub fn text(&mut self) -> Result<String> {
        Ok(self
            .eval("document.body.innerText")?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The page printed to PDF, in the page size its CSS asks for (Letter when it asks none).
    pub fn print_pdf(&mut self) -> Result<Vec<u8>> {
        let r = self.call(
            "Page.printToPDF",
            json!({ "preferCSSPageSize": true, "printBackground": true, "displayHeaderFooter": false }),
        )?;
        decode_base64(&r["data"])
    }

    /// The whole page (not only the viewport) as PNG.
    pub fn screenshot(&mut self) -> Result<Vec<u8>> {
        // Painted first: after a print to PDF the page is laid out again for the screen,
        // and a loaded machine once caught it before its QR code was drawn.
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")?;
        let m = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = &m["cssContentSize"];
        let r = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 },
            }),
        )?;
        decode_base64(&r["data"])
    }

    /// The texts of the QR codes on a screenshot of the page.
    pub fn qr_codes(&mut self) -> Result<Vec<String>> {
        decode_qr(&self.screenshot()?)
    }

    /// The fonts Chromium drew the text of the elements matching `selector` in, by family
    /// (`CSS.getPlatformFontsForNode`: what was used, not what was asked for), with
    /// whether each is a web font.
    pub fn fonts_drawn(&mut self, selector: &str) -> Result<Vec<(String, bool)>> {
        let doc = self.call("DOM.getDocument", json!({ "depth": 0 }))?;
        let root = doc["root"]["nodeId"].clone();
        let nodes = self.call(
            "DOM.querySelectorAll",
            json!({ "nodeId": root, "selector": selector }),
        )?;
        let mut fonts: Vec<(String, bool)> = Vec::new();
        for node in nodes["nodeIds"].as_array().cloned().unwrap_or_default() {
            let r = self.call("CSS.getPlatformFontsForNode", json!({ "nodeId": node }))?;
            for f in r["fonts"].as_array().cloned().unwrap_or_default() {
                let family = f["familyName"].as_str().unwrap_or_default().to_owned();
                let custom = f["isCustomFont"].as_bool().unwrap_or(false);
                if f["glyphCount"].as_u64().unwrap_or(0) > 0
                    && !fonts.contains(&(family.clone(), custom))
                {
                    fonts.push((family, custom));
                }
            }
        }
        Ok(fonts)
    }

    /// Lays the page out as printed (print media) at `width_mm` wide.
    fn emulate_print(&mut self, width_mm: f64) -> Result<()> {
        self.call("Emulation.setEmulatedMedia", json!({ "media": "print" }))?;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": (width_mm * 96.0 / 25.4).floor() as u64, "height": 1123, "deviceScaleFactor": 1, "mobile": false }),
        )?;
        Ok(())
    }

    fn emulate_screen(&mut self) -> Result<()> {
        self.call("Emulation.setEmulatedMedia", json!({ "media": "" }))?;
        self.call("Emulation.clearDeviceMetricsOverride", json!({}))?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closed through the protocol so that its renderers go with it; killed if it lingers.
        self.session.clear();
        let _ = self.send("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.ws.read() {
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
                Ok(_) => {}
            }
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn connect(url: &str) -> Result<WebSocket<TcpStream>> {
    let host = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .ok_or_else(|| format!("DevTools address {url}"))?;
    let addr: SocketAddr = host
        .parse()
        .map_err(|e| format!("DevTools address {url}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("DevTools listens on {addr}, not loopback"));
    }
    let stream = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("{url}: {e}"))?;
    stream
        .set_read_timeout(Some(WAIT))
        .and_then(|_| stream.set_write_timeout(Some(WAIT)))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(url, stream).map_err(|e| format!("{url}: {e}"))?;
    // Short reads from here on: each wait loops to its own deadline.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(250)))
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

fn decode_base64(v: &Value) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .map_err(|e| format!("base64 from the browser: {e}"))
}

/// The texts of the QR codes in the PNG image `png`.
pub fn decode_qr(png: &[u8]) -> Result<Vec<String>> {
    let mut decoder = png::Decoder::new(Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| format!("png: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("png too large")?];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("png: {e}"))?;
    let samples = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = &buf[y * info.line_size + x * samples..];
        if samples >= 3 {
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
        } else {
            p[0]
        }
    });
    Ok(img
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect())
}

/// Every page's MediaBox in a PDF, as `(width, height)` in points.
pub fn pdf_page_sizes(pdf: &[u8]) -> Vec<(f64, f64)> {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/MediaBox")
        .filter_map(|(i, _)| {
            let rest = &text[i + "/MediaBox".len()..];
            let open = rest.find('[')?;
            let close = rest.find(']')?;
            let n: Vec<f64> = rest[open + 1..close]
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (n.len() == 4).then(|| (n[2] - n[0], n[3] - n[1]))
        })
        .collect()
}

/// What a reader or a printer would meet in a document: each says which check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `direction`, `latin-digits`, `decimal-point`, `list-numbers`, `font`, `page-size`, `clipped`.
    pub check: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

/// What [`check_document`] checks against.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The embedded font's family, which the text must be drawn in.
    pub font_family: &'static str,
    /// The width the content must fit at: A4 (210 mm) less both side margins. 170 mm is
    /// 2 cm a side, no less than any of the suite's documents leave.
    pub print_width_mm: f64,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            font_family: "Vazirmatn",
            print_width_mm: 170.0,
        }
    }
}

/// The script of the checks made on the rendered page; `__FAMILY__` is replaced.
const PAGE_CHECKS: &str = r#"(() => {
  const out = [];
  const add = (check, detail) => { if (out.filter(p => p[0] === check).length < 8) out.push([check, detail]); };
  const tag = el => '<' + el.tagName.toLowerCase() + '>';
  const latin = '[data-latin]';
  if (document.documentElement.lang !== 'fa') add('direction', 'lang is "' + document.documentElement.lang + '"');
  for (const el of [document.body, ...document.querySelectorAll('table')]) {
    const d = getComputedStyle(el).direction;
    if (d !== 'rtl') add('direction', tag(el) + ' is ' + d);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(latin) || !p.checkVisibility()) continue;
    const d = n.data.match(/.{0,15}[0-9].{0,15}/);
    if (d) add('latin-digits', '"' + d[0].trim() + '" in ' + tag(p));
    const s = n.data.match(/.{0,15}[۰-۹][.,%][۰-۹]?.{0,15}/);
    if (s && /[۰-۹]([.,][۰-۹]|%)/.test(s[0])) add('decimal-point', '"' + s[0].trim() + '" in ' + tag(p) + ' (٫ ٬ ٪ are Persian)');
  }
  const marks = ['none', 'disc', 'circle', 'square', 'disclosure-open', 'disclosure-closed', 'persian', 'arabic-indic'];
  for (const li of document.querySelectorAll('li')) {
    const s = getComputedStyle(li);
    if (li.closest(latin) || s.display !== 'list-item') continue;
    if (!marks.includes(s.listStyleType)) add('list-numbers', tag(li.parentElement) + ' numbered ' + s.listStyleType + ': "' + li.innerText.slice(0, 30) + '"');
  }
  const family = '__FAMILY__';
  const faces = [...document.fonts].filter(f => f.family.replace(/["']/g, '') === family);
  if (!faces.length) add('font', 'no @font-face for ' + family + ' (the document must carry its font)');
  else if (!faces.some(f => f.status === 'loaded')) add('font', family + ' not loaded: ' + faces.map(f => f.status).join(', '));
  else if (!document.fonts.check('16px "' + family + '"', 'سلام ۱۲۳')) add('font', family + ' cannot draw the text');
  const bodyFont = getComputedStyle(document.body).fontFamily.replace(/["']/g, '');
  if (!bodyFont.startsWith(family)) add('font', 'the body asks for ' + bodyFont);
  return out;
})()"#;

/// The clipping checks, on the page laid out as printed.
const PRINT_CHECKS: &str = r#"(() => {
  const out = [];
  const add = d => { if (out.length < 8) out.push(['clipped', d]); };
  const what = el => '<' + el.tagName.toLowerCase() + '> "' + (el.innerText || '').trim().slice(0, 30) + '"';
  const root = document.documentElement;
  const W = root.clientWidth;
  if (root.scrollWidth > W + 1) add('the page is ' + root.scrollWidth + 'px wide at a printable width of ' + W + 'px');
  for (const el of document.querySelectorAll('td, th')) {
    if (el.scrollWidth > el.clientWidth + 1) add(what(el) + ' needs ' + el.scrollWidth + 'px of its ' + el.clientWidth + 'px');
  }
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.left < -1 || r.right > W + 1)) add(what(el) + ' runs past the page (' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + W + 'px)');
  }
  return out;
})()"#;

fn problems_of(v: Value) -> Vec<Problem> {
    let checks = [
        "direction",
        "latin-digits",
        "decimal-point",
        "list-numbers",
        "font",
        "clipped",
    ];
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let check = checks.into_iter().find(|c| p[0] == *c)?;
            Some(Problem {
                check,
                detail: p[1].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

impl Browser {
    /// Loads `html` and returns every problem found (none: it reads and prints right).
    pub fn check(&mut self, html: &str, expect: &Expect) -> Result<Vec<Problem>> {
        self.load(html)?;
        let mut problems =
            problems_of(self.eval(&PAGE_CHECKS.replace("__FAMILY__", expect.font_family))?);
        // The text is drawn in the embedded font. `data-latin` identifiers may be monospace;
        // a node's fonts include its descendants', so their ancestors are left out too.
        for (family, custom) in
            self.fonts_drawn("body :not([data-latin]):not([data-latin] *):not(:has([data-latin]))")?
        {
            if !(custom && family.starts_with(expect.font_family)) {
                problems.push(Problem {
                    check: "font",
                    detail: format!(
                        "text drawn in {family}{}, not the embedded {}",
                        if custom { "" } else { " (a system font)" },
                        expect.font_family
                    ),
                });
            }
        }
        let sizes = pdf_page_sizes(&self.print_pdf()?);
        if sizes.is_empty() {
            problems.push(Problem {
                check: "page-size",
                detail: "the printed PDF has no page".into(),
            });
        }
        for (w, h) in sizes {
            if (w - A4_PT.0).abs() > 1.0 || (h - A4_PT.1).abs() > 1.0 {
                problems.push(Problem {
                    check: "page-size",
                    detail: format!("a page of {w:.0}×{h:.0} pt, not A4 (595×842)"),
                });
                break;
            }
        }
        self.emulate_print(expect.print_width_mm)?;
        let clipped = self.eval(PRINT_CHECKS);
        self.emulate_screen()?;
        problems.extend(problems_of(clipped?));
        Ok(problems)
    }
}

/// Opens `html` in a fresh headless Chromium and returns its problems; panics (failing the
/// test, naming the package) when Chromium is not installed or cannot be driven.
pub fn check_document(html: &str, expect: &Expect) -> Vec<Problem> {
    look_at(html, expect).problems
}

/// A document as headless Chromium showed it.
#[derive(Debug, Clone)]
pub struct Looked {
    /// Every problem [`Browser::check`] found.
    pub problems: Vec<Problem>,
    /// The visible text (`innerText`).
    pub text: String,
    /// The QR codes read from a screenshot of the whole page.
    pub qr_codes: Vec<String>,
}

impl Looked {
    /// Fails the test with every problem found, one a line; else gives the page back.
    pub fn without_problems(self) -> Self {
        assert!(
            self.problems.is_empty(),
            "{}",
            self.problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        self
    }
}

/// Opens `html` in a fresh headless Chromium: its problems, its text and its QR codes.
/// Blocking: from an async test, call it in `tokio::task::spawn_blocking`. Panics (failing
/// the test, naming the package) when Chromium is not installed or cannot be driven.
pub fn look_at(html: &str, expect: &Expect) -> Looked {
    let mut b = Browser::launch().unwrap_or_else(|e| panic!("{e}"));
    let problems = b.check(html, expect).unwrap_or_else(|e| panic!("{e}"));
    Looked {
        problems,
        text: b.text().unwrap_or_else(|e| panic!("{e}")),
        qr_codes: b.qr_codes().unwrap_or_else(|e| panic!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_browser_fails_naming_the_package() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_chromium(None, empty.path().as_os_str().to_owned()).unwrap_err();
        assert!(err.contains("Debian's `chromium` package"), "{err}");
        assert!(err.contains("apt-get install -y chromium"), "{err}");
        let err =
            find_chromium(Some(empty.path().join("nothing").into()), OsString::new()).unwrap_err();
        assert!(err.contains("is not a file"), "{err}");
        // And one that is there is found.
        std::fs::write(empty.path().join("chromium"), "").unwrap();
        assert_eq!(
            find_chromium(None, empty.path().as_os_str().to_owned()).unwrap(),
            empty.path().join("chromium")
        );
    }

    #[test]
    fn media_boxes_are_read_in_points() {
        let pdf = b"%PDF-1.4\n1 0 obj <</Type /Page /MediaBox [0 0 594.95996 841.91998]>>\n2 0 obj <</Type /Page /MediaBox [0 0 612 792] >>";
        assert_eq!(
            pdf_page_sizes(pdf),
            [(594.95996, 841.91998), (612.0, 792.0)]
        );
    }
}
