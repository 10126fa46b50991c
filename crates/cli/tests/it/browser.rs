//! A browser for end-to-end tests: headless Debian Chromium driven through its chromedriver
//! with thirtyfour, and what the portal's pages are checked for in it (axe-core, the CSP
//! header, no outside asset, a CSRF token in every posting form), with screenshots.
//!
//! A test that needs it fails, never skips, when Chromium or chromedriver is missing.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custos_vault::testing::free_port;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

use crate::client;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "the browser tests need Debian's Chromium and its WebDriver: \
     install them with `apt-get install chromium chromium-driver` (.ci/run does)";

/// axe-core, run in every page (see `tests/fixtures/axe-core/README.md`).
const AXE: &str = include_str!("../fixtures/axe-core/axe.min.js");

/// How long any one thing may take to appear on a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) const DESKTOP: (u32, u32) = (1280, 1000);
pub(crate) const PHONE: (u32, u32) = (390, 844);

/// Polls `f` until it gives `Some`, for up to [`PATIENCE`].
async fn poll<T, F, Fut>(mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if start.elapsed() > PATIENCE {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`poll`], failing naming `what`.
async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(f)
        .await
        .unwrap_or_else(|| panic!("waited {PATIENCE:?} for {what}"))
}

/// chromedriver, started on a free port in a process group of its own, so that the
/// Chromium it starts goes down with it whatever happens to the test.
pub(crate) struct Chromedriver {
    child: Child,
    url: String,
}

/// Fails, naming what to install, unless Chromium and chromedriver are where Debian puts
/// them.
pub(crate) fn require_browser() {
    for (path, what) in [(CHROMIUM, "Chromium"), (CHROMEDRIVER, "chromedriver")] {
        assert!(
            Path::new(path).exists(),
            "{what} is missing at {path}: {INSTALL_HINT}"
        );
    }
}

