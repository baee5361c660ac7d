//! The gallery in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver HTTP API on 127.0.0.1, opens `index.html` from
//! disk (`file://`, no server) and checks that thumbnails render (natural
//! sizes of the decoded images), that a click opens the full image, that a
//! video plays, that tiles and the viewer show pictures at least as large
//! as they are drawn (the sample vault's 80×60 thumbs and 320×240
//! pictures), that 50,000 media render one page at a time (how fast
//! is for `bench/gallery.sh` to print, never for a test to assert), and
//! that on a 375 px phone the viewer's buttons leave the media id clear and
//! an agency's overview page does not scroll sideways.
//! Screenshots are saved next to the build:
//! `target/gallery-screenshot.png`, `target/gallery-dark.png`,
//! `target/gallery-lightbox.png`, `target/gallery-tiles.png`,
//! `target/gallery-viewer.png`, `target/gallery-viewer-narrow.png`,
//! `target/gallery-viewer-clip.png`, `target/gallery-viewer-phone.png`,
//! `target/gallery-50k.png`, `target/agency-phone.png`.
//!
//! Without chromium the tests skip, saying so, unless `CI=true`: then they
//! fail (`common::require!`; `.ci/run` installs the Debian packages
//! `chromium` and `chromium-driver`).
//!
//! `tests/it/fixtures/clip.webm` is 2 s of VP9 at 320×180, made with
//! `ffmpeg -f lavfi -i "gradients=s=320x180:d=2:speed=0.05:n=3:seed=7"
//! -r 12 -c:v libvpx-vp9 -b:v 60k -pix_fmt yuv420p -an clip.webm`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use vault_mirror::fake::{FakeList, FakeMedia, FakeOptions, FakeVariant, Vault};
use vault_mirror::settings::Quality;

use crate::common::{mirror, require};
use crate::sandbox::Sandbox;

const FULL: (u32, u32) = (800, 600);
const THUMB: (u32, u32) = (320, 240);
const CLIP: &[u8] = include_bytes!("fixtures/clip.webm");

#[tokio::test]
async fn the_gallery_renders_thumbnails_opens_full_images_and_plays_video() {
    let browser = require!(Browser::find());
    let vault = picture_vault(36);
    let sandbox = Sandbox::start(&vault, FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.mirror.export = true;
    let first = mirror(&settings).await;
    assert_eq!(first.exit_code, 0, "{first:?}");
    // Something for every badge, among the newest so the screenshot shows
    // them: one media gone upstream, one changed.
    let ids: Vec<String> = vault.media.keys().cloned().collect();
    sandbox.server().with_vault(|vault| {
        for list in &mut vault.lists {
            list.members.retain(|id| id != &ids[33]);
        }
        let changed = vault.media.get_mut(&ids[32]).unwrap();
        let full = changed.variants.get_mut("full").unwrap();
        full.body = painting(FULL, 99);
        full.stored_at = full.stored_at.map(|at| at + 3_600_000);
    });
    let second = mirror(&settings).await;
    assert_eq!(second.exit_code, 0, "{second:?}");
    assert_eq!(second.versions_kept.len(), 1);
    let page = sandbox.out().join("index.html");

    let mut session = browser.session().await;
    session.open(&page).await;

    // Thumbnails: every tile in view holds a decoded image of the thumb's size.
    let thumbs = session
        .wait_for(
            "thumbnails to load",
            r#"
            const images = [...document.querySelectorAll('#grid img.thumb')];
            const visible = images.filter(i => i.getBoundingClientRect().top < innerHeight);
            if (!visible.length || visible.some(i => !i.complete)) return null;
            return {tiles: document.querySelectorAll('#grid .tile').length,
                    broken: document.querySelectorAll('#grid .placeholder').length,
                    sizes: visible.map(i => [i.naturalWidth, i.naturalHeight])};
            "#,
        )
        .await;
    assert_eq!(thumbs["tiles"], 36, "{thumbs}");
    assert_eq!(thumbs["broken"], 0, "{thumbs}");
    let sizes = thumbs["sizes"].as_array().unwrap();
    assert!(sizes.len() >= 8, "{thumbs}");
    for size in sizes {
        assert_eq!(
            size,
            &json!([THUMB.0, THUMB.1]),
            "a thumbnail did not render"
        );
    }
    let header = session
        .script("return [document.getElementById('totals').textContent, document.querySelectorAll('.list').length, !!document.querySelector('.badge.gone'), !!document.querySelector('.badge.versions')]")
        .await;
    assert!(
        header[0].as_str().unwrap().starts_with("36 media"),
        "{header}"
    );
    // All media, removed upstream, and the four lists.
    assert_eq!(header[1], 6, "{header}");
    assert_eq!(header[2], true, "no removed-upstream badge: {header}");
    assert_eq!(header[3], true, "no versions badge: {header}");
    session
        .screenshot(&artifact("gallery-screenshot.png"))
        .await;
    session
        .call(
            "POST",
            &session.path("/goog/cdp/execute"),
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": "dark"}]}}),
        )
        .await;
    session.screenshot(&artifact("gallery-dark.png")).await;

    // A click on the first picture opens its full image.
    let first_tile = session.find("#grid .tile.image").await;
    let expected_full = session
        .script("return document.querySelector('#grid .tile.image').getAttribute('href')")
        .await;
    session.click(&first_tile).await;
    let full = session
        .wait_for(
            "the full image",
            r#"
            const box = document.getElementById('lightbox');
            const image = document.getElementById('lightbox-image');
            if (box.hidden || !image || !image.complete || !image.naturalWidth) return null;
            return [image.naturalWidth, image.naturalHeight, image.getAttribute('src')];
            "#,
        )
        .await;
    assert_eq!(full, json!([FULL.0, FULL.1, expected_full]), "{full}");
    assert!(full[2].as_str().unwrap().ends_with("/full.png"), "{full}");
    session.screenshot(&artifact("gallery-lightbox.png")).await;

    // Videos: the viewer's <video> loads nothing until asked, then plays.
    session
        .script("document.getElementById('lightbox-close').click(); document.querySelector('#kinds [data-kind=video]').click(); return 0;")
        .await;
    let videos = session
        .script("return document.querySelectorAll('#grid .tile').length")
        .await;
    assert_eq!(videos, 3);
    let video_tile = session.find("#grid .tile").await;
    session.click(&video_tile).await;
    let attributes = session
        .script("const v = document.getElementById('lightbox-video'); return [v.getAttribute('preload'), v.hasAttribute('controls'), v.readyState];")
        .await;
    assert_eq!(attributes, json!(["none", true, 0]));
    let played = session.play_viewer_video().await;
    assert_eq!(played, json!([320, 180, true]), "the video did not play");
    session.close().await;
}

/// The window of the issue, as the page sees it (its viewport): wide, so
/// that a 4:3 picture is limited by its height.
const WINDOW: (u32, u32) = (1400, 900);
/// The most of the window's limiting side that the viewer's chrome may
/// take (paddings around the stage, the details bar below it).
const VIEWER_MARGINS: f64 = 160.0;

#[tokio::test]
async fn grid_tiles_show_pictures_at_least_as_large_as_the_tile() {
    let browser = require!(Browser::find());
    let (_archive, session) = sample_gallery(&browser).await;

    // Every tile in view, once its picture has stopped changing.
    let grid = session
        .settled(
            "the tiles in view to load",
            r#"
            const tiles = [...document.querySelectorAll('#grid .tile')].filter(tile => {
                const box = tile.getBoundingClientRect();
                return box.top < innerHeight && box.bottom > 0;
            });
            const images = tiles.map(tile => tile.querySelector('img.thumb'));
            if (!tiles.length || images.some(image => !image || !image.complete)) return null;
            return {density: devicePixelRatio, tiles: tiles.map((tile, n) => {
                const image = images[n], box = image.getBoundingClientRect();
                return [tile.classList.contains('video') ? 'video' : 'image', image.getAttribute('src'),
                        image.naturalWidth, image.naturalHeight, box.width, box.height];
            })};
            "#,
        )
        .await;
    session.screenshot(&artifact("gallery-tiles.png")).await;
    let density = grid["density"].as_f64().unwrap();
    let tiles = grid["tiles"].as_array().unwrap();
    // The timeline's month headers take rows of their own, so fewer tiles
    // than a screenful of rows are in view.
    assert!(tiles.len() >= 10, "{grid}");
    let mut videos = 0;
    for tile in tiles {
        let natural = (tile[2].as_f64().unwrap(), tile[3].as_f64().unwrap());
        let rendered = (tile[4].as_f64().unwrap(), tile[5].as_f64().unwrap());
        eprintln!(
            "tile: {} natural {}×{}, rendered {:.1}×{:.1}",
            tile[1], natural.0, natural.1, rendered.0, rendered.1
        );
        if tile[0] == "video" {
            // A clip's tile shows its thumb, the only picture it has.
            videos += 1;
            assert!(tile[1].as_str().unwrap().ends_with("/thumb.jpg"), "{tile}");
            continue;
        }
        assert!(
            natural.0 >= rendered.0 * density && natural.1 >= rendered.1 * density,
            "a tile's picture is stretched: {tile} at {density}× ({grid})"
        );
    }
    assert!(videos > 0, "no clip in view: {grid}");

    // Light: tiles far from the view load nothing, so they still name
    // their thumbnail; no tile loads a clip.
    let page = session
        .script(
            r#"
            return [...document.querySelectorAll('#grid img.thumb')].map(image =>
                [image.getAttribute('src'), image.naturalWidth, image.getBoundingClientRect().top]);
            "#,
        )
        .await;
    let page: Vec<(String, u32, f64)> = serde_json::from_value(page).unwrap();
    assert_eq!(page.len(), 120);
    assert!(page.iter().all(|(source, ..)| !source.ends_with(".mp4")));
    // Chromium loads lazy images up to 1,250 or 2,500 pixels below the view.
    let far: Vec<_> = page
        .iter()
        .filter(|(.., top)| *top > f64::from(WINDOW.1) + 2_500.0)
        .collect();
    assert!(far.len() >= 20, "{page:?}");
    for (source, natural_width, _) in far {
        assert!(
            source.contains("/thumb.") && *natural_width == 0,
            "a tile far from the view loaded: {source}"
        );
    }
    session.close().await;
}

#[tokio::test]
async fn the_viewer_fits_pictures_and_clips_to_the_window() {
    let browser = require!(Browser::find());
    let (_archive, session) = sample_gallery(&browser).await;

    // A 320×240 picture in a 1400×900 window: scaled up to the stage's
    // height, its proportions kept.
    let tile = session.find("#grid .tile.image").await;
    session.click(&tile).await;
    let picture = session.settled("the picture", VIEWER_BOX).await;
    session.screenshot(&artifact("gallery-viewer.png")).await;
    assert_eq!(picture["natural"], json!([320, 240]), "{picture}");
    assert_fitted(&picture, (320.0, 240.0), (1400.0, 900.0));

    // A narrow window: limited by its width now, refitted without reopening.
    session.set_viewport((700, 900)).await;
    let narrow = session
        .settled("the picture in a narrow window", VIEWER_BOX)
        .await;
    session
        .screenshot(&artifact("gallery-viewer-narrow.png"))
        .await;
    assert_fitted(&narrow, (320.0, 240.0), (700.0, 900.0));
    session.set_viewport(WINDOW).await;

    // A 160×120 clip: fitted from its poster before it plays (nothing of
    // the clip loads until then), and while it plays.
    session
        .script("document.getElementById('lightbox-close').click(); document.querySelector('#kinds [data-kind=video]').click(); return 0;")
        .await;
    let tile = session.find("#grid .tile").await;
    session.click(&tile).await;
    let poster = session.settled("the clip's poster", VIEWER_BOX).await;
    assert_eq!(
        poster["natural"],
        json!([0, 0]),
        "the clip loaded: {poster}"
    );
    assert_fitted(&poster, (160.0, 120.0), (1400.0, 900.0));
    let played = session.play_viewer_video().await;
    assert_eq!(played, json!([160, 120, true]), "the clip did not play");
    let playing = session.settled("the playing clip", VIEWER_BOX).await;
    session
        .screenshot(&artifact("gallery-viewer-clip.png"))
        .await;
    assert_eq!(playing["natural"], json!([160, 120]), "{playing}");
    assert_fitted(&playing, (160.0, 120.0), (1400.0, 900.0));
    session.close().await;
}

/// A phone's viewport, 375 px wide.
const PHONE: (u32, u32) = (375, 740);

#[tokio::test]
async fn on_a_phone_the_viewers_arrows_leave_the_media_id_clear() {
    let browser = require!(Browser::find());
    let (_archive, session) = sample_gallery(&browser).await;
    session.set_viewport(PHONE).await;
    let tile = session.find("#grid .tile.image").await;
    session.click(&tile).await;
    let boxes = session
        .settled(
            "the viewer on a phone",
            r#"
            const id = document.querySelector('#lightbox-info strong');
            if (document.getElementById('lightbox').hidden || !id) return null;
            const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
            return {id: rect(id), buttons: ['lightbox-prev', 'lightbox-next', 'lightbox-close']
                .map(name => rect(document.getElementById(name)))};
            "#,
        )
        .await;
    session
        .screenshot(&artifact("gallery-viewer-phone.png"))
        .await;
    let corners = |value: &Value| -> [f64; 4] {
        let all: Vec<f64> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|side| side.as_f64().unwrap())
            .collect();
        [all[0], all[1], all[2], all[3]]
    };
    let id = corners(&boxes["id"]);
    for button in boxes["buttons"].as_array().unwrap() {
        let button = corners(button);
        let apart =
            button[2] <= id[0] || id[2] <= button[0] || button[3] <= id[1] || id[3] <= button[1];
        assert!(apart, "a viewer button covers the media id: {boxes}");
    }
    session.close().await;
}