impl Chromedriver {
    pub(crate) async fn start() -> Chromedriver {
        require_browser();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}: {INSTALL_HINT}"));
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = format!("{}/status", driver.url);
        eventually("chromedriver to be ready", || {
            let status = status.clone();
            async move {
                let v: Value = client().get(status).send().await.ok()?.json().await.ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group, chromedriver's own: it and the browser it started. Through the
        // system call, not `kill(1)`: procps-ng's reads `kill -KILL -PID` as another group
        // (`-1`, every process, for some PIDs).
        let group = rustix::process::Pid::from_child(&self.child);
        if group.as_raw_nonzero().get() > 1 {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a page was checked, for the summary.
pub(crate) struct Checked {
    pub(crate) page: String,
    pub(crate) url: String,
}

/// The browser and what the test keeps beside it.
pub(crate) struct Browser {
    pub(crate) driver: WebDriver,
    base: String,
    /// Chromium's profile, fresh.
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
    pub(crate) shots: PathBuf,
    pub(crate) checked: Vec<Checked>,
    pub(crate) violations: Vec<String>,
}

/// An XPath string literal holding `s` (which has no double quote).
fn literal(s: &str) -> String {
    assert!(!s.contains('"'));
    format!("\"{s}\"")
}

impl Browser {
    /// A browser on `base`, its screenshots in `target/tmp/{shots}` (emptied first).
    pub(crate) async fn start(chromedriver: &Chromedriver, base: &str, shots: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(shots);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_experimental_option(
            "prefs",
            json!({
                "download.default_directory": downloads.path().display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            }),
        )
        .unwrap();
        let driver = WebDriver::new(chromedriver.url.clone(), caps)
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}"));
        driver
            .set_script_timeout(Duration::from_secs(30))
            .await
            .unwrap();
        Browser {
            driver,
            base: base.to_owned(),
            _profile: profile,
            downloads,
            shots,
            checked: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// [`poll`] in the page, failing with where the browser is and what it shows.
    pub(crate) async fn wait<T, F, Fut>(&self, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        if let Some(v) = poll(f).await {
            return v;
        }
        let url = self.driver.current_url().await.map(|u| u.to_string());
        let body = match self.driver.find(By::Tag("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let _ = self.driver.screenshot(&self.shots.join("failed.png")).await;
        panic!(
            "waited {PATIENCE:?} for {what}; the browser is at {url:?} showing:\n{body}\n(screenshot: {})",
            self.shots.join("failed.png").display()
        );
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The path (and query) the browser is at.
    pub(crate) async fn path(&self) -> String {
        let url = self.driver.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for the page whose main heading is `h1`.
    pub(crate) async fn page(&self, h1: &str) {
        let xpath = format!("//h1[normalize-space(.)={}]", literal(h1));
        self.wait(&format!("the page headed {h1:?}"), || {
            let d = self.driver.clone();
            let xpath = xpath.clone();
            async move { d.find(By::XPath(xpath)).await.ok().map(drop) }
        })
        .await;
    }

    /// The visible text of the page's `main`.
    pub(crate) async fn main_text(&self) -> String {
        self.driver
            .find(By::Tag("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The one element of `tag` whose text (hidden parts for screen readers included) is
    /// `text`, waited for.
    pub(crate) async fn by_text(&self, tag: &str, text: &str) -> WebElement {
        let xpath = format!("//{tag}[normalize-space(.)={}]", literal(text));
        self.wait(&format!("a {tag} saying {text:?}"), || {
            let d = self.driver.clone();
            let xpath = xpath.clone();
            async move { d.find(By::XPath(xpath)).await.ok() }
        })
        .await
    }

    /// The text of the element `css` selects, waited for. Found and read in one try, so an
    /// element the next page replaced while it was read is looked for again.
    pub(crate) async fn by_text_in(&self, css: &str) -> String {
        self.wait(&format!("an element {css}"), || {
            let d = self.driver.clone();
            async move { d.find(By::Css(css)).await.ok()?.text().await.ok() }
        })
        .await
    }

    /// Waits until the element `css` selects says `want`: after a form is sent, the page
    /// that answers may carry the same heading as the one that sent it.
    pub(crate) async fn text_becomes(&self, css: &str, want: &str) {
        self.wait(&format!("{css} saying {want:?}"), || {
            let d = self.driver.clone();
            async move {
                let text = d.find(By::Css(css)).await.ok()?.text().await.ok()?;
                (text == want).then_some(())
            }
        })
        .await;
    }

    /// Follows the link saying `text`.
    pub(crate) async fn follow(&self, text: &str) {
        self.by_text("a", text).await.click().await.unwrap();
    }

    /// Presses the button saying `text`.
    pub(crate) async fn press(&self, text: &str) {
        self.by_text("button", text).await.click().await.unwrap();
    }

    /// The input the label saying `label` is for.
    pub(crate) async fn input(&self, label: &str) -> WebElement {
        let l = self.by_text("label", label).await;
        let id = l
            .attr("for")
            .await
            .unwrap()
            .expect("the label names its input");
        self.driver.find(By::Id(id)).await.unwrap()
    }

    /// Types `text` into the input labelled `label`, replacing what it held.
    pub(crate) async fn type_into(&self, label: &str, text: &str) {
        let input = self.input(label).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    pub(crate) async fn window(&self, (w, h): (u32, u32)) {
        self.driver.set_window_rect(0, 0, w, h).await.unwrap();
    }

    /// A screenshot of the whole page at the window's width: the window is made as tall
    /// as the page for it, then put back.
    pub(crate) async fn screenshot(&self, name: &str) {
        let path = self.shots.join(format!("{name}.png"));
        let rect = self.driver.get_window_rect().await.unwrap();
        let sizes = self
            .driver
            .execute(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
                Vec::new(),
            )
            .await
            .unwrap();
        let (page, frame): (u32, u32) = sizes.convert().unwrap();
        let (w, h) = (rect.width as u32, rect.height as u32);
        let tall = (page + frame).clamp(h, 4000);
        if tall > h {
            self.driver.set_window_rect(0, 0, w, tall).await.unwrap();
        }
        self.driver.screenshot(&path).await.unwrap();
        if tall > h {
            self.driver.set_window_rect(0, 0, w, h).await.unwrap();
        }
    }

    /// Checks the page the browser shows as `name`: the answer's headers (fetched again
    /// alongside with the browser's cookies), every asset and link from this server or
    /// none, every form that posts with a CSRF token, and axe-core's verdict; then saves a
    /// screenshot.
    pub(crate) async fn check(&mut self, name: &str) {
        let url = self.driver.current_url().await.unwrap().to_string();
        assert!(url.starts_with(&self.base), "{name}: at {url}");

        let cookies = self
            .driver
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        let res = client()
            .get(&url)
            .header("Cookie", cookies)
            .send()
            .await
            .unwrap();
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{name}: CSP {csp:?} lacks {part}");
        }
        assert!(!csp.contains("script-src"), "{name}: CSP allows scripts");
        assert_eq!(h["referrer-policy"], "no-referrer", "{name}");
        assert_eq!(h["cache-control"], "no-store", "{name}");

        let found = self
            .driver
            .execute(
                r#"
                const refs = [];
                for (const el of document.querySelectorAll("[src],[href],[action],[srcset],[poster],[data]")) {
                    for (const a of ["src", "href", "action", "srcset", "poster", "data"]) {
                        const v = el.getAttribute(a);
                        if (v !== null) refs.push(el.tagName.toLowerCase() + " " + a + "=" + v);
                    }
                }
                const forms = [...document.querySelectorAll("form")]
                    .filter(f => (f.getAttribute("method") || "get").toLowerCase() === "post")
                    .map(f => ({
                        action: f.getAttribute("action"),
                        csrf: [...f.querySelectorAll("input[type=hidden][name=csrf]")].map(i => i.value),
                    }));
                return { refs, forms };
                "#,
                Vec::new(),
            )
            .await
            .unwrap();
        let found = found.json();
        for r in found["refs"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            let value = r.split_once('=').unwrap().1.trim().to_ascii_lowercase();
            let elsewhere = (value.starts_with("http:")
                || value.starts_with("https:")
                || value.starts_with("//"))
                && !value.starts_with(&self.base);
            assert!(!elsewhere, "{name}: refers outside this server: {r}");
        }
        for f in found["forms"].as_array().unwrap() {
            let tokens = f["csrf"].as_array().unwrap();
            assert!(
                tokens.len() == 1 && tokens[0].as_str().is_some_and(|t| t.len() == 64),
                "{name}: the form posting to {} has no CSRF token: {f}",
                f["action"]
            );
        }

        self.axe(name).await;
        self.screenshot(name).await;
        self.checked.push(Checked {
            page: name.to_owned(),
            url,
        });
    }

    /// Runs axe-core in the page against WCAG 2.2 A and AA and axe's best practices; the
    /// violations, each as its rule id, impact, help and targets. The page's CSP forbids
    /// scripts, which binds the page's own: WebDriver's scripts are not subject to it.
    pub(crate) async fn axe_run(&self, name: &str) -> Vec<Value> {
        self.driver.execute(AXE, Vec::new()).await.unwrap();
        let r = self
            .driver
            .execute_async(
                r#"
                const done = arguments[arguments.length - 1];
                axe.run(document, {
                    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"] },
                })
                    .then(r => done({ passes: r.passes.length, violations: r.violations.map(v => ({
                        id: v.id,
                        impact: v.impact,
                        help: v.help,
                        targets: v.nodes.map(n => n.target.join(" ")),
                    })) }))
                    .catch(e => done({ error: String(e) }));
                "#,
                Vec::new(),
            )
            .await
            .unwrap();
        let r = r.json();
        assert!(r["error"].is_null(), "{name}: axe failed: {}", r["error"]);
        assert!(
            r["passes"].as_u64().is_some_and(|n| n > 0),
            "{name}: axe checked nothing: {r}"
        );
        r["violations"].as_array().unwrap().clone()
    }

    /// [`Browser::axe_run`], the violations kept for the end of the test.
    pub(crate) async fn axe(&mut self, name: &str) {
        for v in self.axe_run(name).await {
            self.violations.push(format!(
                "{name}: {} ({}): {}: {}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or_default(),
                v["targets"]
            ));
        }
    }

    /// The files in the download directory, complete ones only.
    pub(crate) fn downloaded(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.downloads.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".crdownload") && !n.starts_with('.'))
            .collect()
    }

    /// Waits for a new complete download whose name starts with `prefix`; its bytes.
    pub(crate) async fn download(&self, prefix: &str) -> (String, Vec<u8>) {
        let name = self
            .wait(&format!("a download named {prefix}*"), || {
                let got = self
                    .downloaded()
                    .into_iter()
                    .find(|n| n.starts_with(prefix));
                async move { got }
            })
            .await;
        // Chromium renames the file into place once it is complete.
        (
            name.clone(),
            std::fs::read(self.downloads.path().join(&name)).unwrap(),
        )
    }
}