#[tokio::test]
async fn on_a_phone_the_agency_overview_does_not_scroll_sideways() {
    use vault_mirror::archive::agency::{ConnectionRow, render};
    use vault_mirror::store::{ArchiveFigures, RunRecord};
    let browser = require!(Browser::find());
    let out = tempfile::tempdir().unwrap();
    let rows: Vec<ConnectionRow> = (0..12)
        .map(|n| ConnectionRow {
            id: format!("connection_with_a_long_identifier_{n:02}"),
            folder: format!("connection_with_a_long_identifier_{n:02}"),
            username: Some(format!("someone.with.a.rather.long.name.{n}@example.org")),
            figures: ArchiveFigures {
                members: 12_345,
                verified: 24_690,
                pending: 7,
                failed: n % 3,
                bytes: 123_456_789_012,
                ..ArchiveFigures::default()
            },
            last_run: Some(RunRecord {
                run_id: 1,
                command: "mirror".into(),
                started_at: 1_796_625_000_000,
                finished_at: Some(1_796_625_669_250),
                outcome: Some("partial".into()),
                exit_code: Some(3),
            }),
            media_dates: Some((1_650_000_000_000, 1_796_625_669_250)),
            gallery: true,
        })
        .collect();
    let page = out.path().join("index.html");
    std::fs::write(&page, render(&rows, 1_796_625_669_250)).unwrap();
    let mut session = browser.session().await;
    session.set_viewport(PHONE).await;
    session.open(&page).await;
    let widths = session
        .wait_for(
            "the overview",
            r#"
            const box = document.getElementById('connections');
            if (!box || document.readyState !== 'complete') return null;
            return [innerWidth, document.documentElement.scrollWidth, box.scrollWidth, box.clientWidth,
                    document.querySelectorAll('time[datetime]').length];
            "#,
        )
        .await;
    session.screenshot(&artifact("agency-phone.png")).await;
    assert_eq!(widths[0], 375, "{widths}");
    assert!(
        widths[1].as_f64().unwrap() <= 375.0,
        "the page scrolls sideways: {widths}"
    );
    // The table is wider than the phone: it scrolls inside its own box.
    assert!(
        widths[2].as_f64().unwrap() > widths[3].as_f64().unwrap(),
        "{widths}"
    );
    // Written at, and per row its last run and its oldest and newest media.
    assert_eq!(widths[4], 1 + 12 * 3, "{widths}");
    session.close().await;
}

/// The viewer's picture or clip: its natural size, its rendered box, the
/// stage's content box, where the details bar starts, the window's size.
const VIEWER_BOX: &str = r#"
    const element = document.querySelector('#lightbox-stage img, #lightbox-stage video');
    if (document.getElementById('lightbox').hidden || !element) return null;
    if (element.tagName === 'IMG' && (!element.complete || !element.naturalWidth)) return null;
    const stage = document.getElementById('lightbox-stage'), style = getComputedStyle(stage);
    const outer = stage.getBoundingClientRect(), box = element.getBoundingClientRect();
    const [left, right, top, bottom] = ['Left', 'Right', 'Top', 'Bottom'].map(side => parseFloat(style['padding' + side]));
    return {
        natural: element.tagName === 'IMG' ? [element.naturalWidth, element.naturalHeight] : [element.videoWidth, element.videoHeight],
        box: [box.left, box.top, box.width, box.height],
        stage: [outer.left + left, outer.top + top, outer.width - left - right, outer.height - top - bottom],
        details: document.getElementById('lightbox-info').getBoundingClientRect().top,
        window: [innerWidth, innerHeight],
    };
"#;

/// `viewer` (a [`VIEWER_BOX`]) shows a picture of proportions `natural`
/// as large as the stage allows in a `window` of that size: within the
/// stage and the window, touching the stage on its limiting side, which
/// is the window's minus at most [`VIEWER_MARGINS`].
fn assert_fitted(viewer: &Value, natural: (f64, f64), window: (f64, f64)) {
    let numbers = |key: &str| -> Vec<f64> {
        viewer[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}: {viewer}"))
            .iter()
            .map(|number| number.as_f64().unwrap())
            .collect()
    };
    let (shown, stage) = (numbers("box"), numbers("stage"));
    let inner = numbers("window");
    eprintln!(
        "viewer: natural {}×{}, rendered {:.1}×{:.1} at ({:.1}, {:.1}), stage {:.1}×{:.1}, window {}×{}",
        natural.0,
        natural.1,
        shown[2],
        shown[3],
        shown[0],
        shown[1],
        stage[2],
        stage[3],
        inner[0],
        inner[1]
    );
    assert_eq!((inner[0], inner[1]), window, "{viewer}");
    let (width, height) = (shown[2], shown[3]);
    let ratio = natural.0 / natural.1;
    assert!(
        (width / height - ratio).abs() <= ratio * 0.01,
        "proportions not kept: {viewer}"
    );
    let slack = 1.0;
    assert!(
        shown[0] >= stage[0] - slack
            && shown[1] >= stage[1] - slack
            && shown[0] + width <= stage[0] + stage[2] + slack
            && shown[1] + height <= stage[1] + stage[3] + slack,
        "outside the stage: {viewer}"
    );
    assert!(
        shown[0] >= 0.0
            && shown[1] >= 0.0
            && shown[0] + width <= window.0
            && shown[1] + height <= viewer["details"].as_f64().unwrap() + slack,
        "overflows the window or covers the details: {viewer}"
    );
    let width_limited = stage[2] / stage[3] < ratio;
    if width_limited {
        assert!(
            width >= stage[2] - slack,
            "not as wide as the stage: {viewer}"
        );
        assert!(width >= window.0 - VIEWER_MARGINS, "{viewer}");
    } else {
        assert!(
            height >= stage[3] - slack,
            "not as tall as the stage: {viewer}"
        );
        assert!(height >= window.1 - VIEWER_MARGINS, "{viewer}");
    }
}

/// The gallery of the demo's kind of archive, open in a [`WINDOW`]-sized
/// viewport: the sample vault (JPEG and PNG pictures of 320×240 with 80×60
/// thumbs, 160×120 clips whose thumb is a 160×120 frame), one full page of
/// it (120 media), mirrored with every label, so every tenth media has a
/// 96×96 square preview too. The archive lives as long as its sandbox.
async fn sample_gallery(browser: &Browser) -> (Sandbox, Session) {
    let sandbox = Sandbox::start(&Vault::sample(120, 4), FakeOptions::default()).await;
    let mut settings = sandbox.settings();
    settings.mirror.export = true;
    settings.mirror.quality = Quality::All;
    let summary = mirror(&settings).await;
    assert_eq!(summary.exit_code, 0, "{summary:?}");
    let mut session = browser.session().await;
    session.set_viewport(WINDOW).await;
    session.open(&sandbox.out().join("index.html")).await;
    (sandbox, session)
}

#[tokio::test]
async fn fifty_thousand_media_render_one_page_at_a_time() {
    let browser = require!(Browser::find());
    let out = tempfile::tempdir().unwrap();
    let count = 50_000;
    let snapshot = big_snapshot(
        count,
        |index| 1_767_225_600_000 + index as i64 * 1000,
        false,
    );
    let html = vault_mirror::archive::gallery::render(&snapshot, 1_767_225_600_000);
    let page = out.path().join("index.html");
    std::fs::write(&page, &html).unwrap();

    let mut session = browser.session().await;
    let started = Instant::now();
    session.open(&page).await;
    let shown = session
        .wait_for(
            "the first page",
            "const tiles = document.querySelectorAll('#grid .tile').length; return tiles ? [tiles, document.getElementById('range').textContent] : null;",
        )
        .await;
    // How long it took is a figure for bench/gallery.sh, never asserted.
    let first_page = started.elapsed();
    assert_eq!(shown[0], 120, "{shown}");
    assert!(
        shown[1].as_str().unwrap().contains("of 50,000 media"),
        "{shown}"
    );
    // Paging, then a list filter (their time is another figure).
    let timing = session
        .script(
            r#"
            const started = performance.now();
            document.querySelector('.pager button[aria-label="Next page"]').click();
            const paged = document.getElementById('range').textContent;
            document.querySelector('.list[data-list="3"]').click();
            const filtered = document.getElementById('range').textContent;
            return [paged, filtered, performance.now() - started,
                    document.querySelectorAll('#grid img[loading=lazy]').length];
            "#,
        )
        .await;
    assert!(
        timing[0].as_str().unwrap().starts_with("121–240 of 50,000"),
        "{timing}"
    );
    assert!(
        timing[1].as_str().unwrap().contains("6,250 media"),
        "{timing}"
    );
    assert_eq!(timing[3], 120);
    eprintln!(
        "gallery-50k: html_mb={} first_page_ms={} page_and_filter_ms={:.0}",
        html.len() / 1_000_000,
        first_page.as_millis(),
        timing[2].as_f64().unwrap()
    );
    session.screenshot(&artifact("gallery-50k.png")).await;
    session.close().await;
}

/// The timeline at 100,000 media: month headers, newest first, and a jump
/// to a month years back (its time is a figure for bench/gallery.sh).
#[tokio::test]
async fn a_hundred_thousand_media_on_a_timeline_jump_to_a_month() {
    let browser = require!(Browser::find());
    let out = tempfile::tempdir().unwrap();
    let count = 100_000;
    let newest = 1_767_225_600_000i64; // 2026-01-01
    // Twenty minutes apart: four years of media, each dated by OnlyFans.
    let snapshot = big_snapshot(count, |index| newest - index as i64 * 1_200_000, true);
    let html = vault_mirror::archive::gallery::render(&snapshot, newest);
    let page = out.path().join("index.html");
    std::fs::write(&page, &html).unwrap();

    let mut session = browser.session().await;
    let started = Instant::now();
    session.open(&page).await;
    let shown = session
        .wait_for(
            "the first page",
            "const tiles = document.querySelectorAll('#grid .tile').length; \
             return tiles ? [tiles, document.querySelector('#grid .month').textContent, \
             document.getElementById('month').options.length, document.getElementById('month').value] : null;",
        )
        .await;
    let first_page = started.elapsed();
    assert_eq!(shown[0], 120, "{shown}");
    // Newest first: the page opens on the newest month (2026-01-01 UTC
    // falls in December 2025 for the media before it).
    assert!(shown[1].as_str().unwrap().contains("2026"), "{shown}");
    assert!(shown[2].as_u64().unwrap() >= 47, "{shown}");
    assert_eq!(shown[3], "2026-01", "{shown}");
    let jumped = session
        .script(
            r#"
            const started = performance.now();
            const picker = document.getElementById('month');
            picker.value = '2023-03';
            picker.dispatchEvent(new Event('change'));
            const header = document.getElementById('month-2023-03');
            const next = header && header.nextElementSibling;
            return [performance.now() - started, !!header, next && next.title,
                    document.getElementById('range').textContent, picker.value,
                    header ? Math.round(header.getBoundingClientRect().top) : null];
            "#,
        )
        .await;
    assert_eq!(jumped[1], true, "{jumped}");
    assert_eq!(jumped[4], "2023-03", "{jumped}");
    // The first media of March 2023 (newest first: its last day's).
    let first_of_march = (0..count)
        .find(|index| newest - *index as i64 * 1_200_000 < 1_680_307_200_000)
        .unwrap();
    assert_eq!(
        jumped[2],
        format!("{:010}", 4_100_000_000u64 + first_of_march as u64 * 7),
        "{jumped}"
    );
    // The viewer shows the media's own date, its lists and its dimensions.
    let viewer = session
        .script(
            "document.getElementById('month-2023-03').nextElementSibling.click(); \
             const info = document.getElementById('lightbox-info'); \
             const time = info.querySelector('time'); \
             const text = info.textContent; \
             document.getElementById('lightbox-close').click(); \
             return [time && time.getAttribute('datetime'), text.includes('1280 × 960'), \
                     text.includes('List number ')];",
        )
        .await;
    assert_eq!(viewer[1], true, "{viewer}");
    assert_eq!(viewer[2], true, "{viewer}");
    assert!(
        viewer[0].as_str().unwrap().starts_with("2023-03-"),
        "{viewer}"
    );
    // The list filter still works on the timeline.
    let filtered = session
        .script(
            "document.querySelector('.list[data-list=\"3\"]').click(); \
             return [document.getElementById('range').textContent, document.querySelectorAll('#grid .month').length];",
        )
        .await;
    assert!(
        filtered[0].as_str().unwrap().contains("12,500 media"),
        "{filtered}"
    );
    eprintln!(
        "gallery-100k: html_mb={} first_page_ms={} jump_to_month_ms={:.0}",
        html.len() / 1_000_000,
        first_page.as_millis(),
        jumped[0].as_f64().unwrap()
    );
    session
        .screenshot(&artifact("gallery-100k-timeline.png"))
        .await;
    session.close().await;
}

/// A snapshot of `count` media in 8 lists, each a `full` and a `thumb`
/// JPEG, media `index` dated `date(index)`: as its variants' cache time,
/// or (`own_dates`) as its own date from the Access API.
fn big_snapshot(
    count: usize,
    date: impl Fn(usize) -> i64,
    own_dates: bool,
) -> vault_mirror::archive::snapshot::Snapshot {
    use vault_mirror::archive::snapshot::Snapshot;
    use vault_mirror::store::{ArchiveList, ArchivedVariant, MediaFacts};
    let mut snapshot = Snapshot {
        lists: (0..8)
            .map(|index| ArchiveList {
                list_id: format!("{}", 28_489_180 + index),
                name: format!("List number {index}"),
                gone_at: None,
            })
            .collect(),
        ..Snapshot::default()
    };
    for index in 0..count {
        let id = format!("{:010}", 4_100_000_000u64 + index as u64 * 7);
        snapshot
            .membership
            .insert(id.clone(), vec![(index % 8, None)]);
        if own_dates {
            let facts = MediaFacts {
                date: date(index),
                date_source: "onlyfans".into(),
                width: Some(1280),
                height: Some(960),
                duration: None,
            };
            snapshot.facts.insert(id.clone(), facts);
        }
        for (label, size) in [("full", 180_000), ("thumb", 9_000)] {
            snapshot.variants.push(ArchivedVariant {
                media_id: id.clone(),
                label: label.into(),
                local_path: format!("media/{id}/{label}.jpg"),
                sha256: "0".repeat(64),
                size,
                content_type: Some("image/jpeg".into()),
                media_type: Some("image".into()),
                duration: None,
                created_at: Some(if own_dates { 1 } else { date(index) }),
                stored_at: None,
                verified_at: None,
            });
        }
    }
    snapshot
}

/// A stable path for a screenshot: `target/<name>`.
fn artifact(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    target.join(name)
}

/// A vault of real, decodable pictures: `count` media (every twelfth a
/// video) across four lists.
fn picture_vault(count: usize) -> Vault {
    let names = [
        "Best of 2025/26",
        "Behind the scenes",
        "Summer trip",
        "Fan favourites",
    ];
    let mut lists: Vec<FakeList> = names
        .iter()
        .enumerate()
        .map(|(index, name)| FakeList {
            id: (28_489_180 + index).to_string(),
            name: (*name).to_owned(),
            members: Vec::new(),
        })
        .collect();
    let mut vault = Vault::default();
    for index in 0..count {
        let id = format!("{:010}", 4_100_000_000u64 + index as u64 * 104_729);
        let is_video = index % 12 == 11;
        let mut variants = std::collections::BTreeMap::new();
        let mut thumb = FakeVariant::stored(&id, "thumb", "image/png", 64);
        thumb.body = painting(THUMB, index as u32);
        let mut full = if is_video {
            let mut full = FakeVariant::stored(&id, "full", "video/webm", 64);
            full.body = Bytes::from_static(CLIP);
            full
        } else {
            let mut full = FakeVariant::stored(&id, "full", "image/png", 64);
            full.body = painting(FULL, index as u32);
            full
        };
        let created_at = 1_767_225_600_000 + index as i64 * 3_600_000;
        for variant in [&mut thumb, &mut full] {
            variant.created_at = created_at;
            variant.stored_at = Some(created_at + 5_000);
        }
        variants.insert("thumb".to_owned(), thumb);
        variants.insert("full".to_owned(), full);
        vault.media.insert(
            id.clone(),
            FakeMedia {
                id: id.clone(),
                media_type: if is_video { "video" } else { "image" }.to_owned(),
                duration: is_video.then_some(2.1),
                variants,
                access: None,
            },
        );
        lists[index % 4].members.push(id.clone());
        if index % 3 == 0 {
            lists[(index + 1) % 4].members.push(id);
        }
    }
    vault.lists = lists;
    vault
}

/// A small abstract painting as a PNG: a diagonal two-hue gradient with a
/// soft sun and a horizon, different for every `seed`.
fn painting((width, height): (u32, u32), seed: u32) -> Bytes {
    let hue = (seed * 47 % 360) as f32;
    let sky = hsl(hue, 0.62, 0.58);
    let dusk = hsl((hue + 50.0) % 360.0, 0.70, 0.42);
    let ground = hsl((hue + 190.0) % 360.0, 0.35, 0.22);
    let sun = hsl((hue + 20.0) % 360.0, 0.90, 0.82);
    let (sun_x, sun_y) = (
        0.25 + (seed % 5) as f32 * 0.12,
        0.28 + (seed % 3) as f32 * 0.08,
    );
    let horizon = 0.62 + (seed % 4) as f32 * 0.05;
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
            let wave = horizon + 0.03 * (u * 9.0 + seed as f32).sin();
            let mut color = if v > wave {
                mix(ground, dusk, ((v - wave) * 1.5).min(1.0) * 0.3)
            } else {
                mix(sky, dusk, (u * 0.4 + v * 0.8).min(1.0))
            };
            let distance = ((u - sun_x).powi(2) * 1.7 + (v - sun_y).powi(2)).sqrt();
            if v <= wave {
                let glow = (1.0 - distance / 0.16).clamp(0.0, 1.0);
                color = mix(color, sun, glow.powf(0.6));
            }
            pixels.extend(color.map(|channel| (channel * 255.0) as u8));
        }
    }
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    Bytes::from(encoded)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [0, 1, 2].map(|n| a[n] + (b[n] - a[n]) * t)
}

fn hsl(hue: f32, saturation: f32, lightness: f32) -> [f32; 3] {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let part = chroma * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (chroma, part, 0.0),
        1 => (part, chroma, 0.0),
        2 => (0.0, chroma, part),
        3 => (0.0, part, chroma),
        4 => (part, 0.0, chroma),
        _ => (chroma, 0.0, part),
    };
    let m = lightness - chroma / 2.0;
    [r + m, g + m, b + m]
}

/// Chromium and chromedriver, found on this machine.
struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Browser {
    /// Both, or why not (for [`require!`]: a skip, or under `CI=true` a
    /// failure; `.ci/run` installs them).
    fn find() -> Result<Browser, String> {
        let pick = |variable: &str, candidates: &[&str]| {
            std::env::var_os(variable)
                .map(PathBuf::from)
                .into_iter()
                .chain(candidates.iter().map(PathBuf::from))
                .find(|path| path.is_file())
        };
        let chromium = pick(
            "VAULT_MIRROR_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let chromedriver = pick("VAULT_MIRROR_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Ok(Browser {
                chromium,
                chromedriver,
            }),
            _ => Err(
                "the real-browser gallery test needs chromium and chromedriver \
                      (apt-get install chromium chromium-driver, or set \
                      VAULT_MIRROR_CHROMIUM and VAULT_MIRROR_CHROMEDRIVER)"
                    .to_owned(),
            ),
        }
    }

    /// Starts chromedriver on a free loopback port and opens a session.
    async fn session(&self) -> Session {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = Driver(
            Command::new(&self.chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        // reqwest is built without a default TLS provider; plain HTTP needs one all the same.
        vault_mirror::api::install_crypto_provider();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--window-size=1440,960",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut session = Session {
            http,
            base,
            id: String::new(),
            _driver: driver,
            _profile: profile,
        };
        let created = session.call("POST", "/session", capabilities).await;
        session.id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        session
    }
}

/// Kills chromedriver (our own child) when the test ends, even on a panic.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session: raw JSON over HTTP on loopback.
struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    async fn open(&mut self, page: &Path) {
        let url = url::Url::from_file_path(page).unwrap();
        self.call("POST", &self.path("/url"), json!({"url": url.as_str()}))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.path("/execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn script_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.path("/execute/async"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Runs `script` until it returns something other than null.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.script(script).await;
            if !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` until it returns something other than null twice in
    /// a row, the same both times: pictures swapped or refitted after a
    /// load have settled.
    async fn settled(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        loop {
            let value = self.wait_for(what, script).await;
            if value == last {
                return value;
            }
            assert!(Instant::now() < deadline, "{what} never settled: {value}");
            last = value;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sizes the window so that the page's viewport is `width` × `height`:
    /// headless Chromium's window is larger than its viewport.
    async fn set_viewport(&self, (width, height): (u32, u32)) {
        let window = self
            .call("GET", &self.path("/window/rect"), json!(null))
            .await;
        let viewport = self.script("return [innerWidth, innerHeight]").await;
        let frame = |side: &str, index: usize| {
            window[side].as_i64().unwrap() - viewport[index].as_i64().unwrap()
        };
        self.call(
            "POST",
            &self.path("/window/rect"),
            json!({"width": i64::from(width) + frame("width", 0),
                   "height": i64::from(height) + frame("height", 1)}),
        )
        .await;
        self.wait_for(
            "the viewport's new size",
            &format!("return innerWidth === {width} && innerHeight === {height} || null"),
        )
        .await;
    }

    /// Plays the viewer's video, muted, for 400 ms: its
    /// `[videoWidth, videoHeight, played]`, or why it did not play.
    async fn play_viewer_video(&self) -> Value {
        self.script_async(
            r#"
            const done = arguments[arguments.length - 1];
            const video = document.getElementById('lightbox-video');
            video.muted = true;
            video.play()
                .then(() => setTimeout(() => done([video.videoWidth, video.videoHeight, video.currentTime > 0]), 400))
                .catch(error => done(String(error)));
            "#,
        )
        .await
    }

    async fn find(&self, selector: &str) -> String {
        let found = self
            .call(
                "POST",
                &self.path("/element"),
                json!({"using": "css selector", "value": selector}),
            )
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {selector}: {found}"))
            .to_owned()
    }

    async fn click(&self, element: &str) {
        self.call(
            "POST",
            &self.path(&format!("/element/{element}/click")),
            json!({}),
        )
        .await;
    }

    async fn screenshot(&self, path: &Path) {
        let encoded = self
            .call("GET", &self.path("/screenshot"), json!(null))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    async fn close(self) {
        self.call("DELETE", &self.path(""), json!(null)).await;
    }
}
